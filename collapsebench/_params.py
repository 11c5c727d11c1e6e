"""Capture the constructor arguments of policies and models, so results record exactly what ran."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

Instance = TypeVar("Instance")


def with_params(instance: Instance, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Instance:
    """For ``__new__``: store on ``instance.params`` what its ``__init__`` is about to receive."""
    instance.params = bound_params(type(instance), args, kwargs)  # type: ignore[attr-defined]
    return instance


def registered_name(instance: object) -> str:
    """The name the instance's class was registered under (its class name if it was not)."""
    return getattr(type(instance), "registered_name", type(instance).__name__)


def bound_params(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], partial: bool = False
) -> dict[str, Any]:
    """The arguments ``cls(*args, **kwargs)`` binds, defaults included, keyed by parameter name."""
    if cls.__init__ is object.__init__:  # no parameters of its own
        if args or kwargs:
            raise TypeError(f"{cls.__name__}() takes no arguments, got {args or ''} {kwargs or ''}".strip())
        return {}
    signature = inspect.signature(cls.__init__)
    bound = (signature.bind_partial if partial else signature.bind)(None, *args, **kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop(next(iter(signature.parameters)))  # self
    for name, parameter in signature.parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD and name in params:
            # **kwargs go to a base class: bind them against it too, so its defaults are recorded.
            passed_on = params.pop(name)
            mro = cls.__mro__
            owner = next(base for base in mro if "__init__" in vars(base))  # whose __init__ bound
            parent = next((base for base in mro[mro.index(owner) + 1 :] if "__init__" in vars(base)), object)
            # partial: arguments the subclass itself supplies (an env's real data) are not in kwargs
            inherited = (
                bound_params(parent, (), passed_on, partial=True) if parent is not object else passed_on
            )
            params.update({key: value for key, value in inherited.items() if key not in params})
    return params
