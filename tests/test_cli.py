"""Tests of the ``nhssynth`` command line: every subcommand, the experiments layout,
reproduction from a saved config (byte for byte), bad input, atomic outputs, the dashboard.

Everything runs on a 400-row slice of the bundled SUPPORT2 table with tiny models.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nhssynth.cli import main
from nhssynth.cli.config import (ConfigError, check_keys, default_config, find_config,
                                 load_config_file, resolve_config)
from nhssynth.cli.experiment import derive_seed, expand_runs
from nhssynth.cli.files import write_csv, write_text

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["age", "sex", "dzgroup", "death", "num.co", "income", "meanbp", "edu"]
TINY = ["--max-epochs", "1", "--batch-size", "64", "--hidden-dims", "8", "--latent-dim", "2",
        "--eval-max-rows", "300"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with data/small.csv + data/small.yaml (declared bounds) and data/bare.csv."""
    from nhssynth.datasets import load_example

    root = tmp_path_factory.mktemp("cli")
    (root / "data").mkdir()
    df, md = load_example(return_metadata=True)
    small = df[COLUMNS].sample(400, random_state=0).reset_index(drop=True)
    meta = (md.select(COLUMNS).update("age", min=0.0, max=110.0).update("meanbp", min=0.0, max=200.0)
            .update("num.co", min=0, max=10).update("edu", min=0, max=31))
    small.to_csv(root / "data" / "small.csv", index=False)
    meta.to_yaml(root / "data" / "small.yaml")
    small[["age", "sex", "num.co"]].head(200).to_csv(root / "data" / "bare.csv", index=False)
    return root


def run_cli(cwd: Path, *args: str, capsys=None) -> tuple[int, str, str]:
    """Call the entry point in-process with ``cwd`` as working directory."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        rc = main(list(args))
    finally:
        os.chdir(old)
    out, err = capsys.readouterr() if capsys is not None else ("", "")
    return rc, out, err


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "nhssynth"
    return [str(script)] if script.exists() else [sys.executable, "-m", "nhssynth"]


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def strip_timings(model_json: bytes) -> dict:
    doc = json.loads(model_json)
    for rec in doc["estimator"]["state"].get("history_", []):
        (rec.get("__dict__", rec)).pop("seconds", None)
    return doc


# --------------------------------------------------------------------------------------------
# help, config files, grid
# --------------------------------------------------------------------------------------------
def test_help_lists_every_command_and_flag(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("dataloader", "model", "evaluation", "plotting", "dashboard", "pipeline", "config"):
        assert cmd in out
    assert main(["pipeline", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--dataset", "--data-dir", "--experiment-name", "--seed", "--save-config",
                 "--epsilon", "--repeats", "--num-samples", "--target", "--port", "--debug"):
        assert flag in out
    for cmd in ("dataloader", "model", "evaluation", "plotting", "dashboard", "config"):
        assert main([cmd, "--help"]) == 0
        assert "usage: nhssynth " + cmd in capsys.readouterr().out


def test_python_m_nhssynth_help():
    res = subprocess.run([sys.executable, "-m", "nhssynth", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "pipeline" in res.stdout


@pytest.mark.parametrize("name", ["demo", "quick", "privacy_sweep", "full_evaluation"])
def test_example_configs_are_valid(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./config here: the packaged config is found
    path = find_config(name)
    assert path.parent == REPO / "nhssynth" / "cli" / "configs"
    cfg = resolve_config(load_config_file(path), {})
    assert cfg["dataset"] == "example" and cfg["seed"] == 0
    assert expand_runs(cfg["model"], cfg["seed"])


def test_grid_expansion_and_seeds():
    cfg = default_config()["model"]
    cfg.update(architectures=["DPVAE", "VAE", "Marginal"], epsilon=[1.0, 3.0], repeats=2,
               max_epochs=[5, 10], delta=[None], batch_size=[64], hidden_dims=[[8]],
               latent_dim=[2], learning_rate=[0.01], bins=[10])
    runs = expand_runs(cfg, 0)
    names = [r.name for r in runs]
    # DPVAE: 2 eps x 2 epochs x 2 repeats; VAE ignores epsilon: 2 epochs x 2; Marginal: 2 eps x 2
    assert len(runs) == 8 + 4 + 4 and len(set(names)) == len(names)
    assert "DPVAE_eps1_ep5_r0" in names and "VAE_ep10_r1" in names and "Marginal_eps3_r1" in names
    again = expand_runs(cfg, 0)
    assert [(r.fit_seed, r.sample_seed) for r in runs] == [(r.fit_seed, r.sample_seed) for r in again]
    assert len({r.fit_seed for r in runs}) == len(runs)
    assert expand_runs(cfg, 1)[0].fit_seed != runs[0].fit_seed
    assert derive_seed(0, "x") == derive_seed(0, "x") != derive_seed(0, "y")


def test_unknown_key_suggests_the_right_one(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'epsilon'"):
        check_keys({"model": {"epsilonn": 1}}, "x")
    with pytest.raises(ConfigError, match="belongs in section 'model'"):
        check_keys({"epsilon": 1}, "x")


# --------------------------------------------------------------------------------------------
# pipeline, layout, reproduction
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_pipeline_layout_and_byte_identical_reproduction(workdir, capsys):
    rc, out, err = run_cli(workdir, "pipeline", "--dataset", "small", "--experiment-name", "a",
                           "--seed", "7", "--arch", "VAE", "Marginal", "--epsilon", "1", "3",
                           "--target", "death", "--num-samples", "150", "--save-config", *TINY,
                           capsys=capsys)
    assert rc == 0, err
    root = workdir / "experiments" / "a"
    data = root / "small"
    for name in ("config.yaml", "index.html"):
        assert (root / name).is_file()
    for name in ("dataloader.json", "metadata.yaml", "train.csv", "holdout.csv",
                 "encoded_train.npy", "encoder_spans.json", "comparison.csv", "epsilon_sweep.png"):
        assert (data / name).is_file(), name
    runs = sorted(p.name for p in data.iterdir() if p.is_dir())
    assert runs == ["Marginal_eps1_r0", "Marginal_eps3_r0", "VAE_r0"]
    for run in runs:
        for name in ("run.json", "synthetic.csv", "privacy.json", "evaluation.json",
                     "evaluation.csv", "report.html", "model/model.json", "plots/marginals.png",
                     "plots/pair_differences.png", "plots/dcr.png"):
            assert (data / run / name).is_file(), (run, name)
    assert not [p for p in root.rglob("*") if ".tmp" in p.name]
    info = json.loads((data / "dataloader.json").read_text())
    assert info["n_train"] + info["n_holdout"] == 400 and info["n_holdout"] == 80
    # synthetic data re-reads exactly with the saved metadata
    from nhssynth import Metadata
    md = Metadata.from_yaml(data / "metadata.yaml")
    syn = md.read_csv(data / "VAE_r0" / "synthetic.csv")
    assert len(syn) == 150 and list(syn.columns) == COLUMNS
    privacy = json.loads((data / "Marginal_eps1_r0" / "privacy.json").read_text())
    assert privacy["private"] and privacy["epsilon"] <= 1.0 + 1e-9
    assert json.loads((data / "VAE_r0" / "privacy.json").read_text())["private"] is False
    ev = json.loads((data / "VAE_r0" / "evaluation.json").read_text())
    assert 0 <= ev["summary"]["fidelity"] <= 1 and "utility" in ev["summary"]
    comparison = pd.read_csv(data / "comparison.csv")
    assert set(comparison["run"]) == set(runs)
    # summary screen
    assert "eps spent" in out and "index.html" in out and "config.yaml" in out
    # the saved config lists every key with the resolved values
    saved = load_config_file(root / "config.yaml")
    assert saved["seed"] == 7 and saved["experiment_name"] == "a"
    assert saved["model"]["epsilon"] == [1.0, 3.0] and saved["model"]["bins"] == [20]

    # reproduce through the console script, into another experiment folder
    res = subprocess.run(cli_command() + ["config", "-c", str(root / "config.yaml"),
                                          "--experiment-name", "b", "--quiet"],
                         cwd=workdir, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    a, b = files_of(root), files_of(workdir / "experiments" / "b")
    assert set(a) - {"config.yaml"} == set(b)
    # reports carry their generation time, the index its experiment name, model.json the
    # wall-clock seconds of each epoch: everything else must be identical bytes
    timed = {"index.html"} | {k for k in a if k.endswith("report.html")}
    for key in sorted(set(b) - timed):
        if key.endswith("model/model.json"):
            assert strip_timings(a[key]) == strip_timings(b[key]), key
        else:
            assert a[key] == b[key], key
    report_a = re.sub(rb"Generated [^<]*? by", b"", a["small/VAE_r0/report.html"])
    report_b = re.sub(rb"Generated [^<]*? by", b"", b["small/VAE_r0/report.html"])
    assert report_a == report_b


def test_modules_one_by_one_with_inferred_metadata(workdir, capsys):
    common = ["--dataset", "bare", "--experiment-name", "steps", "--seed", "1"]
    rc, out, err = run_cli(workdir, "dataloader", *common, "--holdout-fraction", "0.25",
                           "--no-encode", capsys=capsys)
    assert rc == 0, err
    data = workdir / "experiments" / "steps" / "bare"
    assert (data / "metadata.yaml").is_file() and not (data / "encoded_train.npy").exists()
    assert json.loads((data / "dataloader.json").read_text())["metadata"] == "inferred"
    rc, out, err = run_cli(workdir, "model", "-e", "steps", "--arch", "marginal",
                           "--epsilon", "2", "--repeats", "2", capsys=capsys)
    assert rc == 0, err
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == ["Marginal_eps2_r0",
                                                                   "Marginal_eps2_r1"]
    a = (data / "Marginal_eps2_r0" / "synthetic.csv").read_bytes()
    b = (data / "Marginal_eps2_r1" / "synthetic.csv").read_bytes()
    assert a != b  # repeats use different seeds
    rc, out, err = run_cli(workdir, "evaluation", "-e", "steps", "--no-baseline",
                           "--eval-max-rows", "100", capsys=capsys)
    assert rc == 0, err
    assert (data / "Marginal_eps2_r1" / "evaluation.json").is_file()
    rc, out, err = run_cli(workdir, "plotting", "-e", "steps", "--eval-max-rows", "100",
                           capsys=capsys)
    assert rc == 0, err
    assert (data / "Marginal_eps2_r0" / "plots" / "marginals.png").stat().st_size > 1000
    rc, out, err = run_cli(workdir, "dashboard", "-e", "steps", capsys=capsys)
    assert rc == 0, err
    page = (workdir / "experiments" / "steps" / "index.html").read_text()
    assert "Marginal_eps2_r1" in page and "bare/Marginal_eps2_r0/report.html" in page
    assert "http://" not in page.replace("http-equiv", "") and "https://" not in page


@pytest.mark.slow
def test_dpvae_run_reports_its_budget(workdir, capsys):
    rc, out, err = run_cli(workdir, "pipeline", "-d", "small", "-e", "dp", "--seed", "0",
                           "--arch", "DPVAE", "--epsilon", "4", "--steps", "dataloader", "model",
                           *TINY, capsys=capsys)
    assert rc == 0, err
    run = workdir / "experiments" / "dp" / "small" / "DPVAE_eps4_r0"
    privacy = json.loads((run / "privacy.json").read_text())
    assert privacy["private"] and 0 < privacy["epsilon"] <= 4.0
    from nhssynth import DPVAESynthesizer
    model = DPVAESynthesizer.load(run / "model")
    assert list(model.sample(5, random_state=0).columns) == COLUMNS
    assert "DPVAE_eps4_r0" in out


# --------------------------------------------------------------------------------------------
# bad input: one line on stderr, exit status 2, no traceback
# --------------------------------------------------------------------------------------------
def _bad_inputs(workdir: Path) -> dict[str, tuple[list[str], str]]:
    (workdir / "broken.yaml").write_text("model:\n  epsilon: [1, 3\n")
    (workdir / "typo.yaml").write_text("dataset: small\nmodel:\n  epsilonn: 3\n")
    (workdir / "negative.yaml").write_text("dataset: small\nmodel:\n  epsilon: [1, -2]\n")
    (workdir / "data" / "ragged.csv").write_text("age;sex\n30;F\n41;M;x\n")
    meta = (workdir / "data" / "small.yaml").read_text()
    (workdir / "data" / "wrongcol.csv").write_text((workdir / "data" / "small.csv").read_text())
    (workdir / "data" / "wrongcol.yaml").write_text(
        meta.replace("  age:", "  agee:"))
    return {
        "missing dataset": (["dataloader", "-d", "nosuchdata"], "not found"),
        "missing config": (["config", "-c", "nosuchconfig"], "not found"),
        "missing metadata": (["dataloader", "-d", "small", "-m", "nope.yaml"], "does not exist"),
        "unknown column in metadata": (["dataloader", "-d", "wrongcol"], "agee"),
        "invalid YAML": (["config", "-c", "broken.yaml"], "not valid YAML"),
        "unknown key in config": (["config", "-c", "typo.yaml"], "epsilonn"),
        "epsilon <= 0 in config": (["config", "-c", "negative.yaml"], "epsilon"),
        "epsilon <= 0 flag": (["pipeline", "-d", "small", "--epsilon", "0"], "epsilon"),
        "unknown flag": (["model", "--epsilom", "3"],
                         "unrecognized arguments: --epsilom 3; did you mean --epsilon?"),
        "flag of another command": (["model", "--holdout-fraction", "0.1"],
                                    "--holdout-fraction is a flag of 'dataloader'"),
        "semicolon data read as one column": (["dataloader", "-d", "ragged"], "--sep ';'"),
        "unknown architecture": (["model", "--arch", "GAN"], "unknown architecture"),
        "unknown target": (["pipeline", "-d", "small", "-e", "tgt", "--arch", "Marginal",
                            "--target", "nosuchcol", "--steps", "dataloader", "model",
                            "evaluation"], "nosuchcol"),
    }


def test_bad_input_gives_one_line_error(workdir, capsys):
    for label, (args, needle) in _bad_inputs(workdir).items():
        rc, out, err = run_cli(workdir, *args, capsys=capsys)
        assert rc == 2, (label, rc, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nhssynth: error:"), (label, err)
        assert needle in lines[0], (label, lines[0])
        assert "Traceback" not in err


def test_bad_input_in_a_subprocess_and_debug_traceback(workdir):
    cmd = cli_command() + ["dataloader", "-d", "nosuchdata"]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().startswith("nhssynth: error: dataset 'nosuchdata' not found")
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = subprocess.run(cmd + ["--debug"], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "Traceback" in res.stderr


# --------------------------------------------------------------------------------------------
# nothing half-written
# --------------------------------------------------------------------------------------------
def test_atomic_writes_leave_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    write_csv(target, pd.DataFrame({"x": [0.1, 2.0]}))
    before = target.read_bytes()

    class Boom(pd.DataFrame):
        def to_csv(self, path, **kw):
            Path(path).write_text("x\n0.1\n")  # partial output, then the process is interrupted
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_csv(target, Boom({"x": [1.0]}))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    write_text(tmp_path / "a.txt", "done")
    assert (tmp_path / "a.txt").read_text() == "done"
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_interrupted_model_step_leaves_no_complete_looking_run(workdir, capsys, monkeypatch):
    rc, _, err = run_cli(workdir, "dataloader", "-d", "bare", "-e", "interrupt", "--seed", "0",
                         "--no-encode", capsys=capsys)
    assert rc == 0, err
    from nhssynth.synthesizers import MarginalSynthesizer

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(MarginalSynthesizer, "sample", boom)
    rc, _, err = run_cli(workdir, "model", "-e", "interrupt", "--arch", "Marginal",
                         capsys=capsys)
    assert rc == 130 and "interrupted" in err
    run = workdir / "experiments" / "interrupt" / "bare" / "Marginal_eps1_r0"
    assert not (run / "run.json").exists() and not (run / "synthetic.csv").exists()
    assert not [p for p in run.parent.rglob("*") if ".tmp" in p.name]


# --------------------------------------------------------------------------------------------
# dashboard served on localhost, rendered by headless Chromium
# --------------------------------------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.slow
def test_dashboard_served_and_rendered_in_chromium(workdir, capsys, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI for the dashboard test")
        pytest.skip("chromium not installed")
    exp = workdir / "experiments" / "dash"
    if not (exp / "index.html").exists():
        rc, _, err = run_cli(workdir, "pipeline", "-d", "bare", "-e", "dash", "--seed", "0",
                             "--arch", "Marginal", "--epsilon", "1", "5", "--no-baseline",
                             "--eval-max-rows", "100", "--steps", "dataloader", "model",
                             "evaluation", "dashboard", capsys=capsys)
        assert rc == 0, err
    proc = subprocess.Popen(cli_command() + ["dashboard", "-e", "dash", "--serve", "--port", "0"],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:
            m = re.search(r"(http://127\.0\.0\.1:\d+/index\.html)", line)
            if m:
                url = m.group(1)
                break
        assert url, proc.stderr.read() if proc.poll() is not None else "no URL printed"
        import urllib.request
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200 and b"Marginal_eps5_r0" in resp.read()
        report = url.replace("index.html", "bare/Marginal_eps1_r0/report.html")
        with urllib.request.urlopen(report, timeout=30) as resp:
            assert resp.status == 200
        shot = tmp_path / "dash.png"
        res = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
             "--window-size=1280,900", url],
            capture_output=True, text=True, timeout=120)
        assert shot.is_file(), res.stderr[-2000:]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    from matplotlib.image import imread
    img = imread(shot)
    assert img.shape[0] == 900 and img.shape[1] == 1280
    assert shot.stat().st_size > 20_000
    assert float(np.std(img[..., :3])) > 0.05  # not a blank page


# --------------------------------------------------------------------------------------------
# NHSSynth flag names, unknown flags, delimiters, packaged configs
# --------------------------------------------------------------------------------------------
def test_upstream_nhssynth_flags_are_aliases():
    from nhssynth.cli.main import build_parser

    args, extras = build_parser().parse_known_args(
        ["model", "--num-epochs", "5", "10", "--target-epsilon", "1", "3", "--target-delta", "1e-6",
         "--architecture", "DPVAE"])
    assert not extras
    flags = vars(args)
    assert flags["model.max_epochs"] == [5, 10] and flags["model.epsilon"] == [1.0, 3.0]
    assert flags["model.delta"] == [1e-6] and flags["model.architectures"] == ["DPVAE"]
    cfg = resolve_config(None, {k: v for k, v in flags.items() if "." in k})
    assert cfg["model"]["max_epochs"] == [5, 10]


def test_upstream_nhssynth_config_keys_are_aliases(tmp_path):
    path = tmp_path / "upstream.yaml"
    path.write_text("dataset: example\nmodel:\n  architecture: [DPVAE]\n  num_epochs: [30, 50]\n"
                    "  target_epsilon: [1.0, 3.0]\n")
    cfg = resolve_config(load_config_file(path), {})
    assert cfg["model"]["max_epochs"] == [30, 50] and cfg["model"]["epsilon"] == [1.0, 3.0]
    assert cfg["model"]["architectures"] == ["DPVAE"]
    path.write_text("model:\n  num_epochs: 3\n  max_epochs: 4\n")
    with pytest.raises(ConfigError, match="sets both 'max_epochs' and its NHSSynth alias 'num_epochs'"):
        load_config_file(path)


def test_unknown_flags_suggest_the_closest(capsys):
    assert main(["model", "--max-epoch-count", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nhssynth: error: unrecognized arguments: --max-epoch-count 3")
    assert "did you mean --max-epochs?" in err and len(err.splitlines()) == 1
    assert main(["pipeline", "--num-epoch=3", "--sepp", ";"]) == 2  # abbreviation ok, typo not
    err = capsys.readouterr().err
    assert "did you mean --sep?" in err and "--num-epoch" not in err


@pytest.mark.parametrize("sep, flag", [(";", None), ("\t", None), ("|", None), (";", ";"),
                                       ("\t", "tab")])
def test_dataloader_reads_delimited_files(workdir, capsys, sep, flag):
    name = f"delim{ord(sep)}{flag is not None}"
    pd.read_csv(workdir / "data" / "bare.csv").to_csv(workdir / "data" / f"{name}.csv", sep=sep,
                                                     index=False)
    extra = ["--sep", flag] if flag is not None else []
    rc, out, err = run_cli(workdir, "dataloader", "-d", name, "-e", "delim", "--seed", "0",
                           "--no-encode", *extra, capsys=capsys)
    assert rc == 0, err
    train = pd.read_csv(workdir / "experiments" / "delim" / name / "train.csv")
    assert list(train.columns) == ["age", "sex", "num.co"]
    # with declared metadata beside the file too
    shutil.copy(workdir / "data" / f"{name}.csv", workdir / "data" / f"{name}m.csv")
    from nhssynth import Metadata
    Metadata.from_yaml(workdir / "data" / "small.yaml").select(["age", "sex", "num.co"]).to_yaml(
        workdir / "data" / f"{name}m.yaml")
    rc, out, err = run_cli(workdir, "dataloader", "-d", f"{name}m", "-e", "delim", "--seed", "0",
                           "--no-encode", *extra, capsys=capsys)
    assert rc == 0, err


def test_dataloader_reports_inferred_identifiers(workdir, capsys):
    rng = np.random.default_rng(0)
    df = pd.read_csv(workdir / "data" / "bare.csv")
    df["surname"] = [f"name{i}" for i in rng.permutation(len(df))]
    df.to_csv(workdir / "data" / "names.csv", index=False)
    rc, out, err = run_cli(workdir, "dataloader", "-d", "names", "-e", "ids", "--seed", "0",
                           "--no-encode", capsys=capsys)
    assert rc == 0, err
    assert "column 'surname' has 200 distinct values in 200 non-missing rows (100%)" in out
    assert "note        metadata: column 'surname'" in out  # repeated in the summary
    from nhssynth import Metadata
    md = Metadata.from_yaml(workdir / "experiments" / "ids" / "names" / "metadata.yaml")
    assert md["surname"].kind == "id"


def test_packaged_configs_are_package_data(tmp_path, monkeypatch):
    from importlib import resources

    from nhssynth.cli.config import packaged_configs

    folder = resources.files("nhssynth.cli").joinpath("configs")
    assert packaged_configs() == ["demo", "full_evaluation", "privacy_sweep", "quick"]
    for name in packaged_configs():
        assert folder.joinpath(f"{name}.yaml").is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "quick.yaml").write_text("dataset: mine\n")  # a local config wins
    assert find_config("quick") == Path("config/quick.yaml")
    with pytest.raises(FileNotFoundError, match="available: demo, full_evaluation, privacy_sweep, quick"):
        find_config("nosuch")


@pytest.mark.slow
def test_wheel_ships_the_configs_and_finds_them(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "nhssynth", src / "nhssynth",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path / "dist"), str(src)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    import zipfile
    wheel = next((tmp_path / "dist").glob("nhssynth-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for cfg in ("demo", "quick", "privacy_sweep", "full_evaluation"):
            assert f"nhssynth/cli/configs/{cfg}.yaml" in names
        assert "nhssynth/datasets/data/support2.csv.gz" in names
        z.extractall(tmp_path / "site")
    run = tmp_path / "elsewhere"  # no ./config, no checkout
    run.mkdir()
    code = ("import nhssynth, sys; from nhssynth.cli.config import find_config, load_config_file; "
            "p = find_config('quick'); load_config_file(p); print(nhssynth.__file__); print(p)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=run, env={**os.environ, "PYTHONPATH": str(tmp_path / "site")})
    assert res.returncode == 0, res.stderr[-3000:]
    module, config = res.stdout.split()
    assert module.startswith(str(tmp_path / "site")) and config.startswith(str(tmp_path / "site"))
