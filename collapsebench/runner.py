"""Running lineages: env → pool → policy → model → samples → metrics → store.

``evaluate`` runs one agent (a model, set through the env, and a curation policy) over several seeds,
writes every generation to the results store, and returns the tidy results. Finished runs are not
re-run; interrupted ones resume from their last committed generation.
"""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from collapsebench.checks import integer, number_in
from collapsebench.datasets import CorruptDataError
from collapsebench.env import CollapseEnv
from collapsebench.first_models import FirstModelCache
from collapsebench.policies import CurationPolicy, make_policy
from collapsebench.registration import make, spec
from collapsebench.store import ResultsStore, RunKey, canonical_json

_NOT_CONFIG = ("model", "model_kwargs", "first_models")  # model: recorded on its own; cache: no setting
# Recorded only when a sample reward is set: without one they change nothing, and the configs of runs
# (and leaderboard tracks) made before the option existed stay what they were.
_SAMPLE_REWARD_CONFIG = ("sample_reward", "sample_reward_kwargs")


def package_version() -> str:
    from collapsebench import __version__

    return __version__


def env_config(env: CollapseEnv) -> str:
    """The env's resolved settings as canonical JSON, the model excluded (recorded on its own)."""
    config = {name: value for name, value in env.config.items() if name not in _NOT_CONFIG}
    if config.get("sample_reward") is None:
        for name in _SAMPLE_REWARD_CONFIG:
            config.pop(name, None)
    if env.feature_version is not None:  # results of other feature weights or libraries never mix
        config["features"] = env.feature_version
    return canonical_json(config)


def run_key(env: CollapseEnv, env_id: str, policy: CurationPolicy, seed: int) -> RunKey:
    env_spec = spec(env_id)
    return RunKey(
        env_id=env_spec.name + ("" if env_spec.version is None else f"-v{env_spec.version}"),
        env_version=int(env_spec.version or 0),
        env_config=env_config(env),
        model=env.model_name,
        model_params=canonical_json(env.model_params),
        policy=policy.name,
        policy_params=canonical_json(policy.params),
        seed=int(seed),
        generations=env.generations,
    )


@dataclass(frozen=True)
class GenerationRecord:
    """One finished generation of a lineage, as the store commits it."""

    generation: int
    metrics: dict[str, float]
    wall_time_s: float
    snapshot: dict[str, np.ndarray] | None = None  # pool, weights and samples, for pictures


class EnvSettingsError(ValueError):
    """The env's settings (overrides, model, model parameters) cannot make an env: raised when a
    lineage is set up, before it runs anything."""


class Lineage:
    """One lineage (env × policy × seed) stepped generation by generation, from the start or from a
    checkpoint. The store-writing loops (``run_lineage`` here, sweep chunks in worker processes) are
    both built on it, so both resume and replay the same way; both pass the store's shared first
    models (``first_models``), which change no result."""

    def __init__(
        self,
        env_id: str,
        policy: CurationPolicy,
        seed: int,
        env_kwargs: Mapping[str, Any] | None = None,
        snapshots: int = 0,
        first_models: FirstModelCache | None = None,
    ) -> None:
        kwargs = dict(env_kwargs or {})
        if first_models is not None:
            kwargs["first_models"] = first_models
        try:
            self.env = make(env_id, **kwargs)
        except CorruptDataError:
            raise  # the files, not the settings
        except (KeyError, TypeError, ValueError) as error:
            raise EnvSettingsError(f"{env_id}: {error.args[0] if error.args else error}") from error
        self.unwrapped: CollapseEnv = self.env.unwrapped  # type: ignore[assignment]
        self.key = run_key(self.unwrapped, env_id, policy, seed)
        self.policy, self.seed = policy, int(seed)
        self.last_generation = self.unwrapped.generations
        self._pictured = snapshot_generations(self.last_generation, snapshots)

    def generations(
        self, checkpoint: tuple[int, Mapping[str, np.ndarray]] | None = None, committed: int = 0
    ) -> Iterator[GenerationRecord]:
        """Step to the end; yield every generation from ``committed`` on. ``checkpoint``: (generation,
        state) to continue after; the generations between it and ``committed`` are replayed without
        being yielded (the env is deterministic, so they come out the same)."""
        obs, _ = self.env.reset(seed=self.seed)
        self.policy.reset(self.seed)
        start = 0
        if checkpoint is not None:
            restored_generation, state = checkpoint
            obs, start = self.unwrapped.restore(dict(state)), restored_generation + 1
        for generation in range(start, self.last_generation + 1):
            started = time.perf_counter()
            pool, action = obs, self.policy(obs)
            obs, _, _, _, info = self.env.step(action)
            if generation < committed:
                continue
            snapshot = _snapshot(pool, action, info["samples"]) if generation in self._pictured else None
            yield GenerationRecord(generation, info["metrics"], time.perf_counter() - started, snapshot)

    def checkpoint(self) -> dict[str, np.ndarray]:
        return self.unwrapped.checkpoint()

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> Lineage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def commit(store: ResultsStore, key: RunKey, record: GenerationRecord) -> bool:
    """Write one generation (and its snapshot); False if the store already had it."""
    if record.snapshot is not None:
        store.save_snapshot(key.run_id, record.generation, record.snapshot)
    return store.commit_generation(key, record.generation, record.metrics, record.wall_time_s)


def run_lineage(
    env_id: str,
    policy: CurationPolicy,
    seed: int,
    store: ResultsStore,
    env_kwargs: Mapping[str, Any] | None = None,
    on_generation: Callable[[int], None] | None = None,
    checkpoint_every_s: float = 60.0,
    snapshots: int = 0,
) -> str:
    """Run (or finish) one lineage in this process and return its run id.

    Every generation is committed to the store as it finishes. The env state is checkpointed once
    ``checkpoint_every_s`` seconds of compute have passed since the last checkpoint (0: after every
    generation); a resumed run restores the newest checkpoint and replays, without writing, the few
    committed generations after it. ``on_generation(n)`` reports progress (generations already
    committed are reported once, up front). ``snapshots``: at that many evenly spaced generations (0
    and T included), save the training pool, its weights and the model's samples beside the store,
    for ``collapsebench plot --samples``.
    """
    first_models = FirstModelCache(store.first_model_dir)
    with Lineage(env_id, policy, seed, env_kwargs, snapshots, first_models) as lineage:
        key, last = lineage.key, lineage.last_generation
        done = store.begin_run(key, package_version())
        if on_generation is not None and done:
            on_generation(min(done, last + 1))
        if done > last:
            return key.run_id
        checkpoint = store.latest_checkpoint(key.run_id, at_most=done - 1) if done else None
        since_checkpoint = 0.0
        for record in lineage.generations(checkpoint, committed=done):
            commit(store, key, record)
            since_checkpoint += record.wall_time_s
            if record.generation < last and since_checkpoint >= checkpoint_every_s:
                store.save_checkpoint(key.run_id, record.generation, lineage.checkpoint())
                store.prune_checkpoints(key.run_id, keep_generation=record.generation)
                since_checkpoint = 0.0
            if on_generation is not None:
                on_generation(1)
        store.prune_checkpoints(key.run_id, keep_generation=None)
        return key.run_id


def snapshot_generations(last: int, count: int) -> set[int]:
    """``count`` evenly spaced generations from 0 to ``last`` (0 → none)."""
    if count <= 0:
        return set()
    return {int(g) for g in np.unique(np.linspace(0, last, min(count, last + 1)).round())}


def _snapshot(obs: Mapping[str, Any], action: np.ndarray, samples: np.ndarray) -> dict[str, np.ndarray]:
    valid = np.asarray(obs["valid"]) == 1
    return {
        "pool": np.asarray(obs["samples"])[valid],
        "origin": np.asarray(obs["origin"])[valid],
        "weights": np.asarray(action, dtype=np.float64)[valid],
        "samples": np.asarray(samples),
    }


def parse_seeds(value: str | int | Iterable[int]) -> list[int]:
    """``"0-19"``, ``"0,2,5"``, ``"0-4,10"``, ``3`` or any iterable of integers (``range(5)``, a numpy
    array) → a list of seeds, each a whole number ≥ 0."""
    if isinstance(value, bool):
        raise ValueError(f"seeds look like 0-19, 0,3,5 or a list of integers; got {value!r}")
    if isinstance(value, numbers.Integral):
        seeds = [int(value)]
    elif not isinstance(value, str):
        seeds = list(value)
        if not all(isinstance(seed, numbers.Integral) and not isinstance(seed, bool) for seed in seeds):
            raise ValueError(f"seeds must be integers, got {seeds!r}")
        seeds = [int(seed) for seed in seeds]
    else:
        seeds = []
        for part in value.split(","):
            low, dash, high = part.strip().partition("-")
            try:
                first, last = int(low), int(high if dash else low)
            except ValueError:
                raise ValueError(f"seeds look like 0-19, 0,3,5 or 0-4,10; got {value!r}") from None
            if last < first:
                raise ValueError(
                    f"the seed range {part.strip()} is empty: write it low to high ({last}-{first})"
                )
            seeds.extend(range(first, last + 1))
    if not seeds:
        raise ValueError("no seeds")
    if min(seeds) < 0:  # numpy's seed sequences take none
        raise ValueError(f"seeds must be ≥ 0, got {min(seeds)}")
    return seeds


def evaluate(
    env_id: str,
    policy: str | CurationPolicy,
    policy_kwargs: Mapping[str, Any] | None = None,
    seeds: str | int | Iterable[int] = range(5),
    generations: int | None = None,
    model: str | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    store: ResultsStore | str | os.PathLike[str] | None = None,
    progress: bool = True,
    checkpoint_every_s: float = 60.0,
    snapshots: int = 0,
) -> pd.DataFrame:
    """Run ``policy`` on ``env_id`` for each seed; return tidy results (one row per seed, generation and
    metric: env_id, env_version, model, model_params, policy, params, seed, generation, metric, value,
    run_id). ``generations`` (T) and ``model`` override the env spec's defaults, and ``model_kwargs``
    adjust its model settings as ``cb.make`` does;
    ``checkpoint_every_s`` sets how much compute an interruption may cost; ``snapshots`` how many
    generations to keep samples of, for pictures (see ``run_lineage``)."""
    integer("snapshots", snapshots, 0)
    number_in("checkpoint_every_s", checkpoint_every_s, "[0, inf]")
    seed_list = parse_seeds(seeds)
    if isinstance(policy, str):
        policy = make_policy(policy, **dict(policy_kwargs or {}))
    elif policy_kwargs:
        raise ValueError("policy_kwargs only apply when policy is a registered name")
    overrides = dict(env_kwargs or {})
    if generations is not None:
        overrides["generations"] = int(generations)
    if model is not None:
        overrides["model"] = model
    if model_kwargs is not None:
        overrides["model_kwargs"] = dict(model_kwargs)
    results = store if isinstance(store, ResultsStore) else ResultsStore(store)
    total_generations = int(overrides.get("generations", spec(env_id).kwargs["generations"])) + 1

    run_ids = []
    with progress_bar(progress, f"{env_id} · {policy.label}", len(seed_list) * total_generations) as advance:
        for seed in seed_list:
            run_ids.append(
                run_lineage(env_id, policy, seed, results, overrides, advance, checkpoint_every_s, snapshots)
            )
    return results.to_dataframe(run_ids)


class progress_bar:
    """A rich progress bar over every generation of every seed (or nothing)."""

    def __init__(self, enabled: bool, description: str, total: int) -> None:
        self.enabled, self.description, self.total = enabled, description, total

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda _: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total)
        return lambda steps: self._bar.advance(self._task, steps)

    def __exit__(self, error_type: type[BaseException] | None, *exc_info: object) -> None:
        if not self.enabled:
            return
        if error_type is not None and self._bar.tasks[0].completed == 0:
            # Nothing ran (a bad setting found while building the env): the error alone is the news.
            self._bar.live.transient = True
        self._bar.stop()
