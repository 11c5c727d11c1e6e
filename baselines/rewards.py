"""Reference rewards for reward-based curation (``curate-bt``)."""

from __future__ import annotations

import numpy as np

from collapsebench.rewards import Reward, register_reward


@register_reward("linear")
def linear_reward(direction: tuple[float, ...] = (1.0, 0.0)) -> Reward:
    """r(x) = ⟨direction, x⟩: prefers items far along one direction."""
    weights = np.asarray(direction, dtype=np.float64)

    def reward(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64).reshape(len(x), -1) @ weights

    return reward


@register_reward("distance")
def distance_reward(target: tuple[float, ...] = (2.0, 0.0)) -> Reward:
    """r(x) = −‖x − target‖: prefers items close to a target point."""
    centre = np.asarray(target, dtype=np.float64)

    def reward(x: np.ndarray) -> np.ndarray:
        return -np.linalg.norm(np.asarray(x, dtype=np.float64).reshape(len(x), -1) - centre, axis=1)

    return reward
