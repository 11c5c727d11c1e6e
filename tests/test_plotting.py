from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from collapsebench.plotting import plot_curves, plot_samples, summarize


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


@pytest.fixture
def closed_figures(monkeypatch) -> list:
    """Each figure a plot function closes, kept to read what it drew."""
    figures: list = []
    monkeypatch.setattr(plt, "close", figures.append)
    return figures


def test_the_curve_band_is_the_summary_interval(tmp_path, closed_figures):
    frame = results({0: [0.0, 1.0], 1: [0.0, 2.0], 2: [0.0, 3.0], 3: [0.0, 6.0]})
    out = plot_curves(frame, ["fd"], tmp_path / "curves.png")
    assert out.read_bytes()[:4] == b"\x89PNG"

    (figure,) = closed_figures
    (band,) = [artist for artist in figure.axes[0].collections if isinstance(artist, PolyCollection)]
    vertices = band.get_paths()[0].vertices
    at_last = np.unique(vertices[np.isclose(vertices[:, 0], 1.0), 1])  # the path repeats a corner
    last = summarize(frame, ["fd"]).iloc[0]
    assert (last["mean"], last["median"], last["seeds"]) == (3.0, 2.5, 4)
    assert last["ci95"] == pytest.approx(1.96 * np.std([1.0, 2.0, 3.0, 6.0], ddof=1) / 2)
    assert list(at_last) == pytest.approx([last["mean"] - last["ci95"], last["mean"] + last["ci95"]])


def test_dollar_signs_in_a_label_are_text_not_mathtext(tmp_path, closed_figures):
    """A parameter's value is free text: "$\\x$" in it would stop matplotlib's mathtext parser."""
    frame = results({0: [0.0, 1.0], 1: [0.0, 2.0]}).assign(params='{"tag": "$\\\\undefinedcmd$"}')
    assert plot_curves(frame, ["fd"], tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    (figure,) = closed_figures
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["lambda-mix(tag=$\\undefinedcmd$)"]
    assert plt.rcParams["text.parse_math"]  # the caller's setting is left as it was


def test_expected_curves_are_drawn_dashed_in_their_agents_colour(tmp_path, closed_figures):
    frame = pd.concat(
        [
            results({0: [1.0, 0.9, 0.8], 1: [1.0, 0.7, 0.6]}),
            results({0: [1.0, 1.0, 1.0], 1: [1.0, 0.9, 1.1]}).assign(params='{"lam": 1.0}'),
        ]
    )
    expected = frame.iloc[:3].assign(value=[1.0, 0.85, 0.75], seed=None, run_id=None)  # lam 0.5 only
    plot_curves(frame, ["fd"], tmp_path / "curves.png", expected=expected, expected_label="theory")

    axes = closed_figures[0].axes[0]
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
    legend = [text.get_text() for text in closed_figures[0].legends[0].get_texts()]
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


def test_the_sample_panels_show_the_pool_by_provenance_and_weight_above_the_samples(tmp_path, closed_figures):
    """Top: the pool a generation trained on: real in black, synthetic coloured by the generation that
    made it, items the policy gave no weight as grey crosses. Bottom: the first pool's real items in
    light grey behind the generation's samples, in that generation's colour."""
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    first_pool = np.vstack([real, [[9.0, 9.0]]])  # with the first model's sample (generation 0)
    snapshots = {
        0: {
            "pool": first_pool,
            "origin": np.array([-1, -1, -1, 0]),
            "weights": np.ones(4),
            "samples": real + 0.1,
        },
        4: {
            "pool": np.vstack([real, [[2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]]),
            "origin": np.array([-1, -1, -1, 0, 3, 3]),
            "weights": np.array([1.0, 0.0, 1.0, 1.0, 0.5, 0.0]),  # a real and a gen-3 item dropped
            "samples": np.array([[5.0, 5.0], [6.0, 6.0]]),
        },
    }
    png = plot_samples(snapshots, tmp_path / "new" / "folder" / "s.png", title="a run")
    assert png.read_bytes()[:4] == b"\x89PNG"
    (figure,) = closed_figures
    assert figure.texts[0].get_text() == "a run"
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["no weight", "real", "synthetic"]
    top, bottom = figure.axes[1], figure.axes[3]  # generation 4's column: axes run row by row
    no_weight, black, synthetic = top.collections
    assert no_weight.get_offsets().tolist() == [[1.0, 0.0], [4.0, 4.0]]
    assert black.get_offsets().tolist() == [[0.0, 0.0], [0.0, 1.0]]
    assert mcolors.same_color(black.get_facecolor(), "black")
    assert synthetic.get_offsets().tolist() == [[2.0, 2.0], [3.0, 3.0]]
    viridis = plt.get_cmap("viridis")
    assert np.allclose(synthetic.get_facecolor(), [viridis(0 / 4), viridis(3 / 4)])
    backdrop, samples = bottom.collections
    assert backdrop.get_offsets().tolist() == real.tolist()  # not the first pool's synthetic item
    assert samples.get_offsets().tolist() == [[5.0, 5.0], [6.0, 6.0]]
    assert np.allclose(samples.get_facecolor(), [viridis(1.0)])
    assert [axis.get_title() for axis in figure.axes] == [
        "pool trained on, gen 0", "pool trained on, gen 4", "samples of gen 0", "samples of gen 4"
    ]  # fmt: skip
    # Every panel on the same scale, from the first pool's real items with a margin: the drift shows.
    assert len({(axis.get_xlim(), axis.get_ylim()) for axis in figure.axes}) == 1
    (x_low, x_high), (y_low, y_high) = top.get_xlim(), top.get_ylim()
    assert x_low < 0.0 and 1.0 < x_high < 2.0 and y_low < 0.0 and 1.0 < y_high < 2.0


def test_the_sample_key_shows_every_marker_even_when_the_first_pool_is_all_real(tmp_path, closed_figures):
    """The key sits on generation 0's panel, whose pool is usually only real items, all weighted: each
    entry still shows its marker in the colour the panels use."""
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    snapshots = {
        0: {"pool": real, "origin": np.full(3, -1), "weights": np.ones(3), "samples": real + 0.1},
        2: {
            "pool": np.vstack([real, [[2.0, 2.0]]]),
            "origin": np.array([-1, -1, -1, 1]),
            "weights": np.array([1.0, 0.0, 1.0, 1.0]),
            "samples": real,
        },
    }
    plot_samples(snapshots, tmp_path / "s.png")
    (figure,) = closed_figures
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["no weight", "real", "synthetic"]
    handles = legend.legend_handles
    assert [handle.get_marker() for handle in handles] == ["x", "o", "o"]
    assert all(handle.get_markersize() > 0 and handle.get_linestyle() == "None" for handle in handles)
    no_weight, black, synthetic = handles
    assert mcolors.same_color(no_weight.get_color(), "0.75")
    assert mcolors.same_color(black.get_color(), "black")
    assert mcolors.same_color(synthetic.get_color(), plt.get_cmap("viridis")(0.5))


def test_the_image_grid_shows_real_images_then_each_generations_samples(tmp_path, closed_figures):
    def images(values: list[int]) -> np.ndarray:  # (n, 1, 2, 3): one grey level per image
        return np.array(values, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 3), np.uint8)

    snapshots = {
        0: {"pool": images([10, 20, 30]), "origin": np.array([-1, 0, -1]), "samples": images([40])},
        2: {"pool": images([10]), "origin": np.array([-1]), "samples": images([50, 60, 70])},
    }
    plot_samples(snapshots, tmp_path / "grid.png")
    (figure,) = closed_figures
    rows = {axis.get_ylabel(): axis.images[0].get_array() for axis in figure.axes}
    assert list(rows) == ["real", "gen 0", "gen 2"]
    per_generation = 16
    for strip in rows.values():
        assert strip.shape == (2, per_generation * (3 + 1))  # 1-pixel white gaps between images
    # Each image's first column, then the gap: real items only (not the pool's synthetic 20).
    assert rows["real"][0, ::4][:3].tolist() == [10, 30, 255] and rows["real"][0, 3] == 255
    assert rows["gen 0"][0, ::4][:2].tolist() == [40, 255]
    assert rows["gen 2"][0, ::4][:4].tolist() == [50, 60, 70, 255]
    assert (rows["gen 2"][:, 12:] == 255).all()  # no fourth sample: the rest stays white
    assert {axis.images[0].get_cmap().name for axis in figure.axes} == {"gray"}

    colour = {
        generation: {
            key: value.repeat(3, axis=1) if value.ndim == 4 else value for key, value in snap.items()
        }
        for generation, snap in snapshots.items()
    }
    colour[2]["samples"][0, 0] = 200  # the first sample's red channel
    plot_samples(colour, tmp_path / "colour.png")
    strip = closed_figures[-1].axes[2].images[0].get_array()
    assert strip.shape == (2, per_generation * (3 + 1), 3)
    assert strip[0, 0].tolist() == [200, 50, 50] and strip[0, 4].tolist() == [60, 60, 60]
