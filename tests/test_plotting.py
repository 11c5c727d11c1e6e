from __future__ import annotations

import matplotlib.colors as mcolors
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
    assert (last["mean"], last["median"], last["seeds"]) == (3.0, 2.5, 4)
    assert last["ci95"] == pytest.approx(1.96 * np.std([1.0, 2.0, 3.0, 6.0], ddof=1) / 2)
    assert list(at_last) == pytest.approx([last["mean"] - last["ci95"], last["mean"] + last["ci95"]])


def test_expected_curves_are_drawn_dashed_in_their_agents_colour(tmp_path, monkeypatch):
    frame = pd.concat(
        [
            results({0: [1.0, 0.9, 0.8], 1: [1.0, 0.7, 0.6]}),
            results({0: [1.0, 1.0, 1.0], 1: [1.0, 0.9, 1.1]}).assign(params='{"lam": 1.0}'),
        ]
    )
    expected = frame.iloc[:3].assign(value=[1.0, 0.85, 0.75], seed=None, run_id=None)  # lam 0.5 only
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plot_curves(frame, ["fd"], tmp_path / "curves.png", expected=expected, expected_label="theory")

    axes = figures[0].axes[0]
    (dashed,) = [line for line in axes.get_lines() if line.get_linestyle() == "--"]
    assert list(dashed.get_ydata()) == [1.0, 0.85, 0.75]
    bands = {
        label: band
        for label, band in zip(
            ["lambda-mix(lam=0.5)", "lambda-mix(lam=1.0)"],
            [artist for artist in axes.collections if isinstance(artist, PolyCollection)],
            strict=True,
        )
    }
    assert mcolors.same_color(dashed.get_color(), bands["lambda-mix(lam=0.5)"].get_facecolor()[0][:3])
    assert not mcolors.same_color(dashed.get_color(), bands["lambda-mix(lam=1.0)"].get_facecolor()[0][:3])
    legend = [text.get_text() for text in figures[0].legends[0].get_texts()]
    assert legend == ["lambda-mix(lam=0.5)", "lambda-mix(lam=1.0)", "theory"]


@pytest.mark.parametrize(
    "change",
    [{"params": '{"lam": 2.0}'}, {"env_id": "Gaussian-replace-v0"}],
    ids=["another-agent", "another-env"],
)
def test_an_expected_curve_without_results_to_go_with_is_refused(tmp_path, change):
    frame = results({0: [1.0, 0.9], 1: [1.0, 0.7]})
    open_figures = plt.get_fignums()
    with pytest.raises(ValueError, match="the results have no such curve"):
        plot_curves(frame, ["fd"], tmp_path / "curves.png", expected=frame.iloc[:2].assign(**change))
    assert not (tmp_path / "curves.png").exists() and plt.get_fignums() == open_figures


def test_the_summary_compares_seeds_at_a_generation_they_all_reached():
    """One run still going (generation 1 of 2): the summary is at generation 1 for both seeds, not the
    first seed's generation 2 averaged with the second's generation 1."""
    row = summarize(results({0: [1.0, 2.0, 3.0], 1: [1.0, 5.0]}), ["fd"]).iloc[0]
    assert (row["generation"], row["mean"], row["median"], row["seeds"]) == (1, 3.5, 3.5, 2)


def test_the_summary_median_is_the_middle_seed_not_the_mean():
    """Three seeds, one far out: the mean follows it, the median is the middle seed's value."""
    row = summarize(results({0: [0.2], 1: [0.3], 2: [4.0]}), ["fd"]).iloc[0]
    assert row["median"] == 0.3 and row["mean"] == pytest.approx(1.5)
    at = summarize(results({0: [0.2, 9.0], 1: [0.3, 8.0], 2: [4.0, 7.0]}), ["fd"], generation=0).iloc[0]
    assert (at["generation"], at["median"]) == (0, 0.3)
