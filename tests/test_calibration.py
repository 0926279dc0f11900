"""Calibration to DP marginals (nhssynth.calibration): pairs chosen where a generator is wrong,
consistent targets, and draws that match them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nhssynth import Metadata
from nhssynth.calibration import MarginalCalibrator
from nhssynth.calibration.selection import PairPlan, choose_and_measure_pairs, marginal_counts
from nhssynth.encoders.binning import TableBins
from nhssynth.encoders.domain import release_domain
from nhssynth.privacy.accounting import zcdp_rho


def _real(n: int, seed: int = 0) -> pd.DataFrame:
    """a and b strongly linked, c and d linked, e on its own."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    c = rng.integers(0, 3, n)
    return pd.DataFrame({
        "a": a.astype(str),
        "b": np.where(rng.random(n) < 0.85, a, rng.integers(0, 4, n)).astype(str),
        "c": c.astype(str),
        "d": np.where(rng.random(n) < 0.7, c, rng.integers(0, 3, n)).astype(str),
        "e": rng.integers(0, 5, n).astype(str),
    })


def _shuffled(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A 'generator' with the right columns and no relationships."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.permutation(df[c].to_numpy()) for c in df.columns})


@pytest.fixture(scope="module")
def setup():
    df = _real(6_000)
    md = Metadata.from_dataframe(df)
    domain = release_domain(df, md, rho=None)
    bins = TableBins.from_domain(domain, md, df)
    return df, md, domain, bins


def test_exact_choice_takes_the_pairs_the_draw_gets_wrong_as_a_spanning_forest(setup):
    df, _, _, bins = setup
    draw = _shuffled(df, 1)
    chosen = choose_and_measure_pairs(bins.encode(df), bins.encode(draw), bins.sizes,
                                      PairPlan(4, None, None), np.random.default_rng(0))
    cliques = [m.clique for m in chosen]
    assert cliques[:2] == [(0, 1), (2, 3)]  # the two linked pairs, strongest first
    assert len(cliques) == 4  # a spanning tree of 5 columns
    root = list(range(5))  # no cycle among the chosen pairs
    for a, b in cliques:
        while root[a] != a:
            a = root[a]
        while root[b] != b:
            b = root[b]
        assert a != b
        root[a] = b
    np.testing.assert_array_equal(chosen[0].values, marginal_counts(bins.encode(df), (0, 1), bins.sizes))


def test_private_choice_finds_the_linked_pair_and_accounts_for_every_choice(setup):
    df, _, _, bins = setup
    plan = PairPlan.from_rho(0.01, 2)
    assert zcdp_rho(plan.history) == pytest.approx(0.01)
    hits = 0
    for seed in range(10):
        chosen = choose_and_measure_pairs(bins.encode(df), bins.encode(_shuffled(df, seed)),
                                          bins.sizes, plan, np.random.default_rng(seed))
        hits += chosen[0].clique == (0, 1)
        assert chosen[0].sigma == pytest.approx(plan.sigma)
    assert hits >= 8


def test_calibration_restores_a_relationship_an_independent_generator_lacks(setup):
    df, _, domain, bins = setup
    codes = bins.encode(df)
    pairs = choose_and_measure_pairs(codes, bins.encode(_shuffled(df, 2)), bins.sizes,
                                     PairPlan(2, None, None), np.random.default_rng(0))
    cal = MarginalCalibrator.from_measurements(bins, domain, pairs)
    assert cal.pairs == [("a", "b"), ("c", "d")]
    for target, margin in zip(cal.targets, cal.margins):  # consistent: the rows' own marginals
        real = marginal_counts(codes, margin, bins.sizes) / len(df)
        np.testing.assert_allclose(target, real, atol=0.01)
    cal.fit(_shuffled(df, 3), np.random.default_rng(0))
    out = cal.select(pd.concat([_shuffled(df, s) for s in range(4, 14)], ignore_index=True),
                     3_000, np.random.default_rng(1))
    assert len(out) == 3_000 and list(out.columns) == list(df.columns)
    agree = lambda f, x, y: (f[x] == f[y]).mean()  # noqa: E731
    assert agree(out, "a", "b") == pytest.approx(agree(df, "a", "b"), abs=0.08)  # ~0.89
    assert agree(out, "c", "d") == pytest.approx(agree(df, "c", "d"), abs=0.08)


def test_quantile_maps_move_numeric_values_onto_the_release():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": np.round(rng.gamma(2.0, 10.0, 5_000), 1)})
    md = Metadata.from_dataframe(df)
    domain = release_domain(df, md, rho=None)
    bins = TableBins.from_domain(domain, md, df)
    cal = MarginalCalibrator.from_measurements(bins, domain, [])
    draw = pd.DataFrame({"x": np.round(rng.uniform(0, 150, 20_000), 1)})  # a poor generator
    cal.fit(draw, rng)
    mapped = cal.map_values(draw.iloc[:5_000], rng)
    assert abs(mapped["x"].median() - df["x"].median()) < 1.0
    assert mapped["x"].dtype == df["x"].dtype and np.allclose(mapped["x"], mapped["x"].round(1))
    with pytest.raises(RuntimeError, match="before fit"):
        MarginalCalibrator.from_measurements(bins, domain, []).select(draw, 10, rng)
