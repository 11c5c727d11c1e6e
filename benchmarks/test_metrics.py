"""Metrics at evaluation scale, side by side with their reference implementations (``make bench``).

Goals (issue 6): PRDC on 10k × 10k 64-d features ≥ 3× faster than the ``prdc`` package with
identical values; FD on 2048-d Inception-sized statistics against scipy's ``sqrtm`` formula.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import prdc
import pytest
from scipy import linalg

from collapsebench.metrics import frechet_distance, precision_recall_density_coverage


@pytest.fixture(scope="module")
def features() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(10_000, 64)), rng.normal(size=(10_000, 64)) * 1.1 + 0.05


def reference_prdc(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        return {key: float(value) for key, value in prdc.compute_prdc(real, fake, 3).items()}


def test_prdc_reference_package(benchmark, features):
    benchmark.group = "prdc 10k x 10k, 64-d"
    benchmark.pedantic(reference_prdc, args=features, rounds=1, iterations=1)


def test_prdc_collapsebench(benchmark, features):
    benchmark.group = "prdc 10k x 10k, 64-d"
    ours = benchmark.pedantic(precision_recall_density_coverage, args=(*features, 3), rounds=1, iterations=1)
    assert ours == pytest.approx(reference_prdc(*features), rel=1e-14, abs=0)


@pytest.fixture(scope="module")
def statistics() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4096, 2048)), rng.normal(size=(4096, 2048)) * 1.05
    return a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)


def scipy_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fd_scipy_sqrtm(benchmark, statistics):
    benchmark.group = "frechet distance, 2048-d"
    benchmark.pedantic(scipy_frechet, args=statistics, rounds=1, iterations=1)


def test_fd_collapsebench(benchmark, statistics):
    benchmark.group = "frechet distance, 2048-d"
    ours = benchmark.pedantic(frechet_distance, args=statistics, rounds=3, iterations=1)
    assert ours == pytest.approx(scipy_frechet(*statistics), rel=1e-6)
