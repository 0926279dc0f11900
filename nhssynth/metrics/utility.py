"""Utility: is a model trained on the synthetic table as good as one trained on the real table?

Train-on-synthetic-test-on-real (TSTR) against train-on-real-test-on-real (TRTR), for one
target column; classification or regression is chosen from the column's metadata kind.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import balanced_accuracy_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from ..exceptions import MetadataError
from ._encoding import (TableEmbedding, category_codes, check_frames, limit_threads, numeric_values,
                        resolve_metadata)

__all__ = ["tstr", "task_of"]


def task_of(metadata, target: str) -> str:
    """``"classification"`` for categorical/boolean targets, ``"regression"`` for
    continuous/integer/datetime ones."""
    col = metadata[target]
    if col.kind in ("categorical", "boolean"):
        return "classification"
    if col.kind in ("continuous", "integer", "datetime"):
        return "regression"
    raise MetadataError(f"target column {target!r} has kind {col.kind!r}; choose a categorical, "
                        f"boolean or numeric column.")


def _score(task: str, n_classes: int, est, X, y) -> tuple[float, str, float]:
    """(score, metric name, chance level)."""
    if task == "regression":
        return float(r2_score(y, est.predict(X))), "r2", 0.0
    if n_classes == 2 and hasattr(est, "predict_proba") and len(est.classes_) == 2:
        p = est.predict_proba(X)[:, list(est.classes_).index(1)]
        if len(np.unique(y)) == 2:
            return float(roc_auc_score(y, p)), "roc_auc", 0.5
    chance = 1.0 / max(n_classes, 1)
    return float(balanced_accuracy_score(y, est.predict(X))), "balanced_accuracy", chance


def tstr(real: pd.DataFrame, synthetic: pd.DataFrame, target: str, holdout: pd.DataFrame | None = None,
         metadata: Any = None, *, model: Any = None, test_size: float = 0.3,
         max_rows: int | None = 50_000, random_state: Any = 0) -> dict:
    """Train on synthetic, test on real, compared with train on real, test on real.

    Parameters
    ----------
    real : DataFrame
        The real training data (what the synthesizer was fitted on).
    synthetic : DataFrame
    target : str
        Column to predict.  Categorical/boolean -> classification scored by ROC AUC (binary) or
        balanced accuracy (multiclass); numeric -> regression scored by R^2.
    holdout : DataFrame, optional
        Real rows the synthesizer never saw: the test set.  Without it, ``test_size`` of
        ``real`` is held out for testing (and the reference model trains on the rest; the
        synthesizer saw those test rows, which flatters the synthetic score a little).
    metadata : Metadata, optional
    model : sklearn estimator, optional
        Cloned for each fit.  Default ``HistGradientBoostingClassifier`` /
        ``HistGradientBoostingRegressor`` (``max_iter=100``).
    test_size : float, default 0.3
    max_rows : int or None, default 50000
        Cap on training rows used from each table (random subsample).
    random_state : int, RandomState or None, default 0

    Returns
    -------
    dict
        ``task``, ``metric``, ``real`` (TRTR score), ``synthetic`` (TSTR score), ``chance``, and
        ``score``: ``(TSTR - chance) / (TRTR - chance)`` clipped to [0, 1] -- the share of the
        real data's predictive power above chance that the synthetic data keeps (1 is ideal).
    """
    metadata = resolve_metadata(metadata, real)
    check_frames(metadata, real=real, synthetic=synthetic, holdout=holdout)
    task = task_of(metadata, target)
    rng = check_random_state(random_state)
    if holdout is None:
        train_real, test = train_test_split(real, test_size=test_size,
                                            random_state=rng.randint(2**31 - 1))
    else:
        train_real, test = real, holdout
    features = metadata.select([c for c in metadata.names if c != target])
    col = metadata[target]

    def xy(df):
        df = df[df[target].notna()]
        if max_rows is not None and len(df) > max_rows:
            df = df.iloc[np.sort(rng.choice(len(df), int(max_rows), replace=False))]
        return df, df

    train_real, _ = xy(train_real)
    synth, _ = xy(synthetic)
    test, _ = xy(test)
    if min(len(train_real), len(synth), len(test)) < 2:
        raise ValueError(f"too few rows with a value for target {target!r} to fit and test a model.")
    emb = TableEmbedding(features, max_categories=50).fit(train_real)
    if task == "classification":
        (y_r, y_s, y_t), labels = category_codes(col, train_real[target], synth[target], test[target])
        n_classes = len(np.unique(y_r))
        default = HistGradientBoostingClassifier(max_iter=100, random_state=rng.randint(2**31 - 1))
    else:
        y_r, y_s, y_t = (numeric_values(d[target], col) for d in (train_real, synth, test))
        n_classes = 0
        default = HistGradientBoostingRegressor(max_iter=100, random_state=rng.randint(2**31 - 1))
    model = default if model is None else model
    X_r, X_s, X_t = emb.transform(train_real), emb.transform(synth), emb.transform(test)
    if task == "classification" and n_classes == 2:  # codes -> 0/1 w.r.t. the real classes
        pos = np.unique(y_r)[1]
        y_r, y_s, y_t = (y_r == pos).astype(int), (y_s == pos).astype(int), (y_t == pos).astype(int)
    results = {}
    for name, X, y in (("real", X_r, y_r), ("synthetic", X_s, y_s)):
        if task == "classification" and len(np.unique(y)) < 2:
            results[name] = (float("nan"), None, None)  # a single class: nothing to learn
            continue
        with limit_threads():
            est = clone(model).fit(X, y)
            results[name] = _score(task, n_classes, est, X_t, y_t)
    metric = results["real"][1] or results["synthetic"][1] or ("r2" if task == "regression" else "roc_auc")
    chance = results["real"][2] if results["real"][2] is not None else (0.0 if task == "regression" else 0.5)
    s_real, s_syn = results["real"][0], results["synthetic"][0]
    if not np.isfinite(s_syn):
        score = 0.0
    elif not np.isfinite(s_real) or s_real - chance <= 1e-12:
        score = float(s_syn >= s_real) if np.isfinite(s_real) else float("nan")
    else:
        score = float(np.clip((s_syn - chance) / (s_real - chance), 0.0, 1.0))
    return {"task": task, "metric": metric, "target": target, "real": s_real, "synthetic": s_syn,
            "chance": chance, "score": score}
