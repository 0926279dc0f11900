"""Codes on released bins and values back (nhssynth.encoders.binning)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from nhssynth import Metadata
from nhssynth.encoders.binning import TableBins, coarse_cuts, mass_cuts, variance_cuts
from nhssynth.encoders.domain import release_domain
from nhssynth.privacy.accounting import zcdp_rho_for


def _frame(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "lab": np.round(rng.lognormal(1, 0.8, n), 1),
        "sex": pd.Categorical(rng.choice(["F", "M"], n), categories=["F", "M"]),
        "flag": rng.random(n) < 0.3,
        "ward": rng.choice(["A", "B", "C", None], n, p=[0.5, 0.3, 0.15, 0.05]),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
    })
    df.loc[rng.random(n) < 0.1, "lab"] = np.nan
    return df


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=80),
       st.integers(2, 20))
def test_cuts_are_increasing_interior_indices(counts, n_bins):
    counts = np.array(counts)
    edges = np.arange(counts.size + 1, dtype=float)
    for cuts in (mass_cuts(counts, n_bins), variance_cuts(edges[:-1] + 0.5, counts, n_bins),
                 coarse_cuts(edges, counts, n_bins)):
        assert np.all(np.diff(cuts) > 0)
        assert cuts.size == 0 or (cuts[0] > 0 and cuts[-1] < counts.size)


def test_variance_cuts_split_a_heavy_tail_that_equal_mass_cuts_lump_together():
    x = np.arange(64) + 0.5
    w = 1000 * np.exp(-x / 4)  # most mass in the first bins, a long thin tail
    assert (variance_cuts(x, w, 8) > 20).sum() > (mass_cuts(w, 8) > 20).sum()


def test_codes_decode_to_values_inside_their_bins_with_dtypes_missing_and_categories():
    df = _frame()
    md = Metadata.from_dataframe(df)
    domain = release_domain(df, md, rho=None)
    bins = TableBins.from_domain(domain, md, df, n_bins=8)
    codes = bins.encode(df)
    assert codes.shape == (len(df), len(bins.columns)) and codes.dtype == np.int64
    assert all(codes[:, j].max() < b.size for j, b in enumerate(bins.columns))
    back = bins.decode(codes, np.random.default_rng(0))
    assert list(back.columns) == list(df.columns)
    assert (back.dtypes == df.dtypes).all()
    # categories, booleans and missing values come back exactly
    for name in ("sex", "flag", "ward"):
        pd.testing.assert_series_equal(back[name], df[name], check_names=False)
    assert back["lab"].isna().equals(df["lab"].isna())
    # a numeric value comes back inside the coarse bin its row was in, on the column's grid
    j = bins.names.index("lab")
    edges = bins.columns[j].coarse_edges
    m = df["lab"].notna().to_numpy()
    code = codes[m, j]
    assert np.all(back["lab"][m] >= edges[code] - 0.05) and np.all(back["lab"][m] <= edges[code + 1] + 0.05)
    assert np.allclose(back["lab"][m], np.round(back["lab"][m], 1))
    assert np.array_equal(back["age"], np.round(back["age"]))
    assert back["when"].dt.normalize().equals(back["when"])  # whole days, as the data


def test_unreleased_categories_get_the_other_code():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"c": rng.choice(list("AB"), 3_000), "x": rng.normal(0, 1, 3_000)})
    df.loc[:4, "c"] = "rare"
    md = Metadata.from_dataframe(df)
    domain = release_domain(df, md, rho=0.4 * zcdp_rho_for(1.0, 1e-5), delta_threshold=1e-6,
                            rng=np.random.default_rng(0))
    bins = TableBins.from_domain(domain, md, df)
    col = bins.columns[bins.names.index("c")]
    assert col.labels == ["A", "B"] and col.other_code == 2
    codes = bins.encode(df)
    assert (codes[:5, 0] == 2).all() and (codes[5:, 0] < 2).all()


@pytest.mark.parametrize("n_bins", [4, 16])
def test_one_way_counts_sum_the_fine_histogram_onto_the_codes(n_bins):
    df = _frame(seed=1)
    md = Metadata.from_dataframe(df)
    domain = release_domain(df, md, rho=None)
    bins = TableBins.from_domain(domain, md, df, n_bins=n_bins)
    codes = bins.encode(df)
    for j, (cells, counts, sigma) in enumerate(bins.one_way(domain)):
        exact = np.bincount(codes[:, j], minlength=bins.columns[j].size)[cells]
        assert np.allclose(counts, exact), bins.names[j]
        assert sigma == 0.0


def test_dequantised_values_follow_the_released_fine_counts_within_each_code():
    """The vectorised de-quantisation draws each fine bin of a code with probability its
    released count over the code's total (never an empty bin), then a point inside it."""
    from nhssynth.encoders.binning import ColumnBins
    from nhssynth.metadata import ColumnMetadata
    edges = np.arange(0.0, 9.0)                     # 8 fine bins of width 1
    counts = np.array([10.0, 0.0, 30.0, 60.0, 5.0, -2.0, 5.0, 90.0])  # noisy: one negative
    col = ColumnBins(ColumnMetadata("x", "continuous", "float64"), fine_edges=edges,
                     fine_counts=counts, cuts=np.array([4]))      # codes: bins 0-3 and 4-7
    codes = np.repeat([0, 1], 100_000)
    x = col._dequantise(codes, np.random.default_rng(0))
    fine = np.floor(x).astype(int)
    assert np.all((fine[:100_000] <= 3)) and np.all(fine[100_000:] >= 4)
    share0 = np.bincount(fine[:100_000], minlength=8)[:4] / 100_000
    share1 = np.bincount(fine[100_000:], minlength=8)[4:] / 100_000
    assert share0 == pytest.approx([0.1, 0.0, 0.3, 0.6], abs=0.006)
    assert share1 == pytest.approx([0.05, 0.0, 0.05, 0.9], abs=0.006)
    # uniform inside a bin
    inside = x[fine == 7] - 7
    assert inside.min() >= 0 and inside.max() < 1 and abs(inside.mean() - 0.5) < 0.01
    integer = ColumnBins(ColumnMetadata("n", "integer", "int64"), fine_edges=np.array([0., 2., 4.]),
                         fine_counts=np.array([1.0, 3.0]), cuts=np.array([], dtype=int))
    v = integer._dequantise(np.zeros(40_000, dtype=int), np.random.default_rng(1))
    assert set(np.unique(v)) == {0.0, 1.0, 2.0, 3.0}
    assert np.mean(v >= 2) == pytest.approx(0.75, abs=0.01)


def test_a_shared_uniform_places_values_at_the_same_quantile_of_their_codes_same_law():
    """``u`` given: the value is that quantile of its code's released histogram, so the law is
    the one of independent draws, and two columns given the same ``u`` move together inside
    their codes (rank correlation 1 within a cell, 0 when drawn independently)."""
    from nhssynth.encoders.binning import ColumnBins
    from nhssynth.metadata import ColumnMetadata
    edges = np.arange(0.0, 9.0)
    counts = np.array([10.0, 0.0, 30.0, 60.0, 5.0, -2.0, 5.0, 90.0])
    col = ColumnBins(ColumnMetadata("x", "continuous", "float64"), fine_edges=edges,
                     fine_counts=counts, cuts=np.array([4]))
    codes = np.repeat([0, 1], 100_000)
    rng = np.random.default_rng(0)
    u = rng.random(codes.size)
    x = col._dequantise(codes, rng, u)
    fine = np.floor(x).astype(int)
    share0 = np.bincount(fine[:100_000], minlength=8)[:4] / 100_000
    assert share0 == pytest.approx([0.1, 0.0, 0.3, 0.6], abs=0.006)
    assert np.all(fine[100_000:] >= 4)
    inside = x[fine == 7] - 7
    assert inside.min() >= 0 and inside.max() < 1 and abs(inside.mean() - 0.5) < 0.01
    # monotone in u inside a code; another column given the same u follows it
    order = np.argsort(u[:100_000])
    assert np.all(np.diff(x[:100_000][order]) >= -1e-12)
    other = ColumnBins(ColumnMetadata("y", "continuous", "float64"), fine_edges=edges * 10,
                       fine_counts=np.ones(8), cuts=np.array([4]))
    y = other._dequantise(codes, rng, u)
    y_free = other._dequantise(codes, rng)
    same = pd.Series(x[:100_000]).corr(pd.Series(y[:100_000]), method="spearman")
    free = pd.Series(x[:100_000]).corr(pd.Series(y_free[:100_000]), method="spearman")
    assert same > 0.99 and abs(free) < 0.02
