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
