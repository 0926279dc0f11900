"""The command line with ``--arch AIM`` and the ``auto`` batch size.

AIM runs on a 400-row, 8-column slice of the bundled SUPPORT2 table (a few seconds a fit).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nhssynth import AIMSynthesizer
from nhssynth.cli import main

from .test_cli import run_cli  # one in-process runner for the CLI tests
from nhssynth.cli.commands import _build
from nhssynth.cli.config import ConfigError, load_config_file, resolve_config
from nhssynth.cli.experiment import expand_runs
from nhssynth.cli.main import build_parser
from nhssynth.io import load_synthesizer

COLUMNS = ["age", "sex", "dzgroup", "death", "num.co", "income", "meanbp", "edu"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with data/small.csv + data/small.yaml (declared bounds)."""
    from nhssynth.datasets import load_example

    root = tmp_path_factory.mktemp("cli_aim")
    (root / "data").mkdir()
    df, md = load_example(return_metadata=True)
    small = df[COLUMNS].sample(400, random_state=0).reset_index(drop=True)
    meta = (md.select(COLUMNS).update("age", min=0.0, max=110.0).update("meanbp", min=0.0, max=200.0)
            .update("num.co", min=0, max=10).update("edu", min=0, max=31))
    small.to_csv(root / "data" / "small.csv", index=False)
    meta.to_yaml(root / "data" / "small.yaml")
    return root




def cli_config(*args: str, file_spec: dict | None = None) -> dict:
    """The resolved config of ``nhssynth model ARGS`` (flags parsed as the CLI parses them)."""
    from nhssynth.cli.config import OPTION_BY_KEY

    ns, extras = build_parser().parse_known_args(["model", *args])
    assert not extras
    cli = {k: v for k, v in vars(ns).items() if k in OPTION_BY_KEY}
    return resolve_config(file_spec, cli)


# --------------------------------------------------------------------------------------------
def test_aim_run_saves_a_loadable_model_and_its_privacy_report(workdir, capsys):
    rc, out, err = run_cli(workdir, "pipeline", "-d", "small", "-e", "aim", "--seed", "0",
                           "--arch", "AIM", "--epsilon", "2", "--n-bins", "8",
                           "--steps", "dataloader", "model", "evaluation", "dashboard",
                           "--eval-max-rows", "300", capsys=capsys)
    assert rc == 0, err
    data = workdir / "experiments" / "aim" / "small"
    run = data / "AIM_eps2_r0"
    assert "AIM_eps2_r0" in out
    privacy = json.loads((run / "privacy.json").read_text())
    assert privacy["private"] and 0 < privacy["epsilon"] <= 2.0
    assert privacy["details"]["measured"]  # the marginals AIM chose
    record = json.loads((run / "run.json").read_text())
    assert record["architecture"] == "AIM" and record["epsilon_budget"] == 2.0
    assert record["params"] == {"epsilon": 2.0, "delta": None, "n_bins": 8, "degree": 2}
    model = AIMSynthesizer.load(run / "model")
    assert isinstance(load_synthesizer(run / "model"), AIMSynthesizer)
    assert model.n_bins == 8 and model.degree == 2 and model.epsilon == 2.0
    assert list(model.sample(5, random_state=0).columns) == COLUMNS
    synthetic = pd.read_csv(run / "synthetic.csv")
    assert list(synthetic.columns) == COLUMNS and len(synthetic) == 320
    # evaluation, comparison and the dashboard pick the run up like any other
    assert (run / "evaluation.json").is_file() and (run / "report.html").is_file()
    comparison = pd.read_csv(data / "comparison.csv")
    assert comparison["architecture"].tolist() == ["AIM"]
    assert "AIM_eps2_r0" in (workdir / "experiments" / "aim" / "index.html").read_text()


def test_aim_grid_and_run_names():
    cfg = cli_config("--arch", "aim", "Marginal", "--epsilon", "1", "3", "--degree", "2", "3",
                     "--n-bins", "16")
    names = [r.name for r in expand_runs(cfg["model"], 0)]
    assert names == ["AIM_eps1_deg2_r0", "AIM_eps1_deg3_r0", "AIM_eps3_deg2_r0",
                     "AIM_eps3_deg3_r0", "Marginal_eps1_r0", "Marginal_eps3_r0"]
    spec = expand_runs(cfg["model"], 0)[1]
    est = _build(spec, metadata=None, verbose=False)
    assert isinstance(est, AIMSynthesizer)
    assert (est.epsilon, est.delta, est.degree, est.n_bins, est.random_state) == \
        (1.0, None, 3, 16, spec.fit_seed)
    for bad in (["--degree", "4"], ["--n-bins", "1"]):
        with pytest.raises(ConfigError):
            cli_config("--arch", "AIM", *bad)


def test_unknown_architecture_suggests_the_closest(workdir, capsys):
    rc, out, err = run_cli(workdir, "model", "--arch", "AIMS", capsys=capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert "unknown architecture 'AIMS'; did you mean 'AIM'?" in err
    assert "choose from AIM, DPVAE, VAE, Marginal" in err
    rc, out, err = run_cli(workdir, "model", "--arch", "DPVEA", capsys=capsys)
    assert rc == 2 and "did you mean 'DPVAE'?" in err
    rc, out, err = run_cli(workdir, "model", "--arch", "GAN", capsys=capsys)
    assert rc == 2 and "unknown architecture 'GAN'; choose from" in err


def test_batch_size_auto_parses(tmp_path):
    assert cli_config()["model"]["batch_size"] == ["auto"]  # the default
    assert cli_config("--batch-size", "auto", "64")["model"]["batch_size"] == ["auto", 64]
    assert cli_config("--batch-size", "AUTO")["model"]["batch_size"] == ["auto"]
    (tmp_path / "c.yaml").write_text("model:\n  batch_size: auto\n")
    cfg = resolve_config(load_config_file(tmp_path / "c.yaml"), {})
    assert cfg["model"]["batch_size"] == ["auto"]
    cfg = resolve_config({"model": {"batch_size": [32, "auto"]}}, {})
    assert cfg["model"]["batch_size"] == [32, "auto"]
    for bad in ("big", 0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="batch_size"):
            resolve_config({"model": {"batch_size": bad}}, {})
    with pytest.raises(SystemExit):
        build_parser().parse_known_args(["model", "--batch-size", "big"])
    cfg = cli_config("--arch", "DPVAE", "VAE", "--batch-size", "auto", "64")
    runs = expand_runs(cfg["model"], 0)
    assert [r.name for r in runs] == ["DPVAE_eps1_bsauto_r0", "DPVAE_eps1_bs64_r0",
                                      "VAE_bsauto_r0", "VAE_bs64_r0"]
    assert _build(runs[0], metadata=None, verbose=False).batch_size == "auto"
    assert _build(runs[3], metadata=None, verbose=False).batch_size == 64
