"""What each column can hold and how its values are spread: the domain release.

Every generator needs, per column, a *domain* -- the category list of a categorical column, the
bounds of a numeric or datetime one -- and most need its one-way distribution: encoders fit
their mixtures to it, calibration rakes to it, marginal-based generators start from it.
:func:`release_domain` computes all of it in one place, for every generator, in one of two
modes:

``private`` (differential privacy)
    Declared categories and bounds are public and used as they are.  Everything else is
    released by Gaussian mechanisms on histograms (each row adds one count to each column's
    histogram, so every stage is one Gaussian mechanism over all its columns, each column with
    its own noise level, accounted as the single mechanism they form):

    * stage A, *what exists*: the counts of every observed value of each undeclared categorical
      column (a value is released only when its noisy count clears a threshold, so a value
      held by one person is released with probability below a share of delta), the counts of
      declared categorical and boolean columns, and counts in data-independent signed
      power-of-two bins of each numeric column without declared bounds.  The bounds grow from
      the fullest bin outwards through contiguous bins that clear the noise (and over thin
      tails that show only in a window's sum), so a lone noisy bin far from the data can never
      stretch them.  When no single bin clears the noise, a second look at runs of 2, 4 and 8
      adjacent bins (post-processing of the same counts) gives a wider but sane range; when
      that fails too, the column is *withheld* (output as missing) and the report says so.
      A categorical column none of whose values clears the threshold is withheld the same way.
    * stages B and C, *where the mass is*: a histogram of every numeric column between its
      bounds (whole-integer bins for integer columns of a short range), and a second one
      zoomed onto the occupied range when the first puts the bulk in a few bins.  The released
      support is cropped to the data: mass that the noise explains is dropped at the ends (at
      most 3 % of the column) and, without that cap, far from the bins that clear the noise
      (the report notes it when it is more than 3 %), so a sample never spreads noise mass
      over bins as wide as the data's whole range.

    The noise levels follow from the budget the caller hands over (in zCDP units, ``rho``) and
    from what each statistic needs: categorical thresholds low enough that a category holding
    ``max(2 % of the rows, 150)`` rows is released with probability about 0.999, when the
    budget allows (at most ``max_category_share`` of it), power-of-two bounds from a small
    share, and the rest for the histograms.  The number of rows is treated as public.

``exact`` (not private)
    The same statistics read from the rows without noise, for non-private fits; every one of
    them is listed in :attr:`TableDomain.non_private_statistics`.

Values in the numeric scale: datetimes are nanoseconds since the epoch (UTC).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ..exceptions import PrivacyBudgetError, PrivacyWarning
from ..metadata import ColumnMetadata, Metadata
from ..privacy.accounting import zcdp_epsilon, zcdp_rho_for
from ..privacy.mechanisms import (histogram_edges, log_bin_edges, coarse_counts, project_counts,
                                  search_bounds, spread_beyond, zoom_range)

__all__ = ["ColumnDomain", "TableDomain", "release_domain", "auto_domain_fraction", "column_to_float", "smallest_epsilon_hint",
           "CATEGORY_TARGET_ROWS", "data_statistics", "public_metadata", "impute_from_domain"]

CATEGORY_TARGET_ROWS = 150  # a category this common (or 2% of the rows) should be released
_CATEGORY_SHARE = 0.02
_RELEASE_CONFIDENCE = 3.1  # standard deviations: P(a target category is missed) ~ 1e-3
_BOUNDS_SHARE = 0.25  # of the domain budget (after categories), at most, for the bounds
_MAX_CATEGORY_SHARE = 0.6  # of the domain budget, at most, for the categorical thresholds
_CATEGORY_FLOOR = 0.5  # of an even share per release, at least, for the categorical thresholds
_SMALL_RATIO = 16.0  # rows per noise standard deviation of the range search below which ...
_SMALL_BOUNDS_SHARE = 0.65  # ... the range search gets this share of what is left
_N_BINS = 64


def column_to_float(series: pd.Series, col: ColumnMetadata) -> np.ndarray:
    """Non-missing values of a numeric or datetime column as float64 (datetimes: ns since epoch)."""
    s = series.dropna()
    if col.kind == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = pd.to_datetime(s, format=col.datetime_format)
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return s.astype("datetime64[ns]").astype("int64").to_numpy(dtype=np.float64)
    return pd.to_numeric(s).to_numpy(dtype=np.float64)


def _declared_bounds_float(col: ColumnMetadata) -> tuple[float, float]:
    lo, hi = col.bounds()
    if col.kind == "datetime":
        def conv(t):
            t = pd.Timestamp(t)
            return float((t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t).value)
        return conv(lo), conv(hi)
    return float(lo), float(hi)


@dataclass
class ColumnDomain:
    """The released domain and one-way histogram of one column.

    Attributes
    ----------
    name, kind : str
        As in the metadata.
    nullable : bool
        Whether the last count is that of missing values.
    categories : list or None
        Categorical/boolean columns: the values that may be generated (public order).
    bounds : (float, float) or None
        Numeric/datetime columns: the range values are generated in (datetimes in ns).
    edges : ndarray or None
        Numeric/datetime columns: edges of the histogram bins over ``bounds``.
    counts : ndarray
        Released counts: one per category or bin, then missing (when ``nullable``); projected
        onto non-negative values.
    occupied : ndarray of bool or None
        Bins whose noisy count clears the noise (where a mixture may put a mode).
    sigma : float
        Noise standard deviation of each count (0 when exact).
    source : {"declared", "dp", "exact"}
        Where the domain (categories or bounds) comes from.
    withheld : bool
        Nothing about the column's values could be released at this budget: it is generated as
        missing.
    note : str or None
        What happened (a fallback, a withheld column), for the privacy report.
    """

    name: str
    kind: str
    nullable: bool
    counts: np.ndarray
    sigma: float
    source: str
    categories: list | None = None
    bounds: tuple[float, float] | None = None
    edges: np.ndarray | None = None
    occupied: np.ndarray | None = None
    withheld: bool = False
    note: str | None = None

    @property
    def value_counts(self) -> np.ndarray:
        """Counts of the values (categories or bins), without the missing count."""
        return self.counts[:-1] if self.nullable else self.counts

    @property
    def missing_count(self) -> float:
        return float(self.counts[-1]) if self.nullable else 0.0

    @property
    def centres(self) -> np.ndarray | None:
        return None if self.edges is None else 0.5 * (self.edges[1:] + self.edges[:-1])

    def probabilities(self) -> np.ndarray:
        total = self.counts.sum()
        return self.counts / total if total > 0 else np.full(self.counts.size, 1.0 / self.counts.size)


@dataclass
class TableDomain:
    """The result of :func:`release_domain`: one :class:`ColumnDomain` per modelled column.

    Attributes
    ----------
    columns : dict of str to ColumnDomain
        In metadata order (``id`` columns have none).
    total : float
        Number of rows (the mean of the released totals; exact when not private).
    private : bool
    spends : list of dict
        Ledger entries (``stage``, ``mechanism``, ``history``, ``delta_extra``, ``columns``...)
        to charge to the caller's budget.
    non_private_statistics : list of str
        Statistics read from the rows without DP (exact mode).
    """

    columns: dict[str, ColumnDomain] = field(default_factory=dict)
    total: float = 0.0
    private: bool = True
    spends: list[dict] = field(default_factory=list)
    non_private_statistics: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> ColumnDomain:
        return self.columns[name]

    def __iter__(self):
        return iter(self.columns.values())

    @property
    def withheld(self) -> list[str]:
        return [c.name for c in self if c.withheld]

    @property
    def notes(self) -> list[str]:
        return [f"{c.name}: {c.note}" for c in self if c.note]

    def encoder_domains(self, metadata: Metadata) -> dict[str, dict]:
        """The ``domains`` argument of :class:`~nhssynth.TableEncoder`: categories, bounds and the
        weighted histogram each mixture is fitted to (datetimes as timestamps)."""
        out: dict[str, dict] = {}
        for c in self:
            col = metadata[c.name]
            if c.categories is not None and c.source != "declared":
                out[c.name] = {"categories": list(c.categories)}
            if c.bounds is None:
                continue
            lo, hi = c.bounds
            if col.kind == "datetime":
                out[c.name] = {"bounds": (_to_timestamp(lo, col), _to_timestamp(hi, col))}
                continue
            weights = np.where(c.occupied, c.value_counts, 0.0) if c.occupied is not None \
                else c.value_counts.copy()
            if weights.sum() <= 0:
                weights = np.ones_like(weights)
            out[c.name] = {"bounds": (lo, hi), "gmm_values": np.clip(c.centres, lo, hi),
                           "gmm_weights": weights}
        return out


def _to_timestamp(value: float, col: ColumnMetadata) -> pd.Timestamp:
    ts = pd.Timestamp(int(round(value)))
    return ts.tz_localize("UTC").tz_convert(col.timezone) if col.timezone else ts


# --------------------------------------------------------------------------------------------
# the budget plan
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    sigma_categories: float  # undeclared categorical columns (stage A, thresholded)
    sigma_known: float  # declared categorical and boolean columns (stage A)
    sigma_bounds: float  # power-of-two bins of numeric columns without bounds (stage A)
    sigma_histograms: float  # each of stages B and C (numeric histograms)
    delta_share: float  # per undeclared categorical column: chance a unique value is released
    small: bool = False  # a small table (see _SMALL_RATIO): coarser histograms


def _plan(metadata: Metadata, n: int, rho: float, delta_threshold: float,
          max_category_share: float) -> _Plan:
    cats = [c for c in metadata if c.kind == "categorical" and not c.has_declared_categories]
    known = [c for c in metadata if c.kind == "boolean"
             or (c.kind == "categorical" and c.has_declared_categories)]
    bounded = [c for c in metadata if c.kind in ("continuous", "integer", "datetime")
               and not c.has_declared_bounds]
    hist = [c for c in metadata if c.kind in ("continuous", "integer")
            or (c.kind == "datetime" and not c.has_declared_bounds)]
    delta_share = delta_threshold / max(len(cats), 1)
    z_threshold = float(ndtri(1.0 - delta_share)) if cats else 0.0
    # what the thresholds need: a category of ``target`` rows clears 1 + sigma z_threshold
    # with _RELEASE_CONFIDENCE standard deviations to spare
    target = max(_CATEGORY_SHARE * n, CATEGORY_TARGET_ROWS)
    sigma_need = (target - 1.0) / (z_threshold + _RELEASE_CONFIDENCE) if cats else math.inf
    # ... and at least half an even share of the releases: with budget to spare (eps=10) the
    # thresholds fall with it, where the target alone kept them at ~200 rows while the
    # histograms' noise fell to 3 (covid_testing's clinics under 200 rows, 11 % of the rows,
    # were lost and their rows drawn as the common clinics, drive_thru_ind 60 % for 51 %)
    n_releases = len(cats) + len(known) + 2 * len(hist)
    rho_floor = _CATEGORY_FLOOR * rho * len(cats) / max(n_releases, 1)
    rho_cats = min(max(len(cats) / (2 * sigma_need ** 2), rho_floor), max_category_share * rho) \
        if cats else 0.0
    sigma_c = math.sqrt(len(cats) / (2 * rho_cats)) if cats else math.inf
    rest = rho - rho_cats
    # bounds need an octave holding ~5% of the rows to clear the noise: sigma about n / 60,
    # at most _BOUNDS_SHARE of what is left
    sigma_bounds_need = max(n / 60.0, 1.0)
    share, small = _BOUNDS_SHARE, False
    if bounded and n < _SMALL_RATIO * math.sqrt(len(bounded) / (2 * _BOUNDS_SHARE * rest)):
        # a small table: at the usual share even a column whose rows all fall in one
        # power-of-two bin would barely clear the noise of the range search, and a column
        # without a range is withheld whatever its histogram's budget; the range search gets
        # more (a coarse but sane histogram beats a withheld column)
        share, small = _SMALL_BOUNDS_SHARE, True
    rho_bounds = min(len(bounded) / (2 * sigma_bounds_need ** 2), share * rest) \
        if bounded else 0.0
    # stage A's known categories and stages B + C share the rest equally per release
    n_rest = len(known) + 2 * len(hist)
    per_release = (rest - rho_bounds) / n_rest if n_rest else 0.0
    sigma_b = math.sqrt(len(bounded) / (2 * rho_bounds)) if bounded else math.inf
    sigma_r = math.sqrt(1.0 / (2 * per_release)) if n_rest else math.inf
    return _Plan(sigma_c, sigma_r, sigma_b, sigma_r, delta_share, small)


# --------------------------------------------------------------------------------------------
# the release
# --------------------------------------------------------------------------------------------
AUTO_DOMAIN_FRACTION = 0.3  # the share of the budget for the domain release on large tables
_AUTO_ROWS_PER_SIGMA = 50.0  # "auto": the share that puts the noise at 1/50 of the rows ...


def auto_domain_fraction(n_rows: int, n_columns: int, rho: float, cap: float) -> float:
    """The ``domain_fraction="auto"`` share of a fit's budget for the domain release.

    ``clip(d * 50**2 / (2 * rho * n**2), 0.3, cap)``: the smallest share, at least 0.3, at
    which the noise of the domain budget split evenly over the ``d`` modelled columns,
    ``sqrt(d / (2 * share * rho))``, is at most ``n / 50`` -- so that a category or a
    power-of-two range holding a few percent of the rows clears it -- and at most ``cap``
    (the rest is the model's).  Large tables get 0.3 (every table of the quality benchmark);
    tables of a few hundred rows get up to ``cap``, where a released column beats a withheld
    one and the model's own measurements are mostly noise anyway.  Public inputs only: ``n``
    (treated as public, as everywhere in nhssynth), the column count and the budget.

    Parameters
    ----------
    n_rows, n_columns : int
    rho : float
        The whole fit's budget in zCDP.
    cap : float
        Largest share.
    """
    if not math.isfinite(rho) or rho <= 0 or n_rows <= 0:
        return AUTO_DOMAIN_FRACTION
    need = max(n_columns, 1) * _AUTO_ROWS_PER_SIGMA ** 2 / (2.0 * rho * float(n_rows) ** 2)
    return float(min(max(need, AUTO_DOMAIN_FRACTION), cap))


def release_domain(df: pd.DataFrame, metadata: Metadata, *, rho: float | None,
                   delta_threshold: float = 0.0, rng: Any = None, n_bins: int = _N_BINS,
                   max_category_share: float = _MAX_CATEGORY_SHARE) -> TableDomain:
    """Release every column's domain and one-way histogram (see the module docstring).

    Parameters
    ----------
    df : DataFrame
        The real table, validated against ``metadata``.
    metadata : Metadata
    rho : float or None
        zCDP budget of the whole release (``None``: exact, not private).
    delta_threshold : float
        Delta for releasing data-dependent category sets (the total over columns).
    rng : numpy Generator or an object with ``normal(loc, scale, size)``
        Noise source.
    n_bins : int
        Bins of the numeric histograms (integer columns of a short range get one per integer).
    max_category_share : float
        Largest share of ``rho`` the categorical thresholds may take.

    Returns
    -------
    TableDomain
    """
    if rho is None:
        return _release_exact(df, metadata, n_bins)
    if not rho > 0:
        raise PrivacyBudgetError(f"the domain release needs a positive budget, got rho={rho!r}.")
    n = len(df)
    plan = _plan(metadata, n, rho, delta_threshold, max_category_share)
    out = TableDomain(private=True)
    stage_a: list[float] = []
    totals: list[tuple[float, float, bool]] = []  # (noisy total, its variance, unbiased)
    tau = 1.0 + plan.sigma_categories * float(ndtri(1.0 - plan.delta_share)) \
        if math.isfinite(plan.sigma_categories) else math.inf
    coarse: dict[str, tuple[float, float] | None] = {}
    edges = log_bin_edges()
    n_cats = 0
    for col in metadata:
        s = df[col.name]
        if col.kind == "categorical" and not col.has_declared_categories:
            stage_a.append(plan.sigma_categories)
            n_cats += 1
            out.columns[col.name] = _release_unknown_categories(col, s, plan.sigma_categories, tau, rng)
            # the categories under the threshold are missing from this total: biased low
            totals.append((float(out.columns[col.name].counts.sum()), math.inf, False))
        elif col.kind == "boolean" or col.kind == "categorical":
            stage_a.append(plan.sigma_known)
            out.columns[col.name] = _release_known_categories(col, s, plan.sigma_known, rng)
            released = out.columns[col.name].counts
            totals.append((float(released.sum()), released.size * plan.sigma_known ** 2, True))
        elif col.kind in ("continuous", "integer", "datetime") and not col.has_declared_bounds:
            stage_a.append(plan.sigma_bounds)
            noisy = coarse_counts(column_to_float(s, col), edges) \
                + rng.normal(0.0, plan.sigma_bounds, size=len(edges) - 1)
            found = search_bounds(noisy, plan.sigma_bounds)
            if found is None:
                coarse[col.name] = None
                continue
            lo, hi = float(edges[found[0]]), float(edges[found[1] + 1])
            # a positive column whose next power-of-two bin down holds more than noise has a
            # thin tail towards zero the search could not follow (urine output 1..512 ml below
            # a bulk in the thousands): its histograms then start at 0 (post-processing)
            # (small tables: at 3 standard deviations, since a one-sigma test passes noise in
            # one column of six, and a range stretched to 0 spreads years 1959-2009 over 0-2048)
            if lo > 0 and found[0] > 0 and \
                    noisy[found[0] - 1] > plan.sigma_bounds * (_SMALL_ZERO_TAIL if plan.small else 1.0):
                lo = 0.0
            coarse[col.name] = (lo, hi)
    if stage_a:
        out.spends.append(_spend("domains", "Gaussian noisy counts of every value of each "
                                 "categorical column (released above a threshold) and of "
                                 "power-of-two bins of each numeric column without bounds",
                                 stage_a, [c.name for c in metadata if c.name in out.columns
                                           or c.name in coarse],
                                 delta_extra=plan.delta_share * n_cats))
    hist_cols = [c for c in metadata if c.kind in ("continuous", "integer")
                 or (c.kind == "datetime" and not c.has_declared_bounds)]
    if hist_cols:
        _release_histograms(df, hist_cols, coarse, plan.sigma_histograms, n_bins, rng, out, totals,
                            small=plan.small)
        out.spends.append(_spend("histograms", f"Gaussian noisy {n_bins}-bin histograms of each "
                                 "numeric column between its bounds, twice (zoomed onto the "
                                 "occupied range where that helps)",
                                 [plan.sigma_histograms] * len(hist_cols),
                                 [c.name for c in hist_cols], releases=2))
    for col in metadata:  # datetimes with declared bounds: the bounds only
        if col.kind == "datetime" and col.has_declared_bounds and col.name not in out.columns:
            lo, hi = _declared_bounds_float(col)
            out.columns[col.name] = ColumnDomain(col.name, col.kind, col.nullable, np.zeros(0), 0.0,
                                                 "declared", bounds=(lo, hi))
    out.columns = {c.name: out.columns[c.name] for c in metadata if c.name in out.columns}
    out.total = _pooled_total(totals) if totals else float(n)
    if out.columns and all(c.withheld for c in out):
        # an all-missing table is of no use to anyone: one clear way forward instead
        factor = _budget_factor_needed(metadata, n, rho, delta_threshold, max_category_share)
        exc = PrivacyBudgetError(
            f"no column's domain could be released at this budget: {n} rows are too few for "
            f"the noise ({', '.join(repr(c.name) for c in out)} would all be generated as "
            f"missing). Declare each column's categories or min/max in the metadata "
            f"(`nhssynth metadata template`; declared domains cost no budget), or raise epsilon "
            f"(the domains need roughly {factor:.0f}x the budget they got here: about "
            f"{max(math.sqrt(factor), 2.0):.0f}x the epsilon).")
        exc.budget_factor = factor  # for the generators' message: the smallest epsilon
        raise exc
    for c in out:
        if c.withheld:
            warnings.warn(f"column {c.name!r}: {c.note}", PrivacyWarning, stacklevel=2)
    return out


def _pooled_total(totals: list[tuple[float, float, bool]]) -> float:
    """The table's row count from every column's noisy total: the inverse-variance weighted
    mean of the unbiased ones (histograms, declared categories), else the plain mean (released
    category sets miss their rarer categories, so their totals run low).  Never negative."""
    if not totals:
        return 0.0
    unbiased = [(t, v) for t, v, ok in totals if ok and v > 0 and math.isfinite(v)]
    if unbiased:
        weights = np.array([1.0 / v for _, v in unbiased])
        estimate = float(np.dot(weights, [t for t, _ in unbiased]) / weights.sum())
    else:
        estimate = float(np.mean([t for t, _, _ in totals]))
    return max(estimate, 0.0)


def smallest_epsilon_hint(exc: BaseException, epsilon: float, delta: float) -> str:
    """A sentence naming about the smallest epsilon at which :func:`release_domain` releases
    some column of the table that raised ``exc`` (a :class:`PrivacyBudgetError` carrying the
    ``budget_factor`` it needed), for a generator whose whole budget is ``(epsilon, delta)``
    and whose domain release gets a fixed share of it; empty for other errors.  Data-
    independent (the factor depends on the number of rows and the metadata only)."""
    factor = getattr(exc, "budget_factor", None)
    if factor is None or not epsilon or not math.isfinite(epsilon):
        return ""
    needed = zcdp_epsilon(factor * zcdp_rho_for(epsilon, delta), delta)
    return (f" At epsilon={epsilon:g} no column of this table can be released; the smallest "
            f"epsilon that releases some (a column holding a third of the rows in one value "
            f"or power of two) is about {needed:.2g}.")


def _budget_factor_needed(metadata: Metadata, n: int, rho: float, delta_threshold: float,
                          max_category_share: float) -> float:
    """How many times ``rho`` the release needs before a column holding a third of the ``n``
    rows in one value or power-of-two bin clears its threshold with room to spare (a rough
    guide: real columns spread differently; on the small tables of the robustness sweep, 9 or
    10 fits in 10 succeed at this factor, 6 to 10 at half of it).  Data-independent: it
    depends only on ``n`` and the metadata, which are public."""
    z_core = float(ndtri(1.0 - _CORE_FALSE_HINT))
    factor = 1.0
    for _ in range(40):
        plan = _plan(metadata, n, factor * rho, delta_threshold, max_category_share)
        tau = 1.0 + plan.sigma_categories * float(ndtri(1.0 - plan.delta_share)) \
            if math.isfinite(plan.sigma_categories) else math.inf
        if min(tau, plan.sigma_bounds * z_core) < n / 3:
            return factor
        factor *= 2.0
    return factor


_CORE_FALSE_HINT = 1e-4  # about the per-bin test of the bounds search (many bins, 1e-3 overall)


def _spend(stage: str, mechanism: str, sigmas: list[float], columns: list[str], *,
           releases: int = 1, delta_extra: float = 0.0) -> dict:
    """Ledger entry of one stage: a Gaussian mechanism whose columns have noise ``sigmas`` (one
    count per row and column) is the Gaussian mechanism of noise multiplier
    ``1 / sqrt(sum 1 / sigma^2)``."""
    z = 1.0 / math.sqrt(sum(1.0 / s ** 2 for s in sigmas))
    return {"stage": f"domain release: {stage}", "mechanism": mechanism, "columns": columns,
            "history": ((z, 1.0, releases),), "delta_extra": float(delta_extra),
            "noise_multiplier": z}


def _release_unknown_categories(col: ColumnMetadata, s: pd.Series, sigma: float, tau: float,
                                rng) -> ColumnDomain:
    counts = s.value_counts(dropna=True, sort=False)
    noisy = counts.to_numpy(dtype=np.float64) + rng.normal(0.0, sigma, size=len(counts))
    keep = noisy > tau
    values = [v.item() if hasattr(v, "item") else v for v in counts.index[keep]]
    if col.ordered and col.categories is not None:
        # an ordered dtype's order is part of its type: the released subset keeps it
        rank = {v: i for i, v in enumerate(col.categories)}
        order = sorted(range(len(values)), key=lambda i: rank.get(values[i], len(rank)))
    else:  # never by frequency: sorted
        order = sorted(range(len(values)), key=lambda i: (str(type(values[i])), values[i]))
    released = [values[i] for i in order]
    kept = noisy[keep][order]
    missing = []
    if col.nullable:
        missing = [float(s.isna().sum()) + rng.normal(0.0, sigma)]
    if not released:
        note = (f"no category held enough rows to be released at this budget (threshold "
                f"{tau:.0f} rows); the column is generated as missing. Declare its categories in "
                f"the metadata (`nhssynth metadata template`), raise epsilon, or drop it.")
        return ColumnDomain(col.name, col.kind, True, np.ones(1), sigma, "dp", categories=[],
                            withheld=True, note=note)
    raw = np.concatenate([kept, missing])
    counts_out = project_counts(raw, max(float(raw.sum()), 1.0))
    note = None
    if len(released) < len(counts):
        note = (f"{len(released)} categories released (threshold {tau:.0f} rows); rarer ones are "
                f"not generated")
    return ColumnDomain(col.name, col.kind, col.nullable, counts_out, sigma, "dp",
                        categories=released, note=note)


def _release_known_categories(col: ColumnMetadata, s: pd.Series, sigma: float, rng) -> ColumnDomain:
    cats = list(col.categories) if col.categories is not None else [False, True]
    codes = pd.Categorical(s.astype(object).where(s.notna(), None), categories=cats).codes
    counts = np.bincount(np.where(codes < 0, len(cats), codes), minlength=len(cats) + 1)
    counts = counts if col.nullable else counts[:-1]
    noisy = counts.astype(np.float64) + rng.normal(0.0, sigma, size=counts.size)
    return ColumnDomain(col.name, col.kind, col.nullable,
                        project_counts(noisy, max(float(noisy.sum()), 1.0)), sigma, "declared",
                        categories=cats)


def _release_histograms(df, cols, coarse, sigma, n_bins, rng, out: TableDomain,
                        totals: list[tuple[float, float, bool]], small: bool = False) -> None:
    """Stages B and C for ``cols``; writes a ColumnDomain per column into ``out``.

    Stage B counts each column's rows in bins over its range and, beyond a range found under
    DP, in powers of two outwards (``_TAIL_OCTAVES`` each side, the last open): one count per
    row, so thin tails the power-of-two search could not see are counted with the histogram's
    smaller noise.  Stage C either zooms onto an under-resolved core (years 1995-2003 in one
    bin of 16) or measures the same bins again (the two averaged).  The released histogram is
    the range's bins plus the tail bins that clear the noise contiguously from the range,
    cropped to the support (:func:`_trim_support`)."""
    # each stage's noise is sigma * sqrt(2): a column measured twice averages to sigma
    s2 = sigma * math.sqrt(2.0)
    tau = s2 * float(ndtri(1.0 - 0.5 / max(1, len(cols) * n_bins)))  # ~0.5 false bins in all
    # Tail octaves count where they clear 2 (3 under 2,000 rows) noise standard deviations and
    # are reached from the range without crossing more than two that do not: the projection of
    # the noisy counts
    # leaves noise in empty octaves whenever the noise is large next to the rows, and values
    # drawn there would be outliers far beyond the data.  (Thin tails under two noise
    # standard deviations per octave are clipped onto the range: declare bounds to keep them.)
    # Small tables: noise is most of a bin, and a false octave as wide as the range is an
    # absurd output; the test is corrected for the octaves each column can reach (about three
    # a side), so noise alone passes it in about 1e-3 of tables.
    z_tail = max(3.0, float(ndtri(1.0 - _TAIL_FALSE / (6 * max(1, len(cols))))))
    tau_tail = (2.0 if len(df) >= 2_000 else z_tail) * s2
    # an octave beyond one that does not clear the noise needs more: about 0.2 % of the
    # reachable octaves pass 2 standard deviations by noise alone, and once the histograms
    # are projected onto a well-estimated total, such an octave keeps ~2 % of the rows
    # at values no row has (SUPPORT2's coma score 0-100 released up to 1,080)
    tau_far = max(tau_tail, _TAIL_FAR_Z * s2)
    # as many bins as the noise allows: about 4 noise standard deviations of rows per bin on
    # average (8 to n_bins), so a wide table at a small budget is not all noise
    bins_per_column = int(np.clip(len(df) / (4.0 * sigma), 8, n_bins))
    pending = []  # columns measured, projected once the pooled total is known
    for col in cols:
        values = column_to_float(df[col.name], col)
        n_missing = float(len(df) - len(values))
        if col.has_declared_bounds:
            (lo, hi), source = _declared_bounds_float(col), "declared"
        elif coarse.get(col.name) is not None:
            (lo, hi), source = coarse[col.name], "dp"
        else:
            out.columns[col.name] = ColumnDomain(
                col.name, col.kind, True, np.ones(1), s2, "dp", withheld=True,
                note="too few rows to estimate its range privately at this budget; the column "
                     "is generated as missing. Declare min and max in the metadata or raise "
                     "epsilon.")
            continue
        integer = col.kind == "integer"
        step = _grid_step(col)
        if integer:
            lo, hi = float(math.floor(lo)), float(math.ceil(hi))
        elif step is None and source == "dp" and hi > 0:
            # the range found under DP ends at a power of two, half-open: a value exactly
            # there (a probability of 1.0: SUPPORT2's prg2m, 322 rows) fell into the octave
            # beyond, as wide as the range, and was drawn anywhere in 1-2
            hi = float(np.nextafter(hi, np.inf))
        edges = histogram_edges(lo, hi, bins_per_column, step=step)
        below, above = (_octaves(edges[0], -1), _octaves(edges[-1], +1)) if source == "dp" \
            else (np.zeros(0), np.zeros(0))
        # stage B: [open, octaves below) [range bins) [octaves above, open); missing last
        noisy_b = _noisy_counts(values, np.concatenate([below, edges, above]), n_missing, s2, rng)
        k_lo, n_in = below.size, edges.size - 1
        low, inner, high = noisy_b[:k_lo + 1], noisy_b[k_lo + 1:k_lo + 1 + n_in], noisy_b[k_lo + 1 + n_in:-1]
        miss_b = noisy_b[-1]
        # rows beyond a side without tail octaves are clipped onto the range's edge bin; an
        # open-ended bin beyond tail octaves joins the outermost octave
        inner = _fold(inner, float(low.sum()) if not below.size else 0.0,
                      float(high.sum()) if not above.size else 0.0)
        low = np.concatenate([[low[0] + low[1]], low[2:]]) if below.size else np.zeros(0)
        high = np.concatenate([high[:-2], [high[-2] + high[-1]]]) if above.size else np.zeros(0)
        low_hit = _tail_hits(low[::-1], tau_tail, tau_far)[::-1]
        high_hit = _tail_hits(high, tau_tail, tau_far)
        zoom_bins = bins_per_column * (_SMALL_ZOOM_BINS if small else 1)
        zoomed = zoom_range(edges, inner, tau, (lo, hi), integer=integer, step=step,
                            n_bins=zoom_bins)
        if zoomed is None:
            noisy_c = _noisy_counts(values, edges, n_missing, s2, rng)
            again = noisy_c[1:-2]
            if source == "declared":
                again = _fold(again, noisy_c[0], noisy_c[-2])
            inner = 0.5 * (inner + again)
            missing = 0.5 * (miss_b + noisy_c[-1])
            inner_occupied = inner > tau / math.sqrt(2.0)
            inner_edges, bin_sigma = edges, sigma
            inner_zoomed = np.zeros(inner.size, dtype=bool)
        else:
            edges_c = histogram_edges(*zoomed, zoom_bins, step=step)
            noisy_c = _noisy_counts(values, edges_c, n_missing, s2, rng)
            # rows beyond the zoomed range but inside the first range: stage C's outer counts
            # less what the tail octaves that clear the noise hold (the sum of all twelve a
            # side would add their noise: on a small table, hundreds of rows that no bin held,
            # spread onto an empty bin far from the data)
            beyond = (noisy_c[0] - float(low[low_hit].sum()),
                      noisy_c[-2] - float(high[high_hit].sum()))
            (e_lo, c_lo, o_lo), (e_hi, c_hi, o_hi) = spread_beyond(edges, inner, edges_c, beyond, tau)
            # the first histogram's bins below the zoomed range, the zoomed bins, those above
            inner_edges = np.concatenate([e_lo[:-1], edges_c, e_hi[1:]])
            inner = np.concatenate([c_lo, noisy_c[1:-2], c_hi])
            inner_occupied = np.concatenate([o_lo, noisy_c[1:-2] > tau, o_hi])
            inner_zoomed = np.concatenate([np.zeros(c_lo.size, dtype=bool),
                                           np.ones(noisy_c.size - 3, dtype=bool),
                                           np.zeros(c_hi.size, dtype=bool)])
            missing = 0.5 * (miss_b + noisy_c[-1])
            bin_sigma = s2
        hist_edges = np.concatenate([below, inner_edges, above])
        noisy = np.concatenate([low, inner, high])
        occupied = np.concatenate([low_hit, inner_occupied, high_hit])
        # bins of a zoom: a run of them may be crossed by width (see _occupied_reach)
        zoomed_bins = np.concatenate([np.zeros(low.size, dtype=bool), inner_zoomed,
                                      np.zeros(high.size, dtype=bool)])
        # a zoom needs a bin of stage B to clear tau (more than the test below asks); without
        # one, the averaged histogram's noise is ``bin_sigma`` per bin
        if source == "dp" and zoomed is None \
                and float(inner.sum()) <= _CONFIRM * bin_sigma * math.sqrt(inner.size):
            # the fresh noise of stages B and C finds no rows in the range stage A found: that
            # range was noise (a chance of about 1e-3), so nothing is released for this column
            out.columns[col.name] = ColumnDomain(
                col.name, col.kind, True, np.ones(1), s2, "dp", withheld=True,
                note="too few rows to estimate its range privately at this budget (the histogram "
                     "found none in the range the first look found); the column is generated as "
                     "missing. Declare min and max in the metadata or raise epsilon.")
            continue
        raw = np.concatenate([noisy, [missing]]) if col.nullable else noisy
        # the variance of this column's total: stage B's bins (tails) at s2, the range's at
        # bin_sigma, the missing count averaged over both stages
        variance = (low.size + high.size) * s2 ** 2 + inner.size * bin_sigma ** 2 \
            + (sigma ** 2 if col.nullable else 0.0)
        totals.append((float(raw.sum()), variance, True))
        pending.append((col, source, zoomed, lo, hi, raw, noisy, occupied, low.size, high.size,
                        hist_edges, zoomed_bins, bin_sigma))
    # Every column's histogram counts the same rows, so the table's total is pooled over all
    # of them (inverse-variance weights) before any histogram is projected: with one column's
    # own noisy sum, 40 bins of noise put the total ~1,000 rows off at sigma 160, and the
    # projection took those rows from every bin alike, emptying real bins of a few hundred
    # rows (SUPPORT2's coma score lost every value but 0).  Post-processing: no privacy cost.
    pooled = _pooled_total(totals)
    for (col, source, zoomed, lo, hi, raw, noisy, occupied, n_low, n_high, hist_edges,
         zoomed_bins, bin_sigma) in pending:
        if source == "dp" and (n_low or n_high):
            # tail octaves beyond those that clear the noise contiguously from the range are
            # cut by _trim_support; their noise must not raise the projection's shift first
            # (a dozen empty octaves a side at sd 160 emptied real end values of 250-300
            # rows: SUPPORT2's num.co = 5, adls = 7)
            first, stop = _kept_tails(occupied, (n_low, n_high))
            raw = raw.copy()
            raw[:first] = 0.0
            raw[stop:noisy.size] = 0.0
        counts = project_counts(raw, max(pooled, 1.0))
        value_counts = counts[:noisy.size]
        note = None
        if source == "dp":
            # far noise mass is dropped on small tables only (under 2,000 rows, where the
            # noise is most of a bin and the absurd outputs were found); on larger tables it
            # cost real tails (load_example: 29 of 114 ranges narrowed, d.time p99 1960 ->
            # 1136 of a real 1984) and the capped rules alone were measured
            far = _trim_support(value_counts, occupied, (n_low, n_high), 2.0 * bin_sigma,
                                hist_edges if len(df) < 2_000 else None,
                                _SMALL_CORE_SHARE if small else _CORE_SHARE,
                                widths=np.where(zoomed_bins, np.diff(hist_edges), np.inf)
                                if zoomed_bins.any() else None)
            if far > _TRIM_SHARE:
                note = (f"{far:.0%} of its released histogram lay far from the bins that clear "
                        f"the noise and was no more than noise; it is not generated (declare "
                        f"min/max or raise epsilon to keep thin tails)")
        kept = np.flatnonzero(value_counts > 0)
        if source == "dp" and kept.size:  # the range is the support
            first, stop = int(kept[0]), int(kept[-1]) + 1
            counts = np.concatenate([value_counts[first:stop], counts[noisy.size:]])
            hist_edges, occupied = hist_edges[first:stop + 1], occupied[first:stop]
            lo, hi = float(hist_edges[0]), float(hist_edges[-1])
        if not occupied.any() and zoomed is not None and source == "dp":
            # the zoomed histogram has no bin clearing the noise: where its mass lies is the
            # noise's choice (macrodata's years 1959-2009 released as 1739-1763), and stage B's
            # bins that made it zoom are wider than the data by as much (1798-2055): nothing is
            # released for this column
            out.columns[col.name] = ColumnDomain(
                col.name, col.kind, True, np.ones(1), bin_sigma, "dp", withheld=True,
                note="too few rows to locate its values privately at this budget (no bin of its "
                     "zoomed histogram clears the noise); the column is generated as missing. "
                     "Declare min and max in the metadata or raise epsilon.")
            continue
        if not occupied.any():
            note = (f"no bin of its histogram clears the noise at this budget; the mixture is "
                    f"fitted to the noisy histogram over [{lo:g}, {hi:g}]. Declare min/max or "
                    f"raise epsilon.")
            occupied = counts[:occupied.size] > 0
        out.columns[col.name] = ColumnDomain(
            col.name, col.kind, col.nullable, counts, bin_sigma, source,
            bounds=(lo, hi), edges=hist_edges, occupied=occupied, note=note)


_TAIL_OCTAVES = 12
_TRIM_SHARE = 0.03  # of a column's mass, at most, trimmed from each end of its histogram
_ISLAND_SHARE = 0.25  # ... and at most this much beyond an empty bin (noise islands)
_ISLAND_REACH = 2  # empty bins between the support and a bin that clears the noise, kept
_CONFIRM = 2.0  # noise standard deviations the range's rows must show in stage B
# small tables (fewer rows than _SMALL_RATIO noise standard deviations of the range search at
# the usual share): the range search gets _SMALL_BOUNDS_SHARE of what the categories leave,
# noise far from the core is dropped whatever share the core holds, and a zoom has this many
# times the bins
_SMALL_CORE_SHARE = 0.25
_SMALL_ZOOM_BINS = 2
_SMALL_ZERO_TAIL = 3.0  # standard deviations the bin below a range needs to stretch it to 0
_CORE_SHARE = 0.5  # of a column's mass the core must hold before far noise is dropped
_TAIL_FALSE = 1e-3  # small tables: chance noise alone makes some tail octave count
_TAIL_FAR_Z = 3.5  # noise standard deviations of a tail octave beyond a gap
_ZERO_BIN = 2.0 ** -20  # the power-of-two bins around 0 end here (LOG_BIN_RANGE)


def _octaves(bound: float, side: int) -> np.ndarray:
    """Edges of ``_TAIL_OCTAVES`` powers of two beyond ``bound`` on ``side`` (-1 below, +1
    above), increasing and not touching ``bound``: towards zero when that direction crosses it
    (positive bound, below; negative bound, above), otherwise away from it.  A range that
    ends at the zero bin (the power-of-two search found only zeros on that side) continues
    with the powers of two ``2^-4 .. 2^20`` away from zero; a range ending at exactly 0 has no
    tail towards the sign it never saw."""
    if abs(bound) <= _ZERO_BIN:
        if (side > 0 and bound > 0) or (side < 0 and bound < 0):
            out = 2.0 ** np.arange(-4, 21, dtype=np.float64)
            return out if side > 0 else np.sort(-out)
        return np.zeros(0)
    k = np.arange(1, _TAIL_OCTAVES + 1, dtype=np.float64)
    if side < 0:
        out = bound / 2.0 ** k if bound > 0 else bound * 2.0 ** k
    else:
        out = bound * 2.0 ** k if bound > 0 else bound / 2.0 ** k
    return np.sort(out)


def _grid_step(col: ColumnMetadata) -> float | None:
    """The grid a numeric column's values lie on (1 for integers, 10^-d for d decimals)."""
    if col.kind == "integer":
        return 1.0
    if col.kind == "continuous" and col.decimals is not None:
        return 10.0 ** -col.decimals
    return None


def _kept_tails(occupied: np.ndarray, tails: tuple[int, int]) -> tuple[int, int]:
    """``(first, stop)``: the bins of a histogram with ``tails`` = (low, high) tail octaves
    kept by :func:`_contiguous` (the range's bins always are)."""
    n_low, n_high = tails
    first = n_low - _contiguous(occupied[:n_low][::-1]) if n_low else 0
    stop = occupied.size - n_high + _contiguous(occupied[occupied.size - n_high:]) if n_high \
        else occupied.size
    return first, stop


def _tail_hits(tail: np.ndarray, near: float, far: float) -> np.ndarray:
    """Which tail octaves (``tail`` ordered outwards from the range) clear the noise: ``near``
    for a run of them starting next to the range, ``far`` past an octave that does not."""
    hits = np.zeros(tail.size, dtype=bool)
    run = True
    for i, count in enumerate(tail):
        hits[i] = count > (near if run else far)
        run = run and bool(hits[i])
    return hits


def _contiguous(occupied: np.ndarray, max_gap: int = 2) -> int:
    """How many tail bins, from the nearest outwards, to keep: up to the last occupied bin
    reached without crossing more than ``max_gap`` unoccupied bins in a row (a lone noisy bin
    far out is never reached)."""
    keep, gap = 0, 0
    for i, hit in enumerate(occupied):
        if hit:
            keep, gap = i + 1, 0
        else:
            gap += 1
            if gap > max_gap:
                break
    return keep


def _trim_support(counts: np.ndarray, occupied: np.ndarray, tails: tuple[int, int],
                  noise: float, edges: np.ndarray | None = None,
                  core_share: float | None = None, widths: np.ndarray | None = None) -> float:
    """Zero (in place) the released counts outside the column's support: tail octaves beyond
    those that clear the noise contiguously from the range (``tails`` = numbers of low and high
    tail bins), then the mass far from the core that is no more than noise
    (:func:`_trim_far`, when ``edges`` are given), then at each end, up to the fullest bin at
    most, the run of bins whose mass is no more than noise leaves in empty bins
    (:func:`_noise_run`).  Mass of the size of the noise beyond the data is what survives the
    projection of empty bins, and values drawn there are outliers no real row has (an age of 6
    in a cohort aged 50-101, a value in the millions from an empty tail octave).
    With ``widths`` (those of a zoom's bins; ``inf`` for the others), a gap of empty zoomed
    bins narrower than the bin that clears the noise beyond it is crossed however many bins
    it holds (see :func:`_occupied_reach`).
    Post-processing.  Returns the share of the mass :func:`_trim_far` removed."""
    first, stop = _kept_tails(occupied, tails)
    counts[:first] = 0.0
    counts[stop:] = 0.0
    if counts.sum() <= 0:
        return 0.0
    far = _trim_far(counts, occupied, edges, noise, core_share) if edges is not None else 0.0
    peak = int(np.argmax(counts))
    # never past a bin that clears the noise and is reached from the fullest one through
    # short gaps: the noise run's cap (3 % of the mass) is as large as a real end category
    first = min(_noise_run(counts, noise), peak,
                peak - _occupied_reach(counts[peak::-1], occupied[peak::-1],
                                       None if widths is None else widths[peak::-1]))
    last = max(counts.size - 1 - _noise_run(counts[::-1], noise), peak,
               peak + _occupied_reach(counts[peak:], occupied[peak:],
                                      None if widths is None else widths[peak:]))
    counts[:first] = 0.0
    counts[last + 1:] = 0.0
    _drop_noise_islands(counts, peak, noise, occupied=occupied, widths=widths)
    _drop_noise_islands(counts[::-1], counts.size - 1 - peak, noise, occupied=occupied[::-1],
                        widths=None if widths is None else widths[::-1])
    return far


def _occupied_reach(counts: np.ndarray, occupied: np.ndarray,
                    widths: np.ndarray | None = None) -> int:
    """How far from ``counts[0]`` (the fullest bin) the bins that clear the noise reach,
    crossing at most ``_ISLAND_REACH`` bins in a row that do not, or (with ``widths``: those
    of a zoom's bins, ``inf`` for the others) any run of a zoom's bins no wider than
    ``_ISLAND_REACH`` times the bin that clears the noise beyond it (a bin outside the zoom is
    wider than the whole zoom): a zoomed histogram's bins are a small fraction of the first
    one's, so a thin tail beside a spike (covid_testing's ct_result: 7 % of the rows over
    14-45 beside 93 % at 45) lies dozens of the spike's bins away but closer than its own
    width.  Runs of other bins are crossed by count only (a tail octave beyond empty bins of
    the range stays cut, as before)."""
    reach, gap, gap_width = 0, 0, 0.0
    for i in range(1, counts.size):
        if occupied[i] and counts[i] > 0:
            if gap > _ISLAND_REACH and (widths is None
                                        or gap_width > _ISLAND_REACH * float(widths[i])):
                break
            reach, gap, gap_width = i, 0, 0.0
        else:
            gap += 1
            gap_width += 0.0 if widths is None else float(widths[i])
            if gap > _ISLAND_REACH and widths is None:
                break
    return reach


def _trim_far(counts: np.ndarray, occupied: np.ndarray, edges: np.ndarray,
              noise: float, core_share: float | None = None) -> float:
    """Zero (in place) the bins at each end that lie beyond the core's *envelope* while their
    mass, summed from that end, stays within what noise leaves in that many empty bins
    (:func:`_noise_run` without its cap); returns the share of the mass removed.

    The core is the run of bins that clear the noise around the fullest bin (gaps of one bin
    allowed; the fullest bin alone when it does not clear it).  The data can be as narrow as
    the core less its widest bin, so the envelope is the core widened by that much each side:
    mass beyond it that the noise explains is where a sample would turn absurd (a tail octave
    as wide as the whole range that noise made count, 57-244 sampled up to 480; years
    1935-1954 in a bin of 48 with noise bins of 48 either side, sampled from 1860).  Inside the
    envelope the capped rule applies (real thin tails are kept).  Post-processing."""
    total = float(counts.sum())
    peak = int(np.argmax(counts))
    occupied = occupied & (counts > 0)
    lo = hi = peak
    if occupied[peak]:
        while lo > 0 and (occupied[lo - 1] or (lo > 1 and occupied[lo - 2])):
            lo -= 1 if occupied[lo - 1] else 2
        while hi < counts.size - 1 and (occupied[hi + 1]
                                        or (hi < counts.size - 2 and occupied[hi + 2])):
            hi += 1 if occupied[hi + 1] else 2
    if counts[lo:hi + 1].sum() < (_CORE_SHARE if core_share is None else core_share) * total:
        # a core holding less than most of the mass is narrower than the data (rows spread
        # thinly over many bins, each under the noise): the capped rule alone applies
        return 0.0
    widths = np.diff(edges)
    reach = float(edges[hi + 1] - edges[lo]) - float(widths[lo:hi + 1].max())
    env_lo, env_hi = float(edges[lo]) - reach, float(edges[hi + 1]) + reach
    removed = 0.0
    # bins reaching beyond the envelope, from each end up to the core (never into it)
    n_below = min(int(np.searchsorted(edges[:-1], env_lo, side="left")), lo)
    n_above = min(int(counts.size - np.searchsorted(edges[1:], env_hi, side="right")),
                  counts.size - 1 - hi)
    for view, n_far in ((counts, n_below), (counts[::-1], n_above)):
        if n_far <= 0:
            continue
        cut = min(_noise_run(view, noise, capped=False), n_far)
        removed += float(view[:cut].sum())
        view[:cut] = 0.0
    return removed / total if total > 0 else 0.0


def _drop_noise_islands(counts: np.ndarray, peak: int, noise: float, max_gap: int = 0,
                        occupied: np.ndarray | None = None,
                        widths: np.ndarray | None = None) -> None:
    """Zero (in place) what lies beyond a gap of more than ``max_gap`` empty bins after
    ``peak`` when its whole mass is no more than noise leaves in that many empty bins
    (``noise`` times the root of their number) and at most ``_ISLAND_SHARE`` of the column:
    the scattered survivors of projecting empty bins, which the capped :func:`_noise_run`
    can leave when the data fill a small part of a wide range (temperatures 32-41 in a
    power-of-two range 32-64).  A second mode beyond a gap that carries more is kept, and
    the walk goes on past it; so is a bin that clears the noise (``occupied``) within
    ``_ISLAND_REACH`` bins of the gap's start: a real value next to a thin one that noise
    emptied (flchain's sample year 2003, 2.8 % of the rows, beyond 2002's 0.6 %), not the
    survivor of an empty bin; with the bins' ``widths``, so is one that clears the noise
    beyond a gap narrower than ``_ISLAND_REACH`` times its own width (:func:`_occupied_reach`)."""
    limit_share = _ISLAND_SHARE * counts.sum()
    i, gap = peak + 1, 0
    while i < counts.size:
        if counts[i] > 0:
            gap = 0
        else:
            gap += 1
            if gap > max_gap:
                rest = counts[i:]
                start = i - gap + 1  # the gap's first bin
                near = occupied is not None and bool(
                    (occupied[start:start + _ISLAND_REACH + 1] & (counts[start:start + _ISLAND_REACH + 1] > 0)).any())
                if not near and occupied is not None and widths is not None:
                    beyond = np.flatnonzero(occupied[start:] & (counts[start:] > 0))
                    if beyond.size:  # the first bin beyond the gap that clears the noise
                        j = start + int(beyond[0])
                        near = float(widths[start:j].sum()) <= _ISLAND_REACH * float(widths[j])
                # bins already cut (tails, the noise run) hold no survivors of the noise: the
                # allowance counts the bins up to the last one that holds mass (counting them
                # took SUPPORT2's coma scores 9-100, 20 % of the rows, for noise)
                held = np.flatnonzero(rest > 0)
                span = int(held[-1]) + 1 if held.size else 0
                if not near and rest.sum() <= min(noise * math.sqrt(span), limit_share):
                    rest[:] = 0.0
                    return
        i += 1


def _noise_run(counts: np.ndarray, noise: float, capped: bool = True) -> int:
    """Length of the run of bins at the start of ``counts`` whose total mass stays within what
    noise leaves in that many empty bins (``noise`` times the root of their number): it ends
    at the first bin where the mass grows faster than noise would."""
    k = np.arange(1, counts.size + 1)
    # at most _TRIM_SHARE of the mass: where the noise is as large as the bins' rows, a run of
    # real rows looks like noise too
    limit = noise * np.sqrt(k)
    if capped:
        limit = np.minimum(limit, _TRIM_SHARE * counts.sum())
    over = np.cumsum(counts) > limit
    return int(np.argmax(over)) if over.any() else counts.size


def _fold(inner: np.ndarray, below: float, above: float) -> np.ndarray:
    """Rows beyond a range moved into its edge bins (where generated values are clipped to)."""
    out = inner.copy()
    out[0] += below
    out[-1] += above
    return out


def _noisy_counts(values: np.ndarray, edges: np.ndarray, n_missing: float, std: float,
                  rng) -> np.ndarray:
    """Counts of ``values`` in ``(-inf, edges[0])``, the bins of ``edges``, ``[edges[-1],
    inf)``, then the missing count, each plus N(0, std^2): one count per row, one Gaussian
    mechanism.  The last bin of ``edges`` is closed (as ``np.histogram``'s)."""
    outer = np.concatenate([[-np.inf], edges[:-1], [np.nextafter(edges[-1], np.inf)], [np.inf]])
    counts = np.append(np.histogram(values, bins=outer)[0].astype(np.float64), n_missing)
    return counts + rng.normal(0.0, std, size=counts.size)


# --------------------------------------------------------------------------------------------
# exact (not private)
# --------------------------------------------------------------------------------------------
def _release_exact(df: pd.DataFrame, metadata: Metadata, n_bins: int) -> TableDomain:
    out = TableDomain(private=False, total=float(len(df)))
    for col in metadata:
        s = df[col.name]
        if col.kind == "categorical" or col.kind == "boolean":
            if col.kind == "categorical" and not col.has_declared_categories:
                observed = [v.item() if hasattr(v, "item") else v for v in s.dropna().unique()]
                cats = sorted(observed, key=lambda v: (str(type(v)), v))
                out.non_private_statistics.append(f"{col.name}: category set")
                source = "exact"
            else:
                cats = list(col.categories) if col.categories is not None else [False, True]
                source = "declared"
            codes = pd.Categorical(s.astype(object).where(s.notna(), None), categories=cats).codes
            counts = np.bincount(np.where(codes < 0, len(cats), codes), minlength=len(cats) + 1)
            counts = counts if col.nullable else counts[:-1]
            out.columns[col.name] = ColumnDomain(col.name, col.kind, col.nullable,
                                                 counts.astype(np.float64), 0.0, source,
                                                 categories=cats)
            out.non_private_statistics.append(f"{col.name}: one-way histogram")
        elif col.kind in ("continuous", "integer", "datetime"):
            values = column_to_float(s, col)
            if col.has_declared_bounds:
                (lo, hi), source = _declared_bounds_float(col), "declared"
            elif values.size:
                lo, hi, source = float(values.min()), float(values.max()), "exact"
                out.non_private_statistics.append(f"{col.name}: min/max")
            else:
                lo, hi, source = 0.0, 1.0, "exact"
            if col.kind == "integer":
                lo, hi = float(math.floor(lo)), float(math.ceil(hi))
            edges = _with_spikes(histogram_edges(lo, hi, n_bins, step=_grid_step(col)),
                                 values, col.kind == "integer", _grid_step(col))
            counts = np.histogram(np.clip(values, lo, hi), bins=edges)[0].astype(np.float64)
            if col.nullable:
                counts = np.append(counts, float(len(s) - len(values)))
            out.columns[col.name] = ColumnDomain(col.name, col.kind, col.nullable, counts, 0.0,
                                                 source, bounds=(lo, hi), edges=edges,
                                                 occupied=(counts[:len(edges) - 1] > 0))
            out.non_private_statistics.append(f"{col.name}: one-way histogram")
    return out


_EXACT_SPIKE_SHARE = 0.05  # of a column's values on one value: a bin of its own (exact mode)


def _with_spikes(edges: np.ndarray, values: np.ndarray, integer: bool,
                 step: float | None) -> np.ndarray:
    """``edges`` with a bin of its own around every value that holds ``_EXACT_SPIKE_SHARE``
    of the column, so a sample draws the value itself: adult's ``capital_gain`` (92 % zeros)
    was drawn evenly over its first bin, 0-1,562, and scored 0.08 of 1 on shape in
    non-private fits.  The bin is the value's grid cell (half a unit each side for integers,
    half a step for decimals), or a sliver around it.  Exact mode only."""
    if not values.size or edges[-1] <= edges[0]:
        return edges
    uniq, counts = np.unique(values, return_counts=True)
    spikes = uniq[counts >= _EXACT_SPIKE_SHARE * values.size]
    if not spikes.size:
        return edges
    if integer:
        half = np.full(spikes.size, 0.5)
    elif step is not None:
        half = np.full(spikes.size, 0.5 * step)
    else:
        half = np.maximum(np.abs(spikes), 1.0) * 1e-9
    cuts = np.concatenate([spikes - half, spikes + half])
    cuts = cuts[(cuts > edges[0]) & (cuts < edges[-1])]
    return np.unique(np.concatenate([edges, cuts]))


# --------------------------------------------------------------------------------------------
# what an encoder keeps
# --------------------------------------------------------------------------------------------
def data_statistics(metadata: Metadata) -> list[str]:
    """Statistics an encoder reads from the rows, without DP, for this metadata."""
    out = []
    for col in metadata:
        if col.kind == "categorical" and not col.has_declared_categories:
            out.append(f"{col.name}: category set")
        if col.kind in ("continuous", "integer", "datetime") and not col.has_declared_bounds:
            out.append(f"{col.name}: min/max")
        if col.kind in ("continuous", "integer", "datetime"):
            out.append(f"{col.name}: mixture fit")
        if col.missing == "impute" and col.impute_value is None and col.nullable:
            out.append(f"{col.name}: impute mean/mode")
    return out


def public_metadata(metadata: Metadata, domain: TableDomain) -> Metadata:
    """``metadata`` with every statistic read from the rows replaced by its release.

    Inferred metadata (``domain: data``) lists the categories *seen in the data* -- a value
    held by one person included.  A DP-fitted encoder must not keep (or save) them:
    categories become the released set, data-derived bounds are dropped.  Declared
    statistics are public and kept.
    """
    for col in metadata:
        if col.domain == "declared":
            continue
        changes: dict[str, Any] = {}
        if col.kind == "categorical":
            released = domain.columns[col.name].categories if col.name in domain.columns else None
            changes["categories"] = None if released is None else list(released)
        if col.kind in ("continuous", "integer", "datetime") and (col.min is not None or col.max is not None):
            changes["min"] = changes["max"] = None
        if changes:
            metadata = metadata.update(col.name, **changes)
    return metadata


def impute_from_domain(metadata: Metadata, domain: TableDomain) -> Metadata:
    """``missing="impute"`` columns without an ``impute_value`` get one from the release (the
    mean of a numeric histogram, the most common released category): post-processing."""
    for col in metadata:
        if not (col.missing == "impute" and col.nullable and col.impute_value is None):
            continue
        c = domain.columns.get(col.name)
        if c is None or c.withheld:
            raise PrivacyBudgetError(f"column {col.name!r}: missing='impute' needs an impute_value "
                                     f"in the metadata (nothing about the column could be released).")
        if c.categories is not None:
            value = c.categories[int(np.argmax(c.value_counts))]
        elif col.kind == "datetime":
            value = _to_timestamp(0.5 * (c.bounds[0] + c.bounds[1]), col)
        else:
            w = np.clip(c.value_counts, 0.0, None)
            value = float(np.average(c.centres, weights=w if w.sum() > 0 else None))
            value = round(value) if col.kind == "integer" else value
        metadata = metadata.update(col.name, impute_value=value)
    return metadata
