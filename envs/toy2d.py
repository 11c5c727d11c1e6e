"""Toy 2-D worlds with known densities, refitted by normalizing flows: Moons, Rings8, Checkerboard.

Each real distribution has an exact (or numerically exact) log-density, so the env also reports the
true negative log-likelihood of the model's samples (``true_nll_samples``); Rings8 has modes, so it
reports ``mode_coverage``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import log_ndtr, logsumexp

from collapsebench.checks import integer, number_in
from collapsebench.data import AnalyticDistribution
from collapsebench.env import CollapseEnv
from collapsebench.envs.gmm2d import RingMixture
from collapsebench.scoring import STANDARD_METRICS


class TwoMoons(AnalyticDistribution):
    """scikit-learn's two moons: a point uniform on one of two half circles, plus N(0, noise²I).

    The log-density integrates the Gaussian noise over each arc by the midpoint rule on
    ``arc_points`` angles (spacing π/500 ≪ noise): within 1e-5 nats of adaptive quadrature.
    """

    sample_shape = (2,)

    def __init__(self, noise: float = 0.1, arc_points: int = 500) -> None:
        self.noise = number_in("noise", noise, "(0, inf)")
        integer("arc_points", arc_points, 1)
        angles = (np.arange(arc_points) + 0.5) * np.pi / arc_points
        outer = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        inner = np.stack([1 - np.cos(angles), 1 - np.sin(angles) - 0.5], axis=1)
        self._arc_points = np.concatenate([outer, inner])  # both arcs, equally weighted

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        angles = rng.uniform(0.0, np.pi, size=n)
        outer = rng.random(n) < 0.5
        x = np.where(outer, np.cos(angles), 1 - np.cos(angles))
        y = np.where(outer, np.sin(angles), 1 - np.sin(angles) - 0.5)
        return np.stack([x, y], axis=1) + self.noise * rng.standard_normal((n, 2))

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.empty(len(x))
        for start in range(0, len(x), 512):  # (512 × 2 arc_points) distances at a time
            chunk = x[start : start + 512]
            squared = ((chunk[:, None, :] - self._arc_points[None]) ** 2).sum(-1)
            log_kernel = -squared / (2 * self.noise**2) - np.log(2 * np.pi * self.noise**2)
            out[start : start + 512] = logsumexp(log_kernel, axis=1) - np.log(len(self._arc_points))
        return out

    @property
    def population_covariance(self) -> np.ndarray:
        # Second moments of each arc for t ~ U(0, π) (E cos = 0, E sin = 2/π, E cos² = E sin² = 1/2,
        # E cos·sin = 0), mixed 50/50, minus the outer product of the mean (1/2, 1/4), plus the noise.
        outer_arc = np.array([[0.5, 0.0], [0.0, 0.5]])
        inner_arc = np.array([[1.5, 0.5 - 2 / np.pi], [0.5 - 2 / np.pi, 0.75 - 2 / np.pi]])
        mean = np.array([0.5, 0.25])
        return (outer_arc + inner_arc) / 2 - np.outer(mean, mean) + self.noise**2 * np.eye(2)


class Checkerboard(AnalyticDistribution):
    """Uniform on the dark squares of a ``size`` × ``size`` board of side-``side`` squares centred at 0,
    blurred by N(0, blur²I) so that the density is positive everywhere (finite log-likelihoods)."""

    sample_shape = (2,)

    def __init__(self, size: int = 4, side: float = 1.0, blur: float = 0.02) -> None:
        self.size = integer("size", size, 1)
        self.side, self.blur = number_in("side", side, "(0, inf)"), number_in("blur", blur, "(0, inf)")
        corners = [(i, j) for i in range(self.size) for j in range(self.size) if (i + j) % 2 == 0]
        self.lower_corners = (np.array(corners, dtype=np.float64) - self.size / 2) * self.side

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        squares = self.lower_corners[rng.integers(len(self.lower_corners), size=n)]
        return squares + self.side * rng.random((n, 2)) + self.blur * rng.standard_normal((n, 2))

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        # Uniform[lo, lo + side] convolved with N(0, blur²): (Φ((x − lo)/b) − Φ((x − lo − side)/b)) / side.
        x = np.asarray(x, dtype=np.float64)
        upper = (x[:, None, :] - self.lower_corners[None]) / self.blur  # (n, squares, 2)
        lower = upper - self.side / self.blur
        log_mass = _log_ndtr_difference(lower, upper).sum(axis=-1) - 2 * np.log(self.side)
        return logsumexp(log_mass, axis=1) - np.log(len(self.lower_corners))

    @property
    def population_covariance(self) -> np.ndarray:
        centres = self.lower_corners + self.side / 2
        within = self.side**2 / 12 + self.blur**2
        return np.cov(centres, rowvar=False, bias=True) + within * np.eye(2)


def _log_ndtr_difference(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """log(Φ(high) − Φ(low)) for high > low, stable in both tails (reflect where low > 0)."""
    reflect = low > 0
    low, high = np.where(reflect, -high, low), np.where(reflect, -low, high)
    log_high, log_low = log_ndtr(high), log_ndtr(low)
    return log_high + np.log1p(-np.exp(np.minimum(log_low - log_high, 0.0)) + 1e-300)


_TOY_DOC = """
    - **Observation**: the pool, (capacity, 2) samples with origin/valid/generation (``CollapseEnv``).
    - **Action**: per-slot weights in [0, 1]; the flow's minibatches are drawn with these weights.
    - **Reward**: −``w2``, the exact Wasserstein-2 distance between 1000 model samples and the 1000
      held-out real points.
    - **Termination**: truncated after ``generations`` + 1 steps.
    - **Defaults (v0)**: n_real = n_synthetic = 1000, n_test = n_eval = 1000, T = 20; model
      ``spline-flow`` (4 rational-quadratic coupling layers, 64 hidden units, Adam lr 1e-3,
      batch 256): 1000 steps for generation 0, then 300 warm-started steps per generation.
      Measured on one CPU core (flows train single-threaded): ≈ 25 s for generation 0, ≈ 6.5 s per
      later generation, ≈ 2.6 min per lineage of T = 20.
      Extra metrics: ``true_nll_samples``, ``memorization``{extra}.
    - **Version history**: v0 — initial release.
"""


class MoonsEnv(CollapseEnv):
    __doc__ = "Two moons (noise 0.1) refitted by a normalizing flow.\n" + _TOY_DOC.format(extra="")

    def __init__(self, *, noise: float = 0.1, **kwargs: Any) -> None:
        super().__init__(TwoMoons(noise), **kwargs)


class Rings8Env(CollapseEnv):
    __doc__ = "8 Gaussians on a ring (radius 2, std 0.2) refitted by a normalizing flow.\n" + _TOY_DOC.format(
        extra=", ``mode_coverage`` (modes holding ≥ 1/5 of their fair share of samples)"
    )

    def __init__(
        self, *, n_modes: int = 8, radius: float = 2.0, mode_std: float = 0.2, **kwargs: Any
    ) -> None:
        super().__init__(RingMixture(n_modes, radius, mode_std), **kwargs)


class CheckerboardEnv(CollapseEnv):
    __doc__ = (
        "A 4×4 checkerboard on [−2, 2]² (dark squares, blur 0.02) refitted by a flow.\n"
        + _TOY_DOC.format(extra="")
    )

    def __init__(self, *, size: int = 4, side: float = 1.0, blur: float = 0.02, **kwargs: Any) -> None:
        super().__init__(Checkerboard(size, side, blur), **kwargs)


TOY_METRICS = (*STANDARD_METRICS, "true_nll_samples", "memorization")
TOY_DEFAULTS: dict[str, Any] = {
    "n_real": 1000,
    "n_synthetic": 1000,
    "n_test": 1000,
    "n_eval": 1000,
    "generations": 20,
    "model": "spline-flow",
    "model_kwargs": {
        "initial_steps": 1000,
        "steps": 300,
        "batch_size": 256,
        "lr": 1e-3,
        "hidden": 64,
        "layers": 4,
    },
    "headline_metric": "w2",
    "metrics": TOY_METRICS,
}
RINGS8_DEFAULTS: dict[str, Any] = {
    "n_modes": 8,
    "radius": 2.0,
    "mode_std": 0.2,
    **TOY_DEFAULTS,
    "metrics": (*TOY_METRICS, "mode_coverage"),
}
MOONS_DEFAULTS: dict[str, Any] = {"noise": 0.1, **TOY_DEFAULTS}
CHECKERBOARD_DEFAULTS: dict[str, Any] = {"size": 4, "side": 1.0, "blur": 0.02, **TOY_DEFAULTS}
