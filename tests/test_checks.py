from __future__ import annotations

import numpy as np
import pytest

from collapsebench.checks import flag, in_interval, integer, number_in, one_of, optional_integer, vector


@pytest.mark.parametrize(
    ("value", "interval", "inside"),
    [
        (0.0, "(0, inf)", False),
        (0.0, "[0, inf)", True),
        (1.0, "[0, 1)", False),
        (1.0, "[0, 1]", True),
        (float("inf"), "(0, inf)", False),
        (float("inf"), "(0, inf]", True),
        (np.float32(0.5), "(0, 1)", True),
        (np.int64(3), "[3, 3]", True),
        (float("nan"), "(-inf, inf)", False),
        (True, "[0, 1]", False),  # a flag is not a number
        ("0.5", "(0, 1)", False),
        (None, "(0, 1)", False),
    ],
)
def test_intervals_read_as_written(value, interval, inside):
    assert in_interval(value, interval) is inside


def test_number_in_returns_a_float_or_names_the_setting():
    assert number_in("lr", np.float32(0.25), "(0, inf)") == 0.25
    assert type(number_in("lr", 1, "(0, inf)")) is float
    with pytest.raises(ValueError, match=r"^lr must be a number in \(0, inf\), got 0$"):
        number_in("lr", 0, "(0, inf)")


@pytest.mark.parametrize("value", [3, 3.0, np.int64(3)])
def test_whole_numbers_are_integers(value):
    assert integer("steps", value, 0) == 3 and type(integer("steps", value, 0)) is int


@pytest.mark.parametrize("value", [3.5, -1, True, float("inf"), float("nan"), "3", None])
def test_other_values_are_not(value):
    with pytest.raises(ValueError, match=f"^steps must be an integer ≥ 0, got {value!r}$"):
        integer("steps", value, 0)


def test_none_passes_an_optional_integer_and_nothing_else_changes():
    assert optional_integer("threads", None, 1) is None and optional_integer("threads", 2, 1) == 2
    with pytest.raises(ValueError, match="threads must be an integer ≥ 1, got 0"):
        optional_integer("threads", 0, 1)


def test_flags_and_choices():
    assert flag("compile", False) is False
    assert flag("compile", np.True_) is True  # numpy's booleans are booleans, returned as Python's
    for truthy in ("no", 1, None):
        with pytest.raises(ValueError, match="compile must be true or false"):
            flag("compile", truthy)
    assert one_of("kind", "full", ("full", "diag")) == "full"
    with pytest.raises(ValueError, match=r"^kind must be one of 'full', 'diag', got 'ful'$"):
        one_of("kind", "ful", ("full", "diag"))
    with pytest.raises(ValueError, match="got \\['full'\\]"):  # unhashable: refused, not a TypeError
        one_of("kind", ["full"], ("full", "diag"))


@pytest.mark.parametrize("value", [(1, -2.5), [1.0, -2.5], np.array([1.0, -2.5]), [np.int64(1), -2.5]])
def test_lists_of_numbers_are_vectors(value):
    result = vector("target", value)
    assert result.dtype == np.float64 and result.tolist() == [1.0, -2.5]


@pytest.mark.parametrize("value", ["12", [], (1.0, float("inf")), [True, 1.0], 2.0, np.zeros((2, 2)), None])
def test_other_values_are_not_vectors(value):
    with pytest.raises(ValueError, match=r"^target must be a non-empty list of finite numbers, got "):
        vector("target", value)
