"""Shared first models: a cached generation 0 gives the bits a fit would, and only the same fit hits."""

from __future__ import annotations

import numpy as np

import collapsebench as cb
from collapsebench.first_models import FirstModelCache
from collapsebench.models import WeightedData
from collapsebench.runner import run_lineage
from collapsebench.store import ResultsStore
from collapsebench.sweep import sweep

from conftest import TINY_MLP

DIGITS = {"generations": 2, "n_test": 40, "n_eval": 40, "model_kwargs": TINY_MLP}


def _metrics(store: ResultsStore, run_id: str) -> dict[tuple[int, str], float]:
    frame = store.to_dataframe([run_id])
    return {(row.generation, row.metric): row.value for row in frame.itertuples()}


def test_a_restored_first_model_gives_the_same_lineage_as_a_fitted_one(tmp_path):
    # The MLP carries optimizer moments and an EMA into later generations: a restore must bring them.
    plain = cb.make("Digits-mix-v0", **DIGITS)
    cache = FirstModelCache(tmp_path / "first")
    fitted = cb.make("Digits-mix-v0", first_models=cache, **DIGITS)
    restored = cb.make("Digits-mix-v0", first_models=cache, **DIGITS)
    policy = cb.make_policy("lambda-mix", lam=1.0)
    runs = []
    for env in (plain, fitted, restored):
        obs, _ = env.reset(seed=3)
        runs.append([])
        for _ in range(3):
            obs, _, _, _, info = env.step(policy(obs))
            runs[-1].append(info["metrics"])
    assert runs[0] == runs[1] == runs[2]
    assert (cache.misses, cache.hits) == (1, 1)
    assert len(list(cache.folder.glob("*.npz"))) == 1


def test_lineages_of_one_seed_share_one_first_model_through_the_store(tmp_path):
    store = ResultsStore(tmp_path / "runs.sqlite")
    for policy in ("full-synthetic", "real-only", "accumulate"):
        run_lineage("Digits-mix-v0", cb.make_policy(policy), 0, store, env_kwargs=DIGITS)
    run_lineage("Digits-mix-v0", cb.make_policy("real-only"), 1, store, env_kwargs=DIGITS)
    assert len(list(store.first_model_dir.glob("*.npz"))) == 2  # one per seed, not per lineage
    # The same lineage without the cache's folder: another store, so a fresh fit.
    fresh = ResultsStore(tmp_path / "fresh.sqlite")
    run_id = run_lineage("Digits-mix-v0", cb.make_policy("accumulate"), 0, fresh, env_kwargs=DIGITS)
    assert _metrics(fresh, run_id) == _metrics(store, run_id)


def test_a_sweep_shares_first_models_across_its_workers(tmp_path):
    config = {
        "envs": "Digits-mix-v0",
        "seeds": 0,
        "env_params": DIGITS,
        "agents": [{"policy": "full-synthetic"}, {"policy": "lambda-mix", "params": {"lam": 0.5}}],
    }
    report = sweep(config, tmp_path / "grid.sqlite", backend="inline")
    assert report.ok
    assert len(list(report.store.first_model_dir.glob("*.npz"))) == 1


def _fit_inputs(seed: int = 0, n: int = 50) -> tuple[WeightedData, np.random.Generator]:
    samples = np.random.default_rng(seed).normal(size=(n, 2))
    return WeightedData.uniform(samples), np.random.default_rng([seed, 7])


def test_the_key_changes_with_everything_the_fit_reads(tmp_path):
    cache = FirstModelCache(tmp_path)
    data, rng = _fit_inputs()
    key = cache.key(cb.make_model("gmm", n_components=2), data, rng)
    assert key == cache.key(cb.make_model("gmm", n_components=2), *_fit_inputs())
    other_data = WeightedData(data.samples + 1e-12, data.weights)
    other_weights = WeightedData(data.samples, np.r_[data.weights[:-2], 0.5 / 50, 1.5 / 50])
    assert (
        len(
            {
                key,
                cache.key(cb.make_model("gmm", n_components=3), data, rng),
                cache.key(cb.make_model("kde"), data, rng),
                cache.key(cb.make_model("gmm", n_components=2), other_data, rng),
                cache.key(cb.make_model("gmm", n_components=2), other_weights, rng),
                cache.key(cb.make_model("gmm", n_components=2), data, np.random.default_rng([0, 8])),
            }
        )
        == 6
    )


def test_a_damaged_file_is_refitted_and_replaced(tmp_path):
    cache = FirstModelCache(tmp_path)
    data, _ = _fit_inputs()
    model = cb.make_model("gmm", n_components=2)
    key = cache.key(model, data, np.random.default_rng([0, 7]))
    cache.folder.mkdir(exist_ok=True)
    cache.path(key).write_bytes(b"PK\x03\x04 half a zip")
    assert not cache.fit(model, data, np.random.default_rng([0, 7]))
    again = cb.make_model("gmm", n_components=2)
    assert cache.fit(again, data, np.random.default_rng([0, 7]))
    assert np.array_equal(
        again.sample(5, np.random.default_rng(1)), model.sample(5, np.random.default_rng(1))
    )


def test_an_unwritable_folder_only_costs_the_fit(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = FirstModelCache(blocker / "first-models")  # its parent is a file: nothing can be written
    model = cb.make_model("gmm", n_components=2)
    assert not cache.fit(model, *_fit_inputs())
    assert model.sample(3, np.random.default_rng(0)).shape == (3, 2)
