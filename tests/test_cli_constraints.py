"""Constraints in the metadata YAML and ``--condition`` on the command line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nhssynth import Metadata
from nhssynth.cli.config import ConfigError, _conditions

from .test_cli import run_cli


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_constraints")
    (root / "data").mkdir()
    rng = np.random.default_rng(0)
    n = 600
    admitted = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    df = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "age": rng.integers(18, 90, n),
        "admitted": admitted.strftime("%Y-%m-%d"),
        "discharged": (admitted + pd.to_timedelta(rng.integers(0, 30, n), unit="D"))
        .strftime("%Y-%m-%d"),
    })
    df.to_csv(root / "data" / "wards.csv", index=False)
    md = Metadata.from_dataframe(pd.read_csv(root / "data" / "wards.csv"))
    text = md.to_yaml() + ("constraints:\n"
                           "- {type: inequality, low: admitted, high: discharged}\n"
                           "- {type: range, column: age, min: 0, max: 110}\n")
    (root / "data" / "wards.yaml").write_text(text)
    return root


def test_yaml_constraints_and_conditions_reach_the_synthetic_table(workdir, capsys):
    rc, out, err = run_cli(workdir, "pipeline", "-d", "wards", "-e", "c", "--seed", "0",
                           "--arch", "AIM", "--epsilon", "3", "--steps", "dataloader", "model",
                           "--condition", "sex=F", "age>=60", "-n", "300", capsys=capsys)
    assert rc == 0, err
    runs = list((workdir / "experiments" / "c" / "wards").glob("AIM*"))
    synthetic = pd.read_csv(runs[0] / "synthetic.csv")
    assert len(synthetic) == 300
    assert (synthetic["sex"] == "F").all() and (synthetic["age"] >= 60).all()
    assert (pd.to_datetime(synthetic["discharged"]) >= pd.to_datetime(synthetic["admitted"])).all()


def test_condition_syntax():
    assert _conditions(["sex=F", "age>=60", "age<=80", "dx in E10,E11", "alive=true"],
                       "model.conditions") == {
        "sex": "F", "age": {"min": 60, "max": 80}, "dx": ["E10", "E11"], "alive": True}
    assert _conditions({"age": {"min": 1.5}}, "k") == {"age": {"min": 1.5, "max": None}}
    with pytest.raises(ConfigError, match="COL=VALUE"):
        _conditions(["age"], "model.conditions")
