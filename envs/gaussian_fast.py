"""Exact, vectorized simulation of 1-D Gaussian lineages from sufficient statistics.

The sample-based env draws n points per generation and refits; but a Gaussian refit only sees each
group's mean and scatter, whose laws are known: for m draws of N(μ, σ²), the mean is N(μ, σ²/m) and
the scatter m·v is σ²·χ²_{m−1}, independently. Combining the groups' statistics exactly as the weighted
estimator of the ``gaussian`` model does gives lineages *equal in distribution* to the sample path at
O(1) per generation per lineage, vectorized over lineages.

Each loop is the sample path of one (env, policy) pair:

======================  ======================================  =================================
``loop``                sample path                             training weights
======================  ======================================  =================================
``"replace"``           ``Gaussian-replace-v0`` + full-synthetic the previous generation only
``"mix"`` (``lam``)     ``Gaussian-mix-v0`` + lambda-mix(lam)    fixed real set : synthetic = 1 : λ
``"fresh"`` (``lam``)   ``Gaussian-fresh-v0`` + lambda-mix(lam)  a new real draw : synthetic = 1 : λ
``"accumulate"``        ``Gaussian-accumulate-v0`` + accumulate  uniform over everything so far
======================  ======================================  =================================

(gymnasium's vector-env interface does not fit: its actions are per-item weights over a pool, and
this path has no items, only statistics; the loop and λ play the part of the policy.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LOOPS = ("replace", "mix", "fresh", "accumulate")


@dataclass(frozen=True)
class GaussianLineages:
    """Fitted parameters of every lineage at every generation."""

    mean: np.ndarray  # (generations + 1, n_lineages) fitted mean μ̂_t
    std: np.ndarray  # (generations + 1, n_lineages) fitted std σ̂_t
    true_mean: float
    true_std: float

    @property
    def std_ratio(self) -> np.ndarray:
        """σ̂_t / σ, the sample path's ``std_ratio`` (exact there too, from the model's covariance)."""
        return self.std / self.true_std

    @property
    def w2_to_truth(self) -> np.ndarray:
        """Exact W2 between N(μ̂_t, σ̂_t²) and the real N(μ, σ²): sqrt((μ̂ − μ)² + (σ̂ − σ)²)."""
        return np.sqrt((self.mean - self.true_mean) ** 2 + (self.std - self.true_std) ** 2)

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows: lineage, generation, metric (std_ratio, w2_to_truth), value."""
        generations, lineages = self.mean.shape
        index = pd.MultiIndex.from_product(
            [range(generations), range(lineages)], names=["generation", "lineage"]
        )
        frame = pd.DataFrame(
            {"std_ratio": self.std_ratio.ravel(), "w2_to_truth": self.w2_to_truth.ravel()}, index=index
        )
        return frame.reset_index().melt(["generation", "lineage"], var_name="metric", value_name="value")


def simulate_gaussian_lineages(
    n_lineages: int,
    generations: int,
    loop: str = "mix",
    lam: float = 1.0,
    n_real: int = 100,
    n_synthetic: int | None = None,
    mean: float = 0.0,
    std: float = 1.0,
    unbiased: bool = True,
    seed: int = 0,
) -> GaussianLineages:
    """Simulate ``n_lineages`` independent lineages for generations 0..``generations`` (see module doc)."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {LOOPS}, got {loop!r}")
    if not lam >= 0:
        raise ValueError(f"lam must be ≥ 0 (or inf), got {lam!r}")
    n, m = int(n_real), int(n_real if n_synthetic is None else n_synthetic)
    if n < 2 or m < 2:
        raise ValueError("n_real and n_synthetic must be at least 2")
    rng = np.random.default_rng(seed)
    size = (n_lineages,)

    def group(
        centre: np.ndarray | float, spread: np.ndarray | float, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and biased within-group variance of ``count`` draws of N(centre, spread²)."""
        group_mean = centre + spread * rng.standard_normal(size) / np.sqrt(count)
        group_var = spread**2 * 2.0 * rng.standard_gamma((count - 1) / 2, size) / count
        return group_mean, group_var

    def finish(scatter: np.ndarray, sum_squared_weights: float) -> np.ndarray:
        return np.sqrt(scatter / (1.0 - sum_squared_weights) if unbiased else scatter)

    means = np.empty((generations + 1, n_lineages))
    stds = np.empty((generations + 1, n_lineages))
    real_mean, real_var = group(mean, std, n)  # generation 0 trains on the real set only
    means[0], stds[0] = real_mean, finish(real_var, 1.0 / n)
    total, running_mean, running_scatter = float(n), real_mean, n * real_var  # for ``accumulate``
    real_mass = 0.0 if np.isinf(lam) else 1.0 / (1.0 + lam)

    for t in range(1, generations + 1):
        synthetic_mean, synthetic_var = group(means[t - 1], stds[t - 1], m)
        if loop == "replace":
            means[t], stds[t] = synthetic_mean, finish(synthetic_var, 1.0 / m)
        elif loop == "accumulate":
            # Chan et al.'s pairwise update of (count, mean, scatter); uniform weights over all items.
            delta = synthetic_mean - running_mean
            running_scatter = running_scatter + m * synthetic_var + delta**2 * total * m / (total + m)
            running_mean = running_mean + delta * m / (total + m)
            total += m
            means[t], stds[t] = running_mean, finish(running_scatter / total, 1.0 / total)
        else:  # mix or fresh: real mass R, synthetic mass S = 1 − R, uniform within each group
            if loop == "fresh":
                real_mean, real_var = group(mean, std, n)
            synthetic_mass = 1.0 - real_mass
            fitted = real_mass * real_mean + synthetic_mass * synthetic_mean
            scatter = real_mass * (real_var + (real_mean - fitted) ** 2) + synthetic_mass * (
                synthetic_var + (synthetic_mean - fitted) ** 2
            )
            means[t], stds[t] = fitted, finish(scatter, real_mass**2 / n + synthetic_mass**2 / m)
    return GaussianLineages(means, stds, float(mean), float(std))
