"""The exact sufficient-statistics path is equal in distribution to the sample-based env."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats
from scipy.stats import ks_2samp

import collapsebench as cb
from collapsebench.envs.gaussian import c4
from collapsebench.envs.gaussian_fast import (
    LOOPS,
    expected_std_ratio,
    gaussian_lineages,
    simulate_gaussian_lineages,
)
from collapsebench.metrics import tail_mass
from collapsebench.store import ResultsStore

from conftest import STD_RATIO_ONLY

SAMPLE_PATH = {  # the four loops, and two of the pairs that are a loop at an extreme λ
    "replace": ("Gaussian-replace-v0", "full-synthetic", {}),
    "mix": ("Gaussian-mix-v0", "lambda-mix", {"lam": 1.0}),
    "fresh": ("Gaussian-fresh-v0", "lambda-mix", {"lam": 1.0}),
    "accumulate": ("Gaussian-accumulate-v0", "accumulate", {}),
    "mix, full-synthetic": ("Gaussian-mix-v0", "full-synthetic", {}),
    "fresh, real-only": ("Gaussian-fresh-v0", "real-only", {}),
    "mix, biased estimator": ("Gaussian-mix-v0", "lambda-mix", {"lam": 2.0}),
}
WORLD = {  # overrides of the spec's world; few points, so that the estimator's bias shows
    "mix, biased estimator": {"model_kwargs": {"unbiased": False}, "n_real": 4, "n_synthetic": 4}
}
GENERATIONS, CHECKED = 20, (1, 5, 20)


def sample_path(loop: str, seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """Fitted means and stds of the sample-based env, (generations + 1, seeds)."""
    env_id, policy, kwargs = SAMPLE_PATH[loop]
    env = cb.make(env_id, generations=GENERATIONS, **STD_RATIO_ONLY, **WORLD.get(loop, {}))
    agent = cb.make_policy(policy, **kwargs)
    means, stds = np.empty((GENERATIONS + 1, seeds)), np.empty((GENERATIONS + 1, seeds))
    for seed in range(seeds):
        obs, _ = env.reset(seed=seed)
        for generation in range(GENERATIONS + 1):
            obs, *_ = env.step(agent(obs))
            model = env.unwrapped.model
            means[generation, seed], stds[generation, seed] = model.mean_[0], np.sqrt(model.cov_[0, 0])
    return means, stds


@pytest.mark.parametrize("loop", list(SAMPLE_PATH))
def test_fast_path_is_equal_in_distribution_to_the_sample_path(loop):
    means, stds = sample_path(loop, seeds=300)
    env_id, policy, kwargs = SAMPLE_PATH[loop]
    fast = gaussian_lineages(
        env_id, policy, 4000, kwargs, seed=1, generations=GENERATIONS, **WORLD.get(loop, {})
    )
    for generation in CHECKED:
        # 2 statistics × 3 generations × 7 agents: a Bonferroni-safe level for 42 tests.
        assert ks_2samp(stds[generation], fast.std[generation]).pvalue > 1e-3, (loop, generation, "std")
        assert ks_2samp(means[generation], fast.mean[generation]).pvalue > 1e-3, (loop, generation, "mean")


def test_the_two_sample_test_has_power_against_a_biased_estimator():
    _, stds = sample_path("replace", seeds=300)
    biased = simulate_gaussian_lineages(4000, GENERATIONS, "replace", unbiased=False, seed=1)
    assert ks_2samp(stds[GENERATIONS], biased.std[GENERATIONS]).pvalue < 1e-3


def test_fast_path_mean_follows_c4_and_mixing_is_stable():
    replace = simulate_gaussian_lineages(100_000, 100, "replace", seed=2)
    expected = c4(100) ** (np.arange(101) + 1)
    assert np.allclose(replace.std_ratio.mean(axis=1), expected, atol=0.004)
    for loop in ("mix", "fresh", "accumulate"):
        assert np.all(
            np.abs(simulate_gaussian_lineages(20_000, 100, loop, seed=3).std_ratio.mean(axis=1) - 1) < 0.02
        )


def test_lambda_extremes_are_the_pure_loops():
    real_only = simulate_gaussian_lineages(10, 5, "mix", lam=0.0, seed=4)
    assert np.all(real_only.std == real_only.std[0]) and np.all(real_only.mean == real_only.mean[0])
    synthetic = simulate_gaussian_lineages(1000, 5, "mix", lam=float("inf"), seed=5)
    replace = simulate_gaussian_lineages(1000, 5, "replace", seed=5)
    assert np.allclose(synthetic.std, replace.std)  # same draws, same law


def test_result_depends_on_the_seed_not_on_the_thread_count():
    # 2,500 lineages: two full blocks of random streams and a partial one.
    one_thread = simulate_gaussian_lineages(2500, 40, "fresh", lam=0.5, seed=7, workers=1)
    three_threads = simulate_gaussian_lineages(2500, 40, "fresh", lam=0.5, seed=7, workers=3)
    assert one_thread.mean.shape == (41, 2500)
    assert np.array_equal(one_thread.mean, three_threads.mean)
    assert np.array_equal(one_thread.std, three_threads.std)
    other_seed = simulate_gaussian_lineages(2500, 40, "fresh", lam=0.5, seed=8, workers=3)
    assert not np.array_equal(one_thread.std, other_seed.std)
    assert len(np.unique(one_thread.std[-1])) == 2500  # no two lineages share a stream


@pytest.mark.parametrize("loop", list(LOOPS))
def test_kept_generations_are_the_full_results_rows_bit_for_bit(loop):
    # The kept run first: its rows cannot then be memory the full run left with the same values.
    kept = simulate_gaussian_lineages(
        2500, 40, loop, lam=0.5, seed=7, workers=3, kept_generations=[40, 1, 7, 7]
    )
    everything = simulate_gaussian_lineages(2500, 40, loop, lam=0.5, seed=7, workers=1)
    assert np.array_equal(everything.generations, np.arange(41))
    assert kept.generations.tolist() == [1, 7, 40] and kept.mean.shape == (3, 2500)
    assert np.array_equal(kept.mean, everything.mean[[1, 7, 40]])
    assert np.array_equal(kept.std, everything.std[[1, 7, 40]])
    frame = kept.to_frame()
    assert sorted(set(frame["generation"])) == [1, 7, 40]
    last = frame[(frame["generation"] == 40) & (frame["metric"] == "std_ratio")]["value"]
    assert np.array_equal(last.to_numpy(), everything.std_ratio[40])


def test_kept_generations_through_an_env_id_and_their_validation():
    lineages = gaussian_lineages("Gaussian-mix-v0", "lambda-mix", 10, {"lam": 0.5}, kept_generations=[100])
    assert lineages.generations.tolist() == [100]
    assert np.array_equal(
        lineages.std, gaussian_lineages("Gaussian-mix-v0", "lambda-mix", 10, {"lam": 0.5}).std[[100]]
    )
    for kept, message in [
        ([3], "kept_generations must be one or more generations in 0..2, got [3]"),
        ([], "kept_generations must be one or more generations in 0..2, got []"),
        ([-1], "each kept generation must be an integer ≥ 0, got -1"),
        ([1.5], "each kept generation must be an integer ≥ 0, got 1.5"),
        ("12", "kept_generations must be generations in 0..2, got '12'"),
        (2, "kept_generations must be generations in 0..2, got 2"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            simulate_gaussian_lineages(3, 2, "mix", kept_generations=kept)


def test_exact_tail_mass_is_the_metric_on_many_draws_from_each_fitted_gaussian():
    # A real N(2, 3²) world; each lineage's fitted N(μ̂, σ̂²) scored by the sample-based metric.
    lineages = simulate_gaussian_lineages(4, 30, "replace", n_real=20, mean=2.0, std=3.0, seed=1)
    rng = np.random.default_rng(0)
    real = rng.normal(2.0, 3.0, size=400_000)
    exact = lineages.tail_mass()
    assert np.ptp(exact[-1]) > 0.5  # the lineages have moved apart: the check covers a range
    for mean, std, expected in zip(lineages.mean[-1], lineages.std[-1], exact[-1], strict=True):
        assert tail_mass(real, rng.normal(mean, std, size=400_000)) == pytest.approx(
            expected, rel=0.05, abs=0.01
        )
    assert lineages.tail_mass(tail=0.2)[-1] == pytest.approx(
        (
            stats.norm.cdf((2.0 - 3.0 * stats.norm.ppf(0.9) - lineages.mean[-1]) / lineages.std[-1])
            + stats.norm.sf((2.0 + 3.0 * stats.norm.ppf(0.9) - lineages.mean[-1]) / lineages.std[-1])
        )
        / 0.2
    )
    with pytest.raises(ValueError, match="tail must be a fraction"):
        lineages.tail_mass(tail=1.5)


def test_tidy_frame_and_validation():
    frame = simulate_gaussian_lineages(3, 2, "mix").to_frame()
    assert len(frame) == 3 * 3 * 3 and set(frame["metric"]) == {"std_ratio", "w2_to_truth", "tail_mass"}
    with pytest.raises(ValueError, match="loop must be"):
        simulate_gaussian_lineages(3, 2, "swap")
    for settings, message in [
        ({"n_lineages": 0}, "n_lineages must be an integer ≥ 1, got 0"),
        ({"generations": -1}, "generations must be an integer ≥ 0, got -1"),
        ({"workers": 0}, "workers must be an integer ≥ 1, got 0"),
        ({"std": -1.0}, "std must be a number in (0, inf), got -1.0"),
        ({"mean": float("inf")}, "mean must be a number in (-inf, inf), got inf"),
        ({"unbiased": "no"}, "unbiased must be true or false, got 'no'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            simulate_gaussian_lineages(**{"n_lineages": 3, "generations": 2, "loop": "mix", **settings})
    only_the_real_fit = simulate_gaussian_lineages(5, 0, "replace")
    assert only_the_real_fit.std.shape == (1, 5)


def test_an_env_id_and_policy_pick_the_loop_and_the_spec_gives_the_world():
    def same(a, b):
        return np.array_equal(a.mean, b.mean) and np.array_equal(a.std, b.std)

    mixed = gaussian_lineages("Gaussian-mix-v0", "lambda-mix", 50, {"lam": 0.5}, seed=3, generations=4)
    assert same(mixed, simulate_gaussian_lineages(50, 4, "mix", lam=0.5, seed=3))
    assert not same(mixed, simulate_gaussian_lineages(50, 4, "mix", lam=1.0, seed=3))
    # T from the spec (100); real-only and full-synthetic are λ = 0 and ∞ of the mixed loop.
    real_only = gaussian_lineages("Gaussian-fresh-v0", "real-only", 20, seed=4)
    assert same(real_only, simulate_gaussian_lineages(20, 100, "fresh", lam=0.0, seed=4))
    synthetic = gaussian_lineages("Gaussian-mix-v0", "full-synthetic", 20, seed=5, generations=3)
    assert same(synthetic, simulate_gaussian_lineages(20, 3, "mix", lam=float("inf"), seed=5))
    # Overrides of the world go through, as with cb.make.
    overridden = gaussian_lineages(
        "Gaussian-accumulate-v0",
        "accumulate",
        20,
        seed=6,
        generations=3,
        mean=2.0,
        std=0.5,
        n_real=30,
        n_synthetic=10,
        model_kwargs={"unbiased": False},
    )
    expected = simulate_gaussian_lineages(
        20, 3, "accumulate", mean=2.0, std=0.5, n_real=30, n_synthetic=10, unbiased=False, seed=6
    )
    assert same(overridden, expected) and overridden.true_std == 0.5


@pytest.mark.parametrize(
    ("env_id", "policy", "kwargs", "message"),
    [
        ("GaussianND-mix-v0", "lambda-mix", {}, "covers the 1-D Gaussian worlds"),
        ("GMM2D-mix-v0", "lambda-mix", {}, "covers the 1-D Gaussian worlds"),
        ("Gaussian-mix-v0", "accumulate", {}, "no exact path for accumulate on mix dynamics"),
        ("Gaussian-mix-v0", "filter-likelihood", {}, "no exact path for filter-likelihood(q=0.2"),
        ("Gaussian-mix-v0", "lambda-mix", {"n_eval": 10}, "not n_eval: it simulates"),
        ("Gaussian-mix-v0", "lambda-mix", {"model": "gmm"}, "not model: it simulates"),
        ("Gaussian-mix-v0", "lambda-mix", {"model_kwargs": {"shrink": 1}}, "shrink"),
        ("Gaussian-mixed-v0", "lambda-mix", {}, "unknown env 'Gaussian-mixed-v0'"),
    ],
)
def test_pairs_without_an_exact_path_are_refused_with_the_reason(env_id, policy, kwargs, message):
    with pytest.raises((ValueError, KeyError, TypeError), match=re.escape(message)):
        gaussian_lineages(env_id, policy, 10, **kwargs)


def test_expected_std_ratio_simulates_each_covered_run_as_recorded(tmp_path):
    """From the store's runs table: a run's recorded world (here n_real = 20, and a dynamics override
    that makes Gaussian-mix an accumulating pool) is what gets simulated; runs the exact path does not
    cover (dedup) are left out, and the rows carry the runs' columns, so they plot beside them."""
    store = ResultsStore(tmp_path / "r.sqlite")
    for policy, kwargs, overrides in [
        ("lambda-mix", {"lam": 0.5}, {"n_real": 20}),
        ("accumulate", {}, {"dynamics": "accumulate"}),
        ("dedup", {}, {}),
    ]:
        cb.evaluate(
            "Gaussian-mix-v0",
            policy,
            kwargs,
            seeds=[0],
            generations=2,
            env_kwargs={"n_test": 10, "n_eval": 10, **overrides},
            store=store,
            progress=False,
        )
    expected = expected_std_ratio(store.runs(), n_lineages=500)
    curves = dict(list(expected.groupby("policy")))
    assert set(curves) == {"lambda-mix", "accumulate"}
    mix = simulate_gaussian_lineages(500, 2, "mix", lam=0.5, n_real=20, n_synthetic=100)
    accumulate = simulate_gaussian_lineages(500, 2, "accumulate")
    assert curves["lambda-mix"]["value"].tolist() == list(mix.std_ratio.mean(axis=1))
    assert curves["accumulate"]["value"].tolist() == list(accumulate.std_ratio.mean(axis=1))
    assert curves["lambda-mix"]["params"].iloc[0] == '{"lam":0.5}'
    assert set(curves["lambda-mix"]["env_settings"]) == {'{"dynamics":"mix","n_real":20}'}
    assert expected_std_ratio(store.runs()[store.runs()["policy"] == "dedup"]).empty


def test_expected_std_ratio_reads_an_infinite_lambda_back(tmp_path):
    """The store records λ = inf as the string "inf" (JSON has no infinities): read back, it is the
    fully synthetic mix again, not an error."""
    store = ResultsStore(tmp_path / "r.sqlite")
    cb.evaluate(
        "Gaussian-mix-v0",
        "lambda-mix",
        {"lam": float("inf")},
        seeds=[0],
        generations=2,
        env_kwargs={"n_test": 10, "n_eval": 10},
        store=store,
        progress=False,
    )
    assert store.runs()["policy_params"].tolist() == ['{"lam":"inf"}']
    expected = expected_std_ratio(store.runs(), n_lineages=500)
    fully_synthetic = simulate_gaussian_lineages(500, 2, "mix", lam=float("inf"))
    assert expected["value"].tolist() == list(fully_synthetic.std_ratio.mean(axis=1))
