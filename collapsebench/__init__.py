"""collapsebench: a benchmark suite for model collapse.

import collapsebench as cb
env = cb.make("Gaussian-mix-v0")
policy = cb.make_policy("lambda-mix", lam=0.5)
"""

import os
from importlib import import_module
from importlib.metadata import entry_points

from collapsebench.env import CollapseEnv
from collapsebench.models import GenerativeModel, WeightedData, make_model, register_model
from collapsebench.policies import CurationPolicy, PoolView, compose, make_policy, register_policy
from collapsebench.pool import EMPTY, REAL, Pool
from collapsebench.registration import default_settings, env_doc, list_envs, make, register_env, spec
from collapsebench.rewards import register_reward
from collapsebench.runner import evaluate
from collapsebench.scoring import register_metric

# ``cb.sweep`` is the function (the README's entry point), which also makes ``import
# collapsebench.sweep as m`` give the function: take the module's other names with ``from``.
from collapsebench.sweep import sweep

__version__ = "0.1.0"

# Modules of the user's to import with the catalog, comma-separated: a plugin without packaging.
# ``collapsebench --import MODULE`` sets it, so that the worker processes it starts import them too.
IMPORTS_ENV_VAR = "COLLAPSEBENCH_IMPORTS"


def named_imports() -> list[str]:
    """The modules ``$COLLAPSEBENCH_IMPORTS`` names, in order."""
    return [name.strip() for name in os.environ.get(IMPORTS_ENV_VAR, "").split(",") if name.strip()]


def list_policies() -> list[str]:
    from collapsebench.policies import POLICIES

    return list(POLICIES)


def list_models() -> list[str]:
    from collapsebench.models import MODELS

    return list(MODELS)


def _load_catalog() -> None:
    """Register the bundled envs and baselines, then any third-party plugin packages, then the
    modules named in ``$COLLAPSEBENCH_IMPORTS``.

    A plugin declares ``[project.entry-points."collapsebench.plugins"] name = "package.module"``;
    importing that module registers its envs, policies or models. Registration stores names only.
    A plugin that fails to load stops the import, naming it: skipping it would leave its names
    unregistered, and a run asking for one would blame the name instead of the plugin.
    """
    import_module("collapsebench.envs")
    import_module("collapsebench.baselines")
    for plugin in entry_points(group="collapsebench.plugins"):
        try:
            plugin.load()
        except Exception as error:
            raise ImportError(
                f"the collapsebench plugin {plugin.name!r} ({plugin.value}, declared by "
                f"{plugin.dist.name if plugin.dist else 'an unknown package'}) failed to load: "
                f"{type(error).__name__}: {error}"
            ) from error
    for module in named_imports():
        try:
            import_module(module)
        except Exception as error:
            raise ImportError(
                f"the module {module!r} named in ${IMPORTS_ENV_VAR} failed to import: "
                f"{type(error).__name__}: {error}"
            ) from error


_load_catalog()

__all__ = [
    "EMPTY",
    "REAL",
    "CollapseEnv",
    "CurationPolicy",
    "GenerativeModel",
    "Pool",
    "PoolView",
    "WeightedData",
    "compose",
    "default_settings",
    "env_doc",
    "evaluate",
    "list_envs",
    "list_models",
    "list_policies",
    "make",
    "make_model",
    "make_policy",
    "register_env",
    "register_metric",
    "register_model",
    "register_policy",
    "register_reward",
    "spec",
    "sweep",
]
