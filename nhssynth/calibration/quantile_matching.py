"""Quantile matching: a draw's numeric values moved onto their released marginals.

Raking corrects a marginal by weighting rows, which costs effective sample size: when DP-SGD
noise leaves the generator far from a column's distribution (SUPPORT2 at epsilon 1: total
variation 0.3-0.45 between the generator's value bins and the released ones), the weights
concentrate on a few rows and the selection still misses the marginals.  Quantile matching
moves the values instead: each value-binned numeric column is mapped through the generator's
own CDF (a probability integral transform; tied values spread at random over the
probabilities they share) and then the inverse CDF of the released value-bin histogram,
shaped inside each bin like the generator's values there.  Both CDFs are tabulated once, at
the end of ``fit``, from a large draw (:func:`fit_quantile_maps`); applying them
(:func:`apply_quantile_maps`) costs one binary search per value.  The column's marginal then
matches the release by construction, while the ranks -- and so the dependence between columns
that the generator learnt -- are kept.  The mapped values are re-encoded by the column's encoder, so the rest of
the pipeline (raking to the remaining marginals, decoding) is unchanged.

Everything used is a DP release (the one-way marginals, the value-bin cuts, the mixture fitted
to DP histograms) or a draw from the trained generator: post-processing, at no privacy cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..base import OutputSpan
from .marginals import ValueBins, columns_of

__all__ = ["QuantileMap", "inverse_cdf", "fit_quantile_maps", "apply_quantile_maps"]

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


def _bin_edges(vb: ValueBins) -> np.ndarray:
    """``[lo, cuts..., hi]`` with the cuts kept inside the bounds (a cut beyond a bound leaves
    its outer bin no room, and no decoded value lands there)."""
    return np.maximum.accumulate(np.clip(np.concatenate([[vb.lo], vb.cuts, [vb.hi]]), vb.lo, vb.hi))


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


def _values(Z: np.ndarray, col, vb: ValueBins):
    """Rows of ``Z`` where the column is observed (a slice when all are) and their unrounded
    decoded values."""
    rows = slice(None)  # every row, without a fancy-indexed copy
    if col.missing is not None:
        observed = Z[:, col.missing.start] <= 0.5
        if not observed.all():
            rows = np.flatnonzero(observed)
    return rows, vb.unclipped(np.argmax(Z[rows, col.soft.slice], axis=1), Z[rows, col.scalar.start])


def _matched_columns(spans, value_bins, names=None):
    for j, col in enumerate(columns_of(spans)):
        if (col.name in value_bins and col.soft is not None and col.scalar is not None
                and (names is None or col.name in names)):
            yield j, col, value_bins[col.name]


def fit_quantile_maps(Z: np.ndarray, spans: Sequence[OutputSpan], one_way: Sequence[np.ndarray],
                      value_bins: Mapping[str, ValueBins], n_levels: int = _LEVELS
                      ) -> dict[str, QuantileMap]:
    """A :class:`QuantileMap` for every value-binned column, from a large draw ``Z`` of the
    generator and the released one-way marginals ``one_way`` (one per column of
    :func:`~nhssynth.calibration.marginals.column_bins`).  Post-processing of DP outputs."""
    levels = np.linspace(0.0, 1.0, n_levels)
    maps = {}
    for j, col, vb in _matched_columns(spans, value_bins):
        _, x = _values(Z, col, vb)
        if x.size < 2:
            continue
        p = one_way[j]
        n_value = len(p) - int(col.missing is not None)
        maps[col.name] = QuantileMap(source=np.quantile(x, levels),
                                     target=inverse_cdf(levels, p[:n_value], _bin_edges(vb), within=x))
    return maps


def apply_quantile_maps(Z: np.ndarray, spans: Sequence[OutputSpan], maps: Mapping[str, QuantileMap],
                        value_bins: Mapping[str, ValueBins], encoders: Mapping,
                        rng: np.random.Generator) -> np.ndarray:
    """Map the value-binned columns of the encoded draw ``Z`` (in place) with ``maps`` and
    re-encode them with each column's fitted encoder (``encoders``: name to GMMEncoder);
    missing rows and other columns are left alone.  ``rng`` spreads tied values."""
    for _, col, vb in _matched_columns(spans, value_bins, maps):
        if col.name not in encoders:
            continue
        rows, x = _values(Z, col, vb)
        if x.size == 0:
            continue
        block = encoders[col.name].transform(maps[col.name](x, rng).reshape(-1, 1))
        Z[rows, col.scalar.start] = block[:, 0]  # block: [scalar, one-hot mode]
        Z[rows, col.soft.slice] = block[:, 1:]
    return Z
