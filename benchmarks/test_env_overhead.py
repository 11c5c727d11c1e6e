"""How much of a step is the env's own bookkeeping (action checks, pool update, observation, gymnasium's
wrappers) rather than training, sampling and scoring? Goal (issue 6): ≤ 2% of the step. Measured on
the cheapest env, where bookkeeping weighs most. Also: the embedded demo end to end (goal ≤ 5 min).
Run: ``make bench``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import collapsebench as cb
import collapsebench.env as env_module
from collapsebench.demo import run_demo
from collapsebench.models import MODELS


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


@pytest.mark.parametrize("env_id", ["Gaussian-mix-v0", "GMM2D-mix-v0"])  # the cheapest; a typical one
def test_env_bookkeeping_overhead(benchmark, monkeypatch, env_id):
    benchmark.group = f"env bookkeeping: {env_id}"
    env, policy = cb.make(env_id), cb.make_policy("lambda-mix", lam=0.5)
    model_class = MODELS.get(env.unwrapped.model_name)
    inside = Stopwatch()
    monkeypatch.setattr(model_class, "fit", inside.wrap(model_class.fit))
    monkeypatch.setattr(model_class, "sample", inside.wrap(model_class.sample))
    monkeypatch.setattr(env_module, "score", inside.wrap(env_module.score))
    actions = []
    obs, _ = env.reset(seed=0)
    for _ in range(env.unwrapped.generations + 1):  # the policy's time is the agent's: precompute actions
        actions.append(policy(obs))
        obs, *_ = env.step(actions[-1])

    def episode() -> float:
        env.reset(seed=0)
        inside.seconds = 0.0
        started = time.perf_counter()
        for action in actions:
            env.step(action)
        return 1.0 - inside.seconds / (time.perf_counter() - started)

    overhead = benchmark.pedantic(episode, rounds=5, iterations=1)
    benchmark.extra_info["bookkeeping_fraction"] = overhead
    print(f"\nbookkeeping: {100 * overhead:.2f}% of step time on {env_id}")
    assert 0.0 < overhead < 1.0


@pytest.mark.parametrize("quick", [False])
def test_demo_end_to_end(benchmark, tmp_path: Path, quick: bool):
    benchmark.group = "demo"
    benchmark.pedantic(
        run_demo, args=(tmp_path / "demo",), kwargs={"quick": quick, "progress": False}, rounds=1
    )
