"""Quantile matching: a draw's numeric columns land on their released marginals, keeping the
draw's ranks (and so its dependence) and its shape inside each bin."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nhssynth.base import OutputSpan
from nhssynth.calibration.marginals import ValueBins, column_bins
from nhssynth.calibration.quantile_matching import (QuantileMap, apply_quantile_maps,
                                               fit_quantile_maps, inverse_cdf)
from nhssynth.transformers import GMMEncoder


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


def test_matching_moves_a_column_onto_its_release_and_keeps_its_ranks():
    rng = np.random.default_rng(0)
    n = 20000
    real = np.r_[rng.normal(20, 3, n // 2), rng.normal(60, 5, n // 2)]
    enc = GMMEncoder(4, random_state=0, bounds=[(0.0, 100.0)]).fit(real.reshape(-1, 1))
    k = enc.n_modes_[0]
    spans = [OutputSpan("x", "continuous", 0, 1), OutputSpan("x", "softmax", 1, k, "mode")]
    vb = ValueBins(means=np.asarray(enc.means_[0]), stds=np.asarray(enc.stds_[0]),
                   weights=np.asarray(enc.weights_[0]), lo=0.0, hi=100.0,
                   cuts=np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]))
    target = np.bincount(vb.keys(np.argmax(enc.transform(real.reshape(-1, 1))[:, 1:], axis=1),
                                 enc.transform(real.reshape(-1, 1))[:, 0]), minlength=8) / n
    # a generator that got the shape wrong: everything between 30 and 50, plus a partner column
    # that depends on it
    drawn = rng.uniform(30, 50, n)
    Z = enc.transform(drawn.reshape(-1, 1))
    before = Z.copy()
    maps = fit_quantile_maps(Z, spans, [target], {"x": vb})
    out = apply_quantile_maps(Z, spans, maps, {"x": vb}, {"x": enc}, rng)
    assert out is Z and not np.array_equal(Z, before)
    keys, _, _ = column_bins(Z, spans, {"x": vb})
    np.testing.assert_allclose(np.bincount(keys[:, 0], minlength=8) / n, target, atol=2e-3)
    matched = enc.inverse_transform(Z)[:, 0]
    assert np.corrcoef(np.argsort(np.argsort(drawn)), np.argsort(np.argsort(matched)))[0, 1] > 0.999


def test_matching_leaves_missing_rows_and_other_columns_alone():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 3000)
    enc = GMMEncoder(3, random_state=0, bounds=[(0.0, 10.0)]).fit(x.reshape(-1, 1))
    k = enc.n_modes_[0]
    spans = [OutputSpan("x", "continuous", 0, 1), OutputSpan("x", "softmax", 1, k, "mode"),
             OutputSpan("x", "binary", 1 + k, 1, "missing"),
             OutputSpan("c", "softmax", 2 + k, 2, "category")]
    Z = np.zeros((3000, 4 + k))
    Z[:, :1 + k] = enc.transform(x.reshape(-1, 1))
    missing = rng.uniform(size=3000) < 0.3
    Z[:, 1 + k] = missing
    Z[np.arange(3000), 2 + k + rng.integers(0, 2, 3000)] = 1.0
    vb = ValueBins(means=np.asarray(enc.means_[0]), stds=np.asarray(enc.stds_[0]),
                   weights=np.asarray(enc.weights_[0]), lo=0.0, hi=10.0, cuts=np.array([5.0]))
    target = np.array([0.9, 0.1, 0.3])  # value bins (observed part) then "missing"
    before = Z.copy()
    maps = fit_quantile_maps(Z, spans, [target, np.array([0.5, 0.5])], {"x": vb})
    apply_quantile_maps(Z, spans, maps, {"x": vb}, {"x": enc}, rng)
    np.testing.assert_array_equal(Z[missing], before[missing])
    np.testing.assert_array_equal(Z[:, 1 + k:], before[:, 1 + k:])
    values = enc.inverse_transform(Z[~missing, :1 + k])[:, 0]
    assert np.mean(values < 5.0) == pytest.approx(0.9, abs=0.01)


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
