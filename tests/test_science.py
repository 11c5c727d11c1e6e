"""The phenomena the suite exists to measure, checked against theory on the analytic worlds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import collapsebench as cb
from collapsebench.envs.gaussian import c4

# Only the metric under test, on tiny test/eval splits: std_ratio uses the model's exact σ̂.
FAST = {"n_test": 10, "n_eval": 10, "metrics": ("std_ratio", "fd"), "headline_metric": "std_ratio"}


def std_ratio_curves(env_id: str, policy: str, seeds: int, generations: int, **policy_kwargs) -> np.ndarray:
    env = cb.make(env_id, generations=generations, **FAST)
    agent = cb.make_policy(policy, **policy_kwargs)
    curves = np.empty((seeds, generations + 1))
    for seed in range(seeds):
        obs, _ = env.reset(seed=seed)
        for generation in range(generations + 1):
            obs, _, _, _, info = env.step(agent(obs))
            curves[seed, generation] = info["metrics"]["std_ratio"]
    return curves


def test_c4_matches_its_known_values():
    assert c4(100) == pytest.approx(0.99748, abs=1e-5)
    assert c4(100) ** 100 == pytest.approx(0.777, abs=1e-3)
    assert c4(2) == pytest.approx(np.sqrt(2 / np.pi))


@pytest.mark.slow
def test_fully_synthetic_gaussian_shrinks_as_c4_to_the_t_plus_one():
    seeds, generations = 1000, 100
    curves = std_ratio_curves("Gaussian-replace-v0", "full-synthetic", seeds, generations)
    mean = curves.mean(axis=0)
    standard_error = curves.std(axis=0, ddof=1) / np.sqrt(seeds)
    expected = c4(100) ** (np.arange(generations + 1) + 1)
    # Within statistical error at every generation (curves share lineages, hence a wide band)...
    assert np.all(np.abs(mean - expected) < 4.5 * standard_error)
    # ...and distinguishable from the alternatives: no collapse, or the biased (1/n) estimator.
    biased = (c4(100) * np.sqrt(99 / 100)) ** (np.arange(generations + 1) + 1)
    assert (1.0 - mean[-1]) / standard_error[-1] > 6
    assert (mean[-1] - biased[-1]) / standard_error[-1] > 6


@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_lambda_mixing_keeps_the_gaussian_stable(lam):
    curves = std_ratio_curves("Gaussian-mix-v0", "lambda-mix", 200, 100, lam=lam)
    late = curves[:, 50:].mean(axis=0)
    assert np.all(np.abs(late - 1.0) < 0.03)  # c4 bias is 0.003; collapse would reach 0.78 by t = 100
    replace = std_ratio_curves("Gaussian-replace-v0", "full-synthetic", 200, 100)
    assert replace[:, -1].mean() < late[-1] - 0.1


def test_accumulating_stays_bounded_where_replacing_collapses():
    accumulate = std_ratio_curves("Gaussian-accumulate-v0", "accumulate", 200, 60)
    replace = std_ratio_curves("Gaussian-replace-v0", "full-synthetic", 200, 60)
    # Accumulated data keeps the real set's weight ~1/(t+1) but the spread's *expected* decay stalls:
    # the model averages over all generations instead of compounding one draw.
    assert accumulate[:, -1].mean() > 0.95
    assert replace[:, -1].mean() < 0.9
    assert np.all(accumulate.mean(axis=0)[10:] > 0.95)


def test_mix_with_full_synthetic_policy_is_the_replace_loop():
    # Same seeds, same streams: zero weight on the real items of a mix pool is the replace dynamics.
    mix = std_ratio_curves("Gaussian-mix-v0", "full-synthetic", 5, 10)
    replace = std_ratio_curves("Gaussian-replace-v0", "full-synthetic", 5, 10)
    assert np.array_equal(mix, replace)


def test_gmm_ring_loses_recall_when_fully_synthetic_but_not_when_mixed():
    def final_recall(policy: str, **kwargs) -> float:
        env = cb.make("GMM2D-mix-v0", generations=12, n_real=200, n_synthetic=200, n_test=300, n_eval=300)
        agent = cb.make_policy(policy, **kwargs)
        recalls = []
        for seed in range(4):
            obs, _ = env.reset(seed=seed)
            for _ in range(13):
                obs, _, _, _, info = env.step(agent(obs))
            recalls.append(info["metrics"]["recall"])
        return float(np.mean(recalls))

    assert final_recall("full-synthetic") < final_recall("lambda-mix", lam=0.5) - 0.1


def test_tail_mass_follows_each_fitted_gaussian_as_the_loop_collapses():
    """``tail_mass`` on a collapsing loop is the closed form of each fitted N(μ̂, σ̂²): its mass beyond
    the real N(0, 1)'s outer 5% (|x| > z), over 5%, up to the sampling noise of the test split's
    quantile and the n_eval draws."""
    seeds, generations = 20, 40
    env = cb.make(
        "Gaussian-replace-v0",
        generations=generations,
        metrics=("std_ratio", "tail_mass"),
        headline_metric="std_ratio",
    )
    agent = cb.make_policy("full-synthetic")
    z = stats.norm.ppf(0.975)
    measured, closed_form = np.empty((seeds, generations + 1)), np.empty((seeds, generations + 1))
    for seed in range(seeds):
        obs, _ = env.reset(seed=seed)
        for generation in range(generations + 1):
            obs, _, _, _, info = env.step(agent(obs))
            mean, std = env.unwrapped.model.mean_[0], np.sqrt(env.unwrapped.model.cov_[0, 0])
            beyond = stats.norm.cdf((-z - mean) / std) + stats.norm.sf((z - mean) / std)
            measured[seed, generation], closed_form[seed, generation] = (
                info["metrics"]["tail_mass"],
                beyond / 0.05,
            )
    # The lineages spread out: some lose their tails, drifted ones overshoot into one of them.
    assert closed_form[:, -1].min() < 0.1 and closed_form[:, -1].max() > 3
    per_seed_error = (measured - closed_form).mean(axis=1)  # the split's quantile is shared within a seed
    assert abs(per_seed_error.mean()) < 4 * per_seed_error.std(ddof=1) / np.sqrt(seeds) + 0.01
    assert np.corrcoef(measured.ravel(), closed_form.ravel())[0, 1] > 0.9
