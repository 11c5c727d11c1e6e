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
            parent = _base_taking_kwargs(cls)
            # partial: arguments the subclass itself supplies (an env's real data) are not in kwargs
            inherited = (
                bound_params(parent, (), passed_on, partial=True) if parent is not object else passed_on
            )
            params.update({key: value for key, value in inherited.items() if key not in params})
    return params


def parameter_names(factory: Any) -> list[str] | None:
    """The keywords ``factory(**kwargs)`` takes, a base class's passed on through ``**kwargs``
    included; None where it takes any keyword, or has no signature to read (a builtin)."""
    is_class = isinstance(factory, type)
    if is_class and factory.__init__ is object.__init__:
        return []
    try:
        signature = inspect.signature(factory.__init__ if is_class else factory)
    except (TypeError, ValueError):
        return None
    names: list[str] = []
    for position, (name, parameter) in enumerate(signature.parameters.items()):
        if is_class and position == 0:
            continue  # self
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            parent = _base_taking_kwargs(factory) if is_class else object
            inherited = parameter_names(parent) if parent is not object else None
            if inherited is None:
                return None
            names += [base_name for base_name in inherited if base_name not in names]
        elif parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.append(name)  # **kwargs comes last: own names are all in before inherited ones
    return names


def _base_taking_kwargs(cls: type) -> type:
    """The class whose ``__init__`` receives what ``cls.__init__`` passes on through ``**kwargs``
    (``object`` where no base defines one)."""
    mro = cls.__mro__
    owner = next(base for base in mro if "__init__" in vars(base))  # whose __init__ cls(...) calls
    return next((base for base in mro[mro.index(owner) + 1 :] if "__init__" in vars(base)), object)
