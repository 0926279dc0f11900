"""DP one-way marginals and raking: keep the learnt relationships, fix the marginals.

DP-SGD noise blurs what a generator learns about each column's distribution (a rare flag comes
out at the wrong rate, a category is over-produced).  One-way marginals are cheap to release
privately: one noisy histogram per column, a single Gaussian mechanism with L2 sensitivity
``sqrt(n_columns)``.  At sampling time an oversampled draw from the generator is reweighted
by iterative proportional fitting (raking) so that every column's marginal matches the
released one, and the requested number of rows is drawn with those weights (without
replacement).  Both steps are post-processing of DP outputs, so the guarantee is unchanged.

The histogram of a column is taken in the encoded space: for a mixture-encoded column, its
mode crossed with four bins of the within-mode scalar; for a categorical, the category; its
binary value; or ten equal bins of a scalar-only block — with one more bin for "missing".
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import numpy as np

from ..base import OutputSpan

__all__ = ["column_bins", "noisy_marginals", "project_counts", "rake_select",
           "inclusion_probabilities", "pps_select"]

_SCALAR_BINS = 10
_SUB_EDGES = np.array([-0.25, 0.0, 0.25])  # scalar (x - mu) / 4 sd: quartiles of a normal mode


def _column_blocks(spans: Sequence[OutputSpan]) -> "OrderedDict[str, list[OutputSpan]]":
    blocks: OrderedDict[str, list[OutputSpan]] = OrderedDict()
    for s in spans:
        blocks.setdefault(s.column, []).append(s)
    return blocks


def column_bins(Z: np.ndarray, spans: Sequence[OutputSpan]) -> tuple[np.ndarray, list[int], list[str]]:
    """Discrete key of each row for each column of an encoded matrix.

    Returns
    -------
    keys : ndarray of shape (n_rows, n_columns), int64
    n_bins : list of int
    columns : list of str
    """
    keys, n_bins, names = [], [], []
    for column, blocks in _column_blocks(spans).items():
        missing = next((s for s in blocks if s.role == "missing"), None)
        value = [s for s in blocks if s is not missing]
        soft = next((s for s in value if s.kind == "softmax"), None)
        binary = next((s for s in value if s.kind == "binary"), None)
        scalar = next((s for s in value if s.kind == "continuous"), None)
        if soft is not None and scalar is not None:
            # mode x position inside the mode: raking then also shapes each mode
            sub = np.searchsorted(_SUB_EDGES, Z[:, scalar.start])
            key = np.argmax(Z[:, soft.slice], axis=1) * (len(_SUB_EDGES) + 1) + sub
            width = soft.width * (len(_SUB_EDGES) + 1)
        elif soft is not None:
            key, width = np.argmax(Z[:, soft.slice], axis=1), soft.width
        elif binary is not None:
            key, width = (Z[:, binary.start] > 0.5).astype(np.int64), 2
        elif value:
            scalar = np.clip(Z[:, value[0].start], -1.0, 1.0)
            key = np.minimum(((scalar + 1.0) / 2.0 * _SCALAR_BINS).astype(np.int64), _SCALAR_BINS - 1)
            width = _SCALAR_BINS
        else:
            continue
        key = key.astype(np.int64)
        if missing is not None:
            key = np.where(Z[:, missing.start] > 0.5, width, key)
            width += 1
        keys.append(key)
        n_bins.append(int(width))
        names.append(column)
    if not keys:
        return np.zeros((len(Z), 0), dtype=np.int64), [], []
    return np.stack(keys, axis=1), n_bins, names


def project_counts(noisy: np.ndarray, total: float) -> np.ndarray:
    """Closest non-negative vector summing to ``total`` (Euclidean projection onto the
    scaled simplex): subtract one constant from every count and clip at zero.

    Clipping noisy counts at zero alone gives every empty or rare bin a positive bias of about
    ``0.4 sigma``, which with many bins moves real mass onto values that barely occur; the
    projection ("norm-sub") removes that bias where it matters.  Post-processing: no privacy cost.
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    if total <= 0 or noisy.size == 0:
        return np.zeros_like(noisy)
    desc = np.sort(noisy)[::-1]
    cums = np.cumsum(desc) - total
    k = np.nonzero(desc - cums / np.arange(1, desc.size + 1) > 0)[0]
    shift = cums[k[-1]] / (k[-1] + 1) if k.size else desc[0] - total
    return np.maximum(noisy - shift, 0.0)


def noisy_marginals(Z: np.ndarray, spans: Sequence[OutputSpan], noise_multiplier: float,
                    rng) -> list[np.ndarray]:
    """Per-column histograms of ``Z`` plus ``N(0, (z sqrt k)^2)`` noise, as probabilities.

    Each row adds one count to each of the ``k`` column histograms, so the joint L2
    sensitivity is ``sqrt(k)`` and this is a Gaussian mechanism with noise multiplier ``z``.
    Every histogram counts the same rows, so the row count is estimated once from all the
    noisy totals (their mean), and each histogram is projected onto that total
    (:func:`project_counts`).
    """
    keys, n_bins, _ = column_bins(Z, spans)
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


def rake_select(Z: np.ndarray, spans: Sequence[OutputSpan], targets: Sequence[np.ndarray],
                n_select: int, rng: np.random.Generator, n_iter: int = 20,
                max_weight: float = 20.0) -> np.ndarray:
    """Indices of ``n_select`` rows of ``Z`` whose column marginals approximate ``targets``.

    Raking (iterative proportional fitting) finds row weights that match every target
    marginal; weights are capped at ``max_weight`` times their mean so a few rows cannot
    dominate; rows are then drawn without replacement with probability proportional to their
    weight, capped at certainty (:func:`pps_select`).
    """
    keys, n_bins, _ = column_bins(Z, spans)
    w = np.ones(len(Z), dtype=np.float64)
    for _ in range(n_iter):
        for j, width in enumerate(n_bins):
            current = np.bincount(keys[:, j], weights=w, minlength=width)
            current = current / current.sum()
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(current > 0, targets[j] / current, 1.0)
            w *= ratio[keys[:, j]]
        w = np.minimum(w, max_weight * w.mean())
    # rows in bins the targets call empty keep a tiny weight: they are the last resort, and
    # the selection never runs out of rows
    w = np.maximum(w, 1e-9 * max(w.max(), 1e-300))
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
