"""The ``collapsebench`` command: list, describe, run, sweep, export, summary, plot, weights, demo."""

from __future__ import annotations

import inspect
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.table import Table

from collapsebench.leaderboard.cli import app as leaderboard_app
from collapsebench.terminal import console, status

app = typer.Typer(
    help="collapsebench: model collapse under iterative retraining.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstrings wrap as paragraphs, `code` shows as code
)
app.add_typer(leaderboard_app, name="leaderboard")


@app.callback()
def _imports(
    modules: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            help="a module of yours to import first (from the current folder or the path): one that "
            "registers envs, policies, models or metrics; repeatable. Worker processes import it too.",
        ),
    ] = None,
) -> None:
    from collapsebench import IMPORTS_ENV_VAR, named_imports
    from collapsebench.registry import import_registering_modules

    if not modules:
        return
    # From the current folder, as `python -m` would: the console script's own folder is not it.
    problems = import_registering_modules(modules, folder=os.getcwd())
    if problems:
        raise typer.BadParameter("; ".join(problems), param_hint="--import")
    os.environ[IMPORTS_ENV_VAR] = ",".join(dict.fromkeys([*named_imports(), *modules]))


StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store", help="SQLite results store [default: $COLLAPSEBENCH_STORE or results/collapsebench.sqlite]"
    ),
]


def parse_value(text: str) -> Any:
    """``0.5`` → float, ``3`` → int, ``inf`` → float, ``true`` → bool, JSON for lists/dicts, else str."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(items: list[str] | None, option: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=option)
        params[name.strip()] = parse_value(value.strip())
    return params


def file_stem(text: str) -> str:
    """``text`` as a file name: runs of characters other than letters, digits and ``_.=-`` → ``_``."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def parse_seeds(text: str) -> list[int]:
    """``0-19``, ``0,2,5``, ``3`` or a mix: ``0-4,10``."""
    from collapsebench.runner import parse_seeds as parse

    try:
        return parse(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--seeds") from None


@app.command("list")
def list_command() -> None:
    """Registered envs, curation policies, models, metrics and rewards."""
    import collapsebench as cb
    from collapsebench.registration import default_settings
    from collapsebench.rewards import REWARDS
    from collapsebench.scoring import METRICS

    table = Table("env id", "model", "n_real", "T", "headline", title="environments")
    for env_id in cb.list_envs():
        # What the env is built with: a spec may leave the model (or more) to its class's defaults.
        settings = default_settings(env_id)
        table.add_row(
            env_id,
            str(settings.get("model", "")),
            str(settings.get("n_real", "")),
            str(settings["generations"]),
            str(settings.get("headline_metric", "")),
        )
    console.print(table)
    console.print("[bold]policies:[/]", ", ".join(cb.list_policies()))
    console.print("[bold]models:[/]", ", ".join(cb.list_models()))
    console.print("[bold]metrics:[/]", ", ".join(METRICS))
    console.print("[bold]rewards:[/]", ", ".join(REWARDS), "(for curate-bt and sample_reward)")


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="an env id, or a curation policy's, model's or reward's name")],
) -> None:
    """An env's documentation and every setting it is built with (its spec's and its class's
    defaults); or a curation policy's, model's or reward's documentation and parameters with their
    defaults."""
    import collapsebench as cb
    from collapsebench.registration import default_settings
    from collapsebench.registry import close_name_hint

    components = _components_named(name)
    try:
        env_spec = cb.spec(name)
    except KeyError:
        if not components:
            names = [*cb.list_envs(), *(entry for registry in _component_registries() for entry in registry)]
            raise typer.BadParameter(
                f"no env, curation policy, model or reward named {name!r}{close_name_hint(name, names)}; "
                "`collapsebench list` names them all",
                param_hint="NAME",
            ) from None
    else:
        console.print(f"[bold]{name}[/]  (gymnasium id: {env_spec.id})")
        console.print(cb.env_doc(name), markup=False)  # E[σ_t] is text, not a style tag
        console.print_json(json.dumps(default_settings(name), default=str))
    for kind, factory in components:
        console.print(f"[bold]{name}[/]  ({kind})")
        console.print(inspect.getdoc(factory) or "", markup=False)
        console.print_json(json.dumps(_parameters(factory), default=str))


def _component_registries() -> tuple[Any, ...]:
    """The registries ``describe`` documents besides the envs: policies, models, rewards."""
    from collapsebench.models import MODELS
    from collapsebench.policies import POLICIES
    from collapsebench.rewards import REWARDS

    return POLICIES, MODELS, REWARDS


def _components_named(name: str) -> list[tuple[str, Any]]:
    """(kind, factory) of each registered policy, model or reward called ``name``."""
    return [(registry.kind, registry.get(name)) for registry in _component_registries() if name in registry]


def _parameters(factory: Any) -> dict[str, Any]:
    """A component's parameters with the defaults it is built with (those a base class takes through
    ``**kwargs`` included); one without a default reads "(required)"."""
    from collapsebench._params import bound_params, parameter_names

    if isinstance(factory, type):
        defaults = bound_params(factory, (), {}, partial=True)
    else:
        defaults = {
            name: parameter.default
            for name, parameter in inspect.signature(factory).parameters.items()
            if parameter.default is not parameter.empty
        }
    names = parameter_names(factory)
    return {name: defaults.get(name, "(required)") for name in (defaults if names is None else names)}


@app.command()
def run(
    env_id: str,
    policy: Annotated[
        list[str], typer.Option(help="registered curation policy; repeat to compose them in order")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="policy parameter NAME=VALUE (STAGE.NAME=VALUE when composed)"),
    ] = None,
    seeds: Annotated[str, typer.Option(help="e.g. 0-19 or 0,3,5")] = "0-4",
    generations: Annotated[int | None, typer.Option(min=0, help="T (default: the env spec's)")] = None,
    model: Annotated[str | None, typer.Option(help="registered model (default: the env spec's)")] = None,
    model_param: Annotated[
        list[str] | None, typer.Option("--model-param", help="model parameter NAME=VALUE")
    ] = None,
    env_param: Annotated[
        list[str] | None, typer.Option("--env-param", help="env override NAME=VALUE")
    ] = None,
    add_metric: Annotated[
        list[str] | None,
        typer.Option("--add-metric", help="also score this registered metric (e.g. tail_mass)"),
    ] = None,
    store: StoreOption = None,
    out: Annotated[Path | None, typer.Option(help="also export the results to .csv or .parquet")] = None,
    snapshots: Annotated[
        int, typer.Option(min=0, help="save samples at N evenly spaced generations (for plot --samples)")
    ] = 0,
    checkpoint_every: Annotated[
        float,
        typer.Option(min=0.0, help="seconds of compute between checkpoints (0: after every generation)"),
    ] = 60.0,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="where image data sets live (default: $COLLAPSEBENCH_DATA, ~/.cache/collapsebench/data)"
        ),
    ] = None,
) -> None:
    """Run one agent on one env for several seeds; results go to the store (finished runs are skipped)."""

    import collapsebench as cb
    from collapsebench.datasets import DATA_ENV_VAR
    from collapsebench.features import UNAVAILABLE_INPUT_ERRORS
    from collapsebench.plotting import summarize
    from collapsebench.policies import build_policy
    from collapsebench.registration import with_added_metrics
    from collapsebench.runner import EnvSettingsError
    from collapsebench.scoring import SAMPLE_REWARD_METRIC
    from collapsebench.store import check_export_path, export

    spec_kwargs = _env_spec(env_id).kwargs
    if out is not None:
        try:
            check_export_path(out)  # before the run, not after it
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--out") from None
    env_kwargs = parse_params(env_param, "--env-param")
    if add_metric:
        try:
            env_kwargs = with_added_metrics(env_id, tuple(add_metric), env_kwargs)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--add-metric") from None
    model_params = parse_params(model_param, "--model-param")  # cb.make applies them to the spec's
    try:
        agent = build_policy(policy, parse_params(param, "--param"))
    except (KeyError, TypeError, ValueError) as error:
        raise typer.BadParameter(
            str(error.args[0] if error.args else error), param_hint="--policy/--param"
        ) from None
    previous_data_dir = os.environ.get(DATA_ENV_VAR)
    if data_dir is not None:
        os.environ[DATA_ENV_VAR] = str(data_dir)
    try:
        frame = cb.evaluate(
            env_id,
            agent,
            seeds=parse_seeds(seeds),
            generations=generations,
            model=model,
            model_kwargs=model_params or None,
            env_kwargs=env_kwargs,
            store=store,
            progress=progress,
            snapshots=snapshots,
            checkpoint_every_s=checkpoint_every,
        )
    except UNAVAILABLE_INPUT_ERRORS as error:
        raise typer.BadParameter(str(error), param_hint="--data-dir / weights") from None
    except EnvSettingsError as error:
        raise typer.BadParameter(str(error), param_hint="--env-param / --model / --model-param") from None
    except KeyboardInterrupt:
        _interrupted()
    finally:  # the command may run inside another program (tests, notebooks): leave its env alone
        if previous_data_dir is None:
            os.environ.pop(DATA_ENV_VAR, None)
        else:
            os.environ[DATA_ENV_VAR] = previous_data_dir
    if out is not None:
        console.print(f"wrote {export(frame, out)}")
    headline = str(env_kwargs.get("headline_metric", spec_kwargs.get("headline_metric", "fd")))
    shown = {headline, "std_ratio", *(add_metric or ())} | ({SAMPLE_REWARD_METRIC} & set(frame["metric"]))
    _print_summary(summarize(frame, sorted(shown)), "last generation")


def _interrupted() -> NoReturn:
    """Ctrl-C during work that commits generation by generation: say what is kept and how to go on."""
    console.print("interrupted: every generation committed so far is kept; rerun the same command to resume")
    raise typer.Exit(130)  # the shell's code for a SIGINT


@app.command("sweep")
def sweep_command(
    config: Annotated[Path, typer.Argument(help="TOML grid of envs, seeds, [[agents]]: baselines/sweeps/")],
    store: StoreOption = None,
    backend: Annotated[str, typer.Option(help="local (process pool), ray, or inline")] = "local",
    workers: Annotated[
        int | None, typer.Option(min=1, help="worker processes / Ray CPUs [default: all cores]")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="join this Ray cluster (ray back-end): auto, ray://host:10001")
    ] = None,
    chunk_seconds: Annotated[
        float, typer.Option(min=0.0, help="compute per task; what a dead worker can cost (0: one generation)")
    ] = 60.0,
    max_retries: Annotated[int, typer.Option(min=0, help="reruns of a chunk whose worker died")] = 2,
    snapshots: Annotated[int, typer.Option(min=0, help="save samples at N generations per run")] = 0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the cells and their state; run nothing")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a grid of env × agent × seed. Finished cells are skipped, interrupted ones resume; the
    results go to the store through this process only."""
    from collapsebench.executors import EXECUTORS
    from collapsebench.store import ResultsStore
    from collapsebench.sweep import load_sweep, plan, sweep

    if backend not in EXECUTORS:
        raise typer.BadParameter(
            f"unknown back-end {backend!r}; registered: {', '.join(EXECUTORS)}", param_hint="--backend"
        )
    try:
        cells = load_sweep(config)
        results = ResultsStore(store)
        if dry_run:
            table = Table(
                "env", "policy", "params", "model", "seed", "done", title=f"{config}: {len(cells)} cells"
            )
            for cell, key, done, _ in plan(cells, results):
                table.add_row(
                    cell.env_id,
                    ">".join(cell.policy),
                    json.dumps(dict(cell.policy_params)),
                    f"{key.model} {json.dumps(dict(cell.model_params)) if cell.model_params else ''}",
                    str(cell.seed),
                    f"{min(done, key.generations + 1)}/{key.generations + 1}",
                )
            console.print(table)
            return
        report = sweep(
            cells,
            results,
            backend=backend,
            workers=workers,
            address=address,
            chunk_seconds=chunk_seconds,
            max_retries=max_retries,
            snapshots=snapshots,
            progress=progress,
        )
    except (FileNotFoundError, KeyError, ValueError, ImportError) as error:
        raise typer.BadParameter(str(error.args[0] if error.args else error), param_hint="CONFIG") from None
    except KeyboardInterrupt:
        _interrupted()
    console.print(
        f"{len(report.run_ids)} cells: {report.skipped} already done, "
        f"{len(report.run_ids) - report.skipped - len(report.failures)} run, {len(report.failures)} failed"
        f" → {results.path}"
    )
    for failure in report.failures:
        status(
            "failed",
            "red",
            f"{failure.cell.env_id} {'>'.join(failure.cell.policy)} seed {failure.cell.seed}: "
            f"{failure.error}",
        )
    if failures := len(report.failures):
        console.print(f"rerun the same command to resume the {failures} failed cell(s)")
        raise typer.Exit(1)


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Argument(help=".csv or .parquet")],
    store: StoreOption = None,
    env: Annotated[str | None, typer.Option(help="only this env id")] = None,
) -> None:
    """Export the store as a tidy table."""
    from collapsebench.store import ResultsStore, export

    frame = _stored_results(ResultsStore(_existing(store)), [env] if env else None)
    try:
        console.print(f"wrote {len(frame)} rows to {export(frame, out)}")
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="OUT") from None


@app.command()
def plot(
    out: Annotated[Path | None, typer.Option(help="PNG file (curves) or folder (--samples)")] = None,
    store: StoreOption = None,
    env: Annotated[list[str] | None, typer.Option(help="env id(s) to plot [default: all]")] = None,
    metric: Annotated[list[str] | None, typer.Option(help="metric(s) [default: std_ratio, fd]")] = None,
    samples: Annotated[
        bool,
        typer.Option("--samples", help="one PNG per run that saved snapshots (scatter, or image grid)"),
    ] = False,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact",
            help="dash each curve's exact expected std_ratio where the Gaussian fast path covers it "
            "(1-D Gaussian worlds, the gaussian model, baseline policies)",
        ),
    ] = False,
) -> None:
    """Collapse curves from the store (metric vs generation, one line per agent, 95% CI over seeds), or
    with --samples the pool and samples of selected generations of each run."""
    from collapsebench.plotting import plot_curves
    from collapsebench.store import ResultsStore

    results = ResultsStore(_existing(store))
    if samples:
        if exact:
            raise typer.BadParameter(
                "the exact expectation goes on curves, not on --samples", param_hint="--exact"
            )
        _plot_samples(results, out or Path("results/samples"), env)
        return
    out = out or Path("results/curves.png")
    frame = _stored_results(results, env)
    metrics = metric or ["std_ratio", "fd"]
    expected = _exact_expectations(results, frame, metrics) if exact else None
    try:
        path = plot_curves(frame, metrics, out, expected=expected, expected_label="exact expectation")
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--metric") from None
    console.print(f"wrote {path}")


def _stored_results(results: Any, envs: list[str] | None) -> Any:
    """The store's tidy rows, of ``envs`` only if given; a usage error if there are none."""
    frame = results.to_dataframe()
    if envs:
        missing = sorted(set(envs) - set(frame["env_id"]))
        if missing:
            raise typer.BadParameter(f"no results for {missing} in the store", param_hint="--env")
        frame = frame[frame["env_id"].isin(envs)]
    if frame.empty:
        raise typer.BadParameter(
            "the store holds no results yet: run `collapsebench run` first", param_hint="--store"
        )
    return frame


@app.command()
def summary(
    store: StoreOption = None,
    env: Annotated[list[str] | None, typer.Option(help="env id(s) [default: all]")] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="metric(s) [default: every metric the runs recorded]")
    ] = None,
    generation: Annotated[
        int | None,
        typer.Option(min=0, help="compare seeds at this generation [default: the last all reached]"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="also write the table to .csv or .parquet")] = None,
) -> None:
    """Each agent's metrics at one generation over seeds (mean ± 95% CI, median): a table per env."""
    from collapsebench.plotting import agent_labels, summarize
    from collapsebench.store import ResultsStore, export

    frame = _stored_results(ResultsStore(_existing(store)), env)
    recorded = sorted(frame["metric"].unique())
    unknown = sorted(set(metric or ()) - set(recorded))
    if unknown:
        raise typer.BadParameter(
            f"no results for metric(s) {', '.join(unknown)}; the runs recorded: {', '.join(recorded)}",
            param_hint="--metric",
        )
    metrics = sorted(set(metric or recorded))
    frame = frame[frame["metric"].isin(metrics)]
    table = summarize(frame, metrics, generation)
    if table.empty:  # only an explicit generation can leave nothing
        raise typer.BadParameter(
            f"no run reached generation {generation}: the last is {frame['generation'].max()}",
            param_hint="--generation",
        )
    if out is not None:
        try:
            console.print(f"wrote {export(table, out)}")
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--out") from None
    _print_summary(table, "mean ± 95% CI and median over seeds")
    if generation is None:  # by default every agent is summarized at a generation all its runs reached
        return
    agents = frame.assign(agent=agent_labels(frame))[["env_id", "agent"]].drop_duplicates()
    shown = agents.merge(table[["env_id", "agent"]].drop_duplicates(), how="left", indicator=True)
    for missed in shown[shown["_merge"] == "left_only"].itertuples():
        console.print(f"{missed.env_id} · {missed.agent}: no run reached generation {generation}")


def _print_summary(summary: Any, title: str) -> None:
    """``summarize``'s rows as a table per env: a row per (agent, metric), agents apart."""
    for env_id, rows in summary.groupby("env_id", sort=False):
        table = Table(
            "agent", "metric", "generation", "mean", "± 95% CI", "median", "seeds", title=f"{env_id}: {title}"
        )
        for _, agent_rows in rows.groupby("agent", sort=False):
            for number, row in enumerate(agent_rows.itertuples(), start=1):
                table.add_row(
                    row.agent if number == 1 else "",
                    row.metric,
                    str(row.generation),
                    f"{row.mean:.4g}",
                    f"{row.ci95:.2g}",
                    f"{row.median:.4g}",
                    str(row.seeds),
                    end_section=number == len(agent_rows),
                )
        console.print(table)


def _exact_expectations(results: Any, frame: Any, metrics: list[str]) -> Any:
    """The fast path's expected std_ratio for the plotted runs it covers (refused if none is)."""
    from collapsebench.envs.gaussian_fast import EXACT_AGENTS, expected_std_ratio

    if "std_ratio" not in metrics:
        raise typer.BadParameter("the exact expectation is of std_ratio: plot it too", param_hint="--exact")
    runs = results.runs()
    expected = expected_std_ratio(runs[runs["run_id"].isin(set(frame["run_id"]))])
    if expected.empty:
        covered = ", ".join(f"{policy} on Gaussian-{dynamics}" for dynamics, policy in EXACT_AGENTS)
        raise typer.BadParameter(
            f"no plotted run has an exact path; there is one for the gaussian model and {covered}",
            param_hint="--exact",
        )
    return expected


@app.command()
def weights() -> None:
    """The weights manifest: each feature network's file, expected sha256, and whether it is in place."""
    from collapsebench.features import WEIGHTS, WeightsError

    table = Table(title="feature-network weights (never downloaded: put each file where it is looked for)")
    for column in ("name", "file", "sha256", "status", "source / how to get it"):
        table.add_column(column, overflow="fold")
    for entry in WEIGHTS.values():
        try:
            path, _ = entry.verified_path()
            status = f"ok: {path}"
        except WeightsError as error:
            status = "wrong file" if "has sha256" in str(error) else f"missing (or set ${entry.env_var})"
        table.add_row(entry.name, entry.filename, entry.sha256 or "recorded per run", status, entry.source)
    console.print(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/demo"),
    quick: Annotated[bool, typer.Option(help="2 seeds, 2-3 generations: a smoke test")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="worker processes running lineages side by side [default: all cores]"),
    ] = None,
) -> None:
    """The main job: baselines on Gaussian-replace/mix/accumulate and GMM2D-mix/accumulate (CPU, minutes)."""
    import time

    from collapsebench.demo import run_demo
    from collapsebench.plotting import summary_table

    started = time.perf_counter()
    try:
        _, summary = run_demo(out, quick=quick, progress=progress, workers=workers)
    except KeyboardInterrupt:
        _interrupted()
    wide = summary_table(summary, _mean_ci)
    table = Table(title="last generation: mean ± 95% CI over seeds")
    table.add_column("env", no_wrap=True)
    table.add_column("agent", no_wrap=True)
    for metric in wide.columns:
        table.add_column(metric)
    for (env_id, agent), cells in wide.iterrows():
        table.add_row(env_id, agent, *cells)
    console.print(table)
    console.print(f"results, summary and figures in {out}/ ({time.perf_counter() - started:.0f} s)")


def _plot_samples(results: Any, folder: Path, envs: list[str] | None) -> None:
    from collapsebench.plotting import agent_labels, plot_samples

    runs = results.runs()
    if envs:
        runs = runs[runs["env_id"].isin(envs)]
    # Labelled with the env settings runs differ in: one agent's runs under two settings, two files.
    runs = runs.assign(agent=agent_labels(runs.rename(columns={"policy_params": "params"})))
    written = 0
    for run in runs.itertuples():
        snapshots = results.load_snapshots(run.run_id)
        if not snapshots:
            continue
        stem = file_stem(f"{run.env_id}__{run.agent}__seed{run.seed}")
        path = plot_samples(
            snapshots, folder / f"{stem}.png", title=f"{run.env_id} · {run.agent} · seed {run.seed}"
        )
        console.print(f"wrote {path}")
        written += 1
    if not written:
        raise typer.BadParameter(
            "no run in the store saved samples: run with --snapshots 5", param_hint="--samples"
        )


def _mean_ci(mean: float, half_width: float) -> str:
    return f"{mean:.3g}±{half_width:.1g}" if math.isfinite(mean) else str(mean)


def _env_spec(env_id: str) -> Any:
    """The registered spec, or a usage error that names the closest ids."""
    import collapsebench as cb

    try:
        return cb.spec(env_id)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint="ENV_ID") from None


def _existing(store: Path | None) -> Path:
    from collapsebench.store import default_store_path

    path = store or default_store_path()
    if not path.exists():
        raise typer.BadParameter(f"no results store at {path}", param_hint="--store")
    return path
