from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import collapsebench as cb
from collapsebench import registration
from collapsebench.cli import app
from collapsebench.registry import Registry

from conftest import HALF_WEIGHT_PLUGIN, write_plugin


def test_registering_an_env_id_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        cb.register_env("Gaussian-mix-v0", "collapsebench.envs.gaussian:GaussianEnv", {"generations": 3})


def test_env_ids_must_carry_a_version():
    with pytest.raises(ValueError, match="version is required"):
        cb.register_env("Gaussian-unversioned", "collapsebench.envs.gaussian:GaussianEnv", {"generations": 3})


@pytest.fixture
def catalog_restored() -> Iterator[None]:
    """Leaves the env catalog (ours and gymnasium's) as it was: envs have no public unregister, and an
    env a test adds would otherwise show in every later test's listing."""
    saved = {table: dict(getattr(registration, table)) for table in ("_SPECS", "_DOCS", "_REGISTERED_IN")}
    saved_gym = dict(gym.registry)
    yield
    for table, entries in saved.items():
        getattr(registration, table).clear()
        getattr(registration, table).update(entries)
    gym.registry.clear()
    gym.registry.update(saved_gym)


def test_a_new_env_version_registers_in_both_registries(catalog_restored: None):
    cb.register_env(
        "TestWide-mix-v1", "collapsebench.envs.gaussian:GaussianEnv", {"generations": 2, "std": 3.0}
    )
    assert "TestWide-mix-v1" in cb.list_envs()
    env = gym.make("collapsebench/TestWide-mix-v1")
    assert env.unwrapped.real_data.cov[0, 0] == 9.0
    # `collapsebench list` shows it with what its spec leaves to the class: the model, n_real.
    listed = CliRunner().invoke(app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"TestWide-mix-v1\s*│\s*gaussian\s*│\s*100\s*│\s*2\s*│\s*fd", listed.output), (
        listed.output
    )


def test_unknown_names_say_what_exists():
    with pytest.raises(KeyError, match="did you mean Gaussian-mix-v0"):
        cb.make("Gausian-mix-v0")
    with pytest.raises(KeyError, match=r"registered: .*lambda-mix"):
        cb.make_policy("lambda-mixx")
    with pytest.raises(KeyError, match=r"registered: .*gaussian"):
        cb.make_model("no-such-model")


def test_duplicate_policy_and_model_names_are_errors():
    with pytest.raises(ValueError, match="already registered"):

        @cb.register_policy("lambda-mix")
        class Again(cb.CurationPolicy):
            def __call__(self, obs):
                return obs["valid"]

    with pytest.raises(ValueError, match="already registered"):
        cb.register_model("gaussian")(type("Again", (), {}))


def test_only_policies_and_models_can_be_registered_as_such():
    """A function registered as a policy used to fail only at make_policy, as a missing argument."""
    with pytest.raises(TypeError, match=r"policy 'function-test': register a subclass of .*CurationPolicy"):
        cb.register_policy("function-test")(lambda obs: obs["valid"])
    with pytest.raises(
        TypeError, match=r"model 'plain-class-test': register a subclass of .*GenerativeModel"
    ):
        cb.register_model("plain-class-test")(type("Plain", (), {}))
    assert "function-test" not in cb.list_policies() and "plain-class-test" not in cb.list_models()
    registry: Registry[object] = Registry("thing")
    with pytest.raises(TypeError, match="thing 'x': register a class or a function, got 3"):
        registry.register("x")(3)
    assert "x" not in registry


def test_bad_constructor_arguments_name_the_component():
    message = (
        "cannot build policy 'lambda-mix' with {'lamda': 0.5}: no parameter 'lamda' (did you mean 'lam'?); "
        "its parameters: lam"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        cb.make_policy("lambda-mix", lamda=0.5)
    with pytest.raises(ValueError, match="lam must be"):
        cb.make_policy("lambda-mix", lam=-1)
    # Through an env: the model's own message, without gymnasium's dump of every keyword (the
    # keywords adjust the spec's model settings, so its n_components is there too).
    with pytest.raises(TypeError) as refusal:
        cb.make("GMM2D-mix-v0", model_kwargs={"n_component": 3})
    assert str(refusal.value).startswith(
        "cannot build model 'gmm' with {'n_components': 8, 'n_component': 3}: no parameter 'n_component' "
        "(did you mean 'n_components'?)"
    )
    assert "environment creator" not in str(refusal.value)
    with pytest.raises(TypeError, match=re.escape("no parameter 'keep'; its parameters: none")):
        cb.make_policy("real-only", keep=1)


def test_a_misspelt_parameter_of_a_base_class_gets_the_nearest_name():
    """A subclass that passes ``**kwargs`` on to its base (the flows, the image models) takes the
    base's parameters as its own: a misspelt one gets a hint among all of them."""

    class Base:
        def __init__(self, lr: float = 1e-3, steps: int = 10) -> None:
            self.lr, self.steps = lr, steps

    class Child(Base):
        def __init__(self, hidden: int = 8, **kwargs: object) -> None:
            super().__init__(**kwargs)  # type: ignore[arg-type]

    registry: Registry[object] = Registry("thing")
    registry.register("child")(Child)
    registry.register("open")(lambda **kwargs: Base(**kwargs))  # a function taking any keyword
    with pytest.raises(TypeError) as refusal:
        registry.make("child", lrr=0.1)
    assert str(refusal.value) == (
        "cannot build thing 'child' with {'lrr': 0.1}: no parameter 'lrr' (did you mean 'lr'?); "
        "its parameters: hidden, lr, steps"
    )
    assert registry.make("child", steps=3, hidden=2).steps == 3  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="unexpected keyword argument"):  # no list to offer
        registry.make("open", x=1, y=2)
    with pytest.raises(TypeError, match=re.escape("(did you mean 'lr'?); its parameters: bins, tail_bound")):
        cb.make_model("spline-flow", lrr=0.1)  # a real one: the flows' shared settings count


def test_registry_iterates_sorted_and_unregisters():
    registry: Registry[object] = Registry("thing")
    registry.register("b")(type("B", (), {}))
    registry.register("a")(type("A", (), {}))
    assert list(registry) == ["a", "b"] and len(registry) == 2
    registry.unregister("a")
    assert "a" not in registry


def test_a_plugin_package_registers_its_names_and_a_broken_one_is_named(tmp_path):
    """Packages extend the suite through the ``collapsebench.plugins`` entry points, loaded when
    collapsebench is imported; one that fails to load stops the import with its name and error."""
    names = "import collapsebench as cb; print(cb.list_policies())"
    without = subprocess.run([sys.executable, "-c", names], capture_output=True, text=True, check=True)
    assert "half-weight-synthetic" not in without.stdout
    plugged = write_plugin(tmp_path / "good", "half_weight_plugin", HALF_WEIGHT_PLUGIN)
    listed = subprocess.run([sys.executable, "-c", names], env=plugged, capture_output=True, text=True)
    assert "'half-weight-synthetic'" in listed.stdout, listed.stderr

    broken = write_plugin(tmp_path / "broken", "broken_plugin", "raise RuntimeError('no weights file')\n")
    failed = subprocess.run([sys.executable, "-c", names], env=broken, capture_output=True, text=True)
    assert failed.returncode == 1
    assert "plugin 'broken_plugin' (broken_plugin, declared by broken_plugin)" in failed.stderr
    assert "RuntimeError: no weights file" in failed.stderr


def test_a_module_of_ones_own_is_imported_by_the_command_and_by_its_workers(tmp_path):
    """``collapsebench --import MODULE``: a policy in a file of the current folder, no packaging;
    the sweep's worker processes see it too, as does any process given $COLLAPSEBENCH_IMPORTS."""
    (tmp_path / "my_policies.py").write_text(HALF_WEIGHT_PLUGIN)
    command = [str(Path(sys.executable).parent / "collapsebench"), "--import", "my_policies"]
    tiny = ["--store", "s.sqlite", "--no-progress"]
    env = {key: value for key, value in os.environ.items() if key != "COLLAPSEBENCH_IMPORTS"}

    def shell(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(arguments, cwd=tmp_path, env=env, capture_output=True, text=True)

    ran = shell(*command, "run", "Gaussian-mix-v0", "--policy", "half-weight-synthetic", "--seeds", "0",
                "--generations", "1", *tiny)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (tmp_path / "grid.toml").write_text(
        'envs = "Gaussian-mix-v0"\nseeds = "1-2"\ngenerations = 1\n'
        '[[agents]]\npolicy = "half-weight-synthetic"\n'
    )
    swept = shell(*command, "sweep", "grid.toml", "--workers", "2", *tiny)
    assert swept.returncode == 0 and "2 run, 0 failed" in swept.stdout, swept.stdout + swept.stderr

    names = "import collapsebench as cb; print(cb.list_policies())"
    env.update(COLLAPSEBENCH_IMPORTS="my_policies", PYTHONPATH=str(tmp_path))
    assert "'half-weight-synthetic'" in shell(sys.executable, "-c", names).stdout
    env["COLLAPSEBENCH_IMPORTS"] = "no_such_module"
    failed = shell(sys.executable, "-c", names)
    assert failed.returncode == 1
    assert "'no_such_module' named in $COLLAPSEBENCH_IMPORTS failed to import" in failed.stderr
    del env["COLLAPSEBENCH_IMPORTS"]
    missing = shell(command[0], "--import", "no_such_module", "list")
    assert missing.returncode == 2 and "--import" in missing.stderr + missing.stdout


def test_model_kwargs_adjust_the_spec_models_settings():
    """As ``--model-param`` and a sweep's ``model_params`` do: a sampling temperature on a flow world
    keeps the world's training budget; None asks for the model's own defaults; for another model the
    keywords are its whole settings."""
    spec_settings = cb.default_settings("Moons-mix-v0")["model_kwargs"]
    tempered = cb.make("Moons-mix-v0", model_kwargs={"temperature": 0.8}).unwrapped.model_params
    assert tempered == {**cb.make_model("spline-flow", **spec_settings).params, "temperature": 0.8}
    assert (
        tempered["initial_steps"]
        == spec_settings["initial_steps"]
        != cb.make_model("spline-flow").initial_steps
    )
    own = cb.make("Moons-mix-v0", model_kwargs=None).unwrapped.model_params
    assert own == cb.make_model("spline-flow").recorded_params
    kde = cb.make("Moons-mix-v0", model="kde", model_kwargs={"bandwidth": 0.3}).unwrapped.model_params
    assert kde == {"bandwidth": 0.3}
    assert cb.make("Moons-mix-v0", model="kde").unwrapped.model_params == {"bandwidth": "scott"}
