from __future__ import annotations

import re

import numpy as np
import pytest

import collapsebench as cb
from collapsebench.policies import POLICIES
from collapsebench.pool import REAL

from conftest import fast_model


def _obs_after(env_id: str, steps: int) -> tuple:
    env = cb.make(env_id, generations=4, **{"n_test": 20, "n_eval": 20, **fast_model(env_id)})
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        obs, *_ = env.step(cb.make_policy("accumulate")(obs))
    return env, obs


@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize(
    ("env_id", "steps"),
    [
        ("Gaussian-mix-v0", 0),
        ("Gaussian-mix-v0", 2),
        ("Gaussian-accumulate-v0", 3),
        ("GMM2D-mix-v0", 2),  # 2-D points
        ("Digits-accumulate-v0", 2),  # uint8 images (n, 1, 8, 8)
    ],
)
def test_every_policy_returns_a_valid_action(name, env_id, steps):
    env, obs = _obs_after(env_id, steps)
    action = cb.make_policy(name)(obs)
    assert env.action_space.contains(np.asarray(action, dtype=np.float64))
    env.unwrapped.training_weights(action)  # accepted by the env's contract


def test_every_policy_trains_the_first_model_on_real_data():
    env, obs = _obs_after("Gaussian-mix-v0", 0)
    for name in POLICIES:
        weights = env.unwrapped.training_weights(cb.make_policy(name)(obs))
        assert weights.sum() == pytest.approx(1.0), name


@pytest.mark.parametrize("lam", [0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
def test_lambda_mix_puts_lambda_times_the_real_mass_on_synthetic_items(lam):
    env, obs = _obs_after("Gaussian-accumulate-v0", 3)  # 100 real, 300 synthetic
    weights = env.unwrapped.training_weights(cb.make_policy("lambda-mix", lam=lam)(obs))
    origin = obs["origin"][: len(weights)]
    synthetic, real = weights[origin >= 0].sum(), weights[origin == REAL].sum()
    assert synthetic == pytest.approx(lam * real)


def test_lambda_mix_infinity_is_fully_synthetic():
    _, obs = _obs_after("Gaussian-mix-v0", 2)
    weights = cb.make_policy("lambda-mix", lam=float("inf"))(obs)
    assert np.array_equal(weights, cb.make_policy("full-synthetic")(obs))


def test_newest_only_and_real_only_select_what_they_say():
    _, obs = _obs_after("Gaussian-accumulate-v0", 3)
    newest = cb.make_policy("newest-only")(obs)
    assert set(obs["origin"][newest > 0]) == {2}
    real = cb.make_policy("real-only")(obs)
    assert set(obs["origin"][real > 0]) == {REAL}
    everything = cb.make_policy("accumulate")(obs)
    assert np.array_equal(everything > 0, obs["valid"] == 1)


def test_real_only_on_a_pool_without_real_data_is_a_clear_error():
    env, obs = _obs_after("Gaussian-replace-v0", 1)
    with pytest.raises(ValueError, match="no weight"):
        env.step(cb.make_policy("real-only")(obs))


def test_a_user_policy_is_one_class_and_one_decorator():
    @cb.register_policy("test-keep-real-and-newest")
    class KeepRealAndNewest(cb.CurationPolicy):
        def __call__(self, obs):
            pool = cb.PoolView(obs)
            return (pool.real | pool.newest).astype(float)

    try:
        env, obs = _obs_after("Gaussian-accumulate-v0", 3)
        weights = cb.make_policy("test-keep-real-and-newest")(obs)
        assert set(obs["origin"][weights > 0]) == {REAL, 2}
        assert cb.make_policy("test-keep-real-and-newest").label == "test-keep-real-and-newest"
        env.step(weights)
    finally:
        POLICIES.unregister("test-keep-real-and-newest")


def test_policy_rng_depends_only_on_seed_and_generation():
    policy = cb.make_policy("accumulate")
    policy.reset(3)
    a = policy.rng_for({"generation": 2}).random()
    policy.reset(3)
    assert policy.rng_for({"generation": 2}).random() == a
    assert policy.rng_for({"generation": 1}).random() != a


def test_each_lineage_seeds_its_policy_and_every_stage_of_a_composition(tmp_path):
    """A stochastic policy's draws belong to the lineage: each seed's run resets the policy (and each
    stage of a composed one) with that seed, so two seeds never share curation randomness."""
    draws: dict[int, list[int]] = {}

    class RecordingDraws(cb.CurationPolicy):
        def __call__(self, obs):
            draws.setdefault(self._seed, []).append(int(self.rng_for(obs).integers(2**31)))
            return np.asarray(obs["valid"], dtype=np.float64)

    POLICIES.register("recording-draws-test")(RecordingDraws)
    try:
        for policy in (
            cb.make_policy("recording-draws-test"),
            cb.compose(cb.make_policy("lambda-mix"), cb.make_policy("recording-draws-test")),
        ):
            draws.clear()
            cb.evaluate(
                "Gaussian-mix-v0", policy, seeds=[3, 4], generations=2, store=tmp_path / "r.sqlite",
                env_kwargs={"n_test": 20, "n_eval": 20}, progress=False,
            )  # fmt: skip
            assert sorted(draws) == [3, 4] and all(len(seen) == 3 for seen in draws.values())
            assert draws[3] != draws[4]
    finally:
        POLICIES.unregister("recording-draws-test")


def test_policy_label_and_params_record_defaults():
    assert cb.make_policy("lambda-mix").params == {"lam": 1.0}
    assert cb.make_policy("lambda-mix", lam=0.5).label == "lambda-mix(lam=0.5)"


BAD_SETTINGS = [
    ("lambda-mix", {"lam": -0.5}, "lam must be a number ≥ 0 (or inf), got -0.5"),
    ("lambda-mix", {"lam": True}, "lam must be a number ≥ 0 (or inf), got True"),
    ("filter-likelihood", {"q": 1.0}, "q must be a number in [0, 1), got 1.0"),
    ("filter-likelihood", {"reference": "kdee"}, "unknown model 'kdee'"),
    ("filter-likelihood", {"reference_kwargs": {"bandwidth": -1}}, "bandwidth must be a number > 0"),
    ("filter-likelihood", {"reference": "ddpm"}, "reference model 'ddpm' has no log-likelihood"),
    ("filter-discriminator", {"keep": 0}, "keep must be a number in (0, 1], got 0"),
    ("filter-discriminator", {"hidden": (32, 0)}, "hidden must be an integer ≥ 1, got 0"),
    ("filter-discriminator", {"max_iter": 0}, "max_iter must be an integer ≥ 1, got 0"),
    ("curate-bt", {"K": 1}, "K must be an integer ≥ 2, got 1"),
    ("curate-bt", {"beta": float("nan")}, "beta must be a number in (-inf, inf), got nan"),
    ("dedup", {"eps": float("nan")}, "eps must be a number in (0, inf), got nan"),
]


@pytest.mark.parametrize(("name", "setting", "message"), BAD_SETTINGS, ids=lambda value: str(value)[:40])
def test_a_bad_policy_setting_fails_when_the_policy_is_built_naming_it(name, setting, message):
    """Not at the first generation with synthetic items, and not silently (NaN compares False)."""
    with pytest.raises((ValueError, KeyError), match=re.escape(message)):
        cb.make_policy(name, **setting)
