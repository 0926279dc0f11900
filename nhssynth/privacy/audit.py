"""Empirical privacy audit: a canary membership-inference attack with one training run.

Procedure (after Steinke, Nasr & Jagielski, "Privacy auditing with one (1) training run",
NeurIPS 2023):

1. Build ``n_canaries`` canary rows (independent per-column draws from the data's own values,
   so each canary is a plausible but unusual record).  With ``canary_column`` the table gets
   one more categorical column, declared public with the categories ``"real"`` (every real
   row) and one ``"canary-NNNN"`` per canary: each canary then carries a value no other row
   has, the input-space analogue of Steinke et al.'s unique canaries, which a non-private
   model memorises quickly (its reconstruction of a never-seen category is poor).
2. Include each canary in the training table independently with probability 1/2; fit.
3. Score every canary with the model (``score_samples``: its evidence lower bound, or a
   ``score`` callable; members should score higher) and guess "member" for the ``k`` highest scores and "non-member" for
   the ``k`` lowest, abstaining on the rest.
4. If the fit is epsilon-DP, each guess is right with probability at most
   ``p = e^eps / (1 + e^eps)``, so the number of correct guesses is dominated by
   ``Binomial(2k, p)``.  The audit reports the largest epsilon that the observed count rejects
   at the chosen confidence: an *empirical lower bound* on the true epsilon.

Validity: the inclusion bits are independent fair coins drawn after the real table is
fixed, and the guesses are any function of the fitted model, which is what the theorem
(Steinke et al., Thm. 3.1 with delta = 0) needs; an added canary column does not change this,
since the claimed (epsilon, delta) holds for every table, this one included.

A lower bound far below the claimed epsilon does not prove the claim (the attack may be weak);
a lower bound *above* it proves the claim false (up to the confidence level, and up to the
small delta this pure-DP analysis ignores).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import brentq
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from ..metadata import ColumnMetadata, Metadata, as_metadata

__all__ = ["AuditResult", "audit", "canary_tags", "epsilon_lower_bound", "make_canaries"]


@dataclass
class AuditResult:
    """Outcome of :func:`audit`.

    Attributes
    ----------
    epsilon_lower_bound : float
        Largest epsilon rejected at ``confidence`` (0 when nothing is rejected).
    epsilon_estimate : float
        Point estimate ``log(correct / wrong)`` of the attack's advantage (for orientation only).
    confidence_interval : tuple of float
        Two-sided Clopper-Pearson interval of the guess accuracy, mapped to epsilon.
    n_guesses, n_correct, n_canaries, n_included : int
    auc : float
        ROC AUC of the canary scores for membership (0.5 = no signal).
    claimed_epsilon : float or None
    """

    epsilon_lower_bound: float
    epsilon_estimate: float
    confidence_interval: tuple[float, float]
    n_guesses: int
    n_correct: int
    n_canaries: int
    n_included: int
    auc: float
    confidence: float
    claimed_epsilon: float | None

    @property
    def violates_claim(self) -> bool:
        return self.claimed_epsilon is not None and self.epsilon_lower_bound > self.claimed_epsilon


def _acc_to_eps(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(max(0.0, np.log(p / (1 - p))))


def epsilon_lower_bound(n_guesses: int, n_correct: int, confidence: float = 0.95) -> float:
    """Largest epsilon such that ``P[Binomial(n, e^eps/(1+e^eps)) >= n_correct] < 1 - confidence``."""
    if n_guesses == 0 or n_correct <= n_guesses / 2:
        return 0.0
    alpha = 1.0 - confidence

    def tail(eps: float) -> float:
        p = 1.0 / (1.0 + np.exp(-eps))
        return stats.binom.sf(n_correct - 1, n_guesses, p) - alpha

    if tail(0.0) >= 0:
        return 0.0
    hi = 1.0
    while tail(hi) < 0:
        hi *= 2
        if hi > 100:
            return 100.0
    return float(brentq(tail, 0.0, hi, xtol=1e-6))


def make_canaries(X: pd.DataFrame, n_canaries: int, rng: np.random.Generator,
                  canary_column: str | None = None) -> pd.DataFrame:
    """Canary rows: each column drawn independently from that column's values in ``X``.

    With ``canary_column``, a further column holding ``"canary-0000"``, ``"canary-0001"``...
    (one unique value per canary) is appended.
    """
    cols = {c: X[c].iloc[rng.integers(0, len(X), n_canaries)].to_numpy() for c in X.columns}
    out = pd.DataFrame(cols)
    for c in X.columns:
        out[c] = out[c].astype(X[c].dtype)
    if canary_column is not None:
        out[canary_column] = pd.Series(canary_tags(n_canaries), dtype=object)
    return out


def canary_tags(n_canaries: int) -> list[str]:
    return [f"canary-{i:04d}" for i in range(n_canaries)]


def _with_canary_column(estimator, X: pd.DataFrame, column: str, n_canaries: int):
    """(estimator with the canary column declared in its metadata, X with "real" in it)."""

    if column in X.columns:
        raise ValueError(f"canary_column {column!r} is already a column of X.")
    params = estimator.get_params(deep=False)
    if "metadata" not in params:
        raise ValueError("canary_column needs an estimator with a `metadata` parameter.")
    md = as_metadata(params["metadata"], X).select(list(X.columns))
    tag = ColumnMetadata(column, "categorical", "object", categories=["real"] + canary_tags(n_canaries),
                         domain="declared")
    estimator = clone(estimator).set_params(metadata=Metadata(list(md) + [tag]))
    X = X.copy()
    X[column] = pd.Series(["real"] * len(X), index=X.index, dtype=object)
    return estimator, X


def audit(estimator, X: pd.DataFrame, *, n_canaries: int = 200, guess_fraction: float = 0.5,
          confidence: float = 0.95, random_state: int | None = 0,
          canary_column: str | None = None, score=None) -> AuditResult:
    """Audit ``estimator`` (unfitted; cloned) with a canary membership-inference attack.

    Parameters
    ----------
    estimator : estimator with ``fit`` and ``score_samples``
        E.g. :class:`~nhssynth.DPVAESynthesizer`.  Cloned; the original is untouched.
    X : DataFrame
        Training data the canaries are added to.
    n_canaries : int
        Number of canaries (about half are inserted).
    guess_fraction : float
        Fraction of canaries the attacker guesses on (half as members, half as non-members).
    confidence : float
        Confidence level of the lower bound.
    random_state : int or None
        Seeds canary construction and inclusion (the estimator keeps its own random_state).
    canary_column : str, optional
        Name of an extra categorical column giving each canary a unique, publicly declared
        value (see the module docstring).  Needs an estimator with a ``metadata`` parameter;
        the column is added to that metadata with ``domain: declared``.
    score : callable, optional
        ``score(model, canaries) -> array`` (higher = more likely a member); defaults to
        ``model.score_samples(canaries)``.
    """

    rng = np.random.default_rng(random_state)
    canaries = make_canaries(X, n_canaries, rng, canary_column)
    included = rng.uniform(size=n_canaries) < 0.5
    if canary_column is not None:
        estimator, X = _with_canary_column(estimator, X, canary_column, n_canaries)
    train = pd.concat([X, canaries[included]], ignore_index=True)
    model = clone(estimator).fit(train)
    raw = score(model, canaries) if score is not None else model.score_samples(canaries)
    scores = np.asarray(raw, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    k = max(1, int(guess_fraction * n_canaries) // 2)
    correct = int(included[order[:k]].sum() + (~included[order[-k:]]).sum())
    n_guesses = 2 * k
    lo_p, hi_p = stats.binomtest(correct, n_guesses).proportion_ci(confidence, method="exact")
    wrong = n_guesses - correct
    estimate = float(np.log((correct + 0.5) / (wrong + 0.5)))
    auc = float(roc_auc_score(included, scores)) if 0 < included.sum() < n_canaries else 0.5
    claimed = getattr(model, "epsilon_", None)
    claimed = None if claimed is None or not np.isfinite(claimed) else float(claimed)
    return AuditResult(epsilon_lower_bound=epsilon_lower_bound(n_guesses, correct, confidence),
                       epsilon_estimate=max(0.0, estimate),
                       confidence_interval=(_acc_to_eps(lo_p), _acc_to_eps(hi_p)),
                       n_guesses=n_guesses, n_correct=correct, n_canaries=n_canaries,
                       n_included=int(included.sum()), auc=auc, confidence=confidence,
                       claimed_epsilon=claimed)
