"""Tests of ``nhssynth metadata template``: a metadata YAML to review, written from a data file.

The template lists observed categories as ``domain: data`` (not public until the user says so),
leaves min/max out (the observed range is only quoted in a comment), and loads back to the
inferred metadata.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nhssynth import Metadata
from nhssynth.cli import main

from .test_cli import run_cli  # one in-process runner for the CLI tests
from nhssynth.exceptions import MetadataWarning
from nhssynth.cli.template import (CONFIRM_CATEGORIES, default_template_path,
                                   metadata_template_text, write_metadata_template)

N = 120


def small_frame() -> pd.DataFrame:
    """A categorical with a few values, an integer, a float with NaN, a datetime, free text and a
    high-cardinality categorical (60 codes in 120 rows: categorical, but over --max-categories)."""
    rng = np.random.default_rng(0)
    bmi = np.round(rng.normal(27.0, 4.0, N), 1)
    bmi[::10] = np.nan
    return pd.DataFrame({
        "sex": rng.choice(["F", "M", "U"], N),
        "age": rng.integers(18, 95, N),
        "bmi": bmi,
        "admitted": pd.date_range("2021-03-01", periods=N, freq="D").strftime("%Y-%m-%d"),
        "note": [f"patient said {i} things" for i in rng.permutation(N)],
        "ward": [f"W{i % 60:02d}" for i in rng.permutation(N)],
    })




@pytest.fixture
def data_csv(tmp_path) -> Path:
    path = tmp_path / "cohort.csv"
    small_frame().to_csv(path, index=False)
    return path


def test_template_from_csv_loads_back_with_warnings_and_no_bounds(data_csv, capsys):
    rc, out, err = run_cli(data_csv.parent, "metadata", "template", data_csv.name, capsys=capsys)
    assert rc == 0, err
    path = data_csv.parent / "cohort.metadata.yaml"
    assert path.is_file() and str(path.name) in out
    text = path.read_text(encoding="utf-8")

    # the same kinds and dtypes as inferring from the file
    with pytest.warns(MetadataWarning, match="column 'note'"):  # free text: kind id
        inferred = Metadata.from_dataframe(pd.read_csv(data_csv))
    back = Metadata.from_yaml(path)
    assert back.names == inferred.names
    assert [(c.kind, c.dtype, c.nullable) for c in back] == \
        [(c.kind, c.dtype, c.nullable) for c in inferred]
    assert {c.name: c.kind for c in back} == {"sex": "categorical", "age": "integer",
                                              "bmi": "continuous", "admitted": "datetime",
                                              "note": "id", "ward": "categorical"}
    assert back["bmi"].nullable and back["admitted"].datetime_format == "%Y-%m-%d"

    # categories listed (sorted) but not public: domain data
    assert back["sex"].categories == ["F", "M", "U"] and back["sex"].domain == "data"
    assert not any(c.has_declared_categories for c in back if c.kind == "categorical")
    # the high-cardinality column: no list, still domain data, and a comment saying why
    assert back["ward"].categories is None and back["ward"].domain == "data"
    assert re.search(r"# 60 distinct values in the data, more than --max-categories 50: not\s+"
                     r"listed", text)
    assert "identifier" in text and "free text" in text

    # the warning comment is right above each category list
    lines = text.splitlines()
    cat_lines = [i for i, line in enumerate(lines) if line.strip().startswith("categories:")]
    assert len(cat_lines) == 1
    assert lines[cat_lines[0] - 1].strip() == f"# {CONFIRM_CATEGORIES}"
    assert ("# read from the data: confirm these categories are public (a code list, a data "
            "dictionary) and change domain to declared") in text

    # no min/max values anywhere, numeric/datetime columns domain declared, observed range quoted
    spec = yaml.safe_load(text)
    for name, fields in spec["columns"].items():
        assert "min" not in fields and "max" not in fields, name
    assert not any(re.match(r"\s*(min|max):", line) for line in lines)
    assert all(not c.has_declared_bounds for c in back)
    for name in ("age", "bmi", "admitted"):
        assert spec["columns"][name]["domain"] == "declared"
    df = pd.read_csv(data_csv)
    assert f"observed in the data: {df['age'].min()} to {df['age'].max()} (for information only: " \
           f"NOT public" in text
    assert "observed in the data: 2021-03-01 to 2021-06-28" in text
    assert "plausible range" in text and "clinical reference" in text

    # the header: what the file is, public = no budget, domain data is not public, how to use it
    header = text.split("nhssynth_metadata:")[0]
    assert all(line.startswith("#") or not line.strip() for line in header.splitlines())
    for needle in ("nhssynth metadata template", "PUBLIC", "cost no privacy budget",
                   "NOT used as public", "--metadata FILE", 'DPVAESynthesizer(metadata="FILE")'):
        assert needle in header, needle

    # what to do next is printed
    assert "confirm" in out and "sex" in out and "ward" in out and "--metadata" in out


def test_flipping_domain_to_declared_makes_the_categories_public(data_csv, capsys):
    rc, _, err = run_cli(data_csv.parent, "metadata", "template", str(data_csv), "-o",
                         "meta/reviewed.yaml", capsys=capsys)
    assert rc == 0, err
    path = data_csv.parent / "meta" / "reviewed.yaml"
    text = path.read_text(encoding="utf-8")
    assert not Metadata.from_yaml(path)["sex"].has_declared_categories
    # the user confirms the list is public: change the domain line right below it
    marker = "categories: [F, M, U]\n    domain: data\n"
    assert text.count(marker) == 1
    path.write_text(text.replace(marker, "categories: [F, M, U]\n    domain: declared\n"),
                    encoding="utf-8")
    md = Metadata.from_yaml(path)
    assert md["sex"].has_declared_categories and md["sex"].categories == ["F", "M", "U"]
    assert md["ward"].domain == "data"  # the others are untouched
    # a declared public range is used as bounds
    text = path.read_text(encoding="utf-8").replace(
        "  age:\n    kind: integer\n", "  age:\n    kind: integer\n    min: 0\n    max: 120\n")
    path.write_text(text, encoding="utf-8")
    assert Metadata.from_yaml(path)["age"].has_declared_bounds
    # and the reviewed file reads the data it was written from
    Metadata.from_yaml(path).read_csv(data_csv)


def test_refuses_to_overwrite_without_force(data_csv, capsys):
    out_path = data_csv.parent / "cohort.metadata.yaml"
    out_path.write_text("# my reviewed metadata\n", encoding="utf-8")
    rc, out, err = run_cli(data_csv.parent, "metadata", "template", "cohort.csv", capsys=capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nhssynth: error:")
    assert "cohort.metadata.yaml" in lines[0] and "already exists" in lines[0] \
        and "--force" in lines[0]
    assert out_path.read_text(encoding="utf-8") == "# my reviewed metadata\n"
    rc, _, err = run_cli(data_csv.parent, "metadata", "template", "cohort.csv", "--force",
                         capsys=capsys)
    assert rc == 0, err
    assert "categories: [F, M, U]" in out_path.read_text(encoding="utf-8")
    # the library function refuses too
    with pytest.raises(FileExistsError, match="already exists"):
        write_metadata_template(small_frame(), out_path)


@pytest.mark.parametrize("args, needle", [
    (["metadata", "template", "no/such/file.csv"], "no/such/file.csv"),
    (["metadata", "template", "cohort.csv", "--sep", ";;"], "sep must be one character"),
    (["metadata", "template", "cohort.csv", "--max-categories", "many"], "--max-categories"),
    (["metadata", "template", "cohort.csv", "--epsilon", "1"], "--epsilon"),
    (["metadata", "template", "cohort.csv", "--forse"], "did you mean --force?"),
    (["metadata", "template"], "DATA"),
    (["metadata"], "ACTION"),
])
def test_bad_input_gives_one_line_error(data_csv, capsys, args, needle):
    rc, out, err = run_cli(data_csv.parent, *args, capsys=capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nhssynth: error:"), err
    assert needle in lines[0]
    assert "Traceback" not in err
    assert not (data_csv.parent / "cohort.metadata.yaml").exists()


def test_help_lists_the_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "metadata" in out and "metadata template" in out
    assert main(["metadata", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: nhssynth metadata" in out and "template" in out
    assert main(["metadata", "template", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("DATA", "--output", "--sep", "--max-categories", "--force"):
        assert flag in out


def test_max_categories_and_delimiter(tmp_path, capsys):
    path = tmp_path / "semi.csv"
    small_frame().to_csv(path, sep=";", index=False)
    rc, out, err = run_cli(tmp_path, "metadata", "template", "semi.csv", "--max-categories", "2",
                           capsys=capsys)
    assert rc == 0, err
    md = Metadata.from_yaml(tmp_path / "semi.metadata.yaml")
    assert md.names == list(small_frame().columns)  # the ';' was sniffed
    assert md["sex"].categories is None and md["sex"].kind == "categorical"
    rc, out, err = run_cli(tmp_path, "metadata", "template", "semi.csv", "--sep", ";", "--force",
                           "--max-categories", "60", capsys=capsys)
    assert rc == 0, err
    md = Metadata.from_yaml(tmp_path / "semi.metadata.yaml")
    assert md["ward"].categories == [f"W{i:02d}" for i in range(60)]  # sorted
    assert md["ward"].domain == "data"


def test_template_is_accepted_by_the_dataloader(data_csv, capsys):
    rc, _, err = run_cli(data_csv.parent, "metadata", "template", "cohort.csv", capsys=capsys)
    assert rc == 0, err
    rc, out, err = run_cli(data_csv.parent, "dataloader", "-d", "cohort.csv", "-m",
                           "cohort.metadata.yaml", "-e", "t", "--seed", "0", "--no-encode",
                           capsys=capsys)
    assert rc == 0, err


def test_awkward_names_and_values_round_trip(tmp_path):
    df = pd.DataFrame({
        "null": ["yes", "no", "yes", "no"],
        "a: b": ["#x", "y: z", "'q'", "#x"],
        "123": [1.5, 2.25, None, 4.0],
        "# not a comment": ["ü", "é", "ü", "é"],
        "true": pd.to_datetime(["2020-01-01", "2020-01-02", None, "2020-01-04"]).tz_localize("UTC"),
        "flag": [True, False, True, True],
        "grade": pd.Categorical(["high", "low", "mid", "low"], categories=["low", "mid", "high"],
                                ordered=True),
    })
    path = write_metadata_template(df, tmp_path / "odd.yaml")
    back = Metadata.from_yaml(path)
    inferred = Metadata.from_dataframe(df)
    assert back.to_dict() == inferred.to_dict()
    assert back["grade"].categories == ["low", "mid", "high"]  # a dtype's order is kept
    assert back["null"].categories == ["no", "yes"]


def test_category_dtype_over_the_limit_keeps_its_list(tmp_path):
    codes = [f"C{i:03d}" for i in range(80)]
    df = pd.DataFrame({"code": pd.Categorical(codes * 2, categories=codes)})
    text = metadata_template_text(df, max_categories=50)
    md = Metadata.from_yaml(text)
    assert md["code"].categories == codes and md["code"].domain == "data"
    assert "listed anyway because dtype 'category' needs its categories" in " ".join(
        line.strip("# ") for line in text.splitlines())


def test_default_path():
    assert default_template_path("data/x.csv") == Path("data/x.metadata.yaml")
    assert default_template_path("data/x.csv.gz") == Path("data/x.metadata.yaml")
    assert default_template_path("x.parquet") == Path("x.metadata.yaml")
    assert default_template_path("x.dat") == Path("x.metadata.yaml")


def test_parquet(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    small_frame().to_parquet(tmp_path / "p.parquet")
    rc, _, err = run_cli(tmp_path, "metadata", "template", "p.parquet", capsys=capsys)
    assert rc == 0, err
    assert Metadata.from_yaml(tmp_path / "p.metadata.yaml")["sex"].domain == "data"
