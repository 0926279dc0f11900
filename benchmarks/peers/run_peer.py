"""Fit one peer synthesizer on a CSV and write its synthetic table (run in the *peers* venv).

This script is started by ``benchmarks/bench_quality.py`` in a subprocess, with the Python of a
separate virtual environment that holds smartnoise-synth and SDV.  It never runs inside the
nhssynth environment and imports nothing from nhssynth.

Peers and what each is given
----------------------------
``mst``, ``aim`` (smartnoise-synth, ``snsynth.Synthesizer.create(name, epsilon=...)``)
    ``categorical_columns`` = the columns the benchmark's metadata rule calls categorical,
    ``continuous_columns`` = the numerical (and datetime, as integer nanoseconds) ones, and
    ``nullable=True`` when the table has missing values.  smartnoise cuts each continuous
    column into 10 equal-width bins between bounds that its own DP preprocessor estimates with
    ``preprocessor_eps = share * epsilon`` (the rest goes to the model), and returns bin
    midpoints.  Categories are read from the data (smartnoise's default; not private).  The
    DP noise comes from OpenDP's own generator, so ``--seed`` fixes only numpy's share of the
    randomness (selection, sampling), not the noise.
``gaussiancopula`` (SDV ``GaussianCopulaSynthesizer``, not private)
    SDV metadata with ``sdtype`` categorical / numerical / datetime from the same rule, default
    parameters; ``--seed`` is set as the model's sampling random state.

Output: the synthetic CSV (``--out``) and a JSON (``--info``) with ``fit_s``, ``sample_s``,
the library versions and a one-line description of what the peer was given.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared helpers
from _tables import read_kinds, read_table

PEERS = ("mst", "aim", "gaussiancopula")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)


def _datetimes_to_numbers(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    out = df.copy()
    for c, k in kinds.items():
        if k == "datetime":
            out[c] = out[c].astype("int64").where(out[c].notna())
    return out


def _numbers_to_datetimes(df: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    out = df.copy()
    for c, k in kinds.items():
        if k == "datetime":
            out[c] = pd.to_datetime(pd.to_numeric(out[c], errors="coerce"))
    return out


def fit_smartnoise(name: str, df: pd.DataFrame, kinds: dict[str, str], epsilon: float,
                   share: float) -> tuple[Callable[[int], pd.DataFrame], str]:
    """Fit smartnoise-synth MST or AIM.

    Parameters
    ----------
    name : {"mst", "aim"}
    df : DataFrame
        The real table.
    kinds : dict
        Column kinds of the metadata rule.
    epsilon : float
        Total budget (preprocessing share included).
    share : float
        Share of ``epsilon`` given to smartnoise's bound estimation of continuous columns.

    Returns
    -------
    sample : callable
        ``sample(n) -> DataFrame``.
    given : str
        What the peer was given, for the report.
    """
    from snsynth import Synthesizer

    categorical = [c for c, k in kinds.items() if k == "categorical"]
    continuous = [c for c, k in kinds.items() if k != "categorical"]
    nullable = bool(df.isna().to_numpy().any())
    pre_eps = share * epsilon if continuous else 0.0
    synth = Synthesizer.create(name, epsilon=float(epsilon))
    synth.fit(_datetimes_to_numbers(df, kinds), categorical_columns=categorical,
              continuous_columns=continuous, preprocessor_eps=pre_eps, nullable=nullable)
    given = (f"snsynth {version('smartnoise-synth')} {name.upper()} epsilon={epsilon:g} "
             f"(preprocessor_eps={pre_eps:g} for bounds of {len(continuous)} continuous columns, "
             f"10 bins each), {len(categorical)} categorical columns (categories from the data), "
             f"nullable={nullable}")

    def sample(n: int) -> pd.DataFrame:
        out = synth.sample(n)
        out = pd.DataFrame(out, columns=df.columns) if not isinstance(out, pd.DataFrame) else out
        return _numbers_to_datetimes(out, kinds)

    return sample, given


def fit_gaussian_copula(df: pd.DataFrame, kinds: dict[str, str],
                        seed: int) -> tuple[Callable[[int], pd.DataFrame], str]:
    """Fit SDV's GaussianCopulaSynthesizer with default parameters (not private).

    Parameters
    ----------
    df : DataFrame
        The real table.
    kinds : dict
        Column kinds of the metadata rule.
    seed : int
        Random state of the sampler.

    Returns
    -------
    sample : callable
        ``sample(n) -> DataFrame``.
    given : str
        What the peer was given, for the report.
    """
    from sdv.metadata import Metadata as SDVMetadata
    from sdv.single_table import GaussianCopulaSynthesizer

    columns = {c: {"sdtype": k} for c, k in kinds.items()}
    metadata = SDVMetadata.load_from_dict({"tables": {"table": {"columns": columns}}})
    synth = GaussianCopulaSynthesizer(metadata)
    synth.fit({"table": df})  # SDV 2 takes and returns {table name: DataFrame}
    if hasattr(synth, "_set_random_state"):  # SDV otherwise samples with a fixed seed
        synth._set_random_state(seed)
    given = (f"SDV {version('sdv')} GaussianCopulaSynthesizer, default parameters, "
             f"sdtypes from the metadata rule (not private)")

    def sample(n: int) -> pd.DataFrame:
        out = synth.sample(num_rows=n)
        return out["table"] if isinstance(out, dict) else out

    return sample, given


def run(method: str, data: Path, kinds: dict[str, str], epsilon: float | None, seed: int,
        share: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit ``method`` on the CSV at ``data`` and sample as many rows.

    Returns
    -------
    synthetic : DataFrame
    info : dict
        ``fit_s``, ``sample_s``, ``given``.
    """
    df = read_table(data, kinds)
    _seed_everything(seed)
    t0 = time.perf_counter()
    if method in ("mst", "aim"):
        if epsilon is None:
            raise ValueError(f"{method} is a DP synthesizer; give it an epsilon")
        sample, given = fit_smartnoise(method, df, kinds, epsilon, share)
    elif method == "gaussiancopula":
        sample, given = fit_gaussian_copula(df, kinds, seed)
    else:
        raise ValueError(f"unknown peer {method!r}; use one of {', '.join(PEERS)}")
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    synthetic = sample(len(df))
    sample_s = time.perf_counter() - t0
    return synthetic[list(df.columns)], {"fit_s": fit_s, "sample_s": sample_s, "given": given}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--method", required=True, choices=PEERS)
    ap.add_argument("--data", required=True, type=Path, help="real table (CSV)")
    ap.add_argument("--kinds", required=True, type=Path,
                    help="JSON: column -> categorical | numerical | datetime")
    ap.add_argument("--epsilon", default="none", help="a number, or 'none' (not private)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preprocessor-share", type=float, default=0.1,
                    help="share of epsilon for smartnoise's bound estimation (default 0.1)")
    ap.add_argument("--out", required=True, type=Path, help="synthetic table (CSV)")
    ap.add_argument("--info", required=True, type=Path, help="JSON with timings")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    kinds = read_kinds(args.kinds)
    epsilon = None if args.epsilon.lower() == "none" else float(args.epsilon)
    synthetic, info = run(args.method, args.data, kinds, epsilon, args.seed,
                          args.preprocessor_share)
    synthetic.to_csv(args.out, index=False)
    args.info.write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
