"""Spread of the model against the real data."""

from __future__ import annotations

import numpy as np


def std_ratio(model_covariance: np.ndarray, reference_covariance: np.ndarray) -> float:
    """Model std / real std; in d dimensions the geometric mean over principal axes,
    (det Σ_model / det Σ_real)^(1/2d), which is invariant to rotations. 0 when the model is degenerate."""
    model_covariance = np.atleast_2d(np.asarray(model_covariance, dtype=np.float64))
    reference_covariance = np.atleast_2d(np.asarray(reference_covariance, dtype=np.float64))
    if model_covariance.shape != reference_covariance.shape:
        raise ValueError(
            f"covariance shapes differ: {model_covariance.shape} vs {reference_covariance.shape}"
        )
    sign_model, logdet_model = np.linalg.slogdet(model_covariance)
    sign_reference, logdet_reference = np.linalg.slogdet(reference_covariance)
    if sign_reference <= 0:
        raise ValueError("the reference covariance is singular")
    if sign_model <= 0:
        return 0.0
    return float(np.exp((logdet_model - logdet_reference) / (2 * model_covariance.shape[0])))
