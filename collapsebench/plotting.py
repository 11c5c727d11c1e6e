"""Collapse curves: a metric against generation, one line per agent, a 95% band over seeds."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from collapsebench.policies import policy_label
from collapsebench.store import canonical_json, differing_keys


def agent_labels(frame: pd.DataFrame) -> pd.Series:
    """``policy(k=v, ...)``, then what tells apart rows of one env that share it: `` · model(k=v)`` where
    the env's rows hold several models or model settings (``model_params``), and `` · k=v`` for the env
    settings they differ in (the store's ``env_settings``; unset ones are not named). A missing column
    or value adds nothing."""
    columns = ["env_id", "model", "model_params", "policy", "params", "env_settings"]
    keys = frame.reindex(columns=columns).astype(object)
    for column in ("model_params", "params", "env_settings"):  # dicts as JSON: hashable, comparable
        keys[column] = keys[column].map(lambda v: canonical_json(v) if isinstance(v, Mapping) else v)
    keys = keys.astype(object).where(keys.notna(), None)
    unique = keys.drop_duplicates()
    several_models = unique.groupby("env_id")["model"].transform("nunique") > 1
    model_settings = {
        env_id: differing_keys(json.loads(params) for params in group.dropna())
        for env_id, group in unique.groupby("env_id")["model_params"]
    }
    shared_items = {
        env_id: _shared_list_items([json.loads(settings) for settings in group.dropna()])
        for env_id, group in unique.groupby("env_id")["env_settings"]
    }

    def label(row: Any, several: bool) -> str:
        text = policy_label(str(row.policy), json.loads(row.params))
        model_params = json.loads(row.model_params) if row.model_params is not None else {}
        shown = {
            key: model_params[key]
            for key in model_settings.get(row.env_id, [])
            if model_params.get(key) is not None
        }
        if (several or shown) and row.model is not None:
            text += " · " + policy_label(str(row.model), shown)
        env_settings = json.loads(row.env_settings) if row.env_settings is not None else {}
        shared = shared_items.get(row.env_id, {})
        shown_settings = [
            _setting_text(key, value, shared.get(key))
            for key, value in env_settings.items()
            if value is not None and value != shared.get(key)
        ]
        if shown_settings:  # an unset setting (None: e.g. no sample_reward) goes without saying
            text += " · " + ", ".join(shown_settings)
        return text

    labels = [
        label(row, several)
        for row, several in zip(unique.itertuples(index=False), several_models, strict=True)
    ]
    by_key = unique.assign(agent=labels)
    merged = keys.merge(by_key, on=columns, how="left")
    return pd.Series(merged["agent"].to_numpy(), index=frame.index)


def _shared_list_items(settings: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """For each list-valued setting (e.g. ``metrics``), the items every run of an env lists."""
    shared: dict[str, list[Any]] = {}
    for key in {key for run in settings for key, value in run.items() if isinstance(value, list)}:
        values = [run.get(key) for run in settings]
        if all(isinstance(value, list) for value in values):
            shared[key] = [item for item in values[0] if all(item in value for value in values[1:])]
    return shared


def _setting_text(key: str, value: Any, shared: list[Any] | None) -> str:
    """``key=value``; a list setting as the items it adds to what every run lists (``metrics
    +tail_mass``), since a whole metrics list would make a label of a hundred characters."""
    if shared is None or not isinstance(value, list):
        return f"{key}={value}"
    added = [str(item) for item in value if item not in shared]
    return f"{key} +{' +'.join(added)}" if added else f"{key}={value}"


def summarize(frame: pd.DataFrame, metrics: list[str], generation: int | None = None) -> pd.DataFrame:
    """Mean, 95% normal-approximation half-width, median and seed count of each metric at one
    generation (default: the last one all the agent's runs reached; a run still going does not mix
    its generation 40 with another's 100), per env and agent. The median is there for metrics whose
    seeds split, such as ``tail_mass`` on a collapsing loop (most lineages lose their tails, a few
    drift into one and overshoot): the mean then describes no seed."""
    data = frame[frame["metric"].isin(metrics)]
    data = data.assign(agent=agent_labels(data))
    if generation is None:
        reached = data.groupby("run_id")["generation"].transform("max")
        last = reached.groupby([data["env_id"], data["agent"]]).transform("min")
        data = data[data["generation"] == last]
    else:
        data = data[data["generation"] == generation]
    table = (
        data.groupby(["env_id", "agent", "metric"])
        .agg(
            generation=("generation", "max"),
            seeds=("value", "count"),
            mean=("value", "mean"),
            std=("value", "std"),
            median=("value", "median"),
        )
        .reset_index()
    )
    table["ci95"] = 1.96 * table["std"].fillna(0.0) / table["seeds"].pow(0.5)
    return table[["env_id", "agent", "metric", "generation", "seeds", "mean", "ci95", "median"]]


def summary_table(summary: pd.DataFrame, cell: Callable[[float, float], str]) -> pd.DataFrame:
    """``summarize``'s rows as one row per (env, agent) and one column per metric, each cell
    ``cell(mean, ci95)``; a missing (agent, metric) pair is an empty cell."""
    formatted = summary.assign(
        cell=[cell(m, c) for m, c in zip(summary["mean"], summary["ci95"], strict=True)]
    )
    return formatted.pivot_table(
        index=["env_id", "agent"], columns="metric", values="cell", aggfunc="first"
    ).fillna("")


Params = ParamSpec("Params")
Result = TypeVar("Result")


def text_labels(plot: Callable[Params, Result]) -> Callable[Params, Result]:
    """Draw with matplotlib's mathtext off: labels come from parameter values and submissions, and
    "$...$" in them is text (an unknown command such as "$\\x$" would stop the figure)."""

    @functools.wraps(plot)
    def drawn(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return plot(*args, **kwargs)

    return drawn


@text_labels
def plot_curves(
    frame: pd.DataFrame,
    metrics: list[str],
    out: str | os.PathLike[str],
    title: str | None = None,
    expected: pd.DataFrame | None = None,
    expected_label: str = "expected",
) -> Path:
    """One panel per (env, metric); saved as PNG. The band is ``summarize``'s 95% interval (mean ±
    1.96 standard errors over seeds) at every generation: the same numbers as the summary table, and
    no bootstrap (500 resamples per point took 36 s for the demo's 30-seed Gaussian figure).

    ``expected``: curves an agent's mean should follow (e.g. the exact path's expectation), in the
    results' columns (env_id, model, policy, params, generation, metric, value); each is drawn dashed
    in its agent's colour on its (env, metric) panel (``expected_label`` in the legend), and must
    match a curve of the results."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    data = frame[frame["metric"].isin(metrics)]
    if data.empty:
        available = ", ".join(sorted(frame["metric"].unique())) or "none"
        raise ValueError(f"no rows for metrics {metrics}; the results hold: {available}")
    expected = None if expected is None else expected[expected["metric"].isin(metrics)]
    if expected is not None and not expected.empty:
        # Labelled together, so that an agent's " · model" suffix is the same in both.
        labels = agent_labels(pd.concat([data, expected], ignore_index=True))
        data = data.assign(agent=labels.iloc[: len(data)].to_numpy())
        expected = expected.assign(agent=labels.iloc[len(data) :].to_numpy())
        curves = ["env_id", "metric", "agent"]
        unmatched = (
            expected[curves]
            .drop_duplicates()
            .merge(data[curves].drop_duplicates(), how="left", indicator=True)
        )
        missing = unmatched[unmatched["_merge"] == "left_only"]
        if not missing.empty:
            env_id, metric, agent = missing.iloc[0][curves]
            raise ValueError(
                f"expected curve of {agent} on {env_id} · {metric}: the results have no such curve"
            )
    else:
        data, expected = data.assign(agent=agent_labels(data)), None
    several_envs = data["env_id"].nunique() > 1
    agents = list(pd.unique(data["agent"]))
    palette = dict(zip(agents, sns.color_palette(n_colors=len(agents)), strict=True))
    grid = sns.relplot(
        data=data,
        x="generation",
        y="value",
        hue="agent",
        hue_order=agents,
        palette=palette,
        col="metric",
        row="env_id" if several_envs else None,
        col_order=[m for m in metrics if m in set(data["metric"])],
        kind="line",
        errorbar=("se", 1.96),
        height=3.2,
        aspect=1.3,
        facet_kws={"sharey": False},
        legend=False,
    )
    legend = {agent: Line2D([], [], color=colour) for agent, colour in palette.items()}
    if expected is not None:
        for (env_id, metric, agent), curve in expected.groupby(["env_id", "metric", "agent"], sort=False):
            axes = grid.axes_dict[(env_id, metric) if several_envs else metric]
            curve = curve.sort_values("generation")
            axes.plot(
                curve["generation"], curve["value"], color=palette[agent], linestyle="--", linewidth=1.2
            )
        legend[expected_label] = Line2D([], [], color="0.3", linestyle="--", linewidth=1.2)
    grid.add_legend(legend_data=legend, title="agent")
    grid.set_titles(row_template="{row_name}", col_template="{col_name}")
    if title or not several_envs:
        grid.figure.suptitle(title or str(data["env_id"].iloc[0]), y=1.02)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(grid.figure)
    return out


@text_labels
def plot_samples(
    snapshots: dict[int, dict[str, np.ndarray]], out: str | os.PathLike[str], title: str = ""
) -> Path:
    """The seed talk's "0 / 5 / 10 / 15 / 20 retrain." panels for one run: per saved generation, the
    pool it trained on (real in black, synthetic coloured by the generation that made it, items the
    policy gave no weight as grey crosses) above the samples that generation produced."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not snapshots:
        raise ValueError(
            "this run saved no samples: run it with snapshots > 0 (collapsebench run --snapshots 5)"
        )
    generations = sorted(snapshots)
    if np.asarray(snapshots[generations[0]]["samples"]).ndim == 4:  # (n, C, H, W) images
        return plot_image_grid(snapshots, out, title)
    if any(
        np.asarray(snapshots[g]["pool"]).reshape(len(snapshots[g]["pool"]), -1).shape[1] != 2
        for g in generations
    ):
        raise ValueError("sample scatter plots are for 2-D worlds")
    first = snapshots[generations[0]]
    first_real = np.asarray(first["pool"])[np.asarray(first["origin"]) < 0]
    low, high = np.percentile(first_real, [0.5, 99.5], axis=0)
    pad = 0.25 * (high - low)
    limits = list(zip(low - pad, high + pad, strict=True))
    colours = plt.get_cmap("viridis")
    last = max(generations[-1], 1)

    figure, axes = plt.subplots(2, len(generations), figsize=(2.6 * len(generations), 5.4), squeeze=False)
    for column, generation in enumerate(generations):
        snap = snapshots[generation]
        pool, origin, weights = snap["pool"], snap["origin"], snap["weights"]
        top, bottom = axes[0, column], axes[1, column]
        dropped = weights <= 0
        top.scatter(*pool[dropped].T, s=4, marker="x", c="0.75", linewidths=0.5)
        real = (origin < 0) & ~dropped
        top.scatter(*pool[real].T, s=2, c="black")
        synthetic = (origin >= 0) & ~dropped
        top.scatter(*pool[synthetic].T, s=2, c=colours(origin[synthetic] / last))
        bottom.scatter(*first_real.T, s=2, c="0.85")
        bottom.scatter(*snap["samples"].T, s=2, c=[colours(generation / last)])
        top.set_title(f"pool trained on, gen {generation}", fontsize=9)
        bottom.set_title(f"samples of gen {generation}", fontsize=9)
        for axis in (top, bottom):
            axis.set_xlim(*limits[0])
            axis.set_ylim(*limits[1])
            axis.set_xticks([])
            axis.set_yticks([])
            axis.set_aspect("equal")
    # Proxy markers: the legend sits on the first panel, whose pool usually has no synthetic or
    # unweighted items, and an empty scatter would give its entry no marker.
    key = [
        Line2D([], [], linestyle="", marker="x", markersize=2, color="0.75", label="no weight"),
        Line2D([], [], linestyle="", marker="o", markersize=1.5, color="black", label="real"),
        Line2D([], [], linestyle="", marker="o", markersize=1.5, color=colours(0.5), label="synthetic"),
    ]
    axes[0, 0].legend(handles=key, loc="lower left", fontsize=6, markerscale=3, frameon=False)
    return _save(figure, out, title)


@text_labels
def plot_image_grid(
    snapshots: dict[int, dict[str, np.ndarray]],
    out: str | os.PathLike[str],
    title: str = "",
    per_generation: int = 16,
) -> Path:
    """Image worlds' version of the seed talk's "0 / 5 / 10 / 15 / 20 retrain." panel: one row per saved
    generation, its first ``per_generation`` samples side by side, with a row of real images on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generations = sorted(snapshots)
    first = snapshots[generations[0]]
    real = np.asarray(first["pool"])[np.asarray(first["origin"]) < 0][:per_generation]
    rows = [("real", real)] + [
        (f"gen {g}", np.asarray(snapshots[g]["samples"])[:per_generation]) for g in generations
    ]
    height = (real if len(real) else np.asarray(first["samples"])).shape[2]
    scale = max(0.35, 0.9 * min(height, 64) / 32)
    figure, axes = plt.subplots(
        len(rows), 1, figsize=(per_generation * scale + 1.2, len(rows) * scale + 0.6), squeeze=False
    )
    for axis, (label, images) in zip(axes[:, 0], rows, strict=True):
        axis.imshow(
            _tile(images, per_generation), cmap="gray" if images.shape[1] == 1 else None, vmin=0, vmax=255
        )
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    return _save(figure, out, title)


def _tile(images: np.ndarray, columns: int) -> np.ndarray:
    """uint8 (n, C, H, W) → one (H, columns·(W + 1)[, C]) strip with 1-pixel white gaps."""
    _, channels, height, width = images.shape
    strip = np.full((height, columns * (width + 1), channels), 255, dtype=np.uint8)
    for index, image in enumerate(images[:columns]):
        strip[:, index * (width + 1) : index * (width + 1) + width] = image.transpose(1, 2, 0)
    return strip[..., 0] if channels == 1 else strip


def _save(figure: Any, out: str | os.PathLike[str], title: str) -> Path:
    import matplotlib.pyplot as plt

    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
