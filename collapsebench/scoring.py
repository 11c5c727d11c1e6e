"""Scoring one generation: named metrics over an ``Evaluation`` (the trained model, its samples, the
held-out real data). Metrics are registered functions; an env lists the ones it reports.

A metric returns a float, or None where it does not apply (``nll`` for a model without a density),
in which case its key is left out of ``info["metrics"]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from collapsebench.data import AnalyticDistribution
from collapsebench.metrics import (
    TailReference,
    frechet_distance,
    gaussian_statistics,
    memorization_fraction,
    mode_coverage,
    precision_recall_density_coverage,
    std_ratio,
    wasserstein2,
)
from collapsebench.models import GenerativeModel, SupportsCovariance, SupportsLogProb
from collapsebench.registry import Registry
from collapsebench.rewards import Reward, item_rewards

FeatureMap = Callable[[np.ndarray], np.ndarray]


def flatten_features(samples: np.ndarray) -> np.ndarray:
    """Identity features: each item flattened to a float64 vector."""
    return np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)


@dataclass(frozen=True)
class Evaluation:
    """Everything a metric may look at for one generation; expensive parts computed once, on demand."""

    model: GenerativeModel
    samples: np.ndarray  # (n_eval, *sample_shape) fresh samples of the trained model
    real_test: np.ndarray  # (n_test, *sample_shape) held-out real data
    real_test_features: np.ndarray  # (n_test, feature_dim), cached by the env for the episode
    real_statistics: tuple[np.ndarray, np.ndarray]  # their mean and covariance, also per episode
    reference_covariance: np.ndarray  # covariance of the real distribution in feature space
    synthetic_fraction: float  # weight mass on synthetic items in this generation's training set
    real_data: object = None  # the env's real-data source (analytic worlds: density, modes)
    train_samples: np.ndarray | None = None  # (n_train, *sample_shape) items this generation trained on
    features: FeatureMap = flatten_features
    identity_features: bool = True
    nearest_k: int = 3
    w2_exact_max_pairs: int = 4_000_000
    draw_seed: Callable[[], int] = int  # the metrics' random seed, drawn on first use (int() is 0)
    real_radii: np.ndarray | None = None  # k-NN radii of the real features, cached per episode
    sample_reward: Reward | None = None  # r(x) for the ``sample_reward`` metric, when the env has one
    real_tail: TailReference | None = None  # the real side of ``tail_mass``, cached per episode

    @cached_property
    def seed(self) -> int:
        """Seed for metrics that draw randomness (sliced W2's directions); most never ask for it."""
        return self.draw_seed()

    @cached_property
    def sample_features(self) -> np.ndarray:
        return self.features(self.samples)

    @cached_property
    def prdc(self) -> dict[str, float]:
        return precision_recall_density_coverage(
            self.real_test_features, self.sample_features, self.nearest_k, real_radii=self.real_radii
        )

    @cached_property
    def model_covariance(self) -> np.ndarray:
        # Exact moments when the model knows them and features are the samples themselves.
        if self.identity_features and isinstance(self.model, SupportsCovariance):
            return np.atleast_2d(self.model.covariance())
        return gaussian_statistics(self.sample_features)[1]


# The metric an env with a ``sample_reward`` adds to its metrics.
SAMPLE_REWARD_METRIC = "sample_reward"
# The metric that reads ``Evaluation.real_tail``: an env scoring it caches the real side.
TAIL_MASS_METRIC = "tail_mass"
# The metrics read from ``Evaluation.prdc``: an env scoring any of them caches the real k-NN radii.
PRDC_METRICS = frozenset({"precision", "recall", "density", "coverage"})

Metric = Callable[[Evaluation], float | None]
METRICS: Registry[float | None] = Registry("metric")

STANDARD_METRICS = (
    "fd",
    "precision",
    "recall",
    "density",
    "coverage",
    "w2",
    "nll",
    "std_ratio",
    "synthetic_fraction",
)


def register_metric(name: str) -> Callable[[Metric], Metric]:
    return METRICS.register(name)  # type: ignore[return-value]


def check_metric_names(names: Iterable[str]) -> None:
    """Raise a ValueError naming every unregistered metric among ``names``, and the registered ones."""
    unknown = [name for name in dict.fromkeys(names) if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; registered: {', '.join(METRICS)}")


def score(evaluation: Evaluation, names: tuple[str, ...]) -> dict[str, float]:
    """Compute the named metrics, leaving out those that do not apply."""
    values = {name: METRICS.get(name)(evaluation) for name in names}
    return {name: float(value) for name, value in values.items() if value is not None}


@register_metric("fd")
def _fd(evaluation: Evaluation) -> float:
    fake = gaussian_statistics(evaluation.sample_features)
    return frechet_distance(*fake, *evaluation.real_statistics)


@register_metric("precision")
def _precision(evaluation: Evaluation) -> float:
    return evaluation.prdc["precision"]


@register_metric("recall")
def _recall(evaluation: Evaluation) -> float:
    return evaluation.prdc["recall"]


@register_metric("density")
def _density(evaluation: Evaluation) -> float:
    return evaluation.prdc["density"]


@register_metric("coverage")
def _coverage(evaluation: Evaluation) -> float:
    return evaluation.prdc["coverage"]


@register_metric("w2")
def _w2(evaluation: Evaluation) -> float:
    return wasserstein2(
        evaluation.sample_features,
        evaluation.real_test_features,
        exact_max_pairs=evaluation.w2_exact_max_pairs,
        seed=evaluation.seed,
    )


@register_metric("nll")
def _nll(evaluation: Evaluation) -> float | None:
    if not isinstance(evaluation.model, SupportsLogProb):
        return None
    return float(-np.mean(evaluation.model.log_prob(evaluation.real_test)))


@register_metric("std_ratio")
def _std_ratio(evaluation: Evaluation) -> float:
    return std_ratio(evaluation.model_covariance, evaluation.reference_covariance)


@register_metric("synthetic_fraction")
def _synthetic_fraction(evaluation: Evaluation) -> float:
    return evaluation.synthetic_fraction


@register_metric(TAIL_MASS_METRIC)
def _tail_mass(evaluation: Evaluation) -> float:
    """Share of the model's samples in the real data's outer 5% (Mahalanobis distance, real
    mean and covariance) over the real share: 1 for tails as real, 0 once they vanish."""
    reference = evaluation.real_tail
    if reference is None:
        reference = TailReference.of(evaluation.real_test_features, statistics=evaluation.real_statistics)
    return reference.mass(evaluation.sample_features)


@register_metric("true_nll_samples")
def _true_nll_samples(evaluation: Evaluation) -> float | None:
    """−E log p_real(x) over the model's samples, where the real density is known: low when samples
    sit where real data is dense (it rewards shrinking onto modes, so read it beside recall)."""
    if not isinstance(evaluation.real_data, AnalyticDistribution):
        return None
    return float(-np.mean(evaluation.real_data.log_prob(evaluation.samples)))


@register_metric("mode_coverage")
def _mode_coverage(evaluation: Evaluation) -> float | None:
    modes = getattr(evaluation.real_data, "modes", None)
    if modes is None:
        return None
    return mode_coverage(evaluation.samples, modes, radius=3 * evaluation.real_data.mode_std)  # type: ignore[attr-defined]


@register_metric("memorization")
def _memorization(evaluation: Evaluation) -> float | None:
    if evaluation.train_samples is None:
        return None
    return memorization_fraction(evaluation.features(evaluation.train_samples), evaluation.sample_features)


@register_metric(SAMPLE_REWARD_METRIC)
def _sample_reward(evaluation: Evaluation) -> float | None:
    """Mean r(x) over the model's samples, under the env's ``sample_reward``."""
    if evaluation.sample_reward is None:
        return None
    return float(item_rewards(evaluation.sample_reward, evaluation.samples, "samples").mean())
