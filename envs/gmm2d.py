"""A 2-D mixture of Gaussians on a ring, refitted by scikit-learn's GaussianMixture (Shumailov et al.'s
GMM experiment, in the plane, where lost modes are easy to see)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from collapsebench.checks import integer, number_in
from collapsebench.data import AnalyticDistribution
from collapsebench.env import CollapseEnv


class RingMixture(AnalyticDistribution):
    """Equal mixture of ``n_modes`` isotropic Gaussians (std ``mode_std``) evenly spaced on a circle."""

    def __init__(self, n_modes: int = 8, radius: float = 2.0, mode_std: float = 0.2) -> None:
        integer("n_modes", n_modes, 3)  # a ring: its covariance below holds from three points on
        number_in("radius", radius, "[0, inf)")
        number_in("mode_std", mode_std, "(0, inf)")
        angles = 2 * np.pi * np.arange(n_modes) / n_modes
        self.modes = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        self.radius, self.mode_std = float(radius), float(mode_std)
        self.sample_shape = (2,)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        which = rng.integers(len(self.modes), size=n)
        return self.modes[which] + self.mode_std * rng.standard_normal((n, 2))

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        squared = ((np.asarray(x)[:, None, :] - self.modes[None]) ** 2).sum(axis=-1)
        log_component = -squared / (2 * self.mode_std**2) - np.log(2 * np.pi * self.mode_std**2)
        return logsumexp(log_component, axis=1) - np.log(len(self.modes))

    @property
    def population_covariance(self) -> np.ndarray:
        # Evenly spaced points on a circle (≥ 3 of them) have covariance r²/2 · I.
        return (self.mode_std**2 + self.radius**2 / 2) * np.eye(2)


class GMM2DEnv(CollapseEnv):
    """8 Gaussians on a ring in the plane, refitted each generation by an 8-component GaussianMixture.

    - **Observation**: the pool, (capacity, 2) samples with origin/valid/generation (``CollapseEnv``).
    - **Action**: per-slot weights in [0, 1] (``CollapseEnv``); the GMM has no sample weights, so it
      trains on a systematic resample of the weighted pool (identical to the pool for uniform weights).
    - **Reward**: −``w2``, the exact Wasserstein-2 distance between 1000 model samples and the 1000
      held-out real points (mode loss moves mass across the ring, which W2 sees and FD barely does).
    - **Termination**: truncated after ``generations`` + 1 steps.
    - **Defaults (v0)**: 8 modes, radius 2, mode std 0.2, n_real = n_synthetic = 500,
      n_test = n_eval = 1000, T = 50, model ``gmm`` (8 components, full covariances, warm-started
      EM from the previous generation), metrics as ``CollapseEnv``.
    - **Version history**: v0 — initial release.
    """

    def __init__(
        self, *, n_modes: int = 8, radius: float = 2.0, mode_std: float = 0.2, **kwargs: Any
    ) -> None:
        super().__init__(RingMixture(n_modes, radius, mode_std), **kwargs)


GMM2D_DEFAULTS: dict[str, Any] = {
    "n_modes": 8,
    "radius": 2.0,
    "mode_std": 0.2,
    "n_real": 500,
    "n_synthetic": 500,
    "n_test": 1000,
    "n_eval": 1000,
    "generations": 50,
    "model": "gmm",
    "model_kwargs": {"n_components": 8},
    "headline_metric": "w2",
}
