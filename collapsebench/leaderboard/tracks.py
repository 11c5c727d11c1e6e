"""Boards and tracks: the versioned protocol of the leaderboard.

A *board* (``leaderboard/boards/vN/board.toml``) fixes the submission schema version and its tracks;
a *track* is an env id + version + evaluation budget (generations, seeds, sample counts) + how it is
scored. Anything that moves a score (budget, metric, threshold, references) bumps the track's version,
and a new set of tracks is a new board: old boards stay in their folders as they were rendered.
"""

from __future__ import annotations

import functools
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("leaderboard")

_TRACK_KEYS = {
    "id",
    "version",
    "env_id",
    "generations",
    "min_seeds",
    "verify_seeds",
    "env_params",
    "headline_metric",
    "higher_is_better",
    "collapse_threshold",
    "verify_rtol",
    "verify_atol",
    "collapsed_reference",
    "description",
}


@dataclass(frozen=True)
class References:
    """The reference areas of a track version, from the project's own baseline submissions: the
    track's collapsed reference (score 0) and real-only (score 1)."""

    collapsed_area: float
    real_only_area: float
    command: str  # what produced them
    sources: tuple[str, ...] = ()  # the baseline submission files they were computed from


@dataclass(frozen=True)
class Track:
    id: str
    version: int
    env_id: str
    generations: int
    headline_metric: str
    higher_is_better: bool
    collapse_threshold: float
    min_seeds: int = 5
    verify_seeds: int = 2
    env_params: dict[str, Any] = field(default_factory=dict)
    verify_rtol: float = 1e-7
    verify_atol: float = 1e-9
    # The baseline that scores 0: the loop that collapses on this track's pool. On a pool that keeps
    # every generation, full-synthetic data barely drift, and replacing (newest-only) is the collapse.
    collapsed_reference: str = "full-synthetic"
    description: str = ""
    references: References | None = None

    @property
    def key(self) -> str:
        """``id/vN``: how files and tables name a track version."""
        return f"{self.id}/v{self.version}"

    @property
    def slug(self) -> str:
        return f"{self.id}-v{self.version}"

    def env_kwargs(self) -> dict[str, Any]:
        """The budget as env overrides."""
        return {**self.env_params, "generations": self.generations}

    def env_config(self) -> str:
        """The canonical env config every run of this track must have (model settings excluded: the
        agent chooses its model)."""
        return self._facts()[0]

    def metrics(self) -> tuple[str, ...]:
        """The metrics the track's env reports: what every run of a submission must carry."""
        return self._facts()[1]

    def trains_own_model(self, model: dict[str, Any]) -> bool:
        """Whether a submission's ``agent.model`` record (name, params) is the model the track's env
        trains when the agent names none, with the parameters runs record for it."""
        from collapsebench.store import canonical_json

        return (model["name"], canonical_json(model["params"])) == self._facts()[2]

    def _facts(self) -> tuple[str, tuple[str, ...], tuple[str, str]]:
        return _env_facts(self.env_id, json.dumps(self.env_kwargs(), sort_keys=True))


@functools.cache
def _env_facts(env_id: str, env_kwargs: str) -> tuple[str, tuple[str, ...], tuple[str, str]]:
    from collapsebench.registration import make
    from collapsebench.runner import env_config
    from collapsebench.store import canonical_json

    env = make(env_id, **json.loads(env_kwargs))
    try:
        unwrapped: Any = env.unwrapped
        model = (unwrapped.model_name, canonical_json(unwrapped.model_params))
        return env_config(unwrapped), tuple(unwrapped.metrics), model
    finally:
        env.close()


@dataclass(frozen=True)
class Board:
    version: int
    schema_version: int
    tracks: tuple[Track, ...]
    folder: Path
    description: str = ""

    def track(self, track_id: str, version: int | None = None) -> Track:
        for track in self.tracks:
            if track.id == track_id and (version is None or track.version == version):
                return track
        known = ", ".join(track.key for track in self.tracks)
        wanted = track_id if version is None else f"{track_id}/v{version}"
        raise KeyError(f"board v{self.version} has no track {wanted}; its tracks: {known}")

    @property
    def references_path(self) -> Path:
        return self.folder / "references.json"


def board_folders(root: str | os.PathLike[str] = DEFAULT_ROOT) -> dict[int, Path]:
    """Board version → its folder under ``root/boards``."""
    boards = Path(root) / "boards"
    folders = {}
    for folder in boards.glob("v*"):
        if folder.is_dir() and folder.name[1:].isdigit() and (folder / "board.toml").exists():
            folders[int(folder.name[1:])] = folder
    return folders


def load_board(root: str | os.PathLike[str] = DEFAULT_ROOT, version: int | None = None) -> Board:
    """The board of ``version`` (default: the newest) under ``root/boards/vN/board.toml``, with the
    reference areas of ``references.json`` beside it where they exist."""
    folders = board_folders(root)
    if not folders:
        raise FileNotFoundError(
            f"no board under {Path(root) / 'boards'} (expected vN/board.toml): the board lives in the "
            "leaderboard/ folder of a clone of the collapsebench repository; run from the clone's root "
            "or pass --root CLONE/leaderboard"
        )
    if version is None:
        version = max(folders)
    if version not in folders:
        raise KeyError(f"no board v{version}; boards: {', '.join(f'v{v}' for v in sorted(folders))}")
    folder = folders[version]
    config, tracks = _read_board_file(folder / "board.toml")
    if int(config["board_version"]) != version:
        raise ValueError(
            f"{folder / 'board.toml'} says board_version {config['board_version']}, its folder v{version}"
        )
    _check_kept_tracks(tracks, {v: f for v, f in folders.items() if v != version})
    references = _load_references(folder / "references.json")
    tracks = [replace(track, references=references.get(track.key)) for track in tracks]
    return Board(version, int(config["schema_version"]), tuple(tracks), folder, config.get("description", ""))


def _read_board_file(path: Path) -> tuple[dict[str, Any], list[Track]]:
    config = tomllib.loads(path.read_text())
    tracks: list[Track] = []
    for entry in config.get("tracks", []):
        unknown = set(entry) - _TRACK_KEYS
        if unknown:
            raise ValueError(f"{path}: track {entry.get('id')!r} has unknown keys {sorted(unknown)}")
        tracks.append(Track(**{**entry, "env_params": dict(entry.get("env_params", {}))}))
    return config, tracks


def _check_kept_tracks(tracks: list[Track], other_boards: dict[int, Path]) -> None:
    """A track version that several boards keep is one protocol (its entries count on each): every
    setting must agree; only the wording may differ."""
    for other_version, folder in sorted(other_boards.items()):
        theirs = {track.key: track for track in _read_board_file(folder / "board.toml")[1]}
        for track in tracks:
            if track.key not in theirs:
                continue
            mine, other = asdict(track), asdict(theirs[track.key])
            differing = sorted(
                k for k in mine if k not in ("description", "references") and mine[k] != other[k]
            )
            if differing:
                raise ValueError(
                    f"track {track.key} differs from board v{other_version}'s in {', '.join(differing)}: "
                    "a changed setting makes a new track version"
                )


def _load_references(path: Path) -> dict[str, References]:
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    references = {}
    for key, value in raw.items():
        if "full_synthetic_area" in value:  # board v1's files, archived as written
            value = {"collapsed_area": value.pop("full_synthetic_area"), **value}
        references[key] = References(**{**value, "sources": tuple(value.get("sources", ()))})
    return references


def write_references(board: Board, references: dict[str, References]) -> Path:
    payload = {key: asdict(value) for key, value in sorted(references.items())}
    board.references_path.write_text(json.dumps(payload, indent=2) + "\n")
    return board.references_path
