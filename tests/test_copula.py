"""The numeric columns' DP rank correlation and the re-ordering of draws to it
(nhssynth.calibration.copula), and its place in DPVAESynthesizer's calibration."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import spearmanr

from nhssynth import DPVAESynthesizer, Metadata
from nhssynth.calibration.copula import (CorrelationPlan, RankCorrelation, normal_scores,
                                         recolour, release_rank_correlation, spatial_sign_sum)
from nhssynth.privacy.accounting import zcdp_rho_for


class _Col:
    """The two attributes of a released numeric column the scores read (a ColumnBins stand-in)."""

    def __init__(self, name, edges, counts, kind="continuous"):
        self.name, self.fine_edges, self.fine_counts = name, np.asarray(edges, float), np.asarray(counts, float)
        self.meta = type("M", (), {"kind": kind})()


def _correlated(n, r, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = r * x + np.sqrt(1 - r * r) * rng.normal(size=n)
    return pd.DataFrame({"x": np.exp(x), "y": 10 * y, "z": rng.uniform(0, 5, n)})


def _released_columns(df):
    out = []
    for c in df.columns:
        edges = np.quantile(df[c], np.linspace(0, 1, 65))
        edges[-1] = np.nextafter(edges[-1], np.inf)
        counts, _ = np.histogram(df[c], edges)
        out.append(_Col(c, edges, counts))
    return out


def test_normal_scores_follow_the_released_cdf():
    edges, counts = np.array([0.0, 1.0, 2.0, 4.0]), np.array([25.0, 50.0, 25.0])
    z = normal_scores(np.array([0.0, 1.0, 1.5, 2.0, 4.0, np.nan]), edges, counts)
    assert z[2] == pytest.approx(0.0) and z[5] == 0.0  # the median scores 0, missing 0
    assert z[1] == pytest.approx(-0.6745, abs=1e-3) and z[3] == pytest.approx(0.6745, abs=1e-3)
    assert z[0] == -3.0 and z[4] == 3.0  # the ends are clipped
    # an integer's mass is [x, x + 1): 0 of {0 (half), 1 (half)} sits at F = 0.25, not at 0
    zi = normal_scores(np.array([0.0, 1.0]), np.array([0.0, 1.0, 2.0]), np.array([5.0, 5.0]), step=1.0)
    assert zi == pytest.approx([-0.6745, 0.6745], abs=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=12))
def test_one_row_moves_the_released_vector_by_at_most_one(row):
    """The mechanism's sensitivity: one row's u u^T, upper triangle with diagonal, has L2 norm
    <= 1 whatever its values and the number of columns."""
    k = len(row)
    cols = [_Col(f"c{j}", [-1e6, 0.0, 1e6 + 1], [3.0, 7.0]) for j in range(k)]
    K = spatial_sign_sum([pd.DataFrame({f"c{j}": [v] for j, v in enumerate(row)})], cols)
    upper = K[np.triu_indices(k)]
    assert np.linalg.norm(upper) <= 1.0 + 1e-12


def test_release_keeps_strong_correlations_and_shrinks_noise_to_zero():
    df = _correlated(5_000, 0.8)
    cols = _released_columns(df)
    K = spatial_sign_sum([df], cols)
    exact = release_rank_correlation(K, CorrelationPlan(("x", "y", "z"), None), None)
    truth = 2 * np.sin(np.pi * spearmanr(df["x"], df["y"])[0] / 6)  # normal-scores correlation
    assert exact.matrix[0, 1] == pytest.approx(truth, abs=0.05)
    assert abs(exact.matrix[0, 2]) < 0.05 and abs(exact.matrix[1, 2]) < 0.05
    plan = CorrelationPlan.from_rho(zcdp_rho_for(1.0, 1e-5) * 0.05, ("x", "y", "z"))
    noisy = [release_rank_correlation(K, plan, np.random.default_rng(s)).matrix for s in range(20)]
    assert np.mean([m[0, 1] for m in noisy]) == pytest.approx(truth, abs=0.08)
    # unrelated pairs are shrunk by their noise level (~0.013 here): they stay near 0
    assert np.mean([abs(m[0, 2]) for m in noisy]) < 0.02
    assert np.mean([abs(m[1, 2]) for m in noisy]) < 0.02
    for m in noisy:
        assert np.allclose(np.diag(m), 1.0) and np.linalg.eigvalsh(m).min() > 0


def test_release_needs_two_columns_with_signal():
    K = np.diag([1000.0, 0.0])
    assert release_rank_correlation(K, CorrelationPlan(("a", "b"), None), None) is None


def _target(r, names=("x", "y")):
    return RankCorrelation(list(names), np.array([[1.0, r], [r, 1.0]]))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(5, 200), st.floats(-0.95, 0.95))
def test_recolour_keeps_every_column_exactly(seed, n, r):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 4, n)), dtype="Int64"),
        "y": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        "label": rng.choice(["a", "b"], n),
    })
    out = recolour(frame, _target(r), np.random.default_rng(seed))
    assert list(out.columns) == list(frame.columns) and (out.dtypes == frame.dtypes).all()
    pd.testing.assert_series_equal(out["label"], frame["label"])
    for c in ("x", "y"):
        assert (out[c].isna() == frame[c].isna()).all()  # missing rows stay where they were
        assert sorted(out[c].dropna().tolist()) == sorted(frame[c].dropna().tolist())


def test_recolour_reaches_the_target_and_leaves_a_matching_draw_alone():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.lognormal(size=20_000), "y": rng.normal(size=20_000)})
    for r in (-0.7, 0.4, 0.9):
        out = recolour(frame, _target(r), np.random.default_rng(2))
        rho = spearmanr(out["x"], out["y"])[0]
        assert 2 * np.sin(np.pi * rho / 6) == pytest.approx(r, abs=0.03)
    already = _correlated(20_000, 0.6)[["x", "y"]]
    target = 2 * np.sin(np.pi * spearmanr(already["x"], already["y"])[0] / 6)
    out = recolour(already, _target(target), np.random.default_rng(3))
    # rows hardly move: each value stays close in rank to where it was
    assert spearmanr(out["x"], already["x"])[0] > 0.95 and spearmanr(out["y"], already["y"])[0] > 0.95


@pytest.fixture(scope="module")
def linked():
    """Two strongly related numeric columns and a categorical one tied to them: what a DP-SGD
    network at eps=1 on a few thousand rows barely learns."""
    rng = np.random.default_rng(0)
    n = 4_000
    x = rng.normal(size=n)
    return pd.DataFrame({
        "cost": np.round(np.exp(8 + x), 2),
        "stay": np.clip(np.round(10 + 6 * (0.9 * x + np.sqrt(1 - 0.81) * rng.normal(size=n))), 0, None).astype(int),
        "ward": np.where(x + rng.normal(size=n) > 0, "high", "low"),
        "age": rng.integers(20, 90, n),
    })


def _fit(df, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DPVAESynthesizer(epsilon=1.0, max_epochs=5, batch_size=256, hidden_dims=(32,),
                                random_state=0, **kw).fit(df)


def test_dpvae_releases_the_rank_correlation_within_its_budget(linked):
    model = _fit(linked)
    report = model.privacy_report()
    stages = [s.stage for s in report.spends]
    assert stages == ["domain release: domains", "domain release: histograms",
                      "calibration: rank correlations", "calibration: two-way marginals",
                      "training"]
    spend = report.spends[2]
    assert spend.details["n_columns"] == 3 and spend.epsilon > 0
    assert model.calibrator_.correlation is not None
    assert model.calibrator_.correlation.columns == ["cost", "stay", "age"]
    assert 0 < model.epsilon_ <= 1.0
    fake = model.sample(len(linked), random_state=0)
    rho = spearmanr(fake["cost"], fake["stay"])[0]
    real = spearmanr(linked["cost"], linked["stay"])[0]
    assert rho > 0.6 * real  # ~0.9 real: the network alone keeps far less at eps=1
    assert abs(spearmanr(fake["cost"], fake["age"])[0]) < 0.15  # and invents nothing
    # each column's values are still the calibrated ones: the re-ordering moves rows only
    assert fake["stay"].dtype == linked["stay"].dtype and (fake["stay"] >= 0).all()


def test_dpvae_without_pair_budget_or_numeric_pairs_releases_no_correlation(linked):
    stages = [s.stage for s in _fit(linked, pair_fraction=0.0).privacy_report().spends]
    assert "calibration: rank correlations" not in stages
    one_numeric = linked[["cost", "ward"]]
    model = _fit(one_numeric)
    assert "calibration: rank correlations" not in [s.stage for s in model.privacy_report().spends]
    assert model.calibrator_.correlation is None


def test_dpvae_on_too_few_rows_for_the_noise_gives_the_pairs_the_whole_share(linked):
    """150 rows over 3 numeric columns at eps=1: 50 rows a column's diagonal against noise ~18
    (5 sigma needed): the correlation is not bought, the two-way step gets the whole share."""
    small = linked.iloc[:150]
    md = Metadata.from_dataframe(small)
    for name, (lo, hi) in {"cost": (0.0, 1e6), "stay": (0, 100), "age": (0, 120)}.items():
        md = md.update(name, min=lo, max=hi, domain="declared")
    md = md.update("ward", categories=["high", "low"], domain="declared")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DPVAESynthesizer(epsilon=1.0, max_epochs=5, batch_size=30, hidden_dims=(32,),
                                 metadata=md, random_state=0).fit(small)
    stages = [s.stage for s in model.privacy_report().spends]
    assert "calibration: rank correlations" not in stages
    assert "calibration: two-way marginals" in stages
    assert model.calibrator_.correlation is None
    plan = CorrelationPlan.from_rho(1e-3, ("a", "b", "c"))
    assert not plan.informative(200) and plan.informative(4_000)
    assert CorrelationPlan(("a", "b"), None).informative(3)  # not private: always


def test_dpvae_on_a_small_table_buys_the_correlation_and_stays_in_range(linked):
    """600 rows, 3 numeric columns at eps=1: 200 rows a column clear the noise, so the rank
    correlation is released; re-ordering only permutes calibrated values, so every numeric
    column's 1st-99th percentile stays inside the real range widened by that range."""
    small = linked.iloc[:600].reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DPVAESynthesizer(epsilon=1.0, max_epochs=5, batch_size=64, hidden_dims=(32,),
                                 random_state=0).fit(small)
    assert "calibration: rank correlations" in [s.stage for s in model.privacy_report().spends]
    fake = model.sample(600, random_state=0)
    for c in ("cost", "stay", "age"):
        lo, hi = small[c].min(), small[c].max()
        p1, p99 = fake[c].dropna().quantile([0.01, 0.99])
        assert lo - (hi - lo) <= p1 and p99 <= hi + (hi - lo), c
