"""Differentially private estimates of the statistics preprocessing needs.

An encoder needs, per column, a *domain*: the category list of a categorical column, and bounds
plus a rough density (to place the GMM modes) for a numeric or datetime column.  When the
metadata declares them (``domain: declared``) they are public and cost nothing.  Otherwise
:func:`estimate_domains` computes them with two Gaussian mechanisms on histograms:

Stage A (what exists)
    * categorical columns: counts of each observed value, plus Gaussian noise, and only values
      whose noisy count clears a threshold ``tau`` are released (the "Gaussian stable
      histogram" for unknown domains).  A value held by few rows is released with negligible
      probability, so rare values — which identify people — do not leak into the model.
    * numeric/datetime columns without declared bounds: counts in data-independent signed
      power-of-two bins ``±[2^k, 2^(k+1))``; the outermost bins whose noisy count clears a
      threshold give coarse bounds.
Stage B (where the mass is)
    * numeric/datetime columns: a histogram of ``n_bins`` equal bins between the (declared or
      stage-A) bounds, plus Gaussian noise.  Bounds are tightened to the outermost bins that
      clear a threshold, and the noisy bin masses are what the GMM encoder is fitted to.

Each row contributes at most one count to each column's histogram, so a stage releasing ``k``
column histograms has L2 sensitivity ``sqrt(k)``; with noise ``z * sqrt(k)`` it is a Gaussian
mechanism with noise multiplier ``z``, i.e. the accountant entry ``(z, 1.0, 1)``.  Both stages
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
           "LOG_BIN_RANGE"]

LOG_BIN_RANGE = (-20, 64)  # powers of two covered by the coarse bound search
_NOISE_SIGMAS_FOR_OCCUPANCY = 3.0


@dataclass
class DomainEstimate:
    """Result of :func:`estimate_domains`.

    Attributes
    ----------
    domains : dict
        Column -> ``{"categories": [...]}`` or ``{"bounds": (lo, hi), "hist_centers": array,
        "hist_weights": array}`` in the column's numeric scale (datetimes: int64 nanoseconds).
    history : tuple
        Accountant entries ``(noise_multiplier, 1.0, 1)`` of the stages that ran.
    delta_threshold : float
        Delta spent by releasing data-dependent category sets.
    spends : list of dict
        Human-readable ledger entries (stage, mechanism, columns, noise multiplier).
    """

    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
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


def _threshold_for(delta_share: float, sigma: float) -> float:
    """tau with P(1 + N(0, sigma^2) > tau) = delta_share."""
    return 1.0 + sigma * float(ndtri(1.0 - delta_share))


def estimate_domains(df: pd.DataFrame, metadata: Metadata, *, noise_multiplier: float,
                     delta_threshold: float, rng: Any, n_bins: int = 64) -> DomainEstimate:
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
    rng : numpy Generator or :class:`~nhssynth.privacy.secure.SecureGaussian`
        Noise source (``normal(shape, std)`` for the secure one).
    n_bins : int
        Bins of the stage-B histograms.
    """
    def noise(shape, std):
        if hasattr(rng, "normal") and not isinstance(rng, np.random.Generator):
            return rng.normal(shape, std)
        return rng.normal(0.0, std, size=shape)

    out = DomainEstimate()
    cat_cols, bound_cols, hist_cols = [], [], []
    for col in metadata:
        need_cats, need_bounds = needs_estimation(col)
        if need_cats:
            cat_cols.append(col)
        if need_bounds:
            bound_cols.append(col)
        if need_bounds:
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
        tau_bins = _NOISE_SIGMAS_FOR_OCCUPANCY * sigma_a
        for col in bound_cols:
            values = column_to_float(df[col.name], col)
            noisy = _coarse_counts(values, edges) + noise((len(edges) - 1,), sigma_a)
            occupied = np.flatnonzero(noisy > tau_bins)
            if len(occupied) == 0:
                raise PrivacyBudgetError(
                    f"column {col.name!r}: too few rows to estimate its range privately at this "
                    f"budget. Declare min and max in the metadata (domain: declared) or raise epsilon.")
            coarse[col.name] = (float(edges[occupied[0]]), float(edges[occupied[-1] + 1]))
        out.spends.append({"stage": "preprocessing: domains", "mechanism":
                           "Gaussian stable histogram (categories) + power-of-two bin counts (bounds)",
                           "columns": [c.name for c in cat_cols + bound_cols],
                           "noise_multiplier": noise_multiplier, "noise_std": sigma_a,
                           "category_threshold": tau_cat})

    # ---- stage B -------------------------------------------------------------------------
    k_b = len(hist_cols)
    if k_b:
        sigma_b = noise_multiplier * math.sqrt(k_b)
        history.append((noise_multiplier, 1.0, 1))
        tau_bins = _NOISE_SIGMAS_FOR_OCCUPANCY * sigma_b
        for col in hist_cols:
            lo, hi = coarse[col.name] if col.name in coarse else _declared_bounds_float(col)
            bins = n_bins
            if col.kind == "integer" and hi - lo + 1 <= n_bins:
                edges = np.arange(math.floor(lo), math.ceil(hi) + 2, dtype=np.float64) - 0.5
            else:
                edges = np.linspace(lo, hi, bins + 1)
            values = np.clip(column_to_float(df[col.name], col), edges[0], edges[-1])
            counts = np.histogram(values, bins=edges)[0].astype(np.float64)
            noisy = counts + noise((len(counts),), sigma_b)
            occupied = np.flatnonzero(noisy > tau_bins)
            if len(occupied):
                lo_t, hi_t = float(edges[occupied[0]]), float(edges[occupied[-1] + 1])
            else:
                warnings.warn(f"column {col.name!r}: its histogram is mostly noise at this budget; "
                              f"using the coarse range [{lo:g}, {hi:g}].", PrivacyWarning, stacklevel=3)
                lo_t, hi_t = lo, hi
            if col.kind == "integer":
                lo_t, hi_t = float(math.ceil(lo_t)), float(math.floor(hi_t))
                hi_t = max(hi_t, lo_t)
            centers = 0.5 * (edges[:-1] + edges[1:])
            weights = np.clip(noisy, 0.0, None)
            inside = (centers >= lo_t) & (centers <= hi_t)
            if weights[inside].sum() <= 0:
                weights = np.where(inside, 1.0, 0.0)  # no signal: uniform over the bounds
            out.domains[col.name] = {"bounds": (lo_t, hi_t), "hist_centers": centers[inside],
                                     "hist_weights": weights[inside]}
        out.spends.append({"stage": "preprocessing: histograms", "mechanism":
                           f"Gaussian noisy {n_bins}-bin histograms (bounds tightening, GMM fit)",
                           "columns": [c.name for c in hist_cols],
                           "noise_multiplier": noise_multiplier, "noise_std": sigma_b})
    out.history = tuple(history)
    out.delta_threshold = float(delta_threshold) if cat_cols else 0.0
    return out
