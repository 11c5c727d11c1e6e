"""Checks for the settings a model or policy is built with. A bad setting then fails when the object
is built (``cb.make``, a sweep's plan, before any cell runs), with its name, rather than generations
later inside a training loop or as a silent no-op (a negative step count trains nothing)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

import numpy as np

Choice = TypeVar("Choice")


def is_number(value: Any) -> bool:
    """A real number (an int, float or numpy scalar); booleans and NaN are not."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def in_interval(value: Any, interval: str) -> bool:
    """Whether ``value`` is a number in ``interval``, written as in mathematics: ``"(0, inf)"``,
    ``"[0, 1)"``, ``"(0, inf]"`` (``inf`` itself allowed)."""
    low_bracket, high_bracket = interval[0], interval[-1]
    low, high = (float(bound) for bound in interval[1:-1].split(","))
    if not is_number(value):
        return False
    above_low = value > low if low_bracket == "(" else value >= low
    below_high = value < high if high_bracket == ")" else value <= high
    return bool(above_low and below_high)


def number_in(name: str, value: Any, interval: str) -> float:
    """``value`` as a float if it lies in ``interval`` (see ``in_interval``); else a ValueError."""
    if not in_interval(value, interval):
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def synthetic_ratio(value: Any) -> float:
    """λ, the synthetic/real mass ratio of Bertrand et al.: a number ≥ 0, ``inf`` for fully synthetic.
    One check for the policy that mixes by it and the closed forms that predict it."""
    if not in_interval(value, "[0, inf]"):
        raise ValueError(f"lam must be a number ≥ 0 (or inf), got {value!r}")
    return float(value)


def integer(name: str, value: Any, at_least: int) -> int:
    """``value`` as an int if it is a whole number ≥ ``at_least`` (3 and 3.0 are; 3.5, True are not)."""
    if not (is_number(value) and math.isfinite(value) and value == int(value) and value >= at_least):
        raise ValueError(f"{name} must be an integer ≥ {at_least}, got {value!r}")
    return int(value)


def optional_integer(name: str, value: Any, at_least: int) -> int | None:
    """``integer``, with None (the default's meaning, whatever the model gives it) let through."""
    return None if value is None else integer(name, value, at_least)


def vector(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array if it is a non-empty sequence of finite numbers (a point, a
    direction); else a ValueError. A string is not a sequence of numbers here."""
    items = value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 else value
    if (
        isinstance(items, str)
        or not isinstance(items, Sequence)
        or not items
        or not all(is_number(item) and math.isfinite(item) for item in items)
    ):
        raise ValueError(f"{name} must be a non-empty list of finite numbers, got {value!r}")
    return np.asarray(items, dtype=np.float64)


def flag(name: str, value: Any) -> bool:
    """``value`` as a bool if it is a boolean (numpy's too, as read from an array or a data frame): a
    string such as ``"no"`` would otherwise count as True."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def one_of(name: str, value: Choice, choices: Collection[Choice]) -> Choice:
    """``value`` if it is one of ``choices``; else a ValueError listing them."""
    if not isinstance(value, str | int | float | type(None)) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
