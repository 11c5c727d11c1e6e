"""Reference curation policies and models. Importing registers them by name."""

from collapsebench.baselines import curation, flows, models, policies, rewards

__all__ = ["curation", "flows", "models", "policies", "rewards"]
