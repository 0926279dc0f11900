"""The CLI steps (dataloader, model, evaluation, plotting), thin over the public API.

Every step reads what the previous one wrote under ``experiments/<name>/<dataset>/`` (see
:mod:`nhssynth.cli.experiment`), so each can be run on its own.  Files are written atomically and
a step's marker file (``dataloader.json``, ``run.json``, ``evaluation.json``) is written last, so
an interrupted step never leaves output that looks complete.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..datasets import load_example
from ..encoders.table import TableEncoder
from ..io import save_synthesizer
from ..exceptions import MetadataWarning
from ..metadata import Metadata, read_csv_frame
from ..metrics import dcr, evaluate
from ..reporting import write_report
from ..reporting.plots import plot_correlation_difference, plot_dcr, plot_marginals, save_figure
from ..synthesizers.aim import AIMSynthesizer
from ..synthesizers.marginal import MarginalSynthesizer
from ..synthesizers.vae import DPVAESynthesizer
from .config import ConfigError
from .dashboard import plot_sweep
from .experiment import HEADLINE, Layout, RunSpec, collect_results, derive_seed, expand_runs
from .files import (atomic_dir, atomic_path, read_json, write_csv, write_json,
                    write_npy, write_text)

__all__ = ["Console", "dataset_key", "run_dataloader", "run_model", "run_evaluation",
           "run_plotting", "load_split"]

_EXTENSIONS = (".csv", ".csv.gz", ".parquet", ".pq")
_METADATA_NAMES = ("{}.yaml", "{}.yml", "{}_metadata.yaml", "{}_metadata.yml")


class Console:
    """Messages on stdout, progress bars on stderr (only on a terminal), warnings collected."""

    def __init__(self, quiet: bool = False, debug: bool = False) -> None:
        self.quiet = quiet
        self.debug = debug
        self.notes: list[str] = []

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)

    def note(self, message: str) -> None:
        """A warning worth repeating in the final summary."""
        if message not in self.notes:
            self.notes.append(message)

    @property
    def bars(self) -> bool:
        return not self.quiet and sys.stderr.isatty()

    def progress(self, iterable: Iterable, total: int, desc: str):
        from tqdm.auto import tqdm
        return tqdm(iterable, total=total, desc=desc, unit="run", disable=not self.bars,
                    file=sys.stderr, leave=False)


def _strip_ext(name: str) -> str:
    for ext in _EXTENSIONS:
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def dataset_key(dataset: str | None) -> str | None:
    """Folder name of a dataset inside an experiment: ``example`` or the file's stem."""
    if dataset is None:
        return None
    return _strip_ext(Path(dataset).name) if dataset != "example" else "example"


def _find_dataset(cfg: Mapping) -> Path:
    dataset = cfg["dataset"]
    path = Path(dataset)
    if path.is_file():
        return path
    data_dir = Path(cfg["data_dir"])
    tried = [data_dir / f"{dataset}{ext}" for ext in _EXTENSIONS]
    if path.suffix:  # a name with an extension, relative to the data folder
        tried.insert(0, data_dir / dataset)
    for cand in tried:
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"dataset {dataset!r} not found: no file {str(path)!r} and none of "
                            f"{', '.join(str(t) for t in tried)}.")


def _find_metadata(cfg: Mapping, data_path: Path | None) -> Path | None:
    if cfg["metadata"] is not None:
        path = Path(cfg["metadata"])
        if not path.is_file():
            raise FileNotFoundError(f"metadata file {str(path)!r} does not exist.")
        return path
    if data_path is None:
        return None
    stem = _strip_ext(data_path.name)
    for pattern in _METADATA_NAMES:
        cand = data_path.parent / pattern.format(stem)
        if cand.is_file():
            return cand
    return None


def _read_table(path: Path, metadata: Metadata | None, sep: str | None = None) -> pd.DataFrame:
    """Read a CSV (delimiter ``sep``, else sniffed) or Parquet data file, cast to ``metadata``."""
    if path.name.lower().endswith((".parquet", ".pq")):
        try:
            df = pd.read_parquet(path)
        except ImportError:
            raise ConfigError("reading Parquet files needs pyarrow (pip install pyarrow); or "
                              "convert the data to CSV.") from None
        if metadata is not None:
            metadata.validate(df)
            df = metadata.coerce(df)
        return df
    if metadata is not None:
        return metadata.read_csv(path, sep=sep)
    return read_csv_frame(path, sep=sep)


def _synthetic_metadata(metadata: Metadata, privacy: Mapping) -> Metadata:
    """The metadata a run's synthetic.csv is read with: a column the run *withheld* (nothing
    about it could be released at its budget; its notes say so) is all missing, so it is
    nullable there, and an integer dtype holds it as float64."""
    out = metadata
    for note in privacy.get("notes") or ():
        name = str(note).split(":", 1)[0]
        if "generated as missing" in str(note) and name in metadata:
            col = metadata[name]
            changes: dict = {"nullable": True}
            if pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(col.dtype)) \
                    and not col.dtype[:1].isupper():
                changes["dtype"] = "float64"
            out = out.update(name, **changes)
    return out


def _infer_metadata(df: pd.DataFrame, console: Console) -> Metadata:
    """Infer the metadata; its warnings (e.g. a column taken for an identifier) become notes."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetadataWarning)
        metadata = Metadata.from_dataframe(df)
    for w in caught:
        if issubclass(w.category, MetadataWarning):
            console.info(f"metadata: {w.message}")
            console.note(f"metadata: {w.message}")
    return metadata


# --------------------------------------------------------------------------------------------
# dataloader
# --------------------------------------------------------------------------------------------
def run_dataloader(cfg: Mapping, console: Console) -> dict:
    """Read and validate the dataset, split off a holdout, fit the encoder, save artefacts."""

    if cfg["dataset"] is None:
        raise ConfigError("no dataset given: pass --dataset NAME (a file in --data-dir, a path, "
                          "or 'example' for the bundled SUPPORT2 table).")
    seed = cfg["seed"]
    dl = cfg["dataloader"]
    key = dataset_key(cfg["dataset"])
    layout = Layout(cfg["experiments_dir"], cfg["experiment_name"], key)
    t0 = time.perf_counter()
    if cfg["dataset"] == "example" and not Path("example").is_file():
        df, metadata = load_example(return_metadata=True)
        meta_source, source = "bundled", "nhssynth.datasets.load_example()"
        if cfg["metadata"] is not None:
            metadata = Metadata.from_yaml(_find_metadata(cfg, None))
            meta_source = str(cfg["metadata"])
            metadata.validate(df)
            df = metadata.coerce(df)
    else:
        path = _find_dataset(cfg)
        source = str(path)
        meta_path = _find_metadata(cfg, path)
        metadata = Metadata.from_yaml(meta_path) if meta_path is not None else None
        df = _read_table(path, metadata, dl["sep"])
        if metadata is None:
            metadata = _infer_metadata(df, console)
            meta_source = "inferred"
        else:
            meta_source = str(meta_path)
    if len(df) < 2:
        raise ConfigError(f"dataset {cfg['dataset']!r} has {len(df)} row(s); at least 2 are needed.")
    n_all = len(df)
    if dl["max_rows"] is not None and n_all > dl["max_rows"]:
        rng = np.random.default_rng(derive_seed(seed, "rows"))
        keep = np.sort(rng.choice(n_all, size=dl["max_rows"], replace=False))
        df = df.iloc[keep].reset_index(drop=True)
    n = len(df)
    n_hold = int(round(dl["holdout_fraction"] * n))
    if n_hold and n - n_hold < 2:
        raise ConfigError(f"holdout_fraction={dl['holdout_fraction']} leaves fewer than 2 training rows.")
    perm = np.random.default_rng(derive_seed(seed, "holdout")).permutation(n)
    hold_idx, train_idx = np.sort(perm[:n_hold]), np.sort(perm[n_hold:])
    train = df.iloc[train_idx].reset_index(drop=True)
    holdout = df.iloc[hold_idx].reset_index(drop=True)

    out = layout.data
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "dataloader.json"
    marker.unlink(missing_ok=True)
    write_text(out / "metadata.yaml", metadata.to_yaml())
    write_csv(out / "train.csv", train)
    if n_hold:
        write_csv(out / "holdout.csv", holdout)
    else:
        (out / "holdout.csv").unlink(missing_ok=True)
    spans = None
    if dl["encode"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encoder = TableEncoder(metadata=metadata, random_state=derive_seed(seed, "encoder"))
            Z = encoder.fit_transform(train)
        write_npy(out / "encoded_train.npy", Z)
        spans = [dataclasses.asdict(s) for s in encoder.output_spans_]
        write_json(out / "encoder_spans.json", spans)
    info = {"dataset": cfg["dataset"], "key": key, "source": source, "metadata": meta_source,
            "n_rows_source": n_all, "n_rows": n, "n_train": len(train), "n_holdout": len(holdout),
            "n_columns": df.shape[1], "holdout_fraction": dl["holdout_fraction"],
            "max_rows": dl["max_rows"], "seed": seed,
            "encoded_shape": None if spans is None else [int(Z.shape[0]), int(Z.shape[1])]}
    write_json(marker, info)
    console.info(f"dataloader: {key}: {len(train)} training + {len(holdout)} holdout rows, "
                 f"{df.shape[1]} columns (metadata: {meta_source}) -> {out} "
                 f"[{time.perf_counter() - t0:.1f} s]")
    return info


def load_split(data_dir: Path) -> tuple[Metadata, pd.DataFrame, pd.DataFrame | None, dict]:
    """Metadata, training rows, holdout rows (or None) and the manifest of a dataloader output."""
    marker = data_dir / "dataloader.json"
    if not marker.is_file():
        raise FileNotFoundError(
            f"no dataloader output in {str(data_dir)!r}: run 'nhssynth dataloader' with the same "
            f"--experiment-name and --dataset first (or 'nhssynth pipeline').")
    info = read_json(marker)
    metadata = Metadata.from_yaml(data_dir / "metadata.yaml")
    train = metadata.read_csv(data_dir / "train.csv", sep=",")  # written by write_csv
    hold_path = data_dir / "holdout.csv"
    holdout = (metadata.read_csv(hold_path, sep=",") if info["n_holdout"] and hold_path.is_file()
               else None)
    return metadata, train, holdout, info


def _data_dir(cfg: Mapping) -> Path:
    layout = Layout(cfg["experiments_dir"], cfg["experiment_name"], dataset_key(cfg["dataset"]))
    if cfg["dataset"] is not None:
        return layout.data
    found = layout.dataset_dirs()
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no dataloader output in experiment {str(layout.root)!r}: run "
                                f"'nhssynth dataloader --experiment-name {layout.experiment} "
                                f"--dataset NAME' first.")
    raise ConfigError(f"experiment {layout.experiment!r} holds several datasets "
                      f"({', '.join(p.name for p in found)}); choose one with --dataset.")


# --------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------
def _build(spec: RunSpec, metadata: Metadata, verbose: bool):
    kw = spec.kwargs
    if spec.architecture == "AIM":
        return AIMSynthesizer(epsilon=kw["epsilon"], delta=kw["delta"], metadata=metadata,
                              n_bins=kw["n_bins"], degree=kw["degree"],
                              random_state=spec.fit_seed)
    if spec.architecture == "Marginal":
        return MarginalSynthesizer(epsilon=kw["epsilon"], bins=kw["bins"], metadata=metadata,
                                   random_state=spec.fit_seed)
    common = dict(max_epochs=kw["max_epochs"], batch_size=kw["batch_size"],
                  hidden_dims=tuple(kw["hidden_dims"]), latent_dim=kw["latent_dim"],
                  learning_rate=kw["learning_rate"], metadata=metadata, verbose=verbose,
                  random_state=spec.fit_seed)
    if spec.architecture == "VAE":
        return DPVAESynthesizer(epsilon=None, allow_non_private=True, **common)
    return DPVAESynthesizer(epsilon=kw["epsilon"], delta=kw["delta"], **common)


def _privacy(est, spec: RunSpec) -> dict:
    """The fitted generator's privacy report as plain data (what privacy.json holds)."""
    return est.privacy_report().to_dict()


def _save_model(est, path: Path) -> None:
    with atomic_dir(path) as tmp:
        save_synthesizer(est, tmp)


def run_model(cfg: Mapping, console: Console) -> list[dict]:
    """Fit every (architecture, grid point, repeat); save model, synthetic data, privacy report."""
    data_dir = _data_dir(cfg)
    metadata, train, _, info = load_split(data_dir)
    mcfg = cfg["model"]
    runs = expand_runs(mcfg, cfg["seed"])
    n_samples = mcfg["num_samples"] or len(train)
    console.info(f"model: {len(runs)} run(s) on {len(train)} training rows of {data_dir.name}")
    results = []
    for spec in console.progress(runs, total=len(runs), desc="model"):
        run_dir = data_dir / spec.name
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("run.json", "evaluation.json"):
            (run_dir / stale).unlink(missing_ok=True)
        t0 = time.perf_counter()
        est = _build(spec, metadata, verbose=console.bars and spec.architecture in ("DPVAE", "VAE"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(train)
            synthetic = est.sample(n_samples, random_state=spec.sample_seed,
                                   conditions=mcfg.get("conditions") or None)
        privacy = _privacy(est, spec)
        _save_model(est, run_dir / "model")
        write_csv(run_dir / "synthetic.csv", synthetic)
        write_json(run_dir / "privacy.json", privacy)
        notes = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught
                        if w.category.__name__ in ("NonPrivateOperationWarning", "PrivacyWarning")})
        for n in notes:
            console.note(f"{spec.name}: {n}")
        record = {"name": spec.name, "architecture": spec.architecture,
                  "params": dict(spec.params), "repeat": spec.repeat, "fit_seed": spec.fit_seed,
                  "sample_seed": spec.sample_seed, "n_train": len(train), "num_samples": n_samples,
                  "epsilon_budget": spec.epsilon if spec.architecture != "VAE" else None,
                  "epsilon_spent": privacy.get("epsilon"), "private": privacy.get("private"),
                  "metadata": "../metadata.yaml", "warnings": notes}
        write_json(run_dir / "run.json", record)  # last: marks the run complete
        eps = privacy.get("epsilon")
        console.info(f"  {spec.name}: fitted in {time.perf_counter() - t0:.1f} s, epsilon spent "
                     f"{'none (non-private)' if eps is None else format(eps, '.4g')} -> {run_dir}")
        results.append(record)
    return results


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------
def run_evaluation(cfg: Mapping, console: Console) -> list[dict]:
    """Evaluate every completed run of the dataset; write evaluation files and HTML reports."""

    data_dir = _data_dir(cfg)
    metadata, train, holdout, info = load_split(data_dir)
    ecfg = cfg["evaluation"]
    target = ecfg["target"]
    if target is not None and target not in metadata.names:
        raise ConfigError(f"evaluation target {target!r} is not a column of {data_dir.name}; "
                          f"columns: {', '.join(metadata.names)}.")
    runs = Layout(cfg["experiments_dir"], cfg["experiment_name"]).completed_runs(data_dir)
    if not runs:
        raise FileNotFoundError(f"no fitted runs in {str(data_dir)!r}: run 'nhssynth model' first.")
    if holdout is None:
        console.note("no holdout rows (holdout_fraction 0): DCR share and membership inference "
                     "were not computed.")
    console.info(f"evaluation: {len(runs)} run(s) of {data_dir.name}")
    seed = derive_seed(cfg["seed"], "evaluate")
    out = []
    for run_dir in console.progress(runs, total=len(runs), desc="evaluation"):
        t0 = time.perf_counter()
        (run_dir / "evaluation.json").unlink(missing_ok=True)
        privacy = read_json(run_dir / "privacy.json")
        synthetic = _synthetic_metadata(metadata, privacy).read_csv(run_dir / "synthetic.csv",
                                                                    sep=",")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = evaluate(synthetic, train, holdout, metadata=metadata, target=target,
                           privacy=privacy if privacy.get("private") else None,
                           baseline=ecfg["baseline"], name=run_dir.name,
                           max_rows=ecfg["max_rows"], random_state=seed)
        write_csv(run_dir / "evaluation.csv", res.table)
        with atomic_path(run_dir / "report.html") as tmp:
            write_report(res, tmp, title=f"nhssynth: {run_dir.name}",
                         dataset=data_dir.name)
        doc = {"run": run_dir.name, "target": target, "summary": res.summary,
               "baseline_summary": res.baseline_summary, "holdout_summary": res.holdout_summary,
               "findings": res.findings, "privacy_statement": privacy.get("statement")}
        write_json(run_dir / "evaluation.json", doc)
        head = ", ".join(f"{k} {res.summary[k]:.3f}" for k in HEADLINE if k in res.summary
                         and math.isfinite(res.summary[k]))
        console.info(f"  {run_dir.name}: {head} [{time.perf_counter() - t0:.1f} s]")
        out.append(doc)
    comparison = collect_results(data_dir)
    write_csv(data_dir / "comparison.csv", comparison)
    return out


# --------------------------------------------------------------------------------------------
# plotting
# --------------------------------------------------------------------------------------------
def run_plotting(cfg: Mapping, console: Console) -> list[Path]:
    """Figures per run (marginals, pair differences, DCR) and the dataset's epsilon sweep."""

    data_dir = _data_dir(cfg)
    metadata, train, holdout, info = load_split(data_dir)
    runs = Layout(cfg["experiments_dir"], cfg["experiment_name"]).completed_runs(data_dir)
    if not runs:
        raise FileNotFoundError(f"no fitted runs in {str(data_dir)!r}: run 'nhssynth model' first.")
    console.info(f"plotting: {len(runs)} run(s) of {data_dir.name}")
    written: list[Path] = []
    seed = derive_seed(cfg["seed"], "evaluate")

    def save(fig, path: Path) -> None:
        with atomic_path(path) as tmp:
            save_figure(fig, tmp)
        written.append(path)

    for run_dir in console.progress(runs, total=len(runs), desc="plotting"):
        synthetic = _synthetic_metadata(metadata, read_json(run_dir / "privacy.json")).read_csv(
            run_dir / "synthetic.csv", sep=",")
        plots = run_dir / "plots"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save(plot_marginals(train, synthetic, metadata,
                                max_columns=cfg["plotting"]["max_columns"]), plots / "marginals.png")
            pairs = _pairs_from_evaluation(run_dir)
            save(plot_correlation_difference(train, synthetic, metadata, pairs=pairs),
                 plots / "pair_differences.png")
            d = dcr(train, synthetic, holdout, metadata, max_rows=cfg["evaluation"]["max_rows"],
                    random_state=seed)
            save(plot_dcr(d), plots / "dcr.png")
    frame = collect_results(data_dir)
    if len(frame) and frame["evaluated"].any():
        save(plot_sweep(frame), data_dir / "epsilon_sweep.png")
    console.info(f"  {len(written)} figure(s) written under {data_dir}")
    return written


def _pairs_from_evaluation(run_dir: Path) -> pd.DataFrame | None:
    path = run_dir / "evaluation.csv"
    if not (run_dir / "evaluation.json").is_file() or not path.is_file():
        return None
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    rows = table[table["metric"] == "column_pair_trends"]
    rows = rows[rows["column"].astype(str).str.count(r" \| ") == 1]
    if rows.empty:
        return None
    parts = rows["column"].astype(str).str.split(" | ", regex=False)
    return pd.DataFrame({"column_1": parts.str[0], "column_2": parts.str[1],
                         "score": rows["value"].astype(float)}).reset_index(drop=True)
