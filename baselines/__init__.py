"""Reference curation policies and models. Importing registers them by name."""

from collapsebench.baselines import models, policies

__all__ = ["models", "policies"]
