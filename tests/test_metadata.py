import warnings

import numpy as np
import pandas as pd
import pytest

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
    with pytest.raises(MetadataError, match="column 'empty' is entirely missing"):
        Metadata.from_dataframe(pd.DataFrame({"a": [1.0, 2.0], "empty": [np.nan, np.nan]}))
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
