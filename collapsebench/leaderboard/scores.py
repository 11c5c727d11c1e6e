"""Leaderboard statistics: collapse scores per seed, and their aggregation over seeds.

Per run (one seed): the area under the headline metric's curve over generations 0..T (trapezoid,
divided by T: the curve's mean height), normalized with the track's reference areas so that its
collapsed reference (``full-synthetic``, or the baseline the track names) scores 0 and ``real-only`` 1:

    score = (A_collapsed − A) / (A_collapsed − A_real_only)

which needs no sign convention: it is 1 for the real-only curve and 0 for the collapsed one whether
the metric falls or rises with quality. Also the final generation's value, and the
generations until collapse: the first generation whose value crosses the track's threshold (T + 1
when it never does).

Over seeds: the interquartile mean (IQM) with a stratified bootstrap 95% confidence interval, and the
probability of improvement P(X > Y) of one agent over another (Agarwal et al., "Deep RL at the Edge of
the Statistical Precipice", 2021). Strata are tracks: the bootstrap resamples seeds within each
track, so an aggregate over tracks never trades one track's seeds for another's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import trim_mean

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0  # a board rebuilt from the same submissions shows the same intervals


def curve_area(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Mean height of each curve over generations (trapezoid / T); ``values`` shape (..., T + 1)."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[-1] < 2:
        raise ValueError("a curve needs at least two generations")
    return np.trapezoid(values, axis=-1) / (values.shape[-1] - 1)


def normalized_score(area: np.ndarray | float, collapsed_area: float, real_only_area: float) -> np.ndarray:
    span = collapsed_area - real_only_area
    if not np.isfinite(span) or span == 0:
        raise ValueError(
            f"the reference areas must differ (collapsed {collapsed_area}, real-only {real_only_area}): "
            "the track's headline metric does not separate the two baselines"
        )
    return (collapsed_area - np.asarray(area, dtype=np.float64)) / span


def generations_until_collapse(values: np.ndarray, threshold: float, higher_is_better: bool) -> np.ndarray:
    """First generation past ``threshold`` per curve (rows); T + 1 where none is."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    crossed = values < threshold if higher_is_better else values > threshold
    never = values.shape[1]
    return np.where(crossed.any(axis=1), crossed.argmax(axis=1), never)


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (scipy's 25% trimmed mean)."""
    return trim_mean(np.asarray(values, dtype=np.float64), 0.25, axis=axis)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% confidence interval."""

    value: float
    low: float
    high: float

    def format(self, digits: int = 3) -> str:
        def show(number: float) -> str:  # round-off around an exact 0 or 1 prints as 0 or 1
            return f"{round(number, 12) + 0.0:.{digits}g}"

        return f"{show(self.value)} [{show(self.low)}, {show(self.high)}]"


def stratified_iqm(
    scores: Mapping[str, np.ndarray], samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> Interval:
    """IQM of the scores of every stratum pooled, with a percentile 95% CI from a bootstrap that
    resamples seeds within each stratum (track)."""
    strata = [np.asarray(values, dtype=np.float64) for values in scores.values()]
    if not strata or any(len(values) == 0 for values in strata):
        raise ValueError("every stratum needs at least one score")
    rng = np.random.default_rng(seed)
    resampled = np.concatenate(
        [values[rng.integers(0, len(values), size=(samples, len(values)))] for values in strata], axis=1
    )
    estimates = iqm(resampled, axis=1)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return Interval(float(iqm(np.concatenate(strata))), float(low), float(high))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) for a score of X's and one of Y's drawn at random (ties count half): the
    Mann-Whitney statistic over the two sets of seeds."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    greater = (x[:, None] > y[None, :]).mean()
    ties = (x[:, None] == y[None, :]).mean()
    return float(greater + 0.5 * ties)
