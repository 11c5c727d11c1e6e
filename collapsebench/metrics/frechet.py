"""Fréchet distance between Gaussians fitted to two feature sets (FID on Inception features)."""

from __future__ import annotations

import numpy as np


def _as_matrix(cov: np.ndarray | float) -> np.ndarray:
    return np.atleast_2d(np.asarray(cov, dtype=np.float64))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """||μ1 − μ2||² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}).

    Tr (Σ1Σ2)^{1/2} is computed as Σ √eig(Σ1^{1/2} Σ2 Σ1^{1/2}): the same eigenvalues, but of a
    symmetric PSD matrix, so it stays real and stable where scipy's ``sqrtm`` of the non-symmetric
    product needs the usual epsilon and imaginary-part clean-ups.
    """
    cov1, cov2 = _as_matrix(cov1), _as_matrix(cov2)
    diff = np.atleast_1d(np.asarray(mean1, dtype=np.float64) - np.asarray(mean2, dtype=np.float64))
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (n, d) features, in float64."""
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if len(features) < 2:
        raise ValueError("the Fréchet distance needs at least 2 items per set")
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def frechet_distance_from_samples(x: np.ndarray, y: np.ndarray) -> float:
    return frechet_distance(*gaussian_statistics(x), *gaussian_statistics(y))
