"""Raking: weight a generator's draw so its marginals match released ones, then select rows.

A *margin* is one column or a tuple of columns of the discrete codes of a table
(:class:`~nhssynth.encoders.binning.TableBins`); each row falls in one cell of each margin
(its *keys*).  Raking factors -- iterative proportional fitting, bounded so that a draw
missing a target cell cannot send a few rows' weights to infinity -- are fitted once on a large
draw and reweight any later draw of the same generator (:func:`rake_weights`);
:func:`rake_select` keeps the requested number of rows with probability proportional to the
capped weights (exact inclusion probabilities).  Post-processing of DP releases: no privacy
cost.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["cap_weights", "rake_factors", "rake_weights", "rake_select",
           "inclusion_probabilities", "pps_select"]

_MAX_FACTOR = 1e4  # bound on one cell's raking factor


def cap_weights(w: np.ndarray, max_weight: float = 20.0) -> np.ndarray:
    """``w`` clipped to ``[1e-9, max_weight]`` times its typical size (the mean of ``w`` with
    its top 1% clipped, so a few runaway weights cannot set the scale)."""
    w = np.asarray(w, dtype=np.float64)
    finite = np.isfinite(w)
    if not finite.any():
        return np.ones_like(w)
    w = np.where(finite, w, 0.0)
    scale = float(np.minimum(w, np.quantile(w, 0.99)).mean())
    if not scale > 0:
        return np.ones_like(w)
    # floor: rows in cells the targets call empty stay available as a last resort, so a
    # selection never runs out of rows
    return np.clip(w, 1e-9 * scale, max_weight * scale)


def rake_factors(keys: np.ndarray, targets: Sequence[np.ndarray], *, n_iter: int = 10,
                 tol: float = 1e-3, max_weight: float = 20.0) -> list[np.ndarray]:
    """Raking factors of the rows of a draw to target marginals.

    Parameters
    ----------
    keys : ndarray of shape (n_rows, n_margins), int
        The cell of each row in each margin.
    targets : sequence of ndarray
        Target probabilities of each margin's cells (the margins are raked in this order in
        each sweep: put the coarse ones first, so a sweep ends on the finer ones).
    n_iter, tol : int, float
        At most ``n_iter`` sweeps; stop once every margin is within ``tol`` of its target.
    max_weight : float
        Each sweep matches the marginals of the *capped* weights (:func:`cap_weights`), as
        :func:`rake_select` uses them.

    Returns
    -------
    list of ndarray
        One factor per cell of each margin: a row's weight is the product of its cells'.
    """
    targets = [np.asarray(t, dtype=np.float64) for t in targets]
    factors = [np.ones(t.size) for t in targets]
    w = np.ones(len(keys), dtype=np.float64)
    for _ in range(n_iter):
        worst = 0.0  # largest marginal error before this sweep's adjustments
        for j, (target, factor) in enumerate(zip(targets, factors)):
            key = keys[:, j]
            current = np.bincount(key, weights=cap_weights(w, max_weight), minlength=target.size)
            current = current / max(current.sum(), 1e-300)
            worst = max(worst, float(np.abs(current - target).max()))
            ratio = np.divide(target, current, out=np.ones_like(target), where=current > 0)
            new = np.minimum(factor * ratio, _MAX_FACTOR)
            w *= np.divide(new, factor, out=np.zeros_like(new), where=factor > 0)[key]
            factor[:] = new
        if worst < tol:
            break
    return factors


def rake_weights(keys: np.ndarray, factors: Sequence[np.ndarray]) -> np.ndarray:
    """Row weights of a draw with cells ``keys`` under raking ``factors``."""
    w = np.ones(len(keys), dtype=np.float64)
    for j, factor in enumerate(factors):
        w *= factor[keys[:, j]]
    return w


def rake_select(keys: np.ndarray, factors: Sequence[np.ndarray], n_select: int,
                rng: np.random.Generator, max_weight: float = 20.0) -> np.ndarray:
    """Sorted indices of ``n_select`` rows drawn with probability proportional to their capped
    raking weight, without replacement (:func:`pps_select`)."""
    w = cap_weights(rake_weights(keys, factors), max_weight)
    return np.sort(pps_select(w, n_select, rng))


def inclusion_probabilities(weights: np.ndarray, n_select: int) -> np.ndarray:
    """Inclusion probabilities proportional to ``weights``, capped at 1, summing to
    ``n_select`` (rows whose weight asks for more than certainty are taken for sure and the
    rest re-scaled)."""
    w = np.asarray(weights, dtype=np.float64)
    pi = np.zeros_like(w)
    certain = np.zeros(w.shape, dtype=bool)
    for _ in range(len(w)):
        free = ~certain & (w > 0)
        room = n_select - certain.sum()
        total = w[free].sum()
        if room <= 0 or total <= 0:
            break
        pi[free] = w[free] * (room / total)
        over = free & (pi >= 1.0)
        if not over.any():
            break
        certain |= over
        pi[certain] = 1.0
    return pi


def pps_select(weights: np.ndarray, n_select: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``n_select`` distinct indices, index ``i`` drawn with probability
    ``inclusion_probabilities(weights)[i]`` (systematic sampling over a random order)."""
    if n_select > np.count_nonzero(weights > 0):
        raise ValueError("fewer rows with positive weight than rows to select.")
    pi = inclusion_probabilities(weights, n_select)
    order = rng.permutation(len(pi))
    edges = np.cumsum(pi[order])
    edges *= n_select / edges[-1]  # remove rounding drift
    hits = np.searchsorted(edges, rng.uniform() + np.arange(n_select), side="right")
    return order[np.minimum(hits, len(pi) - 1)]
