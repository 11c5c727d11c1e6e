from __future__ import annotations

import numpy as np
import pytest

import collapsebench as cb

# Small budgets for rollouts in tests; the specs keep the real ones.
TINY = {"n_test": 40, "n_eval": 40, "generations": 3}


# Flows train for thousands of steps in the specs; a few dozen are enough to exercise the contract.
TINY_FLOW = {"initial_steps": 30, "steps": 10, "batch_size": 64, "hidden": 16}


def fast_model(env_id: str) -> dict:
    """Overrides that shrink only the model's training budget (flow envs), nothing else."""
    spec_kwargs = cb.spec(env_id).kwargs
    if spec_kwargs["model"] in ("realnvp", "spline-flow"):
        return {"model_kwargs": {**spec_kwargs["model_kwargs"], **TINY_FLOW}}
    return {}


def tiny_overrides(env_id: str) -> dict:
    overrides = {**TINY, **fast_model(env_id)}
    spec_kwargs = cb.spec(env_id).kwargs
    if spec_kwargs["n_real"] > 100:
        overrides.update(n_real=60, n_synthetic=60)
    return overrides


def rollout(env, policy, seed: int, steps: int | None = None) -> list[dict]:
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    infos = []
    truncated = False
    while not truncated and (steps is None or len(infos) < steps):
        obs, _, _, truncated, info = env.step(policy(obs))
        infos.append(info)
    return infos


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
