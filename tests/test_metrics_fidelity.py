import numpy as np
import pandas as pd
import pytest

from nhssynth import Metadata
from nhssynth.metrics import (column_pair_trends, column_shapes, coverage, detection, ks_complement,
                              missing_similarity, relationship_score, tv_complement)

from .test_metrics_data import make_table, shuffle_columns


@pytest.fixture(scope="module")
def real():
    return make_table(600, seed=0)


def test_ks_and_tv_known_values():
    assert ks_complement(np.arange(10.0), np.arange(10.0)) == 1.0
    assert ks_complement(np.arange(10.0), np.arange(10.0) + 100) == 0.0
    # half of b lies beyond a: KS = 0.5
    assert ks_complement(np.array([0.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(0.5)
    assert ks_complement(np.array([1.0, np.nan]), np.array([1.0])) == 1.0
    assert tv_complement(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 0]), 2) == pytest.approx(0.5)
    assert tv_complement(np.array([0, 1, 2]), np.array([2, 1, 0]), 3) == 1.0


def test_identical_frames_score_perfectly(real):
    md = Metadata.from_dataframe(real)
    assert (column_shapes(real, real.copy(), md)["score"] == 1.0).all()
    assert (missing_similarity(real, real.copy(), md)["score"] == 1.0).all()
    assert (coverage(real, real.copy(), md)["score"] == 1.0).all()
    pairs = column_pair_trends(real, real.copy(), md)
    assert len(pairs) == 15 and np.allclose(pairs["score"], 1.0)
    assert relationship_score(pairs) == pytest.approx(1.0)
    # every kind is measured with the right statistic
    kinds = column_shapes(real, real, md).set_index("column")["metric"]
    assert kinds["x"] == kinds["when"] == kinds["count"] == "ks_complement"
    assert kinds["group"] == kinds["flag"] == "tv_complement"


def test_shuffled_columns_keep_shapes_but_break_pair_trends(real):
    md = Metadata.from_dataframe(real)
    shuffled = shuffle_columns(real)
    assert (column_shapes(real, shuffled, md)["score"] == 1.0).all()
    pairs = column_pair_trends(real, shuffled, md).set_index(["column_1", "column_2"])
    # x and y are correlated ~0.99: the shuffled copy has ~0 correlation
    assert pairs.loc[("x", "y"), "metric"] == "correlation_similarity"
    assert pairs.loc[("x", "y"), "real"] > 0.9
    assert pairs.loc[("x", "y"), "score"] < 0.6
    assert pairs.loc[("x", "group"), "metric"] == "contingency_similarity"
    assert pairs.loc[("x", "group"), "score"] < 0.6
    assert relationship_score(pairs.reset_index()) < 0.05


def test_missing_similarity_and_coverage_known_values(real):
    md = Metadata.from_dataframe(real)
    fake = real.copy()
    fake["y"] = np.nan  # real has ~15% missing
    rate = real["y"].isna().mean()
    ms = missing_similarity(real, fake, md).set_index("column")["score"]
    assert ms["y"] == pytest.approx(1 - (1 - rate))
    fake = real.copy()
    lo, hi = real["x"].min(), real["x"].max()
    fake["x"] = np.clip(real["x"], lo, lo + (hi - lo) / 2)  # covers half the range
    fake["group"] = pd.Categorical(["low"] * len(real), categories=["low", "mid", "high"])
    cov = coverage(real, fake, md).set_index("column")["score"]
    assert cov["x"] == pytest.approx(0.5)
    assert cov["group"] == pytest.approx(1 / 3)


def test_detection_separates_shuffled_but_not_fresh_rows():
    big = make_table(2400, seed=3)
    md = Metadata.from_dataframe(big)
    a, b = big.iloc[:1200], big.iloc[1200:]
    fresh = detection(a, b, md, random_state=0)
    broken = detection(a, shuffle_columns(b), md, random_state=0)
    assert fresh["score"] > 0.8 and abs(fresh["auc"] - 0.5) < 0.1
    assert broken["auc"] > 0.9 and broken["score"] < 0.2


def test_metrics_reject_missing_columns(real):
    md = Metadata.from_dataframe(real)
    with pytest.raises(ValueError, match="lacks column"):
        column_shapes(real, real.drop(columns="x"), md)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flchain", "support2", "covid_testing", "adult"])
def test_pair_trends_put_independent_columns_clearly_below_a_real_holdout(name):
    """Averaged over every pair, unrelated pairs (most of them) score near 1 for any generator
    and hide a lost relationship; scored over the related pairs, shuffling the columns loses
    what a fresh real sample keeps."""
    from nhssynth.metrics import pair_trends_score

    from .conftest import load_shared
    df = load_shared(name)
    if len(df) > 20_000:
        df = df.sample(20_000, random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    half = rng.permutation(len(df))
    first = df.iloc[half[: len(df) // 2]].reset_index(drop=True)
    second = df.iloc[half[len(df) // 2:]].reset_index(drop=True)
    shuffled = pd.DataFrame({c: first[c].sample(frac=1.0, random_state=i).to_numpy()
                             for i, c in enumerate(first.columns)}).astype(first.dtypes.to_dict())
    md = Metadata.from_dataframe(df)
    holdout = column_pair_trends(first, second, md)
    independent = column_pair_trends(first, shuffled, md)
    assert holdout["related"].any()
    assert pair_trends_score(independent) < pair_trends_score(holdout) - 0.1
    # the plain mean over every pair barely tells them apart
    assert pair_trends_score(holdout) - pair_trends_score(independent) > \
        2 * (holdout["score"].mean() - independent["score"].mean())
