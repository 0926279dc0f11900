"""DP one-way marginals of an encoded table, keyed per column.

DP-SGD noise blurs what a generator learns about each column's distribution (a rare flag comes
out at the wrong rate, a category is over-produced).  One-way marginals are cheap to release
privately: one noisy histogram per column, a single Gaussian mechanism with L2 sensitivity
``sqrt(n_columns)``, projected onto the probability simplex (:func:`noisy_marginals`).

The histogram of a column is taken in the encoded space: for a mixture-encoded column, its
mode crossed with four bins of the within-mode scalar; for a categorical, the category; its
binary value; or ten equal bins of a scalar-only block — with one more bin for "missing".
A mixture-encoded column can instead be histogrammed on its *decoded value* (:class:`ValueBins`,
cut where a DP histogram released during preprocessing puts equal mass): a mode is often wider
than the detail that matters (flchain's ``sample.yr``: 44% of rows in 1996, inside a mode
spanning 1995-1998), and raking on value bins then puts that mass back on the right values.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from ..base import OutputSpan
from ..privacy.mechanisms import project_counts
from ..encoders.numeric import grid_bounds

__all__ = ["ValueBins", "value_cuts", "column_bins", "noisy_marginals", "columns_of",
           "SCALAR_BINS", "SUB_EDGES"]

SCALAR_BINS = 10
SUB_EDGES = np.array([-0.25, 0.0, 0.25])  # scalar (x - mu) / 4 sd: quartiles of a normal mode


class _Column(NamedTuple):
    """The blocks of one encoded column, by role."""

    name: str
    missing: OutputSpan | None
    soft: OutputSpan | None
    binary: OutputSpan | None
    scalar: OutputSpan | None


def columns_of(spans: Sequence[OutputSpan]) -> list[_Column]:
    """Encoded columns in span order, each split into its blocks; columns with only a missing
    indicator are left out (they have no value to take a marginal of)."""
    blocks: OrderedDict[str, list[OutputSpan]] = OrderedDict()
    for s in spans:
        blocks.setdefault(s.column, []).append(s)
    out = []
    for name, group in blocks.items():
        missing = next((s for s in group if s.role == "missing"), None)
        value = [s for s in group if s is not missing]
        if not value:
            continue
        out.append(_Column(name, missing,
                           next((s for s in value if s.kind == "softmax"), None),
                           next((s for s in value if s.kind == "binary"), None),
                           next((s for s in value if s.kind == "continuous"), None)))
    return out


@dataclass(frozen=True)
class ValueBins:
    """Value bins of one mixture-encoded column, keyed from its encoded mode and scalar.

    The decoded value is the mixture encoder's inverse, ``clip(means[k] + 4 stds[k] s, lo, hi)``
    (rounded to the column's decimals, as the encoder's output is), so a row's bin is that of
    the value it will decode to.
    Everything here is public or a DP release (the mixture is fitted to DP histograms, the cuts
    come from one).

    Attributes
    ----------
    means, stds, weights : ndarray
        The column's mixture (mode order of its softmax block).
    lo, hi : float
        Bounds of the decoded value.
    cuts : ndarray
        Increasing interior bin edges; bin ``i`` is ``[cuts[i-1], cuts[i])``, open at both ends.
    decimals : int or None
        Decimals decoded values are rounded to (0 for integer columns; None: not rounded).
    """

    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray
    lo: float
    hi: float
    cuts: np.ndarray
    decimals: int | None = None

    @property
    def n_bins(self) -> int:
        return len(self.cuts) + 1

    def unclipped(self, mode: np.ndarray, scalar: np.ndarray) -> np.ndarray:
        """The mixture's value before clipping to the bounds and rounding."""
        return self.means[mode] + 4.0 * self.stds[mode] * np.clip(scalar, -1.0, 1.0)

    def values(self, mode: np.ndarray, scalar: np.ndarray) -> np.ndarray:
        x = np.clip(self.unclipped(mode, scalar), self.lo, self.hi)
        if self.decimals is None:
            return x
        # as the encoder's output: rounded, then kept inside the bounds on the decimal grid
        return np.clip(np.round(x, self.decimals), *grid_bounds((self.lo, self.hi), self.decimals))

    def keys(self, mode: np.ndarray, scalar: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.cuts, self.values(mode, scalar), side="right").astype(np.int64)

    def mode_probabilities(self, p: np.ndarray) -> np.ndarray:
        """Mode probabilities implied by bin probabilities ``p``: each bin's mass split over the
        modes by the share of the bin's probability under each mode (the outer bins extend to
        infinity, as values beyond the bounds are clipped into them)."""
        from scipy.special import log_ndtr

        edges = np.concatenate([[-np.inf], self.cuts, [np.inf]])
        sd = np.maximum(self.stds, 1e-12)
        upper = (edges[1:, None] - self.means[None, :]) / sd
        lower = (edges[:-1, None] - self.means[None, :]) / sd
        # log(Phi(upper) - Phi(lower)), evaluated on the side of the mode that keeps precision
        flip = lower > 0
        a, b = np.where(flip, -upper, lower), np.where(flip, -lower, upper)
        lb, la = log_ndtr(b), log_ndtr(a)
        log_mass = lb + np.log1p(-np.exp(np.minimum(la - lb, -1e-300)))
        logr = np.log(np.maximum(self.weights, 1e-300))[None, :] + log_mass
        r = np.exp(logr - logr.max(axis=1, keepdims=True))
        r /= r.sum(axis=1, keepdims=True)
        return np.asarray(p, dtype=np.float64) @ r


def value_cuts(centres: np.ndarray, weights: np.ndarray, n_bins: int) -> np.ndarray:
    """Interior edges that split a histogram (bin ``centres``, non-negative ``weights``) into
    about ``n_bins`` bins of equal mass, cut only at the histogram's own bin edges (so whole
    integers stay whole), plus a cut at each end of the occupied range so that values the
    histogram calls absent get a bin of their own, and cuts around every bin that holds at
    least ``1 / n_bins`` of the mass.  Post-processing of the histogram."""
    centres = np.asarray(centres, dtype=np.float64)
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    if len(centres) < 2 or w.sum() <= 0:
        return np.zeros(0)
    mids = 0.5 * (centres[1:] + centres[:-1])  # edge between bin i and bin i + 1 is mids[i]
    cdf = np.cumsum(w) / w.sum()
    occupied = np.flatnonzero(w > 0)
    picks = {int(i) for i in np.searchsorted(cdf, np.arange(1, n_bins) / n_bins - 1e-12)}
    picks |= {int(occupied[0]) - 1, int(occupied[-1])}
    # a bin holding a bin's share of the mass or more (a spike such as a score of 0) is
    # fenced on both sides, so its mass is matched on its own
    heavy = np.flatnonzero(w >= w.sum() / n_bins)
    picks |= {int(i) - 1 for i in heavy} | {int(i) for i in heavy}
    return np.unique([mids[i] for i in picks if 0 <= i < len(mids)])


def column_bins(Z: np.ndarray, spans: Sequence[OutputSpan],
                value_bins: Mapping[str, ValueBins] | None = None
                ) -> tuple[np.ndarray, list[int], list[str]]:
    """Discrete key of each row for each column of an encoded matrix (mixture-encoded columns
    named in ``value_bins`` keyed by their decoded value).

    Returns
    -------
    keys : ndarray of shape (n_rows, n_columns), int64
    n_bins : list of int
    columns : list of str
    """
    keys, n_bins, names = [], [], []
    value_bins = value_bins or {}
    for col in columns_of(spans):
        if col.soft is not None and col.scalar is not None and col.name in value_bins:
            vb = value_bins[col.name]
            key = vb.keys(np.argmax(Z[:, col.soft.slice], axis=1), Z[:, col.scalar.start])
            width = vb.n_bins
        elif col.soft is not None and col.scalar is not None:
            # mode x position inside the mode: raking then also shapes each mode
            sub = np.searchsorted(SUB_EDGES, Z[:, col.scalar.start])
            key = np.argmax(Z[:, col.soft.slice], axis=1) * (len(SUB_EDGES) + 1) + sub
            width = col.soft.width * (len(SUB_EDGES) + 1)
        elif col.soft is not None:
            key, width = np.argmax(Z[:, col.soft.slice], axis=1), col.soft.width
        elif col.binary is not None:
            key, width = (Z[:, col.binary.start] > 0.5).astype(np.int64), 2
        else:
            scalar = np.clip(Z[:, col.scalar.start], -1.0, 1.0)
            key = np.minimum(((scalar + 1.0) / 2.0 * SCALAR_BINS).astype(np.int64), SCALAR_BINS - 1)
            width = SCALAR_BINS
        key = key.astype(np.int64)
        if col.missing is not None:
            key = np.where(Z[:, col.missing.start] > 0.5, width, key)
            width += 1
        keys.append(key)
        n_bins.append(int(width))
        names.append(col.name)
    if not keys:
        return np.zeros((len(Z), 0), dtype=np.int64), [], []
    return np.stack(keys, axis=1), n_bins, names


def noisy_marginals(Z: np.ndarray, spans: Sequence[OutputSpan], noise_multiplier: float,
                    rng, value_bins: Mapping[str, ValueBins] | None = None) -> list[np.ndarray]:
    """Per-column histograms of ``Z`` plus ``N(0, (z sqrt k)^2)`` noise, as probabilities.

    Each row adds one count to each of the ``k`` column histograms, so the joint L2
    sensitivity is ``sqrt(k)`` and this is a Gaussian mechanism with noise multiplier ``z``.
    Every histogram counts the same rows, so the row count is estimated once from all the
    noisy totals (their mean), and each histogram is projected onto that total
    (:func:`project_counts`).
    """
    keys, n_bins, _ = column_bins(Z, spans, value_bins)
    std = noise_multiplier * math.sqrt(max(len(n_bins), 1))
    noisy = [np.bincount(keys[:, j], minlength=w).astype(np.float64) + rng.normal(0.0, std, size=w)
             for j, w in enumerate(n_bins)]
    total = float(np.mean([h.sum() for h in noisy])) if noisy else 0.0
    out = []
    for h in noisy:
        counts = project_counts(h, total) if total > 0 else np.zeros_like(h)
        s = counts.sum()
        out.append(counts / s if s > 0 else np.full(h.size, 1.0 / h.size))
    return out


