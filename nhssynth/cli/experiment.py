"""Experiment layout, run naming, grid expansion and seed derivation.

::

    experiments/<experiment>/
        config.yaml                    (--save-config)
        index.html                     (dashboard)
        <dataset>/
            dataloader.json            (written last: marks the dataloader step complete)
            metadata.yaml  train.csv  holdout.csv  encoded_train.npy  encoder_spans.json
            comparison.csv  epsilon_curve.png
            <arch>_<params>_r<repeat>/
                model/  synthetic.csv  privacy.json  run.json (written last)
                evaluation.json  evaluation.csv  report.html  plots/*.png
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .config import ARCHITECTURES, ConfigError, slug
from .files import from_json_float, read_json

__all__ = ["Layout", "RunSpec", "expand_runs", "derive_seed", "latest_experiment", "collect_results",
           "HEADLINE"]

_SHORT = {"epsilon": "eps", "delta": "delta", "max_epochs": "ep", "batch_size": "bs",
          "hidden_dims": "h", "latent_dim": "z", "learning_rate": "lr", "bins": "bins",
          "n_bins": "nb", "degree": "deg"}


def derive_seed(seed: int, *tags: Any) -> int:
    """A 31-bit seed from the master ``seed`` and string tags (stable across Python runs).

    Tags are hashed with CRC-32 (not Python's salted ``hash``), so a run's seed depends only on
    the master seed and the run's name, not on its position in the grid.
    """
    words = [int(seed)] + [zlib.crc32(str(t).encode("utf-8")) for t in tags]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0] >> 1)


def _fmt(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class RunSpec:
    """One fit: architecture, its hyper-parameters, repeat index and derived seeds."""

    architecture: str
    params: tuple[tuple[str, Any], ...]
    repeat: int
    name: str
    fit_seed: int
    sample_seed: int

    @property
    def kwargs(self) -> dict:
        return {k: (tuple(v) if isinstance(v, list) else v) for k, v in self.params}

    @property
    def epsilon(self) -> float | None:
        return dict(self.params).get("epsilon")


def expand_runs(model_cfg: Mapping[str, Any], seed: int) -> list[RunSpec]:
    """Every (architecture, grid point, repeat) of a model config, in a fixed order.

    Each architecture expands only the hyper-parameters it accepts (``VAE`` ignores
    ``epsilon``), so a list of epsilons does not duplicate non-private runs.  The run name lists
    epsilon (for private architectures) and every parameter with several values.
    """
    runs: list[RunSpec] = []
    seen: set[str] = set()
    for arch in model_cfg["architectures"]:
        names = ARCHITECTURES[arch]
        grids = [model_cfg[p] for p in names]
        for combo in itertools.product(*grids):
            params = tuple(zip(names, combo))
            label = [f"{_SHORT[p]}{_fmt(v)}" for p, v in params
                     if p == "epsilon" or len(model_cfg[p]) > 1]
            for r in range(model_cfg["repeats"]):
                name = slug("_".join([arch, *label, f"r{r}"]))
                if name in seen:  # e.g. two hidden_dims that format alike
                    raise ConfigError(f"two runs would share the folder name {name!r}; remove "
                                      f"duplicate values from the grid.")
                seen.add(name)
                runs.append(RunSpec(arch, params, r, name, derive_seed(seed, "fit", name),
                                    derive_seed(seed, "sample", name)))
    return runs


class Layout:
    """Paths of one experiment (and one dataset inside it)."""

    def __init__(self, experiments_dir: str | Path, experiment: str, dataset: str | None = None):
        self.root = Path(experiments_dir) / experiment
        self.experiment = experiment
        self.dataset = dataset

    @property
    def data(self) -> Path:
        if self.dataset is None:
            raise ConfigError("no dataset given (--dataset).")
        return self.root / slug(self.dataset)

    def run(self, name: str) -> Path:
        return self.data / name

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    def dataset_dirs(self) -> list[Path]:
        """Dataset folders with a completed dataloader step, sorted by name."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if (p / "dataloader.json").is_file())

    def completed_runs(self, data_dir: Path | None = None) -> list[Path]:
        """Run folders of a dataset whose model step finished (``run.json`` present)."""
        base = data_dir or self.data
        if not base.is_dir():
            return []
        return sorted(p for p in base.iterdir() if p.is_dir() and (p / "run.json").is_file())


def latest_experiment(experiments_dir: str | Path) -> str | None:
    """Name of the most recently modified experiment folder (None when there is none)."""
    root = Path(experiments_dir)
    if not root.is_dir():
        return None
    dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not dirs:
        return None
    return max(dirs, key=lambda p: (p.stat().st_mtime, p.name)).name


HEADLINE = ("fidelity", "quality", "utility", "privacy", "detection")


def collect_results(data_dir: Path) -> pd.DataFrame:
    """One row per completed run of a dataset: parameters, epsilon and headline scores."""
    rows = []
    for run_dir in Layout(data_dir.parent.parent, data_dir.parent.name).completed_runs(data_dir):
        run = read_json(run_dir / "run.json")
        row: dict[str, Any] = {"run": run["name"], "architecture": run["architecture"],
                               "repeat": run["repeat"],
                               "epsilon_budget": from_json_float(run.get("epsilon_budget")),
                               "epsilon_spent": from_json_float(run.get("epsilon_spent"))}
        for k, v in run["params"].items():
            if k not in ("epsilon",):
                row[k] = "x".join(map(str, v)) if isinstance(v, list) else v
        ev_path = run_dir / "evaluation.json"
        ev = read_json(ev_path) if ev_path.is_file() else None
        for k in HEADLINE:
            row[k] = from_json_float((ev or {}).get("summary", {}).get(k))
        row["evaluated"] = ev is not None
        rows.append(row)
    return pd.DataFrame(rows)
