"""Discrete codes of a table's columns on released bins, and values back from codes.

Marginal-based generators and calibration work on a discrete view of the table: each column
becomes integer codes -- a released category, an "other" code for values whose category was
not released, a bin of a numeric or datetime column, and a code for missing values.  The bins
of a numeric column are runs of the fine histogram bins of the domain release
(:mod:`nhssynth.encoders.domain`) over its support, cut where the released mass splits evenly
and where the least variance is lost (:func:`coarse_cuts`).  Going back, a numeric code becomes a value drawn from the released fine
histogram inside its bin (*de-quantisation*: the column keeps the shape the release saw, not
one value per bin), rounded to the column's decimals and cast to its dtype.

Everything here is a function of the metadata and of the domain release: no privacy cost.
"""
from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..metadata import ColumnMetadata, Metadata
from ._base import all_missing, fresh_ids
from .categorical import restore_categories
from .domain import ColumnDomain, TableDomain, column_to_float
from .numeric import finalize_numeric

__all__ = ["mass_cuts", "variance_cuts", "coarse_cuts", "ColumnBins", "TableBins"]


def mass_cuts(counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Indices of the interior edges that split a histogram into about ``n_bins`` runs of
    equal mass (an edge ``i`` lies between bins ``i - 1`` and ``i``).

    Heavy bins (``>= 1 / n_bins`` of the mass, e.g. a spike of zeros) are fenced on both sides
    and the empty ends of the histogram get a run of their own, so neither borrows mass it
    does not have."""
    w = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    k = w.size
    if k < 2 or w.sum() <= 0:
        return np.zeros(0, dtype=np.int64)
    cdf = np.cumsum(w) / w.sum()
    picks = {int(i) + 1 for i in np.searchsorted(cdf, np.arange(1, n_bins) / n_bins - 1e-12)}
    occupied = np.flatnonzero(w > 0)
    picks |= {int(occupied[0]), int(occupied[-1]) + 1}
    heavy = np.flatnonzero(w >= w.sum() / n_bins)
    picks |= {int(i) for i in heavy} | {int(i) + 1 for i in heavy}
    return np.array(sorted(i for i in picks if 0 < i < k), dtype=np.int64)


def variance_cuts(centres: np.ndarray, counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Indices of the interior edges of the partition of a histogram into at most ``n_bins``
    runs that loses the least variance when each run is replaced by its mean (Fisher's exact
    optimal grouping, by dynamic programming over the bins).

    Equal-mass runs give a heavy tail one wide run, whose values are then paired at random
    with other columns' values -- and a correlation driven by the tail (kappa and lambda free
    light chains: 0.82) comes out near 0.5.  Variance-optimal runs split the tail instead."""
    x = np.asarray(centres, dtype=np.float64)
    w = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    k = x.size
    n_bins = min(n_bins, k)
    if k < 2 or w.sum() <= 0 or n_bins < 2:
        return np.zeros(0, dtype=np.int64)
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cx = np.concatenate([[0.0], np.cumsum(w * x)])
    cxx = np.concatenate([[0.0], np.cumsum(w * x * x)])

    def cost(i: np.ndarray, j: int) -> np.ndarray:  # weighted SSE of bins i..j-1
        sw = cw[j] - cw[i]
        sx = cx[j] - cx[i]
        return (cxx[j] - cxx[i]) - np.divide(sx * sx, sw, out=np.zeros_like(sw), where=sw > 0)

    best = np.array([cost(np.array([0]), j)[0] for j in range(k + 1)])  # one run: bins 0..j-1
    back = [np.zeros(k + 1, dtype=np.int64)]
    for _ in range(1, n_bins):
        new = np.full(k + 1, np.inf)
        arg = np.zeros(k + 1, dtype=np.int64)
        for j in range(1, k + 1):
            i = np.arange(1, j)
            if not i.size:
                new[j], arg[j] = best[j], 0
                continue
            total = best[i] + cost(i, j)
            m = int(np.argmin(total))
            new[j], arg[j] = (total[m], i[m]) if total[m] < best[j] else (best[j], 0)
        best = new
        back.append(arg)
    cuts, j = [], k
    for arg in reversed(back[1:]):
        i = int(arg[j])
        if i <= 0:
            continue
        cuts.append(i)
        j = i
    return np.array(sorted(set(cuts)), dtype=np.int64)


@dataclass(frozen=True)
class ColumnBins:
    """The codes of one column.

    Codes ``0 .. n_values - 1`` are values (categories or numeric bins), then ``other`` (a
    value whose category was not released) when present, then ``missing`` when the column is
    nullable.

    Attributes
    ----------
    meta : ColumnMetadata
    labels : list or None
        Categorical/boolean columns: the category of each value code.
    other : bool
        Whether an ``other`` code exists (a DP-released category set).
    fine_edges : ndarray or None
        Numeric/datetime columns: the fine bins of the domain release.
    fine_counts : ndarray or None
        Their released counts (for de-quantisation).
    cuts : ndarray or None
        Indices into ``fine_edges`` where a coarse bin ends and the next starts.
    bounds : (float, float) or None
    resolution : float or None
        Datetime columns: the step of the generated values (nanoseconds).
    """

    meta: ColumnMetadata
    labels: list | None = None
    other: bool = False
    fine_edges: np.ndarray | None = None
    fine_counts: np.ndarray | None = None
    cuts: np.ndarray | None = None
    bounds: tuple[float, float] | None = None
    resolution: float | None = None

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def n_values(self) -> int:
        return len(self.labels) if self.labels is not None else len(self.cuts) + 1

    @property
    def other_code(self) -> int | None:
        return self.n_values if self.other else None

    @property
    def missing_code(self) -> int | None:
        return self.n_values + int(self.other) if self.meta.nullable else None

    @property
    def size(self) -> int:
        return self.n_values + int(self.other) + int(self.meta.nullable)

    @property
    def coarse_edges(self) -> np.ndarray | None:
        """Value edges of the coarse bins (numeric/datetime)."""
        if self.fine_edges is None:
            return None
        return np.concatenate([[self.fine_edges[0]], self.fine_edges[self.cuts], [self.fine_edges[-1]]])

    # -- table -> codes -----------------------------------------------------------------------
    def encode(self, series: pd.Series) -> np.ndarray:
        mask = series.isna().to_numpy()
        codes = np.zeros(len(series), dtype=np.int64)
        if self.labels is not None:
            present = series[~mask]
            value_codes = pd.Index(self.labels, dtype=object).get_indexer(
                present.astype(object)).astype(np.int64)
            if self.other:
                value_codes = np.where(value_codes < 0, self.other_code, value_codes)
            else:  # a declared domain holds every value (validated); be safe all the same
                value_codes = np.where(value_codes < 0, 0, value_codes)
            codes[~mask] = value_codes
        else:
            values = column_to_float(series, self.meta)
            codes[~mask] = np.searchsorted(self.fine_edges[self.cuts], values, side="right")
        if self.meta.nullable:
            codes[mask] = self.missing_code
        return codes

    # -- codes -> values --------------------------------------------------------------------
    def values(self, codes: np.ndarray, rng: np.random.Generator,
               u: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Values of ``codes`` (categories, or numbers de-quantised from the fine histogram) and
        the missing mask.  ``other`` codes must have been resolved before.  ``u``: the
        uniforms that place each numeric value inside its code (see :meth:`_dequantise`)."""
        mask = codes == self.missing_code if self.meta.nullable else np.zeros(codes.size, bool)
        value_codes = np.where(mask, 0, codes)
        if self.labels is not None:
            return value_codes, mask
        return self._dequantise(value_codes, rng, u), mask

    def _dequantise(self, codes: np.ndarray, rng: np.random.Generator,
                    u: np.ndarray | None = None) -> np.ndarray:
        """A value for each code: a fine bin drawn with the released fine counts inside the
        code's run of fine bins, then a point drawn uniformly inside that bin (an integer,
        each equally likely, when the code's bins are whole integers).  Vectorised over the
        rows: one inverse-CDF lookup for all codes at once.

        With ``u`` (one uniform per row) the value is that quantile of the code's released
        histogram (the same law): columns given the same ``u`` sit at the same quantile of
        their codes, i.e. move together inside a cell, as strongly related numeric columns do
        (see :meth:`TableBins.decode`)."""
        edges = self.fine_edges
        starts = np.concatenate([[0], self.cuts]).astype(np.int64)
        stops = np.concatenate([self.cuts, [edges.size - 1]]).astype(np.int64)
        cdf, integer = self._code_tables(starts, stops)
        if u is None:
            u = rng.random(codes.size)
            fine = np.searchsorted(cdf, codes + u, side="right")
            fine = np.clip(fine, starts[codes], stops[codes] - 1)
            r = rng.random(codes.size)
        else:
            target = codes + np.clip(u, 0.0, 1.0 - 1e-12)
            fine = np.searchsorted(cdf, target, side="right")
            fine = np.clip(fine, starts[codes], stops[codes] - 1)
            below = np.where(fine > starts[codes], cdf[np.maximum(fine - 1, 0)],
                             codes.astype(np.float64))
            span = cdf[fine] - below
            r = np.clip(np.divide(target - below, span, out=np.full(codes.size, 0.5),
                                  where=span > 0), 0.0, 1.0 - 1e-12)
        left, right = edges[fine], edges[fine + 1]
        out = left + r * (right - left)
        whole = integer[codes]
        if whole.any():
            first = np.ceil(left[whole])
            count = np.maximum(np.floor(right[whole] - 1e-9) - first + 1, 1)
            out[whole] = first + np.floor(r[whole] * count)
        return out

    def _code_tables(self, starts: np.ndarray, stops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per fine bin, its code plus the CDF of the released counts within its code (so the
        table rises from ``c`` to ``c + 1`` over code ``c``'s bins); per code, whether its bins
        are whole integers."""
        edges = self.fine_edges
        cdf = np.empty(edges.size - 1, dtype=np.float64)
        integer = np.zeros(starts.size, dtype=bool)
        for c, (lo, hi) in enumerate(zip(starts, stops)):
            w = np.clip(self.fine_counts[lo:hi], 0.0, None)
            w = w / w.sum() if w.sum() > 0 else np.full(hi - lo, 1.0 / (hi - lo))
            within = np.cumsum(w)
            within[-1] = 1.0
            cdf[lo:hi] = c + within
            widths = edges[lo + 1:hi + 1] - edges[lo:hi]
            integer[c] = self.meta.kind == "integer" and np.allclose(widths, np.round(widths))
        return cdf, integer

    def restore(self, values: np.ndarray, mask: np.ndarray) -> Any:
        """Values from :meth:`values` as an array of the column's dtype."""
        col = self.meta
        dtype = col.pandas_dtype
        if self.labels is not None:
            return restore_categories(np.asarray(self.labels, dtype=object) if any(
                isinstance(v, str) for v in self.labels) else np.asarray(self.labels), values, mask, dtype)
        if col.kind == "datetime":
            return _restore_datetime(values, mask, col, self.bounds, self.resolution)
        decimals = 0 if col.kind == "integer" else col.decimals
        return finalize_numeric(values, mask, dtype, decimals=decimals, bounds=self.bounds)


def coarse_cuts(edges: np.ndarray, counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Cut indices of a numeric column's codes: half of them where the released mass splits
    evenly (:func:`mass_cuts`), half where the variance lost is least
    (:func:`variance_cuts`), merged.  Equal mass keeps the bulk's detail (rank dependence,
    contingency tables); variance-optimal cuts keep the tails apart, so correlations driven by
    a tail survive (see ``docs/model_card.md``)."""
    centres = 0.5 * (edges[1:] + edges[:-1])
    half = max(2, n_bins // 2)
    return np.union1d(mass_cuts(counts, half), variance_cuts(centres, counts, half)).astype(np.int64)


def _restore_datetime(ns: np.ndarray, mask: np.ndarray, col: ColumnMetadata,
                      bounds: tuple[float, float] | None, resolution: float | None) -> Any:
    v = np.asarray(ns, dtype=np.float64)
    if bounds is not None:
        v = np.clip(v, *bounds)
    step = resolution or 1.0
    ticks = (np.round(v / step) * step).astype(np.int64)
    idx = pd.DatetimeIndex(ticks.view("datetime64[ns]"))
    if col.timezone is not None:
        idx = idx.tz_localize("UTC").tz_convert(col.timezone)
    dtype = col.pandas_dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        out = pd.Series(idx).astype(dtype)
        out[mask] = pd.NaT
        return out.array
    text = idx.strftime(col.datetime_format) if col.datetime_format else idx.astype(str)
    out = np.asarray(text, dtype=object)
    out[mask] = np.nan
    return out if dtype == object else pd.array(out, dtype=dtype)


def _datetime_resolution(values_ns: np.ndarray) -> float:
    """Coarsest of day, hour, minute, second, ms, us, ns dividing every value (ns)."""
    v = np.asarray(values_ns, dtype=np.int64)
    for step in (86_400 * 10 ** 9, 3_600 * 10 ** 9, 60 * 10 ** 9, 10 ** 9, 10 ** 6, 10 ** 3):
        if v.size and np.all(v % step == 0):
            return float(step)
    return 1.0


def released_metadata(domain: TableDomain, metadata: Metadata) -> Metadata:
    """``metadata`` with each ``domain: data`` category list replaced by what ``domain``
    released (an empty list, or none for a non-category dtype, when nothing was)."""
    out = metadata.copy()
    released = {c.name: c for c in domain}
    for i, col in enumerate(out.columns):
        if col.domain != "data" or col.categories is None:
            continue
        c = released.get(col.name)
        cats = None if c is None or c.withheld or c.categories is None else list(c.categories)
        if cats is None and col.dtype == "category":
            cats = []
        out.columns[i] = dataclasses.replace(col, categories=cats)
    return out


@dataclass
class TableBins:
    """Codes of every modelled column of a table (see the module docstring).

    Attributes
    ----------
    columns : list of ColumnBins
        One per modelled column (not ``id`` columns, not withheld ones), in table order.
    metadata : Metadata
        The whole table's metadata (``id`` and withheld columns are generated as fresh ids and
        missing values).
    """

    columns: list[ColumnBins]
    metadata: Metadata

    @classmethod
    def from_domain(cls, domain: TableDomain, metadata: Metadata, frame: pd.DataFrame | None = None,
                    n_bins: int = 16) -> "TableBins":
        """Bins of every released column: categories as released, numeric columns cut into at
        most ``n_bins`` runs of equal released mass (plus fences, see :func:`mass_cuts`).

        ``frame`` is only read for the resolution of datetime columns (a non-private
        statistic, as for :class:`~nhssynth.TableEncoder`).

        Categories read from the rows (``domain: data``) are replaced by the released ones in
        the stored metadata (none for a withheld column): a category too rare to be released
        never reaches the fitted model, its samples' dtypes or its files."""
        metadata = released_metadata(domain, metadata)
        out = []
        for c in domain:
            col = metadata[c.name]
            if c.withheld or (c.categories is None and c.edges is None) \
                    or (c.categories is not None and len(c.categories) == 0):
                continue  # nothing to code (an entirely missing column has no category)
            if c.categories is not None:
                out.append(ColumnBins(col, labels=list(c.categories), other=c.source == "dp"))
                continue
            resolution = None
            if col.kind == "datetime" and frame is not None:
                resolution = _datetime_resolution(column_to_float(frame[c.name], col))
            # codes cover the support only (the fine bins with released mass): a code over an
            # empty range would turn the noise of a measurement into values no row has
            counts = np.asarray(c.value_counts, dtype=np.float64)
            nonzero = np.flatnonzero(counts > 0)
            first, last = (int(nonzero[0]), int(nonzero[-1])) if nonzero.size else (0, counts.size - 1)
            edges = np.asarray(c.edges, dtype=np.float64)[first:last + 2]
            counts = counts[first:last + 1]
            out.append(ColumnBins(col, fine_edges=edges, fine_counts=counts,
                                  cuts=coarse_cuts(edges, counts, n_bins), bounds=c.bounds,
                                  resolution=resolution))
        return cls(out, metadata)

    @property
    def sizes(self) -> list[int]:
        return [c.size for c in self.columns]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Codes of ``frame``: an int64 matrix, one column per modelled column."""
        if not self.columns:
            return np.zeros((len(frame), 0), dtype=np.int64)
        return np.stack([c.encode(frame[c.name]) for c in self.columns], axis=1)

    def decode(self, codes: np.ndarray, rng: np.random.Generator,
               together: list | None = None) -> pd.DataFrame:
        """A table with every metadata column, in order and with its dtype, from ``codes``.

        ``together``: ``[column name, group, sign]`` triples of numeric columns whose values
        are placed inside their codes by one shared uniform per group and row (``1 - u`` for
        sign -1), so strongly related columns move together inside a cell instead of
        independently (:meth:`ColumnBins._dequantise`); the others draw their own."""
        n = codes.shape[0]
        index = pd.RangeIndex(n)
        data: dict[str, Any] = {}
        by_name = {c.name: j for j, c in enumerate(self.columns)}
        shared: dict[str, np.ndarray] = {}
        if together:
            groups = {}
            for name, group, sign in together:
                if name in by_name:
                    if group not in groups:
                        groups[group] = rng.random(n)
                    shared[name] = groups[group] if sign > 0 else 1.0 - groups[group]
        for col in self.metadata:
            if col.name in by_name:
                bins = self.columns[by_name[col.name]]
                values, mask = bins.values(codes[:, by_name[col.name]], rng, shared.get(col.name))
                data[col.name] = bins.restore(values, mask)
            elif col.kind == "id":
                data[col.name] = fresh_ids(n, col.pandas_dtype)
            else:  # withheld: nothing about its values was released
                data[col.name] = all_missing(n, col)
        return pd.DataFrame({name: pd.Series(values, index=index, copy=False,
                                             dtype=object if getattr(values, "dtype", None) == object else None)
                             for name, values in data.items()}, index=index,
                            columns=self.metadata.names)

    def one_way(self, domain: TableDomain) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Per modelled column, its released one-way counts on the codes: ``(cells, counts,
        sigma)`` where ``cells`` are the codes the counts are of (an ``other`` code has no
        released count) and ``sigma`` is the noise of one count (summed fine bins: the root
        of their number times the fine-bin noise, on average)."""
        out = []
        for bins in self.columns:
            c: ColumnDomain = domain[bins.name]
            if bins.labels is not None:
                counts = c.value_counts
                cells = np.arange(bins.n_values)
                sigma = c.sigma
            else:
                counts = np.add.reduceat(c.value_counts, np.concatenate([[0], bins.cuts]))
                cells = np.arange(bins.n_values)
                sigma = c.sigma * math.sqrt(c.value_counts.size / bins.n_values)
            if bins.meta.nullable:
                counts = np.append(counts, c.missing_count)
                cells = np.append(cells, bins.missing_code)
            out.append((cells, np.asarray(counts, dtype=np.float64), float(sigma)))
        return out
