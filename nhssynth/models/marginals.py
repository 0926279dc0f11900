"""DP one- and two-way marginals and raking: keep the learnt relationships, fix the marginals
and the strongest pairs.

DP-SGD noise blurs what a generator learns about each column's distribution (a rare flag comes
out at the wrong rate, a category is over-produced).  One-way marginals are cheap to release
privately: one noisy histogram per column, a single Gaussian mechanism with L2 sensitivity
``sqrt(n_columns)``, projected onto the probability simplex.  They are used three ways, all
post-processing of DP outputs (the guarantee is unchanged): the decoder's output bias starts at
them (:func:`decoder_bias`); raking factors are fitted on a large draw from the trained
generator (:func:`rake_factors`); and at sampling time an oversampled draw is weighted by those
factors and the requested number of rows selected without replacement (:func:`rake_select`).

The histogram of a column is taken in the encoded space: for a mixture-encoded column, its
mode crossed with four bins of the within-mode scalar; for a categorical, the category; its
binary value; or ten equal bins of a scalar-only block — with one more bin for "missing".
A mixture-encoded column can instead be histogrammed on its *decoded value* (:class:`ValueBins`,
cut where a DP histogram released during preprocessing puts equal mass): a mode is often wider
than the detail that matters (flchain's ``sample.yr``: 44% of rows in 1996, inside a mode
spanning 1995-1998), and raking on value bins then puts that mass back on the right values.

Two-way marginals (:class:`PairMarginal`) do the same for relationships: DP-SGD noise leaves a
generator that knows *which* columns go together better than *how much*.  The pairs are chosen
from the trained generator's own draws (:func:`select_pairs`, no privacy cost), their joint
tables on a few coarse groups per column (:func:`coarse_groups`) are released with Gaussian
noise (:func:`noisy_pair_marginals`), and raking matches them too.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from ..base import OutputSpan
from ..privacy.mechanisms import project_counts
from ..transformers.numeric import grid_bounds

__all__ = ["ValueBins", "value_cuts", "cap_weights", "column_bins", "noisy_marginals",
           "project_counts", "rake_factors", "rake_weights", "rake_select",
           "inclusion_probabilities", "pps_select", "decoder_bias", "PairMarginal",
           "coarse_groups", "select_pairs", "noisy_pair_marginals"]

_SCALAR_BINS = 10
_MAX_FACTOR = 1e4  # bound on one cell's raking factor
_PAIR_GROUPS = 4  # coarse groups per column in a two-way marginal (plus "missing")
_SUB_EDGES = np.array([-0.25, 0.0, 0.25])  # scalar (x - mu) / 4 sd: quartiles of a normal mode


class _Column(NamedTuple):
    """The blocks of one encoded column, by role."""

    name: str
    missing: OutputSpan | None
    soft: OutputSpan | None
    binary: OutputSpan | None
    scalar: OutputSpan | None


def _columns(spans: Sequence[OutputSpan]) -> list[_Column]:
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
    for col in _columns(spans):
        if col.soft is not None and col.scalar is not None and col.name in value_bins:
            vb = value_bins[col.name]
            key = vb.keys(np.argmax(Z[:, col.soft.slice], axis=1), Z[:, col.scalar.start])
            width = vb.n_bins
        elif col.soft is not None and col.scalar is not None:
            # mode x position inside the mode: raking then also shapes each mode
            sub = np.searchsorted(_SUB_EDGES, Z[:, col.scalar.start])
            key = np.argmax(Z[:, col.soft.slice], axis=1) * (len(_SUB_EDGES) + 1) + sub
            width = col.soft.width * (len(_SUB_EDGES) + 1)
        elif col.soft is not None:
            key, width = np.argmax(Z[:, col.soft.slice], axis=1), col.soft.width
        elif col.binary is not None:
            key, width = (Z[:, col.binary.start] > 0.5).astype(np.int64), 2
        else:
            scalar = np.clip(Z[:, col.scalar.start], -1.0, 1.0)
            key = np.minimum(((scalar + 1.0) / 2.0 * _SCALAR_BINS).astype(np.int64), _SCALAR_BINS - 1)
            width = _SCALAR_BINS
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


@dataclass(frozen=True)
class PairMarginal:
    """A released two-way marginal: the joint distribution of two columns on coarse groups.

    Attributes
    ----------
    first, second : int
        Positions of the two columns in :func:`column_bins` order.
    first_groups, second_groups : ndarray of int
        Coarse group of each of the column's keys (:func:`coarse_groups`).
    target : ndarray of shape (n_first_groups, n_second_groups)
        Released probabilities.
    """

    first: int
    second: int
    first_groups: np.ndarray
    second_groups: np.ndarray
    target: np.ndarray

    def keys(self, keys: np.ndarray) -> np.ndarray:
        """Cell of each row (``keys`` from :func:`column_bins`) in the flattened table."""
        width = self.target.shape[1]
        return self.first_groups[keys[:, self.first]] * width + self.second_groups[keys[:, self.second]]


def coarse_groups(spans: Sequence[OutputSpan], one_way: Sequence[np.ndarray],
                  value_bins: Mapping[str, ValueBins] | None = None,
                  n_groups: int = _PAIR_GROUPS) -> list[np.ndarray]:
    """Map of each column's keys (:func:`column_bins`) to at most ``n_groups`` coarse groups
    (plus one for "missing"), for two-way marginals: a two-way table on the fine keys would
    have too many cells to release with useful noise.

    Ordered keys (value bins, scalar bins) are merged into runs of about equal mass under the
    released one-way marginal ``one_way``; unordered keys (categories, mixture mode x position)
    keep the ``n_groups - 1`` heaviest as groups and lump the rest.  Post-processing of DP
    releases.
    """
    value_bins = value_bins or {}
    out = []
    for col, p in zip(_columns(spans), one_way):
        p = np.asarray(p, dtype=np.float64)
        n_value = len(p) - int(col.missing is not None)
        pv = p[:n_value] / max(p[:n_value].sum(), 1e-12)
        ordered = (col.soft is None and col.scalar is not None) or col.name in value_bins
        if n_value <= n_groups:
            groups = np.arange(n_value)
        elif ordered:
            mid = np.cumsum(pv) - pv / 2.0
            groups = np.unique(np.minimum((mid * n_groups).astype(np.int64), n_groups - 1),
                               return_inverse=True)[1]
        else:
            top = np.argsort(-pv, kind="stable")[:n_groups - 1]
            groups = np.full(n_value, n_groups - 1)
            groups[top] = np.arange(top.size)
        groups = groups.astype(np.int64)
        if col.missing is not None:
            groups = np.append(groups, groups.max() + 1 if groups.size else 0)
        out.append(groups)
    return out


def _mutual_information(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> float:
    joint = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb).astype(np.float64)
    joint /= max(joint.sum(), 1.0)
    pa, pb = joint.sum(axis=1), joint.sum(axis=0)
    outer = np.outer(pa, pb)
    nz = joint > 0
    return float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())


def select_pairs(keys: np.ndarray, groups: Sequence[np.ndarray], n_pairs: int) -> list[tuple[int, int]]:
    """The ``n_pairs`` most dependent column pairs of a maximum spanning tree of the coarse
    mutual information in ``keys``.

    ``keys`` are those of a draw from the *trained generator*, not of the real rows: the choice
    is post-processing of DP outputs and costs nothing (MST spends budget on it).  A spanning
    tree spreads the pairs over the columns instead of spending them all inside one cluster
    of related columns.
    """
    d = keys.shape[1]
    if d < 2 or n_pairs < 1:
        return []
    coarse = [g[keys[:, j]] for j, g in enumerate(groups)]
    sizes = [int(g.max()) + 1 for g in groups]
    scored = sorted(((_mutual_information(coarse[i], coarse[j], sizes[i], sizes[j]), i, j)
                     for i in range(d) for j in range(i + 1, d)), reverse=True)
    parent = list(range(d))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = []
    for _, i, j in scored:  # Kruskal, heaviest first: tree edges come out by decreasing MI
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[ri] = rj
            tree.append((i, j))
            if len(tree) == min(n_pairs, d - 1):
                break
    return tree


def noisy_pair_marginals(keys: np.ndarray, pairs: Sequence[tuple[int, int]],
                         groups: Sequence[np.ndarray], one_way: Sequence[np.ndarray],
                         noise_multiplier: float, rng, n_iter: int = 20) -> list[PairMarginal]:
    """Two-way tables of ``pairs`` over the rows' ``keys`` plus ``N(0, (z sqrt k)^2)`` noise.

    Each row adds one count to each of the ``k`` tables (L2 sensitivity ``sqrt(k)``): one
    Gaussian mechanism with noise multiplier ``z``.  Each noisy table is projected onto
    non-negative counts with the (mean) noisy total and then fitted (IPF) to the coarse
    marginals of the one-way releases ``one_way``, which are more precise per group and would
    otherwise disagree with the tables when both are raked to (post-processing).
    """
    if not pairs:
        return []
    std = noise_multiplier * math.sqrt(len(pairs))
    sizes = [int(g.max()) + 1 for g in groups]
    noisy = []
    for i, j in pairs:
        cells = groups[i][keys[:, i]] * sizes[j] + groups[j][keys[:, j]]
        noisy.append(np.bincount(cells, minlength=sizes[i] * sizes[j]).astype(np.float64)
                     + rng.normal(0.0, std, size=sizes[i] * sizes[j]))
    total = float(np.mean([h.sum() for h in noisy]))
    out = []
    for (i, j), h in zip(pairs, noisy):
        table = (project_counts(h, total) if total > 0 else np.ones_like(h)).reshape(sizes[i], sizes[j])
        table = table + 1e-9 * max(table.sum(), 1.0)  # a zero row/column must still be fittable
        row = np.bincount(groups[i], weights=one_way[i], minlength=sizes[i])
        col = np.bincount(groups[j], weights=one_way[j], minlength=sizes[j])
        for _ in range(n_iter):
            table *= (row / np.maximum(table.sum(axis=1), 1e-300))[:, None]
            table *= (col / np.maximum(table.sum(axis=0), 1e-300))[None, :]
        out.append(PairMarginal(i, j, groups[i], groups[j], table / table.sum()))
    return out


def decoder_bias(spans: Sequence[OutputSpan], one_way: Sequence[np.ndarray],
                 n_features: int, value_bins: Mapping[str, ValueBins] | None = None) -> np.ndarray:
    """Output-layer bias that makes a decoder with zero weights reproduce the released
    one-way marginals: log-probabilities for softmax groups (modes, categories), log-odds for
    binaries and missing indicators, the mean position for continuous scalars.

    Starting DP-SGD here means the noisy gradient steps need not rediscover every column's
    distribution and can go to the relationships between columns.  Post-processing of DP
    output: no privacy cost.
    """
    bias = np.zeros(n_features, dtype=np.float64)
    sub_centres = np.concatenate([[_SUB_EDGES[0] - 0.15], 0.5 * (_SUB_EDGES[1:] + _SUB_EDGES[:-1]),
                                  [_SUB_EDGES[-1] + 0.15]])
    value_bins = value_bins or {}
    for col, p in zip(_columns(spans), one_way):
        p = np.asarray(p, dtype=np.float64)
        n_value = len(p) - int(col.missing is not None)
        observed = p[:n_value] / max(p[:n_value].sum(), 1e-12)
        if col.missing is not None:
            bias[col.missing.start] = _logit(p[-1])
        if col.soft is not None and col.scalar is not None and col.name in value_bins:
            bias[col.soft.slice] = np.log(value_bins[col.name].mode_probabilities(observed) + 1e-4)
        elif col.soft is not None and col.scalar is not None:
            per_mode = observed.reshape(col.soft.width, len(sub_centres))
            bias[col.soft.slice] = np.log(per_mode.sum(axis=1) + 1e-4)
            bias[col.scalar.start] = float(per_mode.sum(axis=0) @ sub_centres)
        elif col.soft is not None:
            bias[col.soft.slice] = np.log(observed + 1e-4)
        elif col.binary is not None:
            bias[col.binary.start] = _logit(observed[1])
        else:
            centres = (np.arange(_SCALAR_BINS) + 0.5) / _SCALAR_BINS * 2 - 1
            bias[col.scalar.start] = float(observed @ centres)
    return bias


def _logit(q: float) -> float:
    q = float(np.clip(q, 1e-4, 1 - 1e-4))
    return math.log(q / (1 - q))


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
