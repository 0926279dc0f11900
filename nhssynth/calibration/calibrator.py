"""MarginalCalibrator: make any generator's draws match DP marginals.

A generator trained under DP noise (a DP-SGD network, say) knows roughly which values go
together but gets each column's distribution and its strongest relationships blurred.  The
calibrator corrects both from releases that cost little budget, for any generator that can
draw rows:

1. *Targets*: the one-way histograms of the domain release and the two-way marginals measured
   where the generator was furthest from the data (:mod:`~nhssynth.calibration.selection`)
   are reconciled into one consistent set of marginals by a graphical model
   (:mod:`~nhssynth.calibration.graphical_model`).
2. *Quantile maps*: each numeric column of a draw is mapped onto its released fine histogram
   (:mod:`~nhssynth.calibration.quantile_matching`), ranks kept.
3. *Rank correlations* (when released): the numeric columns of a draw are re-ordered towards
   the DP rank correlation of the real ones (:mod:`~nhssynth.calibration.copula`), each
   column keeping its values.
4. *Raking*: a large draw is raked to the targets (:mod:`~nhssynth.calibration.raking`), and
   the factors reweight later draws: ``select`` keeps ``n`` of ``oversample * n`` candidates
   with probability proportional to their weight.

Everything after the measurements is post-processing of DP releases and of draws from the
generator: the calibrator costs only what the measurements cost.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..encoders.binning import TableBins
from ..encoders.domain import TableDomain
from .copula import RankCorrelation, recolour
from .graphical_model import Measurement, estimate
from .quantile_matching import fit_quantile_map
from .raking import rake_factors, rake_select

__all__ = ["MarginalCalibrator"]

_ESTIMATION_STEPS = 300


@dataclass
class MarginalCalibrator:
    """Targets, quantile maps and raking factors (see the module docstring).

    Build it with :meth:`from_measurements`, then :meth:`fit` it on a large draw; ``select``
    calibrates later draws.

    Attributes
    ----------
    bins : TableBins
        The codes the margins are taken on.
    margins : list of tuple of int
        Columns (positions in ``bins``) of each margin: the measured pairs, then every column.
    targets : list of ndarray
        Target probabilities of each margin's cells.
    factors : list of ndarray or None
        Raking factors (after :meth:`fit`).
    maps : dict of str to QuantileMap
        Quantile maps of the numeric columns (after :meth:`fit`).
    max_weight : float
        Cap on a row's weight relative to a typical one.
    correlation : RankCorrelation or None
        Target rank correlation of the numeric columns (None: the draws' own is kept).
    """

    bins: TableBins
    margins: list
    targets: list
    factors: list | None = None
    maps: dict = field(default_factory=dict)
    max_weight: float = 20.0
    correlation: RankCorrelation | None = None

    @classmethod
    def from_measurements(cls, bins: TableBins, domain: TableDomain, pairs: list[Measurement],
                          correlation: RankCorrelation | None = None) -> "MarginalCalibrator":
        """Consistent targets from the domain's one-way histograms and measured ``pairs``
        (and the released rank ``correlation`` of the numeric columns, if any)."""
        sizes = bins.sizes
        one_way = [Measurement((j,), counts, max(sigma, 1.0), cells)
                   for j, (cells, counts, sigma) in enumerate(bins.one_way(domain))]
        total = domain.total
        model = estimate(sizes, one_way + list(pairs), total, iterations=_ESTIMATION_STEPS)
        margins = [m.clique for m in pairs] + [(j,) for j in range(len(sizes))]
        targets = []
        for clique in margins:
            p = model.marginal(clique)
            for k, a in enumerate(clique):  # a category that was not released is never drawn
                other = bins.columns[a].other_code
                if other is not None:
                    index = [slice(None)] * p.ndim
                    index[k] = other
                    p[tuple(index)] = 0.0
            p = p.ravel()
            targets.append(p / p.sum() if p.sum() > 0 else np.full(p.size, 1.0 / p.size))
        return cls(bins, margins, targets, correlation=correlation)

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, draw: pd.DataFrame, rng: np.random.Generator) -> "MarginalCalibrator":
        """Quantile maps and raking factors from a large ``draw`` of the generator."""
        self.maps = {}
        for b in self.bins.columns:
            if b.fine_edges is None or b.meta.kind == "datetime":
                continue
            values = pd.to_numeric(draw[b.name], errors="coerce").to_numpy(dtype=np.float64)
            qmap = fit_quantile_map(values[np.isfinite(values)], b.fine_edges, b.fine_counts)
            if qmap is not None:
                self.maps[b.name] = qmap
        mapped = self.map_values(draw, rng)
        self.factors = rake_factors(self._keys(mapped), self.targets, max_weight=self.max_weight)
        return self

    def map_values(self, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """``frame`` with each numeric column moved onto its released histogram and, when a
        rank correlation was released, the numeric columns re-ordered towards it (a copy)."""
        out = frame.copy()
        for name, qmap in self.maps.items():
            s = out[name]
            mask = s.notna().to_numpy()
            if not mask.any():
                continue
            values = pd.to_numeric(s[mask]).to_numpy(dtype=np.float64)
            b = self.bins.columns[self.bins.names.index(name)]
            mapped = b.restore(qmap(values, rng), np.zeros(values.size, dtype=bool))
            column = s.to_numpy(copy=True) if not isinstance(s.dtype, pd.api.extensions.ExtensionDtype) \
                else s.array.copy()
            column[mask] = mapped
            out[name] = pd.Series(column, index=s.index, dtype=s.dtype)
        if self.correlation is not None:
            out = recolour(out, self.correlation, rng)
        return out

    def _keys(self, frame: pd.DataFrame) -> np.ndarray:
        codes = self.bins.encode(frame)
        sizes = self.bins.sizes
        keys = [np.ravel_multi_index(tuple(codes[:, a] for a in m), [sizes[a] for a in m])
                for m in self.margins]
        return np.stack(keys, axis=1)

    # -- calibrating draws --------------------------------------------------------------------
    def select(self, candidates: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` rows of ``candidates`` (quantile-mapped), chosen by their raking weight."""
        if self.factors is None:
            raise RuntimeError("MarginalCalibrator.select before fit.")
        mapped = self.map_values(candidates, rng)
        keep = rake_select(self._keys(mapped), self.factors, n, rng, self.max_weight)
        return mapped.iloc[rng.permutation(keep)].reset_index(drop=True)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """The measured pairs, by column name."""
        names = self.bins.names
        return [tuple(names[a] for a in m) for m in self.margins if len(m) == 2]

    @staticmethod
    def candidates_needed(n: int, oversample: float) -> int:
        return int(math.ceil(oversample * n))
