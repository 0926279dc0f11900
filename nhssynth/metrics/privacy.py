"""Privacy: does the synthetic table reveal the rows it was trained on?

These are *empirical* checks that complement (never replace) a differential-privacy guarantee:
they can show a leak, they cannot prove its absence.  All distances are Euclidean on the
embedding of :mod:`nhssynth.metrics._encoding` (one-hot categories scaled so that a different
category counts 1, numbers min-max scaled on the real data, missing indicators), computed with
scikit-learn's brute-force ``NearestNeighbors`` in float32.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state

from ._encoding import TableEmbedding, check_frames, limit_threads, resolve_metadata, row_keys

__all__ = ["nearest_distances", "dcr", "dcr_share", "nndr", "exact_copy_rate",
           "membership_inference", "share_score"]


def nearest_distances(query: np.ndarray, reference: np.ndarray, k: int = 1) -> np.ndarray:
    """Euclidean distances from each query row to its ``k`` nearest reference rows.

    Returns an array of shape ``(len(query), k)``, sorted along axis 1.
    """
    k = min(k, len(reference))
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean")
    nn.fit(np.ascontiguousarray(reference, dtype=np.float32))
    with limit_threads():
        dist, _ = nn.kneighbors(np.ascontiguousarray(query, dtype=np.float32))
    return dist


def _subsample(n: int, max_rows: int | None, rng) -> np.ndarray:
    if max_rows is None or n <= max_rows:
        return np.arange(n)
    return np.sort(rng.choice(n, int(max_rows), replace=False))


def _embed(train, others, metadata):
    metadata = resolve_metadata(metadata, train)
    emb = TableEmbedding(metadata).fit(train)
    return metadata, emb.transform(train), [None if o is None else emb.transform(o) for o in others]


def share_score(share: float, ideal: float = 0.5) -> float:
    """Map a DCR share to [0, 1], 1 at ``ideal`` and 0 at 0 or 1 (``1 - 2|share - 0.5|``
    when ``ideal`` is 0.5)."""
    if not np.isfinite(share):
        return float("nan")
    if share >= ideal:
        return float(max(0.0, 1.0 - (share - ideal) / (1.0 - ideal)))
    return float(max(0.0, 1.0 - (ideal - share) / ideal))


def dcr(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame | None = None,
        metadata: Any = None, *, max_rows: int | None = 10_000, random_state: Any = 0) -> dict:
    """Distance to closest record, and the DCR share when a holdout is given.

    For each synthetic row (at most ``max_rows`` of them, a random subsample) the distance to
    the closest training row and, with ``holdout``, to the closest holdout row (real rows the
    synthesizer never saw).  The **DCR share** is the fraction of synthetic rows closer to a
    training row than to any holdout row (ties count one half).  For a generator that never
    looked at individual rows it is ``n_train / (n_train + n_holdout)`` (0.5 for equal sizes,
    the usual setting); 1 means every synthetic row sits on a training row.

    Returns
    -------
    dict
        ``dcr_train`` and ``dcr_holdout`` (arrays, one per synthetic row evaluated), ``share``,
        ``ideal``, ``score`` (:func:`share_score`, 1 is ideal), ``median_train``,
        ``median_holdout``, and ``holdout_to_train`` (distances from holdout rows to their
        closest training row: what fresh real rows look like).
    """
    metadata = resolve_metadata(metadata, train)
    check_frames(metadata, train=train, synthetic=synthetic, holdout=holdout)
    rng = check_random_state(random_state)
    _, Xt, (Xs, Xh) = _embed(train, [synthetic, holdout], metadata)
    Xs = Xs[_subsample(len(Xs), max_rows, rng)]
    d_train = nearest_distances(Xs, Xt)[:, 0]
    out: dict[str, Any] = {"dcr_train": d_train, "median_train": float(np.median(d_train))}
    if Xh is None:
        out.update(dcr_holdout=None, share=float("nan"), ideal=0.5, score=float("nan"),
                   median_holdout=float("nan"), holdout_to_train=None)
        return out
    d_hold = nearest_distances(Xs, Xh)[:, 0]
    share = float(np.mean((d_train < d_hold) + 0.5 * (d_train == d_hold)))
    ideal = len(Xt) / (len(Xt) + len(Xh))
    h_rows = Xh[_subsample(len(Xh), max_rows, rng)]
    out.update(dcr_holdout=d_hold, share=share, ideal=float(ideal), score=share_score(share, ideal),
               median_holdout=float(np.median(d_hold)),
               holdout_to_train=nearest_distances(h_rows, Xt)[:, 0])
    return out


def dcr_share(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
              metadata: Any = None, **kwargs: Any) -> float:
    """The DCR share of :func:`dcr` (ideal 0.5 for equal-sized train and holdout)."""
    return dcr(train, synthetic, holdout, metadata, **kwargs)["share"]


def nndr(train: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None, *,
         max_rows: int | None = 10_000, random_state: Any = 0) -> dict:
    """Nearest-neighbour distance ratio of synthetic rows to the training rows.

    For each synthetic row, ``d1 / d2``: distance to its closest training row over the distance
    to the second closest (``1`` when both are 0).  Close to 0: the row sits on one training
    record and away from the others (an outlier copied); close to 1: it is in a dense region
    where no single record stands out.  In [0, 1], higher is more private; compare it with the
    ratio real holdout rows get (the ``holdout`` baseline of :func:`nhssynth.metrics.evaluate`).

    Returns
    -------
    dict
        ``{"ratios": array, "mean": float}``.
    """
    metadata = resolve_metadata(metadata, train)
    check_frames(metadata, train=train, synthetic=synthetic)
    rng = check_random_state(random_state)
    _, Xt, (Xs,) = _embed(train, [synthetic], metadata)
    Xs = Xs[_subsample(len(Xs), max_rows, rng)]
    if len(Xt) < 2:
        raise ValueError("nndr needs at least two training rows.")
    d = nearest_distances(Xs, Xt, k=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(d[:, 1] > 0, d[:, 0] / d[:, 1], 1.0)
    return {"ratios": ratio, "mean": float(ratio.mean())}


def exact_copy_rate(train: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None) -> float:
    """Fraction of synthetic rows equal to some training row (``id`` columns ignored).

    0 is ideal; note that real data has duplicates of its own, so compare with the rate of real
    holdout rows (the ``holdout`` baseline of :func:`nhssynth.metrics.evaluate`).
    """
    metadata = resolve_metadata(metadata, train)
    check_frames(metadata, train=train, synthetic=synthetic)
    _, Xt, (Xs,) = _embed(train, [synthetic], metadata)
    return float(np.isin(row_keys(Xs), row_keys(Xt)).mean())


def membership_inference(train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
                         metadata: Any = None, *, max_rows: int | None = 10_000,
                         random_state: Any = 0) -> dict:
    """Distance-based membership-inference attack.

    An attacker holding the synthetic table and candidate records guesses that a record was in
    the training set when a synthetic row lies close to it.  Members are training rows,
    non-members holdout rows (equal numbers, at most ``max_rows`` each); the attack's ROC AUC
    is 0.5 when it does no better than chance.  ``score = 1 - 2 |AUC - 0.5|`` (1 is ideal).

    Returns
    -------
    dict
        ``{"auc": float, "score": float, "n_rows": int}``.
    """
    metadata = resolve_metadata(metadata, train)
    check_frames(metadata, train=train, synthetic=synthetic, holdout=holdout)
    rng = check_random_state(random_state)
    _, Xt, (Xs, Xh) = _embed(train, [synthetic, holdout], metadata)
    n = min(len(Xt), len(Xh)) if max_rows is None else min(len(Xt), len(Xh), int(max_rows))
    members = Xt[rng.choice(len(Xt), n, replace=False)]
    others = Xh[rng.choice(len(Xh), n, replace=False)]
    d = nearest_distances(np.vstack([members, others]), Xs)[:, 0]
    y = np.r_[np.ones(n), np.zeros(n)]
    auc = float(roc_auc_score(y, -d))
    return {"auc": auc, "score": float(max(0.0, 1.0 - 2.0 * abs(auc - 0.5))), "n_rows": int(n)}
