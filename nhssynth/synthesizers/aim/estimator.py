"""AIMSynthesizer: select, measure and generate over noisy marginals (the AIM algorithm).

The table is seen through discrete codes (:class:`~nhssynth.encoders.binning.TableBins`:
categories as released, numeric columns in runs of equal released mass).  The fit:

1. **Domain release** (:func:`~nhssynth.encoders.domain.release_domain`): category sets, bounds
   and fine one-way histograms of every column under DP; the one-way counts, summed onto the
   codes, are the first measurements.
2. **Rounds** (McKenna et al., "AIM: an adaptive and iterative mechanism for differentially
   private synthetic data", VLDB 2022): each round the exponential mechanism picks the two-way
   (or three-way) marginal on which the current model is furthest from the data, corrected by
   the noise its measurement would carry; the marginal is measured with Gaussian noise; the
   model is re-estimated.  When a measurement barely moves the model, later rounds get twice
   the noise budget (fewer, more precise measurements).  Marginals whose addition would make
   the model larger than ``max_model_cells`` are never chosen.
3. **Estimation** (:mod:`~nhssynth.calibration.graphical_model`): a graphical model whose
   marginals best fit every noisy measurement (Private-PGM); post-processing.
4. **Sampling**: codes drawn from the model, numeric codes de-quantised from the released fine
   histograms, then cast back to the column dtypes.

Privacy: the domain release, every Gaussian measurement and every exponential-mechanism
selection are composed in zCDP (the exponential mechanism with epsilon ``e`` is ``e^2 / 8``-zCDP)
and converted to ``(epsilon, delta)``; releasing data-dependent category sets adds a threshold
delta.  The number of rows is treated as public.
"""
from __future__ import annotations

import itertools
import math
import os
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..._rng import spawn
from ...base import DisjointSet, check_n_samples
from ...encoders.binning import TableBins
from ...encoders.domain import auto_domain_fraction, release_domain, smallest_epsilon_hint
from ...exceptions import PrivacyBudgetError, SamplingError
from ...table_source import TableSource
from ...privacy.accounting import zcdp_rho_for
from ...privacy.report import PrivacyReport
from .._base import BaseSynthesizer, sample_to_path
from ...sampling_io import DEFAULT_CHUNK_SIZE
from .._constrained import joint_accepts, joint_constraints, publish_fit
from ...calibration.selection import MarginalCounts
from ...calibration.graphical_model import (GraphicalModel, Measurement, estimate,
                                            junction_tree_cells)

__all__ = ["AIMSynthesizer"]

_AUTO_DOMAIN_CAP = 0.6  # domain_fraction="auto": at most this share for the domain release
_SELECT_SHARE = 0.1  # of each round's budget, for choosing the marginal (AIM's alpha = 0.9)
_NOISE_SCORE = math.sqrt(2.0 / math.pi)  # E|N(0, 1)|: expected L1 error per cell, per sigma


class AIMSynthesizer(BaseSynthesizer):
    """Differentially private synthesizer over noisy two- and three-way marginals (AIM).

    The generator to use at small budgets (epsilon of 3 and below): it spends the budget on
    the marginals where the data's relationships are, chosen privately from the data, and a
    graphical model reconciles them.  See the module docstring for the algorithm and
    ``docs/model_card.md`` for measured quality.

    Parameters
    ----------
    epsilon : float or None, default=1.0
        Total privacy budget (the domain release, every selection and every measurement).
        ``None`` fits without differential privacy (exact marginals chosen greedily) and warns
        unless ``allow_non_private=True``.
    delta : float or None, default=None
        ``None`` uses ``min(1e-5, 0.1 / n_rows)``.
    metadata : Metadata, path or dict, optional
        Column kinds and public domains (declared categories and bounds cost no budget).
        Inferred from the table when None.
    domain_fraction : float or "auto", default="auto"
        Share of the budget (in zCDP) for the domain release: category sets, bounds and the
        one-way histograms that give every column its shape.  ``"auto"``:
        ``clip(d * 50**2 / (2 * rho * n**2), 0.3, 0.6)`` for ``n`` rows, ``d`` modelled
        columns and the whole budget ``rho`` (zCDP), i.e. 0.3 on tables of thousands of rows
        and up to 0.6 on tables of a few hundred, where the domain needs more
        (:func:`~nhssynth.encoders.domain.auto_domain_fraction`); the value used is
        ``domain_fraction_``.
    n_bins : int, default=16
        Codes per numeric column in the model (runs of equal released mass of its fine
        histogram; values are drawn inside a code from the fine histogram).
    degree : {2, 3}, default=2
        Largest marginal the rounds may measure.
    max_cells : int, default=10_000
        Largest number of cells of a measured marginal.
    max_model_cells : int, default=200_000
        Largest size of the model (cells of its junction tree).
    rounds : int or None, default=None
        Planned rounds (each round's budget is what is left divided by the rounds left);
        ``None`` uses ``2 * n_columns``.  Rounds stop early when the budget is spent.
    iterations : int, default=100
        Estimation steps after each round (the final model gets ten times more).
    allow_non_private : bool, default=False
        Acknowledge ``epsilon=None`` (silences the warning).
    random_state : int, RandomState, Generator or None
        Seeds the noise, the selections and the model's initial state: the same seed
        reproduces the same fit.

    Attributes
    ----------
    epsilon_, delta_ : float
        Privacy spent (``epsilon_ <= epsilon``; ``inf`` and 0 when not private).
    domain_fraction_ : float or None
        The share of the budget the domain release got (``"auto"`` resolved; None when not
        private).
    model_ : ModelState
        The fitted graphical model (sizes, measured cliques, potentials, total).
    bins_ : TableBins
        The codes of each column and how values are drawn back.
    measured_ : list of tuple of str
        The marginals measured in the rounds, in order.
    together_ : list of [str, int, int]
        ``[column, group, sign]``: numeric columns the model relates strongly (rank
        correlation of their codes >= 0.7 in a measured marginal) whose values are placed
        inside their codes together when sampling (post-processing; see
        :meth:`~nhssynth.encoders.binning.TableBins.decode`).
    metadata_ : Metadata
        The table's metadata (declared or inferred), its constraints included.
    constraints_ : ConstraintPlan
        How each declared constraint is enforced (``constraints_.summary()``: by construction
        or by rejection) and the columns of the table the model learns (``columns_out_``).
    privacy_report_ : PrivacyReport
    n_features_in_, feature_names_in_
    """

    _parameter_constraints: dict = {
        **BaseSynthesizer._parameter_constraints,
        "domain_fraction": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "n_bins": [Interval(Integral, 2, None, closed="left")],
        "degree": [Interval(Integral, 2, 3, closed="both")],
        "max_cells": [Interval(Integral, 4, None, closed="left")],
        "max_model_cells": [Interval(Integral, 16, None, closed="left")],
        "rounds": [Interval(Integral, 1, None, closed="left"), None],
        "iterations": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, epsilon: float | None = 1.0, delta: float | None = None,
                 metadata: Any = None, domain_fraction: float | str = "auto", n_bins: int = 16,
                 degree: int = 2, max_cells: int = 10_000, max_model_cells: int = 200_000,
                 rounds: int | None = None, iterations: int = 100, allow_non_private: bool = False,
                 random_state: Any = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.metadata = metadata
        self.domain_fraction = domain_fraction
        self.n_bins = n_bins
        self.degree = degree
        self.max_cells = max_cells
        self.max_model_cells = max_model_cells
        self.rounds = rounds
        self.iterations = iterations
        self.allow_non_private = allow_non_private
        self.random_state = random_state

    # ------------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the model to the table ``X``.

        Parameters
        ----------
        X : DataFrame, array-like, path or iterable of DataFrames
            The table in memory, or a table larger than memory: a Parquet file, a directory
            of Parquet files, a CSV file, an iterable of DataFrame chunks or a
            :class:`~nhssynth.TableSource`.  Out of core, the table is read one column at a
            time for the domain release and in batches of rows for the marginals (one pass),
            so memory does not grow with the rows; the fit is the same as on the DataFrame
            (same seed, same model).  Declared constraints need a DataFrame.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        frame, metadata = self._check_frame(X, out_of_core=True)
        try:
            return self._fit(frame, metadata)
        finally:
            if isinstance(frame, TableSource) and frame is not X:
                frame.close()  # the private copy of CSV rows or chunks, if one was made

    def _fit(self, frame, metadata):
        rng = spawn(self.random_state, ["domain", "rounds"])
        budget = self._make_budget(len(frame), "zcdp")
        domain = self._release_domain(frame, metadata, budget, rng["domain"])
        bins = TableBins.from_domain(domain, metadata, frame, self.n_bins)
        candidates = _candidates(bins.sizes, self.degree, self.max_cells)
        if isinstance(frame, TableSource):  # every candidate counted in one pass over the rows
            real = MarginalCounts.streamed(frame, bins, candidates)
        else:
            real = MarginalCounts.of_codes(bins.encode(frame), bins.sizes)
        one_way = [Measurement((j,), counts, max(sigma, 1.0), cells)
                   for j, (cells, counts, sigma) in enumerate(bins.one_way(domain))]
        rounds = _Rounds(self, real, candidates, bins.sizes, one_way, domain.total, budget,
                         rng["rounds"])
        model = rounds.run()
        self.bins_ = bins
        publish_fit(self, {b.name: b.labels for b in bins.columns if b.labels is not None})
        self.model_ = model.state()
        self.together_ = _moving_together(self.model_.model(), bins,
                                          [m.clique for m in rounds.measurements])
        self.measured_ = [tuple(bins.names[a] for a in m.clique) for m in rounds.measurements
                          if len(m.clique) > 1]
        rounds.record()
        self.privacy_report_ = PrivacyReport.from_budget(
            budget, epsilon_budget=self.epsilon,
            non_private_statistics=domain.non_private_statistics, notes=domain.notes,
            details={"measured": [" x ".join(m) for m in self.measured_],
                     "rounds": rounds.n_rounds})
        self.epsilon_ = self.privacy_report_.epsilon if budget is not None else math.inf
        self.delta_ = self.privacy_report_.delta if budget is not None else 0.0
        return self

    def _release_domain(self, frame, metadata, budget, rng):
        if budget is None:
            self.domain_fraction_ = None
            return release_domain(frame, metadata, rho=None)
        undeclared = any(c.kind == "categorical" and not c.has_declared_categories
                         for c in metadata)
        delta_threshold = 0.1 * budget.delta if undeclared else 0.0
        rho = zcdp_rho_for(budget.epsilon, budget.delta - delta_threshold)
        self.domain_fraction_ = self.domain_fraction if self.domain_fraction != "auto" else \
            auto_domain_fraction(len(frame), sum(c.kind != "id" for c in metadata), rho,
                                 cap=_AUTO_DOMAIN_CAP)
        try:
            domain = release_domain(frame, metadata, rho=self.domain_fraction_ * rho,
                                    delta_threshold=delta_threshold, rng=rng)
        except PrivacyBudgetError as exc:  # nothing released: name the epsilon that would
            hint = smallest_epsilon_hint(exc, budget.epsilon, budget.delta - delta_threshold)
            if not hint:
                raise
            raise PrivacyBudgetError(f"{exc}{hint}") from None
        for spend in domain.spends:
            budget.record(spend["stage"], spend["mechanism"], history=spend["history"],
                          delta_extra=spend["delta_extra"], columns=spend["columns"],
                          noise_multiplier=spend["noise_multiplier"])
        return domain

    # ------------------------------------------------------------------------------------
    def sample(self, n_samples: int, *, random_state: Any = None, conditions=None,
               path: str | os.PathLike | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
               overwrite: bool = False):
        """Draw ``n_samples`` synthetic rows.

        The rows come back as a DataFrame with the training table's columns and dtypes (an
        array when ``fit`` received one).  Every row satisfies the metadata's constraints.

        Parameters
        ----------
        n_samples : int
        random_state : int, RandomState, Generator or None
            Seed of this draw; the estimator is not changed.
        conditions : dict, optional
            Column -> value, list of values or ``(low, high)`` range: every row returned
            meets them, drawn from the model's conditional distribution.  The graphical model
            is conditioned on them (evidence on the columns' codes), so a rare condition costs
            about as much as a plain draw.
        path : str or os.PathLike, optional
            Write the rows to this Parquet file instead of returning them, ``chunk_size`` rows
            at a time (memory holds one chunk, whatever ``n_samples``), and return the path:
            :func:`nhssynth.sample_to_parquet` (which says how chunks are seeded).  Needs
            pyarrow.
        chunk_size : int, default 250_000
            Rows per chunk when ``path`` is given.
        overwrite : bool, default False
            Replace ``path`` if it exists (otherwise :class:`FileExistsError`).

        Returns
        -------
        DataFrame, ndarray or pathlib.Path
            The rows; the Parquet file's path when ``path`` is given.

        Raises
        ------
        SamplingError
            The conditions rule out every row of the model, or (rarely) too many draws break
            a constraint enforced by rejection.
        """
        check_is_fitted(self, "model_")
        n_samples = check_n_samples(n_samples)
        if path is not None:
            return sample_to_path(self, n_samples, path, random_state=random_state,
                                  conditions=conditions, chunk_size=chunk_size,
                                  overwrite=overwrite)
        return self._as_input_kind(self._sample_table(n_samples, random_state, conditions))

    def _draw(self, n: int, random_state: Any, narrow) -> pd.DataFrame:
        rng = spawn(random_state, ["codes", "values"])
        model = self.model_.model()
        if narrow is not None:
            model = model.condition(self._evidence(narrow))
            if model is None:
                raise SamplingError(f"no row of the fitted model meets the conditions "
                                    f"({narrow.describe()}): the released marginals give them "
                                    "probability 0. Relax the conditions.")
        codes = _resolve_other(model, model.sample(n, rng["codes"]), self.bins_, rng["codes"])
        return self.bins_.decode(codes, rng["values"], getattr(self, "together_", None))

    def _draw_given(self, rows: pd.DataFrame, random_state: Any) -> pd.DataFrame:
        """Rows of the learnt table, each drawn from the model given its known values: one-hot
        evidence on the codes of known columns, and on a combination or one-hot group's
        column the groups consistent with the known members (one conditioned model per
        distinct evidence)."""
        rng = spawn(random_state, ["codes", "values"])
        model = self.model_.model()
        index = {b.name: j for j, b in enumerate(self.bins_.columns)}
        given = [index[name] for name in rows.columns if name in index]
        groups = [(index[c.joint_name], c) for c in joint_constraints(self.constraints_)
                  if c.joint_name in index and set(c.columns) & set(rows.columns)]
        if not given and not groups:
            codes = _resolve_other(model, model.sample(len(rows), rng["codes"]), self.bins_,
                                   rng["codes"])
            return self.bins_.decode(codes, rng["values"], getattr(self, "together_", None))
        keys = [self.bins_.columns[j].encode(rows[self.bins_.columns[j].name]) for j in given]
        for _, c in groups:
            members = [m for m in c.columns if m in rows.columns]
            keys.append(pd.factorize(pd.Series(list(zip(*(rows[m].astype(object)
                                                           for m in members)))))[0])
        key = np.stack(keys, axis=1) if keys else np.zeros((len(rows), 0), dtype=np.int64)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        codes = np.empty((len(rows), len(self.bins_.columns)), dtype=np.int64)
        for g, at in enumerate(first):
            idx = np.flatnonzero(inverse.ravel() == g)
            row = rows.iloc[at]
            evidence = {j: np.eye(self.bins_.columns[j].size)[key[at, k]]
                        for k, j in enumerate(given)}
            for j, c in groups:
                b = self.bins_.columns[j]
                _, ok = joint_accepts(
                    c, self.constraints_,
                    lambda name, values: _equals(values, row[name]) if name in row.index
                    else np.ones(len(values), dtype=bool), categories=list(b.labels))
                evidence[j] = np.concatenate([ok, np.zeros(b.size - len(ok))]).astype(float)
            conditioned = model.condition(evidence)
            if conditioned is None:
                raise SamplingError(self._impossible(model, given, key[at, :len(given)], row))
            codes[idx] = _resolve_other(conditioned, conditioned.sample(idx.size, rng["codes"]),
                                        self.bins_, rng["codes"], skip=given)
        return self.bins_.decode(codes, rng["values"], getattr(self, "together_", None))

    def _impossible(self, model, given, combo, row) -> str:
        for j, c in zip(given, combo):
            name = self.bins_.columns[j].name
            if model.marginal([j])[c] <= 0:
                return (f"known column {name!r}: the value {row[name]!r} was not released by the "
                        "model (a category too rare to pass the DP threshold, or outside the "
                        "released range), so no row can be drawn given it.")
        return (f"the known values {row.to_dict()} never occur together under the model; no row "
                "can be drawn given them.")

    def _evidence(self, narrow) -> dict[int, np.ndarray]:
        """Per conditioned column, 1 for each code that can hold an accepted value, else 0.
        Rows drawn from a partly accepted numeric bin are checked again by the caller, so the
        result is the model's exact conditional (rejection within the evidence)."""
        weights = {}
        for j, b in enumerate(self.bins_.columns):
            cond = narrow.get(b.name)
            if cond is None:
                continue
            w = np.zeros(b.size)
            if b.labels is not None:
                labels = pd.Series(b.labels, dtype=object)
                w[:b.n_values] = narrow.accepts(b.name, labels, _AnyKind(cond.kind))
            else:
                w[:b.n_values] = _bins_meeting(b.coarse_edges, cond)
            if b.missing_code is not None and None in (cond.values if cond.op == "in" else ()):
                w[b.missing_code] = 1.0
            weights[j] = w
        return weights

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags


class _Rounds:
    """The select-measure-estimate loop of one fit."""

    def __init__(self, est: AIMSynthesizer, real, candidates: list[tuple], sizes: list[int],
                 one_way: list[Measurement], total: float, budget, rng: np.random.Generator):
        self.est, self.sizes = est, sizes
        self._real = real  # clique -> the data's exact counts (never stored after the fit)
        self.candidates = candidates
        self.measurements = list(one_way)
        self.total, self.budget, self.rng = total, budget, rng
        self.gaussian: list[float] = []  # noise multipliers of the round measurements
        self.selection: list[float] = []  # epsilons of the exponential mechanism
        self.n_rounds = 0

    def run(self) -> GraphicalModel:
        est = self.est
        model = estimate(self.sizes, self.measurements, self.total, iterations=est.iterations)
        if not self.candidates:
            return model
        private = self.budget is not None
        planned = est.rounds or 2 * len(self.sizes)
        if private:
            rho_left = self.budget.remaining_rho() * (1.0 - 1e-6)  # float slack: never over
            rho_round = rho_left / planned
            sigma, eps = _round_noise(rho_round)
        else:
            rho_left, sigma, eps = math.inf, 1.0, math.inf
        while True:
            if private:
                cost = 1.0 / (2 * sigma ** 2) + eps ** 2 / 8.0
                if rho_left - cost < 1e-12 * rho_left or rho_left < 2 * cost:
                    sigma, eps = _round_noise(rho_left)  # the last round takes what is left
                    cost = rho_left
            elif self.n_rounds >= planned:
                break
            chosen = self._select(model, sigma, eps)
            if chosen is None:
                break
            shape = [self.sizes[a] for a in chosen]
            y = self._real(chosen)
            if private:
                y = y + self.rng.normal(0.0, sigma, size=y.size)
                self.gaussian.append(sigma)
                self.selection.append(eps)
                rho_left -= cost
            before = model.marginal(chosen).ravel()
            self.measurements.append(Measurement(chosen, y, sigma))
            model = estimate(self.sizes, self.measurements, self.total,
                             iterations=est.iterations, warm_start=model)
            self.n_rounds += 1
            moved = np.abs(model.marginal(chosen).ravel() - before).sum()
            if private and moved <= _NOISE_SCORE * sigma * math.prod(shape):
                sigma, eps = sigma / 2.0, eps * 2.0  # the model barely moved: spend more per round
            if private and rho_left <= 1e-12:
                break
        return estimate(self.sizes, self.measurements, self.total,
                        iterations=10 * est.iterations, warm_start=model)

    def _select(self, model: GraphicalModel, sigma: float, eps: float) -> tuple | None:
        """The exponential mechanism over the candidates that keep the model small enough
        (Gumbel-max: the first feasible candidate in the order of noisy scores)."""
        measured = [m.clique for m in self.measurements]
        fitted = model.marginals(self.candidates)
        scores = np.array([np.abs(self._real(c) - m.ravel()).sum()
                           - _NOISE_SCORE * sigma * math.prod(self.sizes[a] for a in c)
                           for c, m in zip(self.candidates, fitted)])
        if math.isfinite(eps):
            # sensitivity 1: one row moves one cell of the data's marginal by one
            keys = eps * scores / 2.0 + self.rng.gumbel(size=scores.size)
        else:
            keys = scores
        for i in np.argsort(-keys, kind="stable"):
            c = self.candidates[i]
            if c in measured and not math.isfinite(eps):
                continue
            if junction_tree_cells(self.sizes, measured + [c]) <= self.est.max_model_cells:
                return c
        return None

    def record(self) -> None:
        if self.budget is None or not self.gaussian:
            return
        self.budget.record("rounds: selection", f"exponential mechanism choosing {self.n_rounds} "
                           "marginals (each counted as the Gaussian of the same zCDP)",
                           history=tuple((2.0 / e, 1.0, 1) for e in self.selection))
        self.budget.record("rounds: measurement", f"Gaussian noisy counts of {self.n_rounds} "
                           "chosen marginals", history=tuple((s, 1.0, 1) for s in self.gaussian))


_TOGETHER = 0.7  # rank correlation of two numeric columns' codes in the model to move them together


def _moving_together(model, bins: TableBins, cliques: list[tuple]) -> list[list]:
    """Numeric columns whose values are placed inside their codes together (one shared uniform,
    see :meth:`~nhssynth.encoders.binning.TableBins.decode`): pairs of a measured marginal whose
    codes the fitted model relates with a rank correlation of at least ``_TOGETHER`` in
    absolute value, joined strongest first into a forest; each column's sign is that of its
    path to the group's first column.  Drawn independently inside a cell, a relationship the
    codes carry is diluted by the spread within each code (SUPPORT2's surv2m x surv6m,
    r = 0.96, came out at 0.79).  Post-processing of the fitted model: no privacy cost.
    Returns ``[name, group, sign]`` triples."""
    numeric = [j for j, b in enumerate(bins.columns) if b.labels is None and b.n_values > 1]
    pairs = {tuple(sorted(p)) for c in cliques for p in itertools.combinations(c, 2)
             if p[0] in numeric and p[1] in numeric}
    links = []
    for i, j in sorted(pairs):
        joint = np.asarray(model.marginal((i, j)), dtype=np.float64)
        joint = np.clip(joint[:bins.columns[i].n_values, :bins.columns[j].n_values], 0.0, None)
        if joint.sum() <= 0:
            continue
        joint = joint / joint.sum()
        scores = []
        for p in (joint.sum(axis=1), joint.sum(axis=0)):
            s = np.cumsum(p) - 0.5 * p  # mid-ranks
            scores.append((s - float(p @ s), p))
        (a, pa), (b, pb) = scores
        var = float(pa @ (a * a)) * float(pb @ (b * b))
        if var <= 0:
            continue
        rho = float(a @ joint @ b) / math.sqrt(var)
        if abs(rho) >= _TOGETHER:
            links.append((abs(rho), i, j, 1 if rho > 0 else -1))
    forest = DisjointSet(numeric)
    adjacent: dict[int, list] = {}
    for _, i, j, sign in sorted(links, reverse=True):
        if forest.union(i, j):
            adjacent.setdefault(i, []).append((j, sign))
            adjacent.setdefault(j, []).append((i, sign))
    out, seen = [], set()
    for root in sorted(adjacent):
        if root in seen:
            continue
        stack = [(root, 1)]
        seen.add(root)
        while stack:
            node, sign = stack.pop()
            out.append([bins.columns[node].name, int(root), int(sign)])
            for other, link in adjacent[node]:
                if other not in seen:
                    seen.add(other)
                    stack.append((other, sign * link))
    return out


def _candidates(sizes: list[int], degree: int, max_cells: int) -> list[tuple]:
    """The marginals the rounds may measure: every set of 2..``degree`` columns with at most
    ``max_cells`` cells."""
    return [c for k in range(2, degree + 1) for c in itertools.combinations(range(len(sizes)), k)
            if math.prod(sizes[a] for a in c) <= max_cells]


def _round_noise(rho: float) -> tuple[float, float]:
    """Measurement noise and selection epsilon of a round given its zCDP budget."""
    if rho <= 0:
        raise PrivacyBudgetError("no budget is left for the marginal rounds; raise epsilon or "
                                 "lower domain_fraction.")
    sigma = math.sqrt(1.0 / (2.0 * (1.0 - _SELECT_SHARE) * rho))
    eps = math.sqrt(8.0 * _SELECT_SHARE * rho)
    return sigma, eps


def _equals(values: pd.Series, value: Any) -> np.ndarray:
    """Where ``values`` equal ``value`` (missing equals missing)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return values.isna().to_numpy()
    return np.array([v == value for v in values.astype(object)], dtype=bool)


class _AnyKind:
    """Column metadata stand-in for :meth:`Conditions.accepts` on category labels."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


def _bins_meeting(edges: np.ndarray, cond) -> np.ndarray:
    """1 for each coarse bin ``[edges[i], edges[i+1]]`` that holds a value the condition
    accepts (datetimes: edges and conditions in ns)."""
    left, right = edges[:-1], edges[1:]
    if cond.op == "range":
        lo, hi = cond.values
        lo = -np.inf if lo is None else (float(lo.as_unit("ns").value) if cond.kind == "datetime"
                                         else float(lo))
        hi = np.inf if hi is None else (float(hi.as_unit("ns").value) if cond.kind == "datetime"
                                        else float(hi))
        return ((right >= lo) & (left <= hi)).astype(np.float64)
    hit = np.zeros(left.size)
    for v in cond.values:
        if v is None:
            continue
        x = float(v.as_unit("ns").value) if cond.kind == "datetime" else float(v)
        hit[(left <= x) & (x <= right)] = 1.0
    return hit


def _resolve_other(model: GraphicalModel, codes: np.ndarray, bins: TableBins,
                   rng: np.random.Generator, skip=()) -> np.ndarray:
    """``codes`` with every "other" code (a category too rare to be released) redrawn from
    the column's conditional given the rest of its row, over the released values.

    The model keeps the rows of unreleased categories as one "other" cell, so the rest of
    each row follows the real joint; only the value that cannot be generated is replaced.
    Conditioning the whole model on "not other" instead shifted every column related to the
    unreleased mass: covid_testing at eps=10 with 148 of 831 first names released (60 % of the
    rows under "other") came out 95 % female (real 50 %), because the released names are
    mostly the common female ones.  Columns in ``skip`` (known values) are left as they are."""
    for j, b in enumerate(bins.columns):
        if b.other_code is None or j in skip:
            continue
        rows = np.flatnonzero(codes[:, j] == b.other_code)
        allowed = np.zeros(b.size, dtype=bool)
        allowed[:b.n_values] = True
        model.resample(codes, j, rows, allowed, rng)
    return codes
