"""Rewards for reward-based curation (Ferbach et al.): r(x) per item, higher is preferred.

A reward is a registered factory returning a function of a (n, *sample_shape) array, or any such
callable passed directly to a policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from collapsebench.registry import Registry

Reward = Callable[[np.ndarray], np.ndarray]
REWARDS: Registry[Reward] = Registry("reward")


def register_reward(name: str) -> Callable[[Callable[..., Reward]], Callable[..., Reward]]:
    return REWARDS.register(name)


def make_reward(reward: str | Reward, **kwargs: Any) -> Reward:
    if callable(reward):
        if kwargs:
            raise ValueError("reward_kwargs only apply when the reward is a registered name")
        return reward
    return REWARDS.make(reward, **kwargs)


def item_rewards(reward: Reward, items: np.ndarray, what: str = "items") -> np.ndarray:
    """``reward(items)`` as float64, checked: one finite number per item. Curation and the
    ``sample_reward`` metric both go through here, so a reward that returns the wrong shape (which
    broadcasting would otherwise turn into wrong choices) or NaN fails with what it returned."""
    values = np.asarray(reward(items), dtype=np.float64)
    if values.shape != (len(items),):
        raise ValueError(
            f"the reward returned an array of shape {values.shape} for {len(items)} {what}: a reward "
            "gives one number per item"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(
            f"the reward returned {bad.size} non-finite value(s) for {len(items)} {what} (e.g. "
            f"{values[bad[0]]} for item {bad[0]}): a reward gives one finite number per item"
        )
    return values
