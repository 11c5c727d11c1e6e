"""Reference curation policies and models. Importing registers them by name."""

from collapsebench.baselines import curation, diffusion, flows, models, policies, rewards

__all__ = ["curation", "diffusion", "flows", "models", "policies", "rewards"]
