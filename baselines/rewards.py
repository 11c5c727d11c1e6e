"""Reference rewards for reward-based curation (``curate-bt``)."""

from __future__ import annotations

import numpy as np

from collapsebench.checks import vector
from collapsebench.rewards import Reward, register_reward


@register_reward("linear")
def linear_reward(direction: tuple[float, ...] | None = None) -> Reward:
    """r(x) = ⟨direction, x⟩: prefers items far along one direction (default: the first coordinate)."""
    weights = None if direction is None else vector("direction", direction)

    def reward(x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if weights is None:
            return flat[:, 0]
        if weights.shape != (flat.shape[1],):
            raise ValueError(
                f"the linear reward's direction has {_entries(weights.size)} for {flat.shape[1]}-d items"
            )
        return flat @ weights

    return reward


@register_reward("distance")
def distance_reward(target: tuple[float, ...] = (2.0, 0.0)) -> Reward:
    """r(x) = −‖x − target‖: prefers items close to a target point."""
    centre = vector("target", target)

    def reward(x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if centre.shape != (flat.shape[1],):  # broadcasting would score 1-d items against every entry
            raise ValueError(
                f"the distance reward's target has {_entries(centre.size)} for {flat.shape[1]}-d items"
            )
        return -np.linalg.norm(flat - centre, axis=1)

    return reward


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"
