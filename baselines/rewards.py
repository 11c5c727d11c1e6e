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
        flat = _flat_items(x)
        if weights is None:
            return flat[:, 0]
        _check_size("the linear reward's direction", weights, flat)
        return flat @ weights

    return reward


@register_reward("distance")
def distance_reward(target: tuple[float, ...] = (2.0, 0.0)) -> Reward:
    """r(x) = −‖x − target‖: prefers items close to a target point."""
    centre = vector("target", target)

    def reward(x: np.ndarray) -> np.ndarray:
        flat = _flat_items(x)
        _check_size("the distance reward's target", centre, flat)
        return -np.linalg.norm(flat - centre, axis=1)

    return reward


def _flat_items(x: np.ndarray) -> np.ndarray:
    """Items of any shape (points, images) as float64 rows."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def _check_size(what: str, parameter: np.ndarray, flat: np.ndarray) -> None:
    """A parameter vector must have one entry per coordinate: broadcasting would otherwise score
    1-d items against every entry, silently."""
    if parameter.shape != (flat.shape[1],):
        entries = "1 entry" if parameter.size == 1 else f"{parameter.size} entries"
        raise ValueError(f"{what} has {entries} for {flat.shape[1]}-d items")
