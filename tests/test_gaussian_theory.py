"""The λ-mix loops' closed forms (collapsebench.envs.gaussian_theory) against the exact fast path, and
against the closed forms they must reduce to."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pytest

from collapsebench.envs.gaussian_fast import GaussianLineages, simulate_gaussian_lineages
from collapsebench.envs.gaussian_theory import (
    accumulated_moments,
    critical_lambda,
    expected_moments,
    expected_variance_ratio,
    second_moment_recursion,
    stationary_variance_ratio,
)


def real_set_share(lineages: GaussianLineages, n: int, unbiased: bool) -> np.ndarray:
    """Each lineage's real items' share of the expectation, v/E[v] (its generation-0 fit over the
    mean one): the mix and accumulate loops' closed forms hold for every real set scaled by it, so
    dividing by it removes the real sets' noise, which the lineages of one seed share across λ."""
    return lineages.std_ratio[0] ** 2 / (1.0 if unbiased else (n - 1) / n)


def conditional_variance_ratios(lam: float, generations: int, n: int, m: int, unbiased: bool) -> np.ndarray:
    """Each simulated mix lineage's σ̂_t²/σ² divided by its ``real_set_share``."""
    lineages = simulate_gaussian_lineages(
        20_000, generations, "mix", lam=lam, n_real=n, n_synthetic=m, unbiased=unbiased, seed=11
    )
    return lineages.std_ratio**2 / real_set_share(lineages, n, unbiased)


def assert_means_match(pairs: list[tuple[np.ndarray, np.ndarray]], generations: Iterable[int]) -> None:
    """For each (simulated (T + 1, lineages), closed form (T + 1,)) pair, the lineages' mean is the
    closed form within 4 standard errors at each of ``generations``."""
    for t in generations:
        for simulated, closed_form in pairs:
            standard_error = simulated[t].std() / np.sqrt(simulated[t].size)
            error = abs(simulated[t].mean() - closed_form[t])
            assert error < 4 * standard_error, (t, simulated[t].mean(), closed_form[t])


def assert_moments_match(mean_errors: np.ndarray, variance_ratios: np.ndarray, expected: np.ndarray) -> None:
    """Both coordinates of ``expected`` (mean error, variance) at generations 1, 5, 100 and the last."""
    pairs = [(mean_errors, expected[:, 0]), (variance_ratios, expected[:, 1])]
    assert_means_match(pairs, (1, 5, 100, len(expected) - 1))


@pytest.mark.parametrize(
    ("lam", "n", "m", "unbiased", "generations"),
    [
        (0.5, 100, 100, True, 300),
        (16.0, 100, 100, True, 300),
        (64.0, 100, 100, True, 300),
        (4.0, 20, 50, False, 300),
        (float("inf"), 30, 30, True, 20),
    ],
)
def test_the_expected_variance_is_the_simulated_lineages_mean_at_every_generation(
    lam, n, m, unbiased, generations
):
    ratios = conditional_variance_ratios(lam, generations, n, m, unbiased)
    expected = expected_variance_ratio(lam, generations, n, m, unbiased)
    assert_means_match([(ratios, expected)], sorted({1, 5, generations // 3, generations}))


def test_the_closed_forms_reduce_to_the_pure_loops():
    # Real only: the real fit every generation.
    assert np.all(expected_variance_ratio(0.0, 50) == 1.0)
    assert np.allclose(expected_variance_ratio(0.0, 50, unbiased=False), 0.99)
    # Fully synthetic: E[σ̂²] is kept by the unbiased refit and shrinks by (m − 1)/m per generation
    # with the biased one.
    assert np.allclose(expected_variance_ratio(float("inf"), 50), 1.0)
    shrinking = expected_variance_ratio(float("inf"), 50, n_real=30, unbiased=False)
    assert np.allclose(shrinking, (29 / 30) ** (np.arange(51) + 1))
    assert stationary_variance_ratio(float("inf")) == 1.0
    assert stationary_variance_ratio(float("inf"), unbiased=False) == 0.0
    # The limit is where the recursion goes (its relaxation time at λ = 64 is ≈ 115 generations).
    for lam in (0.5, 4.0, 64.0):
        assert expected_variance_ratio(lam, 20_000)[-1] == pytest.approx(
            stationary_variance_ratio(lam), rel=1e-9
        )


def test_the_critical_lambda_is_where_the_expected_variance_stops_having_a_limit():
    critical = critical_lambda()
    assert critical == pytest.approx(201.48, abs=0.01)  # n = m = 100, the Gaussian-mix-v0 world
    assert np.isfinite(stationary_variance_ratio(critical * (1 - 1e-6)))
    assert stationary_variance_ratio(critical * (1 + 1e-6)) == float("inf")
    # Just below the threshold the limit exists but is large; far below it is near 1.
    assert stationary_variance_ratio(critical * 0.99) > 10 > 1.1 > stationary_variance_ratio(16.0) > 1.0
    step, _ = second_moment_recursion(critical)
    assert np.max(np.abs(np.linalg.eigvals(step))) == pytest.approx(1.0, abs=1e-9)
    # It scales with the synthetic sample size (≈ 2m + 1.5), hardly with the real one.
    for m in (20, 100, 1000):
        assert critical_lambda(100, m) == pytest.approx(2 * m + 1.5, abs=0.5)
    assert critical_lambda(10, 100) == pytest.approx(critical, abs=0.2)
    assert critical_lambda(unbiased=False) == float("inf")


def test_beyond_the_critical_lambda_the_mean_variance_grows_while_the_median_lineage_settles():
    above = conditional_variance_ratios(2 * critical_lambda(), 2000, 100, 100, True)
    assert above[2000].mean() > 4 * above[500].mean()  # the closed form: 27.5 against 2.5
    assert 0.5 < np.median(np.sqrt(above[2000])) < 1.0
    below = conditional_variance_ratios(critical_lambda() / 4, 2000, 100, 100, True)
    assert below[2000].mean() == pytest.approx(stationary_variance_ratio(critical_lambda() / 4), rel=0.05)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: expected_variance_ratio(-1.0, 5), "lam must be a number ≥ 0 (or inf), got -1.0"),
        (lambda: expected_variance_ratio(True, 5), "lam must be a number ≥ 0 (or inf), got True"),
        (lambda: expected_variance_ratio(1.0, -1), "generations must be an integer ≥ 0, got -1"),
        (lambda: stationary_variance_ratio(1.0, n_real=1), "n_real must be an integer ≥ 2, got 1"),
        (lambda: stationary_variance_ratio(1.0, n_real=2.5), "n_real must be an integer ≥ 2, got 2.5"),
        (lambda: critical_lambda(100, 1), "n_synthetic must be an integer ≥ 2, got 1"),
    ],
)
def test_bad_worlds_are_named(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


@pytest.mark.parametrize(
    ("lam", "n", "m", "unbiased"),
    [(0.5, 100, 100, True), (64.0, 100, 100, True), (4.0, 20, 50, False)],
)
def test_the_fresh_loops_expected_moments_are_the_simulated_lineages_means(lam, n, m, unbiased):
    # Unconditional this time: every generation's real draw is part of the expectation.
    generations = 300
    lineages = simulate_gaussian_lineages(
        20_000, generations, "fresh", lam=lam, n_real=n, n_synthetic=m, unbiased=unbiased, seed=11
    )
    variance_ratios = lineages.std_ratio**2
    mean_errors = (lineages.mean - lineages.true_mean) ** 2 / lineages.true_std**2
    expected = expected_moments(lam, generations, n, m, unbiased, loop="fresh")
    assert expected[0, 0] == 1 / n  # generation 0 fits the first draw: μ̄ − μ ~ N(0, σ²/n)
    assert_moments_match(mean_errors, variance_ratios, expected)


def test_fresh_real_data_keeps_the_threshold_and_raises_the_limit_a_little():
    # Same M, so the same λ*; the moving real mean adds to b, so every finite λ > 0 settles higher.
    for lam in (0.5, 16.0, 150.0):
        fixed, _ = second_moment_recursion(lam)
        fresh, _ = second_moment_recursion(lam, loop="fresh")
        assert np.array_equal(fixed, fresh)
        ratio = stationary_variance_ratio(lam, loop="fresh") / stationary_variance_ratio(lam)
        assert 1.0 < ratio < 1.02, (lam, ratio)
    critical = critical_lambda()
    assert np.isfinite(stationary_variance_ratio(critical * (1 - 1e-6), loop="fresh"))
    assert stationary_variance_ratio(critical * (1 + 1e-6), loop="fresh") == float("inf")
    # Pure loops: real only refits a new draw every generation; fully synthetic never sees real data.
    assert np.allclose(expected_variance_ratio(0.0, 50, loop="fresh"), 1.0)
    assert np.allclose(expected_variance_ratio(0.0, 50, unbiased=False, loop="fresh"), 0.99)
    assert np.array_equal(
        expected_variance_ratio(float("inf"), 50, loop="fresh"), expected_variance_ratio(float("inf"), 50)
    )
    assert expected_variance_ratio(16.0, 20_000, loop="fresh")[-1] == pytest.approx(
        stationary_variance_ratio(16.0, loop="fresh"), rel=1e-9
    )


def test_a_loop_outside_the_recursion_is_refused_by_name():
    for function, args in (
        (second_moment_recursion, (1.0,)),
        (expected_moments, (1.0, 10)),
        (expected_variance_ratio, (1.0, 10)),
        (stationary_variance_ratio, (1.0,)),
    ):
        with pytest.raises(ValueError, match=r"covers the loops \('mix', 'fresh'\), got 'accumulate' \(.*"):
            function(*args, loop="accumulate")
        with pytest.raises(ValueError, match=r"got 'replace'$"):
            function(*args, loop="replace")


@pytest.mark.parametrize(("n", "m", "unbiased"), [(100, 100, True), (20, 50, False)])
def test_the_accumulate_loops_expected_moments_are_the_simulated_lineages_means(n, m, unbiased):
    generations = 300
    lineages = simulate_gaussian_lineages(
        20_000, generations, "accumulate", n_real=n, n_synthetic=m, unbiased=unbiased, seed=11
    )
    # Conditioned on the real items both moments scale with v/E[v], as on the mix loop.
    share = real_set_share(lineages, n, unbiased)
    variance_ratios = lineages.std_ratio**2 / share
    mean_errors = (lineages.mean - lineages.mean[0]) ** 2 / lineages.true_std**2 / share
    expected = accumulated_moments(generations, n, m, unbiased)
    assert tuple(expected[0]) == (0.0, 1.0 if unbiased else (n - 1) / n)
    assert_moments_match(mean_errors, variance_ratios, expected)


def test_accumulating_keeps_the_fits_moments_bounded_where_replacing_lets_the_mean_wander():
    accumulated = accumulated_moments(100_000)
    # Converged: the last 90,000 generations move both moments by less than 1e-5.
    assert np.abs(accumulated[-1] - accumulated[10_000]).max() < 1e-5
    assert accumulated[-1, 0] == pytest.approx(0.00643, abs=1e-5)
    assert accumulated[-1, 1] == pytest.approx(0.99355, abs=1e-5)
    # The fully synthetic replace loop (λ = ∞): the mean is a random walk of step variance σ²/m.
    replaced = expected_moments(float("inf"), 1000)
    assert np.allclose(replaced[:, 0], np.arange(1001) / 100)
    assert np.allclose(replaced[:, 1], 1.0)
    with pytest.raises(ValueError, match="generations must be an integer ≥ 0, got -1"):
        accumulated_moments(-1)
    with pytest.raises(ValueError, match="n_real must be an integer ≥ 2, got 1"):
        accumulated_moments(10, n_real=1)
