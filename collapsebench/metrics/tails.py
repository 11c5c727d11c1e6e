"""Tail mass: how much of the real distribution's tails a model still reaches.

Shumailov et al. ("The Curse of Recursion") describe early model collapse as the tails of the real
distribution vanishing first, long before the bulk changes. ``tail_mass`` measures that directly: the
real data's outer ``tail`` fraction, by Mahalanobis distance from the real mean under the real
covariance (in 1-D, both tails: |x − μ| / σ), and the share of model samples that land there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collapsebench.metrics.frechet import gaussian_statistics

TAIL_FRACTION = 0.05  # the registered metric's tail: the outer 5% of the real data
# Directions where the real data varies less than this (relative to its widest) are left out:
# always-blank pixels would otherwise make every distance infinite or dominated by round-off.
_RELATIVE_VARIANCE_CUTOFF = 1e-10


def check_tail_fraction(tail: float) -> None:
    if not 0.0 < tail < 1.0:
        raise ValueError(f"tail must be a fraction in (0, 1), got {tail!r}")


def _as_rows(items: np.ndarray) -> np.ndarray:
    items = np.asarray(items, dtype=np.float64)
    return items.reshape(len(items), -1)


@dataclass(frozen=True)
class TailReference:
    """The real side of ``tail_mass``, computed once per real set: the whitening map, the radius
    beyond which the outer ``tail`` of the real items lie and the fraction of them that do."""

    mean: np.ndarray  # (d,)
    whitening: np.ndarray  # (d, rank): x ↦ (x − mean) @ whitening has identity covariance
    squared_radius: float
    real_fraction: float  # fraction of real items strictly beyond the radius, ≈ tail

    @classmethod
    def of(
        cls,
        real: np.ndarray,
        tail: float = TAIL_FRACTION,
        statistics: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> TailReference:
        """From the real items (n, ...) and, if already computed, their mean and covariance."""
        check_tail_fraction(tail)
        real = _as_rows(real)
        mean, covariance = gaussian_statistics(real) if statistics is None else statistics
        eigenvalues, eigenvectors = np.linalg.eigh(np.atleast_2d(covariance))
        kept = eigenvalues > _RELATIVE_VARIANCE_CUTOFF * max(eigenvalues.max(), 0.0)
        whitening = eigenvectors[:, kept] / np.sqrt(eigenvalues[kept])
        reference = cls(np.atleast_1d(mean), whitening, 0.0, 0.0)
        distances = reference.squared_distances(real)
        squared_radius = float(np.quantile(distances, 1.0 - tail))
        beyond = int((distances > squared_radius).sum())
        if beyond == 0:
            raise ValueError(
                f"no real item lies strictly beyond the real items' (1 − {tail}) distance quantile: "
                f"their largest distances from the mean tie ({len(real)} items; too few distinct ones?)"
            )
        return cls(reference.mean, whitening, squared_radius, beyond / len(real))

    def squared_distances(self, items: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distances of items (n, ...) from the real mean."""
        items = _as_rows(items)
        if items.shape[1] != len(self.mean):
            raise ValueError(f"items have {items.shape[1]} features, the real data {len(self.mean)}")
        return np.square((items - self.mean) @ self.whitening).sum(axis=1)

    def mass(self, fake: np.ndarray) -> float:
        """Fraction of ``fake`` items beyond the real tail radius, over the real items' fraction."""
        if len(fake) == 0:
            raise ValueError("tail_mass needs at least one fake item")
        beyond = self.squared_distances(fake) > self.squared_radius
        return float(beyond.mean() / self.real_fraction)


def tail_mass(
    real: np.ndarray,
    fake: np.ndarray,
    tail: float = TAIL_FRACTION,
    real_statistics: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """The share of ``fake`` items in the real data's outer ``tail``, relative to the real share.

    The tail is where the real items farthest from their mean lie, by Mahalanobis distance under
    their covariance: beyond their (1 − tail) distance quantile. 1 when the fake items reach the tails
    as often as real ones, 0 when none does (the tails have vanished), above 1 for heavier tails.
    Invariant to any invertible affine map of the features; directions in which the real items do not
    vary are left out. ``real_statistics``: the real items' mean and covariance, if already computed.
    """
    return TailReference.of(real, tail, real_statistics).mass(fake)
