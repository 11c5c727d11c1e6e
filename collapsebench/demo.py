"""The embedded main job: a short sweep of the baseline policies on the analytic worlds.

CPU only, no download, a few minutes on 2 cores. Every (cell, seed) lineage is one cell of a sweep
(``collapsebench.sweep``), so the lineages run side by side on every core, a rerun skips what the
store already has and an interrupted demo resumes. It writes a results store, a CSV of every metric,
a summary table (final generation, mean ± 95% CI over seeds) and one collapse-curve figure per env.

Beside the sampled lineages of each 1-D Gaussian cell, the demo draws the curve their mean estimates:
the expected ``std_ratio`` at every generation, from ``EXACT_LINEAGES`` lineages of the exact path
(``collapsebench.envs.gaussian_fast``), dashed on the figure and as ``std_ratio (exact E)`` in the
summary: the theory's number (c4(n)^(t+1) for the fully synthetic loop), where the seeds' mean is
an estimate, and one that moves in every cell alike, since the cells share their seeds' real data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from collapsebench.envs.gaussian_fast import expected_std_ratio
from collapsebench.plotting import agent_labels, plot_curves, summarize, summary_table
from collapsebench.store import ResultsStore, export
from collapsebench.sweep import Cell as SweepCell
from collapsebench.sweep import sweep


@dataclass(frozen=True)
class Cell:
    """An env and a baseline agent, run for every seed of its family's budget."""

    env_id: str
    policy: str
    policy_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.env_id.split("-")[0]

    def lineages(self, budget: Budget) -> list[SweepCell]:
        return [
            SweepCell(self.env_id, (self.policy,), seed, self.policy_kwargs, generations=budget.generations)
            for seed in range(budget.seeds)
        ]


@dataclass(frozen=True)
class Budget:
    """Seeds and generations per env family. The Gaussian's shrinkage is slow (c4(100)^101 = 0.78 at
    T = 100) and noisy per lineage, so it gets many cheap seeds; GMM2D loses modes within 20."""

    seeds: int
    generations: int


FULL = {"Gaussian": Budget(seeds=30, generations=100), "GMM2D": Budget(seeds=5, generations=20)}
QUICK = {"Gaussian": Budget(seeds=2, generations=3), "GMM2D": Budget(seeds=2, generations=2)}
CELLS = (
    Cell("Gaussian-replace-v0", "full-synthetic"),
    Cell("Gaussian-mix-v0", "full-synthetic"),
    Cell("Gaussian-mix-v0", "lambda-mix", {"lam": 0.5}),
    Cell("Gaussian-mix-v0", "lambda-mix", {"lam": 1.0}),
    Cell("Gaussian-mix-v0", "real-only"),
    Cell("Gaussian-accumulate-v0", "accumulate"),
    Cell("GMM2D-mix-v0", "full-synthetic"),
    Cell("GMM2D-mix-v0", "lambda-mix", {"lam": 0.5}),
    Cell("GMM2D-mix-v0", "lambda-mix", {"lam": 1.0}),
    Cell("GMM2D-mix-v0", "real-only"),
    Cell("GMM2D-accumulate-v0", "accumulate"),
)
PLOTTED_METRICS = ["std_ratio", "fd", "w2", "recall"]
EXACT_LINEAGES = 20_000  # Monte Carlo error of the expected curves: ≤ 0.01 of σ (1.96 SE) at T = 100
EXACT_METRIC = "std_ratio (exact E)"  # its column in the summary


def run_demo(
    out: Path, quick: bool = False, progress: bool = True, backend: str = "local", workers: int | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every cell's lineages as one sweep on ``backend`` (default: a process per core), then write
    results.csv, expected.csv, summary.csv/.md and curves-<family>.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    budgets = QUICK if quick else FULL
    lineages = [lineage for cell in CELLS for lineage in cell.lineages(budgets[cell.family])]
    report = sweep(
        lineages, ResultsStore(out / "results.sqlite"), backend=backend, workers=workers, progress=progress
    )
    if not report.ok:
        failure = report.failures[0]
        raise RuntimeError(
            f"{len(report.failures)} demo lineage(s) failed, e.g. {failure.cell.label}: {failure.error} "
            "(rerun the demo: it resumes them)"
        )
    results = report.to_dataframe()
    export(results, out / "results.csv")
    expected = expected_std_ratio(report.store.runs(report.run_ids), EXACT_LINEAGES)
    expected.to_csv(out / "expected.csv", index=False)
    summary = pd.concat([summarize(results, PLOTTED_METRICS), exact_summary(expected)], ignore_index=True)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text(summary_markdown(summary))
    for family, budget in budgets.items():
        plot_curves(
            results[results["env_id"].str.startswith(f"{family}-")],
            PLOTTED_METRICS,
            out / f"curves-{family}.png",
            title=f"{family}: baselines, {budget.seeds} seeds",
            expected=expected[expected["env_id"].str.startswith(f"{family}-")],
            expected_label=f"exact expectation ({EXACT_LINEAGES:,} lineages)",
        )
    return results, summary


def exact_summary(expected: pd.DataFrame) -> pd.DataFrame:
    """``expected_std_ratio``'s last generations as summary rows (``seeds``: the simulated lineages)."""
    curve = ["env_id", "model", "model_params", "policy", "params", "env_settings"]
    last = expected[
        expected["generation"] == expected.groupby(curve, dropna=False)["generation"].transform("max")
    ]
    return pd.DataFrame(
        {
            "env_id": last["env_id"],
            "agent": agent_labels(last),
            "metric": EXACT_METRIC,
            "mean": last["value"],
            "seeds": last["lineages"],
            "generation": last["generation"],
            "ci95": last["ci95"],
        }
    )


def summary_markdown(summary: pd.DataFrame) -> str:
    table = summary_table(summary, lambda mean, ci95: f"{mean:.4f} ± {ci95:.4f}")
    header = "| env | agent | " + " | ".join(table.columns) + " |"
    rule = "|---|---|" + "---|" * len(table.columns)
    rows = [f"| {env} | {agent} | " + " | ".join(cells) + " |" for (env, agent), cells in table.iterrows()]
    return "\n".join([header, rule, *rows]) + "\n"
