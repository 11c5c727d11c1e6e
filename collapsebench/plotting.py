"""Collapse curves: a metric against generation, one line per agent, a 95% bootstrap band over seeds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd


def agent_labels(frame: pd.DataFrame) -> pd.Series:
    """``policy(k=v, ...)``, with ``· model`` appended where one env holds results of several models."""

    def policy_label(row: pd.Series) -> str:
        params = json.loads(row["params"]) if isinstance(row["params"], str) else dict(row["params"])
        args = ", ".join(f"{key}={value}" for key, value in sorted(params.items()))
        return f"{row['policy']}({args})" if args else str(row["policy"])

    labels = frame.apply(policy_label, axis=1)
    several_models = frame.groupby("env_id")["model"].transform("nunique") > 1
    return labels.where(~several_models, labels + " · " + frame["model"].astype(str))


def summarize(frame: pd.DataFrame, metrics: list[str], generation: int | None = None) -> pd.DataFrame:
    """Mean, 95% normal-approximation half-width and seed count of each metric at one generation
    (default: each run's last), per env and agent."""
    data = frame[frame["metric"].isin(metrics)].assign(
        agent=agent_labels(frame[frame["metric"].isin(metrics)])
    )
    if generation is None:
        last = data.groupby("run_id")["generation"].transform("max")
        data = data[data["generation"] == last]
    else:
        data = data[data["generation"] == generation]
    grouped = data.groupby(["env_id", "agent", "metric"])["value"]
    table = grouped.agg(mean="mean", std="std", seeds="count", generation="size").reset_index()
    table["generation"] = data.groupby(["env_id", "agent", "metric"])["generation"].max().to_numpy()
    table["ci95"] = 1.96 * table["std"].fillna(0.0) / table["seeds"].pow(0.5)
    return table.drop(columns="std")


def plot_curves(
    frame: pd.DataFrame, metrics: list[str], out: str | os.PathLike[str], title: str | None = None
) -> Path:
    """One panel per (env, metric); saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = frame[frame["metric"].isin(metrics)]
    if data.empty:
        available = ", ".join(sorted(frame["metric"].unique())) or "none"
        raise ValueError(f"no rows for metrics {metrics}; the results hold: {available}")
    data = data.assign(agent=agent_labels(data))
    several_envs = data["env_id"].nunique() > 1
    grid = sns.relplot(
        data=data,
        x="generation",
        y="value",
        hue="agent",
        col="metric",
        row="env_id" if several_envs else None,
        col_order=[m for m in metrics if m in set(data["metric"])],
        kind="line",
        errorbar=("ci", 95),
        n_boot=500,
        seed=0,
        height=3.2,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    grid.set_titles(row_template="{row_name}", col_template="{col_name}")
    if title or not several_envs:
        grid.figure.suptitle(title or str(data["env_id"].iloc[0]), y=1.02)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(grid.figure)
    return out
