"""Robustness sweep: every nhssynth generator, with defaults, on real tables nobody here wrote.

From the issue "Works on every real table, with defaults".  The tables ship inside PyPI
packages (scikit-learn, lifelines, scikit-survival, statsmodels; see ``_robust_tables.py``):
nothing is downloaded.  Every ``*Synthesizer`` that ``nhssynth`` exports is fitted on each
table at each ``--epsilons`` value (``none`` = ``epsilon=None, allow_non_private=True``) with
no metadata and default parameters, except ``max_epochs`` of the DP-VAE (``--max-epochs``,
default 10; 0 keeps the package default).  Each fit samples as many rows as the table has.

Per table x generator x epsilon the sweep records
-------------------------------------------------
* **outcome**: ``ok``; ``clear error`` = an ``nhssynth.exceptions.NhssynthError``, or a
  ``ValueError``/``TypeError`` whose message names a column of the table or a parameter of
  the generator; ``crash`` = anything else, with the exception class and the first line of
  its message; ``timeout`` = the fit (or its sample) ran past ``--fit-timeout`` seconds (a
  slow default, listed apart from crashes).  ``actionable`` says whether an error's
  message names a column or a parameter (names of one or two characters count only quoted).
* **fit s**, **sample s**.
* for ok fits:

  - **SDM overall**: the SDMetrics 0.32 QualityReport score (``_judge.py``, run in another
    Python: ``--judge-python``; off with ``--no-judge``), with the ``_tables.py`` metadata rule;
  - **out of range**: per numeric (or datetime) column, the share of synthetic values outside
    the real ``[min - w, max + w]`` with ``w = max(range, 32 x grid step)`` (grid step =
    ``10**-d`` for the column's decimals ``d``, see below; 0 when it has none); the worst
    column is reported;
  - **absurd**: the share of numeric (or datetime) columns whose synthetic 1st-99th
    percentile interval is not inside that widened range; an output with any such column
    is an *absurd output*;
  - **decimals kept**: for each numeric column whose values lie on a decimal grid (the fewest
    decimals ``d <= 8`` that hold for >= 99.9% of the real values), whether >= 99.9% of the
    synthetic values lie on it too;
  - **dtypes equal** (columns and dtypes of the sample equal the real table's);
  - **categories lost**: categories holding >= 2% and >= 150 rows of a categorical column
    (``_tables.column_kinds``) that never appear in the sample;
  - **withheld**: columns all-missing in the sample while the real column is not;
    **new missing**: other columns with missing values in the sample but none in the real
    table.

Summaries: ok / clear error / crash per generator and epsilon, the share of fits that work at
epsilon 1, the number of absurd outputs, and the issue's targets (0 crashes, 0 absurd outputs,
>= 90% fit at epsilon 1 with no metadata, every error actionable).

lifelines needs ``pandas<3``, so tables whose package is not importable here are loaded by
``--tables-python`` (default: the peers environment, ``../peers-venv``) and pickled across.
Long sweeps can be split by generator, epsilon or tables with ``--json`` each, then combined
with ``--merge A.json B.json ... --markdown OUT.md`` (no fitting; a fit that appears in several
files is taken from the last one, so a part can be rerun).

See ``docs/robustness.md``; ``python benchmarks/bench_robustness.py --help``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import math
import os
import pickle
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import nhssynth
from nhssynth.exceptions import NhssynthError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _robust_tables as rt
from _tables import _category_text, column_kinds, write_table
from bench_quality import (
    _csv_list,
    _epsilon,
    conform,
    discover_generators,
    eps_label,
    first_line,
    render_markdown,
    render_text,
)

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE.parents[1] / "peers-venv" / "bin" / "python"
JUDGE = HERE / "_judge.py"
DEFAULT_EPOCHS = 10
QUICK_EPOCHS = 2
MAX_DECIMALS = 8
GRID_SHARE = 0.999
STEP_FLOOR = 32           # the widened range is at least this many grid steps
CATEGORY_SHARE, CATEGORY_ROWS = 0.02, 150
OUTCOMES = ("ok", "clear error", "crash", "timeout")


# --------------------------------------------------------------------------------------------
# records
# --------------------------------------------------------------------------------------------
@dataclass
class Run:
    """One fit of one generator on one table at one epsilon, and what its sample looks like."""

    table: str
    generator: str
    epsilon: float | None
    outcome: str = "ok"
    error: str | None = None              # "Class: first line"
    actionable: bool | None = None        # an error naming a column or parameter
    named: list[str] = field(default_factory=list)
    fit_s: float | None = None
    sample_s: float | None = None
    warnings: list[str] = field(default_factory=list)
    sdm_overall: float | None = None
    judge_error: str | None = None
    out_of_range: float | None = None     # worst column's share
    out_of_range_column: str | None = None
    absurd_share: float | None = None
    absurd_columns: list[str] = field(default_factory=list)
    decimals_lost: list[str] = field(default_factory=list)
    dtype_mismatches: list[str] = field(default_factory=list)
    columns_equal: bool | None = None
    categories_lost: list[str] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)
    new_missing: list[str] = field(default_factory=list)

    @property
    def absurd(self) -> bool:
        return bool(self.absurd_columns)


# --------------------------------------------------------------------------------------------
# measures of one sample
# --------------------------------------------------------------------------------------------
def _is_measured(s: pd.Series) -> bool:
    """Numeric (not bool) or datetime columns get the range checks."""
    return (pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)) \
        or pd.api.types.is_datetime64_any_dtype(s.dtype)


def _floats(s: pd.Series, like: pd.Series) -> np.ndarray:
    """Non-missing values of ``s`` as floats (datetimes as nanoseconds), read like ``like``."""
    if pd.api.types.is_datetime64_any_dtype(like.dtype):
        t = pd.to_datetime(s, errors="coerce")
        if getattr(t.dt, "tz", None) is not None:
            t = t.dt.tz_convert("UTC").dt.tz_localize(None)
        t = t.dropna()
        return t.astype("datetime64[ns]").astype("int64").to_numpy(dtype=float)
    v = pd.to_numeric(s, errors="coerce").astype(float)
    return v[np.isfinite(v)].to_numpy()


def _on_grid(values: np.ndarray, d: int) -> np.ndarray:
    scaled = values * 10.0 ** d
    return np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled)) + 1e-9


def decimals(values: np.ndarray) -> int | None:
    """Fewest decimals (<= 8) that hold for >= 99.9% of ``values``; None if none do."""
    if values.size == 0:
        return None
    for d in range(MAX_DECIMALS + 1):
        if _on_grid(values, d).mean() >= GRID_SHARE:
            return d
    return None


def widened_range(real: np.ndarray, d: int | None) -> tuple[float, float]:
    """``[min - w, max + w]``, ``w = max(range, 32 x grid step)`` (step 0 without a grid)."""
    lo, hi = float(real.min()), float(real.max())
    step = 10.0 ** -d if d is not None else 0.0
    w = max(hi - lo, STEP_FLOOR * step)
    return lo - w, hi + w


def _dtype_text(dtype: Any) -> str:
    """``int64``; categoricals with their categories' dtype and order (``category[str]``)."""
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        text = f"category[{cats.dtype}, {len(cats)}: {', '.join(map(str, cats[:3]))}"
        return text + (", ...]" if len(cats) > 3 else "]") + (" ordered" if dtype.ordered else "")
    return str(dtype)


def measure(real: pd.DataFrame, synthetic: pd.DataFrame, run: Run) -> None:
    """Fill the sample measures of ``run``."""
    run.columns_equal = list(synthetic.columns) == list(real.columns)
    run.dtype_mismatches = [
        f"{c}: {_dtype_text(real[c].dtype)} -> "
        f"{_dtype_text(synthetic[c].dtype) if c in synthetic else 'absent'}"
        for c in real.columns if c not in synthetic or synthetic[c].dtype != real[c].dtype]
    common = [c for c in real.columns if c in synthetic]
    run.withheld = [c for c in common if real[c].notna().any() and synthetic[c].isna().all()]
    run.new_missing = [c for c in common if c not in run.withheld
                       and not real[c].isna().any() and synthetic[c].isna().any()]
    worst, worst_col, measured, absurd = 0.0, None, 0, []
    for c in common:
        if not _is_measured(real[c]):
            continue
        r = _floats(real[c], real[c])
        s = _floats(synthetic[c], real[c])
        if r.size == 0:
            continue
        measured += 1
        d = None if pd.api.types.is_datetime64_any_dtype(real[c].dtype) else decimals(r)
        if d is not None and s.size and _on_grid(s, d).mean() < GRID_SHARE:
            run.decimals_lost.append(f"{c} ({d} decimals)")
        if s.size == 0:
            continue
        lo, hi = widened_range(r, d)
        share = float(((s < lo) | (s > hi)).mean())
        if share > worst or worst_col is None:
            worst, worst_col = share, c
        q01, q99 = np.quantile(s, [0.01, 0.99])
        if q01 < lo or q99 > hi:
            absurd.append(f"{c} (real {r.min():.4g}..{r.max():.4g}, synthetic p1-p99 "
                          f"{q01:.4g}..{q99:.4g})")
    run.out_of_range, run.out_of_range_column = (worst, worst_col) if measured else (None, None)
    run.absurd_columns = absurd
    run.absurd_share = len(absurd) / measured if measured else None
    kinds = column_kinds(real)
    n = len(real)
    for c in common:
        if kinds[c] != "categorical":
            continue
        counts = real[c].map(_category_text).value_counts(dropna=True)
        big = counts[(counts >= CATEGORY_SHARE * n) & (counts >= CATEGORY_ROWS)]
        seen = set(synthetic[c].map(_category_text).dropna())
        run.categories_lost += [f"{c}={v}" for v in big.index if v not in seen]


# --------------------------------------------------------------------------------------------
# fitting
# --------------------------------------------------------------------------------------------
class FitTimeout(BaseException):
    """A fit ran past ``--fit-timeout``."""


def _alarm(signum, frame):
    raise FitTimeout


def mentioned(message: str, columns: list[str], params: list[str]) -> list[str]:
    """Columns and parameters named in ``message`` (short names only when quoted)."""
    found = []
    for name in [*map(str, columns), *params]:
        if len(name) <= 2:
            pattern = r"[\"'`]" + re.escape(name) + r"[\"'`]"
        else:
            pattern = r"(?<![\w])" + re.escape(name) + r"(?![\w])"
        if re.search(pattern, message):
            found.append(name)
    return list(dict.fromkeys(found))


def classify(exc: BaseException, columns: list[str], params: list[str]) -> tuple[str, list[str]]:
    """``("clear error" | "crash", names)`` for an exception raised by a fit."""
    names = mentioned(str(exc), columns, params)
    if isinstance(exc, NhssynthError):
        return "clear error", names
    if isinstance(exc, (ValueError, TypeError)) and names:
        return "clear error", names
    return "crash", names


def generator_params(cls: type, epsilon: float | None, seed: int, max_epochs: int) -> dict:
    """Default parameters plus epsilon, the seed and the DP-VAE epochs override."""
    accepted = inspect.signature(cls).parameters
    params: dict[str, Any] = {"epsilon": epsilon}
    if epsilon is None and "allow_non_private" in accepted:
        params["allow_non_private"] = True
    if "random_state" in accepted:
        params["random_state"] = seed
    if max_epochs and "max_epochs" in accepted:
        params["max_epochs"] = max_epochs
    return params


def fit_one(cls: type, real: pd.DataFrame, run: Run, args: argparse.Namespace) \
        -> pd.DataFrame | None:
    """Fit, sample and classify; the sample, or None when the fit or the sample failed."""
    params = generator_params(cls, run.epsilon, args.seed, args.max_epochs)
    param_names = [*inspect.signature(cls).parameters, "metadata", "kinds", "n_samples"]
    caught: list[warnings.WarningMessage] = []
    old = signal.signal(signal.SIGALRM, _alarm) if args.fit_timeout else None
    stage = "fit"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.fit_timeout:
                signal.alarm(math.ceil(args.fit_timeout))
            t0 = time.perf_counter()
            model = cls(**params).fit(real)
            run.fit_s = time.perf_counter() - t0
            stage = "sample"
            kw = {"random_state": args.seed} if "random_state" in \
                inspect.signature(model.sample).parameters else {}
            t0 = time.perf_counter()
            synthetic = model.sample(len(real), **kw)
            run.sample_s = time.perf_counter() - t0
            if args.fit_timeout:
                signal.alarm(0)
        return synthetic
    except FitTimeout:
        run.outcome, run.error = "timeout", f"{stage} ran past {args.fit_timeout:g} s"
        run.actionable = False
        return None
    except Exception as exc:  # noqa: BLE001 - a failed fit is a result
        if args.fit_timeout:
            signal.alarm(0)
        if stage == "fit":
            run.fit_s = time.perf_counter() - t0
        run.outcome, run.named = classify(exc, list(real.columns), param_names)
        run.error = f"{'' if stage == 'fit' else 'in sample(): '}{first_line(exc)}"
        run.actionable = bool(run.named)
        return None
    finally:
        if old is not None:
            signal.signal(signal.SIGALRM, old)
        run.warnings = list(dict.fromkeys(
            f"{w.category.__name__}: {(str(w.message).strip().splitlines() or [''])[0][:160]}"
            for w in caught if w.category.__module__.startswith("nhssynth")))[:5]


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
def load_tables(names: list[str], args: argparse.Namespace) -> tuple[dict, dict]:
    """``({name: DataFrame}, {name: note})``: here when the package imports, else via
    ``--tables-python``; a table that cannot be loaded gets a note and no frame."""
    frames, notes = {}, {}
    elsewhere = []
    for name in names:
        if rt.available(name):
            try:
                frames[name] = rt.load(name)
            except Exception as exc:  # noqa: BLE001
                notes[name] = f"not loaded: {first_line(exc)}"
        else:
            elsewhere.append(name)
    if elsewhere:
        python = args.tables_python
        if not python.exists():
            for name in elsewhere:
                notes[name] = (f"skipped: {rt.TABLES[name].dist} is not installed here and "
                               f"--tables-python {python} does not exist")
        else:
            with tempfile.TemporaryDirectory(prefix="robust-tables-") as tmp:
                proc = subprocess.run([str(python), str(HERE / "_robust_tables.py"), tmp,
                                       *elsewhere], capture_output=True, text=True, check=False)
                manifest_path = Path(tmp) / "manifest.json"
                manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
                for name in elsewhere:
                    info = manifest.get(name)
                    if info and info["ok"]:
                        with open(Path(tmp) / f"{name}.pkl", "rb") as fh:
                            frames[name] = rt.as_local(pickle.load(fh))
                    else:
                        tail = [ln for ln in proc.stderr.splitlines() if ln.strip()]
                        why = info["error"] if info else (tail[-1] if tail else "no output")
                        notes[name] = f"not loaded by {python}: {why}"
    for name, df in list(frames.items()):
        note = f"{len(df)} x {df.shape[1]}"
        if len(df) > args.max_rows:
            frames[name] = df.sample(n=args.max_rows, random_state=0).reset_index(drop=True)
            note = f"subsampled to {args.max_rows} of {note} (seed 0)"
        notes[name] = note
    return {n: frames[n] for n in names if n in frames}, notes


# --------------------------------------------------------------------------------------------
# judge
# --------------------------------------------------------------------------------------------
def judge_table(real: pd.DataFrame, runs: list[Run], samples: dict[int, pd.DataFrame],
                folder: Path, args: argparse.Namespace) -> None:
    """Score the ok samples of one table with the SDMetrics judge (one subprocess)."""
    if not samples:
        return
    kinds = column_kinds(real)
    folder.mkdir(parents=True, exist_ok=True)
    real_csv = folder / "real.csv"
    write_table(real, real_csv, kinds)
    jobs = []
    for i, synthetic in samples.items():
        path = folder / f"synthetic-{i}.csv"
        try:
            write_table(conform(synthetic, real), path, kinds)
        except Exception as exc:  # noqa: BLE001
            runs[i].judge_error = f"not scored: {first_line(exc)}"
            continue
        jobs.append({"id": str(i), "real": str(real_csv), "synthetic": str(path), "pairs": False})
    spec, out = folder / "jobs.json", folder / "results.json"
    spec.write_text(json.dumps({"kinds": kinds, "jobs": jobs}))
    proc = subprocess.run([str(args.judge_python), str(JUDGE), str(spec), str(out)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.exists():
        tail = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        for job in jobs:
            runs[int(job["id"])].judge_error = f"judge failed: {tail[-1] if tail else '?'}"
        return
    results = json.loads(out.read_text())
    args.sdmetrics_version = results.get("sdmetrics_version")
    for job_id, res in results["jobs"].items():
        run = runs[int(job_id)]
        run.sdm_overall = res.get("overall")
        run.judge_error = res.get("error")


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def _table_list(text: str) -> list[str]:
    out = []
    for item in _csv_list(text):
        if item in rt.TABLES:
            out.append(item)
        elif item in rt.LOADERS:                      # a whole source: "lifelines"
            out += [n for n in rt.TABLES if n.startswith(item + ".")]
        else:
            raise argparse.ArgumentTypeError(
                f"unknown table {item!r}; use a source ({','.join(rt.LOADERS)}) or one of "
                f"{','.join(rt.TABLES)}")
    return list(dict.fromkeys(out))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line and fill in ``--quick`` defaults."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="See docs/robustness.md.")
    ap.add_argument("--tables", type=_table_list, default=None,
                    help=f"comma list of tables and/or sources ({','.join(rt.LOADERS)}); "
                         f"default all {len(rt.TABLES)}")
    ap.add_argument("--generators", type=_csv_list, default=None,
                    help="comma list of nhssynth *Synthesizer class names (default: all exported)")
    ap.add_argument("--epsilons", type=lambda s: [_epsilon(t) for t in _csv_list(s)],
                    default=None, help="comma list; 'none' = not private (default 1,none)")
    ap.add_argument("--max-epochs", type=int, default=None,
                    help=f"max_epochs of generators that have it (the DP-VAE); 0 = the package "
                         f"default (default {DEFAULT_EPOCHS}; --quick {QUICK_EPOCHS})")
    ap.add_argument("--seed", type=int, default=0, help="random_state of fit and sample")
    ap.add_argument("--fit-timeout", type=float, default=600.0,
                    help="seconds before a fit (or its sample) counts as a crash (0 = none)")
    ap.add_argument("--max-rows", type=int, default=25000,
                    help="subsample larger tables (seed 0); default 25000 keeps every table whole")
    ap.add_argument("--judge", action=argparse.BooleanOptionalAction, default=True,
                    help="score ok samples with the SDMetrics judge (default on)")
    ap.add_argument("--judge-python", type=Path,
                    default=Path(os.environ.get("NHSSYNTH_PEERS_PYTHON", PEERS_PYTHON)),
                    help="Python with sdmetrics==0.32.0 (default ../peers-venv/bin/python)")
    ap.add_argument("--tables-python", type=Path,
                    default=Path(os.environ.get("NHSSYNTH_PEERS_PYTHON", PEERS_PYTHON)),
                    help="Python that loads tables whose package is not installed here "
                         "(default ../peers-venv/bin/python)")
    ap.add_argument("--quick", action="store_true",
                    help=f"CI subset: {len(rt.QUICK)} small scikit-learn tables, one generator "
                         f"(--generators, default the first exported), epsilon 1, "
                         f"max_epochs {QUICK_EPOCHS}")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when there is a crash or an absurd output")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="combine the --json files of earlier runs into one report (no fits)")
    ap.add_argument("--json", type=Path, default=None, help="write every record here")
    ap.add_argument("--markdown", type=Path, default=None, help="write the report here")
    args = ap.parse_args(argv)
    if args.merge:
        return args
    generators = discover_generators()
    wanted = args.generators or list(generators)
    if args.quick:
        wanted = wanted[:1] if args.generators is None else wanted
        if len(wanted) != 1:
            ap.error("--quick runs one generator: give one name to --generators")
    unknown = [g for g in wanted if g not in generators]
    if unknown:
        ap.error(f"unknown generator(s) {unknown}; nhssynth exports {sorted(generators)}")
    args.generator_classes = {g: generators[g] for g in wanted}
    args.tables = args.tables or (list(rt.QUICK) if args.quick else list(rt.TABLES))
    args.epsilons = args.epsilons or ([1.0] if args.quick else [1.0, None])
    if args.max_epochs is None:
        args.max_epochs = QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS
    return args


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------
def _s(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def count_rows(runs: list[Run]) -> list[list[str]]:
    """Per generator and epsilon: counts of outcomes and of defects in the ok samples."""
    rows = []
    keys = list(dict.fromkeys((r.generator, eps_label(r.epsilon)) for r in runs))
    for gen, eps in keys:
        group = [r for r in runs if r.generator == gen and eps_label(r.epsilon) == eps]
        ok = [r for r in group if r.outcome == "ok"]
        sdm = [r.sdm_overall for r in ok if r.sdm_overall is not None]
        fits = sorted(r.fit_s for r in ok if r.fit_s is not None)
        rows.append([
            gen, eps, str(len(group)),
            *[str(sum(r.outcome == o for r in group)) for o in OUTCOMES],
            f"{len(ok) / len(group):.0%}" if group else "-",
            str(sum(r.absurd for r in ok)),
            str(sum(bool(r.out_of_range) for r in ok)),
            str(sum(bool(r.decimals_lost) for r in ok)),
            str(sum(bool(r.dtype_mismatches) or not r.columns_equal for r in ok)),
            str(sum(len(r.categories_lost) for r in ok)),
            str(sum(len(r.withheld) for r in ok)),
            str(sum(len(r.new_missing) for r in ok)),
            _s(float(np.mean(sdm)), 3) if sdm else "-",
            _s(float(np.median(fits)), 1) if fits else "-",
            _s(float(np.max(fits)), 1) if fits else "-",
        ])
    return rows


COUNT_HEADER = ["generator", "eps", "fits", "ok", "clear error", "crash", "timeout", "ok share",
                "absurd outputs", "any value out of range", "decimals lost", "dtypes differ",
                "categories lost", "withheld columns", "new-missing columns", "SDM overall mean",
                "fit s median", "fit s max"]


def target_lines(runs: list[Run]) -> list[str]:
    """The issue's targets and whether this sweep meets them."""
    crashes = [r for r in runs if r.outcome == "crash"]
    absurd = [r for r in runs if r.outcome == "ok" and r.absurd]
    at1 = [r for r in runs if r.epsilon == 1.0]
    ok1 = [r for r in at1 if r.outcome == "ok"]
    errors = [r for r in runs if r.outcome in ("clear error", "crash")]
    slow = [r for r in runs if r.outcome == "timeout"]
    unclear = [r for r in errors if not r.actionable]
    share = len(ok1) / len(at1) if at1 else float("nan")
    per_gen = "; ".join(
        f"{g} {sum(r.outcome == 'ok' for r in at1 if r.generator == g)}/"
        f"{sum(r.generator == g for r in at1)}"
        for g in dict.fromkeys(r.generator for r in at1))

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"
    return [
        f"0 crashes: {met(not crashes)} ({len(crashes)} crash(es) in {len(runs)} fits)",
        f"0 absurd outputs: {met(not absurd)} ({len(absurd)})",
        ">= 90% fit at epsilon 1 with no metadata: "
        + (f"{met(share >= 0.9)} ({len(ok1)}/{len(at1)} = {share:.0%}; {per_gen})"
           if at1 else "not measured (no epsilon 1 fits)"),
        (f"every error actionable: {met(not unclear)} ({len(errors) - len(unclear)} of "
         f"{len(errors)} errors name a column or parameter)"),
    ] + ([f"(not a target) {len(slow)} fit(s) ran past the time limit"] if slow else [])


def _few(items: list[str], n: int = 2) -> str:
    """The first ``n`` items, then how many more."""
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def run_rows(runs: list[Run]) -> list[list[str]]:
    """One row per fit."""
    rows = []
    for r in runs:
        notes = []
        if r.error:
            notes.append(r.error[:200])
        if r.absurd_columns:
            notes.append("absurd: " + _few(r.absurd_columns))
        if r.decimals_lost:
            notes.append("decimals lost: " + _few(r.decimals_lost, 4))
        if r.dtype_mismatches:
            notes.append("dtypes: " + _few(r.dtype_mismatches, 4))
        if r.categories_lost:
            notes.append("categories lost: " + _few(r.categories_lost, 4))
        if r.withheld:
            notes.append("withheld: " + _few(r.withheld, 4))
        if r.new_missing:
            notes.append("new missing: " + _few(r.new_missing, 4))
        if r.judge_error:
            notes.append(f"judge: {r.judge_error}")
        oor = "-" if r.out_of_range is None else \
            f"{r.out_of_range:.1%} ({r.out_of_range_column})" if r.out_of_range else "0"
        rows.append([r.table, r.generator, eps_label(r.epsilon), r.outcome, _s(r.fit_s),
                     _s(r.sample_s, 2), _s(r.sdm_overall, 3), oor,
                     "-" if r.absurd_share is None else f"{r.absurd_share:.0%}",
                     "-" if r.outcome != "ok" else ("yes" if not r.decimals_lost else "no"),
                     "-" if r.outcome != "ok" else
                     ("yes" if not r.dtype_mismatches and r.columns_equal else "no"),
                     "; ".join(notes)])
    return rows


RUN_HEADER = ["table", "generator", "eps", "outcome", "fit s", "sample s", "SDM overall",
              "out of range (worst)", "absurd", "decimals kept", "dtypes equal", "notes"]


def defect_lines(runs: list[Run]) -> list[str]:
    """Every crash and absurd output, one line each."""
    out = [f"crash: {r.table} / {r.generator} eps={eps_label(r.epsilon)}: {r.error}"
           for r in runs if r.outcome == "crash"]
    out += [f"absurd: {r.table} / {r.generator} eps={eps_label(r.epsilon)}: "
            f"{len(r.absurd_columns)} column(s): {_few(r.absurd_columns)}"
            for r in runs if r.outcome == "ok" and r.absurd]
    out += [f"timeout: {r.table} / {r.generator} eps={eps_label(r.epsilon)}: {r.error}"
            for r in runs if r.outcome == "timeout"]
    out += [f"unactionable error: {r.table} / {r.generator} eps={eps_label(r.epsilon)}: "
            f"{r.error}" for r in runs if r.outcome == "clear error" and not r.actionable]
    return out


def report(meta: dict[str, Any], runs: list[Run], markdown: Path | None) -> None:
    """Print the report; write it as Markdown when asked."""
    head = [f"Command: `{c}`" for c in meta["commands"]]
    head += [(f"Date: {meta['date']} ({meta['host']}); nhssynth {meta['nhssynth_version']} "
              f"from {meta['nhssynth_path']}; sdmetrics {meta.get('sdmetrics_version') or '-'}"),
             f"Sweep time: {meta['seconds']:.0f} s",
             "Tables: " + "; ".join(f"{k}: {v}" for k, v in meta["tables"].items())]
    targets, defects = target_lines(runs), defect_lines(runs)
    counts, per_run = count_rows(runs), run_rows(runs)
    print("\n".join(head) + "\n")
    print(render_text(COUNT_HEADER, counts) + "\n")
    print("Targets:\n" + "\n".join(f"  {t}" for t in targets) + "\n")
    print("Defects:\n" + ("\n".join(f"  {d}" for d in defects) or "  none") + "\n")
    print(render_text(RUN_HEADER, per_run))
    if markdown:
        md = ["\n".join(f"- {line}" for line in head), "", render_markdown(COUNT_HEADER, counts),
              "", "Targets:", "", *[f"- {t}" for t in targets], "", "Defects:", "",
              *([f"- {d}" for d in defects] or ["- none"]), "",
              render_markdown(RUN_HEADER, per_run)]
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text("\n".join(md) + "\n")


def merge(paths: list[Path]) -> tuple[dict[str, Any], list[Run]]:
    """Combine the ``--json`` files of several runs."""
    meta: dict[str, Any] = {"commands": [], "tables": {}, "seconds": 0.0}
    runs: list[Run] = []
    for path in paths:
        data = json.loads(path.read_text())
        meta["commands"] += data["commands"]
        meta["tables"].update(data["tables"])
        meta["seconds"] += data["seconds"]
        for key in ("date", "host", "nhssynth_version", "nhssynth_path", "sdmetrics_version"):
            if data.get(key) and key not in meta or (key == "date" and data[key] > meta[key]):
                meta[key] = data[key]
        runs += [Run(**r) for r in data["runs"]]
    latest = {(r.table, r.generator, r.epsilon): r for r in runs}   # a later file's rerun wins
    return meta, list(latest.values())


def main(argv: list[str] | None = None) -> int:
    """Run the sweep (or merge earlier ones) and report."""
    args = parse_args(argv)
    words = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/bench_robustness.py " + shlex.join(words)
    if args.merge:
        meta, runs = merge(args.merge)
        meta["commands"].append(command)
    else:
        meta, runs = sweep(args, command)
    report(meta, runs, args.markdown)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**meta, "runs": [asdict(r) for r in runs]}, indent=1,
                                        default=str))
    bad = any(r.outcome == "crash" or (r.outcome == "ok" and r.absurd) for r in runs)
    return 1 if args.strict and bad else 0


def sweep(args: argparse.Namespace, command: str) -> tuple[dict[str, Any], list[Run]]:
    """Fit every generator at every epsilon on every table."""
    started, t_start = dt.datetime.now(), time.perf_counter()
    if args.judge and not args.judge_python.exists():
        sys.exit(f"--judge-python {args.judge_python} does not exist (use --no-judge, or see "
                 f"docs/robustness.md)")
    frames, notes = load_tables(args.tables, args)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench_robustness-") as tmp:
        for name, real in frames.items():
            table_runs, samples = [], {}
            for gen, cls in args.generator_classes.items():
                for eps in args.epsilons:
                    run = Run(name, gen, eps)
                    t0 = time.perf_counter()
                    synthetic = fit_one(cls, real, run, args)
                    if synthetic is not None:
                        try:
                            measure(real, synthetic, run)
                            samples[len(table_runs)] = synthetic
                        except Exception as exc:  # noqa: BLE001 - a bad sample is a crash
                            run.outcome, run.error = "crash", f"in the sample: {first_line(exc)}"
                            run.actionable = False
                    table_runs.append(run)
                    state = run.outcome + (f": {run.error}" if run.error else "")
                    state += " ABSURD" if run.absurd else ""
                    print(f"  [{time.perf_counter() - t0:6.1f} s] {name} {gen} "
                          f"eps={eps_label(eps)}: {state}", file=sys.stderr, flush=True)
            if args.judge:
                judge_table(real, table_runs, samples, Path(tmp) / name, args)
            runs += table_runs
    meta = {"commands": [command], "date": started.isoformat(timespec="minutes"),
            "host": f"{platform.node()}, {os.cpu_count()} CPUs",
            "nhssynth_version": getattr(nhssynth, "__version__", None),
            "nhssynth_path": str(Path(nhssynth.__file__).parent),
            "sdmetrics_version": getattr(args, "sdmetrics_version", None),
            "max_epochs": args.max_epochs, "seed": args.seed,
            "tables": notes, "seconds": time.perf_counter() - t_start}
    return meta, runs


if __name__ == "__main__":
    sys.exit(main())
