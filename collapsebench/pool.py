"""The data pool: real data plus every synthetic sample kept so far, each item with its provenance.

How the pool evolves from one generation to the next (which items survive, what comes in) is the
env's *dynamics*, a small strategy object registered by name; the name is part of the env id
(``Gaussian-mix-v0`` uses ``mix``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from collapsebench.registry import Registry

REAL = -1
"""Origin of a real item. Synthetic items carry the generation that produced them (0, 1, ...)."""
EMPTY = -2
"""Origin of an unused slot in the fixed-capacity observation (its ``valid`` flag is 0)."""


@dataclass(frozen=True)
class Pool:
    """Items currently in the pool. Arrays are never modified in place; updates build a new Pool."""

    samples: np.ndarray  # (n_items, *sample_shape), in the real data's dtype (float64, or uint8 images)
    origin: np.ndarray  # (n_items,) int64: REAL or the generation that produced the item

    def __post_init__(self) -> None:
        if self.samples.shape[0] != self.origin.shape[0]:
            raise ValueError(f"{self.samples.shape[0]} samples but {self.origin.shape[0]} origins")
        self.samples.flags.writeable = False
        self.origin.flags.writeable = False

    @classmethod
    def of(cls, samples: np.ndarray, origin: int) -> Pool:
        samples = np.asarray(samples)
        return cls(samples, np.full(samples.shape[0], origin, dtype=np.int64))

    @classmethod
    def concat(cls, *pools: Pool) -> Pool:
        return cls(np.concatenate([p.samples for p in pools]), np.concatenate([p.origin for p in pools]))

    def __len__(self) -> int:
        return int(self.samples.shape[0])

    @property
    def is_real(self) -> np.ndarray:
        return self.origin == REAL

    def select(self, mask: np.ndarray) -> Pool:
        return Pool(self.samples[mask], self.origin[mask])


@dataclass(frozen=True)
class PoolUpdate:
    """What a dynamics rule sees at the end of a generation."""

    pool: Pool  # the pool the generation was trained from
    new_samples: np.ndarray  # (n_synthetic, *sample_shape) samples of the model just trained
    generation: int  # the generation that produced ``new_samples``
    fresh_real: np.ndarray | None = field(default=None)  # a new real draw, for dynamics that ask for one


class PoolDynamics(Protocol):
    """How the pool changes after each generation."""

    needs_fresh_real: bool

    def capacity(self, n_real: int, n_synthetic: int, generations: int) -> int:
        """Largest pool this rule can produce in an episode of ``generations + 1`` steps."""
        ...

    def update(self, update: PoolUpdate) -> Pool: ...


DYNAMICS: Registry[PoolDynamics] = Registry("pool dynamics")


@DYNAMICS.register("replace")
class Replace:
    """Fully synthetic loop: after generation 0 the pool holds only the newest generation's samples."""

    needs_fresh_real = False

    def capacity(self, n_real: int, n_synthetic: int, generations: int) -> int:
        return max(n_real, n_synthetic)

    def update(self, update: PoolUpdate) -> Pool:
        return Pool.of(update.new_samples, update.generation)


@DYNAMICS.register("mix")
class Mix:
    """The seed paper's setting: the fixed real set plus the newest generation's samples."""

    needs_fresh_real = False

    def capacity(self, n_real: int, n_synthetic: int, generations: int) -> int:
        return n_real + n_synthetic

    def update(self, update: PoolUpdate) -> Pool:
        return Pool.concat(
            update.pool.select(update.pool.is_real), Pool.of(update.new_samples, update.generation)
        )


@DYNAMICS.register("accumulate")
class Accumulate:
    """Gerstgrasser et al.: the real set and every generation's samples are kept."""

    needs_fresh_real = False

    def capacity(self, n_real: int, n_synthetic: int, generations: int) -> int:
        return n_real + (generations + 1) * n_synthetic

    def update(self, update: PoolUpdate) -> Pool:
        return Pool.concat(update.pool, Pool.of(update.new_samples, update.generation))


@DYNAMICS.register("fresh")
class Fresh:
    """Alemohammad et al.'s fresh-data loop: a new real draw each generation plus the newest samples."""

    needs_fresh_real = True

    def capacity(self, n_real: int, n_synthetic: int, generations: int) -> int:
        return n_real + n_synthetic

    def update(self, update: PoolUpdate) -> Pool:
        if update.fresh_real is None:
            raise ValueError("the fresh dynamics needs a new real draw each generation")
        return Pool.concat(Pool.of(update.fresh_real, REAL), Pool.of(update.new_samples, update.generation))
