"""The domain release (nhssynth.encoders.domain): categories and ranges that keep the table,
nothing absurd, nothing rare, and an honest ledger."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from nhssynth import Metadata
from nhssynth.encoders.domain import CATEGORY_TARGET_ROWS, _trim_support, release_domain
from nhssynth.exceptions import PrivacyBudgetError, PrivacyWarning
from nhssynth.privacy.accounting import zcdp_rho, zcdp_rho_for
from nhssynth.privacy.mechanisms import coarse_counts, log_bin_edges, search_bounds

RHO_EPS1 = 0.4 * zcdp_rho_for(1.0, 1e-5)


def _table(n: int, rng) -> pd.DataFrame:
    """A clinical-looking table: a diagnosis with 10 values from 30% down to 1.5%, a sex column
    with 3% F, an age, a skewed lab value with a spike of zeros, a flag."""
    p = np.array([30, 20, 12, 10, 8, 6, 5, 4, 3.5, 1.5])
    diag = rng.choice([f"D{i:02d}" for i in range(10)], size=n, p=p / p.sum())
    return pd.DataFrame({
        "diagnosis": diag,
        "sex": np.where(rng.random(n) < 0.03, "F", "M"),
        "age": rng.integers(18, 95, n),
        "lab": np.where(rng.random(n) < 0.3, 0.0, np.round(rng.lognormal(3, 1, n), 1)),
        "flag": rng.random(n) < 0.2,
    })


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_category_the_target_asks_for_is_released_at_epsilon_1(seed):
    df = _table(10_000, np.random.default_rng(seed))
    md = Metadata.from_dataframe(df)
    dom = release_domain(df, md, rho=RHO_EPS1, delta_threshold=1e-6, rng=np.random.default_rng(seed))
    for name in ("diagnosis", "sex"):
        counts = df[name].value_counts()
        need = counts[(counts >= CATEGORY_TARGET_ROWS) & (counts >= 0.02 * len(df))].index
        assert set(need) <= set(dom[name].categories), name
    assert dom["sex"].categories == ["F", "M"]  # 3% F (300 rows) is kept, in public order


def test_category_thresholds_fall_with_a_larger_budget():
    """At eps=10 the categorical stage gets at least half an even share of the releases: a
    category of 80 rows in 10,000 (under the 2 % target) is released, where the target's
    threshold alone (~200 rows at any budget) dropped it; a value of one row still is not."""
    df = _table(10_000, np.random.default_rng(4))
    df.loc[:79, "diagnosis"] = "UNCOMMON"
    df.loc[80, "diagnosis"] = "RARE-ONE"
    md = Metadata.from_dataframe(df)
    rho10 = 0.3 * zcdp_rho_for(10.0, 1e-5)
    for seed in range(3):
        high = release_domain(df, md, rho=rho10, delta_threshold=1e-6, rng=np.random.default_rng(seed))
        assert "UNCOMMON" in high["diagnosis"].categories
        assert "RARE-ONE" not in high["diagnosis"].categories
    low = release_domain(df, md, rho=RHO_EPS1, delta_threshold=1e-6, rng=np.random.default_rng(0))
    assert "UNCOMMON" not in low["diagnosis"].categories
    assert high["diagnosis"].sigma < 0.25 * low["diagnosis"].sigma


def test_a_value_held_by_one_row_is_not_released():
    rng = np.random.default_rng(0)
    df = _table(5_000, rng)
    df.loc[7, "diagnosis"] = "RARE-ONE"
    md = Metadata.from_dataframe(df)
    for seed in range(20):
        dom = release_domain(df, md, rho=RHO_EPS1, delta_threshold=1e-6,
                             rng=np.random.default_rng(seed))
        assert "RARE-ONE" not in dom["diagnosis"].categories


def test_numeric_ranges_cover_the_data_and_the_zero_spike():
    df = _table(10_000, np.random.default_rng(3))
    md = Metadata.from_dataframe(df)
    dom = release_domain(df, md, rho=RHO_EPS1, delta_threshold=1e-6, rng=np.random.default_rng(3))
    age, lab = dom["age"], dom["lab"]
    assert age.bounds[0] <= 18 and age.bounds[1] >= 94
    assert age.bounds[1] <= 256  # a power-of-two range, never six orders of magnitude off
    assert lab.bounds[0] <= 0.0  # the zeros are part of the range, and so are the values above
    assert lab.bounds[1] >= np.quantile(df["lab"], 0.99)
    # the released histogram puts the zero spike in the lowest bins
    first = lab.value_counts[:2].sum() / lab.value_counts.sum()
    assert 0.2 < first < 0.45


def test_a_lone_noisy_bin_far_from_the_data_cannot_stretch_the_range():
    edges = log_bin_edges()
    values = np.random.default_rng(0).normal(50, 5, 2_000)
    counts = coarse_counts(values, edges)
    far = np.searchsorted(edges, 2.0 ** 40) - 1
    counts[far] += 120  # as if noise put 120 rows in [2^40, 2^41)
    lo, hi = search_bounds(counts, 20.0)
    assert edges[hi + 1] <= 256 and edges[lo] >= 16


def test_no_bin_clearing_the_noise_gives_a_wider_window_or_nothing():
    edges = log_bin_edges()
    values = np.random.default_rng(0).uniform(1, 1000, 60)  # 60 rows over 10 octaves
    counts = coarse_counts(values, edges)
    found = search_bounds(counts, 4.0)  # single octaves (~6 rows) do not clear 4 sigma x 4.4
    assert found is not None and edges[found[0]] >= 0.5 and edges[found[1] + 1] <= 2048
    assert search_bounds(np.zeros_like(counts), 4.0) is None


def test_a_column_that_cannot_be_released_is_withheld_with_a_warning_not_an_error():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"code": rng.choice(list("ABCDEFGHIJ"), 120), "x": rng.normal(50, 5, 120)})
    md = Metadata.from_dataframe(df)
    with pytest.warns(PrivacyWarning, match="code"):
        dom = release_domain(df, md, rho=0.05, delta_threshold=1e-6, rng=rng)
    assert dom["code"].withheld and "declare" in dom["code"].note.lower()
    assert dom.withheld == ["code"]


def test_spends_compose_to_the_budget_given():
    df = _table(3_000, np.random.default_rng(0))
    md = Metadata.from_dataframe(df)
    dom = release_domain(df, md, rho=RHO_EPS1, delta_threshold=1e-6, rng=np.random.default_rng(0))
    history = tuple(h for s in dom.spends for h in s["history"])
    assert zcdp_rho(history) == pytest.approx(RHO_EPS1, rel=1e-9)
    assert sum(s["delta_extra"] for s in dom.spends) == pytest.approx(1e-6)


def test_exact_mode_reads_the_data_and_says_so():
    df = _table(500, np.random.default_rng(0))
    md = Metadata.from_dataframe(df)
    dom = release_domain(df, md, rho=None)
    assert not dom.private and dom.spends == []
    assert dom["age"].bounds == (float(df["age"].min()), float(df["age"].max()))
    assert "diagnosis: category set" in dom.non_private_statistics
    assert dom["diagnosis"].counts.sum() == len(df)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(50, 6_000), scale=st.sampled_from([1e-3, 1.0, 50.0, 1e4, 1e7]),
       shift=st.sampled_from([0.0, 100.0, -500.0, 2e3]), eps=st.sampled_from([0.5, 1.0, 3.0, 10.0]),
       seed=st.integers(0, 2**16))
def test_released_support_is_never_absurd(n, scale, shift, eps, seed):
    """Whatever the table and budget, the 1st-99th percentiles of the histogram released for a
    numeric column stay within about an order of magnitude of the data (its range widened by
    the larger of that range and 32 times the values' magnitude), or the column is withheld:
    never 1e9 for values of 5.  (A near-constant column, 100.000-100.007, cannot be located
    privately to within its own range; a few dozen rows give little more than the power of
    two of their scale; a tail that thins out gradually can end a few octaves late.)"""
    rng = np.random.default_rng(seed)
    x = shift + scale * rng.lognormal(0, 1, n)
    df = pd.DataFrame({"x": x, "y": rng.normal(0, 1, n)})
    md = Metadata.from_dataframe(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        try:
            dom = release_domain(df, md, rho=0.4 * zcdp_rho_for(eps, 0.1 / n),
                                 delta_threshold=0.0, rng=np.random.default_rng(seed))
        except PrivacyBudgetError as exc:  # every column withheld: one clear error instead
            assert "'x'" in str(exc) and "epsilon" in str(exc)
            return
    c = dom["x"]
    if c.withheld:
        return
    # the 1st and 99th percentiles of the released histogram (what generators draw from)
    cdf = np.cumsum(c.value_counts) / c.value_counts.sum()
    lo = c.edges[int(np.searchsorted(cdf, 0.01))]
    hi = c.edges[int(np.searchsorted(cdf, 0.99)) + 1]
    width = max(x.max() - x.min(), 32 * np.abs(x).max())
    assert x.min() - width <= lo and hi <= x.max() + width


# Regressions from the robustness sweep (docs/robustness.md): the DP-VAE's released histograms
# on two real tables, as they reached _trim_support.  Both put noise mass next to the data,
# contiguous with it, that the capped end trimming kept.
def _support_after_trim(counts, occupied, tails, noise, edges):
    counts = np.array(counts, dtype=float)
    _trim_support(counts, np.array(occupied, dtype=bool), tails, noise, np.array(edges, dtype=float))
    kept = np.flatnonzero(counts > 0)
    return edges[kept[0]], edges[kept[-1] + 1]


def test_a_noisy_tail_octave_next_to_the_range_is_trimmed_whas500_sysbp():
    # sksurv.whas500 sysbp, 57-244 in 500 rows: 8 bins over [-0.5, 263.5] then one tail octave
    # [263.5, 527) that noise made clear its threshold; sampled up to 480 before
    edges = [-0.5, 32.5, 65.5, 98.5, 131.5, 164.5, 197.5, 230.5, 263.5, 527.0]
    counts = [0, 0, 0, 36.4, 69.4, 0, 0, 0, 43.6]
    occupied = [0, 0, 0, 1, 1, 0, 0, 0, 1]
    lo, hi = _support_after_trim(counts, occupied, (0, 1), 105.0, edges)
    assert hi <= 244 + (244 - 57) and lo >= 57 - (244 - 57)


def test_noise_bins_as_wide_as_the_data_either_side_are_trimmed_grunfeld_year():
    # statsmodels.grunfeld year, 1935-1954 in 220 rows: zoomed bins of 48 years, the data in one,
    # noise in both neighbours (1.3 and 0.6 noise standard deviations); sampled from 1860 before
    edges = [1859.5, 1907.5, 1955.5, 2003.5]
    lo, hi = _support_after_trim([48.4, 241.4, 20.9], [0, 1, 0], (0, 0), 74.6, edges)
    assert (lo, hi) == (1907.5, 1955.5)  # inside 1935-1954 widened by 32 years


def test_a_real_second_mode_far_from_the_core_is_kept():
    # the far-mass rule trims only what noise explains: half the rows far away stay
    edges = np.arange(0.0, 21.0)
    counts = np.zeros(20)
    counts[[1, 2]] = 250.0
    counts[18] = 500.0
    occupied = counts > 0
    lo, hi = _support_after_trim(counts, occupied, (0, 0), 40.0, edges)
    assert (lo, hi) == (1.0, 19.0)


def test_trimmed_far_mass_is_noted_in_the_report():
    # the grunfeld-like year column: 220 rows in 20 years, a small budget; when mass far from
    # the core is dropped, the column's note says so (never silently)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"year": np.tile(np.arange(1935, 1955), 11).astype(float),
                       "x": np.round(rng.lognormal(4, 1.2, 220), 1)})
    md = Metadata.from_dataframe(df)
    seen = 0
    for seed in range(30):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyWarning)
            try:
                dom = release_domain(df, md, rho=0.02, delta_threshold=0.0,
                                     rng=np.random.default_rng(seed))
            except PrivacyBudgetError:
                continue
        c = dom["year"]
        if c.withheld:
            continue
        # at this budget the finest bin is up to ~130 years wide (the first histogram's, when
        # the zoom does not pay): the support is that bin, never the noise beyond it
        assert 1935 - 130 <= c.bounds[0] and c.bounds[1] <= 1954 + 130, (seed, c.bounds)
        seen += c.note is not None and "not generated" in c.note
    assert seen  # the fallback happened, and said so, at least once


# Small tables (docs/robustness.md): iris-sized tables used to be refused outright at epsilon 1
# (no column's range released); the range search now gets more of the budget there, the
# range check uses the averaged histogram's own noise, and nothing released may be absurd.
RHO_AIM_EPS1 = 0.3 * zcdp_rho_for(1.0, 1e-5)  # what AIM's domain release gets at epsilon 1


def _iris_like(rng, n=150):
    return pd.DataFrame({"a": np.round(rng.normal(5.8, 0.8, n), 1),
                         "b": np.round(rng.normal(3.0, 0.4, n), 1),
                         "c": np.round(np.clip(rng.normal(3.7, 1.7, n), 1, 7), 1),
                         "d": np.round(np.clip(rng.normal(1.2, 0.7, n), 0.1, 2.5), 1)})


def _released_within(df, dom, steps=32):
    for c in dom:
        if c.withheld:
            continue
        x = df[c.name].to_numpy(float)
        w = max(x.max() - x.min(), steps * 0.1)
        assert x.min() - w <= c.bounds[0] and c.bounds[1] <= x.max() + w, (c.name, c.bounds)


def test_a_150_row_table_releases_a_sane_range_at_epsilon_1_in_most_draws():
    df = _iris_like(np.random.default_rng(0))
    md = Metadata.from_dataframe(df)
    refused = 0
    for seed in range(20):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyWarning)
            try:
                dom = release_domain(df, md, rho=RHO_AIM_EPS1, rng=np.random.default_rng(seed))
            except PrivacyBudgetError:
                refused += 1
                continue
        _released_within(df, dom)
    assert refused <= 10  # about two draws in three before (every column withheld), one in three now


def test_a_zoom_that_finds_no_clear_bin_withholds_the_column_macrodata_year():
    # statsmodels.macrodata year, 1959-2009 in 203 rows with 13 other columns: the first
    # histogram's bin 1926-2055 cleared the noise, the zoomed one had no bin that did, and its
    # noise put the released support at 1739-1763.  Such a column is withheld now.
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"year": np.repeat(np.arange(1959, 2010), 4)[:203].astype(float),
                       **{f"x{i}": np.round(rng.lognormal(5, 1, 203), 1) for i in range(13)}})
    for seed, (lo, hi) in _released_bounds(df, "year", seeds=20):
        assert 1959 - 50 <= lo and hi <= 2009 + 50, (seed, lo, hi)


def _released_bounds(df: pd.DataFrame, column: str, seeds: int):
    """(seed, released bounds) of ``column`` at AIM's eps=1 domain budget, for each seed whose
    release neither refuses the table nor withholds the column."""
    md = Metadata.from_dataframe(df)
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyWarning)
            try:
                dom = release_domain(df, md, rho=RHO_AIM_EPS1, rng=np.random.default_rng(seed))
            except PrivacyBudgetError:
                continue
        if not dom[column].withheld:
            yield seed, dom[column].bounds


def test_zoom_beyond_counts_do_not_carry_the_tail_octaves_noise_grunfeld_year():
    # statsmodels.grunfeld year, 1935-1954 in 220 rows: stage C's count beyond the zoomed range
    # less the sum of all twenty-four noisy tail octaves put hundreds of rows in 1152-1281 or
    # 2051-2055 (seeds 1, 10 here before the fix)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"year": np.tile(np.arange(1935, 1955), 11).astype(float),
                       "x": np.round(rng.lognormal(4, 1.2, 220), 1)})
    for seed, (lo, hi) in _released_bounds(df, "year", seeds=30):
        assert 1935 - 130 <= lo and hi <= 1954 + 130, (seed, lo, hi)


def test_an_end_value_beyond_a_thin_one_is_kept_flchain_sample_year(shared_data):
    # flchain's sample.yr: 1995-2003, with 2002 thin (48 rows) and 2003 holding 222 (2.8 %).
    # At AIM's domain budget for epsilon 1, noise emptied 2002 in some seeds and 2003 (a bin
    # clearing the noise) was trimmed as a noise island / noise-sized end run: a category of
    # >= 2 % and >= 150 rows lost (issue 14's target).  Kept now in every seed.
    df = shared_data("flchain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md = Metadata.from_dataframe(df)
    rho = 0.3 * zcdp_rho_for(1.0, 0.9e-5)  # AIM's default share for a table of this size
    for seed in range(8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyWarning)
            dom = release_domain(df, md, rho=rho, delta_threshold=1e-6,
                                 rng=np.random.default_rng(seed))
        lo, hi = dom["sample.yr"].bounds
        assert lo <= 1995 and 2003 <= hi <= 2005, (seed, lo, hi)
        age_lo, age_hi = dom["age"].bounds  # real 50-101: the rule adds no absurd tail
        assert 40 <= age_lo <= 51 and 80 <= age_hi <= 128, (seed, age_lo, age_hi)


def _releases_at_aim_share(df, seeds):
    """``(seed, domain)`` of each release seed at the share AIM gives the domain at epsilon 1
    (inferred metadata, no declared domains)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        md = Metadata.from_dataframe(df)
    rho = 0.3 * zcdp_rho_for(1.0, 0.9e-5)
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyWarning)
            yield seed, release_domain(df, md, rho=rho, delta_threshold=1e-6,
                                       rng=np.random.default_rng(seed))


def test_a_spike_stays_on_its_value_and_its_thin_tail_is_kept_covid_ct_result(shared_data):
    # covid_testing's ct_result: 93 % of the rows at 45.00 (negative tests), 7 % spread thinly
    # over 14-45.  At epsilon 1 the release zoomed onto 44.97-45.01 in bins of five values (the
    # spike drawn over all five: KS complement 0.45) and cut the tail, whose noisy stage-B
    # bins each held a few rows.  Now the zoom measures each value and the tail beyond it is
    # one bin that clears the noise.
    df = shared_data("covid_testing")
    for seed, dom in _releases_at_aim_share(df, range(4)):
        c = dom["ct_result"]
        lo, hi = c.bounds
        assert lo <= 32 and 45.0 <= hi <= 46.0, (seed, lo, hi)  # the tail is kept
        counts = c.value_counts
        spike = int(np.argmax(counts))
        assert c.edges[spike] < 45.0 < c.edges[spike + 1]
        assert c.edges[spike + 1] - c.edges[spike] <= 0.0100001  # one value in its bin
        assert counts[spike] / counts.sum() > 0.85
        assert counts[c.centres < 44.0].sum() / counts.sum() > 0.01  # real 7 %; the noise takes some


def test_a_spike_with_a_spread_of_rarer_values_keeps_them_support2_scoma(shared_data):
    # (and SUPPORT2's num.co keeps its value 5)
    # SUPPORT2's coma score: 70 % of the rows at 0, 30 % over 9-100 in a dozen values of
    # 50-750 rows each.  At the share AIM gives the domain at epsilon 1 (48 columns, noise
    # sd ~160 a bin), the histogram was projected onto its own noisy total (~1,000 rows
    # low), which emptied every bin but 0; then the noise-island rule counted bins already
    # cut as noise room and dropped the rest: the column came out all zeros (judge's
    # contingency with hospdead 0.03).  The total is now pooled over every column.
    df = shared_data("support2")
    for seed, dom in _releases_at_aim_share(df, range(4)):
        assert abs(dom.total - len(df)) < 400, (seed, dom.total)  # pooled over 48 columns
        c = dom["scoma"]
        lo, hi = c.bounds
        assert lo <= 0 and 64 <= hi <= 160, (seed, lo, hi)  # real 0-100; no far noise octave
        counts = c.value_counts
        above = counts[c.centres > 8].sum() / counts.sum()
        assert 0.15 < above < 0.45, (seed, above)  # real 0.30
        # num.co = 5 (263 rows, 2.9 %) beyond 0-4: the noise of a dozen empty tail octaves
        # raised the projection's shift until it emptied the value (lost in every seed)
        assert dom["num.co"].bounds[1] >= 5.5, (seed, dom["num.co"].bounds)


def test_a_tail_octave_beyond_a_gap_needs_the_stronger_threshold():
    from nhssynth.encoders.domain import _pooled_total, _tail_hits
    tail = np.array([400.0, 100.0, 0.0, 350.0, 900.0])  # outwards from the range
    assert _tail_hits(tail, 321.0, 560.0).tolist() == [True, False, False, False, True]
    assert _tail_hits(tail, 321.0, 321.0).tolist() == [True, False, False, True, True]
    # the pooled total weights each column's total by its precision; biased ones only as a
    # last resort
    assert _pooled_total([(100.0, 1.0, True), (200.0, 100.0, True), (10.0, np.inf, False)]) \
        == pytest.approx((100.0 + 2.0) / 1.01)
    assert _pooled_total([(10.0, np.inf, False), (30.0, np.inf, False)]) == 20.0
    assert _pooled_total([(-5.0, 1.0, True)]) == 0.0 and _pooled_total([]) == 0.0


def test_values_exactly_at_the_power_of_two_end_of_the_range_stay_inside_it():
    # a probability column with 4 % of its rows at exactly 1.0 (SUPPORT2's prg2m): the
    # range found under DP is [0, 1) and the 1.0s fell into the octave [1, 2), released as
    # values anywhere up to 2
    rng = np.random.default_rng(0)
    p = rng.beta(2.0, 3.0, 9_000)
    p[rng.random(p.size) < 0.04] = 1.0
    df = pd.DataFrame({"p": p, "x": rng.normal(50.0, 10.0, p.size)})
    md = Metadata.from_dataframe(df)
    for seed in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrivacyWarning)
            dom = release_domain(df, md, rho=0.02, rng=np.random.default_rng(seed))
        lo, hi = dom["p"].bounds
        assert 0.0 <= lo and 1.0 <= hi < 1.0 + 1e-9, (seed, lo, hi)


def test_exact_histograms_give_a_spike_its_own_bin():
    """Not private: a value holding >= 5 % of a column is drawn as itself (adult's
    capital_gain, 92 % zeros, was drawn evenly over 0-1,562 and scored 0.08 on shape)."""
    rng = np.random.default_rng(5)
    n = 4_000
    gain = np.where(rng.random(n) < 0.9, 0, rng.integers(100, 99_999, n))
    lab = np.where(rng.random(n) < 0.3, 45.0, np.round(rng.uniform(10, 400, n), 1))
    df = pd.DataFrame({"gain": gain, "lab": lab})
    md = Metadata.from_dataframe(df)
    dom = release_domain(df, md, rho=None)
    for name, value in (("gain", 0.0), ("lab", 45.0)):
        c = dom[name]
        at = int(np.searchsorted(c.edges, value, side="right") - 1)
        assert c.edges[at + 1] - c.edges[at] <= 1.0  # the value's own grid cell
        assert c.value_counts[at] == (df[name] == value).sum()
    from nhssynth import AIMSynthesizer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = AIMSynthesizer(epsilon=None, allow_non_private=True, random_state=0).fit(df).sample(n, random_state=1)
    assert abs((out["gain"] == 0).mean() - (df["gain"] == 0).mean()) < 0.03
    assert abs((out["lab"] == 45.0).mean() - (df["lab"] == 45.0).mean()) < 0.03
