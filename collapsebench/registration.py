"""The env catalog: ``Name-vN`` ids, each a gymnasium ``EnvSpec`` whose kwargs are the versioned defaults.

Every id is registered twice over: here (bare ``Gaussian-mix-v0``, where a duplicate is an error) and
in gymnasium's registry under the ``collapsebench/`` namespace, so both ``collapsebench.make(id)`` and
``gymnasium.make("collapsebench/" + id)`` build the same env.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec, load_env_creator

from collapsebench._params import bound_params
from collapsebench.registry import close_name_hint
from collapsebench.scoring import check_metric_names

NAMESPACE = "collapsebench"
_ID_PATTERN = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*)-v(?P<version>\d+)$")
_SPECS: dict[str, EnvSpec] = {}
_DOCS: dict[str, str] = {}
_REGISTERED_IN: dict[str, str] = {}  # env id → the module whose code registered it


def register_env(env_id: str, entry_point: str, kwargs: dict[str, Any], doc: str = "") -> EnvSpec:
    """Register ``env_id`` (``Name-vN``) with its default ``kwargs``; ``generations`` is required."""
    if not _ID_PATTERN.match(env_id):
        raise ValueError(f"env ids look like 'Name-dynamics-vN' (a version is required), got {env_id!r}")
    if env_id in _SPECS:
        raise ValueError(f"env {env_id!r} is already registered; bump the version (-vN) to change it")
    if "generations" not in kwargs:
        raise ValueError(f"env {env_id!r}: its spec must set 'generations' (T)")
    gym.register(
        id=f"{NAMESPACE}/{env_id}",
        entry_point=entry_point,
        max_episode_steps=int(kwargs["generations"]) + 1,
        kwargs=dict(kwargs),
    )
    _SPECS[env_id] = gym.spec(f"{NAMESPACE}/{env_id}")
    _DOCS[env_id] = doc
    _REGISTERED_IN[env_id] = str(sys._getframe(1).f_globals.get("__name__", ""))
    return _SPECS[env_id]


def registering_module(env_id: str) -> str:
    """The module whose code registered ``env_id``: what a fresh worker process imports to have it
    (``__main__`` for a script's or an interactive session's own)."""
    spec(env_id)  # an unknown id says so, with the ids that exist
    return _REGISTERED_IN[_bare(env_id)]


def _bare(env_id: str) -> str:
    return env_id.removeprefix(f"{NAMESPACE}/")


def spec(env_id: str) -> EnvSpec:
    """The registered spec of ``env_id`` (with or without the ``collapsebench/`` prefix)."""
    env_id = _bare(env_id)
    if env_id not in _SPECS:
        close = difflib.get_close_matches(env_id, list(_SPECS), n=3)
        hint = (
            f"; did you mean {', '.join(close)}?" if close else f"; registered: {', '.join(sorted(_SPECS))}"
        )
        raise KeyError(f"unknown env {env_id!r}{hint}")
    return _SPECS[env_id]


def default_settings(env_id: str) -> dict[str, Any]:
    """Every setting ``make(env_id)`` builds the env with: the spec's values, and the entry point's
    defaults for the settings the spec leaves out (the metrics of the analytic worlds, say)."""
    env_spec = spec(env_id)
    return bound_params(load_env_creator(env_spec.entry_point), (), dict(env_spec.kwargs), partial=True)


def with_added_metrics(env_id: str, metrics: tuple[str, ...], env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``env_kwargs`` whose ``metrics`` are the env's (overridden or default) plus ``metrics``, each
    named once; a ValueError names any that is not registered."""
    check_metric_names(metrics)
    current = tuple(env_kwargs.get("metrics", default_settings(env_id)["metrics"]))
    added = dict.fromkeys(name for name in metrics if name not in current)
    return {**env_kwargs, "metrics": (*current, *added)}


def env_doc(env_id: str) -> str:
    spec(env_id)
    return _DOCS[_bare(env_id)]


def list_envs() -> list[str]:
    return sorted(_SPECS)


def make(env_id: str, **overrides: Any) -> gym.Env:
    """Build a registered env; ``overrides`` replace spec defaults (``generations=20``, ``model="kde"``),
    but ``model_kwargs`` adjust the spec's model settings (see ``with_model_settings``)."""
    env_spec = spec(env_id)
    overrides = with_model_settings(env_spec.kwargs, overrides)
    generations = int(overrides.get("generations", env_spec.kwargs["generations"]))
    try:
        return gym.make(env_spec.id, max_episode_steps=generations + 1, **overrides)
    except TypeError as error:
        # gymnasium re-raises the env's TypeError with every keyword appended. A misspelt setting is
        # named with the nearest real one; otherwise the env's own message names the problem (a
        # model's misspelt parameter, say).
        known = default_settings(env_id)
        for name in overrides:
            if name not in known:
                raise TypeError(
                    f"no setting {name!r}{close_name_hint(name, known)}; "
                    f"cb.default_settings({env_id!r}) lists the env's settings"
                ) from None
        if isinstance(error.__cause__, TypeError):
            raise error.__cause__ from None
        raise


def with_model_settings(spec_kwargs: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` as they apply to a spec's settings. For the spec's own model, ``model_kwargs``
    adjust the spec's (``{"temperature": 0.8}`` keeps a world's training budget), as ``--model-param``
    and a sweep's ``model_params`` do; ``model_kwargs=None`` drops them for the model's own defaults.
    For another model they are its whole settings, its own defaults where none are given."""
    overrides = dict(overrides)
    if overrides.get("model", spec_kwargs.get("model")) != spec_kwargs.get("model"):
        overrides.setdefault("model_kwargs", None)
    elif isinstance(overrides.get("model_kwargs"), Mapping):  # anything else: the env names the problem
        overrides["model_kwargs"] = {**(spec_kwargs.get("model_kwargs") or {}), **overrides["model_kwargs"]}
    return overrides


def env_version(env_id: str) -> int:
    version = spec(env_id).version
    assert version is not None  # _ID_PATTERN guarantees it
    return version


DYNAMICS_IN_IDS = ("replace", "mix", "accumulate", "fresh")


def register_family(
    name: str, entry_point: str, defaults: dict[str, Any], doc: str, version: int = 0
) -> None:
    """Register ``{name}-{dynamics}-v{version}`` for each of the four pool dynamics."""
    for dynamics in DYNAMICS_IN_IDS:
        register_env(f"{name}-{dynamics}-v{version}", entry_point, {**defaults, "dynamics": dynamics}, doc)
