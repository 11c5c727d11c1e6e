"""The toy worlds show the three loops' known behaviour with a real neural model, at a tiny budget.

Spline flows on Rings8 with n = 300, 400 steps for generation 0 then 80 per generation, T = 8, seeds
0-1. Measured (mean of the seeds, generation 0 → 8): fully synthetic recall 0.94 → 0.73 and W2
0.48 → 0.85; λ = 0.5 mixing keeps recall ≈ 0.94 and W2 ≈ 0.5; accumulating keeps W2 within 0.45-0.58.
The assertions leave margins well inside those gaps. The full-budget numbers are in the README.
"""

from __future__ import annotations

import numpy as np
import pytest

import collapsebench as cb
from collapsebench.sweep import Cell

FLOW = {"initial_steps": 400, "steps": 80, "batch_size": 128, "lr": 2e-3, "hidden": 32, "layers": 4}
SIZES = {"n_real": 300, "n_synthetic": 300, "n_test": 300, "n_eval": 300}
T, SEEDS = 8, (0, 1)


AGENTS = {  # loop: (env, policy, policy params)
    "replace": ("Rings8-replace-v0", "full-synthetic", {}),
    "mix": ("Rings8-mix-v0", "lambda-mix", {"lam": 0.5}),
    "accumulate": ("Rings8-accumulate-v0", "accumulate", {}),
}


@pytest.fixture(scope="module")
def loops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    """Mean curves over the seeds of recall, w2 and fd, t = 0..T, per loop. The six lineages run as
    one sweep: each is single-threaded, so the machine's cores share them."""
    cells = [
        Cell(env_id, (policy,), seed, params, model_params=FLOW, env_params=SIZES, generations=T)
        for env_id, policy, params in AGENTS.values()
        for seed in SEEDS
    ]
    store = tmp_path_factory.mktemp("science") / "results.sqlite"
    report = cb.sweep(cells, store=store, progress=False)
    assert report.ok, report.failures
    results = report.to_dataframe()
    curves = {}
    for loop, (env_id, _, _) in AGENTS.items():
        runs = results[results["env_id"] == env_id]
        mean = runs.groupby(["metric", "generation"])["value"].mean()
        curves[loop] = {key: mean[key].sort_index().to_numpy() for key in ("recall", "w2", "fd")}
    return curves


def late(curve: np.ndarray) -> float:
    return float(curve[-3:].mean())


def test_fully_synthetic_flows_lose_recall_and_drift_away(loops):
    replace = loops["replace"]
    assert late(replace["recall"]) < replace["recall"][0] - 0.1
    assert late(replace["w2"]) > replace["w2"][0] + 0.15


def test_lambda_half_keeps_fd_within_a_band_of_generation_zero(loops):
    mix, replace = loops["mix"], loops["replace"]
    assert late(mix["fd"]) < mix["fd"][0] + 0.1
    assert late(mix["recall"]) > mix["recall"][0] - 0.05
    assert late(mix["w2"]) < late(replace["w2"]) - 0.15


def test_accumulating_stays_bounded(loops):
    accumulate, replace = loops["accumulate"], loops["replace"]
    assert accumulate["w2"].max() < accumulate["w2"][0] + 0.2
    assert late(accumulate["recall"]) > accumulate["recall"][0] - 0.05
    assert late(accumulate["w2"]) < late(replace["w2"]) - 0.15
