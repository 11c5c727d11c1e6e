"""How much of a step is the env's own bookkeeping (action checks, pool update, observation, gymnasium's
wrappers) rather than training, sampling and scoring? Goal (issue 6): ≤ 2% of the step. Measured on
the cheapest env, where bookkeeping weighs most. Also: the embedded demo end to end (goal ≤ 5 min).
Run: ``make bench``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import collapsebench as cb
import collapsebench.env as env_module
from collapsebench.demo import run_demo
from collapsebench.models import MODELS
from collapsebench.policies import CurationPolicy


class Stopwatch:
    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


def episode_actions(env: gym.Env, policy: CurationPolicy) -> list[np.ndarray]:
    """The policy's actions over one episode of seed 0, computed beforehand: the policy's time is the
    agent's, not the env's."""
    actions = []
    obs, _ = env.reset(seed=0)
    for _ in range(env.unwrapped.generations + 1):
        actions.append(policy(obs))
        obs, *_ = env.step(actions[-1])
    return actions


@pytest.mark.parametrize("env_id", ["Gaussian-mix-v0", "GMM2D-mix-v0"])  # the cheapest; a typical one
def test_env_bookkeeping_overhead(benchmark, monkeypatch, report, env_id):
    benchmark.group = f"env bookkeeping: {env_id}"
    env, policy = cb.make(env_id), cb.make_policy("lambda-mix", lam=0.5)
    model_class = MODELS.get(env.unwrapped.model_name)
    inside = Stopwatch()
    monkeypatch.setattr(model_class, "fit", inside.wrap(model_class.fit))
    monkeypatch.setattr(model_class, "sample", inside.wrap(model_class.sample))
    monkeypatch.setattr(env_module, "score", inside.wrap(env_module.score))
    actions = episode_actions(env, policy)

    fractions: list[float] = []
    outside_seconds: list[float] = []

    def episode() -> None:
        env.reset(seed=0)
        inside.seconds = 0.0
        started = time.perf_counter()
        for action in actions:
            env.step(action)
        elapsed = time.perf_counter() - started
        fractions.append(1.0 - inside.seconds / elapsed)
        outside_seconds.append((elapsed - inside.seconds) / len(actions))

    benchmark.pedantic(episode, rounds=5, iterations=1)
    overhead = float(np.median(fractions))  # of the rounds: one slow round says little
    benchmark.extra_info["bookkeeping_fraction"] = overhead
    report(
        f"env bookkeeping: {100 * overhead:.2f}% of step time on {env_id}, "
        f"{1e6 * float(np.median(outside_seconds)):.0f} µs per step "
        f"(median of {len(fractions)} episodes, {100 * min(fractions):.2f}–{100 * max(fractions):.2f}%; "
        "goal ≤ 2%)"
    )
    assert 0.0 < overhead < 1.0


# Numeric work put between two steps in place of scoring (not timed): does the env's own code run
# slower after it? One kernel stays in the core's caches (np.sin over 64 KB, 300 times: ≈ 25 ms), one
# streams memory (three sums over 32 MB: ≈ 3.5 ms).
_SMALL, _LARGE = np.linspace(0.0, 1.0, 8_000), np.linspace(0.0, 1.0, 4_000_000)
KERNELS: dict[str, Callable[[], object]] = {
    "none": lambda: None,
    "in-cache compute": lambda: [np.sin(_SMALL) for _ in range(300)],
    "memory streaming": lambda: [_LARGE.sum() for _ in range(3)],
}


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_env_bookkeeping_alone(benchmark, monkeypatch, report, kernel):
    """The same steps with fit, sample and score replaced by instant stand-ins: what the env itself
    costs per step, in absolute terms; the score stand-in runs one of ``KERNELS`` first, untimed."""
    benchmark.group = "env bookkeeping alone: Gaussian-mix-v0"
    env, policy = cb.make("Gaussian-mix-v0"), cb.make_policy("lambda-mix", lam=0.5)
    actions = episode_actions(env, policy)
    samples = env.unwrapped.model.sample(env.unwrapped.n_eval, np.random.default_rng(0))
    metrics = {name: 0.0 for name in env.unwrapped.metrics}
    model_class = MODELS.get(env.unwrapped.model_name)
    inside = Stopwatch()
    run_kernel = KERNELS[kernel]

    def stand_in_score(evaluation, names):
        run_kernel()
        return metrics

    monkeypatch.setattr(model_class, "fit", lambda self, data, rng: None)
    monkeypatch.setattr(model_class, "sample", lambda self, n, rng: samples[:n])
    monkeypatch.setattr(env_module, "score", inside.wrap(stand_in_score))
    per_step: list[float] = []

    def new_episode() -> None:  # not timed
        env.reset(seed=0)
        inside.seconds = 0.0

    def steps() -> None:
        started = time.perf_counter()
        for action in actions:
            env.step(action)
        per_step.append((time.perf_counter() - started - inside.seconds) / len(actions))

    rounds = 20 if kernel == "none" else 5
    benchmark.pedantic(steps, setup=new_episode, rounds=rounds, iterations=1, warmup_rounds=1)
    report(
        f"env bookkeeping alone: {1e6 * float(np.median(per_step[1:])):.0f} µs per step on Gaussian-mix-v0, "
        f"kernel between steps: {kernel} (median of {rounds} episodes)"
    )


@pytest.mark.parametrize("quick", [False])
def test_demo_end_to_end(benchmark, tmp_path: Path, quick: bool):
    benchmark.group = "demo"
    benchmark.pedantic(
        run_demo, args=(tmp_path / "demo",), kwargs={"quick": quick, "progress": False}, rounds=1
    )
