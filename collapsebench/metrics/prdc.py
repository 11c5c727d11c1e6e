"""Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Same definitions and the same Euclidean distances as the reference ``prdc`` package, computed block
by block so memory stays O(n_real × block) instead of three full n×n matrices.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances

_BLOCK_ELEMENTS = 1 << 24  # ~128 MiB of float64 distances per block


def _flat(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def kth_neighbour_radii(features: np.ndarray, nearest_k: int) -> np.ndarray:
    """Distance from each item to its k-th nearest *other* item (the radius of its k-NN ball)."""
    features = _flat(features)
    n = len(features)
    if not 1 <= nearest_k < n:
        raise ValueError(f"nearest_k must be in [1, {n - 1}] for {n} items, got {nearest_k}")
    block = max(1, _BLOCK_ELEMENTS // n)
    radii = np.empty(n)
    for start in range(0, n, block):
        distances = euclidean_distances(features[start : start + block], features)
        # Index k of the sorted row: the item itself sits at distance 0 in position 0.
        radii[start : start + block] = np.partition(distances, nearest_k, axis=1)[:, nearest_k]
    return radii


def precision_recall_density_coverage(
    real_features: np.ndarray, fake_features: np.ndarray, nearest_k: int = 3
) -> dict[str, float]:
    """The four k-NN manifold metrics of fake (model) features against real features."""
    real, fake = _flat(real_features), _flat(fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature dimensions differ: real {real.shape[1]}, fake {fake.shape[1]}")
    real_radii = kth_neighbour_radii(real, nearest_k)
    fake_radii = kth_neighbour_radii(fake, nearest_k)

    fake_in_real_balls = np.zeros(len(fake))  # how many real balls contain each fake item
    real_in_fake_ball = np.zeros(len(real), dtype=bool)
    nearest_fake = np.full(len(real), np.inf)
    block = max(1, _BLOCK_ELEMENTS // len(real))
    for start in range(0, len(fake), block):
        stop = start + block
        distances = euclidean_distances(real, fake[start:stop])  # (n_real, block)
        fake_in_real_balls[start:stop] = (distances < real_radii[:, None]).sum(axis=0)
        real_in_fake_ball |= (distances < fake_radii[None, start:stop]).any(axis=1)
        np.minimum(nearest_fake, distances.min(axis=1), out=nearest_fake)

    return {
        "precision": float((fake_in_real_balls > 0).mean()),
        "recall": float(real_in_fake_ball.mean()),
        "density": float(fake_in_real_balls.mean() / nearest_k),
        "coverage": float((nearest_fake < real_radii).mean()),
    }
