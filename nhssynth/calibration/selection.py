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

from .graphical_model import Measurement

__all__ = ["PairPlan", "choose_and_measure_pairs", "marginal_counts"]

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
    shape = [sizes[a] for a in clique]
    flat = np.ravel_multi_index(tuple(codes[:, a] for a in clique), shape)
    return np.bincount(flat, minlength=math.prod(shape)).astype(np.float64)


def choose_and_measure_pairs(real: np.ndarray, draw: np.ndarray, sizes, plan: PairPlan, rng,
                             max_cells: int = 2_500) -> list[Measurement]:
    """Choose ``plan.n_pairs`` pairs where ``draw`` is furthest from ``real`` and measure them.

    Parameters
    ----------
    real, draw : ndarray of int, shape (n_rows, n_columns)
        Codes of the real rows and of the generator's draw.
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
    d = real.shape[1]
    candidates = [c for c in itertools.combinations(range(d), 2)
                  if sizes[c[0]] * sizes[c[1]] <= max_cells]
    if not candidates or plan.n_pairs < 1:
        return []
    scale = len(real) / max(len(draw), 1)
    penalty = _NOISE_SCORE * (plan.sigma or 0.0)
    scores = np.array([np.abs(marginal_counts(real, c, sizes) - scale * marginal_counts(draw, c, sizes)).sum()
                       - penalty * sizes[c[0]] * sizes[c[1]] for c in candidates])
    keys = scores if plan.epsilon is None else \
        plan.epsilon * scores / 2.0 + rng.gumbel(size=scores.size)
    root = list(range(d))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    out: list[Measurement] = []
    for i in np.argsort(-keys, kind="stable"):
        a, b = candidates[i]
        ra, rb = find(a), find(b)
        if ra == rb:  # would close a cycle
            continue
        root[ra] = rb
        y = marginal_counts(real, (a, b), sizes)
        if plan.sigma is not None:
            y = y + rng.normal(0.0, plan.sigma, size=y.size)
        out.append(Measurement((a, b), y, plan.sigma or 1.0))
        if len(out) == plan.n_pairs:
            break
    return out
