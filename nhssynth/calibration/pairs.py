"""DP two-way marginals on coarse groups of two columns, and the choice of pairs.

DP-SGD noise leaves a generator that knows *which* columns go together better than *how
much*.  Pairs are chosen by :func:`select_pairs`, their joint tables on a few coarse groups per
column (:func:`coarse_groups`) are released with Gaussian noise (:func:`noisy_pair_marginals`)
and raking (:mod:`nhssynth.calibration.raking`) matches them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..base import OutputSpan
from ..privacy.mechanisms import project_counts
from .marginals import ValueBins, columns_of

__all__ = ['PairMarginal', 'coarse_groups', 'select_pairs', 'noisy_pair_marginals']

_PAIR_GROUPS = 4  # coarse groups per column in a two-way marginal (plus "missing")

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
    for col, p in zip(columns_of(spans), one_way):
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
