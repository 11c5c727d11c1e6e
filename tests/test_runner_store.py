"""evaluate(), the SQLite store, skipping finished runs, resuming interrupted ones, concurrent writers."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest

import collapsebench as cb
from collapsebench.plotting import agent_labels, summarize
from collapsebench.store import TIDY_COLUMNS, ResultsStore, canonical_json, export, parse_canonical_json

SMALL = {"n_test": 30, "n_eval": 30}


def small_eval(store, seeds=range(2), generations=3, policy="lambda-mix", checkpoint_every_s=60.0, **kwargs):
    return cb.evaluate(
        "Gaussian-mix-v0",
        policy=policy,
        policy_kwargs=kwargs or {"lam": 1.0},
        seeds=seeds,
        generations=generations,
        env_kwargs=SMALL,
        store=store,
        progress=False,
        checkpoint_every_s=checkpoint_every_s,
    )


def test_evaluate_returns_tidy_rows(tmp_path):
    frame = small_eval(tmp_path / "r.sqlite")
    assert set(TIDY_COLUMNS) <= set(frame.columns)
    assert len(frame) == 2 * 4 * 9  # seeds × generations (T + 1) × metrics
    assert set(frame["env_id"]) == {"Gaussian-mix-v0"} and set(frame["env_version"]) == {0}
    assert set(frame["policy"]) == {"lambda-mix"} and set(frame["params"]) == {'{"lam":1.0}'}
    assert set(frame["model"]) == {"gaussian"}
    assert not frame.duplicated(["seed", "generation", "metric"]).any()


def test_evaluate_matches_a_manual_rollout(tmp_path):
    frame = small_eval(tmp_path / "r.sqlite", seeds=[4])
    env = cb.make("Gaussian-mix-v0", generations=3, **SMALL)
    policy = cb.make_policy("lambda-mix", lam=1.0)
    obs, _ = env.reset(seed=4)
    for generation in range(4):
        obs, _, _, _, info = env.step(policy(obs))
        stored = frame[frame["generation"] == generation].set_index("metric")["value"].to_dict()
        assert stored == info["metrics"]


def test_finished_runs_are_skipped(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "r.sqlite")
    first = small_eval(store)
    monkeypatch.setattr(cb.CollapseEnv, "step", lambda *a, **k: pytest.fail("a finished run was re-run"))
    again = small_eval(store)
    pd.testing.assert_frame_equal(first, again)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"snapshots": -1}, "snapshots must be an integer ≥ 0, got -1"),  # was: no snapshots, silently
        ({"checkpoint_every_s": -5.0}, "checkpoint_every_s must be a number in [0, inf], got -5.0"),
    ],
)
def test_evaluate_checks_its_arguments_before_the_store_is_touched(tmp_path, setting, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        cb.evaluate("Gaussian-mix-v0", "real-only", store=tmp_path / "r.sqlite", progress=False, **setting)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_takes_seeds_as_the_shell_writes_them_or_as_any_integers(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    for seeds in ("0-1", np.arange(2), range(2), [np.int64(0), 1]):  # a string was iterated by character
        frame = cb.evaluate(
            "Gaussian-mix-v0", "real-only", seeds=seeds, generations=1, store=store, progress=False
        )
        assert sorted(frame["seed"].unique()) == [0, 1]
    assert len(store.runs()) == 2  # the same two runs each time
    for seeds, message in (
        ([], "no seeds"),
        ([-1], "seeds must be ≥ 0, got -1"),
        ([0.5], "must be integers"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            cb.evaluate("Gaussian-mix-v0", "real-only", seeds=seeds, store=store, progress=False)


def test_different_params_are_different_runs(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    small_eval(store, lam=0.5)
    small_eval(store, lam=1.0)
    assert len(store.runs()) == 4


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("keep_checkpoints", [True, False])
def test_an_interrupted_run_resumes_to_the_same_results(tmp_path, monkeypatch, keep_checkpoints):
    reference = small_eval(tmp_path / "reference.sqlite", seeds=[0], generations=5)

    store = ResultsStore(tmp_path / "r.sqlite")
    original_commit = ResultsStore.commit_generation
    commits = {"n": 0}

    def crash_after_three(self, key, generation, metrics, wall_time_s):
        if commits["n"] == 3:
            raise Interrupt
        commits["n"] += 1
        return original_commit(self, key, generation, metrics, wall_time_s)

    monkeypatch.setattr(ResultsStore, "commit_generation", crash_after_three)
    with pytest.raises(Interrupt):
        # 0 s: a checkpoint after every generation; 60 s: none in so short a run (replay instead).
        small_eval(store, seeds=[0], generations=5, checkpoint_every_s=0.0 if keep_checkpoints else 60.0)
    monkeypatch.setattr(ResultsStore, "commit_generation", original_commit)
    (run_id,) = store.runs()["run_id"]
    assert store.completed_generations(run_id) == 3
    assert (store.latest_checkpoint(run_id, at_most=2) is not None) == keep_checkpoints

    steps = {"n": 0}
    original_step = cb.CollapseEnv.step

    def counting_step(self, action):
        steps["n"] += 1
        return original_step(self, action)

    monkeypatch.setattr(cb.CollapseEnv, "step", counting_step)
    resumed = small_eval(store, seeds=[0], generations=5)
    assert steps["n"] == (3 if keep_checkpoints else 6)  # a checkpoint saves the first three generations
    columns = ["generation", "metric", "value"]
    pd.testing.assert_frame_equal(resumed[columns], reference[columns])
    assert not store.checkpoint_dir(run_id).exists()  # cleaned up once the run finished


def test_finishing_a_run_removes_a_checkpoint_a_killed_writer_left_half_written(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.save_checkpoint("run", 3, {"x": np.zeros(2)})
    stale = store.checkpoint_dir("run") / ".gen-00004.tmp.npz"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"partial")
    assert store.latest_checkpoint("run", at_most=10)[0] == 3  # the stale file is never read
    store.save_checkpoint("run", 1, {"x": np.ones(2)})
    generation, state = store.latest_checkpoint("run", at_most=2)  # none past what the store committed
    assert generation == 1 and state["x"].tolist() == [1.0, 1.0]
    store.prune_checkpoints("run", keep_generation=None)
    assert not store.checkpoint_dir("run").exists()


def test_a_generation_is_committed_once_even_by_two_writers(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    frame = small_eval(store, seeds=[0], generations=1)
    (run_id,) = frame["run_id"].unique()
    from collapsebench.store import RunKey

    row = store.runs().iloc[0]
    key = RunKey(
        row.env_id,
        row.env_version,
        row.env_config,
        row.model,
        row.model_params,
        row.policy,
        row.policy_params,
        row.seed,
        row.generations,
    )
    assert key.run_id == run_id
    assert store.commit_generation(key, 1, {"fd": 123.0}, 0.0) is False
    assert len(store.to_dataframe()) == len(frame)
    # Nor out of turn: a new run's generation 1 before its generation 0 leaves no gap behind.
    fresh = dataclasses.replace(key, seed=99)
    store.begin_run(fresh, "test")
    assert store.commit_generation(fresh, 1, {"fd": 1.0}, 0.0) is False
    assert store.completed_generations(fresh.run_id) == 0
    assert store.commit_generation(fresh, 0, {"fd": 1.0}, 0.0) is True


class _InterruptedConnection:
    """A store connection on which a Ctrl-C lands right after (or right before) COMMIT."""

    def __init__(self, connection: sqlite3.Connection, after_commit: bool) -> None:
        self.connection, self.after_commit = connection, after_commit

    def __getattr__(self, name: str):
        return getattr(self.connection, name)

    def execute(self, sql: str, *arguments):
        if sql == "COMMIT" and not self.after_commit:
            raise KeyboardInterrupt
        result = self.connection.execute(sql, *arguments)
        if sql == "COMMIT":
            raise KeyboardInterrupt
        return result


@pytest.mark.parametrize("after_commit", [True, False], ids=["after-commit", "before-commit"])
def test_an_interrupt_at_commit_stays_an_interrupt_and_the_generation_is_whole_or_absent(
    tmp_path, monkeypatch, after_commit
):
    """Ctrl-C during a commit: the caller sees the KeyboardInterrupt (a sweep then exits 130), not a
    failed ROLLBACK of a transaction COMMIT already ended; the generation is stored whole or not at all."""
    from collapsebench.store import RunKey

    store = ResultsStore(tmp_path / "r.sqlite")
    key = RunKey("Gaussian-mix-v0", 0, "{}", "gaussian", "{}", "lambda-mix", "{}", 0, 3)
    assert store.begin_run(key, "test") == 0
    with store._connect() as connection:
        interrupted = _InterruptedConnection(connection, after_commit)
    monkeypatch.setattr(store, "_connection", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.commit_generation(key, 0, {"fd": 1.0, "w2": 2.0}, 0.5)
    monkeypatch.setattr(store, "_connection", interrupted.connection)
    assert not interrupted.connection.in_transaction
    assert store.completed_generations(key.run_id) == (1 if after_commit else 0)
    assert len(store.to_dataframe()) == (2 if after_commit else 0)
    assert store.commit_generation(key, 1 if after_commit else 0, {"fd": 1.0}, 0.1) is True


def _worker(path: str, seed: int) -> None:
    small_eval(path, seeds=[seed], generations=4)


def test_several_processes_can_write_to_one_store(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(path, seed)) for seed in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    frame = ResultsStore(path).to_dataframe()
    assert sorted(frame["seed"].unique()) == [0, 1, 2]
    assert len(frame) == 3 * 5 * 9
    with sqlite3.connect(path) as connection:
        assert (
            connection.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL").fetchone()[0] == 3
        )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trips(tmp_path, suffix):
    frame = small_eval(tmp_path / "r.sqlite", seeds=[0], generations=1)
    path = export(frame, tmp_path / f"out{suffix}")
    loaded = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert np.allclose(loaded["value"], frame["value"]) and list(loaded.columns) == list(frame.columns)
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        export(frame, tmp_path / "out.xlsx")


def test_default_store_path_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSEBENCH_STORE", str(tmp_path / "env.sqlite"))
    small_eval(None, seeds=[0], generations=0)
    assert (tmp_path / "env.sqlite").exists()


def test_evaluate_accepts_a_policy_instance_and_model_overrides(tmp_path):
    frame = cb.evaluate(
        "GMM2D-mix-v0",
        cb.make_policy("real-only"),
        seeds=[0],
        generations=1,
        model="kde",
        model_kwargs={"bandwidth": 0.3},
        env_kwargs={"n_real": 50, "n_synthetic": 50, "n_test": 30, "n_eval": 30},
        store=tmp_path / "r.sqlite",
        progress=False,
    )
    assert set(frame["model"]) == {"kde"} and '"bandwidth":0.3' in frame["model_params"].iloc[0]
    with pytest.raises(ValueError, match="policy_kwargs"):
        cb.evaluate("GMM2D-mix-v0", cb.make_policy("real-only"), {"lam": 1}, store=tmp_path / "r.sqlite")


@pytest.mark.parametrize("checkpoint_every", ["0", "600"])  # resume from a checkpoint / by replay
def test_a_killed_process_resumes_to_the_same_results(tmp_path, checkpoint_every):
    import subprocess
    import sys
    import time

    arguments = [
        "run",
        "GMM2D-mix-v0",
        "--policy",
        "lambda-mix",
        "--seeds",
        "0",
        "--generations",
        "40",
        "--env-param",
        "n_real=100",
        "--env-param",
        "n_synthetic=100",
        "--env-param",
        "n_test=50",
        "--env-param",
        "n_eval=50",
        "--checkpoint-every",
        checkpoint_every,
        "--no-progress",
    ]

    def command(store):
        return [sys.executable, "-m", "collapsebench", *arguments, "--store", str(store)]

    subprocess.run(command(tmp_path / "straight.sqlite"), check=True, capture_output=True)
    killed = tmp_path / "killed.sqlite"
    process = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = ResultsStore(killed).runs()["completed_generations"] if killed.exists() else pd.Series([0])
        if len(done) and done.iloc[0] >= 10:
            break
        time.sleep(0.05)
    process.kill()  # SIGKILL: no cleanup, no finally blocks
    process.wait()
    (completed,) = ResultsStore(killed).runs()["completed_generations"]
    assert 10 <= completed < 41, "the process was not killed mid-run"

    subprocess.run(command(killed), check=True, capture_output=True)
    columns = ["generation", "metric", "value"]
    pd.testing.assert_frame_equal(
        ResultsStore(killed).to_dataframe()[columns],
        ResultsStore(tmp_path / "straight.sqlite").to_dataframe()[columns],
    )


def test_runs_of_one_agent_under_other_env_settings_are_told_apart(tmp_path):
    """One agent run with the spec's n_real and with n_real=20 in one store: the frame says how the runs
    differ, so labels, and with them summaries and curves, keep them apart instead of pooling their
    seeds. Runs that agree on every setting say nothing (``{}``)."""
    store = tmp_path / "r.sqlite"
    small_eval(store, generations=1)
    pooled_alone = ResultsStore(store).to_dataframe()
    assert set(pooled_alone["env_settings"]) == {"{}"}
    assert set(agent_labels(pooled_alone)) == {"lambda-mix(lam=1.0)"}
    cb.evaluate(
        "Gaussian-mix-v0",
        policy="lambda-mix",
        policy_kwargs={"lam": 1.0},
        seeds=range(2),
        generations=1,
        env_kwargs={**SMALL, "n_real": 20},
        store=store,
        progress=False,
    )
    frame = ResultsStore(store).to_dataframe()
    assert set(frame["env_settings"]) == {'{"n_real":100}', '{"n_real":20}'}
    summary = summarize(frame, ["std_ratio"]).set_index("agent")
    assert list(summary.index) == ["lambda-mix(lam=1.0) · n_real=100", "lambda-mix(lam=1.0) · n_real=20"]
    assert (summary["seeds"] == 2).all()
    by_setting = frame[frame["metric"] == "std_ratio"].groupby("env_settings")
    last = by_setting.apply(lambda rows: rows[rows["generation"] == 1]["value"].mean())
    assert summary["mean"].tolist() == pytest.approx([last['{"n_real":100}'], last['{"n_real":20}']])

    # Settings are compared within an env: runs of another env, whose configs differ in everything,
    # neither gain labels nor change these; and the store selects by env as asked.
    cb.evaluate(
        "Gaussian-replace-v0", policy="full-synthetic", seeds=range(2), generations=1,
        env_kwargs=SMALL, store=store, progress=False,
    )  # fmt: skip
    results = ResultsStore(store)
    everything = results.to_dataframe()
    assert set(everything[everything["env_id"] == "Gaussian-replace-v0"]["env_settings"]) == {"{}"}
    replace = results.to_dataframe(env_id="Gaussian-replace-v0")
    assert set(replace["env_id"]) == {"Gaussian-replace-v0"} and set(replace["env_settings"]) == {"{}"}
    mix = results.to_dataframe(env_id="Gaussian-mix-v0")
    assert mix.drop(columns="env_settings").equals(frame.drop(columns="env_settings"))
    assert set(mix["env_settings"]) == {'{"n_real":100}', '{"n_real":20}'}
    assert set(results.runs(env_id="Gaussian-replace-v0")["env_id"]) == {"Gaussian-replace-v0"}
    one_run = replace["run_id"].iloc[0]
    assert results.to_dataframe([one_run], env_id="Gaussian-mix-v0").empty  # both conditions hold


def test_labels_name_the_model_settings_runs_differ_in():
    frame = pd.DataFrame(
        {
            "env_id": "GMM2D-mix-v0",
            "model": ["kde", "kde", "gmm"],
            "model_params": ['{"bandwidth":0.3}', '{"bandwidth":0.5}', '{"n_components":8}'],
            "policy": "real-only",
            "params": "{}",
        }
    )
    assert agent_labels(frame).tolist() == [
        "real-only · kde(bandwidth=0.3)",
        "real-only · kde(bandwidth=0.5)",
        "real-only · gmm(n_components=8)",
    ]
    same_model = frame.iloc[:1].assign(model_params=None)
    assert agent_labels(pd.concat([frame.iloc[:1], same_model])).tolist() == ["real-only", "real-only"]


def test_labels_name_the_metrics_a_run_adds_not_its_whole_list():
    """Runs of one agent made with extra metrics (``--add-metric``) are told apart by what they add."""
    base = ["fd", "w2", "std_ratio"]
    frame = pd.DataFrame(
        {
            "env_id": "Gaussian-replace-v0",
            "model": "gaussian",
            "policy": "full-synthetic",
            "params": "{}",
            "env_settings": [
                json.dumps({"metrics": base}),
                json.dumps({"metrics": [*base, "tail_mass"]}),
                json.dumps({"metrics": [*base, "tail_mass", "memorization"]}),
                json.dumps({"metrics": ["fd", "w2"], "n_real": 20}),
            ],
        }
    )
    assert agent_labels(frame).tolist() == [
        "full-synthetic · metrics +std_ratio",
        "full-synthetic · metrics +std_ratio +tail_mass",
        "full-synthetic · metrics +std_ratio +tail_mass +memorization",
        "full-synthetic · n_real=20",
    ]
    assert agent_labels(frame.iloc[:2]).tolist() == ["full-synthetic", "full-synthetic · metrics +tail_mass"]


def test_canonical_json_reads_back_with_its_non_finite_floats():
    params = {"lam": float("inf"), "bounds": [1.0, float("-inf")], "bandwidth": "scott", "q": float("nan")}
    text = canonical_json(params)
    assert json.loads(text)["lam"] == "inf"  # JSON has no infinities: the store writes a string
    back = parse_canonical_json(text)
    assert back["lam"] == float("inf") and back["bounds"] == [1.0, float("-inf")]
    assert back["bandwidth"] == "scott" and np.isnan(back["q"])
    assert canonical_json(back) == text
