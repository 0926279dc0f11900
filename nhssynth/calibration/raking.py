"""Raking: weight a generator's draw so its marginals match released ones, then select rows.

Raking factors (iterative proportional fitting, bounded) are fitted once on a large draw and
reweight any later draw of the same generator; :func:`rake_select` keeps the requested number
of rows with probability proportional to the capped weights (exact inclusion probabilities).
Post-processing of DP releases: no privacy cost.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..base import OutputSpan
from .marginals import ValueBins, column_bins
from .pairs import PairMarginal

__all__ = ['cap_weights', 'rake_factors', 'rake_weights', 'rake_select', 'inclusion_probabilities', 'pps_select']

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

def _margin_keys(Z: np.ndarray, spans: Sequence[OutputSpan],
                 value_bins: Mapping[str, ValueBins] | None,
                 pairs: Sequence[PairMarginal] | None) -> np.ndarray:
    """Cell of each row in every one-way marginal, then in every two-way marginal."""
    keys, _, _ = column_bins(Z, spans, value_bins)
    if not pairs:
        return keys
    return np.concatenate([keys, np.stack([p.keys(keys) for p in pairs], axis=1)], axis=1)

def rake_factors(Z: np.ndarray, spans: Sequence[OutputSpan], targets: Sequence[np.ndarray],
                 n_iter: int = 10, tol: float = 1e-3, max_weight: float = 20.0,
                 value_bins: Mapping[str, ValueBins] | None = None,
                 pairs: Sequence[PairMarginal] | None = None) -> list[np.ndarray]:
    """Raking (iterative proportional fitting) of the rows of ``Z``, a large draw from the
    generator, to the released marginals.

    The result is one factor per target cell: a row's weight is the product of the factors of
    its cells (:func:`rake_weights`).  Fitted once on a large draw, the factors then reweight
    any later draw from the same generator without iterating again.  Bounded raking: each
    sweep matches the marginals of the *capped* weights (:func:`cap_weights`, as
    :func:`rake_select` uses them), so a draw that misses a target cell cannot send the weight
    of a handful of rows to infinity (plain IPF with dozens of columns does).

    With ``pairs`` (:class:`PairMarginal`), their tables are raked to as well (first in each
    sweep, so a sweep ends on the finer one-way marginals); their factors follow the one-way
    factors in the result.
    """
    keys = _margin_keys(Z, spans, value_bins, pairs)
    targets = [np.asarray(t, dtype=np.float64) for t in targets]
    targets += [p.target.ravel() for p in pairs or ()]
    factors = [np.ones(t.size) for t in targets]
    # the coarse two-way tables first, so each sweep ends matching the finer one-way marginals
    n_one_way = len(targets) - len(pairs or ())
    order = list(range(n_one_way, len(targets))) + list(range(n_one_way))
    w = np.ones(len(Z), dtype=np.float64)
    for _ in range(n_iter):
        worst = 0.0  # largest marginal error before this sweep's adjustments
        for j in order:
            target, factor, key = targets[j], factors[j], keys[:, j]
            current = np.bincount(key, weights=cap_weights(w, max_weight), minlength=target.size)
            current = current / max(current.sum(), 1e-300)
            worst = max(worst, float(np.abs(current - target).max()))
            ratio = np.divide(target, current, out=np.ones_like(target), where=current > 0)
            new = np.minimum(factor * ratio, _MAX_FACTOR)
            w *= np.divide(new, factor, out=np.zeros_like(new), where=factor > 0)[key]
            factor[:] = new
        if worst < tol:  # every marginal already within tol of its target
            break
    return factors

def rake_weights(Z: np.ndarray, spans: Sequence[OutputSpan], factors: Sequence[np.ndarray],
                 value_bins: Mapping[str, ValueBins] | None = None,
                 pairs: Sequence[PairMarginal] | None = None) -> np.ndarray:
    """Row weights of ``Z`` under raking factors from :func:`rake_factors`."""
    keys = _margin_keys(Z, spans, value_bins, pairs)
    w = np.ones(len(Z), dtype=np.float64)
    for j, factor in enumerate(factors):
        w *= factor[keys[:, j]]
    return w

def rake_select(Z: np.ndarray, spans: Sequence[OutputSpan], factors: Sequence[np.ndarray],
                n_select: int, rng: np.random.Generator, max_weight: float = 20.0,
                value_bins: Mapping[str, ValueBins] | None = None,
                pairs: Sequence[PairMarginal] | None = None) -> np.ndarray:
    """Indices of ``n_select`` rows of ``Z`` drawn with probability proportional to their raking
    weight (:func:`rake_weights`), capped by :func:`cap_weights`, without replacement
    (:func:`pps_select`)."""
    w = cap_weights(rake_weights(Z, spans, factors, value_bins, pairs), max_weight)
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
