"""Curation policies that fight (or steer) collapse by choosing which synthetic items to train on.

Every filter here keeps all real items and decides about synthetic ones; combine a filter with a
mixing rule through ``cb.compose`` (``compose(filter, lambda-mix)`` mixes λ × the real mass of the
*kept* synthetic items).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from collapsebench.checks import integer, number_in
from collapsebench.models import SupportsLogProb, WeightedData, make_model
from collapsebench.policies import CurationPolicy, PoolView, register_policy
from collapsebench.rewards import Reward, item_rewards, make_reward


def _real_and_kept(pool: PoolView, kept_synthetic: np.ndarray) -> np.ndarray:
    weights = pool.uniform(pool.real)
    weights[np.flatnonzero(pool.synthetic)[kept_synthetic]] = 1.0
    return weights


def _require_real(pool: PoolView, policy: str) -> None:
    if not pool.real.any():
        raise ValueError(
            f"{policy} compares synthetic items with real ones, but this pool holds no real items "
            "(replace dynamics after generation 0): use a mix, accumulate or fresh env"
        )


@register_policy("filter-likelihood")
class FilterLikelihood(CurationPolicy):
    """Drop the fraction ``q`` of synthetic items least likely under a reference density fitted on the
    pool's real items (a registered model with a log-likelihood; default a Gaussian KDE). Keeps every
    real item. A likelihood filter in the spirit of the rejection/verification schemes of the
    self-consuming-loop literature: it removes samples from regions real data does not support."""

    def __init__(
        self, q: float = 0.2, reference: str = "kde", reference_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.q = number_in("q", q, "[0, 1)")
        self.reference, self.reference_kwargs = reference, dict(reference_kwargs or {})
        # Built once here so that a bad name or setting fails now; each call fits a fresh one.
        if not isinstance(make_model(reference, **self.reference_kwargs), SupportsLogProb):
            raise ValueError(f"reference model {reference!r} has no log-likelihood")

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        pool = PoolView(obs)
        if not pool.synthetic.any():
            return pool.uniform(pool.real)
        _require_real(pool, "filter-likelihood")
        density: Any = make_model(self.reference, **self.reference_kwargs)
        real = pool.vectors(pool.real)  # the reference densities are models of (n, d) data
        density.fit(WeightedData.uniform(real), self.rng_for(obs))
        log_density = density.log_prob(pool.vectors(pool.synthetic))
        return _real_and_kept(pool, log_density >= np.quantile(log_density, self.q))


@register_policy("filter-discriminator")
class FilterDiscriminator(CurationPolicy):
    """Keep the fraction ``keep`` of synthetic items a real-vs-synthetic classifier finds least
    detectable. The classifier (a small scikit-learn MLP) is trained on the pool itself and scores each
    item out of fold (2-fold cross-fitting), so no item is judged by a model that saw it."""

    def __init__(self, keep: float = 0.8, hidden: tuple[int, ...] = (32, 32), max_iter: int = 300) -> None:
        self.keep = number_in("keep", keep, "(0, 1]")
        self.hidden = tuple(integer("hidden", width, 1) for width in hidden)
        self.max_iter = integer("max_iter", max_iter, 1)

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pool = PoolView(obs)
        if not pool.synthetic.any():
            return pool.uniform(pool.real)
        _require_real(pool, "filter-discriminator")
        items = pool.real | pool.synthetic
        x = pool.vectors(items)
        is_synthetic = pool.synthetic[items].astype(int)
        seed = int(self.rng_for(obs).integers(2**31))
        classifier = make_pipeline(
            StandardScaler(), MLPClassifier(self.hidden, max_iter=self.max_iter, random_state=seed)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            folds = StratifiedKFold(2, shuffle=True, random_state=seed)
            p_synthetic = cross_val_predict(classifier, x, is_synthetic, cv=folds, method="predict_proba")[
                :, 1
            ]
        scores = p_synthetic[is_synthetic == 1]
        n_keep = max(1, round(self.keep * len(scores)))
        kept = np.zeros(len(scores), dtype=bool)
        kept[np.argsort(scores, kind="stable")[:n_keep]] = True
        return _real_and_kept(pool, kept)


@register_policy("curate-bt")
class CurateBradleyTerry(CurationPolicy):
    """Ferbach et al.'s curation: shuffle the synthetic items into groups of ``K``; from each group keep
    one, drawn with probability exp(β r(x)) / Σ exp(β r(x')) (Bradley-Terry for K = 2, Plackett-Luce
    above). Iterated, this maximizes the expected reward and shrinks variance. Real items are kept.

    ``reward`` is a registered reward name (``linear``, ``distance``) with ``reward_kwargs``, or any
    callable mapping an (n, ...) array to n rewards.
    """

    def __init__(
        self,
        K: int = 2,
        beta: float = 1.0,
        reward: Any = "linear",
        reward_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.K, self.beta = integer("K", K, 2), number_in("beta", beta, "(-inf, inf)")
        self._reward: Reward = make_reward(reward, **dict(reward_kwargs or {}))

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        pool = PoolView(obs)
        if not pool.synthetic.any():
            return pool.uniform(pool.real)
        rng = self.rng_for(obs)
        synthetic = np.flatnonzero(pool.synthetic)
        order = rng.permutation(len(synthetic))
        n_groups = len(order) // self.K  # a last incomplete group is left out
        groups = order[: n_groups * self.K].reshape(n_groups, self.K)
        rewards = self.beta * item_rewards(self._reward, pool.samples[synthetic], "synthetic items")[groups]
        probabilities = np.exp(rewards - rewards.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        chosen = (rng.random((n_groups, 1)) > np.cumsum(probabilities, axis=1)).sum(axis=1)
        kept = np.zeros(len(synthetic), dtype=bool)
        kept[groups[np.arange(n_groups), np.minimum(chosen, self.K - 1)]] = True
        return _real_and_kept(pool, kept)


@register_policy("dedup")
class Deduplicate(CurationPolicy):
    """Drop synthetic items within ``eps`` (Euclidean, in sample space) of an item already kept: real
    items first (all kept), then synthetic items oldest generation first. Removes copies of the
    training data and collapsed clusters of near-identical samples."""

    def __init__(self, eps: float = 0.01) -> None:
        self.eps = number_in("eps", eps, "(0, inf)")

    def __call__(self, obs: Mapping[str, Any]) -> np.ndarray:
        from scipy.spatial import cKDTree

        pool = PoolView(obs)
        weights = pool.uniform(pool.real)
        synthetic = np.flatnonzero(pool.synthetic)
        if not len(synthetic):
            return weights
        synthetic = synthetic[np.argsort(pool.origin[synthetic], kind="stable")]  # oldest first
        points = pool.vectors(synthetic)
        copies_real = np.zeros(len(points), dtype=bool)
        if pool.real.any():
            real = pool.vectors(pool.real)
            copies_real = cKDTree(real).query(points, distance_upper_bound=self.eps)[0] < self.eps
        neighbours = cKDTree(points).query_ball_point(points, r=self.eps)
        kept = np.zeros(len(points), dtype=bool)
        for position in range(len(points)):  # greedy in order: one pass over items and close pairs
            if copies_real[position]:
                continue
            if any(kept[other] for other in neighbours[position] if other < position):
                continue
            kept[position] = True
        weights[synthetic[kept]] = 1.0
        return weights
