from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import collapsebench as cb
from collapsebench.envs.gmm2d import RingMixture
from collapsebench.models import MODELS, SupportsLogProb, WeightedData

from conftest import TINY_MLP, TINY_UNET


def test_gaussian_uniform_weights_give_the_unbiased_estimator(rng):
    x = rng.normal(size=(50, 3))
    model = cb.make_model("gaussian")
    model.fit(WeightedData.uniform(x), rng)
    assert np.allclose(model.mean_, x.mean(0))
    assert np.allclose(model.covariance(), np.cov(x, rowvar=False, ddof=1))
    biased = cb.make_model("gaussian", unbiased=False)
    biased.fit(WeightedData.uniform(x), rng)
    assert np.allclose(biased.covariance(), np.cov(x, rowvar=False, ddof=0))


def test_gaussian_weights_match_numpy_reliability_weights(rng):
    x, w = rng.normal(size=(40, 2)), rng.random(40)
    model = cb.make_model("gaussian")
    model.fit(WeightedData(x, w / w.sum()), rng)
    assert np.allclose(model.covariance(), np.cov(x, rowvar=False, aweights=w, ddof=1))


def test_gaussian_samples_and_log_prob(rng):
    model = cb.make_model("gaussian")
    model.load_state_dict({"mean": np.array([1.0, -1.0]), "cov": np.array([[2.0, 0.5], [0.5, 1.0]])})
    samples = model.sample(200_000, rng)
    assert np.allclose(samples.mean(0), [1, -1], atol=0.02)
    assert np.allclose(np.cov(samples, rowvar=False), [[2, 0.5], [0.5, 1]], atol=0.03)
    x = rng.normal(size=(5, 2))
    assert np.allclose(model.log_prob(x), multivariate_normal([1, -1], [[2, 0.5], [0.5, 1]]).logpdf(x))


TINY_KWARGS = {
    "realnvp": {"initial_steps": 20, "hidden": 16},
    "spline-flow": {"initial_steps": 20, "hidden": 16},
    "ddpm": TINY_UNET,
    "flow-matching": TINY_UNET,
    "mlp-diffusion": TINY_MLP,
    "mlp-flow-matching": TINY_MLP,
}
IMAGE_MODELS = ("ddpm", "flow-matching", "mlp-diffusion", "mlp-flow-matching")


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_round_trips_through_its_state_dict(name, rng):
    if name in IMAGE_MODELS:
        x = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    else:
        x = RingMixture().sample(300, rng)
    model = cb.make_model(name, **TINY_KWARGS.get(name, {}))
    model.fit(WeightedData.uniform(x), np.random.default_rng(0))
    restored = cb.make_model(name, **TINY_KWARGS.get(name, {}))
    restored.load_state_dict({key: value.copy() for key, value in model.state_dict().items()})
    assert np.allclose(
        model.sample(50, np.random.default_rng(1)), restored.sample(50, np.random.default_rng(1))
    )
    if isinstance(model, SupportsLogProb):
        assert np.allclose(model.log_prob(x[:20]), restored.log_prob(x[:20]))


def _two_clusters(rng):
    """100 items around x = −3 carrying 90% of the weight, 100 around x = +3 carrying 10%."""
    left, right = rng.normal(size=(100, 2)) * 0.3 - [3, 0], rng.normal(size=(100, 2)) * 0.3 + [3, 0]
    weights = np.r_[np.full(100, 0.9 / 100), np.full(100, 0.1 / 100)]
    return WeightedData(np.concatenate([left, right]), weights)


# Enough training for a flow to place its mass (the spline flow needs more steps than RealNVP).
WEIGHTED_KWARGS = {"realnvp": {"initial_steps": 40, "hidden": 16}, "spline-flow": {"initial_steps": 100}}


@pytest.mark.parametrize("name", [name for name in MODELS if name not in IMAGE_MODELS])
def test_every_model_trains_on_the_weighted_distribution(name, rng):
    """The curation policy's weights are the training distribution: a model trained with 90% of the
    weight on the left cluster puts its samples' mean at the weighted mean (−2.4), not at the items'
    mean (0)."""
    model = cb.make_model(name, **WEIGHTED_KWARGS.get(name, {"n_components": 2} if name == "gmm" else {}))
    model.fit(_two_clusters(rng), np.random.default_rng(1))
    assert model.sample(4000, np.random.default_rng(2))[:, 0].mean() == pytest.approx(-2.4, abs=0.3)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_image_models_draw_their_minibatches_with_the_weights(name, rng):
    """The image models' shared training step draws each minibatch with the curation weights: with 90%
    of the weight on dark images, 90% of the images the loss sees are dark."""
    seen: list[float] = []

    class Recording(type(cb.make_model(name))):
        def loss(self, network, x1, generator):
            seen.extend((x1.reshape(len(x1), -1).mean(dim=1) < 0).tolist())  # dark: below mid-grey
            return super().loss(network, x1, generator)

    dark = rng.integers(0, 40, (40, 1, 8, 8), dtype=np.uint8)
    bright = rng.integers(215, 256, (40, 1, 8, 8), dtype=np.uint8)
    weights = np.r_[np.full(40, 0.9 / 40), np.full(40, 0.1 / 40)]
    model = Recording(**{**TINY_KWARGS[name], "initial_images": 2048, "batch_size": 64})
    model.fit(WeightedData(np.concatenate([dark, bright]), weights), np.random.default_rng(1))
    assert len(seen) == 2048 and np.mean(seen) == pytest.approx(0.9, abs=0.03)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_records_its_parameters_with_defaults(name):
    model = cb.make_model(name)
    assert model.name == name
    assert isinstance(model.params, dict)


BAD_SETTINGS = [  # one per kind of check, on every model
    ("gaussian", {"unbiased": "no"}, "unbiased must be true or false, got 'no'"),
    ("gmm", {"n_components": 0}, "n_components must be an integer ≥ 1, got 0"),
    ("gmm", {"max_iter": 2.5}, "max_iter must be an integer ≥ 1, got 2.5"),
    ("gmm", {"covariance_type": "ful"}, "covariance_type must be one of 'full', 'tied', 'diag', 'spherical'"),
    ("gmm", {"tol": -1e-3}, "tol must be a number in [0, inf), got -0.001"),
    ("kde", {"bandwidth": 0}, "bandwidth must be a number > 0, 'scott' or 'silverman', got 0"),
    ("kde", {"bandwidth": "scot"}, "bandwidth must be a number > 0, 'scott' or 'silverman', got 'scot'"),
    ("realnvp", {"steps": -5}, "steps must be an integer ≥ 0, got -5"),
    ("realnvp", {"lr": float("nan")}, "lr must be a number in (0, inf), got nan"),
    ("realnvp", {"threads": 0}, "threads must be an integer ≥ 1, got 0"),
    ("spline-flow", {"tail_bound": 0}, "tail_bound must be a number in (0, inf), got 0"),
    ("spline-flow", {"grad_clip": -1}, "grad_clip must be a number in (0, inf], got -1"),
    ("ddpm", {"ema_decay": 1.0}, "ema_decay must be a number in [0, 1), got 1.0"),
    ("ddpm", {"attention_levels": (4,)}, "attention_levels must index the 4 levels of widths, got (4,)"),
    ("ddpm", {"device": "gpu"}, "device must be 'auto' or a torch device name, got 'gpu'"),
    ("flow-matching", {"widths": ()}, "widths must name at least one level's channel count"),
    ("mlp-diffusion", {"bf16": "yes"}, "bf16 must be true or false, got 'yes'"),
    (
        "mlp-flow-matching",
        {"images_per_generation": 0},
        "images_per_generation must be an integer ≥ 1, got 0",
    ),
]


@pytest.mark.parametrize(("name", "setting", "message"), BAD_SETTINGS, ids=lambda value: str(value)[:40])
def test_a_bad_model_setting_fails_when_the_model_is_built_naming_it(name, setting, message):
    """Not at the first fit, inside a worker, nor silently: a negative step count would train nothing."""
    with pytest.raises(ValueError, match=re.escape(message)):
        cb.make_model(name, **setting)


def test_an_env_with_a_bad_model_setting_fails_when_it_is_made():
    """So a sweep's plan (which builds every cell's env) refuses the grid before any cell runs."""
    with pytest.raises(ValueError, match="bandwidth must be a number > 0"):
        cb.make("GMM2D-mix-v0", model="kde", model_kwargs={"bandwidth": -1})


def test_gmm_recovers_the_ring_modes(rng):
    ring = RingMixture(n_modes=8, radius=2.0, mode_std=0.2)
    model = cb.make_model("gmm", n_components=8)
    model.fit(WeightedData.uniform(ring.sample(4000, rng)), rng)
    distances = np.linalg.norm(model._mixture.means_[:, None] - ring.modes[None], axis=-1)
    assert np.all(distances.min(axis=0) < 0.1)
    assert np.allclose(model.covariance(), ring.population_covariance, atol=0.1)


def test_kde_samples_add_the_kernel_variance(rng):
    x = rng.normal(size=(2000, 1))
    model = cb.make_model("kde", bandwidth=0.5)
    model.fit(WeightedData.uniform(x), rng)
    assert model.sample(100_000, rng).var() == pytest.approx(x.var() + 0.25, rel=0.03)


def test_systematic_resampling_is_the_identity_for_uniform_weights(rng):
    x = np.arange(10.0)[:, None]
    assert sorted(WeightedData.uniform(x).resample(rng)[:, 0]) == list(range(10))


def test_systematic_resampling_counts_are_floor_or_ceil(rng):
    x = np.arange(4.0)[:, None]
    weights = np.array([0.5, 0.25, 0.2, 0.05])
    counts = np.bincount(WeightedData(x, weights).resample(rng, size=20)[:, 0].astype(int), minlength=4)
    assert np.all(np.abs(counts - 20 * weights) < 1)


def test_weighted_data_validates(rng):
    with pytest.raises(ValueError, match="sum to 1"):
        WeightedData(np.zeros((3, 1)), np.array([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="3 samples but 2 weights"):
        WeightedData(np.zeros((3, 1)), np.array([0.5, 0.5]))
    for bad in ([0.5, 0.5, 0.0], [1.5, -0.5, 0.0], [np.nan, 0.5, 0.5], [1.0, np.nan, np.nan]):
        with pytest.raises(ValueError, match="positive and sum to 1"):
            WeightedData(np.zeros((3, 1)), np.array(bad))
    assert len(WeightedData(np.zeros((2, 1)), np.array([0.5, 0.5 + 5e-6]))) == 2  # within tolerance
    assert WeightedData(np.zeros((4, 1)), np.full(4, 0.25)).effective_size == pytest.approx(4)
    # Kish: (Σw)² / Σw² = 1 / (1/4 + 1/16 + 1/16) for weights 1/2, 1/4, 1/4: fewer than the 3 items.
    assert WeightedData(np.zeros((3, 1)), np.array([0.5, 0.25, 0.25])).effective_size == pytest.approx(8 / 3)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_of_every_covariance_type_samples_and_reports_its_covariance(covariance_type, rng):
    """Sampling and ``covariance`` read sklearn's covariances in each of its four layouts: the
    model's samples, its reported covariance and sklearn's own sampler agree."""
    anisotropic = RingMixture(n_modes=4, radius=1.0, mode_std=0.6).sample(3000, rng) * [1.0, 0.5]
    model = cb.make_model("gmm", n_components=4, covariance_type=covariance_type)
    model.fit(WeightedData.uniform(anisotropic), rng)
    samples = model.sample(200_000, rng)
    model._mixture.random_state = 0
    reference, _ = model._mixture.sample(200_000)  # sklearn's sampler, for each layout
    assert np.allclose(np.cov(samples.T), np.cov(reference.T), atol=0.01)
    assert np.allclose(model.covariance(), np.cov(reference.T), atol=0.01)
    assert np.allclose(samples.mean(axis=0), reference.mean(axis=0), atol=0.01)
    assert np.allclose(model.log_prob(anisotropic[:50]), model._mixture.score_samples(anisotropic[:50]))


def test_the_real_gaussian_worlds_density_is_scipys(rng):
    """``GaussianND`` worlds' real density (``true_nll_samples`` reads it): scipy's, in 3-D."""
    from collapsebench.envs.gaussian import GaussianDistribution, rotated_covariance

    cov = rotated_covariance(3, smallest_std=0.3, largest_std=2.0, rotation_seed=1)
    mean = np.array([1.0, -2.0, 0.5])
    real = GaussianDistribution(mean, cov)
    x = real.sample(100_000, rng)
    assert np.allclose(np.cov(x.T), cov, atol=0.05) and np.allclose(real.population_covariance, cov)
    assert np.allclose(real.log_prob(x[:100]), multivariate_normal(mean, cov).logpdf(x[:100]))
    with pytest.raises(ValueError, match=r"covariance \(2, 2\) does not match mean of size 3"):
        GaussianDistribution(mean, np.eye(2))


def test_the_bundled_rewards_follow_their_formulas():
    from collapsebench.rewards import item_rewards, make_reward

    x = np.array([[1.0, 2.0], [-3.0, 0.5], [2.0, 0.0]])
    assert np.array_equal(make_reward("linear")(x), x[:, 0])
    assert np.allclose(make_reward("linear", direction=(0.5, -1.0))(x), x @ [0.5, -1.0])
    with pytest.raises(ValueError, match="direction has 3 entries for 2-d items"):
        make_reward("linear", direction=(1.0, 0.0, 0.0))(x)
    assert np.allclose(make_reward("distance")(x), -np.hypot(x[:, 0] - 2.0, x[:, 1]))  # target (2, 0)
    assert np.allclose(make_reward("distance", target=(0.0, 0.0))(x), -np.linalg.norm(x, axis=1))
    with pytest.raises(ValueError, match="target has 1 entry for 2-d items"):  # not broadcast
        make_reward("distance", target=[0.0])(x)
    for bad in ("ab", [], [1.0, float("nan")], [True, 0.0], 3.0):
        with pytest.raises(ValueError, match="must be a non-empty list of finite numbers"):
            make_reward("distance", target=bad)
        with pytest.raises(ValueError, match="must be a non-empty list of finite numbers"):
            make_reward("linear", direction=bad)
    assert np.allclose(make_reward("linear", direction=np.array([0.5, -1.0]))(x), x @ [0.5, -1.0])
    images = np.arange(2 * 4, dtype=np.uint8).reshape(2, 1, 2, 2)  # items of any shape, flattened
    assert np.array_equal(item_rewards(make_reward("linear"), images), [0.0, 4.0])
