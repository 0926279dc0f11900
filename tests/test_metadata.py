import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nhssynth import ColumnMetadata, Metadata, MetadataError
from nhssynth.datasets import load_example
from nhssynth.exceptions import MetadataWarning

from .conftest import load_shared

EXPECTED_KINDS = {
    "support2": {
        "sno": "id", "age": "continuous", "death": "boolean", "sex": "categorical",
        "hospdead": "boolean", "slos": "integer", "d.time": "integer", "dzgroup": "categorical",
        "dzclass": "categorical", "num.co": "integer", "edu": "integer", "income": "categorical",
        "scoma": "integer", "charges": "continuous", "totcst": "continuous", "totmcst": "continuous",
        "avtisst": "continuous", "race": "categorical", "sps": "continuous", "aps": "integer",
        "surv2m": "continuous", "surv6m": "continuous", "hday": "integer", "diabetes": "boolean",
        "dementia": "boolean", "ca": "categorical", "prg2m": "continuous", "prg6m": "continuous",
        "dnr": "categorical", "dnrday": "integer", "meanbp": "continuous", "wblc": "continuous",
        "hrt": "continuous", "resp": "integer", "temp": "continuous", "pafi": "continuous",
        "alb": "continuous", "bili": "continuous", "crea": "continuous", "sod": "integer",
        "ph": "continuous", "glucose": "continuous", "bun": "continuous", "urine": "continuous",
        "adlp": "integer", "adls": "integer", "sfdm2": "categorical", "adlsc": "continuous",
    },
    "covid_testing": {
        "subject_id": "integer", "fake_first_name": "categorical", "fake_last_name": "categorical",
        "gender": "categorical", "pan_day": "integer", "test_id": "categorical",
        "clinic_name": "categorical", "result": "categorical", "demo_group": "categorical",
        "age": "continuous", "drive_thru_ind": "boolean", "ct_result": "continuous",
        "orderset": "boolean", "payor_group": "categorical", "patient_class": "categorical",
        "col_rec_tat": "continuous", "rec_ver_tat": "continuous",
    },
    "flchain": {
        "age": "integer", "sex": "categorical", "sample.yr": "integer", "kappa": "continuous",
        "lambda": "continuous", "flc.grp": "integer", "creatinine": "continuous", "mgus": "boolean",
        "futime": "integer", "death": "boolean", "chapter": "categorical",
    },
    "adult": {
        "age": "integer", "workclass": "categorical", "fnlwgt": "integer", "education": "categorical",
        "education-num": "integer", "marital_status": "categorical", "occupation": "categorical",
        "relationship": "categorical", "race": "categorical", "sex": "categorical",
        "capital_gain": "integer", "capital_loss": "integer", "hours_per_week": "integer",
        "native_country": "categorical", "income_per_year": "categorical",
    },
}


@pytest.mark.parametrize("name", list(EXPECTED_KINDS))
def test_inference_on_shared_datasets(name, tmp_path):
    df = load_shared(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetadataWarning)
        md = Metadata.from_dataframe(df)
    assert md.names == list(df.columns)
    assert {c.name: c.kind for c in md} == EXPECTED_KINDS[name]
    for col in md:
        assert col.dtype == str(df[col.name].dtype)
        assert col.nullable == bool(df[col.name].isna().any())
        if col.kind == "categorical":
            assert set(col.categories) == set(df[col.name].dropna().unique())
            assert col.domain == "data"  # read from rows -> not public
        assert col.min is None and col.max is None  # bounds are never inferred
    # lossless YAML round trip, through a file
    path = tmp_path / "meta.yaml"
    md.to_yaml(path)
    assert Metadata.from_yaml(path) == md
    md.validate(df)


def test_example_dataset_dtypes_and_metadata():
    df, md = load_example(return_metadata=True)
    assert df.shape == (9105, 48)
    assert df["death"].dtype == bool
    assert df["edu"].dtype == "Int64" and df["edu"].isna().sum() == 1634
    assert isinstance(df["income"].dtype, pd.CategoricalDtype) and df["income"].dtype.ordered
    assert df["charges"].dtype == "float64" and df["charges"].isna().any()
    assert md["sno"].kind == "id"
    assert md["dzgroup"].domain == "declared"
    assert md["income"].categories == ["under $11k", "$11-$25k", "$25-$50k", ">$50k"]
    assert Metadata.from_yaml(md.to_yaml()) == md
    md.validate(df)


def test_datetime_and_bool_inference():
    df = pd.DataFrame({
        "admitted": pd.to_datetime(["2020-01-01 10:00", "2020-02-03 11:30", None]).tz_localize("Europe/London"),
        "naive": pd.to_datetime(["2020-01-01", "2021-01-01", "2022-05-06"]),
        "dob": ["1950-03-01", "1961-12-31", None],
        "flag": [True, False, True],
        "code": ["a", "b", "a"],
    })
    md = Metadata.from_dataframe(df)
    assert md["admitted"].kind == "datetime" and md["admitted"].timezone == "Europe/London"
    assert md["admitted"].nullable
    assert md["naive"].kind == "datetime" and md["naive"].timezone is None
    assert md["dob"].kind == "datetime" and md["dob"].datetime_format == "%Y-%m-%d"
    assert md["flag"].kind == "boolean"
    assert md["code"].categories == ["a", "b"]
    assert Metadata.from_yaml(md.to_yaml()) == md


def test_id_detection_is_not_fooled_by_unique_floats():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"patient_id": np.arange(100, 200), "weight": rng.normal(70, 10, 100),
                       "nhs_number": [f"{n:010d}" for n in rng.choice(10**9, 100, replace=False)],
                       "score": rng.choice(10**6, 100, replace=False)})
    md = Metadata.from_dataframe(df)
    assert md["patient_id"].kind == "id"
    assert md["nhs_number"].kind == "id"
    assert md["weight"].kind == "continuous"
    assert md["score"].kind == "integer"  # unique ints, but neither id-like name nor a row counter


def test_handwritten_yaml_with_declarations(tmp_path):
    text = """
nhssynth_metadata: 1
columns:
  age: {kind: integer, dtype: Int64, nullable: true, min: 0, max: 120, missing: impute, impute_value: 50}
  sex: {kind: categorical, dtype: category, categories: [F, M, X]}
  weight: {kind: continuous, dtype: float64, decimals: 1, min: 0.5, max: 400}
"""
    md = Metadata.from_yaml(text)
    assert md["age"].bounds() == (0, 120) and md["age"].has_declared_bounds
    assert md["age"].missing == "impute" and md["age"].impute_value == 50
    assert md["sex"].has_declared_categories
    assert md["weight"].decimals == 1
    assert Metadata.from_yaml(md.to_yaml()) == md
    df = pd.DataFrame({"age": pd.array([30, None], dtype="Int64"),
                       "sex": pd.Categorical(["F", "M"], categories=["F", "M", "X"]),
                       "weight": [70.5, 80.0]})
    md.validate(df)
    with pytest.raises(MetadataError, match=r"'age'.*above the declared max 120"):
        md.validate(df.assign(age=pd.array([130, None], dtype="Int64")))


@pytest.mark.parametrize("mutate, match", [
    (lambda df: df.assign(extra=1), r"\['extra'\] are not in the metadata"),
    (lambda df: df.drop(columns="sex"), r"\['sex'\] from the metadata are missing"),
    (lambda df: df.assign(sex=["F", "Q", "M"]), r"column 'sex' has value\(s\) outside the declared categories: 'Q'"),
    (lambda df: df.assign(age=["30", "x", "2"]), r"column 'age' should be numeric .* 'x'"),
    (lambda df: df.assign(age=[1.0, np.nan, 2.0]), r"column 'age' has 1 missing value\(s\) but the metadata says it has none"),
    (lambda df: df.assign(age=[1.0, np.inf, 2.0]), r"column 'age' holds infinite values"),
    (lambda df: df.assign(n=[1.5, 2.0, 3.0]), r"column 'n' is declared integer but holds fractional values"),
    (lambda df: df.assign(when=["2020-01-01", "not a date", "2020-01-03"]), r"column 'when' should hold datetimes"),
])
def test_validate_errors_name_column_and_problem(mutate, match):
    md = Metadata([
        ColumnMetadata("age", "continuous", "float64"),
        ColumnMetadata("sex", "categorical", "object", categories=["F", "M"]),
        ColumnMetadata("n", "integer", "int64"),
        ColumnMetadata("when", "datetime", "object", datetime_format="%Y-%m-%d"),
    ])
    good = pd.DataFrame({"age": [1.0, 2.0, 3.0], "sex": ["F", "M", "F"], "n": [1, 2, 3],
                         "when": ["2020-01-01", "2020-01-02", "2020-01-03"]})
    md.validate(good)
    with pytest.raises(MetadataError, match=match):
        md.validate(mutate(good))


def test_bad_frames_give_clear_errors():
    with pytest.raises(MetadataError, match="no rows"):
        Metadata.from_dataframe(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    with pytest.raises(MetadataError, match="no columns"):
        Metadata.from_dataframe(pd.DataFrame(index=range(3)))
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(MetadataError, match=r"duplicate column names \['a'\]"):
        Metadata.from_dataframe(dup)
    with pytest.raises(MetadataError, match="column names must be strings"):
        Metadata.from_dataframe(pd.DataFrame({0: [1.0], 1: [2.0]}))
    mixed = pd.DataFrame({"m": pd.Series(["a", 1, 2.5], dtype=object)})
    with pytest.raises(MetadataError, match=r"column 'm' mixes value types \['number', 'str'\].*astype\(str\)"):
        Metadata.from_dataframe(mixed)
    with pytest.raises(MetadataError, match="needs a pandas DataFrame"):
        Metadata.from_dataframe([[1, 2]])


def test_high_cardinality_text_warns():
    df = pd.DataFrame({"note": [f"text {i % 40}" for i in range(50)]})
    with pytest.warns(MetadataWarning, match="column 'note' has 40 distinct values"):
        Metadata.from_dataframe(df)


def test_bad_yaml_and_declarations():
    with pytest.raises(MetadataError, match="not valid YAML"):
        Metadata.from_yaml("columns: [\n  - a: {")
    with pytest.raises(MetadataError, match="unknown kind 'numbr'"):
        Metadata.from_yaml("columns:\n  a: {kind: numbr, dtype: float64}\n")
    with pytest.raises(MetadataError, match=r"column 'a': unknown field\(s\) \['colour'\]"):
        Metadata.from_yaml("columns:\n  a: {kind: continuous, dtype: float64, colour: red}\n")
    with pytest.raises(MetadataError, match="min .* is greater than max"):
        Metadata.from_yaml("columns:\n  a: {kind: continuous, dtype: float64, min: 5, max: 1}\n")
    with pytest.raises(MetadataError, match="does not exist"):
        Metadata.from_yaml("/nonexistent/meta.yaml")
    with pytest.raises(MetadataError, match="not a pandas dtype"):
        ColumnMetadata("a", "continuous", "floaty")


def test_kinds_override_and_coerce_and_read_csv(tmp_path):
    df = pd.DataFrame({"grade": [1, 2, 3, 2], "x": [0.5, 1.5, 2.5, 3.5]})
    md = Metadata.from_dataframe(df, kinds={"grade": "categorical"})
    assert md["grade"].kind == "categorical" and md["grade"].categories == [1, 2, 3]
    with pytest.raises(MetadataError, match="unknown column"):
        Metadata.from_dataframe(df, kinds={"nope": "integer"})
    full, md2 = load_example(return_metadata=True)
    small = full.head(200)
    path = tmp_path / "s.csv"
    small.to_csv(path, index=False)
    back = md2.read_csv(path)
    pd.testing.assert_frame_equal(back, small.reset_index(drop=True), check_exact=False, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# identifiers and free text
# --------------------------------------------------------------------------------------------
def _names(rng, n_rows: int, n_distinct: int, prefix: str) -> list[str]:
    """``n_rows`` strings with exactly ``n_distinct`` distinct values."""
    values = [f"{prefix}{i:05d}" for i in range(n_distinct)]
    values += list(rng.choice(values, n_rows - n_distinct))
    return list(rng.permutation(values))


def test_near_unique_text_is_inferred_as_id_with_a_warning():
    rng = np.random.default_rng(0)
    n = 1808
    df = pd.DataFrame({"first_name": _names(rng, n, 1580, "F"), "last_name": _names(rng, n, 1807, "L"),
                       "clinic": _names(rng, n, 88, "clinic "), "age": rng.integers(18, 90, n)})
    with pytest.warns(MetadataWarning) as record:
        md = Metadata.from_dataframe(df)
    assert md["first_name"].kind == "id" and md["last_name"].kind == "id"
    assert md["clinic"].kind == "categorical" and len(md["clinic"].categories) == 88
    messages = [str(w.message) for w in record]
    first = next(m for m in messages if "'first_name'" in m)
    assert "1,580 distinct values in 1,808 non-missing rows (87%)" in first
    assert "kind 'id'" in first and "kinds={'first_name': 'categorical'}" in first
    assert "kind: categorical" in first  # the YAML override
    assert not any("'clinic'" in m for m in messages)
    # the override keeps it categorical (with its categories, read from the data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetadataWarning)
        md2 = Metadata.from_dataframe(df, kinds={"first_name": "categorical"})
    assert md2["first_name"].kind == "categorical" and len(md2["first_name"].categories) == 1580
    assert md2["first_name"].domain == "data"


def test_id_columns_are_not_modelled_and_get_fresh_placeholders():
    from nhssynth import TableEncoder

    rng = np.random.default_rng(1)
    n = 600
    df = pd.DataFrame({"note": _names(rng, n, 500, "free text "), "sex": rng.choice(["F", "M"], n)})
    df.loc[::7, "note"] = None  # free text is often missing: the share counts non-missing rows
    with pytest.warns(MetadataWarning, match="'note'"):
        md = Metadata.from_dataframe(df)
    assert md["note"].kind == "id" and md["note"].nullable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc = TableEncoder(metadata=md, random_state=0).fit(df)
        out = enc.inverse_transform(enc.transform(df))
    assert enc.n_features_out_ <= 3  # the id column costs no feature (sex: one-hot of 2)
    assert out["note"].iloc[0] == "id-000001" and out["note"].is_unique
    pd.testing.assert_series_equal(out["sex"], df["sex"].reset_index(drop=True))


def test_legitimate_categoricals_stay_categorical():
    rng = np.random.default_rng(2)
    big = pd.DataFrame({"surname": _names(rng, 15_524, 27, "S"), "clinic": _names(rng, 15_524, 88, "C"),
                        "first_name": _names(rng, 15_524, 831, "N")})
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetadataWarning)  # not even a warning
        md = Metadata.from_dataframe(big)
    assert [c.kind for c in md] == ["categorical"] * 3
    # unique codes in a tiny table stay below the floor of 50 distinct values: categorical + warning
    small = pd.DataFrame({"ward": [f"w{i}" for i in range(40)] + ["w0"] * 10})
    with pytest.warns(MetadataWarning, match=r"column 'ward' has 40 distinct values .* kind: id"):
        assert Metadata.from_dataframe(small)["ward"].kind == "categorical"
    # a categorical dtype is the user's explicit choice: never turned into an id
    cat = pd.DataFrame({"code": pd.Categorical([f"c{i}" for i in range(200)])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetadataWarning)
        assert Metadata.from_dataframe(cat)["code"].kind == "categorical"


def test_unique_id_like_text_is_silently_an_id():
    df = pd.DataFrame({"nhs_number": [f"{i:010d}" for i in range(100)]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetadataWarning)
        assert Metadata.from_dataframe(df)["nhs_number"].kind == "id"


# --------------------------------------------------------------------------------------------
# decimals
# --------------------------------------------------------------------------------------------
def test_decimals_ignore_a_float_artefact():
    from nhssynth.metadata import _infer_decimals

    rng = np.random.default_rng(3)
    values = np.round(rng.normal(1.5, 0.4, 20_000), 4)
    values[123] = 1.521312232748112  # one float artefact with 15 significant digits
    md = Metadata.from_dataframe(pd.DataFrame({"x": values}))
    assert md["x"].kind == "continuous" and md["x"].decimals == 4
    # up to 0.1% artefacts (20 in 20,000) are tolerated; more switch rounding off
    base = np.round(rng.normal(1.5, 0.4, 20_000), 4)
    for n_bad, expected in ((20, 4), (21, None)):
        noisy = base.copy()
        noisy[:n_bad] += 1e-7 / 3
        assert _infer_decimals(noisy) == expected, n_bad
    assert _infer_decimals(np.array([np.nan, np.inf])) is None


def test_integer_valued_floats_stay_integer_with_their_float_dtype():
    df = pd.DataFrame({"n": [1.0, 2.0, np.nan, 40.0] * 10, "f32": np.arange(40, dtype=np.float32)})
    md = Metadata.from_dataframe(df)
    assert md["n"].kind == "integer" and md["n"].dtype == "float64" and md["n"].nullable
    assert md["f32"].kind == "integer" and md["f32"].dtype == "float32"
    assert md["n"].decimals is None


_PROPERTY = dict(max_examples=60, deadline=None)


@settings(**_PROPERTY)
@given(k=st.integers(0, 6), n=st.integers(1000, 4000), seed=st.integers(0, 2**32 - 1),
       artefacts=st.lists(st.floats(-100, 100, allow_nan=False, allow_infinity=False), max_size=4))
def test_property_k_decimals_plus_a_few_artefacts_infer_k(k, n, seed, artefacts):
    from nhssynth.metadata import _infer_decimals

    rng = np.random.default_rng(seed)
    if k:  # integers whose last digit is not 0, scaled: exactly k decimals, |x| < 100
        m = rng.integers(0, 10 ** (k + 1), n) * 10 + rng.integers(1, 10, n)
    else:
        m = rng.integers(1, 100, n)
    values = rng.choice([-1.0, 1.0], n) * m / 10.0**k
    sample = np.concatenate([values, artefacts[: n // 1000]])  # at most 0.1% artefacts
    assert _infer_decimals(rng.permutation(sample)) == k


@settings(**_PROPERTY)
@given(k=st.integers(0, 6), n=st.integers(1, 300), seed=st.integers(0, 2**32 - 1))
def test_property_inferred_decimals_never_exceed_the_data(k, n, seed):
    from nhssynth.metadata import _infer_decimals

    rng = np.random.default_rng(seed)
    values = np.round(rng.uniform(-100, 100, n), k)  # at most k decimals (some fewer)
    d = _infer_decimals(values)
    assert d is not None and d <= k
    assert np.all(np.abs(np.round(values, d) - values) <= 1e-9 * np.maximum(np.abs(values), 1e-300))


def test_numpy_strings_infer_and_round_trip_through_yaml():
    df = pd.DataFrame({"a": pd.Series([np.str_("x"), np.str_("y")] * 5, dtype=object),
                       "d": pd.Series([np.str_(f"2020-01-{i:02d}") for i in range(1, 11)], dtype=object)})
    md = Metadata.from_dataframe(df)
    assert md["a"].categories == ["x", "y"] and type(md["a"].categories[0]) is str
    assert md["d"].kind == "datetime"
    assert Metadata.from_yaml(md.to_yaml()) == md


# --------------------------------------------------------------------------------------------
# time zones and empty frames
# --------------------------------------------------------------------------------------------
def test_datetimes_mixing_time_zones_get_an_error_that_says_so():
    fix = r"pd\.to_datetime\(df\['t'\], utc=True\)"
    offsets = pd.DataFrame({"t": ["2020-01-01 10:00:00+00:00", "2020-06-01 10:00:00+01:00",
                                  "2020-07-01 10:00:00+01:00"]})
    with pytest.raises(MetadataError, match=r"column 't' mixes time zones \(UTC offsets: "
                                            r"'2020-01-01 10:00:00\+00:00', '2020-06-01 10:00:00\+01:00'\).*" + fix):
        Metadata.from_dataframe(offsets)
    zones = pd.DataFrame({"t": pd.Series([pd.Timestamp("2020-01-01", tz="UTC"),
                                          pd.Timestamp("2020-06-01", tz="Europe/London")], dtype=object)})
    with pytest.raises(MetadataError, match=r"column 't' mixes time zones \(zones: Europe/London, UTC\).*" + fix):
        Metadata.from_dataframe(zones)
    aware_naive = pd.DataFrame({"t": pd.Series([pd.Timestamp("2020-01-01", tz="UTC"),
                                                pd.Timestamp("2020-06-01")], dtype=object)})
    with pytest.raises(MetadataError, match=r"mixes time zones \(zones: UTC, naive\)"):
        Metadata.from_dataframe(aware_naive)
    # the suggested fix works
    fixed = offsets.assign(t=pd.to_datetime(offsets["t"], utc=True))
    assert Metadata.from_dataframe(fixed)["t"].timezone == "UTC"
    # validating against declared metadata says the same
    md = Metadata.from_yaml("columns:\n  t: {kind: datetime, dtype: object, "
                            "datetime_format: '%Y-%m-%d %H:%M:%S%z'}\n")
    with pytest.raises(MetadataError, match=r"column 't' mixes time zones.*" + fix):
        md.validate(offsets)
    md = Metadata.from_yaml("columns:\n  t: {kind: datetime, dtype: object}\n")
    with pytest.raises(MetadataError, match=r"column 't' mixes time zones"):
        md.validate(zones)


def test_empty_frames_raise_metadata_error():
    md = Metadata.from_dataframe(pd.DataFrame({"a": [1.5, 2.5], "b": ["x", "y"]}))
    empty = pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=object)})
    for bad in (empty, pd.DataFrame()):
        with pytest.raises(MetadataError, match="no (rows|columns)"):
            Metadata.from_dataframe(bad)
        with pytest.raises(MetadataError, match="no (rows|columns)"):
            md.validate(bad)
    md.validate(empty, allow_empty=True)
    assert md.coerce(empty).shape == (0, 2)  # casting an empty frame is fine


# --------------------------------------------------------------------------------------------
# CSV input: delimiter sniffing
# --------------------------------------------------------------------------------------------
@pytest.fixture()
def table():
    return pd.DataFrame({"age": [30.5, 41.0, 52.25, 60.0], "sex": ["F", "M", "F", "M"],
                         "note": ["a, b", "c", "d", "e"]})


@pytest.mark.parametrize("sep, suffix", [(";", ".csv"), ("\t", ".tsv"), ("|", ".csv"), (",", ".csv"),
                                         (";", ".csv.gz")])
def test_read_csv_sniffs_the_delimiter(table, tmp_path, sep, suffix):
    from nhssynth.metadata import read_csv_frame, sniff_delimiter

    path = tmp_path / f"t{suffix}"
    table.to_csv(path, sep=sep, index=False)
    assert sniff_delimiter(path) == sep
    md = Metadata.from_dataframe(table)
    pd.testing.assert_frame_equal(md.read_csv(path), table)
    pd.testing.assert_frame_equal(read_csv_frame(path), table)
    pd.testing.assert_frame_equal(md.read_csv(path, sep=sep), table)


def test_one_column_read_of_a_delimited_file_is_an_error(table, tmp_path):
    from nhssynth.metadata import read_csv_frame

    path = tmp_path / "semi.csv"
    # ragged rows defeat the sniffer, which then falls back to a comma
    path.write_text("age;sex;note\n30.5;F\n41.0;M;c;extra\n")
    with pytest.raises(MetadataError, match=r"data file '.*semi\.csv' was read as a single column "
                                            r"'age;sex;note'.*sep=';' \(command line: --sep ';'\)"):
        read_csv_frame(path)
    assert read_csv_frame(path, sep=",").shape == (2, 1)  # explicit: the user knows best
    md = Metadata.from_dataframe(table)
    with pytest.raises(MetadataError, match=r"semi\.csv.*--sep ';'"):
        md.read_csv(path, sep=",")  # the metadata expects three columns: still an error
    tabbed = tmp_path / "tabbed.csv"
    tabbed.write_text("age\tsex\n1\n")
    with pytest.raises(MetadataError, match=r"sep='tab' \(command line: --sep 'tab'\)"):
        read_csv_frame(tabbed)
    assert read_csv_frame(tabbed, sep="tab").columns.tolist() == ["age", "sex"]
    with pytest.raises(MetadataError, match="sep must be one character"):
        read_csv_frame(path, sep=";;")
    with pytest.raises(MetadataError, match="does not exist"):
        md.read_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(MetadataError, match="is empty"):
        read_csv_frame(tmp_path / "empty.csv")
    one = tmp_path / "one.csv"
    one.write_text("age\n1\n2\n")
    assert read_csv_frame(one).columns.tolist() == ["age"]  # a real one-column file is fine


@settings(**_PROPERTY)
@given(n_rows=st.integers(2, 400), data=st.data(), missing=st.integers(0, 50))
def test_property_text_id_rule(n_rows, data, missing):
    n_distinct = data.draw(st.integers(1, n_rows), label="n_distinct")
    rng = np.random.default_rng(n_rows * 1000 + n_distinct)
    values = [f"tok{i}" for i in range(n_distinct)]
    values = values + list(rng.choice(values, n_rows - n_distinct))
    col = pd.Series(list(rng.permutation(values)) + [None] * missing, dtype=object)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetadataWarning)
        kind = Metadata.from_dataframe(pd.DataFrame({"col": col}))["col"].kind
    unique_row_key = n_distinct == n_rows and missing == 0 and n_rows >= 10
    expected = "id" if unique_row_key or (n_distinct >= 50 and n_distinct > 0.5 * n_rows) else "categorical"
    assert kind == expected
    if kind == "id":  # always explained, with the override
        assert any("kinds={'col': 'categorical'}" in str(w.message) for w in caught)


def test_entirely_missing_columns_are_inferred_from_their_dtype():
    n = 4
    df = pd.DataFrame({"a": [1.5, 2.0, 3.0, 4.0], "f": np.nan,
                       "o": pd.Series([None] * n, dtype=object),
                       "d": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]"),
                       "i": pd.Series([pd.NA] * n, dtype="Int64"),
                       "b": pd.Series([pd.NA] * n, dtype="boolean"),
                       "c": pd.Categorical([None] * n, categories=["x", "y"])})
    with pytest.warns(MetadataWarning, match="column 'f' is entirely missing: it is kept as a "
                                             "nullable continuous column"):
        md = Metadata.from_dataframe(df)
    kinds = {c.name: c.kind for c in md.columns}
    assert kinds == {"a": "continuous", "f": "continuous", "o": "categorical", "d": "datetime",
                     "i": "integer", "b": "boolean", "c": "categorical"}
    assert all(md[name].nullable for name in "fodibc")
    assert md["o"].categories is None and md["c"].categories == ["x", "y"]
    md.validate(df)
