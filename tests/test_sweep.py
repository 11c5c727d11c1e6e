"""Sweeps: config grids, the one-writer driver, skipping and resuming, dead workers, the back-ends."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from importlib import import_module
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

import collapsebench as cb
from collapsebench.executors import (
    EXECUTORS,
    THREAD_VARIABLES,
    InlineExecutor,
    Resources,
    available_cores,
    make_executor,
)
from collapsebench.policies import POLICIES, CurationPolicy
from collapsebench.registration import default_settings
from collapsebench.store import ResultsStore
from collapsebench.sweep import (
    Cell,
    _check_workers_can_import,
    cells_from_config,
    grid,
    load_sweep,
    parse_seeds,
    plan,
    run_chunk,
    sweep,
)

from conftest import HALF_WEIGHT_PLUGIN

SMALL = {"n_real": 50, "n_synthetic": 50, "n_test": 50, "n_eval": 50}
CONFIG = {
    "envs": ["Gaussian-mix-v0", "Gaussian-replace-v0"],
    "seeds": "0-1",
    "generations": 6,
    "env_params": SMALL,
    "agents": [
        {"policy": "lambda-mix", "params": {"lam": [0.5, 2.0]}},
        {"policy": "full-synthetic"},
    ],
}
COLUMNS = ["run_id", "generation", "metric", "value"]


def stored(path: Path) -> pd.DataFrame:
    return ResultsStore(path).to_dataframe()[COLUMNS].sort_values(COLUMNS[:3]).reset_index(drop=True)


def test_grid_expands_lists_and_keeps_wrapped_lists_whole():
    assert grid({"a": [1, 2], "b": 3, "c": [[4, 5]]}) == [
        {"a": 1, "b": 3, "c": [4, 5]},
        {"a": 2, "b": 3, "c": [4, 5]},
    ]
    assert grid(None) == [{}]


def test_config_expands_to_env_agent_seed_cells():
    cells = cells_from_config(CONFIG)
    assert len(cells) == 2 * (2 + 1) * 2
    assert {cell.policy_params.get("lam") for cell in cells} == {0.5, 2.0, None}
    assert {cell.seed for cell in cells} == {0, 1} and {cell.generations for cell in cells} == {6}
    composed = cells_from_config(
        {
            "seeds": [3],
            "agents": [
                {
                    "envs": "GMM2D-mix-v0",
                    "seeds": "0-2",
                    "policy": ["filter-likelihood", "lambda-mix"],
                    "params": {"filter-likelihood.q": 0.2, "lambda-mix.lam": [0.5, 1.0]},
                }
            ],
        }
    )
    assert len(composed) == 2 * 3 and {cell.seed for cell in composed} == {0, 1, 2}
    assert composed[0].build_policy().name == "filter-likelihood>lambda-mix"


def test_added_metrics_join_each_env_s_own_or_its_overridden_metrics():
    cells = cells_from_config(
        {
            "envs": ["Gaussian-mix-v0", "Digits-mix-v0"],
            "seeds": [0],
            "add_metrics": ["tail_mass"],
            "agents": [
                {"policy": "real-only", "add_metrics": ["memorization", "tail_mass"]},
                {"policy": "real-only", "env_params": {"metrics": [["fd"]], "headline_metric": "fd"}},
            ],
        }
    )
    metrics = [(cell.env_id, cell.env_kwargs()["metrics"]) for cell in cells]
    gaussian, digits = (default_settings(env)["metrics"] for env in ("Gaussian-mix-v0", "Digits-mix-v0"))
    assert "memorization" in digits and "memorization" not in gaussian  # each named once
    assert metrics == [
        ("Gaussian-mix-v0", (*gaussian, "tail_mass", "memorization")),
        ("Digits-mix-v0", (*digits, "tail_mass")),
        ("Gaussian-mix-v0", ("fd", "tail_mass")),
        ("Digits-mix-v0", ("fd", "tail_mass")),
    ]


def test_a_bad_config_lists_every_problem():
    with pytest.raises(ValueError) as error:
        cells_from_config(
            {
                "envz": [],
                "seeds": "a-b",
                "add_metrics": ["tails"],
                "agents": [{"policy": "lambda-mix", "parms": {}, "add_metrics": "tail_mass"}],
            }
        )
    message = str(error.value)
    for problem in (
        "unknown top-level keys ['envz']",
        "'seeds'",
        "unknown keys ['parms']",
        "no envs",
        "'add_metrics': unknown metric(s) tails; registered: coverage",
        "'agents #1: add_metrics' must be a list of metric names, got 'tail_mass'",
    ):
        assert problem in message
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(ValueError, match="integers"):
        parse_seeds([0, "1"])
    with pytest.raises(
        ValueError, match=re.escape("the seed range 5-2 is empty: write it low to high (2-5)")
    ):
        parse_seeds("0,5-2")  # was "no seeds", or a silently shorter list beside other seeds
    with pytest.raises(ValueError, match="no seeds"):
        parse_seeds([])
    for generations in (-1, 2.5, True, "10"):
        with pytest.raises(
            ValueError,
            match=re.escape(f"'generations': generations must be an integer ≥ 0, got {generations!r}"),
        ):
            cells_from_config(
                {"envs": "Gaussian-mix-v0", "generations": generations, "agents": [{"policy": "real-only"}]}
            )
    whole = cells_from_config(
        {"envs": "Gaussian-mix-v0", "generations": 3.0, "agents": [{"policy": "real-only"}]}
    )
    assert {cell.generations for cell in whole} == {3}


def test_load_sweep_reads_toml_and_names_the_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('envs = "Gaussian-mix-v0"\nseeds = [0, 1]\n[[agents]]\npolicy = "real-only"\n')
    assert [cell.seed for cell in load_sweep(path)] == [0, 1]
    path.write_text("envs = [")
    with pytest.raises(ValueError, match=r"grid\.toml is not valid TOML"):
        load_sweep(path)
    with pytest.raises(FileNotFoundError, match="no sweep config"):
        load_sweep(tmp_path / "missing.toml")


def test_the_checked_in_sweeps_are_valid(tmp_path):
    """``plan`` builds every cell's env (with its env and model parameters), model and policy, and
    raises on the first that cannot be built: the sweeps the README runs stay valid as the code moves."""
    folder = Path(__file__).parents[1] / "baselines" / "sweeps"
    configs = sorted(folder.glob("*.toml"))
    assert configs
    for path in configs:
        cells = load_sweep(path)
        for cell in cells:
            cell.build_policy()
        assert len(list(plan(cells, ResultsStore(tmp_path / f"{path.stem}.sqlite")))) == len(cells) > 0


def test_a_bad_cell_fails_before_anything_runs(tmp_path):
    config = {
        **CONFIG,
        "agents": [{"policy": "full-synthetic"}, {"policy": "lambda-mix", "params": {"x": 1}}],
    }
    with pytest.raises(ValueError) as refusal:
        sweep(config, tmp_path / "r.sqlite", backend="inline", progress=False)
    assert list(tmp_path.iterdir()) == []  # the store is not even created
    # The cell is named by what it sets, not by every field of its dataclass.
    assert str(refusal.value).startswith(
        "cell Gaussian-mix-v0 · lambda-mix(x=1) · env(n_real=50, n_synthetic=50, n_test=50, n_eval=50)"
        " · T=6 · seed 0: cannot build policy 'lambda-mix' with {'x': 1}"
    )


def test_a_cell_names_itself_by_what_it_sets():
    cell = Cell(
        "GMM2D-mix-v0",
        ("filter-likelihood", "lambda-mix"),
        3,
        {"lambda-mix.lam": 0.5},
        model="kde",
        model_params={"bandwidth": "scott"},
        added_metrics=("fd",),
    )
    assert str(cell) == (
        "GMM2D-mix-v0 · filter-likelihood>lambda-mix(lambda-mix.lam=0.5) · model kde(bandwidth='scott')"
        " · metrics + fd · seed 3"
    )
    assert str(Cell("Gaussian-mix-v0", ("full-synthetic",), 0, model_params={"unbiased": False})) == (
        "Gaussian-mix-v0 · full-synthetic · model(unbiased=False) · seed 0"
    )


def test_a_sweep_equals_separate_evaluate_calls_and_skips_what_is_done(tmp_path):
    report = sweep(CONFIG, tmp_path / "sweep.sqlite", backend="inline", chunk_seconds=0, progress=False)
    assert report.ok and report.skipped == 0 and len(report.run_ids) == 12
    for env_id in CONFIG["envs"]:
        for policy, kwargs in [
            ("lambda-mix", {"lam": 0.5}),
            ("lambda-mix", {"lam": 2.0}),
            ("full-synthetic", {}),
        ]:
            cb.evaluate(
                env_id, policy, kwargs, seeds=[0, 1], generations=6, env_kwargs=SMALL,
                store=tmp_path / "serial.sqlite", progress=False,
            )  # fmt: skip
    pd.testing.assert_frame_equal(stored(tmp_path / "sweep.sqlite"), stored(tmp_path / "serial.sqlite"))
    assert not any((tmp_path / "sweep.sqlite.checkpoints").iterdir())  # finished runs leave none

    rerun = sweep(CONFIG, tmp_path / "sweep.sqlite", backend="inline", progress=False)
    assert rerun.skipped == 12 and rerun.run_ids == report.run_ids
    assert len(rerun.to_dataframe()) == len(report.to_dataframe())


def test_a_cell_listed_twice_runs_once(tmp_path, monkeypatch):
    """Two grid points that are the same lineage (here λ listed twice) share a run: it is computed
    once, and the report lists its run id for each."""
    chunks: list[str] = []

    def counted(task):
        chunks.append(task.cell.label)
        return run_chunk(task)

    # The module, not cb.sweep (the function, which shadows it as an attribute of the package).
    monkeypatch.setattr(import_module("collapsebench.sweep"), "run_chunk", counted)
    config = {**WORKER_CONFIG, "agents": [{"policy": "lambda-mix", "params": {"lam": [0.5, 0.5]}}]}
    report = sweep(config, tmp_path / "r.sqlite", backend="inline", chunk_seconds=0, progress=False)
    assert report.ok and len(report.run_ids) == 4 and len(set(report.run_ids)) == 2
    assert len(chunks) == 2 * 3  # two lineages of three generations, one chunk each
    assert len(stored(tmp_path / "r.sqlite")) > 0


class _Crashing(InlineExecutor):
    """Inline, but the worker 'dies' on the submissions listed (as a killed pool worker does)."""

    crash_errors = (BrokenProcessPool,)
    crash_on: ClassVar[set[int]] = set()

    def __init__(self, workers: int | None = None) -> None:
        self.submissions = 0

    def submit(self, function, task, resources):
        self.submissions += 1
        if self.submissions in self.crash_on:
            future: Future = Future()
            future.set_exception(BrokenProcessPool("a worker died"))
            return future
        return super().submit(function, task, resources)


@pytest.fixture
def crashing_executor():
    EXECUTORS.register("crashing-test")(_Crashing)
    yield _Crashing
    EXECUTORS.unregister("crashing-test")


def test_a_dead_worker_costs_its_chunk_only(tmp_path, crashing_executor):
    crashing_executor.crash_on = {3, 4, 9}
    report = sweep(CONFIG, tmp_path / "c.sqlite", backend="crashing-test", chunk_seconds=0, progress=False)
    assert report.ok
    sweep(CONFIG, tmp_path / "ok.sqlite", backend="inline", chunk_seconds=0, progress=False)
    pd.testing.assert_frame_equal(stored(tmp_path / "c.sqlite"), stored(tmp_path / "ok.sqlite"))


def test_a_cell_whose_worker_keeps_dying_is_reported_and_a_rerun_finishes_it(tmp_path, crashing_executor):
    config = {**CONFIG, "envs": "Gaussian-mix-v0", "seeds": [0], "agents": [{"policy": "full-synthetic"}]}
    crashing_executor.crash_on = {3, 4, 5}  # the third chunk, and both its retries
    report = sweep(
        config, tmp_path / "c.sqlite", backend="crashing-test", chunk_seconds=0, max_retries=2, progress=False
    )
    (failure,) = report.failures
    assert "died" in failure.error and failure.run_id == report.run_ids[0]
    assert ResultsStore(tmp_path / "c.sqlite").completed_generations(failure.run_id) == 2
    assert sweep(config, tmp_path / "c.sqlite", backend="inline", progress=False).ok
    sweep(config, tmp_path / "ok.sqlite", backend="inline", progress=False)
    pd.testing.assert_frame_equal(stored(tmp_path / "c.sqlite"), stored(tmp_path / "ok.sqlite"))


class _Explodes(CurationPolicy):
    """Fails at generation 3: a bug in a policy under test."""

    def __call__(self, obs):
        if int(obs["generation"]) == 3:
            raise RuntimeError("policy bug at generation 3")
        return np.asarray(obs["valid"], dtype=np.float64)


def test_an_error_in_one_cell_is_reported_and_the_others_finish(tmp_path):
    POLICIES.register("explodes-test")(_Explodes)
    try:
        config = {**CONFIG, "agents": [{"policy": "explodes-test"}, {"policy": "full-synthetic"}]}
        report = sweep(config, tmp_path / "r.sqlite", backend="inline", chunk_seconds=0, progress=False)
    finally:
        POLICIES.unregister("explodes-test")
    assert len(report.failures) == 4  # two envs × two seeds
    assert all("RuntimeError: policy bug at generation 3" in failure.error for failure in report.failures)
    runs = ResultsStore(tmp_path / "r.sqlite").runs().set_index("policy")
    assert set(runs.loc["explodes-test", "completed_generations"]) == {3}
    assert set(runs.loc["full-synthetic", "completed_generations"]) == {7}


def test_executor_arguments_are_checked():
    with pytest.raises(ValueError, match="address"):
        make_executor("local", address="auto")
    with pytest.raises(ValueError, match="at least 1"):
        make_executor("inline", workers=0)
    with pytest.raises(KeyError, match="unknown executor 'dask'"):
        make_executor("dask")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"chunk_seconds": -1.0}, "chunk_seconds must be a number in [0, inf], got -1.0"),
        ({"chunk_seconds": float("nan")}, "chunk_seconds must be a number in [0, inf], got nan"),
        ({"max_retries": -1}, "max_retries must be an integer ≥ 0, got -1"),
        ({"snapshots": 1.5}, "snapshots must be an integer ≥ 0, got 1.5"),
    ],
)
def test_sweep_arguments_are_checked_before_the_store_is_touched(tmp_path, setting, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        sweep(CONFIG, tmp_path / "r.sqlite", backend="inline", progress=False, **setting)
    assert list(tmp_path.iterdir()) == []


def test_the_local_pool_refuses_a_main_program_read_from_stdin():
    """``python - < script.py``: spawned workers would die re-running a main file that does not exist."""
    program = "from collapsebench.executors import make_executor\nmake_executor('local', workers=1)\n"
    result = subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True)
    assert result.returncode == 1
    assert "ValueError: the local back-end's worker processes re-run the main program" in result.stderr
    assert "'<stdin>' is not a file" in result.stderr and "backend='inline'" in result.stderr


def test_local_workers_share_the_cores_among_their_thread_pools():
    """Each of N workers sizes numpy's and torch's thread pools to its share of the cores: N workers
    with all the cores each would thrash."""
    with make_executor("local", workers=2) as executor:
        futures = [executor.submit(os.getenv, name, Resources()) for name in THREAD_VARIABLES]
        assert [future.result(timeout=120) for future in futures] == [str(max(1, available_cores() // 2))] * 3


def test_the_local_pool_restarts_when_a_worker_died_before_a_submit():
    # The race a real SIGKILL can hit: a chunk finishes, its worker's pool breaks, and the driver
    # submits the next chunk before it has seen the failure.
    with make_executor("local", workers=1) as executor:
        dead = executor.submit(os._exit, 3, Resources())
        with pytest.raises(BrokenProcessPool):
            dead.result(timeout=120)
        assert executor.submit(abs, -42, Resources()).result(timeout=120) == 42
        executor.recover(dead)  # a failure of the old pool must not restart the new one
        assert executor.submit(abs, -2, Resources()).result(timeout=120) == 2


def test_local_workers_leave_ctrl_c_to_the_driver_which_stops_them_at_once_when_it_leaves_early():
    with make_executor("local", workers=1) as executor:
        assert (
            executor.submit(signal.getsignal, signal.SIGINT, Resources()).result(timeout=120)
            == signal.SIG_IGN
        )

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), make_executor("local", workers=1) as executor:
        executor.submit(abs, -1, Resources()).result(timeout=120)  # the worker is up
        busy = executor.submit(time.sleep, 300, Resources())
        raise KeyboardInterrupt  # as the driver's Ctrl-C would, while a chunk runs
    assert time.monotonic() - started < 60, "leaving early waited for the running task"
    assert busy.done()


def test_the_cells_resources_follow_the_model():
    (image_cell,) = cells_from_config(
        {"envs": "Digits-mix-v0", "seeds": 0, "agents": [{"policy": "real-only"}]}
    )
    assert cb.models.MODELS.get(cb.spec(image_cell.env_id).kwargs["model"]).wants_accelerator
    assert not cb.models.MODELS.get("gaussian").wants_accelerator
    assert Cell("Gaussian-mix-v0", ("real-only",), 0).gpus is None


class _FakeRay(ModuleType):
    """Ray's API as the ray back-end uses it, running each task at once in this process and recording
    what it was asked for: the mapping from a cell's needs to Ray's options, without a cluster."""

    class exceptions:  # named as Ray's module
        class WorkerCrashedError(Exception): ...

        class NodeDiedError(Exception): ...

        class ObjectLostError(Exception): ...

    def __init__(self, gpus: int, initialized: bool = False) -> None:
        super().__init__("ray")
        self.gpus, self.initialized = gpus, initialized
        self.init_calls: list[dict[str, Any]] = []
        self.remote_calls: list[dict[str, Any]] = []
        self.task_options: list[dict[str, float]] = []
        self.shutdowns = 0

    def is_initialized(self) -> bool:
        return self.initialized

    def init(self, **options: Any) -> None:
        self.init_calls.append(options)
        self.initialized = True

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 8.0, **({"GPU": float(self.gpus)} if self.gpus else {})}

    def shutdown(self) -> None:
        self.shutdowns += 1
        self.initialized = False

    def remote(self, **options: Any):
        self.remote_calls.append(options)
        fake = self

        def wrap(function):
            class Remote:
                def options(self, **task_options: float):
                    fake.task_options.append(task_options)
                    return self

                def remote(self, task):
                    future: Future = Future()
                    future.set_result(function(task))
                    return SimpleNamespace(future=lambda: future)

            return Remote()

        return wrap


@pytest.fixture
def fake_ray(monkeypatch):
    def install(gpus: int, initialized: bool = False) -> _FakeRay:
        fake = _FakeRay(gpus, initialized)
        monkeypatch.setitem(sys.modules, "ray", fake)
        return fake

    return install


@pytest.fixture
def accelerated_gaussian():
    """The gaussian model, marked as wanting an accelerator (as the image models are)."""
    models = cb.models.MODELS
    accelerated = type("AcceleratedGaussian", (models.get("gaussian"),), {"wants_accelerator": True})
    models.register("accelerated-gaussian-test")(accelerated)
    yield accelerated
    models.unregister("accelerated-gaussian-test")


RESOURCE_CONFIG = {
    **{key: value for key, value in CONFIG.items() if key != "agents"},
    "envs": "Gaussian-mix-v0",
    "seeds": 0,
    "generations": 1,
    "agents": [
        {"policy": "real-only"},
        {"policy": "real-only", "model": "accelerated-gaussian-test"},
        {"policy": "full-synthetic", "model": "accelerated-gaussian-test", "resources": {"gpus": 0}},
        {"policy": "lambda-mix", "params": {"lam": 1.0}, "resources": {"cpus": 2, "gpus": 0.5}},
    ],
}


@pytest.mark.parametrize("cluster_gpus", [0, 2])
def test_the_ray_backend_asks_ray_for_what_each_cell_needs(
    tmp_path, fake_ray, accelerated_gaussian, cluster_gpus
):
    """A model that wants an accelerator gets one GPU where the cluster has GPUs and none where it has
    none; a cell's own ``resources`` win; Ray's own retries stay off (the driver reruns from the store)."""
    ray = fake_ray(cluster_gpus)
    report = sweep(
        RESOURCE_CONFIG, tmp_path / "r.sqlite", backend="ray", workers=3, chunk_seconds=60, progress=False
    )
    assert report.ok and report.skipped == 0
    assert ray.init_calls == [
        {"address": "local", "logging_level": "WARNING", "include_dashboard": False, "num_cpus": 3}
    ]
    assert ray.remote_calls == [{"max_retries": 0}]  # one remote function, made once
    accelerator = 1.0 if cluster_gpus else 0.0
    assert ray.task_options == [
        {"num_cpus": 1.0, "num_gpus": 0.0},
        {"num_cpus": 1.0, "num_gpus": accelerator},
        {"num_cpus": 1.0, "num_gpus": 0.0},
        {"num_cpus": 2.0, "num_gpus": 0.5},
    ]
    assert ray.shutdowns == 1


def test_the_ray_backend_joins_a_cluster_by_address_or_one_already_started(fake_ray):
    ray = fake_ray(gpus=0)
    executor = make_executor("ray", workers=4, address="auto")
    assert ray.init_calls == [{"address": "auto", "logging_level": "WARNING"}]  # the cluster's CPUs
    assert executor.crash_errors == (
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.ObjectLostError,
    )
    executor.close()
    assert ray.shutdowns == 1
    ray = fake_ray(gpus=0, initialized=True)  # the user's own ray.init() came first: theirs to end
    with make_executor("ray") as executor:
        assert executor.submit(abs, -3, Resources()).result() == 3
    assert ray.init_calls == [] and ray.shutdowns == 0


# ------------------------------------------------------------------ real processes
def _write_config(tmp_path: Path, generations: int) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(
        'envs = "Gaussian-mix-v0"\nseeds = "0-3"\n'
        f"generations = {generations}\n"
        "env_params = { n_real = 50, n_synthetic = 50, n_test = 50, n_eval = 50 }\n"
        '[[agents]]\npolicy = "lambda-mix"\nparams = { lam = 1.0 }\n'
    )
    return path


def _sweep_command(config: Path, store: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "collapsebench", "sweep", str(config), "--store", str(store), *options]


def _wait_for_progress(store: Path, process: subprocess.Popen, at_least: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if store.exists():
            done = ResultsStore(store).runs()["completed_generations"]
            if len(done) and done.max() >= at_least:
                return
        time.sleep(0.02)
    raise AssertionError("the sweep made no progress (or ended) before it could be interrupted")


def _spawned_workers(parent: int) -> list[int]:
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent_pid = int(stat.rsplit(")", 1)[1].split()[1])
        if parent_pid == parent and b"spawn_main" in command:
            workers.append(int(entry.name))
    return workers


INTERRUPTED_SWEEP_OPTIONS = ("--workers", "2", "--chunk-seconds", "0", "--no-progress")


@pytest.fixture(scope="module")
def grid_and_rows(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The interruption tests' grid (4 lineages × 151 generations) and its rows run straight through."""
    folder = tmp_path_factory.mktemp("interruptions")
    config = _write_config(folder, generations=150)
    subprocess.run(_sweep_command(config, folder / "straight.sqlite", "--backend", "inline"), check=True)
    return config, stored(folder / "straight.sqlite")


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc")
def test_killing_a_local_worker_mid_sweep_loses_nothing(tmp_path, grid_and_rows):
    config, straight = grid_and_rows
    store = tmp_path / "killed.sqlite"
    process = _sweep_under_way(config, store, stdout=subprocess.PIPE, text=True)
    (victim, *_) = _spawned_workers(process.pid)
    os.kill(victim, signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "4 run, 0 failed" in output
    pd.testing.assert_frame_equal(stored(store), straight)


def test_killing_the_whole_sweep_and_rerunning_it_loses_nothing(tmp_path, grid_and_rows):
    config, straight = grid_and_rows
    store = tmp_path / "killed.sqlite"
    process = _sweep_under_way(config, store, stdout=subprocess.DEVNULL, start_new_session=True)
    os.killpg(process.pid, signal.SIGKILL)  # the driver and its workers, without cleanup
    process.wait()
    _rerun_finishes_with_the_straight_rows(config, store, straight)


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds worker processes through /proc")
def test_ctrl_c_stops_the_sweep_and_its_workers_at_once_and_a_rerun_resumes(tmp_path, grid_and_rows):
    config, straight = grid_and_rows
    store = tmp_path / "interrupted.sqlite"
    process = _sweep_under_way(config, store, stdout=subprocess.PIPE, text=True, start_new_session=True)
    workers = _spawned_workers(process.pid)
    assert len(workers) == 2
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends: the driver and its workers
    try:
        output, _ = process.communicate(timeout=60)  # it could wait forever on a worker's queue lock
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and "interrupted" in output and "rerun the same command" in output
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    _rerun_finishes_with_the_straight_rows(config, store, straight)


def _sweep_under_way(config: Path, store: Path, **popen_options: Any) -> subprocess.Popen:
    """The interruption tests' sweep, started and past its first 10 committed generations."""
    process = subprocess.Popen(_sweep_command(config, store, *INTERRUPTED_SWEEP_OPTIONS), **popen_options)
    _wait_for_progress(store, process, at_least=10)
    return process


def _rerun_finishes_with_the_straight_rows(config: Path, store: Path, straight: pd.DataFrame) -> None:
    done = ResultsStore(store).runs()["completed_generations"]
    assert done.sum() < 4 * 151, "the sweep finished before it was interrupted"
    subprocess.run(_sweep_command(config, store, *INTERRUPTED_SWEEP_OPTIONS), check=True, capture_output=True)
    pd.testing.assert_frame_equal(stored(store), straight)


def _loopback_namespace_available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


RAY_PORT = 6391
# A cluster started with `ray start` authenticates clients by token; one joining it by address says
# so (RAY_AUTH_MODE) and shows the token, as on a real cluster. No usage statistics are sent.
RAY_ENVIRONMENT = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
}


@pytest.mark.skipif(not _loopback_namespace_available(), reason="needs root and iproute2 for a netns")
@pytest.mark.parametrize("cluster", ["started by the sweep", "joined with --address"])
def test_the_ray_backend_in_a_loopback_only_namespace_matches_local(tmp_path, cluster):
    pytest.importorskip("ray")
    config = _write_config(tmp_path, generations=20)
    subprocess.run(_sweep_command(config, tmp_path / "local.sqlite", "--backend", "inline"), check=True)

    store = tmp_path / "ray.sqlite"
    sweep = shlex.join(
        _sweep_command(config, store, "--backend", "ray", "--chunk-seconds", "0", "--no-progress")
    )
    ray = shlex.quote(str(Path(sys.executable).parent / "ray"))
    if cluster == "started by the sweep":
        script = f"{sweep} --workers 2"
    else:  # an existing cluster, as on a real one: `ray start` first, the sweep joins by address
        script = (
            f"{ray} start --head --node-ip-address 127.0.0.1 --port {RAY_PORT} --num-cpus 2 "
            "--include-dashboard false --disable-usage-stats > /dev/null "
            f"&& {sweep} --address 127.0.0.1:{RAY_PORT}"
        )
    namespace = f"cb-ray-{os.getpid()}"
    # Ray's files (sessions, the current-cluster address) in a short folder of their own, not /tmp/ray.
    ray_files = tempfile.mkdtemp(prefix="cb-ray-")
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True)
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, "bash", "-c", script],
            env={**os.environ, **RAY_ENVIRONMENT, "RAY_TMPDIR": ray_files}, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
    finally:
        # Whatever still runs in the namespace is this test's (a started cluster): stop exactly that.
        pids = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", namespace], check=False)
        shutil.rmtree(ray_files, ignore_errors=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 run, 0 failed" in result.stdout
    pd.testing.assert_frame_equal(stored(tmp_path / "ray.sqlite"), stored(tmp_path / "local.sqlite"))


WORKER_CONFIG = {
    "envs": "Gaussian-mix-v0",
    "seeds": "0-1",
    "generations": 2,
    "env_params": SMALL,
    "agents": [{"policy": "half-weight-synthetic"}],
}


def test_local_workers_import_the_module_that_registers_a_cells_policy(tmp_path, monkeypatch):
    """A policy registered by a module of the user's (not a plugin, not the main script) reaches the
    worker processes: the sweep has them import that module first."""
    (tmp_path / "my_policies.py").write_text(HALF_WEIGHT_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_policies", raising=False)
    import_module("my_policies")
    try:
        report = sweep(WORKER_CONFIG, tmp_path / "r.sqlite", backend="local", workers=2, progress=False)
        inline = sweep(WORKER_CONFIG, tmp_path / "i.sqlite", backend="inline", progress=False)
    finally:
        POLICIES.unregister("half-weight-synthetic")
        sys.modules.pop("my_policies", None)
    assert report.ok, report.failures
    pd.testing.assert_frame_equal(stored(tmp_path / "r.sqlite"), stored(tmp_path / "i.sqlite"))
    assert inline.ok and len(stored(tmp_path / "r.sqlite")) > 0


def test_a_grid_imports_the_modules_it_names_from_its_own_folder(tmp_path, monkeypatch):
    """``imports = [...]`` in a TOML grid: the module beside the config registers the policy the grid
    uses, from any working folder, and the local workers import it too. Run as a user would, in a
    fresh process, so that this test's own path and registry are left alone."""
    folder = tmp_path / "grids"
    folder.mkdir()
    (folder / "grid_policies.py").write_text(HALF_WEIGHT_PLUGIN)
    config = folder / "grid.toml"
    config.write_text(
        'imports = ["grid_policies"]\nenvs = "Gaussian-mix-v0"\nseeds = "0-1"\ngenerations = 2\n'
        "env_params = { n_real = 50, n_synthetic = 50, n_test = 50, n_eval = 50 }\n"
        '[[agents]]\npolicy = "half-weight-synthetic"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        _sweep_command(config, tmp_path / "r.sqlite", "--workers", "2", "--no-progress"),
        cwd=elsewhere, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 run, 0 failed" in result.stdout
    runs = ResultsStore(tmp_path / "r.sqlite").runs()
    assert set(runs["policy"]) == {"half-weight-synthetic"} and len(stored(tmp_path / "r.sqlite")) > 0

    monkeypatch.setattr(sys, "path", [*sys.path])  # load_sweep puts the grid's folder on it
    for imports, problem in [
        ('["no_such_module_of_yours"]', "'imports': 'no_such_module_of_yours' failed to import: "
         "ModuleNotFoundError"),
        ("3", "'imports' must be a module name or a list of them, got 3"),
    ]:  # fmt: skip
        config.write_text(config.read_text().replace('["grid_policies"]', imports, 1))
        with pytest.raises(ValueError, match="is not a valid sweep") as refusal:
            load_sweep(config)
        assert problem in str(refusal.value)
        config.write_text(config.read_text().replace(imports, '["grid_policies"]', 1))


class _FreshWorkers(InlineExecutor):
    """Stands for Ray's workers (fresh processes that never run the main script) without starting
    Ray, which must not bind this machine's network: a refused sweep never gets to make it."""

    runs_in_this_process = False

    def __init__(self, workers: int | None = None) -> None:
        raise AssertionError("a refused sweep started its executor")


def test_a_policy_registered_in_main_is_refused_where_workers_cannot_see_it(tmp_path, monkeypatch):
    """Workers of the local back-end re-run the main script, so a script's own policy reaches them;
    an interactive session's does not, nor does anything of __main__ reach Ray's workers. Those
    sweeps are refused before anything is recorded, naming the policy and the ways out."""
    ray = EXECUTORS.get("ray")
    assert not ray.runs_in_this_process and not ray.reruns_main_script
    EXECUTORS.register("fresh-workers-test")(_FreshWorkers)

    def keep_valid(self, obs):
        return np.asarray(obs["valid"], dtype=np.float64)

    main_only = type("MainOnly", (CurationPolicy,), {"__module__": "__main__", "__call__": keep_valid})
    POLICIES.register("main-only-test")(main_only)
    config = {**WORKER_CONFIG, "agents": [{"policy": "main-only-test"}]}
    store = tmp_path / "r.sqlite"
    try:
        monkeypatch.setitem(sys.modules, "__main__", ModuleType("__main__"))  # no __file__: a notebook
        for backend in ("local", "fresh-workers-test"):
            with pytest.raises(ValueError) as refusal:
                sweep(config, store, backend=backend, progress=False)
            message = str(refusal.value)
            assert "policy 'main-only-test' is registered in __main__ (an interactive session)" in message
            assert f"the {backend!r} back-end's worker processes do not run" in message
            assert "backend='inline'" in message and "plugin" in message
        assert ResultsStore(store).runs().empty

        script = ModuleType("__main__")
        script.__file__ = __file__  # a script: local workers re-run it; the others do not
        monkeypatch.setitem(sys.modules, "__main__", script)
        with pytest.raises(ValueError, match=r"\(the main script\), which the 'fresh-workers-test' back-end"):
            sweep(config, store, backend="fresh-workers-test", progress=False)
        assert _check_workers_can_import({"policy 'main-only-test'": "__main__"}, "local") is None
        report = sweep(config, store, backend="inline", progress=False)
    finally:
        POLICIES.unregister("main-only-test")
        EXECUTORS.unregister("fresh-workers-test")
    assert report.ok  # the inline back-end runs in this process, which sees every name
