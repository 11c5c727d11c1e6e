"""10,000 lineages × 1,000 generations of the fully synthetic Gaussian loop (n = 100), two ways, side
by side: refitting on n sampled points per generation with numpy, and the exact sufficient-statistics
path (on one thread, and on every core). Goal (issue 6): the exact path ≥ 100× faster. Run:
``make bench``."""

from __future__ import annotations

import numpy as np
import pytest

from collapsebench.envs.gaussian_fast import simulate_gaussian_lineages

LINEAGES, GENERATIONS, N = 10_000, 1_000, 100


def naive_sampling() -> np.ndarray:
    rng = np.random.default_rng(0)
    mean, std = np.zeros(LINEAGES), np.ones(LINEAGES)
    for _ in range(GENERATIONS + 1):
        x = mean[:, None] + std[:, None] * rng.standard_normal((LINEAGES, N))
        mean, std = x.mean(axis=1), x.std(axis=1, ddof=1)
    return std


def test_naive_sampling(benchmark):
    benchmark.group = "gaussian lineages 10k x 1k"
    std = benchmark.pedantic(naive_sampling, rounds=1, iterations=1)
    assert 0.0 < std.mean() < 0.2  # c4(100)^1001 = 0.08


@pytest.mark.parametrize("workers", [1, None], ids=["one-thread", "all-cores"])
def test_sufficient_statistics(benchmark, workers: int | None):
    benchmark.group = "gaussian lineages 10k x 1k"
    # The warm-up round pays the OS once for the 160 MB of results, as a long-lived process would.
    result = benchmark.pedantic(
        simulate_gaussian_lineages,
        args=(LINEAGES, GENERATIONS, "replace"),
        kwargs={"workers": workers},
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    assert 0.0 < result.std_ratio[-1].mean() < 0.2
