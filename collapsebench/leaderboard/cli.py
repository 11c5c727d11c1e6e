"""``collapsebench leaderboard``: submit, validate, verify, build, baselines."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from collapsebench.leaderboard.tracks import DEFAULT_ROOT, Board, Track, load_board
from collapsebench.terminal import console, status

if TYPE_CHECKING:  # the commands import the submission module (runner, store) only when they run
    from collapsebench.leaderboard.submission import Verification

app = typer.Typer(
    help="The leaderboard: submissions, verification, the rendered board.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # as the main app: docstrings wrap as paragraphs
)

RootOption = Annotated[Path, typer.Option("--root", help="the leaderboard folder (boards/, submissions/)")]

# The reference agents of every CPU track: each baseline policy with its defaults, λ-mixing at three
# ratios. real-only and the track's collapsed reference (full-synthetic unless the track names another)
# also fix its score scale (1 and 0).
BASELINE_AGENTS: list[dict[str, Any]] = [
    {"policy": "full-synthetic"},
    {"policy": "real-only"},
    {"policy": "lambda-mix", "params": {"lam": [0.5, 1.0, 2.0]}},
    {"policy": "accumulate"},
    {"policy": "newest-only"},
    {"policy": "filter-likelihood"},
    {"policy": "filter-discriminator"},
    {"policy": "dedup"},
    {"policy": "curate-bt"},
]


def _board(root: Path) -> Board:
    try:
        return load_board(root)
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise typer.BadParameter(str(error.args[0] if error.args else error), param_hint="--root") from None


def _chosen_tracks(board: Board, track_ids: list[str] | None, param_hint: str) -> list[Track]:
    """The board's tracks named by ``track_ids`` (all of them when none is named)."""
    try:
        return [board.track(track_id) for track_id in track_ids] if track_ids else list(board.tracks)
    except KeyError as error:
        raise typer.BadParameter(str(error.args[0]), param_hint=param_hint) from None


def _write(submission: dict[str, Any], root: Path, track: Track, path: Path | None = None) -> Path:
    """Write a submission, by default where the board looks for it: ROOT/submissions/TRACK/AGENT.json,
    AGENT the policy's label, followed by the model's name where it is not the track env's own. A
    default path holding another agent's submission is left alone: the command asks for ``--out``."""
    from collapsebench.cli import file_stem
    from collapsebench.leaderboard.submission import SubmissionError, agent_identity, read_submission

    if path is None:
        agent = submission["agent"]
        name = agent["label"]
        if not track.trains_own_model(agent["model"]):
            name += f" · {agent['model']['name']}"
        path = root / "submissions" / track.slug / f"{file_stem(name)}.json"
        if path.exists():
            try:
                same_agent = agent_identity(read_submission(path)) == agent_identity(submission)
            except SubmissionError:
                same_agent = False
            if not same_agent:
                raise typer.BadParameter(
                    f"{path} holds another agent's submission (or a file that is not one): name the "
                    "file to write with --out"
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(submission, indent=1) + "\n")
    return path


@app.command()
def submit(
    track: Annotated[str, typer.Option(help="track id (the board's newest version of it)")],
    policy: Annotated[list[str], typer.Option(help="the agent's policy; repeat to compose")],
    param: Annotated[list[str] | None, typer.Option("--param", help="policy parameter NAME=VALUE")] = None,
    model: Annotated[str | None, typer.Option(help="the agent's model, if the store has several")] = None,
    model_param: Annotated[
        list[str] | None,
        typer.Option("--model-param", help="a setting NAME=VALUE of the runs' model, to pick among several"),
    ] = None,
    store: Annotated[Path | None, typer.Option(help="results store holding the runs")] = None,
    out: Annotated[
        Path | None, typer.Option(help="file to write [default: ROOT/submissions/TRACK/AGENT.json]")
    ] = None,
    code: Annotated[str, typer.Option(help="where the agent's code lives (repository URL at a commit)")] = "",
    root: RootOption = DEFAULT_ROOT,
) -> None:
    """Make a submission file from the finished runs of an agent on a track (run them first, with the
    track's settings: `collapsebench leaderboard describe TRACK` prints the command)."""
    from collapsebench.cli import parse_params
    from collapsebench.leaderboard.submission import make_submission, problems_with
    from collapsebench.policies import build_policy
    from collapsebench.store import ResultsStore

    board = _board(root)
    try:
        chosen = board.track(track)
        agent = build_policy(policy, parse_params(param, "--param"))
        options = [
            *(f"--policy={name}" for name in policy),
            *(f"--param={item}" for item in param or []),
            *([f"--model={model}"] if model else []),
            *(f"--model-param={item}" for item in model_param or []),
        ]
        command = shlex.join(["collapsebench", "leaderboard", "submit", f"--track={track}", *options])
        submission = make_submission(
            ResultsStore(store),
            chosen,
            agent,
            model=model,
            model_params=parse_params(model_param, "--model-param"),
            code=code,
            command=command,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise typer.BadParameter(str(error.args[0] if error.args else error)) from None
    problems = problems_with(submission, board)
    if problems:
        raise typer.BadParameter("; ".join(problems))
    console.print(f"wrote {_write(submission, root, chosen, out)} ({len(submission['seeds'])} seeds)")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="submission JSON file(s)")],
    root: RootOption = DEFAULT_ROOT,
) -> None:
    """Check submission files against the board: schema, track, seeds, values, budget, duplicates.
    Every problem of every file is listed; exit 1 if any file is rejected."""
    from collapsebench.leaderboard.submission import SubmissionError
    from collapsebench.leaderboard.submission import validate as check

    board = _board(root)
    rejected = 0
    for path in files:
        try:
            check(path, board, root / "submissions")
            status("ok", "green", path)
        except SubmissionError as error:
            rejected += 1
            status("rejected", "red", error)
    if rejected:
        raise typer.Exit(1)


@app.command()
def verify(
    files: Annotated[list[Path], typer.Argument(help="submissions on the board")],
    seeds: Annotated[
        str | None, typer.Option(help="seeds to re-run [default: the track's first few]")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="files re-run at once, one process each")] = 1,
    root: RootOption = DEFAULT_ROOT,
) -> None:
    """Re-run each submission's agent on some of its seeds; record every file whose metrics all match
    within the track's tolerance (by sha256) in ROOT/verified.json. Exits 1 if any file is rejected
    or does not match; the others are still recorded."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from collapsebench import __version__
    from collapsebench.cli import parse_seeds
    from collapsebench.executors import Resources, make_executor
    from collapsebench.features import UNAVAILABLE_INPUT_ERRORS
    from collapsebench.leaderboard.board import record_verification
    from collapsebench.leaderboard.submission import SubmissionError, uninstalled_components
    from collapsebench.leaderboard.submission import validate as check

    board = _board(root)
    chosen_seeds = parse_seeds(seeds) if seeds else None
    checked, failed = {}, False
    for file in files:
        try:
            submission = check(file, board, root / "submissions")
        except SubmissionError as error:
            status("rejected", "red", error)
            failed = True
            continue
        missing = uninstalled_components(submission)
        if missing:
            status(
                "cannot verify",
                "red",
                f"{file}: {' and '.join(missing)} not registered in this installation; install the "
                f"package that registers it (the submission's code: {submission['agent']['code']})",
            )
            failed = True
            continue
        checked[file] = submission
    # Workers only re-run; this process alone writes verified.json, each result as it comes in (an
    # interrupted command keeps what it verified).
    queue, in_flight = list(checked.items()), {}
    with make_executor("local" if workers > 1 else "inline", workers) as executor:
        while queue or in_flight:
            while queue and len(in_flight) < workers:
                file, submission = queue.pop(0)
                in_flight[executor.submit(_rerun, (submission, board, chosen_seeds), Resources())] = file
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for rerun in finished:
                file = in_flight.pop(rerun)
                try:
                    result = rerun.result()
                except UNAVAILABLE_INPUT_ERRORS as error:
                    # This machine lacks what the track's env reads (an image set, feature weights):
                    # say so for this file, and go on with the others.
                    status("cannot verify", "red", f"{file}: {error}")
                    failed = True
                    continue
                if not result.ok:
                    status("not verified", "red", f"{file}: " + "; ".join(result.mismatches[:10]))
                    failed = True
                    continue
                if file.resolve().is_relative_to(root.resolve()):
                    record_verification(
                        root.resolve(),
                        file.resolve(),
                        {
                            "seeds": result.seeds,
                            "max_abs_deviation": result.max_abs_deviation,
                            "package_version": __version__,
                        },
                    )
                status(
                    "verified",
                    "green",
                    f"{file}: seeds {result.seeds}, max |Δ| = {result.max_abs_deviation:.3g}",
                )
    if failed:
        raise typer.Exit(1)


def _rerun(task: tuple[dict[str, Any], Board, list[int] | None]) -> Verification:
    from collapsebench.leaderboard.submission import verify as rerun

    return rerun(*task)


@app.command()
def build(root: RootOption = DEFAULT_ROOT) -> None:
    """Render ROOT/README.md and ROOT/index.html (+ figures) from ROOT/submissions/."""
    from collapsebench.leaderboard.board import build as render
    from collapsebench.leaderboard.submission import SubmissionError

    try:
        written = render(root)
    except SubmissionError as error:
        status("cannot build", "red", error)
        raise typer.Exit(1) from None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--root") from None
    for path in written:
        console.print(f"wrote {path}")


@app.command()
def describe(
    tracks: Annotated[
        list[str] | None, typer.Argument(help="track ids [default: every track of the board]")
    ] = None,
    root: RootOption = DEFAULT_ROOT,
) -> None:
    """The current board's tracks: env, budget, scoring, references, and the commands that make an
    entry (replace POLICY with your registered policy)."""
    board = _board(root)
    chosen = _chosen_tracks(board, tracks, "TRACKS")
    console.print(f"[bold]board v{board.version}[/] (submission schema v{board.schema_version})")
    for track in chosen:
        console.print(f"[bold]{track.key}[/]: {track.description}")
        settings = {k: v for k, v in asdict(track).items() if k not in ("id", "version", "description")}
        console.print_json(json.dumps(settings))
        run, submit = _entry_commands(track, root)
        # Plain text: a command must survive copying (no markup, no wrapping inside it).
        typer.echo(f"run:    {run}\nsubmit: {submit}")


def _entry_commands(track: Track, root: Path) -> tuple[str, str]:
    """The runs a track needs (its env, budget and seeds) and the submission made from them."""
    env_options = [
        f"--env-param={name}={value if isinstance(value, str) else json.dumps(value)}"
        for name, value in sorted(track.env_params.items())
    ]
    run = ["collapsebench", "run", track.env_id, "--policy", "POLICY"]
    run += ["--generations", str(track.generations), "--seeds", f"0-{track.min_seeds - 1}", *env_options]
    run += ["--store", "mine.sqlite"]
    submit = ["collapsebench", "leaderboard", "submit", "--track", track.id, "--policy", "POLICY"]
    submit += ["--store", "mine.sqlite", "--code", "URL"]
    if root != DEFAULT_ROOT:
        submit += ["--root", str(root)]
    return shlex.join(run), shlex.join(submit)


@app.command()
def baselines(
    seeds: Annotated[str, typer.Option(help="seeds of every baseline entry")] = "0-9",
    track: Annotated[list[str] | None, typer.Option(help="only these track ids")] = None,
    store: Annotated[Path, typer.Option(help="results store for the runs")] = Path(
        "results/leaderboard.sqlite"
    ),
    workers: Annotated[int | None, typer.Option(min=1, help="worker processes [default: all cores]")] = None,
    backend: Annotated[str, typer.Option(help="sweep back-end: local, ray, inline")] = "local",
    root: RootOption = DEFAULT_ROOT,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run every baseline agent on the board's tracks, write their submissions, and derive each
    track's reference areas (its collapsed reference = 0, real-only = 1) from them."""
    from collapsebench.leaderboard.board import reference_areas
    from collapsebench.leaderboard.submission import make_submission
    from collapsebench.leaderboard.tracks import write_references
    from collapsebench.store import ResultsStore
    from collapsebench.sweep import cells_from_config, sweep

    board = _board(root)
    tracks = _chosen_tracks(board, track, "--track")
    results = ResultsStore(store)
    references = {t.key: t.references for t in board.tracks if t.references is not None}
    # Every chosen track's cells and agents first: a bad setting stops the command before any run.
    plans = []
    for chosen in tracks:
        config = {
            "envs": chosen.env_id,
            "seeds": seeds,
            "generations": chosen.generations,
            "env_params": {key: _axis_safe(value) for key, value in chosen.env_params.items()},
            "agents": BASELINE_AGENTS,
        }
        cells = cells_from_config(config, source=f"the baselines of {chosen.key}")
        agents = {policy.label: policy for policy in (cell.build_policy() for cell in cells)}
        if chosen.collapsed_reference not in agents:
            raise typer.BadParameter(
                f"track {chosen.key}'s collapsed_reference {chosen.collapsed_reference!r} is not a baseline "
                f"agent; baselines: {', '.join(agents)}",
                param_hint="board.toml",
            )
        plans.append((chosen, cells, agents))
    for chosen, cells, agents in plans:
        command = shlex.join(
            [
                "collapsebench",
                "leaderboard",
                "baselines",
                "--track",
                chosen.id,
                "--seeds",
                seeds,
                "--store",
                str(store),
            ]
        )
        report = sweep(cells, results, backend=backend, workers=workers, progress=progress)
        if not report.ok:
            for failure in report.failures:
                status("failed", "red", f"{failure.cell.label}: {failure.error}")
            console.print(
                f"nothing written for {chosen.key}; finished runs are kept in {store}: "
                "rerun the same command to resume"
            )
            raise typer.Exit(1)
        written = {}
        for label, agent in agents.items():
            written[label] = _write(make_submission(results, chosen, agent, command=command), root, chosen)
            console.print(f"wrote {written[label]}")
        references[chosen.key] = reference_areas(
            chosen, written[chosen.collapsed_reference], written["real-only"], command
        )
    console.print(f"wrote {write_references(board, references)}")


def _axis_safe(value: Any) -> Any:
    """Sweep configs read a list as a grid axis; a track's list-valued setting is one value."""
    return [value] if isinstance(value, list) else value
