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


def check_reward_fits(reward: Reward, sample_shape: tuple[int, ...], dtype: np.dtype, name: str) -> None:
    """Score two zero items of the env's shape: a reward whose parameters do not fit the items (a
    3-entry direction for 2-d points) then fails when the env is made, not after the first training.
    Only the shape of the answer is checked here; its values are checked on real items."""
    probe = np.zeros((2, *sample_shape), dtype=dtype)
    try:
        with np.errstate(all="ignore"):
            values = np.asarray(reward(probe), dtype=np.float64)
    except (ValueError, TypeError, IndexError) as error:
        raise ValueError(f"the reward {name!r} cannot score items of shape {sample_shape}: {error}") from None
    if values.shape != (2,):
        raise ValueError(
            f"the reward {name!r} returned an array of shape {values.shape} for 2 items of shape "
            f"{sample_shape}: a reward gives one number per item"
        )


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
