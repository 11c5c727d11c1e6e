"""Toy 2-D worlds: exact densities, flow models, the new metrics, curation policies and pictures."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import integrate

import collapsebench as cb
from collapsebench.envs.gmm2d import RingMixture
from collapsebench.envs.toy2d import Checkerboard, TwoMoons
from collapsebench.metrics import memorization_fraction, mode_coverage
from collapsebench.models import WeightedData
from collapsebench.plotting import plot_samples
from collapsebench.pool import EMPTY, REAL
from collapsebench.store import ResultsStore

from conftest import TINY_FLOW, rollout

DISTRIBUTIONS = [TwoMoons(), RingMixture(), Checkerboard()]


@pytest.mark.parametrize("distribution", DISTRIBUTIONS, ids=lambda d: type(d).__name__)
def test_densities_integrate_to_one_and_match_their_samples(distribution):
    rng = np.random.default_rng(0)
    grid = np.linspace(-4, 4, 301)
    xx, yy = np.meshgrid(grid, grid)
    density = np.exp(distribution.log_prob(np.stack([xx.ravel(), yy.ravel()], axis=1)))
    assert density.sum() * (grid[1] - grid[0]) ** 2 == pytest.approx(1.0, abs=2e-3)
    samples = distribution.sample(200_000, rng)
    assert np.allclose(np.cov(samples, rowvar=False), distribution.population_covariance, atol=0.01)


def test_moons_log_density_matches_quadrature_over_the_arcs():
    moons = TwoMoons(noise=0.1)
    for point in ([0.0, 1.0], [1.0, -0.5], [0.5, 0.25], [2.0, 0.5]):
        x = np.array(point)

        def arc_density(t, inner, x=x):
            centre = np.array([1 - np.cos(t), 0.5 - np.sin(t)]) if inner else np.array([np.cos(t), np.sin(t)])
            return np.exp(-np.sum((x - centre) ** 2) / 0.02) / (2 * np.pi * 0.01) / np.pi

        expected = 0.5 * sum(
            integrate.quad(arc_density, 0, np.pi, args=(inner,))[0] for inner in (False, True)
        )
        assert moons.log_prob(x[None])[0] == pytest.approx(np.log(expected), abs=1e-5)


def test_checkerboard_density_is_flat_on_dark_squares_and_tiny_on_light_ones():
    board = Checkerboard(blur=0.02)
    dark_centre, light_centre = np.array([[-1.5, -1.5]]), np.array([[-0.5, -1.5]])
    assert board.log_prob(dark_centre)[0] == pytest.approx(np.log(1 / 8), abs=1e-6)
    assert board.log_prob(light_centre)[0] < -100
    assert np.isfinite(board.log_prob(np.array([[50.0, -50.0]]))).all()


@pytest.mark.parametrize("name", ["realnvp", "spline-flow"])
def test_flow_log_likelihood_is_a_normalized_density_and_training_improves_it(name):
    rng = np.random.default_rng(1)
    ring = RingMixture()
    x = ring.sample(800, rng)
    model = cb.make_model(name, initial_steps=150, steps=150, hidden=32, lr=3e-3)
    data = WeightedData.uniform(x)
    model.fit(data, rng)
    grid = np.linspace(-6, 6, 301)
    xx, yy = np.meshgrid(grid, grid)
    density = np.exp(model.log_prob(np.stack([xx.ravel(), yy.ravel()], axis=1)))
    assert density.sum() * (grid[1] - grid[0]) ** 2 == pytest.approx(1.0, abs=0.03)
    held_out = ring.sample(1000, rng)
    before = -model.log_prob(held_out).mean()
    warm = model.clone()
    assert np.allclose(warm.log_prob(held_out), model.log_prob(held_out))  # a copy starts where it was
    warm.fit(data, rng)  # warm start: 150 more steps
    assert -warm.log_prob(held_out).mean() < before


def test_flow_minibatches_follow_the_weights():
    rng = np.random.default_rng(2)
    left = rng.normal(size=(500, 2)) * 0.3 + [-2, 0]
    right = rng.normal(size=(500, 2)) * 0.3 + [2, 0]
    weights = np.r_[np.full(500, 0.8 / 500), np.full(500, 0.2 / 500)]
    model = cb.make_model("spline-flow", initial_steps=300, hidden=32, lr=3e-3)
    model.fit(WeightedData(np.concatenate([left, right]), weights), rng)
    share_left = (model.sample(4000, rng)[:, 0] < 0).mean()
    assert share_left == pytest.approx(0.8, abs=0.06)


def test_flow_envs_report_the_toy_metrics():
    env = cb.make(
        "Rings8-mix-v0",
        generations=1,
        n_real=200,
        n_synthetic=200,
        n_test=200,
        n_eval=200,
        model_kwargs={**cb.spec("Rings8-mix-v0").kwargs["model_kwargs"], **TINY_FLOW},
    )
    obs, _ = env.reset(seed=0)
    _, reward, _, _, info = env.step(cb.make_policy("real-only")(obs))
    for key in ("true_nll_samples", "memorization", "mode_coverage", "nll", "w2"):
        assert np.isfinite(info["metrics"][key]), key
    assert reward == -info["metrics"]["w2"]


def test_mode_coverage_counts_modes_with_their_share():
    ring = RingMixture()
    rng = np.random.default_rng(3)
    assert mode_coverage(ring.sample(2000, rng), ring.modes, radius=0.6) == 1.0
    two_modes = ring.modes[rng.integers(2, size=1000)] + 0.05 * rng.normal(size=(1000, 2))
    assert mode_coverage(two_modes, ring.modes, radius=0.6) == 0.25
    assert mode_coverage(np.zeros((100, 2)), ring.modes, radius=0.6) == 0.0  # all between modes


def test_memorization_separates_copies_from_fresh_draws():
    ring = RingMixture()
    rng = np.random.default_rng(4)
    train = ring.sample(1000, rng)
    assert memorization_fraction(train, train[:300] + 1e-7) == 1.0
    assert 0.4 < memorization_fraction(train, ring.sample(1000, rng)) < 0.75
    # Each sample is judged by its own nearest training item's gap: 0.1 away is a copy of an item
    # whose neighbour is 1 away, not of one whose neighbour is 0.01 away.
    sparse, dense = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[10.0, 0.0], [10.01, 0.0]])
    samples = np.array([[0.0, 0.1], [1.0, 0.1], [10.0, 0.1], [10.01, 0.1]])
    assert memorization_fraction(np.concatenate([sparse, dense]), samples) == 0.5


def _pool_obs(real, synthetic, generation=1, capacity=None):
    samples = np.concatenate([real, synthetic])
    capacity = capacity or len(samples)
    padded = np.zeros((capacity, samples.shape[1]))
    padded[: len(samples)] = samples
    origin = np.full(capacity, EMPTY)
    origin[: len(real)] = REAL
    origin[len(real) : len(samples)] = generation - 1
    valid = (np.arange(capacity) < len(samples)).astype(np.int8)
    return {"samples": padded, "origin": origin, "valid": valid, "generation": np.int64(generation)}


def test_filter_likelihood_keeps_the_more_likely_synthetic_items():
    ring = RingMixture()
    rng = np.random.default_rng(5)
    real = ring.sample(500, rng)
    synthetic = ring.sample(500, rng) * 1.0 + rng.normal(size=(500, 2)) * 0.5  # blurred: some off the ring
    obs = _pool_obs(real, synthetic)
    weights = cb.make_policy("filter-likelihood", q=0.3)(obs)
    kept = weights[500:1000] > 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    assert (weights[:500] == 1).all()
    true_log_density = ring.log_prob(synthetic)
    assert true_log_density[kept].mean() > true_log_density.mean() + 0.3


def test_filter_discriminator_drops_the_detectable_items():
    rng = np.random.default_rng(6)
    real = rng.normal(size=(400, 2))
    good, bad = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) * 0.3 + [3.0, 3.0]
    obs = _pool_obs(real, np.concatenate([good, bad]))
    weights = cb.make_policy("filter-discriminator", keep=0.5)(obs)
    kept_good, kept_bad = (weights[400:600] > 0).sum(), (weights[600:800] > 0).sum()
    assert kept_good + kept_bad == 200 and kept_bad < 20


def test_curate_bt_keeps_one_per_group_favouring_high_reward():
    rng = np.random.default_rng(7)
    synthetic = rng.normal(size=(4000, 2))
    obs = _pool_obs(rng.normal(size=(10, 2)), synthetic)
    policy = cb.make_policy(
        "curate-bt", K=2, beta=1.0, reward="linear", reward_kwargs={"direction": [1.0, 0.0]}
    )
    policy.reset(0)
    kept = cb.make_policy("curate-bt", K=2, beta=0.0)(obs)[10:] > 0
    assert kept.sum() == 2000
    chosen = synthetic[policy(obs)[10:] > 0, 0]
    # Bradley-Terry on pairs of N(0, 1) rewards with β = 1: E[chosen] = E[x1 σ(x1 − x2)] + (sym.) > 0.
    pairs = rng.normal(size=(400_000, 2))
    p_first = 1 / (1 + np.exp(pairs[:, 1] - pairs[:, 0]))
    expected = np.mean(p_first * pairs[:, 0] + (1 - p_first) * pairs[:, 1])
    assert chosen.mean() == pytest.approx(expected, abs=0.06)
    assert synthetic[kept, 0].mean() == pytest.approx(0.0, abs=0.08)  # β = 0: a uniform choice


@pytest.mark.parametrize(
    ("reward", "message"),
    [
        (lambda x: x, "shape (30, 2) for 30 synthetic items: a reward gives one number per item"),
        (lambda x: x[:, :1], "shape (30, 1) for 30 synthetic items"),  # broadcast into wrong choices before
        (lambda x: np.where(x[:, 0] > 0, np.nan, x[:, 0]), "non-finite value(s) for 30 synthetic items"),
    ],
    ids=["per-coordinate", "column", "nan"],
)
def test_curate_bt_refuses_a_reward_that_is_not_one_finite_number_per_item(reward, message):
    rng = np.random.default_rng(0)
    obs = _pool_obs(rng.normal(size=(10, 2)), rng.normal(size=(30, 2)))
    with pytest.raises(ValueError, match=re.escape(message)):
        cb.make_policy("curate-bt", reward=reward)(obs)


def test_curate_bt_raises_the_reward_over_generations():
    env = cb.make(
        "GMM2D-replace-v0",
        generations=6,
        n_real=300,
        n_synthetic=300,
        n_test=100,
        n_eval=300,
        sample_reward="linear",  # the policy's default reward, ⟨(1, 0), x⟩, measured on the samples
    )
    infos = rollout(env, cb.make_policy("curate-bt", K=4, beta=2.0), seed=0)
    rewards = np.array([info["metrics"]["sample_reward"] for info in infos])
    assert rewards[-1] > rewards[0] + 0.5 and np.all(np.diff(rewards) > -0.1)
    # Each generation's own samples (the n_synthetic added to the pool) say the same.
    assert np.allclose(rewards, [info["samples"][:, 0].mean() for info in infos], atol=0.25)


def test_dedup_drops_copies_and_close_neighbours_only():
    real = np.array([[0.0, 0.0], [5.0, 5.0]])
    synthetic = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 1.005], [1.0, 1.5], [5.0, 5.001]])
    weights = cb.make_policy("dedup", eps=0.01)(_pool_obs(real, synthetic))
    assert weights.tolist() == [1, 1, 0, 1, 0, 1, 0]
    # Of two close synthetic items the older generation's is kept, wherever it sits in the pool.
    obs = _pool_obs(real, np.array([[2.0, 2.0], [2.0, 2.005]]), generation=3)
    obs["origin"][2:] = [2, 0]
    assert cb.make_policy("dedup", eps=0.01)(obs).tolist() == [1, 1, 0, 1]


def test_compose_mixes_lambda_times_the_real_mass_over_the_kept_items():
    rng = np.random.default_rng(8)
    ring = RingMixture()
    obs = _pool_obs(ring.sample(300, rng), ring.sample(600, rng) + rng.normal(size=(600, 2)) * 0.3)
    policy = cb.compose(cb.make_policy("filter-likelihood", q=0.5), cb.make_policy("lambda-mix", lam=0.5))
    weights = policy(obs)
    synthetic, real = weights[300:], weights[:300]
    assert (synthetic > 0).sum() == 300  # half the synthetic items survive the filter
    assert synthetic.sum() == pytest.approx(0.5 * real.sum())
    assert policy.name == "filter-likelihood>lambda-mix"
    assert (
        policy.label == "filter-likelihood(q=0.5, reference=kde, reference_kwargs=None)>lambda-mix(lam=0.5)"
    )
    assert policy.params["stages"][1] == {"policy": "lambda-mix", "params": {"lam": 0.5}}
    with pytest.raises(ValueError, match="at least two"):
        cb.compose("dedup")
    with pytest.raises(TypeError, match="compose takes curation policies or their registered names"):
        cb.compose("dedup", lambda obs: obs["valid"])  # not a policy: refused here, not at .name


def test_filters_refuse_a_pool_without_real_items():
    obs = _pool_obs(np.zeros((0, 2)), np.random.default_rng(0).normal(size=(50, 2)))
    for name in ("filter-likelihood", "filter-discriminator"):
        with pytest.raises(ValueError, match="no real items"):
            cb.make_policy(name)(obs)


def test_snapshots_are_saved_and_plotted(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    frame = cb.evaluate(
        "GMM2D-mix-v0",
        "lambda-mix",
        seeds=[0],
        generations=4,
        snapshots=3,
        store=store,
        env_kwargs={"n_real": 80, "n_synthetic": 80, "n_test": 40, "n_eval": 40},
        progress=False,
    )
    (run_id,) = frame["run_id"].unique()
    snapshots = store.load_snapshots(run_id)
    assert sorted(snapshots) == [0, 2, 4]
    assert snapshots[2]["pool"].shape == (160, 2) and snapshots[2]["samples"].shape == (80, 2)
    assert set(snapshots[2]["origin"]) == {REAL, 1}
    png = plot_samples(snapshots, tmp_path / "s.png", title="test")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
