"""Metrics against reference implementations (scipy, prdc, an assignment solver) and closed forms."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import prdc
import pytest
from scipy import linalg, stats
from scipy.optimize import linear_sum_assignment

from collapsebench.metrics import (
    TailReference,
    frechet_distance,
    frechet_distance_from_samples,
    gaussian_statistics,
    precision_recall_density_coverage,
    std_ratio,
    tail_mass,
    wasserstein2,
)


def _scipy_frechet(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


@pytest.mark.parametrize("d", [1, 2, 8, 64])
def test_frechet_matches_scipy_sqrtm(rng, d):
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        _scipy_frechet(mu1, s1, mu2, s2), rel=1e-8, abs=1e-10
    )


def test_frechet_closed_form_in_one_dimension():
    # For 1-D Gaussians FD = (μ1 − μ2)² + (σ1 − σ2)², the squared W2.
    assert frechet_distance(
        np.array([1.0]), np.array([[4.0]]), np.array([-0.5]), np.array([[0.25]])
    ) == pytest.approx(1.5**2 + 1.5**2)


def test_frechet_is_zero_on_identical_sets_and_symmetric(rng):
    x, y = rng.normal(size=(300, 5)), rng.normal(size=(200, 5)) * 2
    assert frechet_distance_from_samples(x, x) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance_from_samples(x, y) == pytest.approx(frechet_distance_from_samples(y, x))
    # FID's convention (pytorch-fid, torch-fidelity): the unbiased covariance of each set.
    statistics = [(z.mean(axis=0), np.cov(z, rowvar=False, ddof=1)) for z in (x, y)]
    assert frechet_distance_from_samples(x, y) == pytest.approx(
        _scipy_frechet(*statistics[0], *statistics[1])
    )


def _reference_prdc(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints its sizes
        return {key: float(value) for key, value in prdc.compute_prdc(real, fake, k).items()}


@pytest.mark.parametrize("method", ["tree", "dense"])
@pytest.mark.parametrize(("d", "k", "shift"), [(1, 3, 0.0), (2, 3, 0.5), (8, 5, 0.3), (20, 3, 1.0)])
def test_prdc_matches_the_reference_package(rng, method, d, k, shift):
    real = rng.normal(size=(400, d))
    fake = rng.normal(size=(350, d)) * 1.3 + shift
    ours, reference = (
        precision_recall_density_coverage(real, fake, k, method=method),
        _reference_prdc(real, fake, k),
    )
    # Every ball membership agrees, so the values are equal up to the float rounding of one mean.
    assert ours == pytest.approx(reference, rel=1e-14, abs=0)


@pytest.mark.parametrize("method", ["tree", "dense"])
def test_prdc_matches_the_reference_package_where_items_sit_on_ball_boundaries(rng, method):
    """Items on an integer lattice: many lie exactly at another's k-NN radius, and the definitions'
    strict inequalities decide. Both methods draw the line where the reference does."""
    real = rng.integers(0, 6, size=(300, 2)).astype(np.float64)
    fake = rng.integers(0, 6, size=(250, 2)).astype(np.float64) * 1.5
    ours = precision_recall_density_coverage(real, fake, 3, method=method)
    assert ours == pytest.approx(_reference_prdc(real, fake, 3), rel=1e-14, abs=0)


def test_prdc_sees_mode_collapse(rng):
    real = rng.normal(size=(500, 2))
    collapsed = rng.normal(size=(500, 2)) * 0.2  # all the mass in the centre of the real cloud
    values = precision_recall_density_coverage(real, collapsed, 3)
    assert values["precision"] > 0.95 and values["recall"] < 0.3 and values["coverage"] < 0.4


def test_prdc_rejects_bad_inputs(rng):
    with pytest.raises(ValueError, match="dimensions differ"):
        precision_recall_density_coverage(rng.normal(size=(10, 2)), rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="nearest_k"):
        precision_recall_density_coverage(rng.normal(size=(3, 2)), rng.normal(size=(10, 2)), 3)
    with pytest.raises(ValueError, match="method"):
        precision_recall_density_coverage(
            rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), 3, method="fast"
        )


@pytest.mark.parametrize("d", [2, 3, 5])
def test_exact_w2_matches_an_assignment_solver(rng, d):
    # With equal sizes and uniform weights, optimal transport is an optimal assignment.
    x, y = rng.normal(size=(120, d)), rng.normal(size=(120, d)) + 0.7
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    assert wasserstein2(x, y) == pytest.approx(np.sqrt(cost[rows, cols].mean()), rel=1e-9)


def test_one_dimensional_w2_is_the_quantile_coupling(rng):
    x, y = rng.normal(size=500), rng.normal(size=500) * 2 + 1
    expected = np.sqrt(np.mean((np.sort(x) - np.sort(y)) ** 2))
    assert wasserstein2(x[:, None], y[:, None]) == pytest.approx(expected, rel=1e-9)


def test_sliced_w2_is_used_beyond_the_exact_budget_and_bounds_it_from_below(rng):
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 1.0
    exact = wasserstein2(x, y)
    sliced = wasserstein2(x, y, exact_max_pairs=100, seed=1)
    assert 0 < sliced < exact
    # A pure translation by t: every 1-D projection moves by ⟨t, θ⟩, so SW2² = E⟨t, θ⟩² = |t|²/d.
    assert wasserstein2(x, x + 1.0, exact_max_pairs=100, n_projections=4000, seed=0) == pytest.approx(
        1.0, rel=0.05
    )


def test_std_ratio_closed_forms(rng):
    cov = _random_spd(rng, 6)
    assert std_ratio(cov * 0.25, cov) == pytest.approx(0.5)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert std_ratio(rotation @ cov @ rotation.T, cov) == pytest.approx(1.0)
    assert std_ratio(np.array([[0.81]]), np.array([[1.0]])) == pytest.approx(0.9)
    assert std_ratio(np.zeros((2, 2)), np.eye(2)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        std_ratio(np.eye(2), np.eye(3))


@pytest.mark.parametrize(("shift", "scale"), [(0.0, 0.8), (0.0, 1.0), (0.0, 1.5), (0.5, 1.0)])
def test_tail_mass_matches_the_gaussian_closed_form_in_one_dimension(rng, shift, scale):
    # Real N(0, 1): its outer 5% is |x| > z, z = Φ⁻¹(0.975); N(shift, scale²) puts P(|x| > z) there.
    real, fake = rng.normal(size=400_000), rng.normal(shift, scale, size=400_000)
    z = stats.norm.ppf(0.975)
    beyond = stats.norm.cdf((-z - shift) / scale) + stats.norm.sf((z - shift) / scale)
    assert tail_mass(real, fake) == pytest.approx(beyond / 0.05, rel=0.05)


@pytest.mark.parametrize("scale", [0.8, 1.3])
def test_tail_mass_matches_the_chi_square_closed_form_in_two_dimensions(rng, scale):
    # Whitened, real items have |x|² ~ χ²₂, whose 95% quantile is q = −2 ln 0.05; the fake items,
    # scale times wider on every axis, exceed it with probability exp(−q / 2scale²) = 0.05^(1/scale²).
    root = np.linalg.cholesky(_random_spd(rng, 2))
    real = rng.normal(size=(400_000, 2)) @ root.T + [3.0, -1.0]
    fake = scale * rng.normal(size=(400_000, 2)) @ root.T + [3.0, -1.0]
    assert tail_mass(real, fake) == pytest.approx(0.05 ** (1 / scale**2 - 1), rel=0.05)


def test_tail_mass_is_one_on_the_real_set_zero_when_collapsed_and_affine_invariant(rng):
    real, fake = rng.normal(size=(2000, 3)), rng.normal(0.2, 0.9, size=(1500, 3))
    assert tail_mass(real, real) == 1.0
    assert tail_mass(real, np.repeat(real.mean(axis=0, keepdims=True), 10, axis=0)) == 0.0
    transform, offset = _random_spd(rng, 3) + rng.normal(size=(3, 3)), rng.normal(size=3)
    assert tail_mass(real @ transform + offset, fake @ transform + offset) == pytest.approx(
        tail_mass(real, fake), rel=1e-12
    )
    # A tail of 20% holds more of a narrower model's items than a tail of 5% does, relatively.
    assert tail_mass(real, fake, tail=0.2) > tail_mass(real, fake, tail=0.05)


def test_tail_mass_is_relative_to_the_real_share_beyond_the_radius_when_values_tie():
    """Discrete items (pixels) tie at the tail radius: 3% of these lie strictly beyond the 95%
    quantile, not 5%. The real set still scores exactly 1 against itself, and a model whose items all
    lie out there scores 1 / 0.03."""
    counts = {-3: 15, -2: 50, -1: 200, 0: 470, 1: 200, 2: 50, 3: 15}
    real = np.repeat(list(counts), list(counts.values())).astype(np.float64)
    assert tail_mass(real, real) == 1.0
    assert tail_mass(real, np.array([-3.0, 3.0])) == pytest.approx(1 / 0.03)


def test_tail_mass_leaves_out_directions_in_which_the_real_items_do_not_vary(rng):
    # Like an always-blank pixel: a constant real feature, on which the model puts a little noise.
    real, fake = rng.normal(size=(1000, 2)), rng.normal(0.0, 1.2, size=(800, 2))
    blank_real = np.column_stack([real, np.full(len(real), 0.5)])
    blank_fake = np.column_stack([fake, 0.5 + 1e-3 * rng.normal(size=len(fake))])
    assert tail_mass(blank_real, blank_fake) == tail_mass(real, fake) > 1.0


def test_tail_mass_cached_reference_changes_no_bit(rng):
    real, fake = rng.normal(size=(1000, 4)), rng.normal(0.1, 0.9, size=(700, 4))
    reference = TailReference.of(real, statistics=gaussian_statistics(real))
    assert reference.mass(fake) == tail_mass(real, fake)
    assert reference.real_fraction == 50 / 1000


def test_tail_mass_rejects_bad_inputs(rng):
    real = rng.normal(size=(100, 2))
    for tail in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="tail must be a fraction in"):
            tail_mass(real, real, tail=tail)
    with pytest.raises(ValueError, match="items have 3 features, the real data 2"):
        tail_mass(real, rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match="at least one fake item"):
        tail_mass(real, real[:0])
    # Every real item equally far from the mean: no outer 5% to speak of.
    with pytest.raises(ValueError, match="no real item lies strictly beyond"):
        tail_mass(np.tile([-1.0, 1.0], 50), real[:, 0])


@pytest.mark.parametrize(("dim", "method"), [(2, "tree"), (2, "dense"), (16, "auto")])
def test_cached_real_radii_change_no_bit_of_prdc(dim, method):
    from collapsebench.metrics import knn_radii, precision_recall_density_coverage

    rng = np.random.default_rng(dim)
    real, fake = rng.normal(size=(300, dim)), rng.normal(0.2, 1.1, size=(250, dim))
    radii = knn_radii(real, 4, method=method)
    assert precision_recall_density_coverage(real, fake, 4, method, real_radii=radii) == (
        precision_recall_density_coverage(real, fake, 4, method)
    )
    with pytest.raises(ValueError, match="one radius per real item"):
        precision_recall_density_coverage(real, fake, 4, method, real_radii=radii[:-1])
