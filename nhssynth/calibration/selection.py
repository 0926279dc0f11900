"""Choosing and measuring two-way marginals privately: where a model is furthest from the data.

Given the real rows' codes and a large draw from a trained generator (both on the same
:class:`~nhssynth.encoders.binning.TableBins`), each candidate pair of columns is scored by how
far the draw's two-way marginal is from the data's (L1, in rows), less what measuring it would
add in noise.  The exponential mechanism picks the pairs one after another (a spanning forest:
no pair closes a cycle, so the measured pairs reach as many columns as they can), and each
chosen marginal is measured with Gaussian noise.  A pair the generator already has right is
not worth its budget; one it missed is measured and then calibrated to.

Privacy: the scores change by at most 1 when one row is added or removed (one cell of the
data's marginal moves by one; the draw is fixed), so each choice is an ``epsilon``-DP
exponential mechanism (``epsilon^2 / 8``-zCDP) and each measurement a Gaussian mechanism of
sensitivity 1.  Drawing every Gumbel key once and taking the feasible pairs in their order is
the same as running the exponential mechanism once per pair.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..base import DisjointSet
from .graphical_model import Measurement

__all__ = ["MarginalCounts", "PairPlan", "candidate_pairs", "choose_and_measure_pairs",
           "marginal_counts"]

_NOISE_SCORE = math.sqrt(2.0 / math.pi)  # E|N(0, 1)|: expected L1 error per cell, per sigma


@dataclass(frozen=True)
class PairPlan:
    """The budget of the pair step: how many pairs, the exponential mechanism's epsilon per
    choice and the Gaussian noise per measured cell (``None``: not private, exact and greedy)."""

    n_pairs: int
    epsilon: float | None
    sigma: float | None

    @classmethod
    def from_rho(cls, rho: float, n_pairs: int, select_share: float = 0.1) -> "PairPlan":
        """Split a zCDP budget ``rho`` over ``n_pairs`` choices and measurements."""
        per = rho / max(n_pairs, 1)
        return cls(n_pairs, math.sqrt(8.0 * select_share * per),
                   math.sqrt(1.0 / (2.0 * (1.0 - select_share) * per)))

    @property
    def history(self) -> tuple:
        """Accountant entries (each choice as the Gaussian of the same zCDP, ``z = 2 / eps``)."""
        if self.epsilon is None:
            return ()
        return ((2.0 / self.epsilon, 1.0, self.n_pairs), (self.sigma, 1.0, self.n_pairs))


def marginal_counts(codes: np.ndarray, clique: tuple[int, ...], sizes) -> np.ndarray:
    """Counts of each cell of the marginal of ``clique`` (flattened in C order)."""
    return _flat_counts(codes, clique, sizes).astype(np.float64)


class MarginalCounts:
    """Exact counts of marginals of the real rows' codes, by clique (a tuple of column
    positions), as float64 cells flattened in C order.

    :meth:`of_codes` counts a code matrix in memory when a clique is first asked for;
    :meth:`streamed` counts a given list of cliques in one pass over a table on disk (each
    batch of rows encoded, counted and dropped: memory holds one batch and the counts).  Both
    give the same numbers for the same rows.
    """

    def __init__(self, n_rows: int, count) -> None:
        self.n_rows = int(n_rows)
        self._count = count
        self._cache: dict[tuple, np.ndarray] = {}

    def __call__(self, clique: tuple) -> np.ndarray:
        if clique not in self._cache:
            self._cache[clique] = self._count(clique)
        return self._cache[clique]

    @classmethod
    def of_codes(cls, codes: np.ndarray, sizes) -> "MarginalCounts":
        """Counts of the marginals of ``codes`` (rows x columns), computed when asked for."""
        return cls(codes.shape[0], lambda clique: marginal_counts(codes, clique, sizes))

    @classmethod
    def streamed(cls, source, bins, cliques: list[tuple]) -> "MarginalCounts":
        """Counts of every clique in ``cliques`` from one pass over ``source`` (anything with
        ``iter_frames(columns)`` yielding DataFrames, e.g. a
        :class:`~nhssynth.table_source.TableSource`), coded by ``bins``
        (:class:`~nhssynth.encoders.binning.TableBins`).  Only those cliques can be asked for."""
        sizes = bins.sizes
        if not cliques:  # nothing to count: no pass over the rows
            return cls(len(source), lambda clique: {}[clique])
        totals = {c: np.zeros(math.prod(sizes[a] for a in c), dtype=np.int64) for c in cliques}
        n_rows = 0
        for frame in source.iter_frames(bins.names):
            codes = bins.encode(frame)
            n_rows += codes.shape[0]
            for c, total in totals.items():
                total += _flat_counts(codes, c, sizes)
        return cls(n_rows, lambda clique: totals[clique].astype(np.float64))


def _flat_counts(codes: np.ndarray, clique: tuple, sizes) -> np.ndarray:
    shape = [sizes[a] for a in clique]
    flat = np.ravel_multi_index(tuple(codes[:, a] for a in clique), shape)
    return np.bincount(flat, minlength=math.prod(shape))


def candidate_pairs(sizes, max_cells: int = 2_500) -> list[tuple[int, int]]:
    """The pairs of columns :func:`choose_and_measure_pairs` may choose: those with at most
    ``max_cells`` cells."""
    return [c for c in itertools.combinations(range(len(sizes)), 2)
            if sizes[c[0]] * sizes[c[1]] <= max_cells]


def choose_and_measure_pairs(real: "np.ndarray | MarginalCounts", draw: np.ndarray, sizes,
                             plan: PairPlan, rng, max_cells: int = 2_500) -> list[Measurement]:
    """Choose ``plan.n_pairs`` pairs where ``draw`` is furthest from ``real`` and measure them.

    Parameters
    ----------
    real : ndarray of int, shape (n_rows, n_columns), or MarginalCounts
        Codes of the real rows, or their marginal counts (which must hold every pair of
        :func:`candidate_pairs`: a table counted on disk).
    draw : ndarray of int, shape (n_draws, n_columns)
        Codes of the generator's draw.
    sizes : sequence of int
        Codes per column.
    plan : PairPlan
    rng : numpy Generator (or an object with ``normal`` and ``gumbel``)
        Noise of the choices and measurements.
    max_cells : int
        Pairs with more cells are not candidates.

    Returns
    -------
    list of Measurement
        The noisy two-way marginals (exact when ``plan.epsilon`` is None), in choice order.
    """
    d = len(sizes)
    candidates = candidate_pairs(sizes, max_cells)
    if not candidates or plan.n_pairs < 1:
        return []
    if not isinstance(real, MarginalCounts):
        real = MarginalCounts.of_codes(real, sizes)
    scale = real.n_rows / max(len(draw), 1)
    penalty = _NOISE_SCORE * (plan.sigma or 0.0)
    scores = np.array([np.abs(real(c) - scale * marginal_counts(draw, c, sizes)).sum()
                       - penalty * sizes[c[0]] * sizes[c[1]] for c in candidates])
    keys = scores if plan.epsilon is None else \
        plan.epsilon * scores / 2.0 + rng.gumbel(size=scores.size)
    forest = DisjointSet(range(d))
    out: list[Measurement] = []
    for i in np.argsort(-keys, kind="stable"):
        a, b = candidates[i]
        if not forest.union(a, b):  # would close a cycle
            continue
        y = real((a, b))
        if plan.sigma is not None:
            y = y + rng.normal(0.0, plan.sigma, size=y.size)
        out.append(Measurement((a, b), y, plan.sigma or 1.0))
        if len(out) == plan.n_pairs:
            break
    return out
