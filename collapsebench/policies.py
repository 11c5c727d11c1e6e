"""The curation-policy contract: a policy reads the observed pool and returns per-item weights.

    @cb.register_policy("keep-real-and-newest")
    class KeepRealAndNewest(cb.CurationPolicy):
        def __call__(self, obs):
            pool = cb.PoolView(obs)
            return (pool.real | pool.newest).astype(float)

Weights are in [0, 1], one per pool slot (the env's ``action_space``); the training distribution is
proportional to them over valid items. A policy is a deterministic function of (its parameters, the
seed given to ``reset``, the observation): stochastic policies draw from ``self.rng_for(obs)``, which
is what lets an interrupted run resume exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from collapsebench._params import registered_name, with_params
from collapsebench.pool import REAL
from collapsebench.registry import Registry


def policy_label(name: str, params: Mapping[str, Any]) -> str:
    """``name(k=v, ...)``; a composed policy's stages joined by ``>``."""
    if "stages" in params:
        return ">".join(policy_label(stage["policy"], stage["params"]) for stage in params["stages"])
    args = ", ".join(f"{key}={value}" for key, value in params.items())
    return f"{name}({args})" if args else name


class PoolView:
    """Boolean masks over the slots of an observation, named for what policies ask about."""

    def __init__(self, obs: Mapping[str, Any]) -> None:
        self.samples: np.ndarray = np.asarray(obs["samples"])
        self.origin: np.ndarray = np.asarray(obs["origin"])
        self.valid: np.ndarray = np.asarray(obs["valid"]).astype(bool)
        self.generation = int(obs["generation"])
        self.real = self.valid & (self.origin == REAL)
        self.synthetic = self.valid & (self.origin >= 0)
        newest = self.origin[self.synthetic].max() if self.synthetic.any() else REAL
        self.newest_origin = int(newest)
        self.newest = self.valid & (self.origin == newest)

    @property
    def capacity(self) -> int:
        return int(self.valid.shape[0])

    def uniform(self, mask: np.ndarray) -> np.ndarray:
        """Weight 1 on the slots in ``mask``, 0 elsewhere."""
        return mask.astype(np.float64)

    def vectors(self, selection: np.ndarray) -> np.ndarray:
        """The selected items (a mask or slot indices) as rows of an (n, d) array: images flattened."""
        items = self.samples[selection]
        return items.reshape(len(items), -1)


class CurationPolicy(ABC):
    """Base class of every curation policy."""

    registered_name: ClassVar[str]
    params: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        instance = with_params(super().__new__(cls), args, kwargs)
        instance._seed = 0
        return instance

    @property
    def name(self) -> str:
        return registered_name(self)

    @property
    def label(self) -> str:
        """``name(k=v, ...)``: how plots and tables tell two parameterizations apart."""
        return policy_label(self.name, self.params)

    def reset(self, seed: int | None = None) -> None:
        """Called at the start of each lineage with the env's seed."""
        self._seed = 0 if seed is None else int(seed)

    def rng_for(self, obs: Mapping[str, Any]) -> np.random.Generator:
        """A generator that depends only on the seed and the generation being curated."""
        return np.random.default_rng([self._seed, int(obs["generation"]), 0x9E3779B9])

    @abstractmethod
    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        """Per-slot weights in [0, 1], shape (capacity,)."""


POLICIES: Registry[CurationPolicy] = Registry("policy", base=CurationPolicy)


def register_policy(name: str) -> Callable[[type[CurationPolicy]], type[CurationPolicy]]:
    """Class decorator: make a ``CurationPolicy`` subclass available as ``make_policy(name)``."""
    return POLICIES.register(name)  # type: ignore[return-value]


def make_policy(name: str, **kwargs: Any) -> CurationPolicy:
    return POLICIES.make(name, **kwargs)


class ComposedPolicy(CurationPolicy):
    """Stages applied in order: each stage sees only the items every earlier stage kept (its ``valid``
    mask narrowed to them), and the weights multiply. ``compose(filter, mixer)`` thus mixes what the
    filter kept."""

    def __init__(self, *stages: CurationPolicy) -> None:
        if len(stages) < 2:
            raise ValueError("compose needs at least two policies")
        for stage in stages:
            if not isinstance(stage, CurationPolicy):
                raise TypeError(
                    f"compose takes curation policies or their registered names, got {stage!r}: wrap a "
                    "function in a registered CurationPolicy (cb.register_policy)"
                )
        self.stages = stages
        self.params = {"stages": [{"policy": stage.name, "params": stage.params} for stage in stages]}

    @property
    def name(self) -> str:
        return ">".join(stage.name for stage in self.stages)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        for stage in self.stages:
            stage.reset(seed)

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        weights = np.ones(len(obs["valid"]))
        view = dict(obs)
        for stage in self.stages:
            weights = weights * np.asarray(stage(view), dtype=np.float64)
            view["valid"] = (np.asarray(obs["valid"]) == 1) & (weights > 0)
        return weights / weights.max() if weights.max() > 0 else weights


def compose(*policies: CurationPolicy | str) -> CurationPolicy:
    """Chain curation policies: ``compose("filter-likelihood", make_policy("lambda-mix", lam=0.5))``."""
    return ComposedPolicy(*(make_policy(p) if isinstance(p, str) else p for p in policies))


def build_policy(names: str | Sequence[str], params: Mapping[str, Any] | None = None) -> CurationPolicy:
    """One registered policy, or several composed in order. With several, each parameter names its
    stage: ``{"filter-likelihood.q": 0.1, "lambda-mix.lam": 0.5}``. How the CLI and sweep configs
    spell agents."""
    names = [names] if isinstance(names, str) else list(names)
    params = dict(params or {})
    if not names:
        raise ValueError("no policy named")
    if len(names) == 1:
        return make_policy(names[0], **params)
    staged: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in params.items():
        stage, dot, name = key.partition(".")
        if not dot or stage not in staged:
            raise ValueError(
                f"with several policies, name the stage of each parameter: {names[0]}.{key}=..., not {key!r}"
            )
        staged[stage][name] = value
    return compose(*(make_policy(name, **staged[name]) for name in names))
