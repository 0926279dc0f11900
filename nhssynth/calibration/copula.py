"""Rank correlations of the numeric columns under DP, and a generator's draws re-ordered to them.

A network trained with DP-SGD at epsilon around 1 learns little of how numeric columns move
together (on SUPPORT2 a 0.95 correlation came out at 0.2), and the two-way step measures a
few pairs on coarse bins.  This step measures every pair of numeric columns at once, finely,
for a small share of the budget, and imposes the result on the draws:

1. *Normal scores*: each value goes through its column's **released** histogram's CDF and the
   standard normal quantile, ``z = Phi^-1(F(x))`` (missing values score 0).  The CDF is a DP
   release, so a row's scores depend on that row alone.
2. *Release*: the sum over rows of ``u u^T`` with ``u = z / ||z||`` (the spatial sign of the
   row's scores).  ``||u u^T||_F = 1``, so the upper triangle with its diagonal has L2
   sensitivity at most 1 whatever the number of columns: one Gaussian mechanism of noise
   ``sigma`` releases all ``k (k + 1) / 2`` entries.  Each entry, normalised by the noisy
   diagonal, is shrunk towards 0 by its own noise level (so the noise does not invent
   relationships).  The spatial sign covariance of elliptical scores has the eigenvectors of
   their correlation but flattened eigenvalues (with 3 columns a 0.8 correlation reads 0.6);
   the eigenvalues are solved back (a fixed point over a fixed normal draw, as in Tyler's
   M-estimator) and the result scaled to a correlation matrix.
3. *Recolouring* (Iman & Conover's rank re-ordering, in its least-moving form): a draw's normal
   scores ``S`` (from its own ranks) are mapped to ``S E^-1/2 C^1/2`` (symmetric square roots;
   ``E`` the draw's correlation, ``C`` the target, so a draw that already has ``C`` is left as
   it is), and each column's values are re-ordered to the ranks of the result.  Every column
   keeps exactly its values (its marginal, missing rows in place); rows move only as far as the
   target needs.

Steps 1 and 3 are post-processing of DP releases and of draws: only step 2 costs budget.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtri

__all__ = ["CorrelationPlan", "RankCorrelation", "normal_scores", "spatial_sign_sum",
           "release_rank_correlation", "recolour"]

_Z_MAX = 3.0  # normal scores are clipped to +-3 (F in [0.00135, 0.99865])
_MIN_DIAGONAL_SNR = 5.0  # a column whose noisy diagonal is below 5 sigma takes no correlation
_MIN_EIGENVALUE = 1e-3


@dataclass(frozen=True)
class CorrelationPlan:
    """The columns whose rank correlations are released and the Gaussian noise of each entry
    (``None``: not private, exact)."""

    columns: tuple[str, ...]
    sigma: float | None

    @classmethod
    def from_rho(cls, rho: float, columns: Sequence[str]) -> "CorrelationPlan":
        """The noise of a ``rho``-zCDP Gaussian mechanism of L2 sensitivity 1."""
        return cls(tuple(columns), math.sqrt(1.0 / (2.0 * rho)))

    def informative(self, n_rows: int) -> bool:
        """Whether ``n_rows`` rows can rise above the noise: each column's diagonal entry sums
        about ``n_rows / k``, and :func:`release_rank_correlation` drops a column below 5 sigma."""
        return self.sigma is None or n_rows / max(len(self.columns), 1) > _MIN_DIAGONAL_SNR * self.sigma

    @property
    def history(self) -> tuple:
        """Accountant entry: one Gaussian mechanism, noise multiplier ``sigma`` (sensitivity 1)."""
        return () if self.sigma is None else ((self.sigma, 1.0, 1),)


@dataclass
class RankCorrelation:
    """A target correlation of the numeric columns' normal scores.

    Attributes
    ----------
    columns : list of str
    matrix : ndarray of shape (k, k)
        A correlation matrix (positive definite, unit diagonal).
    """

    columns: list
    matrix: np.ndarray


def normal_scores(values: np.ndarray, edges: np.ndarray, counts: np.ndarray,
                  step: float = 0.0) -> np.ndarray:
    """``Phi^-1(F(x))`` with ``F`` the CDF of the histogram ``counts`` over ``edges`` (linear
    inside a bin), clipped to +-3; NaN scores 0.

    ``step``: the spacing of the column's values (1 for integers): a value's probability is
    taken in the middle of ``[x, x + step)``, the mass it stands for, not at its lower end.
    """
    values = np.asarray(values, dtype=np.float64)
    w = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    cdf = np.concatenate([[0.0], np.cumsum(w)])
    z = np.zeros(values.shape)
    ok = np.isfinite(values)
    if cdf[-1] <= 0 or not ok.any():
        return z
    cdf /= cdf[-1]
    x = values[ok]
    F = np.interp(x, edges, cdf)
    if step > 0:
        F = 0.5 * (F + np.interp(x + step, edges, cdf))
    z[ok] = np.clip(ndtri(np.clip(F, 1e-12, 1.0 - 1e-12)), -_Z_MAX, _Z_MAX)
    return z


def _score_matrix(frame: pd.DataFrame, columns) -> np.ndarray:
    """Normal scores of ``frame``'s numeric ``columns`` (``ColumnBins`` with a released fine
    histogram), one column each."""
    Z = np.empty((len(frame), len(columns)))
    for j, b in enumerate(columns):
        values = pd.to_numeric(frame[b.name], errors="coerce").to_numpy(dtype=np.float64,
                                                                         na_value=np.nan)
        Z[:, j] = normal_scores(values, b.fine_edges, b.fine_counts,
                                step=1.0 if b.meta.kind == "integer" else 0.0)
    return Z


def spatial_sign_sum(frames: Iterable[pd.DataFrame], columns) -> np.ndarray:
    """``sum over rows of u u^T``, ``u`` the unit vector of a row's normal scores (0 for a row
    whose scores are all 0), over every frame of ``frames`` (one pass: a table on disk is read
    a batch at a time)."""
    k = len(columns)
    K = np.zeros((k, k))
    for frame in frames:
        Z = _score_matrix(frame, columns)
        norms = np.linalg.norm(Z, axis=1, keepdims=True)
        U = np.divide(Z, norms, out=np.zeros_like(Z), where=norms > 0)
        K += U.T @ U
    return K


def release_rank_correlation(K: np.ndarray, plan: CorrelationPlan,
                             rng) -> RankCorrelation | None:
    """The target correlation from the spatial-sign sum ``K``: Gaussian noise of
    ``plan.sigma`` on each entry of its upper triangle and diagonal (skipped when not
    private), normalised, each entry shrunk by its noise, projected onto the correlation
    matrices.  ``None`` when fewer than two columns carry signal."""
    K = np.array(K, dtype=np.float64)
    k = K.shape[0]
    sigma = plan.sigma
    if sigma is not None:
        noise = np.triu(rng.normal(0.0, sigma, size=(k, k)))
        K = K + noise + np.triu(noise, 1).T
    diag = np.diag(K).copy()
    floor = _MIN_DIAGONAL_SNR * (sigma or 0.0)
    keep = diag > max(floor, 1e-12)
    if keep.sum() < 2:
        return None
    scale = np.sqrt(np.where(keep, diag, 1.0))
    R = K / np.outer(scale, scale)
    if sigma is not None:  # shrink each entry by its own noise level (soft threshold)
        level = sigma / np.outer(scale, scale)
        R = np.sign(R) * np.maximum(np.abs(R) - level, 0.0)
    R[~keep, :] = 0.0
    R[:, ~keep] = 0.0
    np.fill_diagonal(R, 1.0)
    # back to the sign covariance's own scale (each column's share of the unit length)
    share = np.where(keep, diag, np.median(diag[keep]))
    share /= share.sum()
    S = R * np.sqrt(np.outer(share, share))
    C = _shape_from_sign_covariance(S)
    C[~keep, :] = 0.0
    C[:, ~keep] = 0.0
    np.fill_diagonal(C, 1.0)
    return RankCorrelation(list(plan.columns), _nearest_correlation(C))


def _shape_from_sign_covariance(S: np.ndarray, iterations: int = 100,
                                draws: int = 20_000) -> np.ndarray:
    """The correlation matrix whose normal vectors' spatial sign covariance is ``S`` (trace
    1): same eigenvectors, eigenvalues ``lam`` solving ``E[lam_i x_i^2 / sum_j lam_j x_j^2] =
    delta_i`` for ``x ~ N(0, I)`` (a fixed draw: post-processing, deterministic)."""
    k = S.shape[0]
    delta, V = np.linalg.eigh(0.5 * (S + S.T))
    delta = np.maximum(delta, _MIN_EIGENVALUE / k)
    delta /= delta.sum()
    x2 = np.random.default_rng(0).standard_normal((draws, k)) ** 2
    lam = delta * k
    for _ in range(iterations):
        weighted = x2 * lam
        implied = (weighted / weighted.sum(axis=1, keepdims=True)).mean(axis=0)
        step = delta / implied
        lam = lam * step
        lam *= k / lam.sum()
        if np.abs(step - 1.0).max() < 1e-6:
            break
    shape = (V * lam) @ V.T
    d = np.sqrt(np.diag(shape))
    return shape / np.outer(d, d)


def _nearest_correlation(C: np.ndarray) -> np.ndarray:
    C = 0.5 * (C + C.T)
    w, V = np.linalg.eigh(C)
    C = (V * np.maximum(w, _MIN_EIGENVALUE)) @ V.T
    d = np.sqrt(np.diag(C))
    C = C / np.outer(d, d)
    np.fill_diagonal(C, 1.0)
    return C


def _matrix_power(A: np.ndarray, p: float) -> np.ndarray:
    w, V = np.linalg.eigh(0.5 * (A + A.T))
    return (V * np.maximum(w, _MIN_EIGENVALUE) ** p) @ V.T


def recolour(frame: pd.DataFrame, target: RankCorrelation,
             rng: np.random.Generator) -> pd.DataFrame:
    """``frame`` (a copy) with its ``target.columns`` re-ordered towards the target rank
    correlation (see the module docstring): each column keeps its values and its missing rows."""
    names = [c for c in target.columns if c in frame.columns]
    positions = [target.columns.index(c) for c in names]
    n = len(frame)
    out = frame.copy()
    if len(names) < 2 or n < len(names) + 2:
        return out
    S = np.zeros((n, len(names)))
    ascending = []  # per column: the rows of its present values, by value (ties at random)
    levels: dict[int, np.ndarray] = {}
    for j, name in enumerate(names):
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64,
                                                                      na_value=np.nan)
        idx = np.flatnonzero(np.isfinite(values))
        # a random order first, then a stable sort: tied values get distinct, exchangeable ranks
        idx = idx[rng.permutation(idx.size)]
        order = idx[np.argsort(values[idx], kind="stable")]
        ascending.append(order)
        if order.size < 2:
            continue
        if order.size not in levels:
            levels[order.size] = ndtri((np.arange(order.size) + 0.5) / order.size)
        S[order, j] = levels[order.size]
    varies = S.std(axis=0) > 0
    if varies.sum() < 2:
        return out
    cols = np.flatnonzero(varies)
    E = np.corrcoef(S[:, cols], rowvar=False)
    C = target.matrix[np.ix_([positions[j] for j in cols], [positions[j] for j in cols])]
    T = S[:, cols] @ (_matrix_power(E, -0.5) @ _matrix_power(C, 0.5))
    for t, j in enumerate(cols):
        name, source = names[j], ascending[j]
        dest = np.sort(source)  # the present rows ...
        dest = dest[np.argsort(T[dest, t], kind="stable")]  # ... in the order of their new ranks
        series = frame[name]
        column = series.array.copy()
        column[dest] = series.array[source]
        out[name] = pd.Series(column, index=series.index, name=name)
    return out
