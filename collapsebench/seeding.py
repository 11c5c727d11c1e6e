"""An episode's random streams, their seeds hashed many generations at a time.

Each generation of an env draws from independent per-purpose streams, ``np.random.default_rng([root
seed, stream, generation])``, so that changing one budget (say ``n_eval``) never changes another
stage's randomness. Building such a generator is dominated by ``SeedSequence``'s hash, a Python-level
loop of ≈ 10 µs per generator, 4 generators a step; on the cheapest env that was most of the env's own
cost per step. ``StreamSeeds`` runs the same hash over a block of generations of every stream in one
vectorized numpy pass and hands each ``PCG64`` its seed words: the same bits, tested against
``SeedSequence``, at a fraction of the cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.random.bit_generator import ISpawnableSeedSequence

# SeedSequence's hash constants (numpy/random/bit_generator.pyx, stable since numpy 1.17: a change
# would change every numpy user's seeded streams).
_POOL_SIZE = 4
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_XSHIFT = 16
_MASK = 0xFFFFFFFF
_PCG64_SEED_WORDS = 4  # PCG64 asks its seed sequence for generate_state(4, np.uint64)


def uint32_words(value: int) -> list[int]:
    """A non-negative int as SeedSequence reads one: little-endian 32-bit words, 0 as one word."""
    words = [value & _MASK]
    while value := value >> 32:
        words.append(value & _MASK)
    return words


def _hash_constants(start: int, multiplier: int, count: int) -> list[np.uint32]:
    """The hash constant's successive values: they do not depend on the data, only on the step."""
    constants, value = [], start
    for _ in range(count):
        constants.append(np.uint32(value))
        value = (value * multiplier) & _MASK
    return constants


def seed_sequence_states(entropy: np.ndarray, n_words: int = _PCG64_SEED_WORDS) -> np.ndarray:
    """``SeedSequence(row).generate_state(n_words, np.uint64)`` for every row of ``entropy``.

    ``entropy``: (m, k) uint32 words, one seed per row (no spawn key). Returns (m, n_words) uint64.
    """
    entropy = np.asarray(entropy, dtype=np.uint32)
    if entropy.ndim != 2 or entropy.shape[1] == 0:
        raise ValueError(f"entropy must be (m, k ≥ 1) uint32 words, got shape {entropy.shape}")
    n_rows, n_entropy = entropy.shape
    n_hashes = _POOL_SIZE * _POOL_SIZE + max(0, n_entropy - _POOL_SIZE) * _POOL_SIZE
    constants = _hash_constants(_INIT_A, _MULT_A, n_hashes + 1)
    # hashmix number j xors with the constant's j-th value and multiplies by its (j+1)-th.
    hash_steps = pairwise(constants)
    shift = np.uint32(_XSHIFT)
    mult_l, mult_r = np.uint32(_MIX_MULT_L), np.uint32(_MIX_MULT_R)

    def hashmix(value: np.ndarray) -> np.ndarray:
        xor_with, multiply_by = next(hash_steps)
        value = (value ^ xor_with) * multiply_by  # uint32 arithmetic wraps, as in C
        return value ^ (value >> shift)

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        result = mult_l * x - mult_r * y
        return result ^ (result >> shift)

    zeros = np.zeros(n_rows, dtype=np.uint32)
    pool = [hashmix(entropy[:, i] if i < n_entropy else zeros) for i in range(_POOL_SIZE)]
    for source in range(_POOL_SIZE):
        for target in range(_POOL_SIZE):
            if source != target:
                pool[target] = mix(pool[target], hashmix(pool[source]))
    for source in range(_POOL_SIZE, n_entropy):
        for target in range(_POOL_SIZE):
            pool[target] = mix(pool[target], hashmix(entropy[:, source]))

    hash_b = _hash_constants(_INIT_B, _MULT_B, 2 * n_words + 1)
    state = np.empty((n_rows, 2 * n_words), dtype=np.uint32)
    for i in range(2 * n_words):
        value = (pool[i % _POOL_SIZE] ^ hash_b[i]) * hash_b[i + 1]
        state[:, i] = value ^ (value >> shift)
    # Two uint32 words make one uint64, low word first, as SeedSequence assembles them.
    low, high = state[:, 0::2].astype(np.uint64), state[:, 1::2].astype(np.uint64)
    return low | (high << np.uint64(32))


class _SeededWords(ISpawnableSeedSequence):
    """What PCG64 reads from a seed sequence, computed ahead. Anything else it is asked (spawning,
    other state sizes, ``entropy``) goes to the real ``SeedSequence``, built only then."""

    def __init__(self, entropy: Sequence[int], pcg64_words: np.ndarray) -> None:
        self._entropy = entropy
        self._pcg64_words = pcg64_words
        self._real: np.random.SeedSequence | None = None

    @property
    def real(self) -> np.random.SeedSequence:
        if self._real is None:
            self._real = np.random.SeedSequence(list(self._entropy))
        return self._real

    def generate_state(self, n_words: int, dtype: Any = np.uint32) -> np.ndarray:
        if n_words == _PCG64_SEED_WORDS and np.dtype(dtype) == np.uint64:
            return self._pcg64_words.copy()
        return self.real.generate_state(n_words, dtype)

    def spawn(self, n_children: int) -> list[np.random.SeedSequence]:
        return self.real.spawn(n_children)

    def __getattr__(self, name: str) -> Any:  # entropy, spawn_key, pool, n_children_spawned, ...
        if name.startswith("_"):  # not set yet (copy and pickle probe before __init__ has run)
            raise AttributeError(name)
        return getattr(self.real, name)

    def __reduce__(self) -> tuple[type[np.random.SeedSequence], tuple[list[int]]]:
        # A pickled or copied generator (a model may keep one) carries numpy's own SeedSequence.
        return np.random.SeedSequence, (list(self._entropy),)


class StreamSeeds:
    """Generators ``np.random.default_rng([root_seed, stream, index])``, the same bits. Seeds of the
    given streams are hashed a block of indices at a time, on first use; other streams, and indices
    of more than one word, are built directly."""

    block = 128  # indices hashed together: one pass costs about as much as a handful of generators

    def __init__(self, root_seed: int, streams: Sequence[int]) -> None:
        if not all(0 <= stream < 2**32 for stream in streams):
            raise ValueError(f"streams must be in [0, 2**32), got {list(streams)}")
        self.root_words = uint32_words(root_seed)
        self.streams = tuple(streams)
        self._slot = {stream: slot for slot, stream in enumerate(self.streams)}
        self._blocks: dict[int, np.ndarray] = {}  # block number -> (stream slot, index in block, 4)

    def generator(self, stream: int, index: int) -> np.random.Generator:
        entropy = (*self.root_words, *uint32_words(stream), *uint32_words(index))
        slot = self._slot.get(stream)
        if slot is None or not 0 <= index < 2**32:
            return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(entropy))))
        number, offset = divmod(index, self.block)
        words = self._blocks.get(number)
        if words is None:
            words = self._blocks[number] = self._hash_block(number)
        return np.random.Generator(np.random.PCG64(_SeededWords(entropy, words[slot, offset])))

    def _hash_block(self, number: int) -> np.ndarray:
        indices = np.arange(number * self.block, min((number + 1) * self.block, 2**32), dtype=np.uint64)
        n_streams, n_indices = len(self.streams), len(indices)
        # Row (slot, i) holds the words [*root_words, stream, index i].
        entropy = np.empty((n_streams * n_indices, len(self.root_words) + 2), dtype=np.uint32)
        entropy[:, :-2] = self.root_words
        entropy[:, -2] = np.repeat(np.asarray(self.streams, dtype=np.uint32), n_indices)
        entropy[:, -1] = np.tile(indices.astype(np.uint32), n_streams)
        return seed_sequence_states(entropy).reshape(n_streams, n_indices, _PCG64_SEED_WORDS)
