"""Submissions: one JSON file per (track version, agent), made from a results store, validated against
the board, and verified by re-running some of its seeds.

The schema is ``submission-v1.schema.json`` beside this module (JSON Schema 2020-12). A file is only
ever read with ``json.loads``: nothing in a submission is executed or unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from collapsebench.leaderboard.tracks import Board, Track
from collapsebench.policies import CurationPolicy
from collapsebench.runner import package_version
from collapsebench.store import ResultsStore, canonical_json, restore_non_finite

SCHEMA_VERSION = 1
MAX_BYTES = 64 * 1024 * 1024  # a submission is metrics, not data: anything bigger is a mistake


class SubmissionError(ValueError):
    """A submission that cannot go on the board; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source} is not a valid submission:\n- " + "\n- ".join(problems))


def schema() -> dict[str, Any]:
    text = resources.files("collapsebench.leaderboard").joinpath(f"submission-v{SCHEMA_VERSION}.schema.json")
    return json.loads(text.read_text())


def read_submission(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(str(path), ["no such file"])
    if path.stat().st_size > MAX_BYTES:
        raise SubmissionError(str(path), [f"larger than {MAX_BYTES // 2**20} MiB"])
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SubmissionError(str(path), [f"not JSON: {error}"]) from None
    if not isinstance(data, dict):
        raise SubmissionError(str(path), ["the top level must be a JSON object"])
    return data


def agent_key(submission: dict[str, Any]) -> str:
    """The agent: policy and model with their params (the same agent on every track)."""
    agent = submission["agent"]
    return canonical_json(
        [agent["policy"]["name"], agent["policy"]["params"], agent["model"]["name"], agent["model"]["params"]]
    )


def agent_identity(submission: dict[str, Any]) -> str:
    """What makes two submissions the same entry: the track version and the agent."""
    return canonical_json([submission["track"], agent_key(submission)])


def file_digest(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------- validate
def problems_with(
    submission: dict[str, Any],
    board: Board,
    others: dict[Path, dict[str, Any]] | None = None,
) -> list[str]:
    """Every reason ``submission`` cannot go on ``board`` (empty: it can). ``others``: the submissions
    already on the board (path → content), to catch duplicates."""
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema()).iter_errors(submission), key=lambda e: list(e.path))
    if errors:  # the checks below need the structure
        return [
            f"schema: {'/'.join(map(str, error.path)) or '(top level)'}: {error.message}" for error in errors
        ]
    problems: list[str] = []
    try:
        track = board.track(submission["track"]["id"], submission["track"]["version"])
    except KeyError as error:
        return [str(error.args[0])]

    seeds = submission["seeds"]
    if len(seeds) < track.min_seeds:
        problems.append(f"{len(seeds)} seeds; track {track.key} needs at least {track.min_seeds}")
    run_seeds = [run["seed"] for run in submission["runs"]]
    if sorted(run_seeds) != sorted(seeds):
        problems.append(f"runs are for seeds {sorted(run_seeds)}, but 'seeds' lists {sorted(seeds)}")
    if submission["env"]["id"] != track.env_id:
        problems.append(f"env {submission['env']['id']!r}: track {track.key} runs {track.env_id!r}")
    elif submission["env"]["config"] != track.env_config():
        problems.append(
            f"the env settings differ from track {track.key}'s budget (run with the track's settings: "
            f"collapsebench leaderboard submit runs them for you); expected {track.env_config()}"
        )
    length, expected = track.generations + 1, {*track.metrics(), track.headline_metric}
    for run in submission["runs"]:
        where = f"seed {run['seed']}"
        missing, unknown = expected - set(run["metrics"]), set(run["metrics"]) - expected
        if missing or unknown:
            problems.append(
                f"{where}: metrics differ from the track's {sorted(expected)}: "
                f"missing {sorted(missing)}, unexpected {sorted(unknown)}"
            )
        for metric, values in run["metrics"].items():
            if len(values) != length:
                problems.append(
                    f"{where}: {metric} has {len(values)} values; the track has {length} generations"
                )
            bad = [value for value in values if not (isinstance(value, int | float) and math.isfinite(value))]
            if bad:
                problems.append(f"{where}: {metric} has a non-finite value ({bad[0]!r})")
    identity = agent_identity(submission)
    for path, other in (others or {}).items():
        try:
            same = other is not submission and agent_identity(other) == identity
        except (KeyError, TypeError):  # a malformed file: its own validation reports it
            continue
        if same:
            problems.append(f"duplicate entry: {path} already holds this agent on track {track.key}")
    return problems


def validate(
    path: str | os.PathLike[str], board: Board, submissions_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Read and check a submission file; raise ``SubmissionError`` with every problem."""
    submission = read_submission(path)
    others = {}
    if submissions_dir is not None:
        for other_path in sorted(Path(submissions_dir).rglob("*.json")):
            if other_path.resolve() != Path(path).resolve():
                try:
                    others[other_path] = read_submission(other_path)
                except SubmissionError:
                    continue  # its own validation reports it
    problems = problems_with(submission, board, others)
    if problems:
        raise SubmissionError(str(path), problems)
    return submission


# ---------------------------------------------------------------------------------------------- submit
def _model_settings(model: str, recorded: str) -> dict[str, Any]:
    """A run's model settings: those recorded, over the model's defaults where it is registered here
    (a record leaves a sampling parameter out at its default: ``temperature=1`` must still match)."""
    from collapsebench._params import bound_params
    from collapsebench.models import MODELS

    settings = json.loads(recorded)
    if model not in MODELS:
        return settings
    defaults = json.loads(canonical_json(bound_params(MODELS.get(model), (), {}, partial=True)))
    return {**defaults, **settings}


def make_submission(
    store: ResultsStore,
    track: Track,
    policy: CurationPolicy,
    model: str | None = None,
    model_params: dict[str, Any] | None = None,
    code: str = "",
    command: str = "",
) -> dict[str, Any]:
    """The submission of an agent's finished runs on ``track`` in ``store``: the runs whose env
    settings are the track's, with this policy (name and every parameter, defaults included) and
    this model, if named, with these model settings, if given (the runs' recorded model parameters
    hold each of them)."""
    policy_name, policy_params = policy.name, policy.params
    runs = store.runs()
    runs = runs[
        (runs["env_id"] == track.env_id)
        & (runs["env_config"] == track.env_config())
        & (runs["policy"] == policy_name)
        & (runs["policy_params"] == canonical_json(policy_params))
        & (runs["generations"] == track.generations)
        & (runs["completed_generations"] == track.generations + 1)
    ]
    if model is not None:
        runs = runs[runs["model"] == model]
    if model_params:
        wanted = json.loads(canonical_json(model_params))  # as the store records values (inf, tuples)
        runs = runs[
            [
                all(settings.get(key) == value for key, value in wanted.items())
                for settings in map(_model_settings, runs["model"], runs["model_params"])
            ]
        ]
    if runs.empty:
        raise ValueError(
            f"no finished runs of {policy.label} on track {track.key} "
            f"({track.env_id}, T = {track.generations}, the track's settings) in {store.path}"
        )
    models = runs[["model", "model_params"]].drop_duplicates()
    if len(models) > 1:
        raise ValueError(
            f"runs of several models match; name one with --model/--model-param: {models.values.tolist()}"
        )
    frame = store.to_dataframe(runs["run_id"].tolist())
    model_name, model_json = models.iloc[0]
    return {
        "schema_version": SCHEMA_VERSION,
        "track": {"id": track.id, "version": track.version},
        "agent": {
            "label": policy.label,
            "policy": {"name": policy_name, "params": json.loads(canonical_json(policy_params))},
            "model": {"name": model_name, "params": json.loads(model_json)},
            "code": code or f"collapsebench {package_version()} baselines",
        },
        "env": {"id": track.env_id, "config": track.env_config()},
        "seeds": sorted(int(seed) for seed in runs["seed"]),
        "runs": [
            {
                "seed": int(run.seed),
                "run_id": run.run_id,
                "metrics": {
                    metric: [_json_number(value) for value in group.sort_values("generation")["value"]]
                    for metric, group in frame[frame["run_id"] == run.run_id].groupby("metric")
                },
            }
            for run in runs.sort_values("seed").itertuples()
        ],
        "provenance": provenance(float(runs["wall_time_s"].sum()), command),
    }


def _json_number(value: float) -> float | str:
    return float(value) if math.isfinite(value) else repr(float(value))  # JSON has no nan/inf


def provenance(wall_time_s: float, command: str) -> dict[str, Any]:
    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    hardware = f"{platform.machine()}, {os.cpu_count()} CPUs"
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            hardware += f", {torch.cuda.get_device_name(0)}"
    commit, dirty = git_revision(Path(__file__).parent)
    return {
        "package_version": package_version(),
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": installed("torch"),
        "platform": platform.platform(),
        "hardware": hardware,
        "wall_time_s": round(wall_time_s, 3),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "command": command,
    }


def git_revision(folder: Path) -> tuple[str | None, bool | None]:
    """The commit checked out at ``folder`` and whether tracked files differ from it (an entry made
    from uncommitted code cannot be reproduced from its commit alone); (None, None) outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10, cwd=folder
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD") or None
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


# ---------------------------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class Verification:
    seeds: list[int]
    max_abs_deviation: float
    mismatches: list[str]  # "seed 3: fd at generation 7: 0.12 reported, 0.13 re-run"

    @property
    def ok(self) -> bool:
        return not self.mismatches


def verify(submission: dict[str, Any], board: Board, seeds: list[int] | None = None) -> Verification:
    """Re-run the submission's agent on ``seeds`` (default: the track's ``verify_seeds`` first seeds)
    with the track's settings and compare every reported metric within the track's tolerance."""
    from collapsebench.runner import evaluate

    track = board.track(submission["track"]["id"], submission["track"]["version"])
    seeds = seeds if seeds is not None else sorted(submission["seeds"])[: track.verify_seeds]
    agent = submission["agent"]
    reported = {run["seed"]: run["metrics"] for run in submission["runs"]}
    with tempfile.TemporaryDirectory() as folder:
        frame = evaluate(
            track.env_id,
            policy_from_record(agent["policy"]["name"], agent["policy"]["params"]),
            seeds=seeds,
            model=agent["model"]["name"],
            model_kwargs=restore_non_finite(agent["model"]["params"]),
            env_kwargs=track.env_kwargs(),
            store=Path(folder) / "verify.sqlite",
            progress=False,
        )
    mismatches, deviation = [], 0.0
    for (seed, metric), group in frame.groupby(["seed", "metric"]):
        if metric not in reported.get(seed, {}):
            continue
        rerun = group.sort_values("generation")["value"].to_numpy()
        claimed = np.asarray(reported[seed][metric], dtype=np.float64)
        difference = np.abs(rerun - claimed)
        deviation = max(deviation, float(difference.max()))
        bad = np.flatnonzero(difference > track.verify_atol + track.verify_rtol * np.abs(rerun))
        if bad.size:
            generation = int(bad[0])
            mismatches.append(
                f"seed {seed}: {metric} at generation {generation}: {claimed[generation]:.6g} reported, "
                f"{rerun[generation]:.6g} re-run"
            )
    return Verification([int(seed) for seed in seeds], deviation, mismatches)


def uninstalled_components(submission: dict[str, Any]) -> list[str]:
    """The policies and model of the submission's agent that are not registered in this installation
    (a plugin's, not installed), as ``policy 'name'`` / ``model 'name'``: ``verify`` cannot re-run
    those."""
    from collapsebench.models import MODELS
    from collapsebench.policies import POLICIES

    agent = submission["agent"]
    stages = _recorded_stages(agent["policy"]["name"], agent["policy"]["params"])
    missing = [f"policy {name!r}" for name, _ in stages if name not in POLICIES]
    if agent["model"]["name"] not in MODELS:
        missing.append(f"model {agent['model']['name']!r}")
    return missing


def policy_from_record(name: str, params: dict[str, Any]) -> Any:
    """The policy a submission names, with its parameters as recorded: non-finite floats as strings
    (``restore_non_finite``)."""
    from collapsebench.policies import compose, make_policy

    stages = [
        make_policy(stage, **kwargs) for stage, kwargs in _recorded_stages(name, restore_non_finite(params))
    ]
    return compose(*stages) if ">" in name else stages[0]


def _recorded_stages(name: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(policy name, parameters) of each stage of a recorded policy: composed policies are stored as
    ``a>b`` with their stages in ``params["stages"]``, a single policy as itself."""
    if ">" in name:
        return [(stage["policy"], stage["params"]) for stage in params["stages"]]
    return [(name, params)]
