"""Private helpers shared by the metrics: metadata resolution, numeric views of columns and a
simple numeric embedding of a table used for distances (privacy metrics) and for the
classifiers of the detection and utility metrics.

The embedding is deliberately simple and is fitted on the *real* data only:

* categorical / boolean columns: one-hot over the real categories, scaled by ``1/sqrt(2)`` so
  that two different categories are at Euclidean distance 1 (values unseen in the real data
  encode as all zeros), plus a missing-value column when the column may be missing;
* continuous / integer / datetime columns: min-max scaled to [0, 1] with the real min and max
  (datetimes as seconds since 1970); a missing value encodes as 0 plus a 1 in an indicator
  column;
* ``id`` columns are left out (they carry no information about the rows' content).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from .._values import numeric_values
from ..metadata import ColumnMetadata, Metadata, as_metadata

__all__ = ["resolve_metadata", "check_frames", "numeric_values", "category_codes",
           "TableEmbedding", "model_columns"]

def limit_threads():
    """Context manager capping OpenMP threads (scikit-learn's gradient boosting and
    nearest-neighbour kernels) at ``NHSSYNTH_METRICS_THREADS`` (default 1).

    OpenMP kernels spin-wait; on a shared or busy machine (or next to torch's own OpenMP pool)
    one thread is often 10x faster than oversubscribed ones.
    """
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=int(os.environ.get("NHSSYNTH_METRICS_THREADS", "1")),
                             user_api="openmp")


_SQRT_HALF = np.float32(np.sqrt(0.5))


def resolve_metadata(metadata: Any, real: pd.DataFrame) -> Metadata:
    """Metadata argument -> :class:`Metadata` (inferred from ``real`` when None)."""
    return as_metadata(metadata, real)


def check_frames(metadata: Metadata, **frames: pd.DataFrame | None) -> None:
    """Every given frame must be a DataFrame holding every metadata column."""
    for name, df in frames.items():
        if df is None:
            continue
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}.")
        if len(df) == 0:
            raise ValueError(f"{name} has no rows; metrics need at least one row.")
        missing = [c for c in metadata.names if c not in df.columns]
        if missing:
            raise MetadataError(f"{name} lacks column(s) {missing} that the metadata declares.")


def model_columns(metadata: Metadata) -> list[ColumnMetadata]:
    """Columns that carry content (everything except ``id`` columns)."""
    return [c for c in metadata.columns if c.kind != "id"]


def is_numeric_kind(col: ColumnMetadata) -> bool:
    return col.kind in ("continuous", "integer", "datetime")


def _as_plain(s: pd.Series, col: ColumnMetadata) -> pd.Series:
    """Values of a categorical/boolean column in a form where equal values compare equal."""
    if col.kind == "boolean":
        return pd.Series(numeric_values(s, col), index=s.index)
    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.astype(object)
    return s


def category_codes(col: ColumnMetadata, *series: pd.Series) -> tuple[list[np.ndarray], list]:
    """Integer codes of one categorical/boolean column over several frames.

    The categories are the union of the values seen in all ``series`` (declared categories of
    the metadata first, in their order); missing values get the extra code ``len(labels)``.

    Returns
    -------
    codes : list of int64 arrays, one per series
    labels : list of the category values (the missing code is not listed)
    """
    plain = [_as_plain(s, col) for s in series]
    declared = []
    if col.categories is not None:
        declared = [float(c) for c in col.categories] if col.kind == "boolean" else list(col.categories)
    values = pd.concat([pd.Series(declared, dtype=object)] + [p.astype(object) for p in plain],
                       ignore_index=True)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    k = len(uniques)
    codes = np.where(codes < 0, k, codes).astype(np.int64)
    out, start = [], len(declared)
    for p in plain:
        out.append(codes[start:start + len(p)])
        start += len(p)
    return out, list(uniques)


class TableEmbedding:
    """Numeric embedding of a table, fitted on real data (see module docstring).

    Parameters
    ----------
    metadata : Metadata
    max_categories : int or None, default None
        Categorical columns with more categories keep the ``max_categories - 1`` most frequent
        real ones and one "other" column (for the classifiers; distances use every category).
    """

    def __init__(self, metadata: Metadata, max_categories: int | None = None) -> None:
        self.metadata = metadata
        self.max_categories = max_categories

    def fit(self, real: pd.DataFrame) -> "TableEmbedding":
        self.blocks_: list[tuple[ColumnMetadata, dict]] = []
        width = 0
        for col in model_columns(self.metadata):
            s = real[col.name]
            has_na = bool(col.nullable or s.isna().any())
            if is_numeric_kind(col):
                v = numeric_values(s, col)
                fin = v[np.isfinite(v)]
                lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
                scale = 1.0 / (hi - lo) if hi > lo else 1.0
                info = {"lo": lo, "scale": scale, "start": width, "na": has_na}
                width += 1 + int(has_na)
            else:
                plain = _as_plain(s, col).dropna()
                cats = pd.Index(pd.unique(plain.astype(object)))
                if col.categories is not None and col.kind == "categorical":
                    cats = pd.Index(list(col.categories)).append(cats[~cats.isin(col.categories)])
                other = self.max_categories is not None and len(cats) > self.max_categories
                if other:
                    freq = plain.astype(object).value_counts()
                    cats = pd.Index(freq.index[: self.max_categories - 1])
                info = {"cats": cats, "start": width, "na": has_na, "other": other}
                width += len(cats) + int(has_na) + int(other)
            self.blocks_.append((col, info))
        self.n_features_ = width
        return self

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        n = len(df)
        out = np.zeros((n, self.n_features_), dtype=np.float32)
        rows = np.arange(n)
        for col, info in self.blocks_:
            s = df[col.name]
            j = info["start"]
            if "lo" in info:
                v = numeric_values(s, col)
                miss = ~np.isfinite(v)
                out[:, j] = np.where(miss, 0.0, (v - info["lo"]) * info["scale"])
                if info["na"]:
                    out[:, j + 1] = miss
            else:
                plain = _as_plain(s, col)
                codes = info["cats"].get_indexer(plain.astype(object))
                ok = codes >= 0
                out[rows[ok], j + codes[ok]] = _SQRT_HALF
                isna = plain.isna().to_numpy()
                k = len(info["cats"])
                if info["na"]:
                    out[:, j + k] = np.where(isna, _SQRT_HALF, 0.0)
                if info["other"]:
                    out[:, j + k + int(info["na"])] = np.where(~ok & ~isna, _SQRT_HALF, 0.0)
        return out

    def fit_transform(self, real: pd.DataFrame) -> np.ndarray:
        return self.fit(real).transform(real)


def row_keys(X: np.ndarray) -> np.ndarray:
    """One hashable (void) key per row of a float32 matrix, for exact row matching."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    X = X + np.float32(0.0)  # -0.0 -> 0.0
    return X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
