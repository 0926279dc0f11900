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

__all__ = ["column_bins", "noisy_marginals", "rake_select"]

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


def noisy_marginals(Z: np.ndarray, spans: Sequence[OutputSpan], noise_multiplier: float,
                    rng) -> list[np.ndarray]:
    """Per-column histograms of ``Z`` plus ``N(0, (z sqrt k)^2)`` noise, as probabilities.

    Each row adds one count to each of the ``k`` column histograms, so the joint L2
    sensitivity is ``sqrt(k)`` and this is a Gaussian mechanism with noise multiplier ``z``.
    """
    keys, n_bins, _ = column_bins(Z, spans)
    std = noise_multiplier * math.sqrt(max(len(n_bins), 1))
    out = []
    for j, width in enumerate(n_bins):
        counts = np.bincount(keys[:, j], minlength=width).astype(np.float64)
        noisy = np.clip(counts + rng.normal(0.0, std, size=width), 0.0, None)
        total = noisy.sum()
        out.append(noisy / total if total > 0 else np.full(width, 1.0 / width))
    return out


def rake_select(Z: np.ndarray, spans: Sequence[OutputSpan], targets: Sequence[np.ndarray],
                n_select: int, rng: np.random.Generator, n_iter: int = 20,
                max_weight: float = 20.0) -> np.ndarray:
    """Indices of ``n_select`` rows of ``Z`` whose column marginals approximate ``targets``.

    Raking (iterative proportional fitting) finds row weights that match every target
    marginal; weights are capped at ``max_weight`` times their mean so a few rows cannot
    dominate; rows are then drawn without replacement with probability proportional to their
    weight (Efraimidis-Spirakis keys).
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
    u = rng.uniform(size=len(Z))
    with np.errstate(divide="ignore"):
        order_key = np.where(w > 0, np.log(u) / np.maximum(w, 1e-300), -np.inf)
    chosen = np.argpartition(-order_key, n_select - 1)[:n_select]
    return np.sort(chosen)
