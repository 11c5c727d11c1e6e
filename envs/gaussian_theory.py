"""Closed forms for the Gaussian loops that keep real data (``Gaussian-mix-v0`` and
``Gaussian-fresh-v0`` with lambda-mix, ``Gaussian-accumulate-v0`` with accumulate): where they are
stable.

Each generation refits N(μ̂, σ̂²) to the n real items (the same every generation: mean μ̄, biased
variance v) and m items drawn from the last fit, the real group carrying mass R = 1/(1 + λ) and the
synthetic one S = λ/(1 + λ), uniform within each group. With d = μ̂_t − μ̄ + σ̂_t·Z/√m the offset of
the synthetic group's mean (Z standard normal), the weighted fit is

    μ̂_{t+1} − μ̄ = S·d,        σ̂²_{t+1} = c·(R·v + S·σ̂_t²·χ²_{m−1}/m + R·S·d²),

with c = 1/(1 − R²/n − S²/m) for the unbiased estimator (the weighted Bessel correction; 1 for the
biased). Taking expectations, the second moments x_t = (E[(μ̂_t − μ̄)²], E[σ̂_t²]), in units of σ²,
follow a linear recursion exactly:

    x_{t+1} = M·x_t + b,   M = [[S², S²/m], [c·R·S, c·S·((m − 1)/m + R/m)]],   b = (0, c·R·(n − 1)/n),

from x_0 = (0, E[σ̂_0²]), the real-only fit. Conditioned on a lineage's real items, E[σ̂_t²] is the
same curve scaled by v/E[v], since x_0 and b are both proportional to v.

So E[σ̂_t²] has a limit if and only if M's spectral radius is below 1, which fixes a critical λ* for
the unbiased estimator (≈ 2m + 1.5: 201.5 for n = m = 100). Beyond it the expected variance grows
geometrically (a few lineages whose mean wandered off inflate it), while the typical lineage still
settles; the fully synthetic loop (λ = ∞) keeps E[σ̂_t²] = σ² while the typical lineage collapses.
Bertrand et al. (2024) prove stability under the sufficient condition λ(1 + Lε/α) < 1, i.e. λ < 1 for
a perfect first model; for this model the second moment stays bounded up to λ*.

The fresh loop (``loop="fresh"``: a new real draw every generation, Alemohammad et al.'s fresh-data
loop) has the same M. With a = μ̄_t − μ the new draw's offset (independent of the past, E[a²] = σ²/n)
and its biased variance v_t, the fit is μ̂_{t+1} − μ = R·a + S·d and σ̂²_{t+1} = c·(R·v_t +
S·σ̂_t²·χ²_{m−1}/m + R·S·(a − d)²), with d now the synthetic mean's offset from μ; so, for
x_t = (E[(μ̂_t − μ)²], E[σ̂_t²]) (over real draws too, unconditionally),

    x_{t+1} = M·x_t + b_fresh,   b_fresh = (R²/n, c·R·((n − 1)/n + S/n)),   x_0 = (1/n, E[σ̂_0²]).

Fresh data therefore moves the limit a little (the real mean moves too) but not the threshold: λ* is
the same, since it is M's.

The accumulate loop's weights change every generation, so it has no fixed M; its moments still follow
an exact recursion of O(1) per generation (``accumulated_moments``), and stay bounded for every T.

Sampling bias: a model at temperature τ samples N(μ̂_t, τ²σ̂_t²), so the synthetic group carries τ²
times the fitted variance: in M, the column that multiplies E[σ̂_t²] gains a factor τ²
(d = μ̂_t − μ̄ + τ·σ̂_t·Z/√m). x_t stays the *fitted* moments; the functions that return a variance
ratio return the model's, τ²·E[σ̂_t²], which the env's ``std_ratio`` measures. The fully synthetic
loop then shrinks by τ² per generation on top of the estimator's factor, and the critical λ falls
with τ.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import brentq

from collapsebench.checks import integer, synthetic_ratio
from collapsebench.models import check_temperature

MIX_LOOPS = ("mix", "fresh")  # the λ-mix loops the recursion covers, by the fast path's names
_LARGEST_LAMBDA = 1e12  # the search range of ``critical_lambda``: beyond it the real mass is ≤ 1e-12


class MixMasses(NamedTuple):
    """Training mass of the real group and of the synthetic group, and the sum of squared item weights
    (what the weighted Bessel correction divides by 1 minus)."""

    real: float
    synthetic: float
    sum_squared_weights: float


def mix_masses(lam: float, n_real: int, n_synthetic: int) -> MixMasses:
    """Real mass R = 1/(1 + λ) (0 when λ = ∞), synthetic mass 1 − R, uniform within each group."""
    real = 0.0 if np.isinf(lam) else 1.0 / (1.0 + lam)
    synthetic = 1.0 - real
    return MixMasses(real, synthetic, real**2 / n_real + synthetic**2 / n_synthetic)


def check_world(lam: float, n_real: int, n_synthetic: int | None) -> tuple[int, int]:
    """(n, m) of a λ-mix world, or a ValueError naming what is wrong. Two items at least: a variance
    is fitted from each set."""
    synthetic_ratio(lam)
    n = integer("n_real", n_real, 2)
    return n, n if n_synthetic is None else integer("n_synthetic", n_synthetic, 2)


def second_moment_recursion(
    lam: float,
    n_real: int = 100,
    n_synthetic: int | None = None,
    unbiased: bool = True,
    loop: str = "mix",
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(M, b) of the module doc: x_{t+1} = M·x_t + b for x_t = (E[(μ̂_t − c)²], E[σ̂_t²]) / σ², with c
    the fixed real mean μ̄ on the ``"mix"`` loop and the true mean μ on the ``"fresh"`` loop, for a
    model sampling at ``temperature``."""
    fresh_real = _is_fresh(loop)
    n, m = check_world(lam, n_real, n_synthetic)
    spread = check_temperature(temperature) ** 2  # the sampled variance over the fitted one
    masses = mix_masses(lam, n, m)
    real, synthetic = masses.real, masses.synthetic
    bessel = 1.0 / (1.0 - masses.sum_squared_weights) if unbiased else 1.0
    step = np.array(
        [
            [synthetic**2, spread * synthetic**2 / m],
            [bessel * real * synthetic, spread * bessel * synthetic * ((m - 1) / m + real / m)],
        ]
    )
    if fresh_real:  # the new real mean's offset adds to the fit's mean and, through R·S·(a − d)², its spread
        return step, np.array([real**2 / n, bessel * real * ((n - 1) / n + synthetic / n)])
    return step, np.array([0.0, bessel * real * (n - 1) / n])


def expected_moments(
    lam: float,
    generations: int,
    n_real: int = 100,
    n_synthetic: int | None = None,
    unbiased: bool = True,
    loop: str = "mix",
    temperature: float = 1.0,
) -> np.ndarray:
    """x_t of the module doc at t = 0..``generations`` on the λ-mix ``loop``, exactly: an array of
    shape (generations + 1, 2) holding E[(μ̂_t − c)²]/σ² (c = μ̄ on ``"mix"``, μ on ``"fresh"``) and
    the fitted E[σ̂_t²]/σ², for a model sampling at ``temperature``."""
    generations = integer("generations", generations, 0)
    step, shift = second_moment_recursion(lam, n_real, n_synthetic, unbiased, loop, temperature)
    moments = np.empty((generations + 1, 2))
    # The real-only fit of generation 0: its mean is μ̄ itself, which is μ + N(0, σ²/n).
    moments[0] = (1.0 / n_real if _is_fresh(loop) else 0.0, _first_fit_variance(n_real, unbiased))
    for t in range(1, generations + 1):
        moments[t] = step @ moments[t - 1] + shift
    return moments


def expected_variance_ratio(
    lam: float,
    generations: int,
    n_real: int = 100,
    n_synthetic: int | None = None,
    unbiased: bool = True,
    loop: str = "mix",
    temperature: float = 1.0,
) -> np.ndarray:
    """The model's expected variance over σ², τ²·E[σ̂_t²]/σ², at t = 0..``generations`` on the λ-mix
    ``loop`` (``"mix"``: the same real items every generation; ``"fresh"``: a new real draw), exactly
    (over lineages and real sets); τ = ``temperature``."""
    moments = expected_moments(lam, generations, n_real, n_synthetic, unbiased, loop, temperature)
    return check_temperature(temperature) ** 2 * moments[:, 1]


def accumulated_moments(
    generations: int,
    n_real: int = 100,
    n_synthetic: int | None = None,
    unbiased: bool = True,
    temperature: float = 1.0,
) -> np.ndarray:
    """The accumulate loop's (E[(μ̂_t − μ̄)²], E[σ̂_t²]) / σ² at t = 0..``generations``, exactly: an
    array of shape (generations + 1, 2). Both stay bounded however long the loop runs (Gerstgrasser
    et al.), where replacing the data lets E[(μ̂_t − μ̄)²] grow as t/m.

    Generation t fits, with uniform weights, the n real items and the m items drawn from each fit
    before it. With e_s the offset of batch s's mean from μ̄ and S_t = e_0 + … + e_{t−1},
    μ̂_t − μ̄ = (m/N_t)·S_t for N_t = n + m·t items, and the pooled scatter is n·v + Σ m·w_s +
    m·Σ e_s² − N_t·(μ̂_t − μ̄)² (w_s batch s's biased variance). Since e_t = (μ̂_t − μ̄) + σ̂_t·Z_t/√m
    with Z_t independent of the past, A_t = E[S_t²] follows A_{t+1} = A_t·(1 + 2m/N_t) + E[e_t²], and
    running sums of E[σ̂_s²] and E[e_s²] give the scatter's expectation: O(1) per generation. As for
    the mix loop, conditioned on the real items both moments are these curves scaled by v/E[v]. At
    ``temperature`` τ, batch s is drawn with variance τ²·σ̂_s² (E[m·w_s] = (m − 1)·τ²·E[σ̂_s²]); the
    moments returned stay the fitted ones."""
    generations = integer("generations", generations, 0)
    n, m = check_world(0.0, n_real, n_synthetic)
    spread = check_temperature(temperature) ** 2
    moments = np.empty((generations + 1, 2))
    total_offset_square = 0.0  # A_t = E[S_t²]
    variance_sum = offset_square_sum = 0.0  # Σ_{s<t} E[σ̂_s²] and Σ_{s<t} E[e_s²]; all in units of σ²
    for t in range(generations + 1):
        items = n + m * t
        mean_error = (m / items) ** 2 * total_offset_square
        # E[n·v] = n − 1 and E[m·w_s] = (m − 1)·E[σ̂_s²]
        scatter = (n - 1) + (m - 1) * variance_sum + m * offset_square_sum - items * mean_error
        variance = scatter / (items - 1) if unbiased else scatter / items
        moments[t] = mean_error, variance
        offset_square = mean_error + spread * variance / m  # E[e_t²]
        total_offset_square += 2 * (m / items) * total_offset_square + offset_square
        variance_sum += spread * variance
        offset_square_sum += offset_square
    return moments


def stationary_variance_ratio(
    lam: float,
    n_real: int = 100,
    n_synthetic: int | None = None,
    unbiased: bool = True,
    loop: str = "mix",
    temperature: float = 1.0,
) -> float:
    """lim τ²·E[σ̂_t²]/σ² (the model's variance) as t → ∞ on the λ-mix ``loop`` (``"mix"`` or
    ``"fresh"``): inf beyond ``critical_lambda``; at λ = ∞ (the fully synthetic loop) 1 for the
    unbiased estimator at τ = 1, and 0 for the biased one or for τ < 1."""
    step, shift = second_moment_recursion(lam, n_real, n_synthetic, unbiased, loop, temperature)
    spread = check_temperature(temperature) ** 2
    if np.isinf(lam):  # M is triangular with E[σ̂²] its own eigenvector: c·τ²·(m − 1)/m per generation
        factor = step[1, 1]
        if np.isclose(factor, 1.0, rtol=1e-12, atol=0.0):
            return spread * _first_fit_variance(n_real, unbiased)
        return 0.0 if factor < 1.0 else float("inf")
    if _spectral_radius(step) >= 1.0:
        return float("inf")
    return spread * float(np.linalg.solve(np.eye(2) - step, shift)[1])


def critical_lambda(
    n_real: int = 100, n_synthetic: int | None = None, unbiased: bool = True, temperature: float = 1.0
) -> float:
    """The λ beyond which E[σ̂_t²] on the λ-mix loops (fixed or fresh real items: the same M) has no
    limit (inf if there is none: the biased estimator's is bounded for every finite λ), for a model
    sampling at ``temperature``."""
    n, m = check_world(0.0, n_real, n_synthetic)

    def excess(lam: float) -> float:
        step = second_moment_recursion(lam, n, m, unbiased, temperature=temperature)[0]
        return _spectral_radius(step) - 1.0

    if excess(_LARGEST_LAMBDA) < 0.0:
        return float("inf")
    return float(brentq(excess, 0.0, _LARGEST_LAMBDA, xtol=1e-9, rtol=1e-12))


def _first_fit_variance(n_real: int, unbiased: bool) -> float:
    """E[σ̂_0²]/σ²: generation 0's fit of the n real items alone."""
    return 1.0 if unbiased else (n_real - 1) / n_real


def _spectral_radius(matrix: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def _is_fresh(loop: str) -> bool:
    """Whether ``loop`` draws fresh real items each generation, or a ValueError naming the loops."""
    if loop not in MIX_LOOPS:
        hint = " (the accumulate loop's moments: accumulated_moments)" if loop == "accumulate" else ""
        raise ValueError(f"the λ-mix recursion covers the loops {MIX_LOOPS}, got {loop!r}{hint}")
    return loop == "fresh"
