"""Quantile matching: a draw's numeric values moved onto their released one-way histogram.

Raking corrects a marginal by weighting rows, which costs effective sample size when a
generator is far from a column's distribution.  Quantile matching moves the values instead:
each numeric column is mapped through the generator's own CDF (a probability integral
transform; tied values spread at random over the probabilities they share) and then the
inverse CDF of the released histogram, shaped inside each bin like the generator's values
there.  Both CDFs are tabulated once, from a large draw (:func:`fit_quantile_map`); applying
a map costs one binary search per value.  The column's marginal then matches the release by
construction, while the ranks -- and so the dependence between columns that the generator
learnt -- are kept.

Everything used is a DP release or a draw from the trained generator: post-processing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QuantileMap", "inverse_cdf", "fit_quantile_map"]

_MIN_WITHIN = 20  # generated values a bin needs before its shape is taken from them
_LEVELS = 2001  # probabilities the two CDFs are tabulated at


def inverse_cdf(u: np.ndarray, probabilities: np.ndarray, edges: np.ndarray,
                within: np.ndarray | None = None, min_count: int = _MIN_WITHIN) -> np.ndarray:
    """Values at probabilities ``u`` of the histogram with bin ``probabilities`` over increasing
    ``edges`` (``len(edges) == len(probabilities) + 1``).

    Inside a bin, mass follows the values of ``within`` (a draw) that lie in that bin -- its
    empirical quantiles, interpolated -- where the bin holds at least ``min_count`` of them, and
    is spread evenly otherwise.  So the released histogram sets how much mass each bin gets,
    and the generator how it is shaped inside the bin.
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, None)
    edges = np.asarray(edges, dtype=np.float64)
    total = p.sum()
    p = p / total if total > 0 else np.full(p.size, 1.0 / p.size)
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    cdf[-1] = 1.0
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    # bin of each u (a bin without mass is a zero-length step of the CDF: never chosen)
    b = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(p) - 1)
    r = np.clip((u - cdf[b]) / np.maximum(cdf[b + 1] - cdf[b], 1e-300), 0.0, 1.0)
    out = edges[b] + r * (edges[b + 1] - edges[b])
    if within is None or len(within) == 0:
        return out
    xs = np.sort(np.asarray(within, dtype=np.float64))
    start = np.searchsorted(xs, edges[:-1], side="left")
    start[0] = 0
    end = np.append(start[1:], len(xs))
    count = end - start
    use = count[b] >= max(min_count, 2)
    if use.any():
        bu, ru = b[use], r[use]
        pos = ru * (count[bu] - 1)
        low = np.minimum(np.floor(pos).astype(np.int64), count[bu] - 2)
        frac = pos - low
        i = start[bu] + low
        out[use] = xs[i] + frac * (xs[i + 1] - xs[i])
    return out


@dataclass(frozen=True)
class QuantileMap:
    """Monotone map of one column's generated values onto its released marginal.

    Attributes
    ----------
    source : ndarray
        Quantiles of the generator's values at ``n`` equally spaced probabilities 0..1.
    target : ndarray
        Quantiles of the released marginal at the same probabilities.
    """

    source: np.ndarray
    target: np.ndarray

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        src, k = self.source, len(self.source) - 1
        # one binary search: the last tabulated quantile <= x, then linear inside the step
        i = np.clip(np.searchsorted(src, x, side="right") - 1, 0, k - 1)
        step = src[i + 1] - src[i]
        pos = i + np.clip(np.divide(x - src[i], step, out=np.zeros_like(x), where=step > 0), 0.0, 1.0)
        # a value the generator produces with positive probability (a clipped bound, a spike)
        # spans several quantiles: spread its rows over them at random
        tie = (src[i] == x) & (self._tie_start[i] < i)
        if tie.any():
            first = self._tie_start[i[tie]]
            pos[tie] = first + rng.uniform(size=first.size) * (i[tie] - first)
        j = np.minimum(pos.astype(np.int64), k - 1)  # the target is tabulated at the same steps
        return self.target[j] + (pos - j) * (self.target[j + 1] - self.target[j])

    @property
    def _tie_start(self) -> np.ndarray:
        """For each tabulated quantile, the first index holding the same value."""
        src = self.source
        new = np.r_[True, src[1:] != src[:-1]]
        return np.maximum.accumulate(np.where(new, np.arange(len(src)), 0))


def fit_quantile_map(values: np.ndarray, edges: np.ndarray, counts: np.ndarray,
                     n_levels: int = _LEVELS) -> QuantileMap | None:
    """The map of a column's generated ``values`` (a large draw, missing values removed) onto
    the histogram with bin ``edges`` and released ``counts``; None when either is empty."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    counts = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    if values.size < 2 or counts.sum() <= 0:
        return None
    levels = np.linspace(0.0, 1.0, n_levels)
    source = np.quantile(values, levels)
    target = inverse_cdf(levels, counts, edges, within=values)
    return QuantileMap(source=source, target=np.maximum.accumulate(target))
