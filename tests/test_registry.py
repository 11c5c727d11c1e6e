from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import pytest

import collapsebench as cb
from collapsebench.registry import Registry

from conftest import HALF_WEIGHT_PLUGIN, write_plugin


def test_registering_an_env_id_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        cb.register_env("Gaussian-mix-v0", "collapsebench.envs.gaussian:GaussianEnv", {"generations": 3})


def test_env_ids_must_carry_a_version():
    with pytest.raises(ValueError, match="version is required"):
        cb.register_env("Gaussian-unversioned", "collapsebench.envs.gaussian:GaussianEnv", {"generations": 3})


def test_a_new_env_version_registers_in_both_registries():
    cb.register_env(
        "TestWide-mix-v1", "collapsebench.envs.gaussian:GaussianEnv", {"generations": 2, "std": 3.0}
    )
    assert "TestWide-mix-v1" in cb.list_envs()
    env = gym.make("collapsebench/TestWide-mix-v1")
    assert env.unwrapped.real_data.cov[0, 0] == 9.0


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


def test_bad_constructor_arguments_name_the_component():
    with pytest.raises(TypeError, match="cannot build policy 'lambda-mix'"):
        cb.make_policy("lambda-mix", lamda=0.5)
    with pytest.raises(ValueError, match="lam must be"):
        cb.make_policy("lambda-mix", lam=-1)


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
