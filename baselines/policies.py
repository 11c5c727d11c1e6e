"""Reference curation policies: the loops of the seed paper, Alemohammad et al. and Gerstgrasser et al.

Each returns weight 1 (or a fraction of it) on the items it trains on. At generation 0 the pool holds
only real data, and every policy trains the first model on it (θ₀ = A(D_real) in the seed paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from collapsebench.checks import synthetic_ratio
from collapsebench.policies import CurationPolicy, PoolView, register_policy


@register_policy("full-synthetic")
class FullSynthetic(CurationPolicy):
    """Train only on synthetic items (all of those in the pool); real data only at generation 0.

    With ``mix`` dynamics this is the fully synthetic loop of Alemohammad et al. (λ = ∞).
    """

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        pool = PoolView(obs)
        return pool.uniform(pool.synthetic if pool.synthetic.any() else pool.real)


@register_policy("real-only")
class RealOnly(CurationPolicy):
    """Train only on real items (λ = 0): the no-contamination reference."""

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        pool = PoolView(obs)
        return pool.uniform(pool.real)


@register_policy("lambda-mix")
class LambdaMix(CurationPolicy):
    """All real items plus synthetic items carrying λ × the real mass (Bertrand et al.'s λ).

    λ is the synthetic/real ratio of the seed paper's code: λ = 1 is a 50/50 mix, λ = 0 real only,
    λ = inf fully synthetic. Weights are rescaled so the largest is 1.
    """

    def __init__(self, lam: float = 1.0) -> None:
        self.lam = synthetic_ratio(lam)

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        pool = PoolView(obs)
        n_real, n_synthetic = int(pool.real.sum()), int(pool.synthetic.sum())
        if n_synthetic == 0 or self.lam == 0:
            return pool.uniform(pool.real)
        if n_real == 0 or np.isinf(self.lam):
            return pool.uniform(pool.synthetic)
        synthetic_weight = self.lam * n_real / n_synthetic  # per item, real items weigh 1
        weights = pool.uniform(pool.real) + synthetic_weight * pool.uniform(pool.synthetic)
        return weights / weights.max()


@register_policy("accumulate")
class AccumulateAll(CurationPolicy):
    """Uniform over every item in the pool (Gerstgrasser et al.'s accumulate, with that dynamics)."""

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        pool = PoolView(obs)
        return pool.uniform(pool.valid)


@register_policy("newest-only")
class NewestOnly(CurationPolicy):
    """Only the newest generation's samples (Gerstgrasser et al.'s replace, whatever the dynamics)."""

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        pool = PoolView(obs)
        return pool.uniform(pool.newest)
