"""The leaderboard: score statistics against closed forms, submissions made, validated (every reason
listed), verified by re-running, the board rendered, versions kept apart, and the page in a browser."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from collapsebench.cli import app
from collapsebench.datasets import MissingDataError
from collapsebench.leaderboard import submission as submission_module
from collapsebench.leaderboard.board import build
from collapsebench.leaderboard.scores import (
    curve_area,
    generations_until_collapse,
    iqm,
    normalized_score,
    probability_of_improvement,
    stratified_iqm,
)
from collapsebench.leaderboard.submission import (
    SubmissionError,
    git_revision,
    policy_from_record,
    read_submission,
    schema,
    validate,
)
from collapsebench.leaderboard.tracks import load_board
from collapsebench.runner import evaluate
from collapsebench.store import ResultsStore

from conftest import HALF_WEIGHT_PLUGIN, write_plugin

runner = CliRunner()

TINY_TRACK = """
[[tracks]]
id = "gaussian-tiny"
version = {version}
description = "A tiny Gaussian track for tests."
env_id = "Gaussian-mix-v0"
generations = 3
min_seeds = 5
verify_seeds = 1
env_params = {{ n_real = 30, n_synthetic = 30, n_test = 30, n_eval = 30 }}
headline_metric = "fd"
higher_is_better = false
collapse_threshold = 0.05
"""


def write_board(root: Path, version: int, track_version: int) -> None:
    folder = root / "boards" / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "board.toml").write_text(
        f'board_version = {version}\nschema_version = 1\ndescription = "Test board."\n'
        + TINY_TRACK.format(version=track_version)
    )


def cli(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def board_root(tmp_path_factory) -> Path:
    """A board with one tiny track and every baseline agent submitted (5 seeds, T = 3)."""
    root = tmp_path_factory.mktemp("leaderboard")
    write_board(root, version=1, track_version=1)
    code, output = cli(
        "leaderboard", "baselines", "--root", str(root), "--seeds", "0-4", "--backend", "inline",
        "--store", str(root / "runs.sqlite"), "--no-progress",
    )  # fmt: skip
    assert code == 0, output
    return root


@pytest.fixture
def root(board_root, tmp_path) -> Path:
    """A private copy of the board to change."""
    copy = tmp_path / "leaderboard"
    shutil.copytree(board_root, copy)
    return copy


def described_commands(output: str, filled_in: dict[str, str]) -> dict[str, list[str]]:
    """The ``run:`` and ``submit:`` commands ``leaderboard describe`` prints, as the arguments after
    ``collapsebench``, with the placeholders of ``filled_in`` filled in."""
    commands = {}
    for line in output.splitlines():
        if line.startswith(("run:", "submit:")):
            step, command = line.split(": ", 1)
            program, *arguments = (filled_in.get(word, word) for word in shlex.split(command))
            assert program == "collapsebench"
            commands[step] = arguments
    return commands


def verified_files(root: Path) -> set[str]:
    """The files ``verify`` recorded in ROOT/verified.json, relative to ROOT."""
    return {entry["file"] for entry in json.loads((root / "verified.json").read_text()).values()}


def submission_path(root: Path, name: str) -> Path:
    return root / "submissions" / "gaussian-tiny-v1" / f"{name}.json"


# ------------------------------------------------------------------ statistics
def test_curve_area_is_the_mean_height_of_the_trapezoids():
    assert curve_area([0.0, 1.0, 2.0]) == pytest.approx(1.0)
    assert curve_area([[1.0, 1.0], [0.0, 4.0]]).tolist() == [1.0, 2.0]


def test_normalized_score_maps_references_to_0_and_1_in_either_direction():
    assert normalized_score([5.0, 1.0, 3.0], 5.0, 1.0).tolist() == [0.0, 1.0, 0.5]
    assert normalized_score([0.2, 0.9], 0.2, 0.9).tolist() == [0.0, 1.0]  # a metric that rises
    with pytest.raises(ValueError, match="must differ"):
        normalized_score(1.0, 2.0, 2.0)


def test_generations_until_collapse_is_the_first_crossing_or_t_plus_one():
    curves = np.array([[0.0, 0.2, 0.5, 0.1], [0.0, 0.1, 0.1, 0.1]])
    assert generations_until_collapse(curves, 0.3, higher_is_better=False).tolist() == [2, 4]
    assert generations_until_collapse(1 - curves, 0.7, higher_is_better=True).tolist() == [2, 4]
    # Reaching the threshold is not crossing it.
    assert generations_until_collapse(curves, 0.5, higher_is_better=False).tolist() == [4, 4]
    assert generations_until_collapse(curves, 0.0, higher_is_better=True).tolist() == [4, 4]


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -100.0])) == pytest.approx(3.5)


def test_the_all_tracks_table_ranks_the_agents_on_every_track_by_their_pooled_iqm():
    """A policy training each track env's own model is one agent across tracks; with another model it
    is another agent. Only agents on every track are ranked, by the IQM of all their seeds."""
    from collapsebench.leaderboard.board import TRACK_MODEL, Entry, overall

    def entry(policy: str, scores: list[float], model: str | None = None) -> Entry:
        return Entry(
            path=Path(f"{policy}.json"), label=policy, model=model or "track's", seeds=len(scores),
            curves=np.zeros((len(scores), 3)), scores=np.asarray(scores), score=None, final=None,
            collapse=None, verified=True, identity=f"{policy} {model}",
            across_tracks=policy if model is None else f"{policy} {model}", with_track_model=model is None,
        )  # fmt: skip

    first, second = SimpleNamespace(key="first/v1"), SimpleNamespace(key="second/v1")
    tables = [
        (first, [entry("steady", [0.1, 0.2, 0.3, 0.4]), entry("bold", [0.9, 0.8, 0.7, 0.6]),
                 entry("solo", [5.0] * 4)]),  # solo is on one track only: not ranked
        (second, [entry("steady", [0.5, 0.5, 0.5]), entry("bold", [0.2, 0.3, 0.4, 0.5]),
                  entry("steady", [0.9] * 4, model="kde")]),  # another agent, on one track only
    ]  # fmt: skip
    rows = overall(tables)  # type: ignore[arg-type]
    texts = [[text for text, _ in row] for row in rows]
    assert [row[:3] for row in texts] == [["1", "bold", TRACK_MODEL], ["2", "steady", TRACK_MODEL]]
    # The IQM of all of an agent's seeds: the middle half of the 8 (or 7) pooled scores.
    assert rows[0][3][1] == pytest.approx(np.mean([0.4, 0.5, 0.6, 0.7]))
    assert rows[1][3][1] == pytest.approx(iqm(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5])))
    assert [row[4] for row in rows] == [("8", 8), ("7", 7)]  # runs over the tracks
    low, high = (float(number) for number in re.findall(r"\[(.*), (.*)\]", texts[0][3])[0])
    assert low < rows[0][3][1] < high
    assert overall(tables[:1]) == []  # type: ignore[arg-type]  # one track: no table


def test_stratified_bootstrap_resamples_within_strata():
    rng = np.random.default_rng(0)
    scores = rng.normal(0.5, 0.1, size=20)
    interval = stratified_iqm({"a": scores})
    assert interval.low < interval.value < interval.high and interval.value == pytest.approx(iqm(scores))
    assert stratified_iqm({"a": scores}) == interval  # a fixed bootstrap seed: rebuilt boards agree
    # Constant strata cannot vary under resampling within strata: the interval collapses to a point.
    pinned = stratified_iqm({"a": np.zeros(4), "b": np.ones(4)})
    assert pinned.low == pinned.high == pinned.value == pytest.approx(0.5)


def test_probability_of_improvement_is_the_mann_whitney_statistic():
    assert probability_of_improvement(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert probability_of_improvement(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5
    assert probability_of_improvement(np.array([1.0]), np.array([0.0, 2.0])) == 0.5


# ------------------------------------------------------------------ submissions
def test_baselines_produce_valid_submissions_and_references_that_score_0_and_1(board_root):
    board = load_board(board_root)
    (track,) = board.tracks
    assert track.references is not None and "leaderboard baselines" in track.references.command
    files = sorted((board_root / "submissions" / "gaussian-tiny-v1").glob("*.json"))
    assert len(files) == 11  # every baseline policy, λ at three ratios
    for path in files:
        submission = validate(path, board, board_root / "submissions")
        assert len(submission["runs"]) == 5 and submission["provenance"]["package_version"]
        assert submission["provenance"]["git_dirty"] in (True, False, None)
    build(board_root)
    text = (board_root / "README.md").read_text()
    assert re.search(r"\| real-only \| gaussian \| 1 \[", text)
    assert re.search(r"\| full-synthetic \| gaussian \| 0 \[", text)


def test_provenance_says_whether_tracked_files_differ_from_the_commit(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    assert git_revision(tmp_path) == (None, None)  # not a repository
    git("init", "-q")
    (tmp_path / "agent.py").write_text("lam = 1\n")
    git("add", "agent.py")
    git("commit", "-qm", "agent")
    commit, dirty = git_revision(tmp_path)
    assert commit is not None and len(commit) == 40 and dirty is False
    (tmp_path / "scratch.txt").write_text("untracked files do not change what the commit runs")
    assert git_revision(tmp_path) == (commit, False)
    (tmp_path / "agent.py").write_text("lam = 2\n")
    assert git_revision(tmp_path) == (commit, True)


def broken_variants(good: dict) -> dict[str, tuple[dict, list[str]]]:
    """name → (a broken copy of ``good``, fragments the rejection must contain)."""

    def copy() -> dict:
        return json.loads(json.dumps(good))

    too_few = copy()
    too_few["runs"], too_few["seeds"] = too_few["runs"][:4], too_few["seeds"][:4]  # one short
    repeated_run = copy()
    repeated_run["runs"].append(repeated_run["runs"][0])  # seed 0 twice: the same set of seeds
    bad_values = copy()
    bad_values["runs"][0]["metrics"]["fd"][1] = "nan"
    bad_values["runs"][1]["metrics"]["fd"] = bad_values["runs"][1]["metrics"]["fd"][:2]
    bad_values["runs"][2]["metrics"]["w2"].append(0.5)  # one generation too many
    wrong_budget = copy()
    wrong_budget["env"]["config"] = wrong_budget["env"]["config"].replace('"n_real":30', '"n_real":31')
    wrong_metrics = copy()
    wrong_metrics["runs"][2]["metrics"]["sharpness"] = wrong_metrics["runs"][2]["metrics"].pop("w2")
    unknown_track = copy()
    unknown_track["track"]["version"] = 7
    schema_errors = copy()
    del schema_errors["provenance"]
    schema_errors["extra"] = 1
    schema_errors["runs"][0]["run_id"] = "not-a-run-id"
    return {
        "too_few": (too_few, ["4 seeds; track gaussian-tiny/v1 needs at least 5"]),
        "repeated_run": (repeated_run, ["runs are for seeds [0, 0, 1, 2, 3, 4], but 'seeds' lists"]),
        "bad_values": (
            bad_values,
            [
                "seed 0: fd has a non-finite value ('nan')",
                "seed 1: fd has 2 values",
                "seed 2: w2 has 5 values",
            ],
        ),
        "wrong_budget": (wrong_budget, ["env settings differ"]),
        "wrong_metrics": (
            wrong_metrics,
            ["seed 2: metrics differ", "missing ['w2'], unexpected ['sharpness']"],
        ),
        "unknown_track": (unknown_track, ["no track gaussian-tiny/v7"]),
        "schema_errors": (
            schema_errors,
            ["'provenance' is a required property", "'extra' was unexpected", "runs/0/run_id"],
        ),
    }


def test_a_malformed_submission_is_rejected_with_every_reason(root, tmp_path):
    board = load_board(root)
    good = read_submission(submission_path(root, "real-only"))
    for name, (broken, reasons) in broken_variants(good).items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(broken))
        with pytest.raises(SubmissionError) as error:
            validate(path, board)
        for reason in reasons:
            assert reason in str(error.value), (name, str(error.value))
    duplicate = tmp_path / "again.json"
    duplicate.write_text(json.dumps(good))
    with pytest.raises(SubmissionError, match=r"duplicate entry: .*real-only\.json"):
        validate(duplicate, board, root / "submissions")
    (tmp_path / "junk.json").write_text("{ not json")
    with pytest.raises(SubmissionError, match=r"not JSON"):
        validate(tmp_path / "junk.json", board)


def test_validate_command_lists_problems_and_exits_nonzero(root, tmp_path):
    bad = tmp_path / "bad.json"
    broken, _ = broken_variants(read_submission(submission_path(root, "real-only")))["bad_values"]
    bad.write_text(json.dumps(broken))
    code, output = cli(
        "leaderboard", "validate", str(submission_path(root, "real-only")), str(bad), "--root", str(root)
    )
    assert code == 1 and "ok" in output and "rejected" in output and "non-finite" in output
    # A reason quoting the file's own values prints them as written: "[/x]" once crashed rich's markup.
    broken = read_submission(submission_path(root, "real-only"))
    broken["track"]["id"] = "[/x]"
    bad.write_text(json.dumps(broken))
    code, output = cli("leaderboard", "validate", str(bad), "--root", str(root))
    assert code == 1 and output.startswith(f"rejected {bad}") and "'[/x]' does not match" in output


def test_the_schema_file_is_a_valid_json_schema():
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())


def test_verify_reruns_seeds_and_marks_the_entry(root):
    path = submission_path(root, "lambda-mix_lam=1.0")
    (track,) = load_board(root).tracks
    seed_0 = min(read_submission(path)["runs"], key=lambda run: run["seed"])["seed"]  # always re-run

    def nudged(times_tolerance: float) -> dict:
        """The file with seed 0's fd at generation 2 and w2 at generation 1 moved by a multiple of the
        track's stated tolerance, atol + rtol·|value|."""
        submission = read_submission(path)
        (run,) = [run for run in submission["runs"] if run["seed"] == seed_0]
        for metric, generation in (("fd", 2), ("w2", 1)):
            value = run["metrics"][metric][generation]
            run["metrics"][metric][generation] += times_tolerance * (
                track.verify_atol + track.verify_rtol * abs(value)
            )
        return submission

    path.write_text(json.dumps(nudged(0.3)))  # within the tolerance: verified
    code, output = cli("leaderboard", "verify", str(path), "--root", str(root))
    assert code == 0 and "verified" in output, output
    build(root)
    assert re.search(r"\| lambda-mix\(lam=1.0\) \|.*\| ✓ \|", (root / "README.md").read_text())

    path.write_text(json.dumps(nudged(3.0)))  # beyond it, in the headline metric and another one
    code, output = cli("leaderboard", "verify", str(path), "--root", str(root))
    assert code == 1 and "fd at generation 2" in output and "w2 at generation 1" in output, output
    build(root)  # the changed file is no longer the verified one
    assert not re.search(r"\| lambda-mix\(lam=1.0\) \|.*\| ✓ \|", (root / "README.md").read_text())


def test_verify_takes_several_files_on_workers_and_records_only_the_matching_ones(root):
    good = [submission_path(root, name) for name in ("real-only", "accumulate", "lambda-mix_lam=2.0")]
    tampered_path = submission_path(root, "full-synthetic")
    tampered = read_submission(tampered_path)
    min(tampered["runs"], key=lambda run: run["seed"])["metrics"]["fd"][3] += 0.5  # a re-run seed
    tampered_path.write_text(json.dumps(tampered))
    files = [str(path) for path in (*good, tampered_path)]
    code, output = cli("leaderboard", "verify", *files, "--workers", "2", "--root", str(root))
    lines = output.splitlines()
    assert code == 1 and sum(line.startswith("verified ") for line in lines) == 3, output
    assert "not verified" in output and "fd at generation 3" in output
    recorded = verified_files(root)
    assert {str(path.relative_to(root)) for path in good} <= recorded  # one writer: none lost
    assert str(tampered_path.relative_to(root)) not in recorded

    broken = submission_path(root, "broken")
    broken.write_text('{"schema_version": 1}')
    code, output = cli("leaderboard", "verify", str(broken), "--root", str(root))
    assert code == 1 and output.startswith(f"rejected {broken}") and "'agent' is a required" in output


def test_verify_names_a_file_this_machine_cannot_rerun_and_goes_on_with_the_others(root, monkeypatch):
    """An image track's entry on a machine without the image set: that file is named with the
    loader's message, no traceback, and the other files are still verified and recorded."""
    rerun = submission_module.verify
    unable, able = submission_path(root, "real-only"), submission_path(root, "accumulate")

    def without_data(submission, board, seeds):
        if submission["agent"]["policy"]["name"] == "real-only":
            raise MissingDataError("CIFAR-10 not found in /nowhere: put cifar-10-python.tar.gz there")
        return rerun(submission, board, seeds)

    monkeypatch.setattr(submission_module, "verify", without_data)
    (root / "verified.json").unlink(missing_ok=True)
    code, output = cli("leaderboard", "verify", str(unable), str(able), "--root", str(root))
    assert code == 1 and "Traceback" not in output
    assert f"cannot verify {unable}: CIFAR-10 not found in /nowhere" in output
    assert f"verified {able}" in output
    recorded = verified_files(root)
    assert str(able.relative_to(root)) in recorded and str(unable.relative_to(root)) not in recorded


def test_submit_makes_the_file_the_baselines_made(root, tmp_path):
    out = tmp_path / "mine.json"
    code, output = cli(
        "leaderboard", "submit", "--track", "gaussian-tiny", "--policy", "lambda-mix", "--param", "lam=0.5",
        "--store", str(root / "runs.sqlite"), "--out", str(out), "--root", str(root),
    )  # fmt: skip
    assert code == 0, output
    mine, theirs = read_submission(out), read_submission(submission_path(root, "lambda-mix_lam=0.5"))
    assert mine["runs"] == theirs["runs"] and mine["agent"] == theirs["agent"]
    code, output = cli(
        "leaderboard", "submit", "--track", "gaussian-tiny", "--policy", "lambda-mix", "--param", "lam=0.7",
        "--store", str(root / "runs.sqlite"), "--root", str(root),
    )  # fmt: skip
    assert code == 2 and "no finished runs" in output


# ------------------------------------------------------------------ the board
def test_build_ranks_entries_with_intervals_and_refuses_a_bad_submission(root):
    code, output = cli("leaderboard", "build", "--root", str(root))
    assert code == 0 and f"wrote {root / 'README.md'}" in output and f"wrote {root / 'index.html'}" in output
    text = (root / "README.md").read_text()
    scores = [
        float(match) for match in re.findall(r"^\| \d+ \| [^|]+ \| gaussian \| (-?[\d.e-]+) \[", text, re.M)
    ]
    assert len(scores) == 11 and scores == sorted(scores, reverse=True)
    assert (root / "figures" / "gaussian-tiny-v1.png").read_bytes()[:4] == b"\x89PNG"
    assert (root / "boards" / "v1" / "rendered" / "README.md").read_text() == text

    (root / "submissions" / "gaussian-tiny-v1" / "broken.json").write_text('{"schema_version": 1}')
    code, output = cli("leaderboard", "build", "--root", str(root))
    assert code == 1 and "broken.json" in output and "'track' is a required property" in output


def test_a_label_is_shown_as_written_in_every_rendering(root):
    """A submission's label is free text: a pipe or a line break must not split the Markdown row, a
    tag must not reach the page as HTML, and dollar signs are not mathtext ("$\\x$" stopped the
    figure, and with it the build)."""
    path = submission_path(root, "real-only")
    record = read_submission(path)
    record["agent"]["label"] = "real | only\n<b>$\\undefinedcmd$</b>"
    path.write_text(json.dumps(record))
    code, output = cli("leaderboard", "build", "--root", str(root))
    assert code == 0, output
    markdown = (root / "README.md").read_text()
    assert "| real \\| only &lt;b>$\\undefinedcmd$&lt;/b> |" in markdown
    page = (root / "index.html").read_text()
    assert "&lt;b&gt;$\\undefinedcmd$&lt;/b&gt;" in page and "<b>$" not in page
    assert (root / "figures" / "gaussian-tiny-v1.png").read_bytes()[:4] == b"\x89PNG"


def test_a_new_board_never_mixes_in_or_rewrites_the_old_one(root):
    build(root)
    archived = (root / "boards" / "v1" / "rendered" / "README.md").read_text()
    write_board(root, version=2, track_version=2)  # the same env, a new track version
    build(root)
    current = (root / "README.md").read_text()
    assert "board v2" in current and "gaussian-tiny/v2" in current and "No submissions yet" in current
    assert "| real-only |" not in current  # v1 entries stay on board v1
    assert (root / "boards" / "v1" / "rendered" / "README.md").read_text() == archived


def test_a_new_board_that_keeps_a_track_version_shows_its_entries(root):
    write_board(root, version=2, track_version=1)  # the same protocol, on a new board
    shutil.copy(root / "boards" / "v1" / "references.json", root / "boards" / "v2" / "references.json")
    build(root)
    current = (root / "README.md").read_text()
    assert "board v2" in current and "| real-only |" in current and "gaussian-tiny/v1" in current


def test_a_kept_track_version_with_another_setting_is_refused(root):
    write_board(root, version=2, track_version=1)
    toml = root / "boards" / "v2" / "board.toml"
    toml.write_text(toml.read_text().replace("generations = 3", "generations = 4"))
    with pytest.raises(ValueError, match=r"gaussian-tiny/v1 differs from board v1's in generations"):
        load_board(root)
    code, output = cli("leaderboard", "build", "--root", str(root))
    assert code != 0 and "a changed setting makes a new track version" in output


def test_a_track_may_name_the_baseline_that_scores_0(root):
    toml = root / "boards" / "v1" / "board.toml"
    toml.write_text(
        toml.read_text().replace(
            "collapse_threshold", 'collapsed_reference = "newest-only"\ncollapse_threshold'
        )
    )
    code, output = cli(
        "leaderboard", "baselines", "--root", str(root), "--seeds", "0-4", "--backend", "inline",
        "--store", str(root / "runs.sqlite"), "--no-progress",
    )  # fmt: skip
    assert code == 0, output
    (track,) = load_board(root).tracks
    assert track.references.sources == ("newest-only.json", "real-only.json")
    build(root)
    assert "Reference areas: newest-only " in (root / "README.md").read_text()

    toml.write_text(toml.read_text().replace('"newest-only"', '"oldest-only"'))
    code, output = cli("leaderboard", "baselines", "--root", str(root), "--store", str(root / "runs.sqlite"))
    message = re.sub(r"[\s│]+", " ", output)  # unwrapped from the error box
    assert code == 2 and "collapsed_reference 'oldest-only' is not a baseline agent" in message


# ------------------------------------------------------------------ the page in a real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
]  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_the_html_board_loads_sorts_and_shows_its_figures_in_chromium(root, tmp_path):
    build(root)
    page = (root / "index.html").as_uri()

    def dom(url: str) -> str:
        profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
        result = subprocess.run(
            [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def agents(html: str) -> list[str]:
        table = html.split('id="gaussian-tiny-v1"', 1)[1].split("</table>", 1)[0]
        return re.findall(r"<tr><td[^>]*>(\d+)</td><td[^>]*>([^<]+)</td>", table)

    loaded = dom(page)
    images = re.findall(r"<img[^>]*>", loaded)
    assert images and all('data-state="loaded"' in image for image in images), images
    ranked = agents(loaded)
    assert [int(rank) for rank, _ in ranked] == list(range(1, 12))
    by_name = agents(dom(page + "#sort=gaussian-tiny-v1:1:asc"))  # the page's own sorting code
    assert [name for _, name in by_name] == sorted(name for _, name in ranked) and by_name != ranked
    assert agents(dom(page + "#sort=gaussian-tiny-v1:0:desc")) == ranked[::-1]

    artifacts = Path(__file__).resolve().parents[1] / "results" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "leaderboard.png"
    subprocess.run(
        [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'shot'}", "--window-size=1200,1600",
         f"--screenshot={screenshot}", page],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert screenshot.read_bytes()[:4] == b"\x89PNG" and screenshot.stat().st_size > 20_000


# ------------------------------------------------------------------ the checked-in board
REPOSITORY_BOARD = Path(__file__).resolve().parents[1] / "leaderboard"


def test_the_checked_in_board_is_valid_complete_and_current():
    from collapsebench.leaderboard.board import (
        load_submissions,
        render_html,
        render_markdown,
        score_track,
        verified_digests,
    )
    from collapsebench.leaderboard.submission import file_digest

    board = load_board(REPOSITORY_BOARD)
    submissions = load_submissions(REPOSITORY_BOARD, board)  # raises, listing every bad file
    verified = verified_digests(REPOSITORY_BOARD)
    for track in board.tracks:
        entries = score_track(track, submissions, verified)
        labels = {entry.label for entry in entries}
        assert {"full-synthetic", "real-only", "lambda-mix(lam=0.5)"} <= labels, track.key
        assert track.references is not None and "leaderboard baselines" in track.references.command
        by_label = {entry.label: entry for entry in entries}
        assert by_label[track.collapsed_reference].score.value == pytest.approx(0.0, abs=1e-12)
        assert by_label["real-only"].score.value == pytest.approx(1.0)
        assert all(entry.verified for entry in entries), "run leaderboard/make_baselines.sh again"
    digests = {file_digest(path) for path in submissions}
    assert set(verified) <= digests, "verified.json names files that are no longer on the board"
    rendered = (REPOSITORY_BOARD / "README.md").read_text()
    for track in board.tracks:
        assert f"## {track.key}" in rendered
    # Current: rendering the submissions again, with the build's date, gives the checked-in pages.
    tables = [(track, score_track(track, submissions, verified)) for track in board.tracks]
    page = (REPOSITORY_BOARD / "index.html").read_text()
    (stamp,) = re.findall(r"from `leaderboard/submissions/` on (\d{4}-\d{2}-\d{2});", rendered)
    assert render_markdown(board, tables, stamp) == rendered, "run `collapsebench leaderboard build`"
    (stamp,) = re.findall(r"Built (\d{4}-\d{2}-\d{2}) from", page)
    assert render_html(board, tables, stamp) == page, "run `collapsebench leaderboard build`"
    assert "## All tracks" in rendered  # every baseline agent is on every track


def test_describe_shows_the_tracks_and_an_unknown_track_id_is_a_usage_error(tmp_path):
    code, output = cli("leaderboard", "describe", "--root", str(REPOSITORY_BOARD))
    assert code == 0 and "gaussian-mix/v1" in output and "GMM2D-mix-v0" in output
    newest = max(int(folder.name[1:]) for folder in (REPOSITORY_BOARD / "boards").iterdir())
    assert output.startswith(f"board v{newest} (submission schema v1)")
    code, output = cli("leaderboard", "describe", "digits-mix", "--root", str(REPOSITORY_BOARD))
    assert code == 0 and "Digits-mix-v0" in output and "GMM2D-mix-v0" not in output
    assert '"collapsed_area": 75.0' in output  # the references as JSON, not a Python repr
    code, output = cli("leaderboard", "describe", "no-such-track", "--root", str(REPOSITORY_BOARD))
    assert code == 2 and "no-such-track" in output
    options = ["--store", str(tmp_path / "runs.sqlite"), "--root", str(REPOSITORY_BOARD)]
    code, output = cli("leaderboard", "baselines", "--track", "no-such-track", *options)
    assert code == 2 and "no-such-track" in output  # a usage error, before any run
    code, output = cli("leaderboard", "describe", "--root", str(tmp_path))  # outside a clone
    assert code == 2 and "no board under" in output and "CLONE/leaderboard" in output


def test_describe_prints_the_commands_that_make_a_valid_entry(root, tmp_path):
    code, output = cli("leaderboard", "describe", "gaussian-tiny", "--root", str(root))
    assert code == 0, output
    filled_in = {"POLICY": "lambda-mix", "mine.sqlite": str(tmp_path / "mine.sqlite")}
    commands = described_commands(output, filled_in)
    assert "--env-param=n_real=30" in commands["run"]  # the track's settings, not the env's defaults
    seeds = commands["run"][commands["run"].index("--seeds") + 1]
    assert seeds == "0-4"  # the track's min_seeds (5): no run more than an entry needs
    for step, extra in (("run", ["--param", "lam=0.7", "--no-progress"]), ("submit", ["--param", "lam=0.7"])):
        code, output = cli(*commands[step], *extra)
        assert code == 0, (step, output)
    made = submission_path(root, "lambda-mix_lam=0.7")
    code, output = cli("leaderboard", "validate", str(made), "--root", str(root))
    assert code == 0 and "ok" in output, output


def test_a_recorded_infinite_lambda_rebuilds_the_policy():
    """Submissions record λ = inf as "inf" (JSON has no infinities); verify must rebuild λ = inf."""
    assert policy_from_record("lambda-mix", {"lam": "inf"}).lam == float("inf")
    stages = [
        {"policy": "dedup", "params": {"eps": 0.01}},
        {"policy": "lambda-mix", "params": {"lam": "inf"}},
    ]
    composed = policy_from_record("dedup>lambda-mix", {"stages": stages})
    assert composed.params["stages"][1]["params"] == {"lam": float("inf")}


def test_a_plugin_policy_goes_from_the_shell_to_a_verified_entry(root, tmp_path):
    """The README's path for a new policy: a package declares it as a plugin, and the track's own
    commands (``describe``) make the entry, each in a fresh process: run, submit, validate, verify.
    Without the plugin installed, verify rejects the file, naming the policy and where its code is."""
    plugged = write_plugin(tmp_path / "plugin", "half_weight_plugin", HALF_WEIGHT_PLUGIN)

    def shell(*arguments: str, env: dict[str, str] = plugged) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "collapsebench", *arguments]
        return subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)

    described = shell("leaderboard", "describe", "gaussian-tiny", "--root", str(root))
    filled_in = {"POLICY": "half-weight-synthetic", "URL": "https://example.org/half-weight@v0.1"}
    commands = described_commands(described.stdout, filled_in)
    for step, extra in (("run", ["--no-progress"]), ("submit", [])):
        done = shell(*commands[step], *extra)
        assert done.returncode == 0, (step, done.stdout, done.stderr)
    made = submission_path(root, "half-weight-synthetic")
    assert read_submission(made)["agent"]["policy"] == {"name": "half-weight-synthetic", "params": {}}
    checked = shell("leaderboard", "validate", str(made), "--root", str(root))
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stdout + checked.stderr
    verified = shell("leaderboard", "verify", str(made), "--root", str(root))
    assert verified.returncode == 0 and "verified" in verified.stdout, verified.stdout + verified.stderr
    recorded = verified_files(root)
    assert str(made.relative_to(root)) in recorded

    unplugged = {**plugged, "PYTHONPATH": ""}
    missing = shell("leaderboard", "verify", str(made), "--root", str(root), env=unplugged)
    assert missing.returncode == 1 and "Traceback" not in missing.stdout + missing.stderr
    assert "cannot verify" in missing.stdout
    assert "policy 'half-weight-synthetic' not registered in this installation" in missing.stdout
    assert "https://example.org/half-weight@v0.1" in missing.stdout

    # No package, a module file of one's own: --import reaches verify's worker processes too.
    (tmp_path / "my_policies.py").write_text(HALF_WEIGHT_PLUGIN)
    imported = shell(
        "--import", "my_policies", "leaderboard", "verify", str(made), "--workers", "2", "--root", str(root),
        env=unplugged,
    )  # fmt: skip
    assert imported.returncode == 0 and "verified" in imported.stdout, imported.stdout + imported.stderr


def test_an_agent_with_another_model_is_its_own_entry_and_picked_by_its_model_settings(root, tmp_path):
    """Runs of one policy with two settings of the model: submit asks which, takes --model-param,
    names the file after the model when it is not the track env's own, and never overwrites
    another agent's file."""
    from collapsebench.leaderboard.board import load_submissions, score_track, verified_digests

    board = load_board(root)
    track = board.track("gaussian-tiny")
    store = tmp_path / "mine.sqlite"
    for model_kwargs in ({}, {"unbiased": False}):
        evaluate(
            track.env_id, "lambda-mix", {"lam": 0.7}, seeds=range(5), model_kwargs=model_kwargs or None,
            env_kwargs=track.env_kwargs(), store=store, progress=False,
        )  # fmt: skip
    submit = ["leaderboard", "submit", "--track", "gaussian-tiny", "--policy", "lambda-mix",
              "--param", "lam=0.7", "--store", str(store), "--root", str(root)]  # fmt: skip
    code, output = cli(*submit)
    assert code == 2 and "runs of several models match" in output
    code, output = cli(*submit, "--model-param", "unbiased=false")
    assert code == 0, output
    biased = submission_path(root, "lambda-mix_lam=0.7_gaussian")
    record = read_submission(biased)
    assert record["agent"]["model"]["params"]["unbiased"] is False
    assert "--model-param=unbiased=false" in record["provenance"]["command"]
    code, output = cli(*submit, "--model-param", "unbiased=true")
    assert code == 0, output
    unbiased = submission_path(root, "lambda-mix_lam=0.7")
    assert read_submission(unbiased)["agent"]["model"]["params"]["unbiased"] is True
    # A setting at its default that records leave out (a sampling temperature of 1) still matches.
    code, output = cli(*submit, "--model-param", "unbiased=true", "--model-param", "temperature=1")
    assert code == 0 and read_submission(unbiased)["agent"]["model"]["params"] == {"unbiased": True}, output

    entries = score_track(track, load_submissions(root, board), verified_digests(root))
    by_file = {entry.path.name: entry for entry in entries}
    assert by_file[unbiased.name].with_track_model and not by_file[biased.name].with_track_model
    assert by_file[unbiased.name].across_tracks != by_file[biased.name].across_tracks

    # The default file of lam=0.7 now holds another agent's entry: submit leaves it alone.
    stranger = read_submission(biased)
    stranger["agent"]["model"]["params"]["unbiased"] = True
    stranger["agent"]["policy"]["params"]["lam"] = 0.75
    unbiased.write_text(json.dumps(stranger))
    code, output = cli(*submit, "--model-param", "unbiased=true")
    message = " ".join(output.replace("│", " ").split())  # the error box wraps lines
    assert code == 2 and "holds another agent's submission" in message and "with --out" in message
    assert read_submission(unbiased)["agent"]["policy"]["params"]["lam"] == 0.75
    # A file there that is no submission at all (a half-written one, notes): left alone too.
    unbiased.write_text("{not json")
    code, output = cli(*submit, "--model-param", "unbiased=true")
    message = " ".join(output.replace("│", " ").split())
    assert code == 2 and "(or a file that is not one)" in message and unbiased.read_text() == "{not json"


def test_baselines_for_one_track_keep_the_other_tracks_references(root):
    board_file = root / "boards" / "v1" / "board.toml"
    board_file.write_text(
        board_file.read_text() + TINY_TRACK.format(version=1).replace('"gaussian-tiny"', '"gaussian-tiny-b"')
    )
    before = json.loads(load_board(root).references_path.read_text())
    code, output = cli(
        "leaderboard", "baselines", "--root", str(root), "--track", "gaussian-tiny-b", "--seeds", "0-4",
        "--backend", "inline", "--store", str(root / "runs.sqlite"), "--no-progress",
    )  # fmt: skip
    assert code == 0, output
    written = {line.removeprefix("wrote ") for line in output.splitlines() if line.startswith("wrote ")}
    made = {str(path) for path in (root / "submissions" / "gaussian-tiny-b-v1").glob("*.json")}
    assert len(made) == 11 and written == {*made, str(load_board(root).references_path)}
    after = json.loads(load_board(root).references_path.read_text())
    assert set(after) == {*before, "gaussian-tiny-b/v1"}
    assert after["gaussian-tiny/v1"] == before["gaussian-tiny/v1"]


def test_baselines_name_a_failed_run_and_write_nothing_for_its_track(root, tmp_path, monkeypatch):
    """One baseline agent breaks on a track: the command names it with its error and exits 1; the
    track's submissions and the board's references stay as they were."""
    from collapsebench.baselines.curation import Deduplicate

    def broken(self, obs):
        raise RuntimeError("the dedup index is corrupt")

    monkeypatch.setattr(Deduplicate, "__call__", broken)
    folder = root / "submissions" / "gaussian-tiny-v1"
    before = {path.name: path.read_bytes() for path in folder.glob("*.json")}
    references = load_board(root).references_path.read_bytes()
    code, output = cli(
        "leaderboard", "baselines", "--root", str(root), "--seeds", "0", "--backend", "inline",
        "--store", str(tmp_path / "fresh.sqlite"), "--no-progress",
    )  # fmt: skip
    assert code == 1, output
    failed = [line for line in output.splitlines() if line.startswith("failed ")]
    cell = "Gaussian-mix-v0 · dedup(eps=0.01) · seed 0"
    assert failed == [f"failed {cell}: RuntimeError: the dedup index is corrupt"]
    assert "wrote" not in output
    store = tmp_path / "fresh.sqlite"
    assert f"nothing written for gaussian-tiny/v1; finished runs are kept in {store}" in output
    runs = ResultsStore(store).runs()
    finished = runs[runs["finished_at"].notna()]
    assert len(runs) == 11 and sorted(set(runs["policy"]) - set(finished["policy"])) == ["dedup"]
    assert {path.name: path.read_bytes() for path in folder.glob("*.json")} == before
    assert load_board(root).references_path.read_bytes() == references
