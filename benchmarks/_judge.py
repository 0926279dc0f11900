"""The independent judge: SDMetrics 0.32 ``QualityReport`` scores of synthetic tables.

Runs in any Python that has ``sdmetrics==0.32.0`` (by default the peers environment:
installing sdmetrics 0.32 into the nhssynth environment would downgrade pandas 3 to 2.3).
``bench_quality.py`` starts it in a subprocess with a JSON list of jobs::

    python benchmarks/_judge.py JOBS.json RESULTS.json

``JOBS.json`` holds ``{"kinds": {column: kind}, "jobs": [{"id", "real", "synthetic",
"pairs"}]}`` (paths of CSVs written by ``_tables.write_table``); ``RESULTS.json`` maps each id
to its scores.

What the judge scores
---------------------
``sdmetrics.reports.single_table.QualityReport`` (deprecated in 0.32 in favour of
``sdmetrics.reports.QualityReport``, which wraps the same single-table properties), with
metadata ``{"columns": {name: {"sdtype": kind}}}`` from the benchmark's metadata rule:

* **Column Shapes**: mean over columns of the KS complement (numerical, datetime) or the TV
  complement (categorical); missing values are left out.
* **Column Pair Trends**: per pair of columns, *correlation similarity*
  ``1 - |r_real - r_synth| / 2`` (Pearson r, both columns numerical/datetime) or *contingency
  similarity* ``1 - TVD`` of the two joint frequency tables (any other pair; a numerical
  column is cut into 10 equal-width bins, ``np.histogram_bin_edges`` computed on the real and
  on the synthetic column *separately*).
* **Overall**: mean of the two property scores.

Pair filtering in 0.32 (read from the installed source)
-------------------------------------------------------
The QualityReport does **not** average over all pairs.  It sets
``real_correlation_threshold = 0.5`` and ``real_association_threshold = 0.3``
(``sdmetrics.reports.utils.DEFAULT_REAL_*_THRESHOLD``): a numerical pair counts only when
``|r_real| > 0.5``, any other pair only when the real Cramér's V > 0.3.  A pair below its
threshold gets ``Score = NaN`` and ``Meets Threshold? = False`` in the details, and for it
sdmetrics does not even compute the synthetic side.  Column Pair Trends is the mean over the
pairs that meet the threshold; if none does, it is NaN and the overall score is Column
Shapes alone (``np.nanmean``).  So the judge's pair score measures only the strong real
relationships, and ``pairs_counted`` says how many there were.

Per-pair values
---------------
For every pair the results give ``real`` (``Real Correlation`` or ``Real Association`` =
Cramér's V, from the report's details) and ``synthetic``: sdmetrics' ``Synthetic
Correlation`` when it computed it; otherwise the judge computes the same statistic on the
synthetic table itself (Pearson r on rows where both are present, or Cramér's V with
sdmetrics' discretisation), marked ``synthetic_source = "judge"``.  As a check the judge also
recomputes the real Cramér's V its own way; ``check_max_abs_diff`` is the largest difference
from sdmetrics' value.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import contingency, pearsonr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tables import read_table

CONTINUOUS = ("numerical", "datetime")


def sdmetrics_metadata(kinds: dict[str, str]) -> dict[str, Any]:
    """SDMetrics single-table metadata from the rule's column kinds."""
    return {"columns": {name: {"sdtype": kind} for name, kind in kinds.items()}}


def _as_numbers(s: pd.Series) -> pd.Series:
    """Float view of a numerical or datetime column (NaN where missing)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype("int64").astype(float).where(s.notna())
    return pd.to_numeric(s, errors="coerce").astype(float)


def _discrete(s: pd.Series, kind: str) -> pd.Series:
    """sdmetrics' discrete version of a column: 10 equal-width bins on this column's own range."""
    if kind not in CONTINUOUS:
        return s
    values = _as_numbers(s)
    edges = np.histogram_bin_edges(values.dropna())
    return pd.Series(np.digitize(values, bins=edges), index=s.index)


def cramers_v(df: pd.DataFrame, a: str, b: str, kinds: dict[str, str]) -> float:
    """Cramér's V of columns ``a`` and ``b`` as sdmetrics computes its real association.

    Parameters
    ----------
    df : DataFrame
    a, b : str
        Column names; a numerical column is binned only when the other one is categorical
        (sdmetrics uses correlation for two numerical columns).
    kinds : dict
        Column kinds of the metadata rule.

    Returns
    -------
    float
        NaN when the contingency table has fewer than two rows or columns.
    """
    both_continuous = kinds[a] in CONTINUOUS and kinds[b] in CONTINUOUS
    pair = pd.DataFrame({
        "a": df[a] if both_continuous else _discrete(df[a], kinds[a]),
        "b": df[b] if both_continuous else _discrete(df[b], kinds[b]),
    })
    table = pair.groupby(["a", "b"], dropna=False).size().unstack(fill_value=0)
    if table.to_numpy().sum() == 0 or min(table.shape) < 2:
        return float("nan")
    return float(contingency.association(table.to_numpy(), method="cramer"))


def pearson(df: pd.DataFrame, a: str, b: str) -> float:
    """Pearson r of two numerical/datetime columns on rows where both are present."""
    pair = pd.DataFrame({"a": _as_numbers(df[a]), "b": _as_numbers(df[b])}).dropna()
    if len(pair) < 2 or pair["a"].nunique() < 2 or pair["b"].nunique() < 2:
        return float("nan")
    return float(pearsonr(pair["a"], pair["b"])[0])


def _number(value: Any) -> float | None:
    """JSON-friendly float (None for NaN/None)."""
    if value is None or pd.isna(value):
        return None
    return float(value)


def pair_rows(details: pd.DataFrame, real: pd.DataFrame, synthetic: pd.DataFrame,
              kinds: dict[str, str]) -> tuple[list[dict[str, Any]], float]:
    """Per-pair real and synthetic values from the Column Pair Trends details.

    Parameters
    ----------
    details : DataFrame
        ``report.get_details("Column Pair Trends")``.
    real, synthetic : DataFrame
    kinds : dict

    Returns
    -------
    rows : list of dict
        ``column_1``, ``column_2``, ``metric``, ``real``, ``synthetic``,
        ``synthetic_source``, ``score`` (None when not counted), ``counted``, ``error``.
    check : float
        Largest ``|own Cramér's V - sdmetrics' Real Association|`` over contingency pairs.
    """
    rows, diffs = [], []
    for rec in details.to_dict("records"):
        a, b, metric = rec["Column 1"], rec["Column 2"], rec["Metric"]
        if metric == "CorrelationSimilarity":
            real_value, synth_value = rec["Real Correlation"], rec["Synthetic Correlation"]
            source = "sdmetrics"
            if pd.isna(synth_value):
                synth_value, source = pearson(synthetic, a, b), "judge"
        else:
            real_value = rec["Real Association"]
            synth_value, source = cramers_v(synthetic, a, b, kinds), "judge"
            own = cramers_v(real, a, b, kinds)
            if not (pd.isna(own) or pd.isna(real_value)):
                diffs.append(abs(own - real_value))
        rows.append({
            "column_1": a, "column_2": b,
            "metric": "correlation" if metric == "CorrelationSimilarity" else "contingency",
            "real": _number(real_value), "synthetic": _number(synth_value),
            "synthetic_source": source, "score": _number(rec["Score"]),
            "counted": bool(pd.notna(rec["Meets Threshold?"]) and rec["Meets Threshold?"]),
            "error": rec.get("Error") if isinstance(rec.get("Error"), str) else None,
        })
    return rows, (max(diffs) if diffs else 0.0)


def judge(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str],
          pairs: bool = True) -> dict[str, Any]:
    """Score one synthetic table against the real one with the SDMetrics 0.32 QualityReport.

    Parameters
    ----------
    real, synthetic : DataFrame
        In :func:`_tables.read_table`'s representation.
    kinds : dict
        Column kinds of the metadata rule.
    pairs : bool, default True
        Also return the per-pair values.

    Returns
    -------
    dict
        ``overall``, ``column_shapes``, ``column_pair_trends``, ``pairs_counted``,
        ``pairs_total``, ``seconds`` and, with ``pairs``, ``pairs`` and ``check_max_abs_diff``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the single-table report's deprecation FutureWarning
        from sdmetrics.reports.single_table import QualityReport

        t0 = time.perf_counter()
        report = QualityReport()
        report.generate(real, synthetic, sdmetrics_metadata(kinds), verbose=False)
        props = report.get_properties().set_index("Property")["Score"]
        details = report.get_details("Column Pair Trends")
        out: dict[str, Any] = {
            "overall": _number(report.get_score()),
            "column_shapes": _number(props.get("Column Shapes")),
            "column_pair_trends": _number(props.get("Column Pair Trends")),
            "pairs_counted": int(details["Meets Threshold?"].fillna(False).sum()),
            "pairs_total": len(details),
            "seconds": time.perf_counter() - t0,
        }
        if pairs:
            out["pairs"], out["check_max_abs_diff"] = pair_rows(details, real, synthetic, kinds)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python _judge.py JOBS.json RESULTS.json``: score every job, one failure at a time."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.split("\n")[0] + "\nusage: _judge.py JOBS.json RESULTS.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    kinds = spec["kinds"]
    reals: dict[str, pd.DataFrame] = {}
    results: dict[str, Any] = {"sdmetrics_version": version("sdmetrics"), "jobs": {}}
    for job in spec["jobs"]:
        try:
            if job["real"] not in reals:
                reals[job["real"]] = read_table(Path(job["real"]), kinds)
            synthetic = read_table(Path(job["synthetic"]), kinds)
            results["jobs"][job["id"]] = judge(reals[job["real"]], synthetic, kinds,
                                               pairs=job.get("pairs", True))
        except Exception as exc:  # noqa: BLE001 - one bad table must not sink the others
            first = (str(exc).strip().splitlines() or [""])[0]
            results["jobs"][job["id"]] = {"error": f"{type(exc).__name__}: {first}"}
    Path(argv[1]).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
