"""The results store: an embedded SQLite database, one row per (run, generation, metric).

Default path: ``$COLLAPSEBENCH_STORE``, else ``results/collapsebench.sqlite`` under the working
directory. A *run* is one lineage: (env id + resolved config, model + params, policy + params, seed).
Each generation is committed in one transaction together with the run's progress counter, so a
crash loses at most the generation in flight, and several processes can write to one store (WAL
journal, waits on locks). Per-generation checkpoints (``.npz``, never pickled) sit beside the
database in ``<store>.checkpoints/<run_id>/`` so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_STORE = Path("results") / "collapsebench.sqlite"
STORE_ENV_VAR = "COLLAPSEBENCH_STORE"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    env_id TEXT NOT NULL,
    env_version INTEGER NOT NULL,
    env_config TEXT NOT NULL,
    model TEXT NOT NULL,
    model_params TEXT NOT NULL,
    policy TEXT NOT NULL,
    policy_params TEXT NOT NULL,
    seed INTEGER NOT NULL,
    generations INTEGER NOT NULL,
    completed_generations INTEGER NOT NULL DEFAULT 0,
    package_version TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    wall_time_s REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    generation INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, generation, metric)
);
"""

TIDY_COLUMNS = [
    "env_id",
    "env_version",
    "model",
    "model_params",
    "policy",
    "params",
    "seed",
    "generation",
    "metric",
    "value",
]


def default_store_path() -> Path:
    return Path(os.environ.get(STORE_ENV_VAR, DEFAULT_STORE))


def canonical_json(value: Any) -> str:
    """Stable JSON for hashing and storage (sorted keys; numpy scalars and inf handled)."""

    def convert(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {str(key): convert(val) for key, val in item.items()}
        if isinstance(item, list | tuple):
            return [convert(val) for val in item]
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, float) and not math.isfinite(item):
            return repr(item)  # "inf", "nan": JSON has no infinities
        if item is None or isinstance(item, bool | int | float | str):
            return item
        if callable(item):  # e.g. a feature map: its import path, not its memory address
            return f"{getattr(item, '__module__', '?')}.{getattr(item, '__qualname__', type(item).__name__)}"
        return repr(item)

    return json.dumps(convert(value), sort_keys=True, separators=(",", ":"))


_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def parse_canonical_json(text: str) -> Any:
    """``canonical_json`` read back, non-finite floats restored (``restore_non_finite``)."""
    return restore_non_finite(json.loads(text))


def restore_non_finite(item: Any) -> Any:
    """The strings ``canonical_json`` wrote for non-finite floats ("inf", "-inf", "nan") as floats
    again, at any depth, so that recorded parameters such as lambda-mix's ``lam=inf`` rebuild the
    policy (no parameter of the library's takes those strings)."""
    if isinstance(item, dict):
        return {key: restore_non_finite(value) for key, value in item.items()}
    if isinstance(item, list):
        return [restore_non_finite(value) for value in item]
    if isinstance(item, str) and item in _NON_FINITE:
        return _NON_FINITE[item]
    return item


@dataclass(frozen=True)
class RunKey:
    """What identifies a lineage. Two runs with equal keys must produce identical metrics."""

    env_id: str
    env_version: int
    env_config: str  # canonical JSON of the env's resolved kwargs
    model: str
    model_params: str
    policy: str
    policy_params: str
    seed: int
    generations: int

    @property
    def run_id(self) -> str:
        return hashlib.sha256(canonical_json(asdict(self)).encode()).hexdigest()[:20]


class ResultsStore:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        # Nothing is created until the store is used: a command refused for a bad setting leaves no
        # empty store behind.
        self.path = Path(path) if path is not None else default_store_path()
        self._connection: sqlite3.Connection | None = None
        self._connection_pid = -1

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per process (a connection must not cross a fork): opening one per
        # generation cost more than a whole step of the cheap envs.
        if self._connection is None or self._connection_pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # WAL: safe against crashes of the process
            connection.execute("PRAGMA busy_timeout=60000")
            connection.executescript(SCHEMA)
            self._connection, self._connection_pid = connection, os.getpid()
        yield self._connection

    def close(self) -> None:
        if self._connection is not None and self._connection_pid == os.getpid():
            self._connection.close()
        self._connection = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self._connection, self._connection_pid = state["path"], None, -1

    # ------------------------------------------------------------------ runs
    def begin_run(self, key: RunKey, package_version: str) -> int:
        """Record the run if new; return how many generations are already committed."""
        with self._connect() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO runs (run_id, env_id, env_version, env_config, model, model_params,"
                " policy,"
                " policy_params, seed, generations, package_version, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.run_id,
                    key.env_id,
                    key.env_version,
                    key.env_config,
                    key.model,
                    key.model_params,
                    key.policy,
                    key.policy_params,
                    key.seed,
                    key.generations,
                    package_version,
                    _now(),
                ),
            )
            row = connection.execute(
                "SELECT completed_generations FROM runs WHERE run_id = ?", (key.run_id,)
            ).fetchone()
        return int(row[0])

    def completed_generations(self, run_id: str) -> int:
        with self._connect() as connection:
            row = connection.execute(
                "SELECT completed_generations FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def commit_generation(
        self, key: RunKey, generation: int, metrics: Mapping[str, float], wall_time_s: float
    ) -> bool:
        """Write one generation's metrics atomically. Returns False (writing nothing) if another
        writer already committed this generation of this run."""
        rows = [(key.run_id, generation, name, float(value)) for name, value in metrics.items()]
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                updated = connection.execute(
                    "UPDATE runs SET completed_generations = ?, wall_time_s = wall_time_s + ?,"
                    " finished_at = CASE WHEN ? > generations THEN ? ELSE finished_at END"
                    " WHERE run_id = ? AND completed_generations = ?",
                    (generation + 1, wall_time_s, generation + 1, _now(), key.run_id, generation),
                ).rowcount
                if updated == 1:
                    connection.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", rows)
                connection.execute("COMMIT")
            except BaseException:
                # A Ctrl-C can land just after COMMIT has ended the transaction: then there is
                # nothing to undo, and a ROLLBACK would replace the interrupt with its own error.
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        return updated == 1

    # ------------------------------------------------------------------ checkpoints
    @property
    def first_model_dir(self) -> Path:
        """Where the lineages of this store share their fitted first models (``FirstModelCache``)."""
        return self.path.with_name(self.path.name + ".first-models")

    def checkpoint_dir(self, run_id: str) -> Path:
        return self.path.with_name(self.path.name + ".checkpoints") / run_id

    def save_checkpoint(self, run_id: str, generation: int, state: Mapping[str, np.ndarray]) -> None:
        """Atomically write the env state after ``generation`` (once that generation is committed)."""
        write_arrays(_generation_path(self.checkpoint_dir(run_id), generation), state)

    def load_checkpoint(self, run_id: str, generation: int) -> dict[str, np.ndarray] | None:
        path = _generation_files(self.checkpoint_dir(run_id)).get(generation)
        return None if path is None else read_arrays(path)

    def latest_checkpoint(self, run_id: str, at_most: int) -> tuple[int, dict[str, np.ndarray]] | None:
        """The newest checkpoint of a generation ≤ ``at_most``, with that generation, if any."""
        files = _generation_files(self.checkpoint_dir(run_id))
        candidates = [generation for generation in files if generation <= at_most]
        if not candidates:
            return None
        newest = max(candidates)
        return newest, read_arrays(files[newest])

    def prune_checkpoints(self, run_id: str, keep_generation: int | None) -> None:
        """Delete every checkpoint of the run but ``keep_generation``; with None, the run's whole
        checkpoint folder, including half-written temporary files left by a killed process."""
        folder = self.checkpoint_dir(run_id)
        if keep_generation is None:
            shutil.rmtree(folder, ignore_errors=True)
            return
        for generation, path in _generation_files(folder).items():
            if generation != keep_generation:
                path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ sample snapshots (pictures)
    def snapshot_dir(self, run_id: str) -> Path:
        return self.path.with_name(self.path.name + ".snapshots") / run_id

    def save_snapshot(self, run_id: str, generation: int, arrays: Mapping[str, np.ndarray]) -> None:
        write_arrays(_generation_path(self.snapshot_dir(run_id), generation), arrays, compress=True)

    def load_snapshots(self, run_id: str) -> dict[int, dict[str, np.ndarray]]:
        """Generation → the arrays saved for it (``pool``, ``origin``, ``weights``, ``samples``)."""
        files = _generation_files(self.snapshot_dir(run_id))
        return {generation: read_arrays(files[generation]) for generation in sorted(files)}

    # ------------------------------------------------------------------ reading
    def runs(self, run_ids: Iterable[str] | None = None, env_id: str | None = None) -> pd.DataFrame:
        """The runs table (all, or those of ``run_ids`` and/or ``env_id``), with ``env_settings``: each
        run's ``distinguishing_settings`` among the runs selected."""
        where, arguments = _run_conditions(run_ids, env_id)
        with self._connect() as connection:
            runs = pd.read_sql_query(
                f"SELECT * FROM runs r{where} ORDER BY env_id, policy, seed", connection, params=arguments
            )
        return runs.assign(env_settings=runs["run_id"].map(distinguishing_settings(runs)))

    def to_dataframe(self, run_ids: Iterable[str] | None = None, env_id: str | None = None) -> pd.DataFrame:
        """Tidy rows: env_id, env_version, model, model_params, policy, params, seed, generation, metric,
        value, run_id, env_settings (``params`` are the policy's parameters as JSON; ``env_settings``
        as in ``runs``) of all runs, or those of ``run_ids`` and/or ``env_id``."""
        run_ids = None if run_ids is None else list(run_ids)
        where, arguments = _run_conditions(run_ids, env_id)
        query = (
            "SELECT r.env_id, r.env_version, r.model, r.model_params, r.policy, r.policy_params AS params,"
            " r.seed, m.generation, m.metric, m.value, r.run_id"
            f" FROM metrics m JOIN runs r ON r.run_id = m.run_id{where}"
            " ORDER BY r.env_id, r.policy, r.policy_params, r.seed, m.generation, m.metric"
        )
        with self._connect() as connection:
            frame = pd.read_sql_query(query, connection, params=arguments)
        settings = self.runs(run_ids, env_id).set_index("run_id")["env_settings"]
        return frame.assign(env_settings=frame["run_id"].map(settings))


def _run_conditions(run_ids: Iterable[str] | None, env_id: str | None) -> tuple[str, list[str]]:
    """A WHERE clause on the runs table ``r`` selecting ``run_ids`` and/or ``env_id``, and its arguments."""
    conditions, arguments = [], []
    if run_ids is not None:
        ids = list(run_ids)
        conditions.append(f"r.run_id IN ({','.join('?' * len(ids))})")
        arguments.extend(ids)
    if env_id is not None:
        conditions.append("r.env_id = ?")
        arguments.append(env_id)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), arguments


def differing_keys(settings: Iterable[Mapping[str, Any]]) -> list[str]:
    """The keys whose values are not all equal across ``settings`` (a missing key is a value)."""
    settings = list(settings)
    keys = sorted(set().union(*settings)) if settings else []
    return [key for key in keys if len({canonical_json(item.get(key)) for item in settings}) > 1]


def distinguishing_settings(runs: pd.DataFrame) -> dict[str, str]:
    """Run id → the env settings (as canonical JSON) in which the run differs from other runs of its env
    among ``runs`` (columns run_id, env_id, env_config); ``{}`` where they all agree. Labels use it, so
    that runs of one agent under different settings (``--env-param n_real=20``, another T) are not
    averaged into one curve."""
    settings: dict[str, str] = {}
    for _, group in runs.groupby("env_id"):
        configs = [json.loads(config) for config in group["env_config"]]
        differing = differing_keys(configs)
        for run_id, config in zip(group["run_id"], configs, strict=True):
            settings[run_id] = canonical_json({key: config.get(key) for key in differing})
    return settings


def check_export_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if ``export`` can write it (.csv or .parquet); a ValueError saying so otherwise. Check
    it before a long run whose results it is for."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise ValueError(f"export to .csv or .parquet, not {path.suffix or 'a file without suffix'!r}")
    return path


def export(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a results frame to .csv or .parquet (by suffix)."""
    path = check_export_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray], compress: bool = False) -> None:
    """``path`` (.npz), written under a temporary name of this process, then renamed: a crash never
    leaves half a file, and processes writing the same file at once each rename a whole one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        (np.savez_compressed if compress else np.savez)(temporary, **arrays)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _generation_path(folder: Path, generation: int) -> Path:
    return folder / f"gen-{generation:05d}.npz"


def _generation_files(folder: Path) -> dict[int, Path]:
    """Generation → its ``gen-NNNNN.npz`` file in ``folder`` (empty if the folder does not exist)."""
    if not folder.exists():
        return {}
    return {int(path.stem.removeprefix("gen-")): path for path in folder.glob("gen-*.npz")}


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:  # numeric arrays only: nothing is unpickled
        return {name: archive[name] for name in archive.files}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
