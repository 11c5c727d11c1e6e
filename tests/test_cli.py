from __future__ import annotations

import os
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

import collapsebench as cb
from collapsebench import demo as demo_module
from collapsebench import list_models, list_policies, plotting
from collapsebench.cli import app, parse_seeds, parse_value
from collapsebench.datasets import DATA_ENV_VAR
from collapsebench.demo import EXACT_LINEAGES, EXACT_METRIC
from collapsebench.envs.gaussian import c4
from collapsebench.policies import POLICIES, CurationPolicy
from collapsebench.registration import default_settings
from collapsebench.rewards import REWARDS
from collapsebench.scoring import METRICS
from collapsebench.store import ResultsStore
from collapsebench.terminal import console

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Result:
    """The CLI's exit code and its output with rich's boxes and line wrapping removed."""

    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code = exit_code
        self.output = " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def invoke(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    return Result(result.exit_code, result.output)


def test_list_shows_envs_policies_models_metrics_and_rewards():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    for name in ("Gaussian-mix-v0", "GMM2D-replace-v0", "lambda-mix", "gmm", "std_ratio"):
        assert name in result.output
    kinds = (
        ("policies", list_policies()),
        ("models", list_models()),
        ("metrics", METRICS),
        ("rewards", REWARDS),
    )
    for kind, names in kinds:
        assert f"{kind}: {', '.join(names)}" in result.output


def test_describe_prints_docs_and_defaults():
    result = invoke("describe", "GMM2D-mix-v0")
    assert result.output.startswith("GMM2D-mix-v0 (gymnasium id: collapsebench/GMM2D-mix-v0)")
    assert result.exit_code == 0 and "Version history" in result.output and '"n_real": 500' in result.output
    # Settings the spec leaves to the env class are shown too: the analytic worlds' metrics.
    assert '"metrics": [' in result.output and '"synthetic_fraction"' in result.output
    assert invoke("describe", "Nope-v0").exit_code != 0
    # Brackets in a docstring are text, not style tags (rich dropped "[std_ratio_t]").
    assert "E[std_ratio_t] = c4(n)^(t+1)" in invoke("describe", "Gaussian-replace-v0").output


def test_describe_prints_a_components_docs_and_parameters():
    model = invoke("describe", "spline-flow")
    assert model.exit_code == 0 and model.output.startswith("spline-flow (model) Neural spline flow")
    # The base class's parameters, passed through **kwargs, with the defaults the model is built with.
    assert (
        '"bins": 8' in model.output
        and '"steps": 500' in model.output
        and '"temperature": 1.0' in model.output
    )
    policy = invoke("describe", "lambda-mix")
    assert policy.output.startswith("lambda-mix (policy)") and '"lam": 1.0' in policy.output
    assert '"direction": null' in invoke("describe", "linear").output  # a reward: a factory function
    wrong = invoke("describe", "gmn")
    assert wrong.exit_code == 2
    assert "no env, curation policy, model or reward named 'gmn' (did you mean 'gmm'?)" in wrong.output


def test_run_then_plot_then_export(tmp_path, monkeypatch):
    store = tmp_path / "r.sqlite"
    result = invoke(
        "run",
        "Gaussian-mix-v0",
        "--policy",
        "lambda-mix",
        "--param",
        "lam=0.5",
        "--seeds",
        "0-2",
        "--generations",
        "2",
        "--env-param",
        "n_test=30",
        "--env-param",
        "n_eval=30",
        "--store",
        str(store),
        "--out",
        str(tmp_path / "out.csv"),
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "out.csv")
    assert sorted(frame["seed"].unique()) == [0, 1, 2] and frame["generation"].max() == 2
    assert set(frame["params"]) == {'{"lam":0.5}'}
    assert len(ResultsStore(store).runs()) == 3

    png = tmp_path / "curves.png"
    result = invoke(
        "plot", "--store", str(store), "--metric", "std_ratio", "--metric", "fd", "--out", str(png)
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    assert f"wrote {png}" in result.output
    # Without --out, where the README says: results/ under the working folder.
    monkeypatch.chdir(tmp_path)
    result = invoke("plot", "--store", str(store))
    assert result.exit_code == 0 and "wrote results/curves.png" in result.output, result.output
    assert (tmp_path / "results" / "curves.png").read_bytes()[:8] == PNG_MAGIC

    # Another env in the store: --env picks one env's rows.
    other = ["run", "Gaussian-replace-v0", "--policy", "full-synthetic", "--seeds", "0", "--generations", "1"]
    assert invoke(*other, "--env-param", "n_test=30", "--store", str(store), "--no-progress").exit_code == 0
    result = invoke("export", str(tmp_path / "mix.csv"), "--store", str(store), "--env", "Gaussian-mix-v0")
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "mix.csv"), frame)

    result = invoke("export", str(tmp_path / "all.parquet"), "--store", str(store))
    assert result.exit_code == 0 and len(pd.read_parquet(tmp_path / "all.parquet")) > len(frame)
    for arguments, named in [
        ([str(tmp_path / "all.txt")], "export to .csv or .parquet, not '.txt'"),
        ([str(tmp_path / "gmm.csv"), "--env", "GMM2D-mix-v0"], "no results for ['GMM2D-mix-v0']"),
    ]:
        result = invoke("export", *arguments, "--store", str(store))
        assert result.exit_code == 2 and named in result.output, result.output
    assert not (tmp_path / "all.txt").exists() and not (tmp_path / "gmm.csv").exists()


def test_run_reports_bad_input_clearly(tmp_path):
    store = str(tmp_path / "r.sqlite")
    result = invoke("run", "Gausian-mix-v0", "--policy", "lambda-mix", "--store", store)
    assert result.exit_code != 0 and "did you mean Gaussian-mix-v0" in result.output
    result = invoke("run", "Gaussian-mix-v0", "--policy", "lambda-mix", "--param", "lam", "--store", store)
    assert result.exit_code != 0 and "NAME=VALUE" in result.output
    result = invoke("run", "Gaussian-mix-v0", "--policy", "lambda-mix", "--seeds", "a-b", "--store", store)
    assert result.exit_code != 0 and "seeds look like" in result.output
    for setting, named in [
        (["--env-param", "sample_reward=linaer"], "unknown reward 'linaer'; registered: distance, linear"),
        (["--env-param", "n_real=0"], "n_real must be an integer ≥ 1, got 0"),
        (["--env-param", "n_reel=50"], "Gaussian-mix-v0: no setting 'n_reel' (did you mean 'n_real'?)"),
        (["--model", "gausian"], "unknown model 'gausian'"),
    ]:
        result = invoke("run", "Gaussian-mix-v0", "--policy", "lambda-mix", *setting, "--store", store)
        assert result.exit_code != 0 and named in result.output
        assert "--env-param / --model / --model-param" in result.output
        assert "0/505" not in result.output  # no progress bar left standing above the error
    result = invoke(
        "run", "Gaussian-mix-v0", "--policy", "lambda-mix", "--add-metric", "tails", "--store", store
    )
    assert result.exit_code != 0 and "unknown metric(s) tails; registered: coverage" in result.output
    assert "--add-metric" in result.output
    result = invoke("run", "Gaussian-mix-v0", "--policy", "real-only", "--out", "r.txt", "--store", store)
    assert result.exit_code == 2 and "export to .csv or .parquet, not '.txt'" in result.output
    for option in ("--generations", "--snapshots", "--checkpoint-every"):  # named, not an env setting
        result = invoke("run", "Gaussian-mix-v0", "--policy", "real-only", option, "-1", "--store", store)
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output
        assert "greater than or equal to 0" in result.output
    assert list(tmp_path.iterdir()) == []  # a refused command leaves no store behind, not even an empty one


def test_run_adds_a_metric_to_the_env_s_own(tmp_path):
    store = tmp_path / "r.sqlite"
    arguments = ["Gaussian-replace-v0", "--policy", "full-synthetic", "--seeds", "0", "--generations", "2"]
    result = invoke("run", *arguments, "--add-metric", "tail_mass", "--store", str(store), "--no-progress")
    assert result.exit_code == 0, result.output
    assert "tail_mass" in result.output  # in the printed summary
    frame = ResultsStore(store).to_dataframe()
    # Every default metric of the env, plus the added one, at every generation.
    assert set(frame["metric"]) == {*default_settings("Gaussian-replace-v0")["metrics"], "tail_mass"}
    assert frame.groupby("metric")["generation"].nunique().eq(3).all()


def test_summary_prints_every_agent_of_a_store_and_names_what_is_not_there(tmp_path):
    store = tmp_path / "r.sqlite"
    tiny = ["--env-param", "n_test=30", "--env-param", "n_eval=30", "--store", str(store), "--no-progress"]
    for policy, generations in (("full-synthetic", "2"), ("real-only", "1")):
        arguments = ["Gaussian-mix-v0", "--policy", policy, "--seeds", "0-2", "--generations", generations]
        assert invoke("run", *arguments, *tiny).exit_code == 0

    result = invoke(
        "summary", "--store", str(store), "--metric", "std_ratio", "--out", str(tmp_path / "s.csv")
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "s.csv").set_index("agent")
    frame = ResultsStore(store).to_dataframe()
    expected = plotting.summarize(frame, ["std_ratio"]).set_index("agent")
    # Their env settings differ in the budget only, so it names them apart.
    agents = ["full-synthetic · generations=2", "real-only · generations=1"]
    assert list(written.index) == list(expected.index) == agents
    assert written["median"].to_numpy() == pytest.approx(expected["median"].to_numpy())
    assert list(written["generation"]) == [2, 1]  # each agent at the last generation its seeds reached
    for agent, row in expected.iterrows():
        assert (
            f"{agent} std_ratio {row.generation} {row['mean']:.4g} {row.ci95:.2g} {row['median']:.4g} 3"
            in (result.output)
        )
    assert "fd" not in result.output.split("seeds", 1)[1]  # only the metric asked for

    result = invoke("summary", "--store", str(store), "--generation", "2")
    assert result.exit_code == 0, result.output
    assert f"Gaussian-mix-v0 · {agents[1]}: no run reached generation 2" in result.output
    assert "precision" in result.output  # by default every metric the runs recorded
    for arguments, named in [
        (["--generation", "3"], "no run reached generation 3: the last is 2"),
        (["--metric", "tails"], "no results for metric(s) tails; the runs recorded: coverage, density"),
        (["--env", "GMM2D-mix-v0"], "no results for ['GMM2D-mix-v0'] in the store"),
        (["--out", str(tmp_path / "s.txt")], "export to .csv or .parquet"),
    ]:
        result = invoke("summary", "--store", str(store), *arguments)
        assert result.exit_code != 0 and named in result.output
    assert not (tmp_path / "s.txt").exists()


def test_plot_without_results_says_so(tmp_path):
    result = invoke("plot", "--store", str(tmp_path / "missing.sqlite"))
    assert result.exit_code != 0 and "no results store" in result.output


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.5", 0.5), ("3", 3), ("inf", float("inf")), ("true", True), ("scott", "scott"), ("[1, 2]", [1, 2])],
)
def test_parse_value(text, value):
    # The type too: "3" read as 3.0 would record another agent than the Python API's 3.
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_parse_seeds():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_seeds("5") == [5]


def test_demo_quick_writes_results_summary_and_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "width", 400)  # the printed table a row per line
    result = invoke("demo", "--quick", "--out", str(tmp_path), "--no-progress")
    assert result.exit_code == 0, result.output
    for name in ("results.sqlite", "results.csv", "summary.csv", "summary.md"):
        assert (tmp_path / name).exists(), name
    for family in ("Gaussian", "GMM2D"):
        assert (tmp_path / f"curves-{family}.png").read_bytes()[:8] == PNG_MAGIC
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert {"Gaussian-replace-v0", "Gaussian-mix-v0", "GMM2D-mix-v0"} <= set(summary["env_id"])
    # Each Gaussian cell's exact expected std_ratio beside its seeds' mean; the fully synthetic loop's
    # is c4(100)^(t+1) (T = 3 in the quick demo), up to its Monte Carlo error.
    exact = summary[summary["metric"] == EXACT_METRIC].set_index(["env_id", "agent"])
    assert set(exact.index) == set(
        summary[summary["env_id"].str.startswith("Gaussian-")].set_index(["env_id", "agent"]).index
    )
    assert (exact["seeds"] == EXACT_LINEAGES).all() and (exact["generation"] == 3).all()
    replace = exact.loc[("Gaussian-replace-v0", "full-synthetic")]
    assert replace["mean"] == pytest.approx(c4(100) ** 4, abs=2 * replace["ci95"])
    # The printed table: a row per (env, agent), its cells the summary's mean ± CI.
    wide = plotting.summary_table(summary, lambda mean, ci: f"{mean:.3g}±{ci:.1g}")
    assert " ┃ ".join(["env", "agent", *wide.columns]) in result.output  # the header names each column
    for (env_id, agent), cells in wide.iterrows():
        assert " ".join([env_id, agent, *filter(None, cells)]) in result.output, (env_id, agent)
    # `collapsebench summary` on the demo's store prints the numbers of its summary.csv, median included.
    printed = invoke("summary", "--store", str(tmp_path / "results.sqlite"), "--metric", "recall")
    recall = summary[(summary["metric"] == "recall") & (summary["env_id"] == "GMM2D-mix-v0")]
    row = recall.set_index("agent").loc["real-only"]
    assert f"real-only recall {row.generation} {row['mean']:.4g} {row.ci95:.2g} {row['median']:.4g} 2" in (
        printed.output
    )
    expected = pd.read_csv(tmp_path / "expected.csv")
    assert len(expected) == 6 * 4 and (expected["lineages"] == EXACT_LINEAGES).all()
    # 11 cells × 2 seeds, each lineage one run; the demo is a sweep, so a rerun finds them all done
    # and runs nothing (the runs' compute time and timestamps stay as they were).
    runs = ResultsStore(tmp_path / "results.sqlite").runs()
    assert len(runs) == 22 and (runs["completed_generations"] == runs["generations"] + 1).all()
    again = invoke("demo", "--quick", "--out", str(tmp_path), "--no-progress", "--workers", "1")
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(ResultsStore(tmp_path / "results.sqlite").runs(), runs)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"), summary)


def test_run_composes_repeated_policies_and_plots_samples(tmp_path):
    store = str(tmp_path / "r.sqlite")

    def run_dedup_then_mix(*params: str, n_real: int = 60) -> Result:
        """dedup > lambda-mix with ``params`` (each a --param), one seed, 2 generations, snapshots."""
        return invoke(
            "run",
            "GMM2D-mix-v0",
            "--policy",
            "dedup",
            "--policy",
            "lambda-mix",
            *(option for param in params for option in ("--param", param)),
            "--seeds",
            "0",
            "--generations",
            "2",
            "--env-param",
            f"n_real={n_real}",
            "--env-param",
            "n_synthetic=60",
            "--env-param",
            "n_test=30",
            "--env-param",
            "n_eval=30",
            "--snapshots",
            "2",
            "--store",
            store,
            "--no-progress",
        )

    result = run_dedup_then_mix("dedup.eps=0.05", "lambda-mix.lam=0.5", n_real=60)
    assert result.exit_code == 0, result.output
    runs = ResultsStore(store).runs()
    assert runs["policy"].tolist() == ["dedup>lambda-mix"]
    assert '"eps":0.05' in runs["policy_params"].iloc[0] and '"lam":0.5' in runs["policy_params"].iloc[0]

    result = invoke("plot", "--samples", "--store", store, "--out", str(tmp_path / "pictures"))
    assert result.exit_code == 0, result.output
    (png,) = (tmp_path / "pictures").glob("*.png")
    assert png.name.startswith("GMM2D-mix-v0__dedup") and png.read_bytes()[:8] == PNG_MAGIC
    assert f"wrote {png}" in result.output
    result = invoke(
        "plot", "--samples", "--store", store, "--env", "Moons-mix-v0", "--out", str(tmp_path / "m")
    )
    assert result.exit_code == 2 and "no run in the store saved samples" in result.output
    assert not (tmp_path / "m").exists()

    # The same agent and seed under another env setting: its own picture, named by the setting.
    assert run_dedup_then_mix("dedup.eps=0.05", "lambda-mix.lam=0.5", n_real=40).exit_code == 0
    result = invoke("plot", "--samples", "--store", store, "--out", str(tmp_path / "both"))
    assert result.exit_code == 0, result.output
    names = sorted(png.name for png in (tmp_path / "both").glob("*.png"))
    assert len(names) == 2 and "n_real=40" in names[0] and "n_real=60" in names[1]

    result = run_dedup_then_mix("lam=0.5")  # which stage's lam?
    assert result.exit_code != 0 and "name the stage" in result.output


def test_model_params_adjust_the_spec_model_settings(tmp_path):
    store = str(tmp_path / "r.sqlite")
    result = invoke(
        "run",
        "Moons-mix-v0",
        "--policy",
        "real-only",
        "--seeds",
        "0",
        "--generations",
        "0",
        "--model-param",
        "initial_steps=5",
        "--model-param",
        "hidden=8",
        "--env-param",
        "n_real=50",
        "--env-param",
        "n_synthetic=50",
        "--env-param",
        "n_test=20",
        "--env-param",
        "n_eval=20",
        "--store",
        store,
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    params = ResultsStore(store).runs()["model_params"].iloc[0]
    assert '"initial_steps":5' in params and '"hidden":8' in params
    assert '"steps":300' in params  # the spec's (the model's own default is 500)


def test_image_run_saves_a_sample_grid_and_missing_data_is_reported(tmp_path, image_data):
    store = str(tmp_path / "r.sqlite")
    tiny = ["hidden=16", "depth=1", "initial_images=128", "images_per_generation=64", "sample_steps=2"]
    args = ["run", "Digits-replace-v0", "--policy", "full-synthetic", "--seeds", "0", "--generations", "2"]
    args += [arg for value in tiny for arg in ("--model-param", value)]
    args += ["--env-param", "n_test=40", "--env-param", "n_eval=40", "--snapshots", "3", "--store", store]
    result = invoke(*args, "--no-progress")
    assert result.exit_code == 0, result.output
    result = invoke("plot", "--samples", "--store", store, "--out", str(tmp_path / "grids"))
    assert result.exit_code == 0, result.output
    (grid,) = (tmp_path / "grids").glob("Digits-replace-v0*.png")
    assert grid.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize("data_variable_set", [True, False], ids=["variable-set", "variable-unset"])
def test_data_dir_is_where_that_run_looks_and_missing_data_is_reported(
    tmp_path, image_data, monkeypatch, data_variable_set
):
    """``--data-dir`` holds for the run only: the command may run inside another program (a notebook,
    these tests), whose ``$COLLAPSEBENCH_DATA`` it leaves as it found it, set or not."""
    if not data_variable_set:
        monkeypatch.delenv(DATA_ENV_VAR)
    empty = tmp_path / "no-data"
    empty.mkdir()
    store = str(tmp_path / "r.sqlite")
    result = invoke(
        "run", "CIFAR-mix-v0", "--policy", "real-only", "--data-dir", str(empty), "--store", store
    )
    assert result.exit_code != 0 and "CIFAR-10 not found" in result.output and str(empty) in result.output
    assert os.environ.get(DATA_ENV_VAR) == (str(image_data) if data_variable_set else None)


def test_weights_lists_the_manifest_and_what_is_in_place(tmp_path, monkeypatch):
    """The bundled digits-cnn is in place; Inception is not on this machine (never downloaded); a file
    with another hash is named as the wrong file, not as missing."""
    monkeypatch.setenv("COLLAPSEBENCH_WEIGHTS_INCEPTION_V3", str(tmp_path / "absent.pth"))
    monkeypatch.setattr(console, "width", 400)  # a row per line: no folded cells
    result = invoke("weights")
    assert result.exit_code == 0
    assert re.search(r"digits-cnn digits_cnn\.pt [0-9a-f]{8}.* ok: ", result.output), result.output
    assert "missing (or set $COLLAPSEBENCH_WEIGHTS_INCEPTION_V3)" in result.output
    assert "recorded per run" in result.output  # the DINOv2 files: no pinned hash
    (tmp_path / "absent.pth").write_bytes(b"not the weights")
    assert "wrong file" in invoke("weights").output


def test_sweep_dry_run_lists_cells_and_a_bad_config_is_a_usage_error(tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(
        'envs = "Gaussian-mix-v0"\nseeds = "0-1"\ngenerations = 2\n'
        '[[agents]]\npolicy = "lambda-mix"\nparams = { lam = [0.5, 1.0] }\n'
    )
    store = str(tmp_path / "r.sqlite")
    listed = invoke("sweep", str(config), "--store", store, "--dry-run")
    assert listed.exit_code == 0 and "4 cells" in listed.output and listed.output.count("0/3") == 4
    ran = invoke("sweep", str(config), "--store", store, "--backend", "inline", "--no-progress")
    assert ran.exit_code == 0 and "4 cells: 0 already done, 4 run, 0 failed" in ran.output
    assert invoke("sweep", str(config), "--store", store, "--dry-run").output.count("3/3") == 4

    config.write_text('envs = "Gaussian-mix-v0"\n[[agents]]\npolicy = "lambda-mix"\nparams = { lamb = 1 }\n')
    bad = invoke("sweep", str(config), "--store", store, "--backend", "inline")
    assert bad.exit_code == 2 and "lamb" in bad.output
    assert invoke("sweep", str(tmp_path / "none.toml")).exit_code == 2
    elsewhere = tmp_path / "untouched.sqlite"
    unknown = invoke("sweep", str(config), "--store", str(elsewhere), "--backend", "dask")
    assert unknown.exit_code == 2 and "--backend" in unknown.output
    assert "unknown back-end 'dask'; registered: inline, local, ray" in unknown.output
    assert not elsewhere.exists()  # refused before the store was opened
    for option, value in (
        ("--workers", "0"),
        ("--chunk-seconds", "-1"),
        ("--max-retries", "-1"),
        ("--snapshots", "-1"),
    ):
        refused = invoke("sweep", str(config), "--store", str(elsewhere), option, value)
        assert refused.exit_code == 2 and f"Invalid value for '{option}'" in refused.output
    assert not elsewhere.exists()


def test_the_progress_bar_counts_the_generations_still_to_run(tmp_path):
    """A run's bar counts every generation of every seed, 0 to T; a sweep's, only the lineages and
    generations not already in the store. Each ends full, left standing above the summary."""
    store = str(tmp_path / "r.sqlite")
    tiny = ["--generations", "2", "--env-param", "n_test=10", "--env-param", "n_eval=10", "--store", store]
    ran = invoke("run", "Gaussian-mix-v0", "--policy", "real-only", "--seeds", "0,1", *tiny)
    assert ran.exit_code == 0, ran.output
    assert re.search(r"Gaussian-mix-v0 · real-only\b.* 6/6 ", ran.output), ran.output
    config = tmp_path / "grid.toml"
    config.write_text(
        'envs = "Gaussian-mix-v0"\nseeds = "0-2"\ngenerations = 2\n'
        'env_params = { n_test = 10, n_eval = 10 }\n[[agents]]\npolicy = "real-only"\n'
    )
    swept = invoke("sweep", str(config), "--store", store, "--backend", "inline")
    assert swept.exit_code == 0 and "3 cells: 2 already done, 1 run, 0 failed" in swept.output, swept.output
    assert re.search(r"sweep · 1 lineage on inline\b.* 3/3 ", swept.output), swept.output


def test_plot_exact_dashes_the_expectation_of_runs_the_fast_path_covers(tmp_path, monkeypatch):
    store = str(tmp_path / "r.sqlite")
    tiny = ["--seeds", "0", "--generations", "2", "--env-param", "n_test=10", "--env-param", "n_eval=10"]

    def run(env_id: str, policy: str) -> None:
        assert (
            invoke("run", env_id, "--policy", policy, "--store", store, "--no-progress", *tiny).exit_code == 0
        )

    def plot(*options: str) -> Result:
        return invoke("plot", "--store", store, "--exact", "--out", str(tmp_path / "c.png"), *options)

    run("GMM2D-mix-v0", "real-only")
    result = plot()
    assert result.exit_code != 0 and "no plotted run has an exact path" in result.output
    assert "there is one for the gaussian model and full-synthetic on Gaussian-replace" in result.output

    run("Gaussian-mix-v0", "real-only")
    drawn = []
    monkeypatch.setattr(plotting, "plot_curves", lambda *args, **kwargs: drawn.append(kwargs["expected"]))
    assert plot().exit_code == 0
    (expected,) = drawn
    assert set(expected["env_id"]) == {"Gaussian-mix-v0"} and set(expected["policy"]) == {"real-only"}
    assert list(expected["generation"]) == [0, 1, 2] and set(expected["metric"]) == {"std_ratio"}

    result = plot("--metric", "fd")
    assert result.exit_code != 0 and "plot it too" in result.output
    result = plot("--samples")
    assert result.exit_code != 0 and "not on --samples" in result.output


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_during_run_or_demo_says_what_is_kept_and_exits_130(tmp_path, monkeypatch, image_data):
    monkeypatch.setattr(cb, "evaluate", _interrupt)
    store = str(tmp_path / "r.sqlite")
    result = invoke(
        "run", "Gaussian-mix-v0", "--policy", "real-only", "--data-dir", str(tmp_path), "--store", store
    )
    assert result.exit_code == 130
    assert "every generation committed so far is kept; rerun the same command to resume" in result.output
    assert os.environ[DATA_ENV_VAR] == str(image_data)  # restored on the way out too
    monkeypatch.setattr(demo_module, "run_demo", _interrupt)
    result = invoke("demo", "--quick", "--out", str(tmp_path), "--no-progress")
    assert result.exit_code == 130 and "rerun the same command to resume" in result.output


class _FailsAtGenerationOne(CurationPolicy):
    def __call__(self, obs):
        if obs["generation"] >= 1:
            raise RuntimeError("a bug in the policy [/x]")  # brackets: text, not markup
        return obs["valid"].astype(float)


def test_a_sweep_with_failed_cells_lists_them_and_says_how_to_resume(tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(
        'envs = "Gaussian-mix-v0"\nseeds = "0-1"\ngenerations = 2\n'
        '[[agents]]\npolicy = "fails-test"\n[[agents]]\npolicy = "real-only"\n'
    )
    POLICIES.register("fails-test")(_FailsAtGenerationOne)
    try:
        result = invoke("sweep", str(config), "--store", str(tmp_path / "r.sqlite"), "--backend", "inline",
                        "--no-progress")  # fmt: skip
    finally:
        POLICIES.unregister("fails-test")
    assert result.exit_code == 1, result.output
    assert "4 cells: 0 already done, 2 run, 2 failed" in result.output
    assert result.output.count("failed Gaussian-mix-v0 fails-test seed") == 2
    assert "RuntimeError: a bug in the policy [/x]" in result.output
    assert "rerun the same command to resume the 2 failed cell(s)" in result.output
