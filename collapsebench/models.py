"""The generative-model contract: fit on weighted data (warm-starting when it can), sample n items.

A model is one class with three methods and a registration::

    @cb.register_model("my-model")
    class MyModel(cb.GenerativeModel):
        def fit(self, data: cb.WeightedData, rng): ...      # train in place; continue from current state
        def sample(self, n, rng): ...                      # (n, *sample_shape) float64
        def state_dict(self): ...; def load_state_dict(self, state): ...   # numeric arrays, for resume

Optional capabilities are Protocols checked at run time: ``log_prob`` (enables the ``nll`` metric) and
``covariance`` (exact moments for ``std_ratio`` instead of moments of samples).

Sampling bias: every reference model takes ``temperature`` τ (default 1), which scales the spread it
samples with and leaves its fit alone. τ < 1 trades diversity for quality, the part truncation and
guidance play in Alemohammad et al.'s loops with sampling bias; ``log_prob`` and ``covariance`` describe
the distribution sampled. A model lists such parameters in ``sampling_params``.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from collapsebench._params import bound_params, registered_name, with_params
from collapsebench.checks import number_in
from collapsebench.registry import Registry


@dataclass(frozen=True)
class WeightedData:
    """A training set: items and their normalized weights (the training distribution)."""

    samples: np.ndarray  # (n, *sample_shape) items with positive weight
    weights: np.ndarray  # (n,) positive, summing to 1

    def __post_init__(self) -> None:
        if self.samples.shape[0] != self.weights.shape[0]:
            raise ValueError(f"{self.samples.shape[0]} samples but {self.weights.shape[0]} weights")
        # np.isclose's tolerances without its per-call cost; written so that NaN fails too.
        if self.weights.size == 0 or not (
            self.weights.min() > 0 and abs(self.weights.sum() - 1.0) <= 1e-8 + 1e-5
        ):
            raise ValueError("weights must be positive and sum to 1")

    @classmethod
    def uniform(cls, samples: np.ndarray) -> WeightedData:
        """Every item with the same weight, 1/n."""
        return cls(samples, np.full(len(samples), 1 / len(samples)))

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    @property
    def effective_size(self) -> float:
        """Kish's effective sample size, (Σw)² / Σw²: n for uniform weights."""
        return float(1.0 / np.sum(self.weights**2))

    @property
    def is_uniform(self) -> bool:
        return bool(np.allclose(self.weights, 1.0 / len(self)))

    def resample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """An unweighted training set of ``size`` items (default: as many as there are items).

        Systematic resampling: item i appears ⌊size·wᵢ⌋ or ⌈size·wᵢ⌉ times, so uniform weights give
        back every item exactly once, and a model without weight support sees the weighted
        distribution with the least added noise.
        """
        size = len(self) if size is None else int(size)
        if size <= 0:
            raise ValueError(f"resample size must be positive, got {size}")
        positions = (rng.random() + np.arange(size)) / size
        cumulative = np.cumsum(self.weights)
        cumulative[-1] = 1.0
        indices = np.searchsorted(cumulative, positions, side="right")
        return self.samples[rng.permutation(indices)]


class GenerativeModel(ABC):
    """Base class of every model. Subclasses override the math; the env owns the generation loop."""

    registered_name: ClassVar[str]
    params: dict[str, Any]
    # True for models that want a GPU when there is one: a sweep's ray back-end asks for one per cell.
    wants_accelerator: ClassVar[bool] = False
    # Parameters of how the fitted model samples, not of its fit (``temperature``). One first model
    # serves every value of them, and at their default they are left out of run records: records
    # made before a model had them still name the same runs.
    sampling_params: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        return with_params(super().__new__(cls), args, kwargs)

    @property
    def name(self) -> str:
        return registered_name(self)

    @property
    def recorded_params(self) -> dict[str, Any]:
        """``params`` as run records keep them: sampling parameters at their default left out."""
        defaults = bound_params(type(self), (), {}, partial=True)
        return {
            key: value
            for key, value in self.params.items()
            if not (key in self.sampling_params and key in defaults and value == defaults[key])
        }

    @property
    def fit_params(self) -> dict[str, Any]:
        """``params`` that the fit reads: all but the sampling parameters."""
        return {key: value for key, value in self.params.items() if key not in self.sampling_params}

    @property
    def min_train_items(self) -> int:
        """The fewest items ``fit`` can train on. An env whose real set is smaller is refused when it
        is built, since generation 0 trains on the real set alone."""
        return 1

    @abstractmethod
    def fit(self, data: WeightedData, rng: np.random.Generator) -> None:
        """Train on ``data``. A model that was fitted before continues from its current parameters."""

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` items, shape (n, *sample_shape), float64."""

    @abstractmethod
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to restore the fitted model, as numeric arrays (checkpoints never pickle)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...

    def clone(self) -> Self:
        """A copy to train the next generation from (warm start); the env keeps the original."""
        # A deep copy that skips __new__: re-binding the constructor's parameters (inspect) cost
        # more than the whole copy, and the copied state carries them already.
        twin = object.__new__(type(self))
        twin.__dict__.update(copy.deepcopy(self.__dict__, {id(self): twin}))
        return twin


@runtime_checkable
class SupportsLogProb(Protocol):
    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """Log-density of each item of ``x``, shape (n,)."""
        ...


@runtime_checkable
class SupportsCovariance(Protocol):
    def covariance(self) -> np.ndarray:
        """Covariance matrix of the model distribution, (d, d)."""
        ...


MODELS: Registry[GenerativeModel] = Registry("model", base=GenerativeModel)


def register_model(name: str) -> Callable[[type[GenerativeModel]], type[GenerativeModel]]:
    """Class decorator: make a ``GenerativeModel`` subclass available to envs as ``model=name``."""
    return MODELS.register(name)  # type: ignore[return-value]


def check_temperature(temperature: float) -> float:
    """A sampling temperature τ > 0 (finite), or a ValueError naming it."""
    return number_in("temperature", temperature, "(0, inf)")


def make_model(name: str, **kwargs: Any) -> GenerativeModel:
    return MODELS.make(name, **kwargs)
