"""Independent judge of synthetic-data quality: SDMetrics 0.32 next to nhssynth's own metrics.

For each table in ``../shared/data`` (beside the checkout) and each method, the synthetic table
is scored by the SDMetrics 0.32 ``QualityReport`` (overall score, "Column Shapes", "Column
Pair Trends"; see ``benchmarks/_judge.py``) and by nhssynth's own metrics
(``column_shapes`` mean, ``column_pair_trends`` mean, ``relationship_score``), with fit and
sampling seconds.

Methods (rows)
--------------
* ``independent columns``: each real column shuffled on its own (seeded): exact marginals,
  no relationships.
* ``real holdout``: a random half of the table scored against the other half (the second half
  is the "synthetic" table, the first half the "real" one): what fresh real data scores.
* every nhssynth generator (``--generators``; default every ``*Synthesizer`` that nhssynth
  exports with an ``epsilon`` parameter) at each ``--epsilons`` value (``none`` =
  ``epsilon=None, allow_non_private=True``), default parameters, no metadata (it infers its
  own); ``--quick`` caps ``max_epochs`` at 5.
* peers (``--peers``), run in a separate environment through ``benchmarks/peers/run_peer.py``:
  smartnoise-synth MST and AIM at epsilon 1, SDV GaussianCopula (not private).  A peer that
  runs past ``--peer-timeout`` is reported as ``> N s``.  Finished peers are cached in
  ``benchmarks/.cache/peers/`` (git-ignored), keyed by table contents, method, epsilon and seed.

Every method fits the whole table (tables over ``--max-rows`` rows, i.e. adult, are first
subsampled with a fixed seed; the output says so) and samples as many rows; scores compare
the synthetic table with that whole real table.  Each row is the mean over ``--seeds`` fits
(random_state 0..N-1) with the min-max over seeds.

Metadata rule (identical for the peers, the judge and nhssynth's metrics; ``_tables.py``)
-------------------------------------------------------------------------------------------
datetime dtype -> datetime; bool/object/category dtype or <= 10 distinct values ->
categorical; else numerical.

The judge (``_judge.py``) runs in the peers environment by default (``--judge-python``):
``pip install sdmetrics==0.32.0`` would downgrade pandas 3.x to 2.3 in the nhssynth one.
Note that SDMetrics 0.32 averages Column Pair Trends only over the pairs whose real
relationship is strong (|Pearson r| > 0.5 for two numerical columns, Cramér's V > 0.3
otherwise); ``pairs`` in the output is "counted / total".  The per-pair tables list the
strongest real pairs with their real and synthetic values (at epsilon 1 and none).

Run ``python benchmarks/bench_quality.py --help``; see ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import inspect
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import nhssynth
from nhssynth import Metadata
from nhssynth.metrics import column_pair_trends, column_shapes, relationship_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tables import column_kinds, read_table, write_kinds, write_table

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parents[1] / "shared" / "data"
PEERS_PYTHON = HERE.parents[1] / "peers-venv" / "bin" / "python"
CACHE_DIR = HERE / ".cache" / "peers"
RUN_PEER = HERE / "peers" / "run_peer.py"
JUDGE = HERE / "_judge.py"

TABLES = ("flchain", "support2", "covid_testing", "adult")
QUICK_TABLE = "flchain"
BASELINES = {"independent": "independent columns", "holdout": "real holdout"}
PEERS = {"mst": ("smartnoise MST", 1.0), "aim": ("smartnoise AIM", 1.0),
         "gaussiancopula": ("SDV GaussianCopula", None)}
PAIR_EPSILONS = (1.0, None)
QUICK_EPOCHS = 5


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------
@dataclass
class Table:
    """One real table as the benchmark uses it."""

    name: str
    real: pd.DataFrame
    kinds: dict[str, str]
    metadata: Metadata
    csv: Path
    note: str = ""


@dataclass
class Run:
    """One fit (or baseline) of one method on one table with one seed, and its scores."""

    table: str
    family: str                      # "baseline" | "nhssynth" | "peer"
    method: str                      # "independent", "holdout", class name, or peer key
    epsilon: float | None
    seed: int
    status: str = "ok"               # "ok" | "failed" | "timeout"
    error: str | None = None
    fit_s: float | None = None
    sample_s: float | None = None
    given: str | None = None         # what a peer was given
    cached: bool = False             # peer output taken from benchmarks/.cache/
    nhssynth: dict[str, float] = field(default_factory=dict)
    judge: dict[str, Any] = field(default_factory=dict)
    pairs: list[dict[str, Any]] | None = None

    @property
    def label(self) -> str:
        """Display name of the method."""
        if self.family == "baseline":
            return BASELINES[self.method]
        if self.family == "peer":
            return PEERS[self.method][0]
        return self.method

    @property
    def key(self) -> tuple[str, str, str]:
        """Row key: table, method label, epsilon label."""
        return self.table, self.label, eps_label(self.epsilon, self.family)


def eps_label(epsilon: float | None, family: str = "nhssynth") -> str:
    """``"1"``, ``"0.5"``, ``"none"`` (not private), or ``"-"`` for baselines."""
    if family == "baseline":
        return "-"
    return "none" if epsilon is None else f"{epsilon:g}"


def first_line(exc: BaseException) -> str:
    """``"ClassName: first line of the message"``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def discover_generators() -> dict[str, type]:
    """Every ``*Synthesizer`` class nhssynth exports whose constructor takes ``epsilon``."""
    found = {}
    for name in sorted(set(getattr(nhssynth, "__all__", [])) | set(dir(nhssynth))):
        cls = getattr(nhssynth, name, None)
        if name.endswith("Synthesizer") and inspect.isclass(cls) \
                and "epsilon" in inspect.signature(cls).parameters:
            found[name] = cls
    return found


def _epsilon(text: str) -> float | None:
    return None if text.strip().lower() in ("none", "inf", "") else float(text)


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line and fill in ``--quick`` defaults."""
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Defaults: all four tables, 3 seeds, epsilons 0.5,1,3,10,none, peers on. "
               "See docs/benchmarks.md.")
    ap.add_argument("--tables", type=_csv_list, default=None,
                    help=f"comma list of tables in {DATA_DIR} (default: {','.join(TABLES)})")
    ap.add_argument("--generators", type=_csv_list, default=None,
                    help="comma list of nhssynth class names and/or 'independent', 'holdout' "
                         "(default: every exported *Synthesizer with an epsilon parameter, "
                         "plus both baselines)")
    ap.add_argument("--epsilons", type=lambda s: [_epsilon(t) for t in _csv_list(s)],
                    default=None, help="comma list; 'none' = not private (default 0.5,1,3,10,none)")
    ap.add_argument("--seeds", type=int, default=None,
                    help="fits per method, random_state 0..N-1 (default 3)")
    ap.add_argument("--peers", action=argparse.BooleanOptionalAction, default=None,
                    help="run the peers (default on; --quick: on, GaussianCopula only)")
    ap.add_argument("--peer-methods", type=_csv_list, default=None,
                    help=f"comma list of peers among {','.join(PEERS)} (default all)")
    ap.add_argument("--peer-timeout", type=float, default=1200.0,
                    help="seconds before a peer is stopped and reported as '> N s' (default 1200)")
    ap.add_argument("--peers-python", type=Path,
                    default=Path(os.environ.get("NHSSYNTH_PEERS_PYTHON", PEERS_PYTHON)),
                    help="Python of the peers environment (default ../peers-venv/bin/python or "
                         "$NHSSYNTH_PEERS_PYTHON)")
    ap.add_argument("--judge-python", type=Path, default=None,
                    help="Python with sdmetrics==0.32.0 that runs the judge (default: "
                         "--peers-python)")
    ap.add_argument("--preprocessor-share", type=float, default=0.1,
                    help="share of a smartnoise peer's epsilon spent estimating bounds "
                         "(default 0.1)")
    ap.add_argument("--max-rows", type=int, default=20000,
                    help="subsample larger tables to this many rows, seed 0 (default 20000)")
    ap.add_argument("--top-pairs", type=int, default=10,
                    help="pairs per table in the per-pair table (default 10)")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: {QUICK_TABLE}, one seed, epsilon 1, max_epochs "
                         f"{QUICK_EPOCHS}, GaussianCopula as the only peer")
    ap.add_argument("--json", type=Path, default=None, help="write all raw numbers here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the tables here")
    args = ap.parse_args(argv)
    quick = args.quick
    args.tables = args.tables or ([QUICK_TABLE] if quick else list(TABLES))
    args.seeds = args.seeds or (1 if quick else 3)
    args.epsilons = args.epsilons or ([1.0] if quick else [0.5, 1.0, 3.0, 10.0, None])
    args.peers = (True if args.peers is None else args.peers)
    args.peer_methods = args.peer_methods or (["gaussiancopula"] if quick else list(PEERS))
    args.judge_python = args.judge_python or args.peers_python
    unknown = set(args.peer_methods) - set(PEERS)
    if unknown:
        ap.error(f"unknown peer(s) {sorted(unknown)}; use {','.join(PEERS)}")
    generators = discover_generators()
    wanted = args.generators or [*generators, *BASELINES]
    unknown = [g for g in wanted if g not in generators and g not in BASELINES]
    if unknown:
        ap.error(f"unknown generator(s) {unknown}; nhssynth exports {sorted(generators)}")
    args.generator_classes = {g: generators[g] for g in wanted if g in generators}
    args.baselines = [g for g in wanted if g in BASELINES]
    return args


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
def load_table(name: str, max_rows: int) -> tuple[pd.DataFrame, str]:
    """Read ``<name>.csv`` with its dtype sidecar; subsample to ``max_rows`` rows (seed 0)."""
    csv = DATA_DIR / f"{name}.csv"
    sidecar = DATA_DIR / f"{name}.dtypes.json"
    if not csv.exists():
        raise FileNotFoundError(f"{csv} not found")
    df = pd.read_csv(csv, dtype=json.loads(sidecar.read_text()) if sidecar.exists() else None)
    note = f"{len(df)} rows x {df.shape[1]} columns"
    if len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=0).reset_index(drop=True)
        note = f"subsampled to {max_rows} of {note} (fixed seed 0)"
    return df, note


def rule_metadata(df: pd.DataFrame, kinds: dict[str, str]) -> Metadata:
    """nhssynth metadata with the kinds of the metadata rule (for nhssynth's metrics only)."""
    mapping = {}
    for name, kind in kinds.items():
        if kind == "numerical":
            kind = "integer" if pd.api.types.is_integer_dtype(df[name].dtype) else "continuous"
        mapping[name] = kind
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Metadata.from_dataframe(df, kinds=mapping)


def prepare_table(name: str, max_rows: int, workdir: Path) -> Table:
    """Load a table, apply the metadata rule and write the judge's copy of it."""
    df, note = load_table(name, max_rows)
    kinds = column_kinds(df)
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "real.csv"
    write_table(df, csv, kinds)
    write_kinds(kinds, folder / "kinds.json")
    return Table(name, df, kinds, rule_metadata(df, kinds), csv, note)


def conform(synthetic: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """Give ``synthetic`` the columns and, where its values allow, the dtypes of ``real``."""
    out = {}
    for name in real.columns:
        s, dtype = synthetic[name], real[name].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            s = pd.to_datetime(s, errors="coerce")
        elif pd.api.types.is_bool_dtype(dtype):
            s = s.map(lambda v: v if isinstance(v, (bool, np.bool_)) or pd.isna(v)
                      else str(v).strip().lower() in ("true", "1", "1.0"))
        elif pd.api.types.is_numeric_dtype(dtype):
            s = pd.to_numeric(s, errors="coerce")
            if pd.api.types.is_integer_dtype(dtype):
                s = s.round()
            if not s.isna().any():
                s = s.astype(dtype)
        else:
            s = s.astype(object)
        out[name] = s.reset_index(drop=True)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------------------------
def independent_columns(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Each column shuffled on its own: exact marginals, no relationships."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: df[c].to_numpy()[rng.permutation(len(df))] for c in df.columns}) \
        .astype(df.dtypes.to_dict())


def halves(df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random split of ``df`` into two halves."""
    idx = np.random.default_rng(seed).permutation(len(df))
    cut = len(df) // 2
    return (df.iloc[idx[:cut]].reset_index(drop=True), df.iloc[idx[cut:]].reset_index(drop=True))


def fit_generator(cls: type, df: pd.DataFrame, epsilon: float | None, seed: int,
                  quick: bool) -> tuple[pd.DataFrame, float, float]:
    """Fit an nhssynth generator on ``df`` (default parameters, no metadata) and sample.

    Returns
    -------
    synthetic : DataFrame
        ``len(df)`` rows.
    fit_s, sample_s : float
    """
    accepted = inspect.signature(cls).parameters
    params: dict[str, Any] = {"epsilon": epsilon}
    if epsilon is None and "allow_non_private" in accepted:
        params["allow_non_private"] = True
    if "random_state" in accepted:
        params["random_state"] = seed
    if quick and "max_epochs" in accepted:
        params["max_epochs"] = QUICK_EPOCHS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model = cls(**params).fit(df)
        fit_s = time.perf_counter() - t0
        sample_kw = {"random_state": seed} if "random_state" in \
            inspect.signature(model.sample).parameters else {}
        t0 = time.perf_counter()
        synthetic = model.sample(len(df), **sample_kw)
        sample_s = time.perf_counter() - t0
    return synthetic, fit_s, sample_s


def _peer_cache_files(table: Table, method: str, epsilon: float | None, seed: int,
                      share: float) -> tuple[Path, Path]:
    digest = hashlib.sha256(table.csv.read_bytes())
    digest.update(json.dumps(table.kinds).encode())
    digest.update(f"share={share}".encode())
    folder = CACHE_DIR / f"{table.name}-{digest.hexdigest()[:12]}"
    stem = f"{method}-eps{eps_label(epsilon)}-seed{seed}"
    return folder / f"{stem}.csv", folder / f"{stem}.json"


def run_peer(table: Table, run: Run, args: argparse.Namespace) -> pd.DataFrame | None:
    """Fit a peer in the peers environment (or take it from the cache); fill ``run``.

    Returns
    -------
    DataFrame or None
        The synthetic table, None when the peer failed or timed out.
    """
    out_csv, info_json = _peer_cache_files(table, run.method, run.epsilon, run.seed,
                                           args.preprocessor_share)
    info = json.loads(info_json.read_text()) if info_json.exists() else None
    usable = info is not None and (
        info.get("timeout_s", 0) >= args.peer_timeout if info.get("status") == "timeout"
        else out_csv.exists())
    if not usable:
        info = _start_peer(table, run, args, out_csv, info_json)
    else:
        run.cached = True
    run.given = info.get("given")
    if info.get("status") == "timeout":
        run.status, run.fit_s = "timeout", None
        run.error = f"> {info['timeout_s']:g} s"
        return None
    if info.get("status") == "failed":
        run.status, run.error = "failed", info["error"]
        return None
    run.fit_s, run.sample_s = info["fit_s"], info["sample_s"]
    return conform(read_table(out_csv, table.kinds), table.real)


def _start_peer(table: Table, run: Run, args: argparse.Namespace, out_csv: Path,
                info_json: Path) -> dict[str, Any]:
    """Run ``peers/run_peer.py`` with a timeout; cache successes and timeouts."""
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    kinds_json = table.csv.parent / "kinds.json"
    cmd = [str(args.peers_python), str(RUN_PEER), "--method", run.method,
           "--data", str(table.csv), "--kinds", str(kinds_json),
           "--epsilon", eps_label(run.epsilon), "--seed", str(run.seed),
           "--preprocessor-share", str(args.preprocessor_share),
           "--out", str(out_csv), "--info", str(info_json)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              timeout=args.peer_timeout)
    except subprocess.TimeoutExpired:
        info = {"status": "timeout", "timeout_s": args.peer_timeout}
        info_json.write_text(json.dumps(info))
        return info
    except OSError as exc:
        return {"status": "failed", "error": first_line(exc)}
    if proc.returncode != 0:
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {"status": "failed", "error": tail[-1] if tail else f"exit {proc.returncode}"}
    info = json.loads(info_json.read_text())
    info["status"] = "ok"
    info_json.write_text(json.dumps(info, indent=1))
    return info


def nhssynth_scores(real: pd.DataFrame, synthetic: pd.DataFrame, md: Metadata) -> dict[str, float]:
    """nhssynth's own metrics under the rule's metadata."""
    pairs = column_pair_trends(real, synthetic, md)
    return {"column_shapes": float(column_shapes(real, synthetic, md)["score"].mean()),
            "column_pair_trends": float(pairs["score"].mean()),
            "relationship": float(relationship_score(pairs))}


# --------------------------------------------------------------------------------------------
# one table
# --------------------------------------------------------------------------------------------
def planned_runs(table: Table, args: argparse.Namespace) -> list[Run]:
    """Every (method, epsilon, seed) to run on ``table``."""
    runs = []
    for seed in range(args.seeds):
        runs += [Run(table.name, "baseline", b, None, seed) for b in args.baselines]
    for name in args.generator_classes:
        for eps in args.epsilons:
            runs += [Run(table.name, "nhssynth", name, eps, s) for s in range(args.seeds)]
    if args.peers:
        for peer in args.peer_methods:
            runs += [Run(table.name, "peer", peer, PEERS[peer][1], s) for s in range(args.seeds)]
    return runs


def produce(table: Table, run: Run,
            args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The (real, synthetic) pair to score for ``run``, or None when the method failed."""
    real = table.real
    try:
        if run.method == "independent":
            return real, independent_columns(real, run.seed)
        if run.method == "holdout":
            first, second = halves(real, run.seed)
            return first, second
        if run.family == "peer":
            synthetic = run_peer(table, run, args)
            return None if synthetic is None else (real, synthetic)
        synthetic, run.fit_s, run.sample_s = fit_generator(
            args.generator_classes[run.method], real, run.epsilon, run.seed, args.quick)
        return real, conform(synthetic, real)
    except Exception as exc:  # noqa: BLE001 - a failed fit is a result, not a crash
        run.status, run.error = "failed", first_line(exc)
        return None


def wants_pairs(run: Run) -> bool:
    """Per-pair values are kept for baselines and for epsilon 1 and none."""
    return run.family == "baseline" or run.epsilon in PAIR_EPSILONS


def run_table(table: Table, args: argparse.Namespace) -> list[Run]:
    """Fit every method on one table, then score all of them (nhssynth metrics, then judge)."""
    folder = table.csv.parent
    runs, jobs = planned_runs(table, args), []
    for i, run in enumerate(runs):
        t0 = time.perf_counter()
        produced = produce(table, run, args)
        if produced is not None:
            real, synthetic = produced
            try:
                run.nhssynth = nhssynth_scores(real, synthetic, table.metadata)
            except Exception as exc:  # noqa: BLE001 - recorded next to the judge's scores
                run.nhssynth = {"error": first_line(exc)}
            real_csv = table.csv
            if real is not table.real:
                real_csv = folder / f"real-{run.method}-{run.seed}.csv"
                write_table(real, real_csv, table.kinds)
            synth_csv = folder / f"synthetic-{i}.csv"
            write_table(synthetic, synth_csv, table.kinds)
            jobs.append({"id": str(i), "real": str(real_csv), "synthetic": str(synth_csv),
                         "pairs": wants_pairs(run)})
        progress(run, time.perf_counter() - t0)
    apply_judge(runs, jobs, table, args, folder)
    return runs


def progress(run: Run, seconds: float) -> None:
    """One line per finished fit on stderr."""
    what = f"{run.table} {run.label} eps={eps_label(run.epsilon, run.family)} seed={run.seed}"
    state = run.status if run.status == "ok" else f"{run.status}: {run.error}"
    state += " (cached)" if run.cached else ""
    print(f"  [{seconds:6.1f} s] {what}: {state}", file=sys.stderr, flush=True)


def apply_judge(runs: list[Run], jobs: list[dict[str, Any]], table: Table,
                args: argparse.Namespace, folder: Path) -> None:
    """Score every job of one table in one judge subprocess and attach the results."""
    if not jobs:
        return
    spec, out = folder / "judge-jobs.json", folder / "judge-results.json"
    spec.write_text(json.dumps({"kinds": table.kinds, "jobs": jobs}))
    t0 = time.perf_counter()
    proc = subprocess.run([str(args.judge_python), str(JUDGE), str(spec), str(out)],
                          capture_output=True, text=True, check=False)
    print(f"  [{time.perf_counter() - t0:6.1f} s] {table.name}: judge scored {len(jobs)} tables",
          file=sys.stderr, flush=True)
    if proc.returncode != 0 or not out.exists():
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        error = f"judge failed: {tail[-1] if tail else proc.returncode}"
        for job in jobs:
            runs[int(job["id"])].judge = {"error": error}
        return
    results = json.loads(out.read_text())
    args.sdmetrics_version = results.get("sdmetrics_version")
    for job_id, result in results["jobs"].items():
        run = runs[int(job_id)]
        run.pairs = result.pop("pairs", None)
        run.judge = result


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------
SCORE_COLUMNS = [  # (header, section, key)
    ("SDM overall", "judge", "overall"),
    ("SDM shapes", "judge", "column_shapes"),
    ("SDM pair trends", "judge", "column_pair_trends"),
    ("nhs shapes", "nhssynth", "column_shapes"),
    ("nhs pair trends", "nhssynth", "column_pair_trends"),
    ("nhs relationship", "nhssynth", "relationship"),
]


def _values(runs: Iterable[Run], section: str, key: str) -> list[float]:
    vals = [getattr(r, section).get(key) for r in runs]
    return [float(v) for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]


def _cell(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    if digits < 3 and max(values) < 10:  # seconds: keep two significant digits for fast fits
        digits = 2
    mean = f"{np.mean(values):.{digits}f}"
    if len(values) == 1:
        return mean
    return f"{mean} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def group_runs(runs: list[Run]) -> dict[tuple[str, str, str], list[Run]]:
    """Runs grouped by (table, method label, epsilon label), in run order."""
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    return groups


def summary_rows(runs: list[Run]) -> list[list[str]]:
    """One row per (table, method, epsilon): mean (min-max) over seeds of every score."""
    rows = []
    for (table, label, eps), group in group_runs(runs).items():
        ok = [r for r in group if r.status == "ok"]
        cells = [table, label, eps, f"{len(ok)}/{len(group)}"]
        cells += [_cell(_values(ok, section, key)) for _, section, key in SCORE_COLUMNS]
        counted = [f"{r.judge['pairs_counted']}/{r.judge['pairs_total']}"
                   for r in ok if "pairs_counted" in r.judge]
        cells.append(counted[0] if counted else "-")
        timeouts = [r.error for r in group if r.status == "timeout"]
        cells.append(timeouts[0] if timeouts and not ok else _cell(_values_attr(ok, "fit_s"), 1))
        cells.append(_cell(_values_attr(ok, "sample_s"), 1))
        notes = sorted({r.error for r in group if r.status == "failed" and r.error})
        notes += sorted({r.judge["error"] for r in ok if "error" in r.judge})
        notes += sorted({f"nhssynth metrics: {r.nhssynth['error']}" for r in ok
                         if "error" in r.nhssynth})
        notes += ["peer output cached"] if any(r.cached for r in ok) else []
        cells.append("; ".join(notes))
        rows.append(cells)
    return rows


def _values_attr(runs: Iterable[Run], attr: str) -> list[float]:
    return [float(getattr(r, attr)) for r in runs if getattr(r, attr) is not None]


SUMMARY_HEADER = ["table", "method", "eps", "seeds ok", *[h for h, _, _ in SCORE_COLUMNS],
                  "SDM pairs counted", "fit s", "sample s", "notes"]


def pair_tables(runs: list[Run], top: int) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Per table: the ``top`` strongest real pairs with each method's synthetic value.

    Strength is |real Pearson r| for numerical pairs and the real Cramér's V for the others.
    Synthetic values are means over seeds.
    """
    out = {}
    for table in dict.fromkeys(r.table for r in runs):
        with_pairs = [r for r in runs if r.table == table and r.pairs and r.status == "ok"]
        reference = next((r for r in with_pairs if r.method != "holdout"), None)
        if reference is None:
            continue
        strongest = sorted(reference.pairs, key=lambda p: -abs(p["real"] or 0.0))[:top]
        groups = group_runs(with_pairs)
        header = ["pair", "stat", "real", "counted",
                  *[f"{label} eps={eps}" if eps != "-" else label for _, label, eps in groups]]
        rows = []
        for pair in strongest:
            ab = (pair["column_1"], pair["column_2"])
            row = [f"{ab[0]} x {ab[1]}", "r" if pair["metric"] == "correlation" else "V",
                   _fmt(pair["real"]), "yes" if pair["counted"] else "no"]
            for group in groups.values():
                vals = [p["synthetic"] for r in group for p in r.pairs
                        if (p["column_1"], p["column_2"]) == ab and p["synthetic"] is not None]
                row.append(_fmt(float(np.mean(vals))) if vals else "-")
            rows.append(row)
        out[table] = (header, rows)
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}" if value < 0 else f"{value:.3f}"


def render_text(header: list[str], rows: list[list[str]]) -> str:
    """Fixed-width text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip()
             for line in [header, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def render_markdown(header: list[str], rows: list[list[str]]) -> str:
    """GitHub-flavoured Markdown table."""
    esc = [[str(x).replace("|", "\\|") for x in line] for line in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(line) + " |" for line in esc[1:]]
    return "\n".join(lines)


def preamble(args: argparse.Namespace, tables: list[Table], runs: list[Run]) -> list[str]:
    """Lines saying what was run: command, date, versions, tables, what each peer was given."""
    lines = [f"Command: `{args.command}`",
             f"Date: {args.started:%Y-%m-%d %H:%M} ({platform.node()}, {os.cpu_count()} CPUs); "
             f"nhssynth {getattr(nhssynth, '__version__', '?')}, "
             f"sdmetrics {getattr(args, 'sdmetrics_version', '?')} (judge), "
             f"{args.seeds} seed(s)"
             + (f", max_epochs={QUICK_EPOCHS} (--quick)" if args.quick else ""),
             "Tables: " + "; ".join(f"{t.name}: {t.note}" for t in tables)]
    given = {r.label: r.given for r in runs if r.given}
    lines += [f"{label}: {text}" for label, text in given.items()]
    return lines


def report(args: argparse.Namespace, tables: list[Table], runs: list[Run]) -> None:
    """Print the tables; write ``--markdown`` and ``--json`` when asked."""
    head = preamble(args, tables, runs)
    summary = summary_rows(runs)
    pairs = pair_tables(runs, args.top_pairs)
    print("\n".join(head) + "\n")
    print(render_text(SUMMARY_HEADER, summary))
    for table, (header, rows) in pairs.items():
        print(f"\n{table}: strongest real pairs (r = Pearson, V = Cramér's V; synthetic = mean "
              f"over seeds; counted = scored by sdmetrics' Column Pair Trends)")
        print(render_text(header, rows))
    if args.markdown:
        md = ["\n".join(f"- {line}" for line in head), "", render_markdown(SUMMARY_HEADER, summary)]
        for table, (header, rows) in pairs.items():
            title = (f"**{table}**: strongest real pairs (r = Pearson, V = Cramér's V; "
                     f"synthetic values are means over seeds; counted = scored by sdmetrics' "
                     f"Column Pair Trends)")
            md += ["", title, "", render_markdown(header, rows)]
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join(md) + "\n")
    if args.json:
        payload = {"command": args.command, "date": args.started.isoformat(timespec="seconds"),
                   "sdmetrics_version": getattr(args, "sdmetrics_version", None),
                   "nhssynth_version": getattr(nhssynth, "__version__", None),
                   "tables": {t.name: {"note": t.note, "rows": len(t.real), "kinds": t.kinds}
                              for t in tables},
                   "runs": [asdict(r) for r in runs]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    args = parse_args(argv)
    words = sys.argv[1:] if argv is None else argv
    args.command = "python benchmarks/bench_quality.py " + shlex.join(words)
    args.started = dt.datetime.now()
    needed = [(args.judge_python, "--judge-python")]
    needed += [(args.peers_python, "--peers-python")] if args.peers else []
    for python, option in needed:
        if not python.exists():
            sys.exit(f"{option} {python} does not exist; see docs/benchmarks.md for the peers venv")
    tables, runs = [], []
    with tempfile.TemporaryDirectory(prefix="bench_quality-") as tmp:
        for name in args.tables:
            print(f"{name}:", file=sys.stderr, flush=True)
            table = prepare_table(name, args.max_rows, Path(tmp))
            tables.append(table)
            runs += run_table(table, args)
    report(args, tables, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
