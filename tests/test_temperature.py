"""Sampling bias: a model's ``temperature`` τ scales the spread it samples with and leaves its fit
alone. Checked on each model family, in run records, in the Gaussian's exact path and closed forms
(τ enters them as a factor τ² on the sampled variance), and on the phenomenon Alemohammad et al.
report: biased sampling keeps precision while the loop loses recall faster."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from sklearn.mixture import GaussianMixture

import collapsebench as cb
from collapsebench.envs.gaussian import c4
from collapsebench.envs.gaussian_fast import expected_std_ratio, gaussian_lineages, simulate_gaussian_lineages
from collapsebench.envs.gaussian_theory import (
    accumulated_moments,
    critical_lambda,
    expected_moments,
    expected_variance_ratio,
    stationary_variance_ratio,
)
from collapsebench.envs.gmm2d import RingMixture
from collapsebench.first_models import FirstModelCache
from collapsebench.models import WeightedData
from collapsebench.runner import run_key
from collapsebench.store import ResultsStore

from conftest import STD_RATIO_ONLY, TINY_MLP, TINY_UNET, rollout


def fitted_pair(name: str, data: WeightedData, temperature: float, **kwargs):
    """The model at τ = 1 and at ``temperature``, fitted on the same data with the same stream."""
    models = cb.make_model(name, **kwargs), cb.make_model(name, temperature=temperature, **kwargs)
    for model in models:
        model.fit(data, np.random.default_rng(0))
    return models


def assert_same_fit(first, second) -> None:
    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    for key, value in first_state.items():
        assert np.array_equal(value, second_state[key]), key


@pytest.mark.parametrize("name", ["gaussian", "gmm", "kde"])
def test_the_density_at_a_temperature_describes_what_the_model_samples(name, rng):
    """In 1-D, on a fine grid: exp(log_prob) integrates to 1, and its mean and variance are the
    samples'; the fit itself is the same as at τ = 1."""
    x = np.concatenate([rng.normal(-2.0, 0.5, 150), rng.normal(1.5, 0.8, 150)])[:, None]
    kwargs = {"n_components": 2} if name == "gmm" else {}
    plain, cold = fitted_pair(name, WeightedData.uniform(x), 0.5, **kwargs)
    assert_same_fit(plain, cold)
    grid = np.linspace(-16.0, 16.0, 64_001)
    step = grid[1] - grid[0]
    variances = []
    for model in (plain, cold):
        density = np.exp(model.log_prob(grid[:, None]))
        assert density.sum() * step == pytest.approx(1.0, abs=1e-6)
        mean = (grid * density).sum() * step
        variance = ((grid - mean) ** 2 * density).sum() * step
        samples = model.sample(200_000, np.random.default_rng(1))[:, 0]
        assert samples.mean() == pytest.approx(mean, abs=0.015)
        assert samples.var() == pytest.approx(variance, rel=0.015)
        variances.append(variance)
    if name == "kde":  # the items' spread plus the kernel's, whose bandwidth τ scales
        items_variance = x.var()
        bandwidth = plain._kde.bandwidth_
        assert cold._kde.bandwidth_ == pytest.approx(0.5 * bandwidth)
        assert variances == pytest.approx(
            [items_variance + bandwidth**2, items_variance + (0.5 * bandwidth) ** 2]
        )
    else:  # the exact covariance is the density's
        assert [float(model.covariance()[0, 0]) for model in (plain, cold)] == pytest.approx(
            variances, rel=1e-7
        )


def test_the_gaussians_temperature_scales_its_covariance_by_its_square(rng):
    x = rng.normal(size=(60, 3)) @ rng.normal(size=(3, 3))
    plain, warm = fitted_pair("gaussian", WeightedData.uniform(x), 1.3)
    assert np.allclose(warm.covariance(), 1.69 * plain.covariance())
    assert np.array_equal(warm.cov_, plain.cov_)  # the fit is kept as it was
    samples = warm.sample(200_000, np.random.default_rng(2))
    assert np.allclose(
        np.cov(samples, rowvar=False), warm.covariance(), atol=0.05 * np.abs(warm.covariance()).max()
    )


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_a_tempered_mixtures_density_is_scikit_learns_with_the_covariances_scaled(covariance_type, rng):
    x = RingMixture().sample(400, rng)
    plain, cold = fitted_pair(
        "gmm", WeightedData.uniform(x), 0.7, n_components=8, covariance_type=covariance_type
    )
    covariances = 0.49 * plain._full_covariances()
    reference = GaussianMixture(8, covariance_type="full")
    reference.weights_, reference.means_ = plain._mixture.weights_, plain._mixture.means_
    reference.covariances_ = covariances
    reference.precisions_cholesky_ = np.stack(
        [
            linalg.solve_triangular(linalg.cholesky(cov, lower=True), np.eye(2), lower=True).T
            for cov in covariances
        ]
    )
    points = rng.normal(scale=2.5, size=(500, 2))
    assert np.allclose(cold.log_prob(points), reference.score_samples(points), rtol=1e-9, atol=1e-9)
    assert np.allclose(plain.log_prob(points), plain._mixture.score_samples(points))
    between = plain.covariance() - np.einsum("k,kij->ij", plain._mixture.weights_, plain._full_covariances())
    assert np.allclose(
        cold.covariance(), between + np.einsum("k,kij->ij", plain._mixture.weights_, covariances)
    )


@pytest.mark.parametrize("name", ["realnvp", "spline-flow"])
def test_a_flows_temperature_narrows_its_samples_and_its_density_stays_normalized(name, rng):
    x = RingMixture().sample(300, rng)
    plain, cold = fitted_pair(name, WeightedData.uniform(x), 0.5, initial_steps=30, hidden=16)
    assert_same_fit(plain, cold)
    default = cb.make_model(name, initial_steps=30, hidden=16)
    default.load_state_dict(plain.state_dict())
    assert np.array_equal(
        plain.sample(100, np.random.default_rng(3)), default.sample(100, np.random.default_rng(3))
    )
    spreads = [
        np.trace(np.cov(m.sample(20_000, np.random.default_rng(4)), rowvar=False)) for m in (plain, cold)
    ]
    assert spreads[1] < 0.6 * spreads[0]
    axis = np.linspace(-6.0, 6.0, 481)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    mass = np.exp(cold.log_prob(grid)).sum() * (axis[1] - axis[0]) ** 2
    assert mass == pytest.approx(1.0, abs=0.02)
    # Sampling and density both went back to τ = 1: the base distribution is left as it was.
    assert plain._flow.q0.temperature is None and cold._flow.q0.temperature is None


@pytest.mark.parametrize(("name", "tiny"), [("mlp-flow-matching", TINY_MLP), ("ddpm", TINY_UNET)])
def test_an_image_models_temperature_scales_the_noise_it_starts_from(name, tiny, rng):
    starts: list = []

    class Recording(type(cb.make_model(name))):
        def generate(self, network, noise, generator):
            starts.append(noise.clone())
            return super().generate(network, noise, generator)

    images = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    plain, cold = Recording(**tiny), Recording(**tiny, temperature=0.6)
    for model in (plain, cold):
        model.fit(WeightedData.uniform(images), np.random.default_rng(0))
    assert_same_fit(plain, cold)
    for model in (plain, cold):
        model.sample(16, np.random.default_rng(5))
    assert np.allclose(starts[1].numpy(), 0.6 * starts[0].numpy())


def test_a_temperature_is_checked_when_the_model_is_built():
    for value, message in (
        (0, "got 0"),
        (-1.0, "got -1.0"),
        (float("inf"), "got inf"),
        ("cold", "got 'cold'"),
    ):
        with pytest.raises(ValueError, match=f"temperature must be a number in \\(0, inf\\), {message}"):
            cb.make_model("gmm", temperature=value)


def test_the_default_temperature_is_left_out_of_run_records():
    """Records made before models had a temperature still name the same runs; any other τ is kept."""
    policy = cb.make_policy("full-synthetic")
    default = run_key(cb.make("Gaussian-mix-v0").unwrapped, "Gaussian-mix-v0", policy, 0)
    assert default.model_params == '{"unbiased":true}'
    for neutral in (1.0, 1):
        env = cb.make("Gaussian-mix-v0", model_kwargs={"temperature": neutral}).unwrapped
        assert run_key(env, "Gaussian-mix-v0", policy, 0) == default
    tempered = cb.make("Gaussian-mix-v0", model_kwargs={"temperature": 0.8}).unwrapped
    assert tempered.model_params == {"unbiased": True, "temperature": 0.8}
    assert (
        run_key(tempered, "Gaussian-mix-v0", policy, 0).model_params == '{"temperature":0.8,"unbiased":true}'
    )
    # A recorded τ rebuilds the model that ran.
    assert cb.make_model("gaussian", **tempered.model_params).temperature == 0.8
    assert cb.make_model("gaussian").params == {"unbiased": True, "temperature": 1.0}


def test_one_first_model_serves_every_temperature(tmp_path, rng):
    cache = FirstModelCache(tmp_path)
    data = WeightedData.uniform(rng.normal(size=(50, 1)))
    keys = {
        cache.key(cb.make_model("gaussian", temperature=t), data, np.random.default_rng(7))
        for t in (1.0, 0.5, 2.0)
    }
    assert len(keys) == 1
    assert cache.key(cb.make_model("gaussian", unbiased=False), data, np.random.default_rng(7)) not in keys


def test_the_fully_synthetic_gaussian_shrinks_as_tau_c4_to_the_t_plus_one():
    """E[std_ratio_t] = (τ·c4(n))^(t+1): each refit keeps c4 of the sampled spread, which is τ times
    the fit's. Exact path, 100,000 lineages."""
    lineages = simulate_gaussian_lineages(100_000, 60, "replace", temperature=0.98, seed=2)
    expected = (0.98 * c4(100)) ** (np.arange(61) + 1)
    assert np.allclose(lineages.std_ratio.mean(axis=1), expected, atol=0.004)
    assert lineages.std_ratio.mean(axis=1)[-1] < 0.5 * c4(100) ** 61  # far below the unbiased loop's


def test_a_tempered_runs_exact_expectation_is_simulated_at_its_temperature(tmp_path):
    store = ResultsStore(tmp_path / "results.sqlite")
    for temperature in (1.0, 0.9):
        cb.evaluate(
            "Gaussian-replace-v0",
            "full-synthetic",
            seeds=0,
            generations=5,
            model_kwargs={"temperature": temperature},
            env_kwargs=STD_RATIO_ONLY,
            store=store,
            progress=False,
        )
    expected = expected_std_ratio(store.runs(), n_lineages=20_000)
    for temperature, curve in (
        (1.0, expected[expected.model_params == '{"unbiased":true}']),
        (0.9, expected[expected.model_params == '{"temperature":0.9,"unbiased":true}']),
    ):
        closed_form = (temperature * c4(100)) ** (np.arange(6) + 1)
        assert np.all(np.abs(curve.value.to_numpy() - closed_form) < curve.ci95.to_numpy()), temperature


SAMPLE_PATH = {
    "replace": ("Gaussian-replace-v0", "full-synthetic", {}),
    "mix": ("Gaussian-mix-v0", "lambda-mix", {"lam": 1.0}),
    "accumulate": ("Gaussian-accumulate-v0", "accumulate", {}),
}


@pytest.mark.parametrize("loop", list(SAMPLE_PATH))
def test_the_exact_path_at_a_temperature_is_the_sample_path_in_distribution(loop):
    from scipy.stats import ks_2samp

    env_id, policy, kwargs = SAMPLE_PATH[loop]
    world = {"generations": 10, "model_kwargs": {"temperature": 0.9}}
    env = cb.make(env_id, **STD_RATIO_ONLY, **world)
    agent = cb.make_policy(policy, **kwargs)
    ratios = np.array(
        [[info["metrics"]["std_ratio"] for info in rollout(env, agent, seed)] for seed in range(300)]
    ).T  # (generation, seed)
    fast = gaussian_lineages(env_id, policy, 4000, kwargs, seed=1, **world)
    for generation in (1, 5, 10):
        # 3 generations × 3 loops: a Bonferroni-safe level for 9 tests.
        assert ks_2samp(ratios[generation], fast.std_ratio[generation]).pvalue > 1e-3, (loop, generation)
    # And not the τ = 1 loop: the test can tell them apart.
    untempered = gaussian_lineages(env_id, policy, 4000, kwargs, seed=1, generations=10)
    assert ks_2samp(ratios[10], untempered.std_ratio[10]).pvalue < 1e-3


def assert_means_over_lineages_are(*pairs: tuple[np.ndarray, np.ndarray]) -> None:
    """Each (simulated, closed form) pair: the mean over lineages of the simulated (generation,
    lineage) values is the closed form within 4 standard errors, at generations 1, 5, 30 and 100."""
    for t in (1, 5, 30, 100):
        for simulated, closed_form in pairs:
            standard_error = simulated[t].std() / np.sqrt(simulated[t].size)
            assert abs(simulated[t].mean() - closed_form[t]) < 4 * standard_error, (t, closed_form[t])


@pytest.mark.parametrize(
    ("loop", "temperature"), [("mix", 0.9), ("fresh", 0.9), ("mix", 1.05), ("fresh", 1.05)]
)
def test_the_closed_forms_at_a_temperature_are_the_simulated_lineages_means(loop, temperature):
    generations = 100
    lineages = simulate_gaussian_lineages(
        20_000, generations, loop, lam=1.0, temperature=temperature, seed=11
    )
    moments = expected_moments(1.0, generations, loop=loop, temperature=temperature)
    expected = expected_variance_ratio(1.0, generations, loop=loop, temperature=temperature)
    assert np.allclose(expected, temperature**2 * moments[:, 1])
    variance_ratios = lineages.std_ratio**2  # the model's variance: τ²·σ̂_t²
    # The mean's error from the real mean: the fixed real set's (generation 0 fits it) or the true one.
    centre = lineages.mean[0] if loop == "mix" else lineages.true_mean
    mean_errors = (lineages.mean - centre) ** 2
    assert_means_over_lineages_are((variance_ratios, expected), (mean_errors, moments[:, 0]))
    assert expected_variance_ratio(1.0, 20_000, loop=loop, temperature=temperature)[-1] == pytest.approx(
        stationary_variance_ratio(1.0, loop=loop, temperature=temperature), rel=1e-9
    )


@pytest.mark.parametrize("temperature", [0.9, 1.05])
def test_the_accumulated_moments_at_a_temperature_are_the_simulated_lineages_means(temperature):
    generations = 100
    lineages = simulate_gaussian_lineages(20_000, generations, "accumulate", temperature=temperature, seed=11)
    fitted = accumulated_moments(generations, temperature=temperature)
    variance_ratios = lineages.std_ratio**2
    mean_errors = (lineages.mean - lineages.mean[0]) ** 2
    assert_means_over_lineages_are(
        (variance_ratios, temperature**2 * fitted[:, 1]), (mean_errors, fitted[:, 0])
    )


def test_sampling_bias_moves_the_threshold_and_the_fully_synthetic_limit():
    # τ < 1 shrinks the synthetic share's variance: the mix is stable for every λ, and settles lower.
    assert critical_lambda(temperature=0.9) == float("inf")
    assert 0.6 < stationary_variance_ratio(1.0, temperature=0.9) < 0.9 < stationary_variance_ratio(1.0)
    # τ > 1 inflates it: the threshold falls far below the unbiased refit's 201.5.
    assert critical_lambda(temperature=1.05) == pytest.approx(9.4, abs=0.05)
    # Fully synthetic: τ² per generation on top of the unbiased refit's 1.
    assert stationary_variance_ratio(float("inf"), temperature=0.99) == 0.0
    assert stationary_variance_ratio(float("inf"), temperature=1.01) == float("inf")
    assert np.allclose(
        expected_variance_ratio(float("inf"), 30, temperature=0.9), 0.81 ** (np.arange(31) + 1)
    )
    # The biased estimator's (m − 1)/m can be undone by τ² = m/(m − 1): the fit's variance then holds.
    balance = np.sqrt(100 / 99)
    assert stationary_variance_ratio(float("inf"), unbiased=False, temperature=balance) == pytest.approx(
        balance**2 * 0.99
    )


def test_sampling_bias_keeps_precision_and_loses_recall_faster():
    """Alemohammad et al.: a loop fed by biased samples (truncation, guidance: here τ = 0.8) keeps its
    precision, even raises it, while its recall collapses faster than the unbiased loop's."""

    def final_precision_and_recall(temperature: float) -> np.ndarray:
        env = cb.make(
            "GMM2D-mix-v0",
            generations=8,
            n_real=200,
            n_synthetic=200,
            n_test=300,
            n_eval=300,
            model_kwargs={"n_components": 8, "temperature": temperature},
        )
        agent = cb.make_policy("full-synthetic")
        finals = [rollout(env, agent, seed)[-1]["metrics"] for seed in range(4)]
        return np.mean([[final["precision"], final["recall"]] for final in finals], axis=0)

    unbiased, biased = final_precision_and_recall(1.0), final_precision_and_recall(0.8)
    assert biased[0] >= unbiased[0] and biased[0] > 0.95
    assert biased[1] < unbiased[1] - 0.3
