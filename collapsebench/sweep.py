"""Sweeps: grids of env × agent × seed, run by an executor, written to the store by one writer.

A sweep config is a small TOML file (examples in ``baselines/sweeps/``)::

    envs = ["Gaussian-mix-v0", "Gaussian-replace-v0"]
    seeds = "0-4"             # or a list: [0, 3, 5]
    generations = 20          # optional: every env's T
    imports = ["my_policies"] # optional: modules of yours that register names the grid uses

    [[agents]]
    policy = "lambda-mix"
    params = { lam = [0.25, 0.5, 1.0] }   # a list is a grid axis: three agents

    [[agents]]
    envs = "Gaussian-mix-v0"                        # optional: this agent's envs, seeds
    seeds = "0-1"
    policy = ["filter-likelihood", "lambda-mix"]    # composed, in order
    params = { "filter-likelihood.q" = 0.1, "lambda-mix.lam" = 0.5 }
    model = "realnvp"                               # optional: the env spec's model otherwise
    model_params = { steps = [100, 300] }
    env_params = { n_real = 200 }
    add_metrics = ["tail_mass"]                     # scored beside the env's own metrics
    resources = { cpus = 1, gpus = 0 }              # what one cell asks a ray cluster for

Every list value in ``params``, ``model_params`` and ``env_params`` (top level or per agent) is a grid
axis; write a list that is one value as ``[[1, 2]]``. ``add_metrics`` (top level or per agent) is
not: it is the one list of registered metrics each env scores beside its own. ``imports`` names
modules imported before anything else is read, so that a grid can use the policies, models, metrics
or envs they register; a module is looked up beside the config file first, then on the path. A
*cell* is one lineage: (env, agent, seed).

How results flow: the driver (the process that runs ``sweep``) is the store's only writer. It cuts
every lineage into *chunks* of about ``chunk_seconds`` of compute. A worker runs a chunk from the
store's last checkpoint and returns its generations plus a new checkpoint; the driver commits them,
then sends the next chunk. A worker that dies loses only its chunk in flight: the driver reruns it
from the last committed state (``max_retries`` times, then reports the cell failed; rerunning the
sweep finishes it). The store commits each generation at most once, so no row is lost or
duplicated, and cells already finished in the store are skipped.
"""

from __future__ import annotations

import itertools
import os
import tomllib
import traceback
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from collapsebench.checks import integer, number_in, optional_integer
from collapsebench.executors import EXECUTORS, Resources, main_file, make_executor
from collapsebench.first_models import FirstModelCache
from collapsebench.models import MODELS
from collapsebench.policies import POLICIES, CurationPolicy, build_policy
from collapsebench.registration import registering_module, spec, with_added_metrics
from collapsebench.registry import import_registering_modules
from collapsebench.rewards import REWARDS
from collapsebench.runner import (
    GenerationRecord,
    Lineage,
    commit,
    package_version,
    parse_seeds,
    progress_bar,
)
from collapsebench.scoring import METRICS, check_metric_names
from collapsebench.store import ResultsStore, RunKey

_TOP_LEVEL_KEYS = {"imports", "envs", "seeds", "generations", "env_params", "add_metrics", "agents"}
_AGENT_KEYS = {
    "envs",
    "seeds",
    "policy",
    "params",
    "model",
    "model_params",
    "env_params",
    "add_metrics",
    "resources",
}
_RESOURCE_KEYS = {"cpus", "gpus"}


@dataclass(frozen=True, eq=True)
class Cell:
    """One lineage of a sweep: an env, an agent (policy + model settings) and a seed."""

    env_id: str
    policy: tuple[str, ...]
    seed: int
    policy_params: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None  # None: the env spec's model
    model_params: Mapping[str, Any] = field(default_factory=dict)  # adjust the spec's when same model
    env_params: Mapping[str, Any] = field(default_factory=dict)
    added_metrics: tuple[str, ...] = ()  # scored beside the env's metrics (or env_params' metrics)
    generations: int | None = None  # None: the env spec's T
    cpus: float = 1.0
    gpus: float | None = None  # None: one if the model wants an accelerator and the back-end has one

    def env_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.env_params)
        if self.added_metrics:
            kwargs = with_added_metrics(self.env_id, self.added_metrics, kwargs)
        if self.generations is not None:
            kwargs["generations"] = int(self.generations)
        if self.model is not None:
            kwargs["model"] = self.model
        if self.model_params:  # cb.make applies them to the spec's model settings (with_model_settings)
            kwargs["model_kwargs"] = dict(self.model_params)
        return kwargs

    def build_policy(self) -> CurationPolicy:
        return build_policy(self.policy, self.policy_params)

    def open(self, snapshots: int = 0, first_models: FirstModelCache | None = None) -> Lineage:
        return Lineage(
            self.env_id, self.build_policy(), self.seed, self.env_kwargs(), snapshots, first_models
        )

    @property
    def label(self) -> str:
        return f"{self.env_id} · {self.build_policy().label} · seed {self.seed}"

    def __str__(self) -> str:
        """What the cell sets, short, built from its fields alone: how an error names a cell that
        cannot be built (``label`` builds the policy, which may be what fails)."""

        def call(name: str, params: Mapping[str, Any]) -> str:
            args = ", ".join(f"{key}={value!r}" for key, value in params.items())
            return f"{name}({args})" if args else name

        parts = [self.env_id, call(">".join(self.policy), self.policy_params)]
        if self.model is not None or self.model_params:
            parts.append(call("model" if self.model is None else f"model {self.model}", self.model_params))
        if self.env_params:
            parts.append(call("env", self.env_params))
        if self.added_metrics:
            parts.append(f"metrics + {', '.join(self.added_metrics)}")
        if self.generations is not None:
            parts.append(f"T={self.generations}")
        return " · ".join([*parts, f"seed {self.seed}"])

    def registering_modules(self) -> dict[str, str]:
        """Each registered name the cell uses (``"policy 'lambda-mix'"``, its env, model, metrics and
        reward) → the module that registers it, which a worker process must import to build the
        cell."""
        settings = {**spec(self.env_id).kwargs, **self.env_kwargs()}
        names = {f"env {self.env_id!r}": registering_module(self.env_id)}
        names |= {f"policy {stage!r}": POLICIES.module_of(stage) for stage in self.policy}
        if settings.get("model") is not None:
            names[f"model {settings['model']!r}"] = MODELS.module_of(settings["model"])
        names |= {f"metric {metric!r}": METRICS.module_of(metric) for metric in settings.get("metrics", ())}
        if isinstance(settings.get("sample_reward"), str):
            names[f"reward {settings['sample_reward']!r}"] = REWARDS.module_of(settings["sample_reward"])
        return names


# ---------------------------------------------------------------------------------------------- configs
def grid(params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Every combination of the list-valued entries (``[[1, 2]]`` is the one value ``[1, 2]``)."""
    params = dict(params or {})
    axes = {name: value if isinstance(value, list) else [value] for name, value in params.items()}
    names = list(axes)
    return [dict(zip(names, combination, strict=True)) for combination in itertools.product(*axes.values())]


def cells_from_config(
    config: Mapping[str, Any], source: str = "the sweep config", folder: Path | None = None
) -> list[Cell]:
    """Expand a parsed config (see the module docstring) into cells. Every problem is reported at
    once, before anything runs. ``folder``: where the config's ``imports`` are looked up first (the
    config file's own folder)."""
    problems: list[str] = []
    unknown = set(config) - _TOP_LEVEL_KEYS
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}; expected {sorted(_TOP_LEVEL_KEYS)}")
    _import_modules(config.get("imports"), folder, problems)  # first: they register the names below
    shared_envs = _env_ids(config.get("envs"), "envs", problems)
    try:
        seeds = parse_seeds(config.get("seeds", "0-4"))
    except (TypeError, ValueError) as error:
        problems.append(f"'seeds': {error}")
        seeds = []
    generations = config.get("generations")
    try:
        generations = optional_integer("generations", generations, 0)
    except ValueError as error:  # True was taken for T = 1, and 2.0 refused
        problems.append(f"'generations': {error}")
    shared_metrics = _metric_names(config.get("add_metrics"), "add_metrics", problems)
    agents = config.get("agents")
    if not agents or not isinstance(agents, list) or not all(isinstance(a, Mapping) for a in agents):
        problems.append("'agents' must be a non-empty array of tables: [[agents]] policy = \"...\"")
        agents = []

    cells: list[Cell] = []
    for number, agent in enumerate(agents, start=1):
        where = f"agents #{number}"
        unknown = set(agent) - _AGENT_KEYS
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}; expected {sorted(_AGENT_KEYS)}")
        envs = _env_ids(agent.get("envs"), f"{where}: envs", problems) or shared_envs
        if not envs:
            problems.append(f"{where}: no envs (give 'envs' at the top level or in the agent)")
        agent_seeds = seeds
        if "seeds" in agent:
            try:
                agent_seeds = parse_seeds(agent["seeds"])
            except (TypeError, ValueError) as error:
                problems.append(f"{where}: 'seeds': {error}")
        policy = agent.get("policy")
        policy = (policy,) if isinstance(policy, str) else tuple(policy or ())
        if not policy or not all(isinstance(name, str) for name in policy):
            problems.append(f"{where}: 'policy' must be a policy name or a list of names")
            continue
        resources = dict(agent.get("resources") or {})
        if set(resources) - _RESOURCE_KEYS:
            problems.append(f"{where}: resources take {sorted(_RESOURCE_KEYS)}, got {sorted(resources)}")
        own_metrics = _metric_names(agent.get("add_metrics"), f"{where}: add_metrics", problems)
        metrics = tuple(dict.fromkeys([*shared_metrics, *own_metrics]))
        env_grid = [
            {**shared, **own}
            for shared in grid(config.get("env_params"))
            for own in grid(agent.get("env_params"))
        ]
        for env_id, policy_params, model_params, env_params, seed in itertools.product(
            envs, grid(agent.get("params")), grid(agent.get("model_params")), env_grid, agent_seeds
        ):
            cells.append(
                Cell(
                    env_id=env_id,
                    policy=policy,
                    seed=seed,
                    policy_params=policy_params,
                    model=agent.get("model"),
                    model_params=model_params,
                    env_params=env_params,
                    added_metrics=metrics,
                    generations=generations,
                    cpus=float(resources.get("cpus", 1.0)),
                    gpus=None if resources.get("gpus") is None else float(resources["gpus"]),
                )
            )
    if problems:
        raise ValueError(f"{source} is not a valid sweep:\n- " + "\n- ".join(problems))
    return cells


def _import_modules(value: Any, folder: Path | None, problems: list[str]) -> None:
    """Import the modules ``imports`` names (a name or a list); a problem is noted, not raised."""
    names = [value] if isinstance(value, str) else value
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        problems.append(f"'imports' must be a module name or a list of them, got {value!r}")
        return
    problems += [f"'imports': {problem}" for problem in import_registering_modules(names, folder)]


def _metric_names(value: Any, where: str, problems: list[str]) -> list[str]:
    """A list of metric names (absent: an empty list); a problem is noted, not raised."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        problems.append(f"'{where}' must be a list of metric names, got {value!r}")
        return []
    try:
        check_metric_names(value)
    except ValueError as error:
        problems.append(f"'{where}': {error}")
    return value


def _env_ids(value: Any, where: str, problems: list[str]) -> list[str]:
    """An env id or a list of them (absent: an empty list); a problem is noted, not raised."""
    ids = [value] if isinstance(value, str) else value
    if ids is None:
        return []
    if not ids or not isinstance(ids, list) or not all(isinstance(env, str) for env in ids):
        problems.append(f"'{where}' must be an env id or a non-empty list of env ids, got {value!r}")
        return []
    return ids


def load_sweep(path: str | os.PathLike[str]) -> list[Cell]:
    """Read a TOML sweep config (see the module docstring) and expand it into cells."""
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no sweep config at {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from None
    return cells_from_config(config, source=str(path), folder=path.parent)


# ---------------------------------------------------------------------------------------------- chunks
@dataclass(frozen=True)
class ChunkTask:
    """Run ``cell`` on from its committed state until ``budget_s`` seconds of compute have passed."""

    cell: Cell
    committed: int  # generations already in the store
    checkpoint: tuple[int, dict[str, np.ndarray]] | None  # the newest one the store has, if any
    budget_s: float
    snapshots: int
    first_models: Path | None = None  # the store's shared first models (a folder the worker can reach)
    modules: tuple[str, ...] = ()  # imported first: they register the cell's names outside collapsebench


@dataclass(frozen=True)
class ChunkResult:
    run_id: str
    records: list[GenerationRecord]
    checkpoint: tuple[int, dict[str, np.ndarray]] | None  # None: the lineage is finished


def run_chunk(task: ChunkTask) -> ChunkResult:
    """The worker side: step the lineage, write nothing, return what happened."""
    for module in task.modules:
        import_module(module)
    first_models = None if task.first_models is None else FirstModelCache(task.first_models)
    with task.cell.open(task.snapshots, first_models) as lineage:
        records: list[GenerationRecord] = []
        spent = 0.0
        for record in lineage.generations(task.checkpoint, committed=task.committed):
            records.append(record)
            spent += record.wall_time_s
            if record.generation < lineage.last_generation and spent >= task.budget_s:
                return ChunkResult(lineage.key.run_id, records, (record.generation, lineage.checkpoint()))
        return ChunkResult(lineage.key.run_id, records, None)


# ---------------------------------------------------------------------------------------------- driver
@dataclass
class _Lineage:
    """The driver's view of one unfinished cell."""

    cell: Cell
    key: RunKey
    resources: Resources
    committed: int
    checkpoint: tuple[int, dict[str, np.ndarray]] | None
    crashes: int = 0


@dataclass(frozen=True)
class CellFailure:
    cell: Cell
    run_id: str
    error: str


@dataclass(frozen=True)
class SweepReport:
    """What a sweep did: ``run_ids`` of every cell (in config order), how many were already finished,
    and the cells that failed (rerun the sweep after fixing the cause: it resumes them)."""

    store: ResultsStore
    run_ids: list[str]
    skipped: int
    failures: list[CellFailure]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dataframe(self) -> pd.DataFrame:
        return self.store.to_dataframe(self.run_ids)


def plan(cells: Iterable[Cell], store: ResultsStore) -> Iterator[tuple[Cell, RunKey, int, bool]]:
    """Each cell with its run key, how many generations the store already has, and whether its model
    wants an accelerator. Building the env checks the cell's names and parameters, so a bad cell fails
    here, before any work starts and before the store is touched."""
    built: list[tuple[Cell, RunKey, bool]] = []
    for cell in cells:
        try:
            with cell.open() as lineage:
                key, model = lineage.key, lineage.unwrapped.model_name
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"cell {cell}: {error.args[0] if error.args else error}") from None
        built.append((cell, key, bool(getattr(MODELS.get(model), "wants_accelerator", False))))
    for cell, key, wants_accelerator in built:
        yield cell, key, store.completed_generations(key.run_id), wants_accelerator


def sweep(
    config: str | os.PathLike[str] | Mapping[str, Any] | Iterable[Cell],
    store: ResultsStore | str | os.PathLike[str] | None = None,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    chunk_seconds: float = 60.0,
    max_retries: int = 2,
    snapshots: int = 0,
    progress: bool = True,
) -> SweepReport:
    """Run every cell of ``config`` (a TOML path, a parsed config, or cells) on ``backend``
    (``local``, ``ray`` or ``inline``; see ``collapsebench.executors``). Finished cells are skipped,
    interrupted ones resume; ``chunk_seconds`` is how much compute a dead worker may cost."""
    number_in("chunk_seconds", chunk_seconds, "[0, inf]")
    integer("max_retries", max_retries, 0)
    integer("snapshots", snapshots, 0)
    if isinstance(config, str | os.PathLike):
        cells = load_sweep(config)
    elif isinstance(config, Mapping):
        cells = cells_from_config(config)
    else:
        cells = list(config)
    results = store if isinstance(store, ResultsStore) else ResultsStore(store)
    run_ids: list[str] = []
    pending: list[_Lineage] = []
    queued: set[str] = set()
    planned = list(plan(cells, results))  # every cell checked before any is recorded
    used = {name: module for cell, *_ in planned for name, module in cell.registering_modules().items()}
    _check_workers_can_import(used, backend)
    modules = tuple(sorted({module for module in used.values() if _worker_must_import(module)}))
    for cell, key, done, wants_accelerator in planned:
        run_ids.append(key.run_id)
        if done > key.generations or key.run_id in queued:  # finished, or the same cell twice
            continue
        queued.add(key.run_id)
        results.begin_run(key, package_version())
        checkpoint = results.latest_checkpoint(key.run_id, at_most=done - 1) if done else None
        resources = Resources(cpus=cell.cpus, gpus=cell.gpus, wants_accelerator=wants_accelerator)
        pending.append(_Lineage(cell, key, resources, done, checkpoint))
    skipped = len(run_ids) - len(pending)
    failures: list[CellFailure] = []
    if not pending:
        return SweepReport(results, run_ids, skipped, failures)

    total = sum(job.key.generations + 1 - job.committed for job in pending)
    lineages = f"{len(pending)} lineage{'s' if len(pending) > 1 else ''}"
    with (
        make_executor(backend, workers, address) as executor,
        progress_bar(progress, f"sweep · {lineages} on {backend}", total) as advance,
    ):

        def submit(job: _Lineage) -> Future[ChunkResult]:
            task = ChunkTask(
                job.cell,
                job.committed,
                job.checkpoint,
                chunk_seconds,
                snapshots,
                results.first_model_dir,
                modules,
            )
            return executor.submit(run_chunk, task, job.resources)

        in_flight = {submit(job): job for job in pending}
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                job = in_flight.pop(future)
                try:
                    result = future.result()
                except executor.crash_errors:
                    executor.recover(future)
                    job.crashes += 1
                    if job.crashes > max_retries:
                        failures.append(CellFailure(job.cell, job.key.run_id, "its worker died repeatedly"))
                        continue
                    in_flight[submit(job)] = job
                    continue
                except Exception as error:
                    message = "".join(traceback.format_exception_only(error)).strip()
                    failures.append(CellFailure(job.cell, job.key.run_id, message))
                    continue
                advance(_commit_chunk(results, job, result))
                if result.checkpoint is not None:  # more to do: the next chunk
                    in_flight[submit(job)] = job
    return SweepReport(results, run_ids, skipped, failures)


def _worker_must_import(module: str) -> bool:
    """Whether a worker process needs ``module`` imported to see what it registers: importing
    collapsebench registers its own names and the plugins'; ``__main__`` cannot be imported."""
    return bool(module) and module != "__main__" and module.split(".")[0] != "collapsebench"


def _check_workers_can_import(used: Mapping[str, str], backend: str) -> None:
    """Refuse, before any work starts, names registered in ``__main__`` that ``backend``'s workers
    cannot see: they start as fresh processes and look names up."""
    executor = EXECUTORS.get(backend)
    from_main = sorted(name for name, module in used.items() if module == "__main__")
    if executor.runs_in_this_process or not from_main:
        return
    program = main_file()
    is_script = program is not None and os.path.isfile(program)
    if executor.reruns_main_script and is_script:
        return  # each worker re-runs the script's top level, registrations included
    where = "the main script" if is_script else "an interactive session"
    raise ValueError(
        f"{', '.join(from_main)} {'is' if len(from_main) == 1 else 'are'} registered in __main__ "
        f"({where}), which the {backend!r} back-end's worker processes do not run: move the "
        "registration into a module they can import (or a plugin package, see the README), or "
        "run the sweep with backend='inline'"
    )


def _commit_chunk(store: ResultsStore, job: _Lineage, result: ChunkResult) -> int:
    """The one writer: commit the chunk's generations, then its checkpoint (or clean up the finished
    run's). Returns how many generations were new."""
    if result.run_id != job.key.run_id:
        raise RuntimeError(
            f"a worker ran {result.run_id} for cell {job.key.run_id}: the worker's collapsebench (or a "
            "plugin) differs from the driver's"
        )
    new = sum(commit(store, job.key, record) for record in result.records)
    if result.records:
        job.committed = result.records[-1].generation + 1
    if result.checkpoint is None:
        store.prune_checkpoints(job.key.run_id, keep_generation=None)
    else:
        generation, state = result.checkpoint
        store.save_checkpoint(job.key.run_id, generation, state)
        store.prune_checkpoints(job.key.run_id, keep_generation=generation)
    job.checkpoint = result.checkpoint
    return new
