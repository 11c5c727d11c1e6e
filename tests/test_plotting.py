from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from collapsebench.plotting import plot_curves, summarize


def results(values_by_seed: dict[int, list[float]]) -> pd.DataFrame:
    """A tidy results frame: one env, one agent, metric ``fd``, a value per (seed, generation)."""
    rows = [
        {
            "env_id": "Gaussian-mix-v0",
            "model": "gaussian",
            "policy": "lambda-mix",
            "params": '{"lam": 0.5}',
            "seed": seed,
            "run_id": f"run-{seed}",
            "generation": generation,
            "metric": "fd",
            "value": value,
        }
        for seed, values in values_by_seed.items()
        for generation, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_the_curve_band_is_the_summary_interval(tmp_path, monkeypatch):
    frame = results({0: [0.0, 1.0], 1: [0.0, 2.0], 2: [0.0, 3.0], 3: [0.0, 6.0]})
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to read what was drawn
    out = plot_curves(frame, ["fd"], tmp_path / "curves.png")
    assert out.read_bytes()[:4] == b"\x89PNG"

    (band,) = [artist for artist in figures[0].axes[0].collections if isinstance(artist, PolyCollection)]
    vertices = band.get_paths()[0].vertices
    at_last = np.unique(vertices[np.isclose(vertices[:, 0], 1.0), 1])  # the path repeats a corner
    last = summarize(frame, ["fd"]).iloc[0]
    assert last["mean"] == 3.0
    assert last["ci95"] == pytest.approx(1.96 * np.std([1.0, 2.0, 3.0, 6.0], ddof=1) / 2)
    assert list(at_last) == pytest.approx([last["mean"] - last["ci95"], last["mean"] + last["ci95"]])
