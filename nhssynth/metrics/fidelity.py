"""Fidelity: how close the synthetic table is to the real one.

Every score is in [0, 1] and 1 is ideal (a synthetic table equal in distribution to the real
one).  See ``docs/evaluation.md`` for the definitions and their caveats.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state

from ._encoding import (TableEmbedding, category_codes, check_frames, is_numeric_kind,
                        limit_threads, model_columns, numeric_values, resolve_metadata)

__all__ = ["ks_complement", "tv_complement", "column_shapes", "missing_similarity",
           "column_pair_trends", "relationship_score", "coverage", "detection"]

_MAX_PAIR_CATEGORIES = 50  # contingency tables lump rarer categories into "other"


# --------------------------------------------------------------------------------------------
# one column
# --------------------------------------------------------------------------------------------
def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """``1 - KS statistic`` between two samples of numbers (missing values ignored).

    1 when the empirical distribution functions are equal, 0 when they do not overlap.
    """
    a = np.sort(np.asarray(real, dtype=np.float64))
    b = np.sort(np.asarray(synthetic, dtype=np.float64))
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return float(a.size == b.size)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(1.0 - np.max(np.abs(cdf_a - cdf_b)))


def _tv(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    na, nb = counts_a.sum(), counts_b.sum()
    if na == 0 or nb == 0:
        return float(na != nb)
    return float(0.5 * np.abs(counts_a / na - counts_b / nb).sum())


def tv_complement(real_codes: np.ndarray, synthetic_codes: np.ndarray, n_categories: int) -> float:
    """``1 - total variation distance`` between the category frequencies of two code arrays.

    Codes ``>= n_categories`` (missing values) are ignored.
    """
    ca = np.bincount(real_codes[real_codes < n_categories], minlength=n_categories)
    cb = np.bincount(synthetic_codes[synthetic_codes < n_categories], minlength=n_categories)
    return 1.0 - _tv(ca, cb)


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None) -> pd.DataFrame:
    """Per-column marginal similarity.

    KS complement for continuous, integer and datetime columns; total-variation complement for
    categorical and boolean columns.  Missing values are left out here (see
    :func:`missing_similarity`).

    Returns
    -------
    DataFrame
        Columns ``column``, ``kind``, ``metric``, ``score`` (in [0, 1], 1 is ideal).
    """
    metadata = resolve_metadata(metadata, real)
    check_frames(metadata, real=real, synthetic=synthetic)
    rows = []
    for col in model_columns(metadata):
        if is_numeric_kind(col):
            score = ks_complement(numeric_values(real[col.name], col),
                                  numeric_values(synthetic[col.name], col))
            metric = "ks_complement"
        else:
            (cr, cs), labels = category_codes(col, real[col.name], synthetic[col.name])
            score, metric = tv_complement(cr, cs, len(labels)), "tv_complement"
        rows.append({"column": col.name, "kind": col.kind, "metric": metric, "score": score})
    return pd.DataFrame(rows, columns=["column", "kind", "metric", "score"])


def missing_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None) -> pd.DataFrame:
    """Per-column ``1 - |missing rate(real) - missing rate(synthetic)|``.

    Returns
    -------
    DataFrame
        Columns ``column``, ``real_rate``, ``synthetic_rate``, ``score``.
    """
    metadata = resolve_metadata(metadata, real)
    check_frames(metadata, real=real, synthetic=synthetic)
    rows = []
    for col in model_columns(metadata):
        r = float(real[col.name].isna().mean())
        s = float(synthetic[col.name].isna().mean())
        rows.append({"column": col.name, "real_rate": r, "synthetic_rate": s,
                     "score": 1.0 - abs(r - s)})
    return pd.DataFrame(rows, columns=["column", "real_rate", "synthetic_rate", "score"])


# --------------------------------------------------------------------------------------------
# pairs of columns
# --------------------------------------------------------------------------------------------
def _discretise(metadata, real: pd.DataFrame, synthetic: pd.DataFrame, bins: int):
    """Codes (missing = last code) of every model column in both frames, binned on real."""
    out = {}
    for col in model_columns(metadata):
        if is_numeric_kind(col):
            vr = numeric_values(real[col.name], col)
            vs = numeric_values(synthetic[col.name], col)
            fin = vr[np.isfinite(vr)]
            if fin.size:
                inner = np.unique(np.quantile(fin, np.linspace(0, 1, bins + 1)[1:-1]))
            else:
                inner = np.array([])
            k = inner.size + 1
            cr = np.where(np.isnan(vr), k, np.searchsorted(inner, vr, side="right"))
            cs = np.where(np.isnan(vs), k, np.searchsorted(inner, vs, side="right"))
        else:
            (cr, cs), labels = category_codes(col, real[col.name], synthetic[col.name])
            k = len(labels)
            if k > _MAX_PAIR_CATEGORIES:  # keep the most frequent real categories, lump the rest
                freq = np.bincount(cr[cr < k], minlength=k)
                top = np.argsort(-freq, kind="stable")[:_MAX_PAIR_CATEGORIES - 1]
                remap = np.full(k + 1, _MAX_PAIR_CATEGORIES - 1)
                remap[top] = np.arange(top.size)
                remap[k] = _MAX_PAIR_CATEGORIES  # missing
                cr, cs, k = remap[cr], remap[cs], _MAX_PAIR_CATEGORIES
        out[col.name] = (cr.astype(np.int64), cs.astype(np.int64), k + 1)
    return out


_RELATED_CORRELATION = 0.5  # |r| above which two numeric columns count as related
_RELATED_ASSOCIATION = 0.3  # Cramér's V above which any other pair counts as related


def column_pair_trends(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None, *,
                       bins: int = 10) -> pd.DataFrame:
    """Similarity of the relationship of every pair of columns.

    * two numeric (continuous/integer/datetime) columns: correlation similarity
      ``1 - |r_real - r_synthetic| / 2`` with Pearson's r on the rows where both are present;
    * any other pair: contingency similarity ``1 - TVD`` between the two joint frequency
      tables, numeric columns cut into ``bins`` quantile bins of the real data and missing values
      counted as their own category (categories beyond the 49 most frequent real ones are
      lumped together).

    Besides ``score``, each row has ``independent``: the score that a synthetic table with
    *independent* columns and exact marginals would get (``1 - |r_real| / 2``, or ``1 - TVD``
    between the real joint table and the product of its marginals).  A score no better than
    ``independent`` means the relationship was not learnt.  ``strength`` is how related the
    pair is in the real data (``|r_real|``, or Cramér's V of the real joint table) and
    ``related`` whether that is strong enough to matter (``|r| > 0.5`` or ``V > 0.3``):
    :func:`pair_trends_score` averages over those pairs only, so most pairs being unrelated
    cannot hide a strong relationship that was lost.

    Returns
    -------
    DataFrame
        Columns ``column_1``, ``column_2``, ``metric``, ``real``, ``synthetic`` (the correlations
        for correlation pairs, else NaN), ``score``, ``independent``, ``strength``, ``related``.
    """
    metadata = resolve_metadata(metadata, real)
    check_frames(metadata, real=real, synthetic=synthetic)
    cols = model_columns(metadata)
    numeric = [c for c in cols if is_numeric_kind(c)]
    corr_r = corr_s = None
    if len(numeric) >= 2:
        with np.errstate(all="ignore"):
            fr = pd.DataFrame({c.name: numeric_values(real[c.name], c) for c in numeric})
            fs = pd.DataFrame({c.name: numeric_values(synthetic[c.name], c) for c in numeric})
            corr_r, corr_s = fr.corr(), fs.corr()
    codes = _discretise(metadata, real, synthetic, bins)
    rows = []
    for i, a in enumerate(cols):
        ca_r, ca_s, ka = codes[a.name]
        pa = np.bincount(ca_r, minlength=ka) / len(ca_r)
        for b in cols[i + 1:]:
            r = s = np.nan
            if corr_r is not None and is_numeric_kind(a) and is_numeric_kind(b):
                r, s = corr_r.at[a.name, b.name], corr_s.at[a.name, b.name]
            if np.isfinite(r) and np.isfinite(s):
                rows.append((a.name, b.name, "correlation_similarity", r, s,
                             1.0 - abs(r - s) / 2.0, 1.0 - abs(r) / 2.0, abs(r),
                             abs(r) > _RELATED_CORRELATION))
                continue
            cb_r, cb_s, kb = codes[b.name]
            jr = np.bincount(ca_r * kb + cb_r, minlength=ka * kb)
            js = np.bincount(ca_s * kb + cb_s, minlength=ka * kb)
            pb = np.bincount(cb_r, minlength=kb) / len(cb_r)
            indep = 1.0 - 0.5 * np.abs(jr / jr.sum() - np.outer(pa, pb).ravel()).sum()
            v = _cramers_v(jr.reshape(ka, kb))
            rows.append((a.name, b.name, "contingency_similarity", np.nan, np.nan,
                         1.0 - _tv(jr, js), float(indep), v, v > _RELATED_ASSOCIATION))
    return pd.DataFrame(rows, columns=["column_1", "column_2", "metric", "real", "synthetic",
                                       "score", "independent", "strength", "related"])


def _cramers_v(table: np.ndarray) -> float:
    """Cramér's V of a joint count table (rows and columns without counts left out)."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0].astype(np.float64)
    n, k = table.sum(), min(table.shape) - 1
    if n <= 0 or k < 1:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * k)))


def pair_trends_score(pairs: pd.DataFrame) -> float:
    """The pair-trends headline: the mean ``score`` over the pairs related in the real data
    (``related``); with none related, the mean weighted by ``strength`` (NaN without pairs)."""
    if len(pairs) == 0:
        return float("nan")
    related = pairs["related"].astype(bool)
    if related.any():
        return float(pairs.loc[related, "score"].mean())
    w = pairs["strength"].to_numpy(dtype=np.float64)
    return float(np.average(pairs["score"], weights=w)) if w.sum() > 0 else float(pairs["score"].mean())


def relationship_score(pairs: pd.DataFrame) -> float:
    """Share of the real table's dependence between columns that the synthetic table keeps.

    ``sum(score - independent) / sum(1 - independent)`` over the rows of
    :func:`column_pair_trends`, clipped to [0, 1]: 0 for a synthesizer that treats columns as
    independent (however good its marginals), 1 for one that reproduces every pair exactly.
    """
    if len(pairs) == 0:
        return float("nan")
    room = float((1.0 - pairs["independent"]).sum())
    gain = float((pairs["score"] - pairs["independent"]).sum())
    if room < 1e-9:
        return float(pairs["score"].mean())
    return float(np.clip(gain / room, 0.0, 1.0))


# --------------------------------------------------------------------------------------------
# coverage
# --------------------------------------------------------------------------------------------
def coverage(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None) -> pd.DataFrame:
    """Range coverage (numeric, datetime) and category coverage (categorical, boolean).

    * range coverage: share of the real ``[min, max]`` that the synthetic ``[min, max]``
      covers, ``1 - (max(0, min_s - min_r) + max(0, max_r - max_s)) / (max_r - min_r)``,
      clipped at 0;
    * category coverage: share of the categories present in the real data that appear in the
      synthetic data.

    Returns
    -------
    DataFrame
        Columns ``column``, ``metric``, ``score``.
    """
    metadata = resolve_metadata(metadata, real)
    check_frames(metadata, real=real, synthetic=synthetic)
    rows = []
    for col in model_columns(metadata):
        if is_numeric_kind(col):
            vr = numeric_values(real[col.name], col)
            vs = numeric_values(synthetic[col.name], col)
            vr, vs = vr[np.isfinite(vr)], vs[np.isfinite(vs)]
            if vr.size == 0:
                score = 1.0
            elif vs.size == 0:
                score = 0.0
            else:
                lo, hi = vr.min(), vr.max()
                if hi == lo:
                    score = float(np.any(vs == lo))
                else:
                    miss = max(0.0, vs.min() - lo) + max(0.0, hi - vs.max())
                    score = float(max(0.0, 1.0 - miss / (hi - lo)))
            rows.append((col.name, "range_coverage", score))
        else:
            (cr, cs), labels = category_codes(col, real[col.name], synthetic[col.name])
            k = len(labels)
            present = np.unique(cr[cr < k])
            score = float(np.isin(present, cs).mean()) if present.size else 1.0
            rows.append((col.name, "category_coverage", score))
    return pd.DataFrame(rows, columns=["column", "metric", "score"])


# --------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------
def detection(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None, *,
              model: Any = None, cv: int = 3, max_rows: int | None = 10_000,
              random_state: Any = 0) -> dict:
    """How well a classifier tells real rows from synthetic rows.

    Equal numbers of real and synthetic rows (at most ``max_rows`` of each) are embedded
    (one-hot categories, min-max scaled numbers, missing indicators; fitted on real rows) and a
    classifier is cross-validated on them; its out-of-fold ROC AUC is turned into a score
    ``1 - 2 |AUC - 0.5|`` (1: indistinguishable; 0: perfectly separable).

    Parameters
    ----------
    real, synthetic : DataFrame
    metadata : Metadata, optional
    model : sklearn classifier, optional
        Default ``HistGradientBoostingClassifier(max_iter=100)``, which sees interactions
        between columns (a linear model would only see the marginals).
    cv : int, default 3
        Number of stratified folds.
    max_rows : int or None, default 10000
        Cap on the rows taken from each table (a random subsample), for speed.
    random_state : int, RandomState or None, default 0

    Returns
    -------
    dict
        ``{"auc": float, "score": float, "n_rows": int}``.
    """
    metadata = resolve_metadata(metadata, real)
    check_frames(metadata, real=real, synthetic=synthetic)
    rng = check_random_state(random_state)
    n = min(len(real), len(synthetic))
    if max_rows is not None:
        n = min(n, int(max_rows))
    if n < cv:
        raise ValueError(f"detection needs at least cv={cv} rows in each table, got {n}.")
    ir = rng.choice(len(real), n, replace=False)
    is_ = rng.choice(len(synthetic), n, replace=False)
    emb = TableEmbedding(metadata, max_categories=50).fit(real)
    X = np.vstack([emb.transform(real.iloc[ir]), emb.transform(synthetic.iloc[is_])])
    y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]
    if model is None:
        model = HistGradientBoostingClassifier(max_iter=100, early_stopping=False,
                                               random_state=rng.randint(2**31 - 1))
    proba = np.empty(2 * n)
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=rng.randint(2**31 - 1))
    with limit_threads():
        for tr, te in folds.split(X, y):
            est = clone(model).fit(X[tr], y[tr])
            proba[te] = _positive_score(est, X[te])
    auc = float(roc_auc_score(y, proba))
    return {"auc": auc, "score": float(max(0.0, 1.0 - 2.0 * abs(auc - 0.5))), "n_rows": int(n)}


def _positive_score(est, X) -> np.ndarray:
    if hasattr(est, "predict_proba"):
        p = est.predict_proba(X)
        return p[:, list(est.classes_).index(1)]
    return est.decision_function(X)
