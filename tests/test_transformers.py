"""Unit tests of the column encoders (GMM, categorical, datetime, missing, min-max)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nhssynth.exceptions import EncodingError
from nhssynth.transformers import (CategoricalEncoder, DatetimeEncoder, GMMEncoder, MinMaxEncoder,
                                   MissingIndicatorEncoder)
from nhssynth.encoders.numeric import decimals_hold, finalize_numeric


@pytest.fixture
def bimodal():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(0, 1, 3000), rng.normal(20, 0.5, 1000), [500.0]]  # + an outlier


def test_gmm_finds_modes_and_inverts_exactly(bimodal):
    enc = GMMEncoder(random_state=0).fit(bimodal.reshape(-1, 1))
    heavy = enc.means_[0][enc.weights_[0] > 0.1]
    assert np.any(np.abs(heavy) < 0.5) and np.any(np.abs(heavy - 20) < 0.5)
    Z = enc.transform(bimodal.reshape(-1, 1))
    assert Z.shape == (len(bimodal), 1 + enc.n_modes_[0])
    assert np.abs(Z[:, 0]).max() <= 0.99                       # never clipped
    np.testing.assert_array_equal(Z[:, 1:].sum(axis=1), 1.0)   # one mode per row
    back = enc.inverse_transform(Z).ravel()
    assert np.max(np.abs(back - bimodal) / np.maximum(np.abs(bimodal), 1)) < 1e-12
    # the outlier (weight < threshold) is covered by an added mode, not by stretching the others
    assert enc.stds_[0][np.argmin(np.abs(enc.means_[0]))] < 5


def test_gmm_decodes_arbitrary_scores_inside_bounds(bimodal):
    enc = GMMEncoder(random_state=0, bounds=(-10, 100)).fit(bimodal.clip(-10, 100).reshape(-1, 1))
    Z = np.random.default_rng(1).normal(0, 5, size=(1000, enc.n_features_out_))
    x = enc.inverse_transform(Z)
    assert x.min() >= -10 and x.max() <= 100
    assert tuple(enc.bounds_[0]) == (-10.0, 100.0)


def test_gmm_subsample_is_seeded_and_bounded():
    x = np.random.default_rng(0).gamma(2, 3, size=(200_000, 1))
    a = GMMEncoder(max_fit_samples=2000, random_state=1).fit(x)
    b = GMMEncoder(max_fit_samples=2000, random_state=1).fit(x)
    np.testing.assert_array_equal(a.means_[0], b.means_[0])
    assert a.bounds_[0, 1] == x.max()          # bounds use every row, not the subsample
    assert not any(isinstance(v, np.ndarray) and v.size >= 2000 for v in vars(a).values())


def test_gmm_sample_weight_histogram():
    centres = np.arange(0, 101, 5.0).reshape(-1, 1)
    weights = np.exp(-0.5 * ((centres.ravel() - 70) / 6) ** 2)
    enc = GMMEncoder(random_state=0).fit(centres, sample_weight=weights)
    assert abs(enc.means_[0][np.argmax(enc.weights_[0])] - 70) < 3
    # integer weights == repeated rows
    rep = np.repeat(centres.ravel(), 3).reshape(-1, 1)
    e1 = GMMEncoder(random_state=0).fit(centres, sample_weight=np.full(len(centres), 3))
    e2 = GMMEncoder(random_state=0).fit(rep)
    np.testing.assert_allclose(e1.means_[0], e2.means_[0])
    with pytest.raises(ValueError, match="all zero"):
        GMMEncoder().fit(centres, sample_weight=np.zeros(len(centres)))


def test_gmm_constant_column_and_bad_input():
    enc = GMMEncoder().fit(np.full((10, 1), 3.7))
    assert enc.n_modes_[0] == 1
    np.testing.assert_array_equal(enc.inverse_transform(enc.transform(np.full((3, 1), 3.7))), 3.7)
    with pytest.raises(EncodingError, match="infinite"):
        GMMEncoder().fit(np.array([[1.0], [np.inf]]))
    with pytest.raises(EncodingError, match="missing values"):
        GMMEncoder().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(EncodingError, match="must be numeric"):
        GMMEncoder().fit(pd.DataFrame({"a": ["x", "y"]}))
    with pytest.raises(ValueError, match="n_components"):
        GMMEncoder(n_components=0).fit(np.ones((3, 1)))


def test_categorical_declared_unknown_and_infrequent():
    X = pd.DataFrame({"c": list("aaaabbbbcd")})
    enc = CategoricalEncoder(categories=[["a", "b", "c", "d", "e"]]).fit(X)
    assert enc.categories_[0].tolist() == ["a", "b", "c", "d", "e"]
    assert enc.n_features_out_ == 5
    np.testing.assert_array_equal(enc.inverse_transform(enc.transform(X)).ravel(), X["c"].to_numpy())
    with pytest.raises(EncodingError, match=r"'c'.*\['z'\].*handle_unknown='ignore'"):
        CategoricalEncoder().fit(X).transform(pd.DataFrame({"c": ["a", "z"]}))
    Z = CategoricalEncoder(handle_unknown="ignore").fit(X).transform(pd.DataFrame({"c": ["z"]}))
    assert Z.sum() == 0
    rare = CategoricalEncoder(min_frequency=2, random_state=0).fit(X)
    assert rare.infrequent_categories_[0].tolist() == ["c", "d"]
    assert rare.get_feature_names_out().tolist() == ["c__a", "c__b", "c__infrequent"]
    back = rare.inverse_transform(rare.transform(X)).ravel()
    assert back[:8].tolist() == list("aaaabbbb") and set(back[8:]) <= {"c", "d"}
    # deterministic for an int random_state
    np.testing.assert_array_equal(back, rare.inverse_transform(rare.transform(X)).ravel())


def test_categorical_binary_and_argmax():
    X = pd.DataFrame({"b": [True, False, True]})
    enc = CategoricalEncoder(categories=[[False, True]], drop="if_binary").fit(X)
    assert enc.n_features_out_ == 1 and enc.binary_[0]
    np.testing.assert_array_equal(enc.transform(X).ravel(), [1, 0, 1])
    assert enc.inverse_transform(np.array([[0.2], [0.7]])).ravel().tolist() == [False, True]
    cat = CategoricalEncoder().fit(pd.DataFrame({"c": ["x", "y", "z"]}))
    assert cat.inverse_transform(np.array([[0.1, 3.0, -1.0]])).ravel().tolist() == ["y"]


def test_categorical_category_dtype_keeps_order():
    X = pd.DataFrame({"c": pd.Categorical(["lo", "hi", "mid"], categories=["lo", "mid", "hi"])})
    enc = CategoricalEncoder().fit(X)
    assert enc.categories_[0].tolist() == ["lo", "mid", "hi"]
    np.testing.assert_array_equal(enc.transform(X), np.eye(3)[[0, 2, 1]])


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Asia/Kolkata"])
def test_datetime_exact_unit_and_timezone(unit, tz):
    t = pd.Series(pd.date_range("1999-12-31 23:00", periods=40, freq="37min", tz=tz))
    t = t.astype(f"datetime64[{unit}, {tz}]" if tz else f"datetime64[{unit}]")
    X = t.to_frame("t")
    enc = DatetimeEncoder(random_state=0).fit(X)
    assert enc.resolution_[0] == {"s": 60, "ms": 60_000, "us": 60_000_000, "ns": 60_000_000_000}[unit]
    back = enc.inverse_transform(enc.transform(X))
    pd.testing.assert_frame_equal(back, X)
    rand = enc.inverse_transform(np.random.default_rng(0).normal(size=(50, enc.n_features_out_)))
    assert rand["t"].dtype == X["t"].dtype
    assert rand["t"].between(X["t"].min(), X["t"].max()).all()


def test_datetime_strings_and_minmax():
    X = pd.DataFrame({"d": ["2020-02-29", "2021-01-01", "1999-07-04"]})
    enc = DatetimeEncoder(method="minmax", datetime_format="%Y-%m-%d").fit(X)
    assert enc.n_features_out_ == 1 and enc.resolution_[0] % (86400 * 10 ** 9 // 10 ** 9) == 0
    back = enc.inverse_transform(enc.transform(X))
    assert back["d"].tolist() == X["d"].tolist() and back["d"].dtype == X["d"].dtype
    with pytest.raises(EncodingError, match="'d'.*datetimes"):
        enc.transform(pd.DataFrame({"d": ["not a date"]}))


def test_missing_indicator_round_trip():
    X = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]])
    enc = MissingIndicatorEncoder().fit(X)
    Z = enc.transform(X)
    np.testing.assert_array_equal(Z[:, 2:], np.isnan(X))
    np.testing.assert_array_equal(Z[:, :2], [[1.0, 3.0], [2.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(enc.inverse_transform(Z), X)
    assert enc.get_feature_names_out().tolist() == ["x0", "x1", "x0__missing", "x1__missing"]
    assert MissingIndicatorEncoder(fill_value=-1).fit(X).transform(X)[0, 1] == -1


def test_minmax_and_finalize_numeric():
    X = np.array([[2.0], [4.0], [3.0]])
    enc = MinMaxEncoder().fit(X)
    np.testing.assert_array_equal(enc.transform(X).ravel(), [-1, 1, 0])
    np.testing.assert_array_equal(enc.inverse_transform([[5.0], [-5.0]]).ravel(), [4.0, 2.0])
    out = finalize_numeric(np.array([1.4, 2.6, 9.0]), np.array([False, True, False]), "Int64",
                           decimals=0, bounds=(0.0, 5.0))
    assert out.tolist() == [1, pd.NA, 5] and str(out.dtype) == "Int64"
    assert finalize_numeric(np.array([1.26]), None, "float64", decimals=1, bounds=(0, 1.24)).tolist() == [1.2]
    assert decimals_hold(np.array([0.1 + 0.2, 1.5]), 1) and not decimals_hold(np.array([1.25]), 1)
