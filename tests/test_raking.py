"""DP marginals post-processing: projection of noisy counts, raking and weighted selection."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from nhssynth.calibration.raking import (inclusion_probabilities, pps_select, rake_factors,
                                         rake_select, rake_weights)
from nhssynth.privacy.mechanisms import project_counts


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=12), st.floats(0.5, 300))
def test_projection_is_the_closest_point_of_the_scaled_simplex(noisy, total):
    noisy = np.array(noisy)
    p = project_counts(noisy, total)
    assert p.min() >= 0 and p.sum() == pytest.approx(total, rel=1e-9)
    # KKT: one shift c with p = max(noisy - c, 0)
    pos = p > 0
    shifts = (noisy - p)[pos]
    assert np.ptp(shifts) < 1e-7 * max(1.0, abs(shifts).max())
    assert np.all(noisy[~pos] <= shifts[0] + 1e-7)


def test_projection_matches_a_numerical_optimiser():
    noisy = np.array([120.0, -30.0, 4.0, 55.0, 8.0, -2.0])
    total = 150.0
    res = minimize(lambda x: ((x - noisy) ** 2).sum(), np.full(6, total / 6), method="SLSQP",
                   bounds=[(0, None)] * 6, constraints=[{"type": "eq", "fun": lambda x: x.sum() - total}])
    np.testing.assert_allclose(project_counts(noisy, total), res.x, atol=1e-3)


def test_projection_zeroes_noise_only_bins_where_clipping_would_not():
    rng = np.random.default_rng(0)
    true = np.array([5000.0, 900.0] + [0.0] * 18)
    noisy = true + rng.normal(0, 100, size=true.size)
    clipped = np.clip(noisy, 0, None)
    projected = project_counts(noisy, true.sum())
    tv = lambda a: 0.5 * np.abs(a / a.sum() - true / true.sum()).sum()
    assert tv(projected) < tv(clipped) / 2


def test_inclusion_probabilities_cap_at_one_and_sum_to_n():
    w = np.array([100.0, 1, 1, 1, 1, 1, 0])
    pi = inclusion_probabilities(w, 3)
    assert pi[0] == 1.0 and pi[-1] == 0.0
    assert pi.sum() == pytest.approx(3.0)
    np.testing.assert_allclose(pi[1:6], 0.4)


def test_pps_select_draws_distinct_rows_with_the_stated_probabilities():
    rng = np.random.default_rng(1)
    w = rng.exponential(size=200) ** 2
    pi = inclusion_probabilities(w, 50)
    hits = np.zeros(200)
    for _ in range(4000):
        chosen = pps_select(w, 50, rng)
        assert len(chosen) == 50 and len(np.unique(chosen)) == 50
        hits[chosen] += 1
    # binomial standard error at 4000 draws is <= 0.008
    assert np.abs(hits / 4000 - pi).max() < 0.04


def test_pps_select_refuses_more_rows_than_positive_weights():
    with pytest.raises(ValueError, match="positive weight"):
        pps_select(np.array([1.0, 0.0, 0.0]), 2, np.random.default_rng(0))


def _two_columns(rng, n, p_a, p_b):
    """Keys of a draw in two margins (columns with 3 and 4 cells)."""
    return np.stack([rng.choice(3, size=n, p=p_a), rng.choice(4, size=n, p=p_b)], axis=1)


def test_raking_reaches_target_marginals_a_generator_misses_by_a_factor_of_five():
    rng = np.random.default_rng(2)
    keys = _two_columns(rng, 50_000, [0.9, 0.08, 0.02], [0.25, 0.25, 0.25, 0.25])
    targets = [np.array([0.5, 0.4, 0.1]), np.array([0.1, 0.2, 0.3, 0.4])]
    factors = rake_factors(keys, targets)
    # factors fitted on one draw reweight another draw from the same generator
    keys2 = _two_columns(rng, 50_000, [0.9, 0.08, 0.02], [0.25, 0.25, 0.25, 0.25])
    w = rake_weights(keys2, factors)
    for j, target in enumerate(targets):
        np.testing.assert_allclose(np.bincount(keys2[:, j], weights=w) / w.sum(), target, atol=0.01)
    keep = rake_select(keys, factors, 5_000, rng)
    assert len(np.unique(keep)) == 5_000
    for j, target in enumerate(targets):
        got = np.bincount(keys[keep, j], minlength=target.size) / len(keep)
        np.testing.assert_allclose(got, target, atol=0.02)


def test_rake_select_with_degenerate_factors_selects_uniformly_distinct_rows():
    rng = np.random.default_rng(6)
    keys = _two_columns(rng, 1_000, [0.5, 0.3, 0.2], [0.25] * 4)
    factors = [np.full(3, np.inf), np.ones(4)]
    keep = rake_select(keys, factors, 100, rng)
    assert len(np.unique(keep)) == 100
