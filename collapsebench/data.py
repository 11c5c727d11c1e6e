"""Real data sources. An env draws its held-out test split once per episode, and training draws
(the initial real set, and each fresh draw of the ``fresh`` dynamics) from what remains."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class RealSplit(Protocol):
    """The real data of one episode: a fixed test split, and training draws disjoint from it."""

    @property
    def test(self) -> np.ndarray:
        """(n_test, *sample_shape)"""
        ...

    def draw_train(self, n: int, rng: np.random.Generator) -> np.ndarray: ...


class RealData(Protocol):
    """A source of real items (an analytic distribution, an image set) that an env splits per episode."""

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    @property
    def population_covariance(self) -> np.ndarray | None:
        """The true covariance where the source knows it (analytic worlds), else None."""
        ...

    def split(self, n_test: int, rng: np.random.Generator) -> RealSplit: ...


class AnalyticDistribution(ABC):
    """A real distribution known in closed form: every draw is fresh and independent."""

    sample_shape: tuple[int, ...]

    @abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray: ...

    @abstractmethod
    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """True log-density of each item."""

    @property
    @abstractmethod
    def population_covariance(self) -> np.ndarray: ...

    def split(self, n_test: int, rng: np.random.Generator) -> AnalyticSplit:
        return AnalyticSplit(test=self.sample(n_test, rng), distribution=self)


@dataclass(frozen=True)
class AnalyticSplit:
    test: np.ndarray
    distribution: AnalyticDistribution

    def draw_train(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.distribution.sample(n, rng)
