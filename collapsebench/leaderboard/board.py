"""Building the board: submissions → scores per track → leaderboard/README.md, index.html, figures.

Only the current board's track versions are rendered; results of other track versions are never
mixed in. The rendered files are also copied into the board's own folder (``boards/vN/``), which
later builds leave alone once a newer board exists: old boards are archived, not rewritten.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from collapsebench.leaderboard.scores import (
    Interval,
    curve_area,
    generations_until_collapse,
    iqm,
    normalized_score,
    probability_of_improvement,
    stratified_iqm,
)
from collapsebench.leaderboard.submission import (
    SubmissionError,
    agent_key,
    file_digest,
    problems_with,
    read_submission,
)
from collapsebench.leaderboard.tracks import DEFAULT_ROOT, Board, References, Track, load_board
from collapsebench.plotting import text_labels
from collapsebench.store import canonical_json


@dataclass(frozen=True)
class Entry:
    """One submission on its track, scored."""

    path: Path
    label: str
    model: str
    seeds: int
    curves: np.ndarray  # (seeds, T + 1) headline metric
    scores: np.ndarray  # normalized collapse score per seed
    score: Interval
    final: Interval
    collapse: Interval  # generations until collapse
    verified: bool
    identity: str
    # Who it is in the all-tracks table: the policy alone where it trains the track env's own model
    # (each track's world fixes a fitting model), else the policy with its model, as ``identity``.
    across_tracks: str
    with_track_model: bool


def submissions_folder(root: Path, track: Track) -> Path:
    return root / "submissions" / track.slug


def load_submissions(root: Path, board: Board) -> dict[Path, dict[str, Any]]:
    """Every submission of the board's track versions, validated; one ``SubmissionError`` lists the
    problems of every bad file."""
    paths = sorted(path for track in board.tracks for path in submissions_folder(root, track).glob("*.json"))
    loaded: dict[Path, dict[str, Any]] = {}
    problems: list[str] = []
    for path in paths:
        try:
            loaded[path] = read_submission(path)
        except SubmissionError as error:
            problems.extend(f"{path}: {problem}" for problem in error.problems)
    for path, submission in loaded.items():
        found = problems_with(submission, board, loaded)
        if not found:  # well-formed: is it filed under its own track version?
            track_folder = f"{submission['track']['id']}-v{submission['track']['version']}"
            if path.parent.name != track_folder:
                found = [f"a submission to {track_folder} filed under {path.parent.name}/"]
        problems.extend(f"{path}: {problem}" for problem in found)
    if problems:
        raise SubmissionError("the board's submissions", problems)
    return loaded


def verified_digests(root: Path) -> dict[str, Any]:
    path = root / "verified.json"
    return json.loads(path.read_text()) if path.exists() else {}


def record_verification(root: Path, path: Path, record: dict[str, Any]) -> None:
    name = str(path.relative_to(root))
    verified = {digest: entry for digest, entry in verified_digests(root).items() if entry["file"] != name}
    verified[file_digest(path)] = {"file": name, **record}  # only the file's current content counts
    (root / "verified.json").write_text(json.dumps(verified, indent=2, sort_keys=True) + "\n")


def headline_curves(track: Track, submission: dict[str, Any]) -> np.ndarray:
    """The headline metric per seed (rows, in seed order) over generations 0..T."""
    runs = sorted(submission["runs"], key=lambda run: run["seed"])
    return np.array([run["metrics"][track.headline_metric] for run in runs], dtype=np.float64)


def score_track(
    track: Track, submissions: dict[Path, dict[str, Any]], verified: dict[str, Any]
) -> list[Entry]:
    """The track's entries, best normalized collapse score first."""
    mine = {
        path: submission
        for path, submission in submissions.items()
        if (submission["track"]["id"], submission["track"]["version"]) == (track.id, track.version)
    }
    if mine and track.references is None:
        raise ValueError(
            f"track {track.key} has no reference areas yet: run `collapsebench leaderboard baselines` "
            "(leaderboard/make_baselines.sh) to produce them"
        )
    entries = []
    for path, submission in mine.items():
        curves = headline_curves(track, submission)
        scores = normalized_score(
            curve_area(curves), track.references.collapsed_area, track.references.real_only_area
        )
        collapse = generations_until_collapse(curves, track.collapse_threshold, track.higher_is_better)
        stratum = track.key
        with_track_model = track.trains_own_model(submission["agent"]["model"])
        policy = submission["agent"]["policy"]
        entries.append(
            Entry(
                path=path,
                label=submission["agent"]["label"],
                model=submission["agent"]["model"]["name"],
                seeds=len(curves),
                curves=curves,
                scores=scores,
                score=stratified_iqm({stratum: scores}),
                final=stratified_iqm({stratum: curves[:, -1]}),
                collapse=stratified_iqm({stratum: collapse.astype(np.float64)}),
                verified=file_digest(path) in verified,
                identity=agent_key(submission),
                across_tracks=(
                    canonical_json([policy["name"], policy["params"]])
                    if with_track_model
                    else agent_key(submission)
                ),
                with_track_model=with_track_model,
            )
        )
    return sorted(entries, key=lambda entry: -entry.score.value)


_OVERALL_COLUMNS = ["rank", "agent", "model", "collapse score, IQM [95% CI]", "runs"]


# The model column of the all-tracks table for a policy that trains each track env's own model.
TRACK_MODEL = "each track's own"
_OVERALL_NOTE = (
    "The agents on every track, ranked by the IQM of the collapse scores of all their seeds on all "
    "tracks (a track with more seeds weighs more), with a bootstrap 95% CI that resamples seeds within "
    f'each track. A policy that trains each track env\'s own model ("{TRACK_MODEL}") is one agent '
    "across the tracks."
)


def overall(tables: list[tuple[Track, list[Entry]]]) -> list[list[tuple[str, float | str]]]:
    """Agents on every track, ranked by the IQM of all their normalized scores (every seed of every
    track pooled, the bootstrap stratified by track); each cell as (text, sort value). A policy that
    trains each track env's own model is one agent across tracks, whatever those models are. Empty
    with fewer than two tracks."""
    if len(tables) < 2:
        return []
    by_agent: dict[str, dict[str, Entry]] = {}
    for track, entries in tables:
        for entry in entries:
            by_agent.setdefault(entry.across_tracks, {})[track.key] = entry
    summaries = []
    for agent_entries in by_agent.values():
        if len(agent_entries) == len(tables):
            first = next(iter(agent_entries.values()))
            interval = stratified_iqm({key: entry.scores for key, entry in agent_entries.items()})
            summaries.append((first, interval, sum(entry.seeds for entry in agent_entries.values())))
    summaries.sort(key=lambda summary: -summary[1].value)
    rows = []
    for rank, (first, interval, runs) in enumerate(summaries, start=1):
        model = TRACK_MODEL if first.with_track_model else first.model
        rows.append(
            [(str(rank), rank), (first.label, first.label), (model, model),
             (interval.format(), interval.value), (str(runs), runs)]
        )  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------- render
def build(root: str | os.PathLike[str] = DEFAULT_ROOT) -> list[Path]:
    """Render the current board from ``root/submissions``; return the files written."""
    root = Path(root)
    board = load_board(root)
    submissions = load_submissions(root, board)
    verified = verified_digests(root)
    tables = [(track, score_track(track, submissions, verified)) for track in board.tracks]
    figures = root / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = [
        plot_track(track, entries, figures / f"{track.slug}.png") for track, entries in tables if entries
    ]
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    (root / "README.md").write_text(render_markdown(board, tables, stamp))
    (root / "index.html").write_text(render_html(board, tables, stamp))
    written += [root / "README.md", root / "index.html"]
    archive = board.folder / "rendered"
    shutil.rmtree(archive, ignore_errors=True)
    (archive / "figures").mkdir(parents=True)
    for path in written:
        relative = path.relative_to(root)
        shutil.copy2(path, archive / relative)
    return written


@text_labels  # labels come from submissions
def plot_track(track: Track, entries: list[Entry], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    frame = pd.concat(
        pd.DataFrame(
            {
                "agent": f"{entry.label} · {entry.model}",
                "generation": np.tile(np.arange(entry.curves.shape[1]), entry.curves.shape[0]),
                track.headline_metric: entry.curves.ravel(),
            }
        )
        for entry in entries
    )
    figure, axis = plt.subplots(figsize=(11, 4.5), dpi=110)
    sns.lineplot(frame, x="generation", y=track.headline_metric, hue="agent", errorbar=("se", 2), ax=axis)
    values = frame[track.headline_metric]
    if (values > 0).all() and values.max() / values.min() > 100:
        axis.set_yscale("log")
    axis.axhline(
        track.collapse_threshold, color="grey", linestyle=":", linewidth=1, label="collapse threshold"
    )
    axis.set_title(f"{track.key}: {track.env_id}, mean ± 2 s.e. over seeds")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return out


_COLUMNS = (
    "rank",
    "agent",
    "model",
    "collapse score, IQM [95% CI]",
    "final {metric}",
    "generations to collapse",
    "P(better than next)",
    "seeds",
    "verified",
)


def _rows(track: Track, entries: list[Entry]) -> list[list[tuple[str, float | str]]]:
    """Each cell as (text, sort value)."""
    rows = []
    for rank, entry in enumerate(entries, start=1):
        following = entries[rank] if rank < len(entries) else None
        p_next = probability_of_improvement(entry.scores, following.scores) if following else None
        rows.append(
            [
                (str(rank), rank),
                (entry.label, entry.label),
                (entry.model, entry.model),
                (entry.score.format(), entry.score.value),
                (entry.final.format(), entry.final.value),
                (entry.collapse.format(), entry.collapse.value),
                ("–" if p_next is None else f"{p_next:.2f}", -1.0 if p_next is None else p_next),
                (str(entry.seeds), entry.seeds),
                ("✓" if entry.verified else "", int(entry.verified)),
            ]
        )
    return rows


def _track_header(track: Track) -> str:
    direction = "higher" if track.higher_is_better else "lower"
    references = (
        f"Reference areas: {track.collapsed_reference} {track.references.collapsed_area:.4g} (score 0), "
        f"real-only {track.references.real_only_area:.4g} (score 1)."
        if track.references is not None
        else "No reference areas yet."
    )
    return (
        f"{track.description} Env `{track.env_id}`, T = {track.generations}, ≥ {track.min_seeds} seeds; "
        f"headline metric `{track.headline_metric}` ({direction} is better); collapse when it crosses "
        f"{track.collapse_threshold:g}. {references}"
    )


def _markdown_cell(text: str) -> str:
    """A table cell's text as written: a submission's label may hold a pipe, a line break or a tag."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def render_markdown(board: Board, tables: list[tuple[Track, list[Entry]]], stamp: str) -> str:
    lines = [
        f"# collapsebench leaderboard — board v{board.version}",
        "",
        f"{board.description}".strip(),
        "",
        "Generated by `collapsebench leaderboard build` from `leaderboard/submissions/` on "
        f"{stamp}; the same tables, sortable, with figures: [index.html](index.html). Collapse score: "
        "area under the headline metric's curve over generations, normalized so that the track's "
        "collapsed reference (`full-synthetic` unless the track names another) scores 0 and `real-only` 1 "
        "(higher is better). IQM over seeds with a "
        "stratified bootstrap 95% CI; P(better than next): probability that a seed of this entry "
        "beats a seed of the next one. ✓: re-run and matched by `collapsebench leaderboard verify`.",
        "",
        "To enter: run your agent with a track's settings and make the file from the runs (`collapsebench "
        "leaderboard describe TRACK` prints both commands), check it with `collapsebench leaderboard "
        "validate`, and propose it under `leaderboard/submissions/TRACK-vN/` (the project's README, "
        "section Leaderboard, has the details). Baseline entries: `bash leaderboard/make_baselines.sh`.",
        "",
    ]

    def table(header: list[str], rows: list[list[tuple[str, float | str]]]) -> list[str]:
        return [
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
            *("| " + " | ".join(_markdown_cell(text) for text, _ in row) + " |" for row in rows),
        ]

    rows = overall(tables)
    if rows:
        lines += ["## All tracks", "", _OVERALL_NOTE, "", *table(_OVERALL_COLUMNS, rows), ""]
    for track, entries in tables:
        lines += [f"## {track.key}", "", _track_header(track), ""]
        if not entries:
            lines += ["No submissions yet.", ""]
            continue
        header = [column.format(metric=track.headline_metric) for column in _COLUMNS]
        lines += [*table(header, _rows(track, entries)), "", f"![{track.key}](figures/{track.slug}.png)", ""]
    return "\n".join(lines)


_SCRIPT = """
function sortTable(table, column, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const value = (row) => {
    const raw = row.cells[column].dataset.value;
    const number = Number(raw);
    return raw !== "" && !Number.isNaN(number) ? number : raw;
  };
  rows.sort((a, b) => {
    const x = value(a), y = value(b);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return descending ? -order : order;
  });
  rows.forEach((row) => body.appendChild(row));
  table.querySelectorAll("th").forEach((th, index) => {
    th.setAttribute("aria-sort", index === column ? (descending ? "descending" : "ascending") : "none");
  });
}
document.querySelectorAll("table.sortable").forEach((table) => {
  table.querySelectorAll("th").forEach((th, index) => {
    th.addEventListener("click", () => sortTable(table, index, th.getAttribute("aria-sort") === "ascending"));
  });
});
// #sort=TABLE:COLUMN:asc|desc opens the page sorted (a link to share a view)
const wanted = location.hash.match(/^#sort=([\\w-]+):(\\d+):(asc|desc)$/);
if (wanted && document.getElementById(wanted[1])) {
  sortTable(document.getElementById(wanted[1]), Number(wanted[2]), wanted[3] === "desc");
}
document.querySelectorAll("img").forEach((img) => {
  const mark = () => { img.dataset.state = img.naturalWidth > 0 ? "loaded" : "broken"; };
  if (img.complete) {
    mark();
  } else {
    img.addEventListener("load", mark);
    img.addEventListener("error", mark);
  }
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th[aria-sort="ascending"]::after { content: " ▲"; } th[aria-sort="descending"]::after { content: " ▼"; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; } img[data-state="broken"] { outline: 2px solid #c00; }
p.note { color: #555; font-size: 0.9rem; }
"""


def render_html(board: Board, tables: list[tuple[Track, list[Entry]]], stamp: str) -> str:
    def table(table_id: str, header: list[str], rows: list[list[tuple[str, float | str]]]) -> str:
        head = "".join(f"<th scope='col'>{html.escape(column)}</th>" for column in header)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td data-value='{html.escape(str(value), quote=True)}'"
                f"{' class=number' if isinstance(value, int | float) else ''}>{html.escape(text)}</td>"
                for text, value in row
            )
            + "</tr>"
            for row in rows
        )
        return (
            f"<table class='sortable' id='{table_id}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    parts = [
        f"<h1>collapsebench leaderboard — board v{board.version}</h1>",
        f"<p class='note'>{html.escape(board.description)} Built {stamp} from leaderboard/submissions/. "
        "Collapse score: normalized area under the headline metric's curve (the track's collapsed "
        "reference = 0, real-only = 1); IQM over seeds with stratified bootstrap 95% CIs. "
        "Click a column to sort.</p>",
    ]
    rows = overall(tables)
    if rows:
        parts += [
            "<h2>All tracks</h2>",
            f"<p class='note'>{html.escape(_OVERALL_NOTE)}</p>",
            table("all-tracks", _OVERALL_COLUMNS, rows),
        ]
    for track, entries in tables:
        parts += [
            f"<h2 id='{track.slug}-section'>{html.escape(track.key)}</h2>",
            f"<p class='note'>{html.escape(_track_header(track))}</p>",
        ]
        if not entries:
            parts.append("<p>No submissions yet.</p>")
            continue
        header = [column.format(metric=track.headline_metric) for column in _COLUMNS]
        parts.append(table(track.slug, header, _rows(track, entries)))
        parts.append(
            f"<img src='figures/{track.slug}.png' alt='collapse curves of {html.escape(track.key)}'>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>collapsebench leaderboard v{board.version}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(parts)
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )


def reference_areas(track: Track, collapsed: Path, real_only: Path, command: str) -> References:
    """A track's reference areas: the IQM over seeds of the areas of its collapsed reference's and
    real-only's submissions. The IQM commutes with the normalization (an affine map), so on the board
    these two entries score exactly 0 and 1."""

    def area(path: Path) -> float:
        return float(iqm(curve_area(headline_curves(track, read_submission(path)))))

    return References(area(collapsed), area(real_only), command, (collapsed.name, real_only.name))
