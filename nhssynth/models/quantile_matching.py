"""Quantile matching: a draw's numeric values moved onto their released marginals.

Raking corrects a marginal by weighting rows, which costs effective sample size: when DP-SGD
noise leaves the generator far from a column's distribution (SUPPORT2 at epsilon 1: total
variation 0.3-0.45 between the generator's value bins and the released ones), the weights
concentrate on a few rows and the selection still misses the marginals.  Quantile matching
moves the values instead: within one draw, each value-binned numeric column is mapped through
its own (randomised) probability integral transform and then the inverse CDF of the released
value-bin histogram (linear inside each bin).  The column's marginal then matches the release
by construction, while the ranks -- and so the dependence between columns that the generator
learnt -- are kept.  The mapped values are re-encoded by the column's encoder, so the rest of
the pipeline (raking to the remaining marginals, decoding) is unchanged.

Everything used is a DP release (the one-way marginals, the value-bin cuts, the mixture fitted
to DP histograms) or a draw from the trained generator: post-processing, at no privacy cost.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..base import OutputSpan
from .marginals import ValueBins, _columns

__all__ = ["inverse_cdf", "match_quantiles"]

_MIN_WITHIN = 20  # generated values a bin needs before its shape is taken from them


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


def match_quantiles(Z: np.ndarray, spans: Sequence[OutputSpan], one_way: Sequence[np.ndarray],
                    value_bins: Mapping[str, ValueBins], encoders: Mapping, rng: np.random.Generator
                    ) -> np.ndarray:
    """Map every value-binned column of the encoded draw ``Z`` (in place) onto its released
    one-way marginal.

    Parameters
    ----------
    Z : ndarray of shape (n_rows, n_features)
        Encoded rows decoded from the generator; changed in place and returned.
    spans : list of OutputSpan
    one_way : list of ndarray
        The released one-way marginals (:func:`~nhssynth.models.marginals.noisy_marginals`),
        one per column of :func:`~nhssynth.models.marginals.column_bins`.
    value_bins : dict of str to ValueBins
        Columns to match (others are left alone).
    encoders : dict of str to GMMEncoder
        Each matched column's fitted encoder, which re-encodes the mapped values.
    rng : numpy Generator
        Breaks ties between equal generated values (a clipped bound, a spike) at random, so
        tied rows spread over the probabilities they share instead of landing on one value.
    """
    for col, p in zip(_columns(spans), one_way):
        vb = value_bins.get(col.name)
        if vb is None or col.soft is None or col.scalar is None or col.name not in encoders:
            continue
        rows = (np.flatnonzero(Z[:, col.missing.start] <= 0.5) if col.missing is not None
                else np.arange(len(Z)))
        if rows.size == 0:
            continue
        n_value = len(p) - int(col.missing is not None)
        mode = np.argmax(Z[rows, col.soft.slice], axis=1)
        scalar = Z[rows, col.scalar.start]
        x = vb.means[mode] + 4.0 * vb.stds[mode] * np.clip(scalar, -1.0, 1.0)  # unrounded
        order = np.lexsort((rng.random(rows.size), x))
        u = np.empty(rows.size)
        u[order] = (np.arange(rows.size) + 0.5) / rows.size
        mapped = inverse_cdf(u, p[:n_value], _bin_edges(vb), within=x)
        block = encoders[col.name].transform(mapped.reshape(-1, 1))  # [scalar, one-hot mode]
        Z[rows, col.scalar.start] = block[:, 0]
        Z[rows, col.soft.slice] = block[:, 1:]
    return Z
