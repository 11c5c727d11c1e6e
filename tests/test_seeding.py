"""The episode's precomputed seeds give numpy's own streams, bit for bit."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from collapsebench.seeding import StreamSeeds, seed_sequence_states, uint32_words


@pytest.mark.parametrize("n_entropy_words", [1, 2, 3, 4, 5, 9])
@pytest.mark.parametrize("n_words", [4, 8])
def test_hash_equals_seed_sequence(n_entropy_words: int, n_words: int):
    # Fewer words than SeedSequence's pool (zero padding), as many, and more (the extra mixing loop).
    rng = np.random.default_rng(n_entropy_words)
    entropy = rng.integers(0, 2**32, size=(40, n_entropy_words), dtype=np.uint64).astype(np.uint32)
    entropy[0] = 0
    entropy[1] = 2**32 - 1
    expected = [np.random.SeedSequence(row).generate_state(n_words, np.uint64) for row in entropy]
    np.testing.assert_array_equal(seed_sequence_states(entropy, n_words), np.array(expected))


def test_hash_refuses_entropy_that_is_not_a_table_of_words():
    with pytest.raises(ValueError, match=r"\(m, k ≥ 1\)"):
        seed_sequence_states(np.zeros((3, 0), dtype=np.uint32))
    with pytest.raises(ValueError, match=r"\(m, k ≥ 1\)"):
        seed_sequence_states(np.zeros(3, dtype=np.uint32))


def test_uint32_words_are_how_seed_sequence_reads_an_int():
    for value in (0, 1, 2**32 - 1, 2**32, 2**63 - 1, 3**50):
        words = np.array(uint32_words(value), dtype=np.uint32)
        assert (np.random.SeedSequence(value).pool == np.random.SeedSequence(words).pool).all()


@pytest.mark.parametrize("root_seed", [0, 5, 2**32 - 1, 2**32, 2**63 - 1])
def test_stream_generators_equal_default_rng(root_seed: int):
    seeds = StreamSeeds(root_seed, streams=[2, 3, 6])
    last = 2**32 - 1  # the last one-word index: a block cut short
    # Hashed (several blocks, out of order), and built directly (another stream, a two-word index).
    for stream, index in [(2, 0), (3, 4), (6, 300), (2, last), (6, 2), (1, 0), (3, 2**32 + 5)]:
        expected = np.random.default_rng([root_seed, stream, index])
        generator = seeds.generator(stream, index)
        assert generator.bit_generator.state == expected.bit_generator.state
        np.testing.assert_array_equal(generator.random(3), expected.random(3))


def test_precomputed_generators_still_spawn_and_report_their_entropy():
    # A model may spawn child streams from the generator it is given: same children as numpy's.
    generator = StreamSeeds(2**40 + 3, streams=[2]).generator(2, 1)
    expected = np.random.default_rng([2**40 + 3, 2, 1])
    children, expected_children = generator.spawn(2), expected.spawn(2)
    for child, expected_child in zip(children, expected_children, strict=True):
        np.testing.assert_array_equal(child.random(4), expected_child.random(4))
    seed_sequence = generator.bit_generator.seed_seq
    assert list(seed_sequence.entropy) == [3, 2**8, 2, 1]  # the root's two words, stream, index
    np.testing.assert_array_equal(
        seed_sequence.generate_state(3), expected.bit_generator.seed_seq.generate_state(3)
    )


def test_precomputed_generators_copy_and_pickle_like_numpys():
    # A model that keeps its generator is deep-copied by clone() and pickled by process pools.
    generator = StreamSeeds(5, streams=[2]).generator(2, 1)
    expected = np.random.default_rng([5, 2, 1])
    generator.random(), expected.random()
    for twin in (copy.deepcopy(generator), pickle.loads(pickle.dumps(generator))):
        np.testing.assert_array_equal(twin.random(3), copy.deepcopy(expected).random(3))
        (child,), (expected_child,) = twin.spawn(1), copy.deepcopy(expected).spawn(1)
        np.testing.assert_array_equal(child.random(2), expected_child.random(2))


def test_streams_beyond_one_word_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 2\*\*32\)"):
        StreamSeeds(0, streams=[2**32])
