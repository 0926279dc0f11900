"""TableEncoder: exact round trips on the real datasets, spans, bad input, privacy hooks."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from nhssynth.base import OutputSpan
from nhssynth.datasets import load_example
from nhssynth import TableEncoder
from nhssynth.exceptions import EncodingError, MetadataError, MetadataWarning
from nhssynth.metadata import ColumnMetadata, Metadata
from nhssynth.transformers import GMMEncoder

from .conftest import DATASETS, load_shared


def _on_decimal_grid(x: np.ndarray, col) -> np.ndarray:
    """The values a column's precision keeps: rounded to its decimals, which hold for all but at
    most 0.1% of them (float artefacts such as 8.798828 for 8.8 are rounded on output)."""
    if col.kind != "continuous" or col.decimals is None:
        return x
    r = np.round(x, col.decimals)
    m = ~np.isnan(x)
    off = np.abs(r[m] - x[m]) > 1e-9 * np.abs(x[m])
    assert off.mean() <= 0.001, (col.name, int(off.sum()))
    return r


def assert_frames_match(orig: pd.DataFrame, back: pd.DataFrame, metadata: Metadata, *,
                        rtol: float = 1e-9) -> None:
    """The exactness contract: columns, order, dtypes, NaN positions, values (ids excepted)."""
    assert list(back.columns) == list(orig.columns)
    assert isinstance(back.index, pd.RangeIndex) and len(back) == len(orig)
    for name in orig.columns:
        a, b = orig[name].reset_index(drop=True), back[name]
        assert a.dtype == b.dtype, (name, a.dtype, b.dtype)
        if metadata[name].kind == "id":
            assert b.is_unique
            continue
        np.testing.assert_array_equal(a.isna().to_numpy(), b.isna().to_numpy(), err_msg=name)
        if pd.api.types.is_float_dtype(a.dtype):
            x, y = a.to_numpy(np.float64, na_value=np.nan), b.to_numpy(np.float64, na_value=np.nan)
            x = _on_decimal_grid(x, metadata[name])
            m = ~np.isnan(x)
            scale = np.abs(x[m]).max(initial=0.0)
            # 1e-9 relative; values near 0 are compared at 1e-12 of the column's magnitude
            assert np.all(np.abs(x[m] - y[m]) <= rtol * np.abs(x[m]) + 1e-12 * scale), name
        else:
            pd.testing.assert_series_equal(a, b, check_names=False)


@pytest.mark.filterwarnings("ignore::nhssynth.exceptions.MetadataWarning")  # high-cardinality names
@pytest.mark.parametrize("name", DATASETS)
def test_round_trip_shared_dataset(name):
    df = load_shared(name)
    enc = TableEncoder(dtype="float64", random_state=0)
    Z = enc.fit(df).transform(df)
    assert Z.dtype == np.float64 and Z.flags.c_contiguous and Z.shape == (len(df), enc.n_features_out_)
    assert_frames_match(df, enc.inverse_transform(Z), enc.metadata_)


def test_round_trip_example_rich_dtypes():
    df = load_example()
    enc = TableEncoder(dtype="float64", random_state=0).fit(df)
    back = enc.inverse_transform(enc.transform(df))
    assert_frames_match(df, back, enc.metadata_)
    assert back["sex"].dtype == df["sex"].dtype and back["income"].cat.ordered
    assert back["edu"].dtype == "Int64" and back["death"].dtype == bool
    # the row identifier is regenerated (SUPPORT2's sno is 1..n already)
    np.testing.assert_array_equal(back["sno"].to_numpy(), np.arange(1, len(df) + 1))


def test_float32_output_exact_for_discrete_columns():
    df = load_example()
    enc = TableEncoder(random_state=0).fit(df)
    Z = enc.transform(df)
    assert Z.dtype == np.float32 and Z.flags.c_contiguous
    back = enc.inverse_transform(Z)
    for c in enc.metadata_:
        if c.kind in ("categorical", "boolean", "integer"):
            pd.testing.assert_series_equal(df[c.name], back[c.name])
        elif c.kind == "continuous":  # float32 carries ~7 significant digits
            x, y = _on_decimal_grid(df[c.name].to_numpy(float), c), back[c.name].to_numpy(float)
            m = ~np.isnan(x)
            assert np.all(np.abs(x[m] - y[m]) <= 1e-5 * np.abs(x[m]).max())


def test_output_spans_layout():
    df = pd.DataFrame({
        "id": [f"p{i}" for i in range(12)],
        "x": np.linspace(0, 1, 12),
        "n": pd.array([1, 2, None, 4] * 3, dtype="Int64"),
        "c": pd.Categorical(list("abca") * 3),
        "b": [True, False] * 6,
        "s": ["u", None, "v"] * 4,
    })
    md = Metadata.from_dataframe(df).update("id", kind="id")
    enc = TableEncoder(md, dtype="float64", random_state=0).fit(df)
    spans = enc.output_spans_
    assert all(isinstance(s, OutputSpan) for s in spans)
    # contiguous, covering every feature, in order
    assert spans[0].start == 0 and spans[-1].stop == enc.n_features_out_
    assert all(a.stop == b.start for a, b in zip(spans, spans[1:]))
    layout = [(s.column, s.kind, s.role) for s in spans]
    assert ("id" not in {s.column for s in spans})
    assert layout[:2] == [("x", "continuous", "value"), ("x", "softmax", "mode")]
    assert layout[2:5] == [("n", "continuous", "value"), ("n", "softmax", "mode"), ("n", "binary", "missing")]
    assert layout[5] == ("c", "softmax", "category") and spans[5].width == 3
    assert layout[6] == ("b", "binary", "value") and spans[6].width == 1
    assert layout[7:] == [("s", "softmax", "category"), ("s", "binary", "missing")]
    assert len(enc.get_feature_names_out()) == enc.n_features_out_
    assert enc.get_feature_names_out()[-1] == "s__missing"
    assert list(enc.column_encoders_) == list(df.columns) and enc.column_encoders_["id"] is None
    assert isinstance(enc.column_encoders_["x"], GMMEncoder)
    Z = enc.transform(df)
    # missing rows: indicator 1, value block neutral (scalar 0, one-hot of heaviest mode)
    miss = spans[4].start
    np.testing.assert_array_equal(Z[:, miss], df["n"].isna().to_numpy())
    assert np.all(Z[df["n"].isna().to_numpy(), spans[2].start] == 0)
    assert np.all(Z[:, spans[3].slice].sum(axis=1) == 1)
    back = enc.inverse_transform(Z)
    assert_frames_match(df, back, enc.metadata_)
    assert back["id"].tolist()[:2] == ["id-000001", "id-000002"]


def test_arbitrary_model_output_decodes_to_valid_frame():
    df = load_example()
    md = Metadata.from_dataframe(df).update("age", min=18.0, max=102.0)
    enc = TableEncoder(md, random_state=0).fit(df)
    rng = np.random.default_rng(0)
    Z = rng.normal(0, 3, size=(500, enc.n_features_out_)).astype(np.float32)
    out = enc.inverse_transform(Z)
    assert list(out.columns) == list(df.columns)
    assert (out.dtypes == df.dtypes).all()
    assert out["age"].between(18.0, 102.0).all()                      # declared bounds
    for c in enc.metadata_:
        s = out[c.name]
        if not c.nullable:
            assert not s.isna().any(), c.name
        if c.kind in ("continuous", "integer") and c.name != "age":
            lo, hi = df[c.name].min(), df[c.name].max()                 # observed bounds
            assert s.dropna().between(lo, hi).all(), c.name
        if c.kind == "integer":
            v = s.dropna().to_numpy(float)
            assert np.all(v == np.round(v)), c.name
        if c.kind == "continuous" and c.decimals is not None:
            v = s.dropna().to_numpy(float)
            assert np.allclose(v, np.round(v, c.decimals), rtol=0, atol=1e-9 * max(1, np.abs(v).max()))
    assert out["income"].isna().any() and not out["income"].isna().all()


def test_unseen_category_error_and_ignore():
    df = pd.DataFrame({"c": ["a", "b", "a", "b"], "x": [1.0, 2.5, 3.0, 4.5]})
    enc = TableEncoder(random_state=0).fit(df)
    bad = df.assign(c=["a", "z", "a", "b"])
    with pytest.raises(EncodingError, match=r"'c'.*'z'.*handle_unknown='ignore'"):
        enc.transform(bad)
    enc2 = TableEncoder(handle_unknown="ignore", random_state=0).fit(df)
    Z = enc2.transform(bad)
    span = enc2.output_spans_[0]
    assert Z[1, span.slice].sum() == 0 and Z[0, span.slice].sum() == 1


def test_missing_and_extra_columns():
    df = pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": ["x", "y", "x"]})
    enc = TableEncoder().fit(df)
    with pytest.raises(MetadataError, match=r"\['b'\].*missing"):
        enc.transform(df[["a"]])
    with pytest.raises(MetadataError, match=r"\['extra'\].*not in the metadata"):
        enc.transform(df.assign(extra=1))
    # given metadata: validated at fit time
    with pytest.raises(MetadataError, match="missing from the DataFrame"):
        TableEncoder(Metadata.from_dataframe(df)).fit(df[["a"]])
    # columns in another order are fine
    Z = enc.transform(df[["b", "a"]])
    np.testing.assert_array_equal(Z, enc.transform(df))


def test_wrong_dtype_inf_and_width_errors():
    df = pd.DataFrame({"a": [1.5, 2.5, 3.5], "b": ["x", "y", "x"]})
    enc = TableEncoder().fit(df)
    with pytest.raises(EncodingError, match=r"'a'.*numeric.*dtype"):
        enc.transform(df.assign(a=["1", "2", "3"]))
    with pytest.raises(EncodingError, match=r"'a'.*infinite"):
        enc.transform(df.assign(a=[1.0, np.inf, 2.0]))
    with pytest.raises(EncodingError, match=r"'a'.*infinite.*infinite_values"), \
            pytest.warns(MetadataWarning, match="infinite_values"):
        TableEncoder().fit(df.assign(a=[1.0, np.inf, 2.0]))
    with pytest.raises(EncodingError, match="n_features_out_"):
        enc.inverse_transform(np.zeros((2, enc.n_features_out_ + 1)))
    with pytest.raises(EncodingError, match="NaN"):
        enc.inverse_transform(np.full((2, enc.n_features_out_), np.nan))
    with pytest.raises(EncodingError, match="non-nullable"):
        enc.transform(df.assign(a=[1.0, np.nan, 2.0]))


def test_constant_and_all_missing_columns():
    df = pd.DataFrame({"k": [7.25] * 20, "i": [3] * 20, "x": np.arange(20) / 3})
    enc = TableEncoder(dtype="float64", random_state=0).fit(df)
    assert_frames_match(df, enc.inverse_transform(enc.transform(df)), enc.metadata_)
    out = enc.inverse_transform(np.random.default_rng(0).normal(size=(50, enc.n_features_out_)))
    assert (out["k"] == 7.25).all() and (out["i"] == 3).all()
    # an all-missing column is inferred from its dtype and comes back all missing ...
    allnan = df.assign(z=np.nan, o=pd.Series([None] * len(df), dtype=object))
    with pytest.warns(MetadataWarning, match="'z' is entirely missing"):
        enc = TableEncoder(dtype="float64", random_state=0).fit(allnan)
    out = enc.inverse_transform(np.random.default_rng(1).normal(size=(30, enc.n_features_out_)))
    assert out["z"].isna().all() and out["o"].isna().all()
    assert out["z"].dtype == np.float64 and out["o"].dtype == object
    allnan = allnan.drop(columns="o")
    # ... and so does a declared one
    md = Metadata.from_dataframe(df).copy()
    md.columns.append(ColumnMetadata("z", "continuous", "float64", nullable=True))
    enc = TableEncoder(md, dtype="float64", random_state=0).fit(allnan)
    back = enc.inverse_transform(enc.transform(allnan))
    assert back["z"].isna().all()
    assert_frames_match(allnan, back, enc.metadata_)


def test_missing_impute_and_drop(caplog):
    df = pd.DataFrame({"a": [1.5, np.nan, 3.0, 4.5], "c": ["x", "y", None, "x"], "d": [1.0, 2.0, np.nan, 4.0]})
    md = (Metadata.from_dataframe(df).update("a", missing="impute")
          .update("c", missing="impute").update("d", missing="drop"))
    enc = TableEncoder(md, dtype="float64", random_state=0)
    # a transformer returns every row it receives: the rows are dropped before it, not by it
    with pytest.raises(EncodingError, match="drop_incomplete_rows"):
        enc.fit(df)
    with caplog.at_level(logging.WARNING, logger="nhssynth.metadata"):
        kept = md.drop_incomplete_rows(df)
    assert "dropped 1 of 4 rows" in caplog.text and "'d'" in caplog.text
    Z = enc.fit(kept).transform(kept)
    assert Z.shape[0] == 3 == len(kept)
    assert not any(s.role == "missing" for s in enc.output_spans_)
    # impute values are computed on the rows that are kept
    assert enc.impute_values_["a"] == pytest.approx(3.0) and enc.impute_values_["c"] == "x"
    back = enc.inverse_transform(Z)
    assert not back.isna().any().any()
    assert back["a"].tolist() == pytest.approx([1.5, 3.0, 4.5])
    with pytest.raises(EncodingError, match="'d'"):
        enc.transform(df)


def test_declared_categories_and_bounds_are_used():
    df = pd.DataFrame({"c": ["a", "b", "a"], "x": [2.0, 3.0, 4.0]})
    md = Metadata([ColumnMetadata("c", "categorical", "object", categories=["a", "b", "c"]),
                   ColumnMetadata("x", "continuous", "float64", min=0.0, max=10.0)])
    enc = TableEncoder(md, random_state=0).fit(df)
    assert enc.column_encoders_["c"].categories_[0].tolist() == ["a", "b", "c"]  # not read from data
    assert tuple(enc.column_encoders_["x"].bounds_[0]) == (0.0, 10.0)
    Z = np.zeros((4, enc.n_features_out_))
    Z[:, enc.output_spans_[0].start + 2] = 1                     # the unseen declared category
    Z[:, enc.output_spans_[1].start] = [-1, 1, 0.5, 5]
    Z[:, enc.output_spans_[2].start] = 1
    out = enc.inverse_transform(Z)
    assert (out["c"] == "c").all()
    assert out["x"].between(0.0, 10.0).all()


def test_domains_override_data():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(50, 5, 300), "c": rng.choice(["a", "b"], 300)})
    centres = np.linspace(0, 100, 21)
    weights = np.exp(-0.5 * ((centres - 20) / 5) ** 2)      # a public histogram, not the data
    enc = TableEncoder(domains={"x": {"bounds": (0, 100), "gmm_values": centres, "gmm_weights": weights},
                                "c": {"categories": ["a", "b", "z"]}}, random_state=0).fit(df)
    g = enc.column_encoders_["x"]
    assert tuple(g.bounds_[0]) == (0.0, 100.0)
    heaviest = g.means_[0][np.argmax(g.weights_[0])]
    assert abs(heaviest - 20) < 5                             # fitted on the histogram
    assert enc.column_encoders_["c"].categories_[0].tolist() == ["a", "b", "z"]
    with pytest.raises(MetadataError, match="unknown key"):
        TableEncoder(domains={"x": {"bins": 3}}).fit(df)
    with pytest.raises(MetadataError, match="not in the metadata"):
        TableEncoder(domains={"nope": {}}).fit(df)


def test_datetime_columns_round_trip_exactly():
    n = 50
    base = pd.Timestamp("2021-03-27 12:00")  # across a DST change in Europe/London
    df = pd.DataFrame({
        "naive_s": pd.Series(pd.date_range(base, periods=n, freq="7h")).astype("datetime64[s]"),
        "tz_us": pd.Series(pd.date_range(base, periods=n, freq="13min", tz="Europe/London")).astype(
            "datetime64[us, Europe/London]"),
        "ns": pd.Series(pd.date_range(base, periods=n, freq="1234567891ns")),
        "text": pd.date_range("2020-01-01", periods=n, freq="37h").strftime("%Y/%m/%d %H:%M").astype(object),
    })
    df.loc[[3, 7], "tz_us"] = pd.NaT
    df.loc[5, "text"] = np.nan
    enc = TableEncoder(dtype="float64", random_state=0).fit(df)
    assert enc.metadata_["text"].datetime_format == "%Y/%m/%d %H:%M"
    back = enc.inverse_transform(enc.transform(df))
    assert_frames_match(df, back, enc.metadata_)
    rand = enc.inverse_transform(np.random.default_rng(1).normal(size=(100, enc.n_features_out_)))
    assert (rand.dtypes == df.dtypes).all()
    assert rand["naive_s"].between(df["naive_s"].min(), df["naive_s"].max()).all()


def test_sklearn_contract_and_clone():
    from sklearn.base import clone

    md = Metadata.from_dataframe(pd.DataFrame({"a": [1.5, 2.5]}))
    enc = TableEncoder(md, gmm_components=4, random_state=3)
    assert enc.get_params()["metadata"] is md and enc.get_params()["gmm_components"] == 4
    c = clone(enc)
    assert c.get_params()["gmm_components"] == 4 and not hasattr(c, "metadata_")
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        enc.transform(pd.DataFrame({"a": [1.0]}))


def test_fitted_state_holds_no_rows():
    import pickle

    rng = np.random.default_rng(0)
    secret = rng.normal(0, 1, 5000) * 1e3 + 123456.789
    df = pd.DataFrame({"x": secret})
    enc = TableEncoder(gmm_max_fit_samples=1000, random_state=0).fit(df)
    blob = pickle.dumps(enc)
    assert len(blob) < 20_000  # parameters only, no subsample of 1,000 rows
    inner = secret[(secret > secret.min()) & (secret < secret.max())]
    hits = sum(np.float64(v).tobytes() in blob for v in inner[:200])
    assert hits == 0
