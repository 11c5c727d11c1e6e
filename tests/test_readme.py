"""The README's examples are code that runs: they are executed here, with the results store in a
temporary folder, so the front page cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from collapsebench.envs.gaussian import c4
from collapsebench.models import MODELS
from collapsebench.policies import POLICIES
from collapsebench.scoring import METRICS

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_its_examples():
    assert len(python_blocks()) == 3


@pytest.mark.parametrize("index", [0, 1, 2])
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLAPSEBENCH_STORE", raising=False)
    namespace: dict = {}
    try:
        exec(compile(python_blocks()[index], f"README block {index}", "exec"), namespace)
    finally:
        for name in ("keep-real-and-newest",):
            if name in POLICIES:
                POLICIES.unregister(name)
        if "shrunk-gaussian" in MODELS:
            MODELS.unregister("shrunk-gaussian")
    if index == 0:
        assert (tmp_path / "results" / "collapsebench.sqlite").exists()
        assert set(namespace["df"]["seed"]) == set(range(20))
    elif index == 2:
        assert namespace["lineages"].std_ratio.shape == (1001, 10_000)
        assert abs(namespace["lineages"].std_ratio[-1].mean() - 1.0) < 0.05  # λ = 0.5: stable
        assert namespace["replace"].std_ratio.shape == (1001, 10_000)
        assert namespace["late"].generations.tolist() == [100, 1000]
        late = namespace["late"].std_ratio  # E[σ_t]/σ = c4(n)^(t+1), within 5 standard errors
        error = np.abs(late.mean(axis=1) - c4(100) ** np.array([101, 1001]))
        assert np.all(error < 5 * late.std(axis=1) / np.sqrt(late.shape[1]))
    else:
        env = namespace["env"]
        obs, _ = env.reset(seed=0)
        _, _, _, _, info = env.step(obs["valid"].astype(float))
        assert info["metrics"]["std_ratio"] < 0.97  # the shrink shows


def test_the_readme_sweep_config_expands_to_its_cells():
    import tomllib

    from collapsebench.sweep import cells_from_config

    (block,) = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    cells = cells_from_config(tomllib.loads(block), source="README")
    assert len(cells) == (5 + 1) * 10
    assert {cell.env_id for cell in cells} == {"Gaussian-mix-v0", "Gaussian-replace-v0"}


def test_the_readme_documents_every_metric_and_policy():
    """Each registered metric has a row in the metrics table, each policy one in the policies table."""
    text = README.read_text()
    first_cells = re.findall(r"^\|([^|]*)\|", text, flags=re.MULTILINE)
    rows = {name for cell in first_cells for name in re.findall(r"`([a-z_0-9-]+)`", cell)}
    for name in (*METRICS, *POLICIES):
        if not name.startswith("test-"):  # registered by other tests of this session
            assert name in rows, f"{name} has no row in the README"
