"""Name → factory registries for curation policies, generative models and pool dynamics.

One small class serves every kind of component: registering a name twice is an error (gymnasium only
warns, which hides typos in plugins), and looking up an unknown name lists the names that exist.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Generic, TypeVar

from collapsebench._params import parameter_names

T = TypeVar("T")


def import_registering_modules(
    names: Iterable[str], folder: str | os.PathLike[str] | None = None
) -> list[str]:
    """Import modules of the user's that register names (``--import``, a sweep's ``imports``), looked
    up in ``folder`` first, which stays on the path: spawned workers start with this process's path.
    Returns one problem per module that failed (``'name' failed to import: Error: message``)."""
    if folder is not None and str(Path(folder).resolve()) not in sys.path:
        sys.path.insert(0, str(Path(folder).resolve()))
    problems = []
    for name in names:
        try:
            import_module(name)
        except Exception as error:  # whatever a user's module raises, the caller reports it
            problems.append(f"{name!r} failed to import: {type(error).__name__}: {error}")
    return problems


class Registry(Generic[T]):
    """A named collection of factories of one kind (``"policy"``, ``"model"``, ...)."""

    def __init__(self, kind: str, base: type | None = None) -> None:
        self.kind = kind
        self.base = base  # where set, only its subclasses may be registered
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@registry.register("name")`` on a class or factory function."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(
                f"{self.kind} names must be non-empty strings without surrounding spaces, got {name!r}"
            )

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered (by {self._entries[name]!r}); "
                    "pick another name, or unregister the old one first"
                )
            if not callable(factory):
                raise TypeError(f"{self.kind} {name!r}: register a class or a function, got {factory!r}")
            if self.base is not None and not (isinstance(factory, type) and issubclass(factory, self.base)):
                # Refused here, not when the name is first used, where the error would not say why.
                raise TypeError(
                    f"{self.kind} {name!r}: register a subclass of {self.base.__module__}."
                    f"{self.base.__qualname__}, got {factory!r}"
                )
            self._entries[name] = factory
            if isinstance(factory, type):
                # The instance knows its registered name: results are recorded under it.
                factory.registered_name = name  # type: ignore[attr-defined]
            return factory

        return decorator

    def module_of(self, name: str) -> str:
        """The module that defines ``name``'s factory: what a fresh worker process imports to have
        the name registered (``__main__`` for a script's or an interactive session's own)."""
        return str(getattr(self.get(name), "__module__", None) or "")

    def unregister(self, name: str) -> None:
        self.get(name)
        del self._entries[name]

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def make(self, name: str, **kwargs: object) -> T:
        factory = self.get(name)
        try:
            return factory(**kwargs)
        except TypeError as error:
            problem = _unknown_parameter(factory, kwargs) or str(error)
            raise TypeError(f"cannot build {self.kind} {name!r} with {kwargs}: {problem}") from error

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def close_name_hint(name: str, names: Iterable[str]) -> str:
    """`` (did you mean 'lam'?)`` where one of ``names`` is close to ``name``; else nothing."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unknown_parameter(factory: Callable[..., object], kwargs: dict[str, object]) -> str | None:
    """``no parameter 'lamb' (did you mean 'lam'?); its parameters: lam`` for the first keyword the
    factory does not take (a base class's, passed on through ``**kwargs``, count as its own); None
    where it takes them all (or any keyword)."""
    names = parameter_names(factory)
    if names is None:
        return None
    for keyword in kwargs:
        if keyword not in names:
            hint = close_name_hint(keyword, names)
            return f"no parameter {keyword!r}{hint}; its parameters: {', '.join(names) or 'none'}"
    return None
