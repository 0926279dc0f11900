"""``evaluate``: every metric in one call, with baselines next to every number."""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from ..constraints import FixedCombinations
from ..metadata import Metadata
from ..synthesizers.marginal import MarginalSynthesizer
from ._encoding import check_frames, resolve_metadata
from .fidelity import (column_pair_trends, column_shapes, coverage, detection, missing_similarity,
                       pair_trends_score, relationship_score)
from .privacy import dcr, exact_copy_rate, membership_inference, nndr
from .utility import tstr

__all__ = ["evaluate", "EvaluationResult", "METRIC_INFO", "SUMMARY_KEYS"]

# metric -> (group, ideal, plain-language explanation)
METRIC_INFO: dict[str, tuple[str, float, str]] = {
    "quality": ("overall", 1.0,
                "Headline score: mean of column shapes, relationships, detection and (when a target "
                "is given) utility. Unlike 'fidelity' it cannot be high for a table whose columns "
                "are independent."),
    "fidelity": ("fidelity", 1.0, "Mean of column shapes and column pair trends (the usual "
                 "single fidelity number; rewards good marginals even without relationships)."),
    "column_shapes": ("fidelity", 1.0, "How similar each column's distribution is: 1 - "
                      "Kolmogorov-Smirnov distance for numbers and dates, 1 - total variation "
                      "distance for categories."),
    "missing_similarity": ("fidelity", 1.0, "1 - difference between the real and synthetic "
                           "share of missing values in a column."),
    "column_pair_trends": ("fidelity", 1.0, "How similar the relationships of the pairs of columns "
                           "that are related in the real data (|correlation| > 0.5 or Cramér's "
                           "V > 0.3) are: correlation similarity for two numeric columns, "
                           "contingency-table similarity otherwise."),
    "relationships": ("fidelity", 1.0, "Share of the real table's dependence between columns that "
                      "the synthetic table keeps: 0 for independent columns, 1 for every pair "
                      "reproduced exactly."),
    "coverage": ("fidelity", 1.0, "Share of the real value range (numbers, dates) or of the real "
                 "categories that the synthetic data covers."),
    "range_coverage": ("fidelity", 1.0, "Share of the real [min, max] range covered by the "
                       "synthetic values."),
    "category_coverage": ("fidelity", 1.0, "Share of the real categories that appear in the "
                          "synthetic data."),
    "detection": ("fidelity", 1.0, "1 - 2|AUC - 0.5| of a classifier trying to tell real from "
                  "synthetic rows: 1 when it cannot, 0 when it always can."),
    "detection_auc": ("fidelity", 0.5, "ROC AUC of the real-vs-synthetic classifier (0.5 ideal)."),
    "violation_share": ("constraints", 0.0, "Share of rows that break a declared constraint "
                        "(one row per constraint; nhssynth's generators enforce every declared "
                        "constraint, the real table has none, checked at fit)."),
    "constraint_violations": ("constraints", 0.0, "Share of rows that break at least one declared "
                              "constraint."),
    "utility": ("utility", 1.0, "Share of the real data's predictive power (above chance) that a "
                "model trained on synthetic data keeps when tested on real data (TSTR / TRTR)."),
    "utility_real": ("utility", float("nan"), "Score of the model trained on real data (TRTR)."),
    "utility_synthetic": ("utility", float("nan"), "Score of the model trained on synthetic data "
                          "and tested on real data (TSTR)."),
    "privacy": ("privacy", 1.0, "DCR-share score: 1 when synthetic rows are no closer to the "
                "training rows than to unseen real rows, 0 when all sit on training rows."),
    "dcr_share": ("privacy", 0.5, "Share of synthetic rows closer to a training row than to a "
                  "holdout row (ideal: the training share of train+holdout, 0.5 for equal sizes)."),
    "exact_copy_rate": ("privacy", 0.0, "Share of synthetic rows that are exact copies of a "
                        "training row (compare with the holdout column: real duplicates)."),
    "nndr": ("privacy", 1.0, "Mean nearest-neighbour distance ratio to the training rows: near 0 "
             "means rows sit on single training records; compare with real holdout rows."),
    "membership_inference": ("privacy", 1.0, "1 - 2|AUC - 0.5| of an attack guessing from the "
                             "synthetic data whether a record was used for training."),
    "membership_inference_auc": ("privacy", 0.5, "ROC AUC of that membership-inference attack."),
    "dcr_median": ("privacy", float("nan"), "Median distance from a synthetic row to its closest "
                   "training row (embedding units; compare with the holdout column)."),
}
SUMMARY_KEYS = tuple(METRIC_INFO)


@dataclass
class EvaluationResult:
    """What :func:`evaluate` returns; unpacks as ``table, summary = evaluate(...)``.

    Attributes
    ----------
    table : DataFrame
        Tidy metrics: ``group``, ``metric``, ``column`` ("" for table-level rows; "a | b" for
        pairs), ``value``, ``baseline`` (the same metric for a non-private
        :class:`~nhssynth.synthesizers.MarginalSynthesizer`, independent columns), ``holdout`` (the
        same metric for real holdout rows in place of synthetic ones: what real data scores),
        ``ideal``.
    summary : dict
        Table-level values for the synthetic data (keys in :data:`SUMMARY_KEYS`).
    baseline_summary, holdout_summary : dict or None
    privacy : dict or None
        The privacy report (``epsilon``, ``delta``, ``accountant``, ``spends``...) or None when
        unknown.
    findings : list of str
        Plain-language warnings (e.g. relationships no better than independent columns).
    details : dict
        Per-column / per-pair frames and distance arrays used by the plots and the report.
    """

    table: pd.DataFrame
    summary: dict
    baseline_summary: dict | None
    holdout_summary: dict | None
    privacy: dict | None
    metadata: Metadata
    name: str = "synthetic"
    target: str | None = None
    findings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict, repr=False)
    real: pd.DataFrame | None = field(default=None, repr=False)
    synthetic: pd.DataFrame | None = field(default=None, repr=False)
    holdout: pd.DataFrame | None = field(default=None, repr=False)

    def __iter__(self) -> Iterator:
        yield self.table
        yield self.summary

    @property
    def epsilon(self) -> float | None:
        eps = (self.privacy or {}).get("epsilon")
        return None if eps is None else float(eps)


def _timed(timings: dict, key: str, func, *args, **kwargs):
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
    return out


def _metrics(real, synth, holdout, md, target, *, timings, random_state, detection_model,
             utility_model, max_rows, with_privacy=True, with_utility=True):
    """Rows (group, metric, column, value), summary dict and details for one synthetic table."""
    rows: list[tuple] = []
    summary: dict[str, float] = {}
    details: dict[str, Any] = {}
    shapes = _timed(timings, "column_shapes", column_shapes, real, synth, md)
    rows += [("fidelity", "column_shapes", r.column, r.score) for r in shapes.itertuples()]
    miss = _timed(timings, "missing_similarity", missing_similarity, real, synth, md)
    rows += [("fidelity", "missing_similarity", r.column, r.score) for r in miss.itertuples()]
    cov = _timed(timings, "coverage", coverage, real, synth, md)
    rows += [("fidelity", r.metric, r.column, r.score) for r in cov.itertuples()]
    pairs = _timed(timings, "column_pair_trends", column_pair_trends, real, synth, md)
    rows += [("fidelity", "column_pair_trends", f"{r.column_1} | {r.column_2}", r.score)
             for r in pairs.itertuples()]
    det = _timed(timings, "detection", detection, real, synth, md, model=detection_model,
                 max_rows=max_rows, random_state=random_state)
    summary["column_shapes"] = float(shapes["score"].mean())
    summary["missing_similarity"] = float(miss["score"].mean())
    summary["coverage"] = float(cov["score"].mean())
    summary["column_pair_trends"] = pair_trends_score(pairs)
    summary["relationships"] = relationship_score(pairs)
    summary["fidelity"] = float(np.nanmean([summary["column_shapes"], summary["column_pair_trends"]]))
    summary["detection"], summary["detection_auc"] = det["score"], det["auc"]
    details.update(column_shapes=shapes, missing=miss, coverage=cov, pairs=pairs)
    parts = [summary["column_shapes"], summary["relationships"], summary["detection"]]
    if target is not None and with_utility:
        ut = _timed(timings, "utility", tstr, real, synth, target, holdout, md, model=utility_model,
                    random_state=random_state)
        summary["utility"] = ut["score"]
        summary["utility_real"], summary["utility_synthetic"] = ut["real"], ut["synthetic"]
        details["utility"] = ut
        parts.append(ut["score"])
    summary["quality"] = float(np.nanmean(parts))
    if with_privacy:
        d = _timed(timings, "dcr", dcr, real, synth, holdout, md, max_rows=max_rows,
                   random_state=random_state)
        summary["dcr_median"] = d["median_train"]
        if holdout is not None:
            summary["dcr_share"], summary["privacy"] = d["share"], d["score"]
            mia = _timed(timings, "membership_inference", membership_inference, real, synth, holdout,
                         md, max_rows=max_rows, random_state=random_state)
            summary["membership_inference"] = mia["score"]
            summary["membership_inference_auc"] = mia["auc"]
        summary["exact_copy_rate"] = _timed(timings, "exact_copy_rate", exact_copy_rate, real, synth, md)
        summary["nndr"] = _timed(timings, "nndr", nndr, real, synth, md, max_rows=max_rows,
                                 random_state=random_state)["mean"]
        details["dcr"] = d
    for key, value in summary.items():
        rows.append((METRIC_INFO[key][0], key, "", value))
    return rows, summary, details


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["group", "metric", "column", "value"])


def _findings(summary: dict, baseline: dict | None, holdout: dict | None) -> list[str]:
    out = []
    if baseline:
        if summary["relationships"] < 0.1 or \
                summary["column_pair_trends"] <= baseline["column_pair_trends"] + 0.005:
            out.append("Relationships between columns are no better than for independent columns "
                       f"(relationships {summary['relationships']:.2f}; pair trends "
                       f"{summary['column_pair_trends']:.3f} vs {baseline['column_pair_trends']:.3f} "
                       "for the independent baseline): high column-shape scores alone say nothing "
                       "about joint structure.")
        if summary["detection"] <= baseline["detection"] + 0.02:
            out.append("A classifier separates real and synthetic rows as easily as it separates "
                       "real rows from independent columns (detection "
                       f"{summary['detection']:.2f} vs baseline {baseline['detection']:.2f}).")
        if "utility" in summary and "utility" in baseline and summary["utility"] <= baseline["utility"] + 0.02:
            out.append("Models trained on the synthetic data predict the target no better than "
                       "models trained on independent columns.")
    if summary.get("exact_copy_rate", 0.0) > max(0.01, 2 * (holdout or {}).get("exact_copy_rate", 0.0)):
        out.append(f"{summary['exact_copy_rate']:.1%} of synthetic rows are exact copies of training "
                   "rows, more than real unseen rows are.")
    if "privacy" in summary and summary["privacy"] < 0.8 and summary["dcr_share"] > 0.5:
        out.append(f"Synthetic rows are closer to training rows than to unseen rows (DCR share "
                   f"{summary['dcr_share']:.2f}): a sign of memorisation.")
    if "membership_inference_auc" in summary and summary["membership_inference_auc"] > 0.6:
        out.append(f"A membership-inference attack reaches AUC {summary['membership_inference_auc']:.2f} "
                   "(0.5 is chance).")
    return out


def evaluate(estimator_or_synthetic: Any, real: pd.DataFrame, holdout: pd.DataFrame | None = None,
             metadata: Any = None, target: str | None = None, *, privacy: Mapping | None = None,
             n_samples: int | None = None, baseline: bool = True, name: str | None = None,
             detection_model: Any = None, utility_model: Any = None, max_rows: int | None = 10_000,
             random_state: int = 0) -> EvaluationResult:
    """Evaluate synthetic data for fidelity, utility and privacy, next to baselines.

    Parameters
    ----------
    estimator_or_synthetic : fitted synthesizer or DataFrame
        Anything with ``sample(n_samples, *, random_state=None) -> DataFrame``, or the synthetic
        table itself.
    real : DataFrame
        The real rows the synthesizer was trained on.
    holdout : DataFrame, optional
        Real rows it never saw (same columns).  Needed for the DCR share and the
        membership-inference attack, used as the test set for utility, and evaluated as a
        "perfect synthesizer" reference (the ``holdout`` column).
    metadata : Metadata, YAML path or dict, optional
        Inferred from ``real`` when absent (a fitted estimator's ``metadata_`` is used first).
    target : str, optional
        Column for the utility (TSTR) metric.
    privacy : dict, optional
        Privacy report to show (``epsilon``, ``delta``, ``accountant``, ``spends``...).  Default:
        ``estimator.privacy_report()`` when the estimator has it, else unknown.
    n_samples : int, optional
        Rows to sample from an estimator (default ``len(real)``).
    baseline : bool, default True
        Also fit a non-private :class:`~nhssynth.synthesizers.MarginalSynthesizer` (independent
        columns) on ``real`` and evaluate it: the ``baseline`` column.
    name : str, optional
        Label of this result in reports (default: the estimator's class name).
    detection_model, utility_model : sklearn estimators, optional
        Classifier for detection, model for TSTR (defaults: histogram gradient boosting).
    max_rows : int or None, default 10000
        Cap on rows used by detection and the distance metrics (random subsample).
    random_state : int, default 0
        Seed for sampling, subsampling and models.

    Returns
    -------
    EvaluationResult
        Unpacks as ``(table, summary)``; see :class:`EvaluationResult`.
    """
    timings: dict[str, float] = {}
    est = None
    if isinstance(estimator_or_synthetic, pd.DataFrame):
        synthetic = estimator_or_synthetic
    elif hasattr(estimator_or_synthetic, "sample"):
        est = estimator_or_synthetic
        n = len(real) if n_samples is None else int(n_samples)
        synthetic = _timed(timings, "sample", est.sample, n, random_state=random_state)
    else:
        raise TypeError("evaluate needs a fitted synthesizer (with a sample method) or a DataFrame "
                        f"of synthetic rows, got {type(estimator_or_synthetic).__name__}.")
    if metadata is None and est is not None and isinstance(getattr(est, "metadata_", None), Metadata):
        metadata = est.metadata_
    md = resolve_metadata(metadata, real)
    check_frames(md, real=real, synthetic=synthetic, holdout=holdout)
    if target is not None and target not in md.names:
        raise ValueError(f"target {target!r} is not a column of the data; columns: {md.names}.")
    if privacy is None and est is not None and hasattr(est, "privacy_report"):
        privacy = est.privacy_report()
    if hasattr(privacy, "to_dict"):  # a PrivacyReport: stored as plain data with the result
        privacy = privacy.to_dict()
    kw = dict(random_state=random_state, detection_model=detection_model,
              utility_model=utility_model, max_rows=max_rows)
    rows, summary, details = _metrics(real, synthetic, holdout, md, target, timings=timings, **kw)
    table = _frame(rows)
    base_summary = hold_summary = None
    if baseline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # independent columns as they come: the declared constraints are not enforced
            # on the baseline (its violation shares show what they would be without them)
            marg = MarginalSynthesizer(metadata=Metadata(md.columns), random_state=random_state
                                       ).fit(real)
        fake = marg.sample(len(synthetic), random_state=random_state + 1)
        b_rows, base_summary, b_details = _metrics(real, fake, holdout, md, target,
                                                   timings={}, **kw)
        details["baseline"] = b_details
        table = table.merge(_frame(b_rows).rename(columns={"value": "baseline"}),
                            on=["group", "metric", "column"], how="left")
    else:
        table["baseline"] = np.nan
    if holdout is not None:
        h_rows, hold_summary, h_details = _metrics(real, holdout, None, md, target, timings={},
                                                   with_utility=False, **kw)
        details["holdout"] = h_details
        table = table.merge(_frame(h_rows).rename(columns={"value": "holdout"}),
                            on=["group", "metric", "column"], how="left")
    else:
        table["holdout"] = np.nan
    if md.constraints:
        frames = {"value": synthetic, "baseline": fake if baseline else None, "holdout": holdout}
        shares = {k: _violation_shares(md, f, real) for k, f in frames.items() if f is not None}
        details["constraints"] = {"real": _violation_shares(md, real, real), **shares}
        extra = pd.DataFrame([("constraints", "violation_share", rule,
                               *(shares.get(k, {}).get(rule, np.nan)
                                 for k in ("value", "baseline", "holdout")))
                              for rule in details["constraints"]["real"] if rule != "any"],
                             columns=["group", "metric", "column", "value", "baseline", "holdout"])
        any_rows = [("constraints", "constraint_violations", "",
                     *(shares.get(k, {}).get("any", np.nan) for k in ("value", "baseline",
                                                                       "holdout")))]
        extra = pd.concat([extra, pd.DataFrame(any_rows, columns=extra.columns)],
                          ignore_index=True)
        table = pd.concat([table, extra], ignore_index=True)
        summary["constraint_violations"] = shares["value"]["any"]
        if base_summary is not None:
            base_summary["constraint_violations"] = shares["baseline"]["any"]
        if hold_summary is not None:
            hold_summary["constraint_violations"] = shares["holdout"]["any"]
    table["ideal"] = [METRIC_INFO.get(m, ("", 1.0, ""))[1] if c == "" or m in METRIC_INFO else np.nan
                      for m, c in zip(table["metric"], table["column"])]
    if "dcr_share" in summary:
        table.loc[table["metric"] == "dcr_share", "ideal"] = details["dcr"]["ideal"]
    table = table[["group", "metric", "column", "value", "baseline", "holdout", "ideal"]]
    label = name or (type(est).__name__ if est is not None else "synthetic")
    return EvaluationResult(table=table, summary=summary, baseline_summary=base_summary,
                            holdout_summary=hold_summary, privacy=dict(privacy) if privacy else None,
                            metadata=md, name=label, target=target,
                            findings=_findings(summary, base_summary, hold_summary),
                            timings=timings, details=details, real=real, synthetic=synthetic,
                            holdout=holdout)


def _violation_shares(md: Metadata, frame: pd.DataFrame, real: pd.DataFrame) -> dict[str, float]:
    """Per declared constraint (its description), the share of ``frame``'s rows breaking it,
    and ``"any"``: the share breaking at least one.  A ``fixed_combinations`` rule without an
    ``allowed`` list is checked against the combinations in ``real``."""
    columns = {c.name: c for c in md.columns}
    out, anybad = {}, np.zeros(len(frame), dtype=bool)
    for c in md.constraints:
        rule = c.with_reference(real) if isinstance(c, FixedCombinations) else c
        bad = np.asarray(rule.violations(frame, columns), dtype=bool)
        out[c.describe()] = float(bad.mean()) if len(frame) else 0.0
        anybad |= bad
    out["any"] = float(anybad.mean()) if len(frame) else 0.0
    return out


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
