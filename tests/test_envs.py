"""Every registered env: gymnasium's checker, determinism, the pool dynamics, the action contract."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import collapsebench as cb
from collapsebench.pool import EMPTY, REAL
from collapsebench.rewards import REWARDS
from collapsebench.runner import env_config
from collapsebench.scoring import METRICS

from conftest import TINY_MLP, fast_model, rollout, tiny_overrides

ALL_ENVS = cb.list_envs()
IMAGE_FAMILIES = ("Digits-", "MNIST-", "CIFAR-", "FFHQ64-")
# Rollout tests run every non-image env, and each image world once (its mix variant): the dynamics
# are the same code for every world and are tested on the cheap ones; check_env runs on all.
ROLLOUT_ENVS = [env_id for env_id in ALL_ENVS if not env_id.startswith(IMAGE_FAMILIES) or "-mix-" in env_id]


def test_the_catalog_holds_every_family_and_dynamics():
    families = ("Gaussian", "GaussianND", "GMM2D", "Moons", "Rings8", "Checkerboard")
    image_families = ("Digits", "MNIST", "CIFAR", "FFHQ64")
    for family in (*families, *image_families):
        for dynamics in ("replace", "mix", "accumulate", "fresh"):
            assert f"{family}-{dynamics}-v0" in ALL_ENVS

    def without_sizes(kwargs: dict) -> dict:
        return {key: value for key, value in kwargs.items() if key not in ("n_real", "n_synthetic")}

    for family in image_families:
        v0, v1 = cb.spec(f"{family}-fresh-v0").kwargs, cb.spec(f"{family}-fresh-v1").kwargs
        assert v1["n_real"] == v1["n_synthetic"] == v0["n_real"] // 2
        assert f"n_synthetic = {v1['n_real']:,})" in cb.env_doc(f"{family}-fresh-v1")  # the doc says so
        assert without_sizes(v1) == without_sizes(v0)


def has_newer_version(env_id: str) -> bool:
    name, version = env_id.rsplit("-v", 1)
    return f"{name}-v{int(version) + 1}" in ALL_ENVS


@pytest.mark.parametrize("env_id", ALL_ENVS)
def test_check_env_passes_with_the_spec_defaults(env_id):
    if has_newer_version(env_id):  # kept so that old results can be re-run, and gymnasium says so
        with pytest.warns(DeprecationWarning, match=f"{re.escape(env_id)} is out of date"):
            env = cb.make(env_id, **fast_model(env_id))
    else:
        env = cb.make(env_id, **fast_model(env_id))
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ROLLOUT_ENVS)
def test_same_seed_same_metrics_and_different_seed_different(env_id):
    policy = cb.make_policy("lambda-mix", lam=0.5)
    first = rollout(cb.make(env_id, **tiny_overrides(env_id)), policy, seed=7)
    second = rollout(cb.make(env_id, **tiny_overrides(env_id)), policy, seed=7)
    other = rollout(cb.make(env_id, **tiny_overrides(env_id)), policy, seed=8)
    assert [i["metrics"] for i in first] == [i["metrics"] for i in second]
    assert [i["metrics"] for i in first] != [i["metrics"] for i in other]


@pytest.mark.parametrize("env_id", ROLLOUT_ENVS)
def test_episode_truncates_after_T_plus_one_generations(env_id):
    env = cb.make(env_id, **tiny_overrides(env_id))
    infos = rollout(env, cb.make_policy("accumulate"), seed=0)
    assert [info["generation"] for info in infos] == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="reset"):
        env.unwrapped.step(np.ones(env.action_space.shape))


def test_gymnasium_make_builds_the_same_env():
    ours = rollout(cb.make("Gaussian-mix-v0", generations=2), cb.make_policy("real-only"), seed=3)
    theirs = rollout(
        gym.make("collapsebench/Gaussian-mix-v0", generations=2), cb.make_policy("real-only"), seed=3
    )
    assert [i["metrics"] for i in ours] == [i["metrics"] for i in theirs]


def test_overrides_replace_spec_defaults_and_are_recorded():
    env = cb.make("Gaussian-mix-v0", generations=5, n_real=30, model="kde")
    assert env.unwrapped.generations == 5 and env.unwrapped.n_real == 30
    assert env.unwrapped.model_name == "kde"
    assert env.unwrapped.config["n_real"] == 30
    with pytest.raises(TypeError):
        cb.make("Gaussian-mix-v0", no_such_option=1)


def test_step_before_reset_is_an_error():
    env = cb.make("Gaussian-mix-v0").unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.ones(env.capacity))


def _origins_after(env_id: str, policy: str, generations: int) -> list[np.ndarray]:
    env = cb.make(env_id, generations=generations, n_test=20, n_eval=20)
    obs, _ = env.reset(seed=0)
    origins = [obs["origin"][obs["valid"] == 1]]
    p = cb.make_policy(policy)
    for _ in range(generations + 1):
        obs, *_ = env.step(p(obs))
        origins.append(obs["origin"][obs["valid"] == 1])
    return origins


def test_replace_dynamics_keeps_only_the_newest_samples():
    origins = _origins_after("Gaussian-replace-v0", "full-synthetic", 3)
    assert (origins[0] == REAL).all() and len(origins[0]) == 100
    for generation, origin in enumerate(origins[1:]):
        assert (origin == generation).all() and len(origin) == 100


def test_mix_dynamics_keeps_the_real_set_and_the_newest_samples():
    env = cb.make("Gaussian-mix-v0", generations=3, n_test=20, n_eval=20)
    obs, _ = env.reset(seed=0)
    real = obs["samples"][obs["origin"] == REAL].copy()
    policy = cb.make_policy("lambda-mix")
    for generation in range(4):
        obs, *_ = env.step(policy(obs))
        origin = obs["origin"]
        assert np.array_equal(obs["samples"][origin == REAL], real)
        assert set(origin[obs["valid"] == 1]) == {REAL, generation}
    # The env's pool cannot be edited in place (by a policy holding env.pool, say): its arrays are
    # read-only, and the observation is a copy a policy may change freely.
    for array in (env.unwrapped.pool.samples, env.unwrapped.pool.origin):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 7
    obs["samples"][0] = 7.0
    assert env.unwrapped.pool.samples[0] != 7.0


def test_accumulate_dynamics_keeps_everything_and_fills_capacity_exactly():
    origins = _origins_after("Gaussian-accumulate-v0", "accumulate", 3)
    assert [len(o) for o in origins] == [100, 200, 300, 400, 500]
    assert sorted(set(origins[-1])) == [REAL, 0, 1, 2, 3]
    env = cb.make("Gaussian-accumulate-v0", generations=3).unwrapped
    assert env.capacity == 500


def test_fresh_dynamics_draws_new_real_data_each_generation():
    env = cb.make("Gaussian-fresh-v0", generations=2, n_test=20, n_eval=20)
    obs, _ = env.reset(seed=0)
    policy = cb.make_policy("lambda-mix")
    reals = [obs["samples"][obs["origin"] == REAL].copy()]
    for _ in range(2):
        obs, *_ = env.step(policy(obs))
        reals.append(obs["samples"][obs["origin"] == REAL].copy())
    assert all(len(r) == 100 for r in reals)
    assert not np.array_equal(reals[0], reals[1]) and not np.array_equal(reals[1], reals[2])


def _real_images_per_generation(env_id: str) -> list[set[bytes]]:
    env = cb.make(env_id, generations=2, n_test=40, n_eval=40, model_kwargs=TINY_MLP)
    obs, _ = env.reset(seed=0)
    policy, reals = cb.make_policy("lambda-mix"), []
    for _ in range(3):
        obs, *_ = env.step(policy(obs))
        reals.append({image.tobytes() for image in obs["samples"][obs["origin"] == REAL]})
    return reals


def test_fresh_images_are_new_draws_only_below_the_whole_train_split():
    """What the image envs' docstrings say: a finite split drawn whole each generation is the same
    images (fresh-v0 at its defaults runs as mix-v0); fresh-v1 draws half the split, new each time."""
    with pytest.warns(DeprecationWarning, match="Digits-fresh-v0 is out of date"):
        whole = _real_images_per_generation("Digits-fresh-v0")
    assert len(whole[0]) > 1000 and whole[0] == whole[1] == whole[2]
    half = _real_images_per_generation("Digits-fresh-v1")
    assert all(len(draw) == 650 for draw in half)  # 8×8 digits: no two alike in the split
    assert all(len(half[g] & half[g + 1]) < 450 for g in range(2))  # ≈ 325 shared by chance


def test_observation_marks_empty_slots():
    env = cb.make("Gaussian-accumulate-v0", generations=3)
    obs, _ = env.reset(seed=0)
    assert obs["valid"].sum() == 100
    assert (obs["origin"][100:] == EMPTY).all() and (obs["samples"][100:] == 0).all()
    assert env.observation_space.contains(obs)


BAD_ACTIONS = {
    "wrong shape": (lambda cap: np.ones(cap + 1), r"shape \(500,\)"),
    "nan": (lambda cap: np.r_[np.nan, np.ones(cap - 1)], "NaN or infinite weights at slots \\[0\\]"),
    "infinite": (
        lambda cap: np.r_[np.ones(3), np.inf, -np.inf, np.ones(cap - 5)],
        "NaN or infinite weights at slots \\[3, 4\\]",
    ),
    "negative": (lambda cap: np.r_[-0.5, np.ones(cap - 1)], "negative weights at slots \\[0\\]"),
    "above one": (lambda cap: np.r_[2.0, np.ones(cap - 1)], "above 1"),
    "all on empty slots": (lambda cap: np.r_[np.zeros(200), np.ones(cap - 200)], "empty slots"),
    "no weight": (lambda cap: np.zeros(cap), "no weight"),
    "not numbers": (lambda cap: np.array(["a"] * cap), "numeric"),
    "complex": (lambda cap: np.full(cap, 0.5 + 0.5j), "real weights; got complex numbers"),
}


@pytest.mark.parametrize("case", list(BAD_ACTIONS))
def test_invalid_actions_raise_and_change_nothing(case):
    make_action, message = BAD_ACTIONS[case]
    good = cb.make_policy("lambda-mix")
    reference = cb.make("Gaussian-accumulate-v0", generations=3, n_test=30, n_eval=30)
    obs_ref, _ = reference.reset(seed=1)
    reference.step(good(obs_ref))
    obs_ref, *_ = reference.step(good(reference.unwrapped._observation()))

    env = cb.make("Gaussian-accumulate-v0", generations=3, n_test=30, n_eval=30)  # 200 of 500 slots used
    obs, _ = env.reset(seed=1)
    obs, *_ = env.step(good(obs))
    before = env.unwrapped.checkpoint()
    with pytest.raises(ValueError, match=message):
        env.step(make_action(env.unwrapped.capacity))
    after = env.unwrapped.checkpoint()
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[key], after[key]) for key in before)
    # And the lineage goes on exactly as if the bad action had never been sent.
    obs, *_ = env.step(good(obs))
    assert all(np.array_equal(obs[key], obs_ref[key]) for key in obs)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_streams_are_numpys_default_rng_of_root_seed_stream_and_index(seed):
    # The env hashes each episode's seeds together at reset, for speed; the bits must not change.
    env = cb.make("Gaussian-fresh-v0", generations=3).unwrapped
    env.reset(seed=seed)
    root = env._root_seed
    for stream, index in [(1, 0), (1, 1), (2, 0), (3, 3), (5, 2), (6, 3), (4, 4), (6, 2**32 + 5)]:
        expected = np.random.default_rng([root, stream, index]).bit_generator.state
        assert env._rng(stream, index).bit_generator.state == expected


def test_each_stage_of_a_step_draws_from_its_own_stream():
    """Training, the pool's new samples, the evaluation samples and the metrics' seed each have a
    stream of their own (per generation): the samples a model is scored on are not the samples it
    added to the pool, changing n_eval changes no item of the pool, and sliced W2's directions change
    with the generation."""
    recorded: list[np.ndarray] = []
    gaussian = type(cb.make_model("gaussian"))

    class RecordingGaussian(gaussian):
        def sample(self, n, rng):
            recorded.append(samples := super().sample(n, rng))
            return samples

    seeds: list[int] = []
    METRICS.register("seed-probe-test")(lambda evaluation: seeds.append(evaluation.seed) or 0.0)
    pools = []
    try:
        for n_eval in (20, 50):
            recorded.clear()
            env = cb.make(
                "Gaussian-mix-v0", generations=2, n_test=20, n_eval=n_eval, model=RecordingGaussian(),
                metrics=("fd", "seed-probe-test"),
            )  # fmt: skip
            obs, _ = env.reset(seed=0)
            for _ in range(3):
                obs, *_ = env.step(np.asarray(obs["valid"], dtype=np.float64))
            pools.append(obs["samples"])
            new_samples, evaluated = recorded[0], recorded[1]  # generation 0: n_synthetic, then n_eval
            assert len(new_samples) == 100 and len(evaluated) == n_eval
            assert not np.isin(evaluated, new_samples).any()
    finally:
        METRICS.unregister("seed-probe-test")
    assert np.array_equal(pools[0], pools[1])
    assert seeds[:3] == seeds[3:] and len(set(seeds[:3])) == 3  # per generation, the same per episode


def test_weight_on_empty_slots_is_ignored_when_valid_items_have_weight():
    env = cb.make("Gaussian-accumulate-v0", generations=2, n_test=30, n_eval=30)
    env.reset(seed=0)
    padded = env.unwrapped.training_weights(np.ones(env.unwrapped.capacity))
    assert padded.shape == (100,) and np.allclose(padded, 0.01)


def test_checkpoint_restore_continues_identically():
    policy = cb.make_policy("lambda-mix", lam=0.5)
    straight = rollout(
        cb.make("GMM2D-mix-v0", n_real=60, n_synthetic=60, n_test=40, n_eval=40, generations=4),
        policy,
        seed=5,
    )
    env = cb.make("GMM2D-mix-v0", n_real=60, n_synthetic=60, n_test=40, n_eval=40, generations=4)
    first = rollout(env, policy, seed=5, steps=2)
    state = env.unwrapped.checkpoint()
    resumed = cb.make("GMM2D-mix-v0", n_real=60, n_synthetic=60, n_test=40, n_eval=40, generations=4)
    resumed.reset(seed=5)
    obs = resumed.unwrapped.restore(state)
    rest = []
    for _ in range(3):
        obs, _, _, _, info = resumed.step(policy(obs))
        rest.append(info)
    assert [i["metrics"] for i in first + rest] == [i["metrics"] for i in straight]


def test_restore_refuses_a_checkpoint_of_another_seed():
    env = cb.make("Gaussian-mix-v0", generations=2)
    env.reset(seed=1)
    state = env.unwrapped.checkpoint()
    env.reset(seed=2)
    with pytest.raises(ValueError, match="another seed"):
        env.unwrapped.restore(state)


@pytest.mark.parametrize(
    "env_id",
    [
        "Gaussian-mix-v0",
        "GaussianND-mix-v0",
        "GMM2D-mix-v0",
        "Moons-mix-v0",
        "Rings8-mix-v0",
        "Checkerboard-mix-v0",
        "Digits-mix-v0",
        "MNIST-mix-v0",
        "CIFAR-mix-v0",
        "FFHQ64-mix-v0",
    ],
)
def test_env_docs_state_observation_action_reward_termination_and_history(env_id):
    doc = cb.env_doc(env_id)
    for section in ("Observation", "Action", "Reward", "Termination", "Defaults", "Version history"):
        assert re.search(rf"\*\*{section}", doc), f"{env_id} doc lacks {section}"


def test_reward_is_minus_the_headline_metric():
    env = cb.make("GMM2D-mix-v0", generations=1, n_real=60, n_synthetic=60, n_test=40, n_eval=40)
    obs, _ = env.reset(seed=0)
    _, reward, _, _, info = env.step(cb.make_policy("real-only")(obs))
    assert reward == -info["metrics"]["w2"]


@pytest.fixture
def recorded_reward():
    """A registered reward r(x) = 3x + 1 that keeps every array it scores."""
    seen: list[np.ndarray] = []

    @cb.register_reward("test-recorded-affine")
    def affine_reward():
        def reward(x: np.ndarray) -> np.ndarray:
            seen.append(np.array(x))
            return 3.0 * x[:, 0] + 1.0

        return reward

    yield seen
    REWARDS.unregister("test-recorded-affine")


def test_sample_reward_is_the_mean_reward_of_the_models_samples_and_changes_nothing_else(recorded_reward):
    overrides = {"generations": 2, "n_eval": 400}
    plain = rollout(cb.make("Gaussian-mix-v0", **overrides), cb.make_policy("lambda-mix", lam=1.0), seed=3)
    env = cb.make("Gaussian-mix-v0", sample_reward="test-recorded-affine", **overrides)
    assert [probe.tolist() for probe in recorded_reward] == [[[0.0], [0.0]]]  # make checks its shape
    recorded_reward.clear()
    obs, _ = env.reset(seed=3)
    policy = cb.make_policy("lambda-mix", lam=1.0)
    policy.reset(3)
    for generation in range(3):
        obs, _, _, _, info = env.step(policy(obs))
        samples = recorded_reward[-1]
        assert len(recorded_reward) == generation + 1 and samples.shape == (400, 1)  # the n_eval samples
        assert info["metrics"]["sample_reward"] == pytest.approx(np.mean(3.0 * samples + 1.0), rel=1e-12)
        model = env.unwrapped.model  # they are the model's: N(mean_, cov_)
        assert abs(samples.mean() - model.mean_[0]) < 5 * np.sqrt(model.cov_[0, 0] / 400)
        others = {key: value for key, value in info["metrics"].items() if key != "sample_reward"}
        assert others == plain[generation]["metrics"]  # a measurement only: same draws, same numbers


def test_a_sample_reward_is_recorded_in_the_run_config_only_when_set():
    without = json.loads(env_config(cb.make("GMM2D-mix-v0").unwrapped))
    assert "sample_reward" not in without and "sample_reward_kwargs" not in without
    env = cb.make("GMM2D-mix-v0", sample_reward="linear", sample_reward_kwargs={"direction": [0.0, 1.0]})
    config = json.loads(env_config(env.unwrapped))
    assert config["sample_reward"] == "linear" and config["sample_reward_kwargs"] == {"direction": [0.0, 1.0]}
    assert env.unwrapped.metrics[-1] == "sample_reward"
    assert {key: value for key, value in config.items() if not key.startswith("sample_reward")} == without


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"metrics": ("fd", "sample_reward")}, ValueError, "needs a reward: pass sample_reward=NAME"),
        ({"sample_reward_kwargs": {"direction": [1.0]}}, ValueError, "only apply with a sample_reward"),
        ({"sample_reward": np.sum}, ValueError, "register the function with cb.register_reward"),
        ({"sample_reward": "linaer"}, KeyError, "unknown reward 'linaer'; registered: distance, linear"),
        ({"metrics": ("fd", "tail_mas")}, KeyError, "unknown metric 'tail_mas'; registered: coverage"),
        ({"metrics": "fd"}, ValueError, "metrics must be a sequence of metric names, got the string 'fd'"),
        # Parameters that do not fit the env's items: found by scoring two zero items, not at step 0.
        (
            {"sample_reward": "linear", "sample_reward_kwargs": {"direction": [1.0, 0.0]}},
            ValueError,
            "the reward 'linear' cannot score items of shape (1,): the linear reward's direction has 2 "
            "entries for 1-d items",
        ),
        (
            {"sample_reward": "distance"},  # its default target (2, 0) is a point of the plane
            ValueError,
            "the reward 'distance' cannot score items of shape (1,): the distance reward's target has 2 "
            "entries for 1-d items",
        ),
        (
            {"sample_reward": "distance", "sample_reward_kwargs": {"target": "a"}},
            ValueError,
            "target must be a non-empty list of finite numbers, got 'a'",
        ),
    ],
)
def test_a_bad_sample_reward_or_metric_is_refused_when_the_env_is_made(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        cb.make("Gaussian-mix-v0", **kwargs)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("Gaussian-mix-v0", {"std": -1.0}, "std must be a number in (0, inf), got -1.0"),
        ("Gaussian-mix-v0", {"mean": float("nan")}, "mean must be a number in (-inf, inf), got nan"),
        ("Gaussian-mix-v0", {"n_synthetic": 0}, "n_synthetic must be an integer ≥ 1, got 0"),
        ("Gaussian-mix-v0", {"nearest_k": 0}, "nearest_k must be an integer ≥ 1, got 0"),
        ("Gaussian-mix-v0", {"n_test": 3}, "n_test must be an integer ≥ 4, got 3"),  # nearest_k + 1
        ("Gaussian-mix-v0", {"warm_start": "no"}, "warm_start must be true or false, got 'no'"),
        ("Gaussian-mix-v0", {"w2_exact_max_pairs": -1}, "w2_exact_max_pairs must be an integer ≥ 0, got -1"),
        ("GaussianND-mix-v0", {"largest_std": 0.1}, "largest_std must be a number in [0.5, inf), got 0.1"),
        ("GaussianND-mix-v0", {"dim": 0}, "dim must be an integer ≥ 1, got 0"),
        ("GMM2D-mix-v0", {"n_modes": 2}, "n_modes must be an integer ≥ 3, got 2"),
        ("GMM2D-mix-v0", {"mode_std": -0.2}, "mode_std must be a number in (0, inf), got -0.2"),
        ("Moons-mix-v0", {"noise": 0}, "noise must be a number in (0, inf), got 0"),
        ("Checkerboard-mix-v0", {"blur": -0.02}, "blur must be a number in (0, inf), got -0.02"),
    ],
)
def test_a_bad_world_or_env_setting_is_refused_when_the_env_is_made(env_id, kwargs, message):
    """Not at the first step (n_synthetic = -3 failed there in a broadcast), nor silently: a negative
    std drew the same world as its absolute value, and warm_start = 'no' counted as true."""
    with pytest.raises(ValueError, match=re.escape(message)):
        cb.make(env_id, **kwargs)


def test_a_real_set_smaller_than_the_model_can_train_on_is_refused_when_the_env_is_made():
    """Generation 0 trains on the real set alone: fewer items than the model needs fail for certain."""
    for env_id, kwargs, message in [
        ("GMM2D-mix-v0", {"n_real": 7}, "n_real=7 is too few: model 'gmm' trains on at least 8 items"),
        (
            "GMM2D-mix-v0",
            {"n_real": 3, "model_kwargs": {"n_components": 4}},
            "model 'gmm' trains on at least 4",
        ),
        (
            "Gaussian-mix-v0",
            {"n_real": 1},
            "n_real=1 is too few: model 'gaussian' trains on at least 2 items",
        ),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            cb.make(env_id, **kwargs)
    smallest = cb.make("GMM2D-mix-v0", n_real=8, n_test=10, n_eval=10, generations=1)
    obs, _ = smallest.reset(seed=0)
    smallest.step(obs["valid"].astype(float))  # eight items train eight components
    # A policy may still keep fewer items than the model needs: the step refuses, changing nothing.
    fewer = obs["valid"].astype(float)
    fewer[4:] = 0.0
    with pytest.raises(ValueError, match="4 training items for 8 mixture components"):
        smallest.step(fewer)
    assert smallest.unwrapped.generation == 1


def test_a_misspelt_setting_is_named_with_the_nearest_real_one():
    with pytest.raises(
        TypeError,
        match=re.escape(
            "no setting 'n_reel' (did you mean 'n_real'?); cb.default_settings('Gaussian-mix-v0') lists"
        ),
    ):
        cb.make("Gaussian-mix-v0", n_reel=50)
    with pytest.raises(
        TypeError, match=re.escape("no setting 'colour'; cb.default_settings('GMM2D-mix-v0')")
    ):
        cb.make("GMM2D-mix-v0", colour="red")


def test_a_reward_that_does_not_score_each_item_is_refused_when_the_env_is_made():
    @cb.register_reward("test-pairwise")
    def pairwise_reward():
        return lambda x: np.ones((len(x), 2))

    try:
        with pytest.raises(
            ValueError, match=re.escape("'test-pairwise' returned an array of shape (2, 2) for 2")
        ):
            cb.make("Gaussian-mix-v0", sample_reward="test-pairwise")
    finally:
        REWARDS.unregister("test-pairwise")


def test_a_reward_that_skips_items_fails_the_step_and_changes_nothing():
    """A shape that depends on the items (a mask left in by mistake) passes the zero-item probe at
    make; the step's check catches it before a wrong number is recorded."""

    @cb.register_reward("test-masked")
    def masked_reward():
        return lambda x: x[x[:, 0] >= 0, 0]

    try:
        env = cb.make("Gaussian-mix-v0", generations=2, sample_reward="test-masked")
        obs, _ = env.reset(seed=0)
        with pytest.raises(
            ValueError, match=r"the reward returned an array of shape \(\d+,\) for 1000 samples"
        ):
            env.step(cb.make_policy("real-only")(obs))
        assert env.unwrapped.generation == 0 and env.unwrapped.model is None
    finally:
        REWARDS.unregister("test-masked")


def test_a_reward_that_returns_nan_fails_the_step_instead_of_recording_nan():
    @cb.register_reward("test-nan")
    def nan_reward():
        return lambda x: np.where(x[:, 0] > 0, np.nan, 1.0)

    try:
        env = cb.make("Gaussian-mix-v0", generations=2, sample_reward="test-nan")
        obs, _ = env.reset(seed=0)
        with pytest.raises(ValueError, match=r"non-finite value\(s\) for 1000 samples \(e\.g\. nan for item"):
            env.step(cb.make_policy("real-only")(obs))
        assert env.unwrapped.generation == 0 and env.unwrapped.model is None
    finally:
        REWARDS.unregister("test-nan")
