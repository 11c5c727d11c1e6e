"""Wasserstein-2 between two point clouds with uniform weights, via POT."""

from __future__ import annotations

import numpy as np


def wasserstein2(
    x: np.ndarray, y: np.ndarray, *, exact_max_pairs: int = 4_000_000, n_projections: int = 512, seed: int = 0
) -> float:
    """W2 of the two empirical measures.

    Exact in 1-D (sorted quantiles) and whenever n·m ≤ ``exact_max_pairs`` (network simplex); beyond
    that the sliced W2 with ``n_projections`` seeded random directions (a lower bound, cheap in any d).
    """
    import ot  # POT is heavy to import: only when a metric asks for it

    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimensions differ: {x.shape[1]} and {y.shape[1]}")
    if x.shape[1] == 1:
        return float(np.sqrt(ot.wasserstein_1d(x[:, 0], y[:, 0], p=2)))
    if len(x) * len(y) <= exact_max_pairs:
        cost = ot.dist(x, y, metric="sqeuclidean")
        uniform_x, uniform_y = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
        return float(np.sqrt(max(ot.emd2(uniform_x, uniform_y, cost, numItermax=10_000_000), 0.0)))
    return float(ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, p=2, seed=seed))
