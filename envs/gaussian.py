"""Gaussian worlds: the seed paper's warm-up, where collapse has a closed form.

A Gaussian refitted on its own n samples with the unbiased estimator shrinks in expectation by
c4(n) = sqrt(2/(n-1)) Γ(n/2) / Γ((n-1)/2) per generation: E[σ_t] = c4(n)^(t+1) σ for the model trained
at step t (generation 0 is fitted on real data). A model sampling at temperature τ (sampling bias)
shrinks by τ·c4(n) instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln

from collapsebench.checks import integer, number_in
from collapsebench.data import AnalyticDistribution
from collapsebench.env import CollapseEnv


def c4(n: int) -> float:
    """E[s]/σ for the unbiased sample std s of n Gaussian draws."""
    return float(np.sqrt(2.0 / (n - 1)) * np.exp(gammaln(n / 2) - gammaln((n - 1) / 2)))


class GaussianDistribution(AnalyticDistribution):
    """N(mean, cov) in d dimensions; samples have shape (n, d)."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
        if self.cov.shape != (self.mean.size, self.mean.size):
            raise ValueError(f"covariance {self.cov.shape} does not match mean of size {self.mean.size}")
        self._cholesky = np.linalg.cholesky(self.cov)  # raises if cov is not positive definite
        self.sample_shape = (self.mean.size,)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.mean + rng.standard_normal((n, self.mean.size)) @ self._cholesky.T

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        centered = np.asarray(x, dtype=np.float64).reshape(len(x), -1) - self.mean
        whitened = np.linalg.solve(self._cholesky, centered.T)
        log_det = 2.0 * np.log(np.diag(self._cholesky)).sum()
        return -0.5 * ((whitened**2).sum(axis=0) + log_det + self.mean.size * np.log(2 * np.pi))

    @property
    def population_covariance(self) -> np.ndarray:
        return self.cov


def rotated_covariance(dim: int, smallest_std: float, largest_std: float, rotation_seed: int) -> np.ndarray:
    """A full covariance: standard deviations log-spaced on the principal axes, in a fixed random basis."""
    stds = np.geomspace(smallest_std, largest_std, dim)
    basis, _ = np.linalg.qr(np.random.default_rng(rotation_seed).standard_normal((dim, dim)))
    return (basis * stds**2) @ basis.T


class GaussianEnv(CollapseEnv):
    """1-D Gaussian world, N(mean, std²), with the Gaussian MLE (unbiased variance) as the model.

    - **Observation**: the pool, (capacity, 1) samples with origin/valid/generation (``CollapseEnv``).
    - **Action**: per-slot weights in [0, 1] (``CollapseEnv``).
    - **Reward**: −``fd``, the Fréchet distance between the model's samples and the held-out real
      test split; in 1-D, (μ̂ − μ)² + (σ̂ − σ)².
    - **Termination**: truncated after ``generations`` + 1 steps.
    - **Defaults (v0)**: mean 0, std 1, n_real = n_synthetic = 100, n_test = n_eval = 1000,
      generations T = 100, model ``gaussian`` (unbiased), metrics: fd, precision, recall, density,
      coverage (k = 3), w2 (exact, 1-D quantiles), nll, std_ratio (σ̂/σ, exact), synthetic_fraction.
    - **Closed form**: with ``replace`` dynamics and ``full-synthetic``, E[std_ratio_t] = c4(n)^(t+1);
      (τ·c4(n))^(t+1) for the model at sampling temperature τ (``model_kwargs={"temperature": τ}``).
    - **Version history**: v0 — initial release.
    """

    def __init__(self, *, mean: float = 0.0, std: float = 1.0, **kwargs: Any) -> None:
        mean, std = number_in("mean", mean, "(-inf, inf)"), number_in("std", std, "(0, inf)")
        super().__init__(GaussianDistribution(np.array([mean]), np.array([[std**2]])), **kwargs)


class GaussianNDEnv(CollapseEnv):
    """d-dimensional Gaussian world with a full covariance, refitted by the Gaussian MLE.

    - **Observation**: the pool, (capacity, d) samples with origin/valid/generation (``CollapseEnv``).
    - **Action**: per-slot weights in [0, 1] (``CollapseEnv``).
    - **Reward**: −``fd`` (Fréchet distance to the held-out real split; exact W2² between Gaussians).
    - **Termination**: truncated after ``generations`` + 1 steps.
    - **Defaults (v0)**: d = 8, mean 0, covariance with principal stds log-spaced in [0.5, 2] in a fixed
      random basis (``rotation_seed`` 0), n_real = n_synthetic = 100, n_test = n_eval = 1000, T = 100,
      model ``gaussian``; ``w2`` exact (network simplex) on 1000 × 1000 points; ``std_ratio`` is the
      geometric mean over principal axes, (det Σ̂ / det Σ)^(1/2d).
    - **Version history**: v0 — initial release.
    """

    def __init__(
        self,
        *,
        dim: int = 8,
        smallest_std: float = 0.5,
        largest_std: float = 2.0,
        rotation_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        integer("dim", dim, 1)
        integer("rotation_seed", rotation_seed, 0)
        number_in("smallest_std", smallest_std, "(0, inf)")
        number_in("largest_std", largest_std, f"[{smallest_std}, inf)")
        cov = rotated_covariance(dim, smallest_std, largest_std, rotation_seed)
        super().__init__(GaussianDistribution(np.zeros(dim), cov), **kwargs)


# What both Gaussian families share: the seed paper's warm-up budget (n = 100, T = 100).
_GAUSSIAN_LINEAGE: dict[str, Any] = {
    "n_real": 100,
    "n_synthetic": 100,
    "n_test": 1000,
    "n_eval": 1000,
    "generations": 100,
    "model": "gaussian",
    "model_kwargs": {"unbiased": True},
    "headline_metric": "fd",
}
GAUSSIAN_DEFAULTS: dict[str, Any] = {"mean": 0.0, "std": 1.0, **_GAUSSIAN_LINEAGE}
GAUSSIAN_ND_DEFAULTS: dict[str, Any] = {
    "dim": 8,
    "smallest_std": 0.5,
    "largest_std": 2.0,
    "rotation_seed": 0,
    **_GAUSSIAN_LINEAGE,
}
