"""Reference rewards for reward-based curation (``curate-bt``)."""

from __future__ import annotations

import numpy as np

from collapsebench.rewards import Reward, register_reward


@register_reward("linear")
def linear_reward(direction: tuple[float, ...] | None = None) -> Reward:
    """r(x) = ⟨direction, x⟩: prefers items far along one direction (default: the first coordinate)."""
    weights = None if direction is None else np.asarray(direction, dtype=np.float64)

    def reward(x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if weights is None:
            return flat[:, 0]
        if weights.shape != (flat.shape[1],):
            raise ValueError(
                f"the linear reward's direction has {weights.size} entries for {flat.shape[1]}-d items"
            )
        return flat @ weights

    return reward


@register_reward("distance")
def distance_reward(target: tuple[float, ...] = (2.0, 0.0)) -> Reward:
    """r(x) = −‖x − target‖: prefers items close to a target point."""
    centre = np.asarray(target, dtype=np.float64)

    def reward(x: np.ndarray) -> np.ndarray:
        return -np.linalg.norm(np.asarray(x, dtype=np.float64).reshape(len(x), -1) - centre, axis=1)

    return reward
