"""Differentially private estimates of the statistics preprocessing needs.

An encoder needs, per column, a *domain*: the category list of a categorical column, and bounds
plus a rough density (to place the GMM modes) for a numeric or datetime column.  When the
metadata declares them (``domain: declared``) they are public and cost nothing.  Otherwise
:func:`estimate_domains` computes them with three Gaussian mechanisms on histograms:

Stage A (what exists)
    * categorical columns: counts of each observed value, plus Gaussian noise, and only values
      whose noisy count clears a threshold ``tau`` are released (the "Gaussian stable
      histogram" for unknown domains).  A value held by few rows is released with negligible
      probability, so rare values — which identify people — do not leak into the model.
    * numeric/datetime columns without declared bounds: counts in data-independent signed
      power-of-two bins ``±[2^k, 2^(k+1))``; the outermost bins whose noisy count clears a
      (Bonferroni) threshold give coarse bounds, which then grow one bin at a time while the
      next bin outwards clears a lower threshold (one test per side: a heavy tail is kept, and
      noise can only stretch the bounds if the first empty bin beyond the data passes).  Thin
      tails spread over several bins show in their sum: each side then extends past the most
      significant window (up to 8 bins) beyond the bound while its sum clears a per-column
      threshold (1% chance per side that noise alone extends it).  A false
      extension costs resolution; a missed tail clips real values onto the bound.
Stage B (where the mass is)
    * numeric columns, and datetime columns without declared bounds: a histogram of ``n_bins``
      equal bins (whole integers for integer columns) between the stage-A (or declared)
      bounds, plus Gaussian noise.
Stage C (zoom)
    * the same columns again.  When the stage-B bins that clear the noise are a core of at most
      three bins, the column is histogrammed between them (two bins of margin each side), with
      two extra bins counting the rows below and above that range, which are then spread over
      the stage-B bins on their side: power-of-two bounds can be far wider than the data (years
      1995-2003 lie in one stage-B bin of 16 years).  A column whose bulk stage B already
      resolves averages its two noisy histograms instead.  Bins that clear the noise (a
      Bonferroni threshold over all bins) carry their noisy mass, and the GMM encoder is
      fitted to that weighted histogram; bounds stay the coarse stage-A ones.
      Numeric columns with declared bounds skip stage A but are histogrammed in stages B and C
      between their declared bounds: bounds say where values may lie, not where they are, and
      a mixture fitted to a uniform grid over them cost 0.03 overall fidelity on flchain.

Each row contributes at most one count to each column's histogram, so a stage releasing ``k``
column histograms has L2 sensitivity ``sqrt(k)``; with noise ``z * sqrt(k)`` it is a Gaussian
mechanism with noise multiplier ``z``, i.e. the accountant entry ``(z, 1.0, 1)``.  All stages
and DP-SGD are composed in one accountant (PRV by default).  Releasing an unknown category adds
``delta_threshold = k * P(1 + N(0, (z sqrt k)^2) > tau)`` to delta, which ``tau`` keeps below the
share of delta reserved for it.
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

__all__ = ["DomainEstimate", "estimate_domains", "needs_estimation", "column_to_float",
           "dp_preprocess", "data_statistics", "project_counts", "public_metadata", "publish_encoder_metadata",
           "LOG_BIN_RANGE"]

LOG_BIN_RANGE = (-20, 64)  # powers of two covered by the coarse bound search
_FALSE_OCCUPANCY = 0.05  # chance that noise alone marks any empty bin occupied (all columns)
_FALLBACK_WINDOW = 6  # bins (a factor 2^6 range) used when no single coarse bin clears the noise
_FALSE_TAIL = 0.01  # per column and side: chance that noise alone extends a bound once
_TAIL_WINDOW = 8  # longest run of coarse bins beyond a bound summed in one tail test
_TAIL_ROUNDS = 4  # tail tests per side (each beyond the bound the previous one set)
_FALSE_WEIGHT = 0.5  # expected number of empty stage-B bins (all columns) given mixture weight


@dataclass
class DomainEstimate:
    """Result of :func:`estimate_domains`.

    Attributes
    ----------
    domains : dict
        Column -> ``{"categories": [...]}`` or ``{"bounds": (lo, hi), "gmm_values": array,
        "gmm_weights": array}`` in the column's numeric scale (datetimes: nanoseconds).
    history : tuple
        Accountant entries ``(noise_multiplier, 1.0, 1)`` of the stages that ran.
    delta_threshold : float
        Delta spent by releasing data-dependent category sets.
    spends : list of dict
        Human-readable ledger entries (stage, mechanism, columns, noise multiplier).
    histograms : dict
        Column -> ``(centres, counts)``: the last noisy histogram of each numeric column,
        projected onto non-negative counts with the noisy total (no threshold, so thin tails
        keep their mass).  Post-processing of the released histogram.
    """

    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    history: tuple = ()
    delta_threshold: float = 0.0
    spends: list[dict] = field(default_factory=list)


def needs_estimation(col: ColumnMetadata) -> tuple[bool, bool]:
    """(needs a category set, needs bounds) for a column under DP."""
    if col.kind == "categorical":
        return (not col.has_declared_categories), False
    if col.kind in ("continuous", "integer", "datetime"):
        return False, not col.has_declared_bounds
    return False, False


def needs_histogram(col: ColumnMetadata) -> bool:
    """Whether DP preprocessing histograms a column: every numeric column (with declared bounds
    too: the bounds say where values may lie, not where they do) and datetimes without
    declared bounds."""
    if col.kind in ("continuous", "integer"):
        return True
    return col.kind == "datetime" and not col.has_declared_bounds


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
        conv = lambda t: float(pd.Timestamp(t).tz_convert("UTC").tz_localize(None).value  # noqa: E731
                               if pd.Timestamp(t).tzinfo is not None else pd.Timestamp(t).value)
        return conv(lo), conv(hi)
    return float(lo), float(hi)


def _log_bin_edges() -> np.ndarray:
    k = np.arange(LOG_BIN_RANGE[0], LOG_BIN_RANGE[1] + 1, dtype=np.float64)
    pos = 2.0 ** k
    return np.concatenate([-pos[::-1], [0.0], pos])  # monotone edges, symmetric around 0


def _coarse_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    v = np.clip(values, edges[0], edges[-1])
    idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    return np.bincount(idx, minlength=len(edges) - 1).astype(np.float64)


def _extend_bound(beyond: np.ndarray, sigma: float, tau: float, index: int, step: int,
                  max_window: int | None = None) -> int:
    """Bin index ``index`` moved ``step``-wards past the most significant window of ``beyond``
    (the noisy counts outward from the bound, nearest first; windows of at most ``max_window``
    bins), with one bin of margin, when that window's sum clears ``tau`` standard deviations of
    its noise."""
    if not beyond.size:
        return index
    window = beyond[:max_window] if max_window else beyond
    stat = np.cumsum(window) / (sigma * np.sqrt(np.arange(1, window.size + 1)))
    best = int(np.argmax(stat))
    if stat[best] <= tau:
        return index
    return index + step * min(best + 2, beyond.size)


def _threshold_for(delta_share: float, sigma: float) -> float:
    """tau with P(1 + N(0, sigma^2) > tau) = delta_share."""
    return 1.0 + sigma * float(ndtri(1.0 - delta_share))


_ZOOM_MAX_CORE = 3  # stage-B bins: a core this narrow is under-resolved (see _zoom_range)


def estimate_domains(df: pd.DataFrame, metadata: Metadata, *, noise_multiplier: float,
                     delta_threshold: float, rng: Any, n_bins: int = 64,
                     zoom: bool = True) -> DomainEstimate:
    """Estimate every undeclared domain of ``df`` with DP (see module docstring).

    Parameters
    ----------
    df : DataFrame
        The real table (already validated against ``metadata``).
    metadata : Metadata
    noise_multiplier : float
        ``z`` of each stage's Gaussian mechanism (noise std ``z * sqrt(k)`` per count).
    delta_threshold : float
        Delta reserved for releasing data-dependent category sets (total over columns).
    rng : numpy Generator (or an object with the same ``normal(loc, scale, size)``)
        Noise source.
    n_bins : int
        Bins of the stage-B and stage-C histograms.
    zoom : bool
        Run stage C (one more Gaussian mechanism in ``history``).
    """
    def noise(shape, std):
        return rng.normal(0.0, std, size=shape)

    out = DomainEstimate()
    cat_cols, bound_cols, hist_cols = [], [], []
    for col in metadata:
        need_cats, need_bounds = needs_estimation(col)
        if need_cats:
            cat_cols.append(col)
        if need_bounds:
            bound_cols.append(col)
        if needs_histogram(col):
            hist_cols.append(col)

    history = []
    # ---- stage A -------------------------------------------------------------------------
    k_a = len(cat_cols) + len(bound_cols)
    coarse: dict[str, tuple[float, float]] = {}
    if k_a:
        sigma_a = noise_multiplier * math.sqrt(k_a)
        history.append((noise_multiplier, 1.0, 1))
        tau_cat = _threshold_for(delta_threshold / max(len(cat_cols), 1), sigma_a) if cat_cols else None
        for col in cat_cols:
            counts = df[col.name].value_counts(dropna=True, sort=False)
            noisy = counts.to_numpy(dtype=np.float64) + noise((len(counts),), sigma_a)
            keep = [v for v, c in zip(counts.index, noisy) if c > tau_cat]
            if not keep:
                raise PrivacyBudgetError(
                    f"column {col.name!r}: no category is frequent enough to be released privately "
                    f"(threshold {tau_cat:.0f} rows at this budget). Declare its categories in the "
                    f"metadata (domain: declared), raise epsilon, or drop the column.")
            # public order: sorted, never by (noisy) frequency
            keep = sorted((v.item() if hasattr(v, "item") else v for v in keep),
                          key=lambda v: (str(type(v)), v))
            out.domains[col.name] = {"categories": keep}
        edges = _log_bin_edges()
        # Bonferroni over every coarse bin of every column: an empty bin is called occupied
        # with probability <= _FALSE_OCCUPANCY in total, so noise cannot stretch the bounds.
        n_tests = max(1, len(bound_cols) * (len(edges) - 1))
        tau_bins = sigma_a * float(ndtri(1.0 - 0.5 * _FALSE_OCCUPANCY / n_tests))
        # Tails: from the outermost occupied bins, step outwards while the next bin clears a
        # lower threshold (one test per side and column: a false extension needs the *first*
        # empty bin beyond the data to pass).  Half of _FALSE_OCCUPANCY each; post-processing.
        tau_tail = sigma_a * float(ndtri(1.0 - 0.5 * _FALSE_OCCUPANCY / (2 * max(1, len(bound_cols)))))
        # window sums beyond each bound: one test per window length, per side and column
        # (not Bonferroni over all columns: a false extension only widens a range, while a
        # missed tail clips real values onto the bound -- SUPPORT2 at epsilon 1 clipped a
        # quarter of bili and prg6m with the all-column correction)
        tau_cum = float(ndtri(1.0 - _FALSE_TAIL / _TAIL_WINDOW))
        for col in bound_cols:
            values = column_to_float(df[col.name], col)
            noisy = _coarse_counts(values, edges) + noise((len(edges) - 1,), sigma_a)
            occupied = np.flatnonzero(noisy > tau_bins)
            if len(occupied) == 0:
                # No single bin clears the noise (values spread over many powers of two): take
                # the window of _FALLBACK_WINDOW bins with the largest noisy mass (post-processing).
                window = np.convolve(noisy, np.ones(_FALLBACK_WINDOW), mode="valid")
                start = int(np.argmax(window))
                if window[start] <= tau_bins:
                    raise PrivacyBudgetError(
                        f"column {col.name!r}: too few rows to estimate its range privately at this "
                        f"budget. Declare min and max in the metadata (domain: declared) or raise "
                        f"epsilon.")
                warnings.warn(f"column {col.name!r}: its range is uncertain at this budget; using "
                              f"[{edges[start]:g}, {edges[start + _FALLBACK_WINDOW]:g}]. Declare min/max "
                              f"to avoid clipping.", PrivacyWarning, stacklevel=3)
                occupied = np.array([start, start + _FALLBACK_WINDOW - 1])
            first, last = int(occupied[0]), int(occupied[-1])
            while first > 0 and noisy[first - 1] > tau_tail:
                first -= 1
            while last < len(noisy) - 1 and noisy[last + 1] > tau_tail:
                last += 1
            # Thin tails spread over many bins (follow-up days 3-2029: half the rows below 256,
            # no single bin clearing tau_bins) show in their sum: extend each side to the window
            # of bins beyond the bound whose noisy sum is most significant (sum / its noise std),
            # if that clears tau_cum, plus one bin of margin.  Post-processing of the same counts.
            for _ in range(_TAIL_ROUNDS):  # a long tail: test again beyond the new bound
                moved = _extend_bound(noisy[:first][::-1], sigma_a, tau_cum, first, -1, _TAIL_WINDOW)
                moved, first = moved != first, moved
                grown = _extend_bound(noisy[last + 1:], sigma_a, tau_cum, last, +1, _TAIL_WINDOW)
                grown, last = grown != last, grown
                if not (moved or grown):
                    break
            coarse[col.name] = (float(edges[first]), float(edges[last + 1]))
        out.spends.append({"stage": "preprocessing: domains", "mechanism":
                           "Gaussian stable histogram (categories) + power-of-two bin counts (bounds)",
                           "columns": [c.name for c in cat_cols + bound_cols],
                           "noise_multiplier": noise_multiplier, "noise_std": sigma_a,
                           "category_threshold": tau_cat})

    # ---- stage B (and C) -----------------------------------------------------------------
    k_b = len(hist_cols)
    if k_b:
        sigma_b = noise_multiplier * math.sqrt(k_b)
        tau_hist = sigma_b * float(ndtri(1.0 - _FALSE_WEIGHT / (k_b * n_bins)))

        def histogram(col, lo, hi, outside=False):
            if col.kind == "integer" and hi - lo + 1 <= 4 * n_bins:
                # bins of whole integers, so a bin's centre is never half a unit off its values
                # (up to 2 n_bins single-integer bins: a zoomed range is padded by one stage-B
                # bin each side, and years at 2-year resolution lose what zooming gained)
                span = hi - lo + 1
                width = 1 if span <= 2 * n_bins else math.ceil(span / n_bins)
                edges = lo - 0.5 + width * np.arange(math.ceil(span / width) + 1, dtype=np.float64)
            else:
                edges = np.linspace(lo, hi, n_bins + 1)
            values = column_to_float(df[col.name], col)
            if not outside:
                values = np.clip(values, edges[0], edges[-1])
                counts = np.histogram(values, bins=edges)[0].astype(np.float64)
                return edges, counts + noise((len(counts),), sigma_b)
            # values beyond [lo, hi] counted in two extra bins instead of the edge bins: still
            # one count per row, so the same mechanism
            # (the inner range is closed at hi, as np.histogram's last bin: nextafter keeps hi in)
            outer_edges = np.concatenate([[-np.inf], edges[:-1], [np.nextafter(edges[-1], np.inf)],
                                          [np.inf]])
            counts = np.histogram(values, bins=outer_edges)[0]
            noisy = counts.astype(np.float64) + noise((len(counts),), sigma_b)
            return edges, noisy[1:-1], (noisy[0], noisy[-1])

        history.append((noise_multiplier, 1.0, 1))
        stage_b = {}
        for col in hist_cols:
            lo, hi = coarse[col.name] if col.name in coarse else _declared_bounds_float(col)
            if col.kind == "integer":
                lo, hi = float(math.floor(lo)), float(math.ceil(hi))
            stage_b[col.name] = (lo, hi, *histogram(col, lo, hi))
        # Stage C ("zoom"): power-of-two bounds can be far wider than the data (years
        # 1995-2003 sit in [1024, 2048], one stage-B bin).  Each column is histogrammed again
        # between the outermost stage-B bins that clear the noise (one bin of margin each
        # side), so the mixture sees the data at useful resolution.  A column whose range does
        # not shrink averages its two noisy histograms instead (half the noise variance).
        if zoom:
            history.append((noise_multiplier, 1.0, 1))
        for col in hist_cols:
            lo, hi, edges, noisy = stage_b[col.name]
            threshold = tau_hist
            zoomed = None
            if zoom:
                zoomed = _zoom_range(edges, noisy, tau_hist, (lo, hi), integer=col.kind == "integer")
                if zoomed is not None:
                    edges_b, noisy_b = edges, noisy
                    edges, noisy, beyond = histogram(col, *zoomed, outside=True)
                    outer = _spread_beyond(edges_b, noisy_b, edges, beyond, threshold)
                else:
                    # the average has std sigma_b / sqrt(2): same false-bin rate, lower threshold
                    noisy = 0.5 * (noisy + histogram(col, lo, hi)[1])
                    threshold = tau_hist / math.sqrt(2)
            # Only bins that clear the noise (Bonferroni over all bins of all columns) carry
            # mass: a spurious bin would pull a mixture mode into empty space.  Bounds stay the
            # coarse ones (tightening by noisy counts cuts long thin tails); the encoder widens
            # its modes to cover every value inside them.
            weights = np.where(noisy > threshold, noisy, 0.0)
            centers = np.clip(0.5 * (edges[:-1] + edges[1:]), lo, hi)
            if zoomed is not None:  # stage-B bins beyond the zoomed range, rescaled
                centers = np.concatenate([outer[0][0], centers, outer[1][0]])
                noisy = np.concatenate([outer[0][1], noisy, outer[1][1]])
                weights = np.concatenate([outer[0][2], weights, outer[1][2]])
            if weights.sum() <= 0:
                warnings.warn(f"column {col.name!r}: its histogram is only noise at this budget; the "
                              f"mixture is spread uniformly over [{lo:g}, {hi:g}]. Declare min/max "
                              f"or raise epsilon.", PrivacyWarning, stacklevel=3)
                weights = np.ones_like(weights)
            out.domains[col.name] = {"bounds": (lo, hi), "gmm_values": centers, "gmm_weights": weights}
            out.histograms[col.name] = (centers, project_counts(noisy, max(float(noisy.sum()), 0.0)))
        out.spends.append({"stage": "preprocessing: histograms", "mechanism":
                           f"Gaussian noisy {n_bins}-bin histograms (mixture fit)"
                           + (", twice (zoomed to the occupied range)" if zoom else ""),
                           "columns": [c.name for c in hist_cols],
                           "noise_multiplier": noise_multiplier, "noise_std": sigma_b,
                           "n_releases": 2 if zoom else 1})
    out.history = tuple(history)
    out.delta_threshold = float(delta_threshold) if cat_cols else 0.0
    return out


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
    # the largest k with desc[k] > shift_k; k = 0 always qualifies (desc[0] - cums[0] = total)
    k = np.nonzero(desc - cums / np.arange(1, desc.size + 1) > 0)[0][-1]
    shift = cums[k] / (k + 1)
    return np.maximum(noisy - shift, 0.0)


def _spread_beyond(edges_b: np.ndarray, noisy_b: np.ndarray, edges_c: np.ndarray,
                   beyond: tuple[float, float], threshold: float) -> list[tuple]:
    """What lies beyond the zoomed range (stage-C ``edges_c``): each side's noisy count (stage
    C's extra bins) spread over the stage-B bins on that side in proportion to their clipped
    counts.  Returns, per side, ``(centres, counts, weights)`` of the spread bins (weights are
    zero unless the side's count clears ``threshold``).  Post-processing of the two releases."""
    centres_b = 0.5 * (edges_b[:-1] + edges_b[1:])
    outer = []
    for mask, count in ((centres_b < edges_c[0], beyond[0]), (centres_b > edges_c[-1], beyond[1])):
        shape = np.clip(noisy_b[mask], 0.0, None)
        if mask.any() and shape.sum() <= 0:
            shape = np.ones(int(mask.sum()))
        spread = max(float(count), 0.0) * shape / max(shape.sum(), 1e-300)
        outer.append((centres_b[mask], spread, spread if count > threshold else np.zeros_like(spread)))
    return outer


def _zoom_range(edges: np.ndarray, noisy: np.ndarray, tau: float, bounds: tuple[float, float], *,
                integer: bool, max_core: int = _ZOOM_MAX_CORE) -> tuple[float, float] | None:
    """Range to histogram again at finer resolution, or ``None`` when zooming would not help.

    The core is the run of bins whose noisy count clears ``tau`` (a lone cleared bin with
    under a tenth of the cleared mass is taken for noise).  Zooming only pays when that core
    is a few bins (``max_core``) — the data sits inside one or two coarse bins, like years in a
    power-of-two range.  A wider core is already resolved, and its thin tails sit in bins that
    do not clear ``tau``: a range cut to the core would pile them onto its edges.  The zoomed
    range adds two bins of margin each side and must shrink the range by half."""
    cleared = np.flatnonzero(noisy > tau)
    if not cleared.size:
        return None
    total = float(noisy[cleared].sum())
    near = np.abs(cleared[:, None] - cleared[None, :]) == 1
    core = cleared[near.any(axis=1) | (noisy[cleared] >= 0.1 * total)]
    if not core.size or core[-1] - core[0] + 1 > max_core:
        return None
    lo = float(edges[max(core[0] - 2, 0)])
    hi = float(edges[min(core[-1] + 3, len(edges) - 1)])
    if integer:
        lo, hi = float(math.floor(lo)), float(math.ceil(hi))
    if hi - lo >= 0.5 * (bounds[1] - bounds[0]):
        return None
    return max(lo, bounds[0]), min(hi, bounds[1])


def data_statistics(metadata: Metadata) -> list[str]:
    """Statistics a non-private encoder would read from the data for this metadata."""
    out = []
    for col in metadata:
        need_cats, need_bounds = needs_estimation(col)
        if need_cats:
            out.append(f"{col.name}: category set")
        if need_bounds:
            out.append(f"{col.name}: min/max")
        if col.kind in ("continuous", "integer", "datetime"):
            out.append(f"{col.name}: mixture fit")
        if col.kind in ("continuous", "integer"):
            out.append(f"{col.name}: value-bin cuts of its marginal")
        if col.missing == "impute" and col.impute_value is None and col.nullable:
            out.append(f"{col.name}: impute mean/mode")
    return out


def _to_timestamp(value: float, col: ColumnMetadata) -> pd.Timestamp:
    ts = pd.Timestamp(int(round(value)))
    return ts.tz_localize("UTC").tz_convert(col.timezone) if col.timezone else ts


def dp_preprocess(df: pd.DataFrame, metadata: Metadata, budget, rng, *,
                  n_bins: int = 64, return_histograms: bool = False) -> tuple:
    """Domains for a :class:`~nhssynth.TableEncoder` that read nothing from ``df`` without DP.

    Declared categories and bounds are used as they are; numeric columns are histogrammed
    even with declared bounds (for their mixture fit).  Everything else is estimated by
    :func:`estimate_domains` and charged to ``budget`` (a
    :class:`~nhssynth.privacy.budget.PrivacyBudget`).  ``missing="impute"`` columns without an
    ``impute_value`` get the mean (numeric) of their DP histogram or the first released
    category.  Returns ``(domains, metadata)``, the metadata with those impute values filled in,
    and with ``return_histograms`` also the released histograms
    (:attr:`DomainEstimate.histograms`: numeric columns, and datetimes without declared bounds).
    """
    histograms: dict = {}
    domains: dict[str, dict] = {}
    needs_cats = any(needs_estimation(c)[0] for c in metadata)
    needs_bounds = any(needs_estimation(c)[1] for c in metadata)
    needs_hist = any(needs_histogram(c) for c in metadata)
    for col in metadata:
        if col.kind == "datetime" and col.has_declared_bounds:
            domains[col.name] = {"bounds": col.bounds()}
    if needs_cats or needs_bounds or needs_hist:
        # domains (stage A); histograms released twice (stages B and C, zoom)
        n_stages = int(needs_cats or needs_bounds) + (2 if needs_hist else 0)
        delta_thr = 0.1 * budget.delta if needs_cats else 0.0
        z = budget.mechanism_noise_multiplier(budget.preprocessing_fraction, n_stages, delta_thr)
        est = estimate_domains(df, metadata, noise_multiplier=z, delta_threshold=delta_thr,
                               rng=rng, n_bins=n_bins)
        for spend in est.spends:
            budget.record(spend["stage"], spend["mechanism"],
                          history=((z, 1.0, spend.get("n_releases", 1)),),
                          delta_extra=est.delta_threshold if "domains" in spend["stage"] else 0.0,
                          columns=spend["columns"], noise_multiplier=z)
        histograms = est.histograms
        for name, dom in est.domains.items():
            col = metadata[name]
            if col.kind == "datetime":
                lo, hi = dom["bounds"]
                domains[name] = {"bounds": (_to_timestamp(lo, col), _to_timestamp(hi, col))}
            else:
                domains[name] = dom
    for col in metadata:  # impute values from DP outputs only (post-processing)
        if col.missing == "impute" and col.nullable and col.impute_value is None:
            dom = domains.get(col.name, {})
            if "gmm_values" in dom:
                w = np.asarray(dom["gmm_weights"], dtype=float)
                value = float(np.average(dom["gmm_values"], weights=w if w.sum() > 0 else None))
                value = round(value) if col.kind == "integer" else value
            elif "categories" in dom or col.categories:
                value = (dom.get("categories") or col.categories)[0]
            elif col.kind == "datetime" and "bounds" in dom:
                value = dom["bounds"][0] + (dom["bounds"][1] - dom["bounds"][0]) / 2
            else:
                raise PrivacyBudgetError(f"column {col.name!r}: missing='impute' needs an impute_value "
                                         f"in the metadata under DP preprocessing.")
            metadata = metadata.update(col.name, impute_value=value)
    return (domains, metadata, histograms) if return_histograms else (domains, metadata)


def public_metadata(metadata: Metadata, domains: dict) -> Metadata:
    """``metadata`` with every statistic read from the rows replaced by its DP release.

    Inferred metadata (``domain: data``) lists the categories *seen in the data* — including a
    value held by one person — and may carry data-derived ``min``/``max``.  A DP-fitted encoder
    must not keep (or save) them: categories become the DP-released set from ``domains`` and
    data-derived bounds are dropped (the encoder uses the DP bounds from ``domains``).  Declared
    statistics are public and kept.
    """
    for col in metadata:
        if col.domain == "declared":
            continue
        changes: dict[str, Any] = {}
        if col.kind == "categorical":
            released = domains.get(col.name, {}).get("categories")
            if released is not None or col.categories is not None:
                changes["categories"] = None if released is None else list(released)
        if col.kind in ("continuous", "integer", "datetime") and (col.min is not None or col.max is not None):
            changes["min"] = changes["max"] = None
        if changes:
            metadata = metadata.update(col.name, **changes)
    return metadata


def publish_encoder_metadata(encoder, domains: dict) -> None:
    """After a DP fit, make a :class:`~nhssynth.TableEncoder` hold (and save) only public or
    DP-released metadata (see :func:`public_metadata`); its encoders already use ``domains``."""
    md = public_metadata(encoder.metadata_, domains)
    encoder.metadata = md
    encoder.metadata_ = md
    for column in getattr(encoder, "_columns_", []):
        column.meta = md[column.name]


# --------------------------------------------------------------------------------------------
# primitives of the domain release (nhssynth.encoders.domain)
# --------------------------------------------------------------------------------------------
_CORE_FALSE = 1e-3  # chance that noise alone makes some empty power-of-two bin the core
_SECOND_FALSE = 1e-5  # the same for the other signed part, once one part is found
_STEP_FALSE = 1e-4  # per side: chance that noise alone extends a bound by one more bin
_WINDOWS = (2, 4)  # runs of adjacent bins of the second look (a factor 16 at most)


def log_bin_edges() -> np.ndarray:
    """Edges of the data-independent signed power-of-two bins ``±[2^k, 2^(k+1))``."""
    return _log_bin_edges()


def coarse_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins of ``edges`` (values beyond them in the outer bins)."""
    return _coarse_counts(values, edges)


def search_bounds(noisy: np.ndarray, sigma: float) -> tuple[int, int] | None:
    """First and last bin of a column's range from noisy counts in the bins of
    :func:`log_bin_edges`, or None.

    The negative values, the values near zero (the two bins around 0) and the positive values
    are searched separately (a spike of zeros must not hide values in the hundreds, as in a
    count of days or a capital gain), and the range covers every part found.  The signed part
    with the fuller bin is searched at a third of the false-positive rates below, the other at
    ``_SECOND_FALSE`` (a range from -500 to 10^14 needs noise to fake a whole part).  Within a signed part the range grows from a *core*
    outwards, so a lone bin far from the data that clears the noise by chance cannot stretch it:

    1. the core is the fullest bin, if it clears the noise maximum of the part's bins (a chance
       of ``_CORE_FALSE`` that an empty bin would); otherwise the fullest run of 2, 4 or 8
       adjacent bins whose sum clears the same test for sums (a wider but sane range: the
       second look, post-processing of the same counts); otherwise the part is absent;
    2. each side then takes the next bin while it clears a one-sided test (a false step needs
       the first empty bin beyond the data to pass: ``_STEP_FALSE``), and then extends over the
       most significant window of up to 8 bins beyond the bound if its sum clears a test at
       ``_STEP_FALSE`` (thin tails spread over several bins, e.g. follow-up days 3-2029).
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    middle = noisy.size // 2  # bins middle - 1 and middle hold [-2^-20, 0) and [0, 2^-20)
    parts = [(0, middle - 1), (middle + 1, noisy.size)]
    # the part with the fuller bin is searched first; the other must then pass a stricter
    # test (data on both sides of zero is rarer than noise far out on the empty side)
    parts.sort(key=lambda p: -float(noisy[p[0]:p[1]].max(initial=-np.inf)))
    found = []
    for (start, stop), false_rate in zip(parts, (_CORE_FALSE, _SECOND_FALSE)):
        part = _search_part(noisy[start:stop], sigma, 3.0 * _CORE_FALSE / false_rate)
        if part is not None:
            found += [start + part[0], start + part[1]]
    z_zero = float(ndtri(1.0 - _CORE_FALSE / 6.0))
    found += [i for i in (middle - 1, middle) if noisy[i] > sigma * z_zero]
    if not found:
        return None
    return min(found), max(found)


def _search_part(noisy: np.ndarray, sigma: float, tests: float) -> tuple[int, int] | None:
    """Core-and-extend range search of :func:`search_bounds` inside one signed part
    (false-positive rates divided by ``tests``)."""
    k = noisy.size
    if k == 0:
        return None
    z_core = float(ndtri(1.0 - _CORE_FALSE / (tests * k)))
    core = int(np.argmax(noisy))
    if noisy[core] > sigma * z_core:
        first = last = core
    else:
        z_window = float(ndtri(1.0 - _CORE_FALSE / (tests * k * len(_WINDOWS))))
        for w in _WINDOWS:
            sums = np.convolve(noisy, np.ones(w), mode="valid")
            if not sums.size:
                return None
            start = int(np.argmax(sums))
            if sums[start] > sigma * math.sqrt(w) * z_window:
                first, last = start, start + w - 1
                break
        else:
            return None
    z_step = float(ndtri(1.0 - _STEP_FALSE / tests))
    while first > 0 and noisy[first - 1] > sigma * z_step:
        first -= 1
    while last < k - 1 and noisy[last + 1] > sigma * z_step:
        last += 1
    z_window = float(ndtri(1.0 - _STEP_FALSE / (tests * _TAIL_WINDOW)))
    first = _window_extend(noisy[:first][::-1], sigma, z_window, first, -1)
    last = _window_extend(noisy[last + 1:], sigma, z_window, last, +1)
    return first, last


def _window_extend(beyond: np.ndarray, sigma: float, z: float, index: int, step: int) -> int:
    """``index`` moved ``step``-wards to the end of the most significant window (at most
    ``_TAIL_WINDOW`` bins) of ``beyond`` (noisy counts outward from the bound, nearest first),
    when that window's sum clears ``z`` standard deviations of its noise."""
    window = beyond[:_TAIL_WINDOW]
    if not window.size:
        return index
    stat = np.cumsum(window) / (sigma * np.sqrt(np.arange(1, window.size + 1)))
    best = int(np.argmax(stat))
    return index + step * (best + 1) if stat[best] > z else index


def histogram_edges(lo: float, hi: float, n_bins: int, *, integer: bool = False,
                    step: float | None = None) -> np.ndarray:
    """Bin edges over ``[lo, hi]``.

    Values on a grid (integers: ``step`` 1; a column with ``d`` decimals: ``step`` 10^-d) get
    bins of whole grid steps centred on the grid points, as many steps per bin as keep the
    range within about ``n_bins`` bins (at most ``4 n_bins`` single steps): a bin never splits
    the values it holds from their grid neighbours, so a one-decimal lab value's histogram has
    no empty bins between its values.  Other values get ``n_bins`` equal bins."""
    if integer:
        step = 1.0
    if hi <= lo:
        hi = lo + (step or 1.0)
    if step:
        first = math.floor(lo / step + 1e-9)
        span = math.ceil(hi / step - 1e-9) - first + 1  # grid points in the range
        if span <= 4 * n_bins:
            width = 1 if span <= 2 * n_bins else math.ceil(span / n_bins)
            return step * (first - 0.5 + width * np.arange(math.ceil(span / width) + 1,
                                                            dtype=np.float64))
        width = math.ceil(span / n_bins)
        return step * (first - 0.5 + width * np.arange(math.ceil(span / width) + 1,
                                                        dtype=np.float64))
    return np.linspace(lo, hi, n_bins + 1)


def zoom_range(edges: np.ndarray, noisy: np.ndarray, tau: float, bounds: tuple[float, float], *,
               integer: bool) -> tuple[float, float] | None:
    """Range to histogram again at finer resolution, or None (see :func:`_zoom_range`)."""
    return _zoom_range(edges, noisy, tau, bounds, integer=integer)


def spread_beyond(edges_b: np.ndarray, noisy_b: np.ndarray, edges_c: np.ndarray,
                  beyond: tuple[float, float], threshold: float):
    """What lies beyond a zoomed range ``edges_c``: each side's noisy count spread over the
    first histogram's bins on that side (those starting below ``edges_c[0]`` / ending above
    ``edges_c[-1]``) in proportion to their clipped counts.  Returns, per side,
    ``(edges, counts, occupied)`` of the spread bins, edges clipped to the zoomed range so
    that the merged edges increase.  Post-processing of the two releases."""
    out = []
    for side, count in (("below", beyond[0]), ("above", beyond[1])):
        if side == "below":
            mask = edges_b[:-1] < edges_c[0]
            e = np.append(edges_b[:-1][mask], edges_c[0]) if mask.any() else np.zeros(0)
        else:
            mask = edges_b[1:] > edges_c[-1]
            e = np.insert(edges_b[1:][mask], 0, edges_c[-1]) if mask.any() else np.zeros(0)
        shape = np.clip(noisy_b[mask], 0.0, None)
        if mask.any() and shape.sum() <= 0:
            shape = np.ones(int(mask.sum()))
        spread = max(float(count), 0.0) * shape / max(shape.sum(), 1e-300)
        occupied = spread > 0 if count > threshold else np.zeros(spread.size, dtype=bool)
        out.append((e, spread, occupied))
    return out
