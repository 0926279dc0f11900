"""Matplotlib figures for evaluation reports.

Every function returns a :class:`matplotlib.figure.Figure` built without ``pyplot`` (no global
state, works headless); save it with :func:`save_figure` (PNG or SVG by file suffix) or
``fig.savefig``.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..metrics._encoding import category_codes, is_numeric_kind, numeric_values, resolve_metadata
from ..metrics.fidelity import column_pair_trends

__all__ = ["plot_marginals", "plot_correlation_difference", "plot_dcr", "plot_epsilon_curve",
           "save_figure", "figure_to_bytes"]

_REAL, _SYN, _HOLD = "#1f77b4", "#ff7f0e", "#2ca02c"


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Save ``fig`` to ``path``; the format (png, svg, pdf) follows the suffix."""
    path = Path(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def figure_to_bytes(fig: Figure, fmt: str = "png", *, dpi: int = 110) -> bytes:
    """Render ``fig`` to bytes (``png`` or ``svg``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def plot_marginals(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: Any = None, *,
                   columns: Sequence[str] | None = None, max_columns: int = 24, bins: int = 30,
                   ncols: int = 4) -> Figure:
    """Real vs synthetic distribution of each column (histograms / bar charts).

    Parameters
    ----------
    real, synthetic : DataFrame
    metadata : Metadata, optional
    columns : list of str, optional
        Columns to draw (default: every non-id column, at most ``max_columns``).
    bins : int, default 30
        Histogram bins for numeric and datetime columns (shared by both tables).
    ncols : int, default 4
    """

    md = resolve_metadata(metadata, real)
    cols = [md[c] for c in columns] if columns is not None else \
        [c for c in md.columns if c.kind != "id"][:max_columns]
    n = max(len(cols), 1)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(3.2 * ncols, 2.5 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, col in zip(axes, cols):
        if is_numeric_kind(col):
            vr = numeric_values(real[col.name], col)
            vs = numeric_values(synthetic[col.name], col)
            vr, vs = vr[np.isfinite(vr)], vs[np.isfinite(vs)]
            both = np.concatenate([vr, vs])
            if both.size:
                lo, hi = np.quantile(both, [0.005, 0.995]) if both.size > 50 else (both.min(), both.max())
                edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
                ax.hist(np.clip(vr, lo, hi), bins=edges, density=True, alpha=0.5, color=_REAL, label="real")
                ax.hist(np.clip(vs, lo, hi), bins=edges, density=True, histtype="step", lw=1.5,
                        color=_SYN, label="synthetic")
            if col.kind == "datetime":
                ax.set_xlabel("seconds since 1970", fontsize=7)
        else:
            (cr, cs), labels = category_codes(col, real[col.name], synthetic[col.name])
            k = len(labels) + 1
            pr = np.bincount(cr, minlength=k) / max(len(cr), 1)
            ps = np.bincount(cs, minlength=k) / max(len(cs), 1)
            names = [str(v) for v in labels] + ["(missing)"]
            keep = np.flatnonzero((pr > 0) | (ps > 0))
            order = keep[np.argsort(-pr[keep], kind="stable")][:15]
            x = np.arange(order.size)
            ax.bar(x - 0.2, pr[order], 0.4, color=_REAL, alpha=0.7, label="real")
            ax.bar(x + 0.2, ps[order], 0.4, color=_SYN, alpha=0.9, label="synthetic")
            ax.set_xticks(x, [names[i][:12] for i in order], rotation=60, fontsize=6, ha="right")
        ax.set_title(f"{col.name} ({col.kind})", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[len(cols):]:
        ax.set_visible(False)
    if cols:
        axes[0].legend(fontsize=6)
    return fig


def plot_correlation_difference(real: pd.DataFrame | None = None, synthetic: pd.DataFrame | None = None,
                                metadata: Any = None, *, pairs: pd.DataFrame | None = None,
                                max_columns: int = 40) -> Figure:
    """Heatmap of ``1 - similarity`` for every pair of columns.

    For two numeric columns this is ``|r_real - r_synthetic| / 2`` (the correlation
    difference); for other pairs ``TVD`` between the joint frequency tables.  0 (white) is
    ideal.  Pass ``pairs`` (from :func:`nhssynth.metrics.column_pair_trends`) to skip the
    computation.
    """
    if pairs is None:
        pairs = column_pair_trends(real, synthetic, metadata)
    names = list(dict.fromkeys(list(pairs["column_1"]) + list(pairs["column_2"])))[:max_columns]
    idx = {n: i for i, n in enumerate(names)}
    mat = np.zeros((len(names), len(names)))
    for r in pairs.itertuples():
        if r.column_1 in idx and r.column_2 in idx:
            mat[idx[r.column_1], idx[r.column_2]] = mat[idx[r.column_2], idx[r.column_1]] = 1 - r.score
    size = 2.5 + 0.22 * len(names)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(mat, cmap="Reds", vmin=0, vmax=max(0.1, float(mat.max())))
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_title("Pairwise relationship difference (1 - pair trend score)", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="0 = same relationship")
    return fig


def plot_dcr(dcr_result: Mapping | None = None, *, dcr_train: np.ndarray | None = None,
             dcr_holdout: np.ndarray | None = None, holdout_to_train: np.ndarray | None = None,
             bins: int = 40) -> Figure:
    """Histogram of distances to the closest record.

    Pass the dict returned by :func:`nhssynth.metrics.dcr`, or the arrays: synthetic-to-train,
    synthetic-to-holdout, and holdout-to-train distances (what unseen real rows look like).  A
    spike at 0 for synthetic-to-train means copied rows.
    """
    if dcr_result is not None:
        dcr_train = dcr_result.get("dcr_train")
        dcr_holdout = dcr_result.get("dcr_holdout")
        holdout_to_train = dcr_result.get("holdout_to_train")
    series = [(a, lab, c) for a, lab, c in (
        (dcr_train, "synthetic → closest training row", _SYN),
        (dcr_holdout, "synthetic → closest holdout row", _REAL),
        (holdout_to_train, "holdout → closest training row (reference)", _HOLD)) if a is not None]
    fig = Figure(figsize=(6.5, 3.2), layout="constrained")
    ax = fig.subplots()
    if series:
        allv = np.concatenate([a for a, _, _ in series])
        hi = float(np.quantile(allv, 0.99)) if allv.size else 1.0
        edges = np.linspace(0, max(hi, 1e-6), bins + 1)
        for a, lab, c in series:
            ax.hist(np.clip(a, 0, edges[-1]), bins=edges, density=True, histtype="step", lw=1.6,
                    color=c, label=lab)
        ax.legend(fontsize=7)
    ax.set_xlabel("distance to closest record (embedding units)", fontsize=8)
    ax.set_ylabel("density", fontsize=8)
    ax.set_title("Distance to closest record (DCR)", fontsize=9)
    return fig


def plot_epsilon_curve(results: Any, metrics: Sequence[str] = ("fidelity", "quality", "detection"),
                       *, baseline: Mapping[str, float] | None = None) -> Figure:
    """Privacy-utility trade-off: metrics against epsilon, one point per evaluated model.

    Parameters
    ----------
    results : sequence of EvaluationResult, or DataFrame
        Results with a known epsilon (from their privacy report), or a frame with an
        ``epsilon`` column and one column per metric.  Non-private results (infinite or
        unknown epsilon) are drawn as horizontal dashed lines.
    metrics : sequence of str
        Summary keys to plot.
    baseline : dict, optional
        Metric -> value drawn as dotted lines (e.g. the independent-columns baseline).
    """
    if isinstance(results, pd.DataFrame):
        frame = results
    else:
        recs = []
        for r in results:
            eps = r.epsilon if r.epsilon is not None else np.inf
            recs.append({"epsilon": eps, "name": r.name, **r.summary})
            if baseline is None and r.baseline_summary:
                baseline = r.baseline_summary
        frame = pd.DataFrame(recs)
    metrics = [m for m in metrics if m in frame.columns]
    fig = Figure(figsize=(6.5, 3.5), layout="constrained")
    ax = fig.subplots()
    finite = frame[np.isfinite(frame["epsilon"].astype(float))].sort_values("epsilon")
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for i, m in enumerate(metrics):
        c = colors[i % len(colors)]
        if len(finite):
            ax.plot(finite["epsilon"], finite[m], "o-", color=c, label=m)
        for v in frame.loc[~np.isfinite(frame["epsilon"].astype(float)), m]:
            ax.axhline(v, color=c, ls="--", lw=1, label=f"{m} (non-private)")
        if baseline and m in baseline:
            ax.axhline(baseline[m], color=c, ls=":", lw=1, label=f"{m} (independent columns)")
    if len(finite) and (finite["epsilon"] > 0).all() and finite["epsilon"].max() / finite["epsilon"].min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel("epsilon (privacy budget; smaller is more private)", fontsize=8)
    ax.set_ylabel("score (1 is ideal)", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Privacy-fidelity trade-off", fontsize=9)
    ax.legend(fontsize=6, ncols=2)
    return fig
