"""Quantile matching: a draw's numeric columns land on their released marginals, keeping the
draw's ranks (and so its dependence) and its shape inside each bin."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nhssynth.calibration.quantile_matching import QuantileMap, fit_quantile_map, inverse_cdf


@given(st.lists(st.floats(0.0, 10.0), min_size=2, max_size=12), st.integers(0, 10_000))
@settings(max_examples=60, deadline=None)
def test_inverse_cdf_puts_each_bins_mass_inside_the_bin(weights, seed):
    p = np.asarray(weights)
    if p.sum() <= 0:
        p = np.ones_like(p)
    edges = np.cumsum(np.r_[0.0, np.random.default_rng(seed).uniform(0.1, 2.0, len(p))])
    u = (np.arange(20000) + 0.5) / 20000
    x = inverse_cdf(u, p, edges)
    assert np.all(np.diff(x) >= 0)  # monotone: ranks are kept
    got = np.histogram(x, bins=edges)[0] / len(x)
    np.testing.assert_allclose(got, p / p.sum(), atol=2e-4)


def test_inverse_cdf_follows_the_draw_inside_a_bin():
    # one bin [0, 10) whose draw is concentrated near 9: the matched values are too
    within = np.r_[np.full(10, 0.5), np.random.default_rng(0).uniform(8.5, 9.5, 990)]
    u = (np.arange(1000) + 0.5) / 1000
    x = inverse_cdf(u, np.array([1.0]), np.array([0.0, 10.0]), within=within)
    assert np.median(x) == pytest.approx(np.median(within), abs=0.05)
    # a bin with too few drawn values is filled evenly
    even = inverse_cdf(u, np.array([1.0]), np.array([0.0, 10.0]), within=np.array([9.0, 9.1]))
    assert np.median(even) == pytest.approx(5.0, abs=0.05)


def test_a_fitted_map_moves_a_column_onto_its_release_and_keeps_its_ranks():
    rng = np.random.default_rng(1)
    drawn = rng.normal(5.0, 3.0, 40_000)  # the generator: wrong centre, too wide
    edges = np.linspace(0.0, 10.0, 11)
    counts = np.array([1, 2, 4, 8, 20, 30, 20, 10, 4, 1], dtype=float)  # the release
    qmap = fit_quantile_map(drawn, edges, counts)
    x = rng.normal(5.0, 3.0, 20_000)
    mapped = qmap(x, rng)
    got = np.histogram(mapped, bins=edges)[0] / len(mapped)
    np.testing.assert_allclose(got, counts / counts.sum(), atol=0.01)
    order = np.argsort(x)
    assert np.all(np.diff(mapped[order]) >= -1e-9)  # ranks kept: dependence survives
    assert fit_quantile_map(np.array([np.nan]), edges, counts) is None
    assert fit_quantile_map(drawn, edges, np.zeros(10)) is None


def test_tied_generated_values_are_spread_over_the_probabilities_they_share():
    # the generator puts 40% of its values exactly on the upper bound (clipped); the release
    # says the top of the range holds 10%: the tied rows must spread, not land on one value
    rng = np.random.default_rng(2)
    drawn = np.where(rng.uniform(size=50000) < 0.4, 10.0, rng.uniform(0, 10, 50000))
    levels = np.linspace(0, 1, 2001)
    qmap = QuantileMap(source=np.quantile(drawn, levels), target=levels * 10.0)  # uniform 0-10
    mapped = qmap(drawn, rng)
    assert np.all(np.diff(qmap(np.sort(drawn[drawn < 10]), rng)) >= -1e-12)  # monotone off ties
    np.testing.assert_allclose(np.histogram(mapped, bins=10, range=(0, 10))[0] / len(mapped),
                               0.1, atol=0.01)
    tied = mapped[drawn == 10.0]
    assert tied.min() < 6.5 and np.ptp(tied) > 3.0  # spread over the top 40% of the target
