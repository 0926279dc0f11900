"""Simple numeric encoding and the integer / rounding / clipping rules used on output.

* :class:`MinMaxEncoder` -- one ``continuous`` scalar in ``[-1, 1]`` per column (an affine map
  of ``[lo, hi]``).  Used for datetimes with ``method="minmax"``; also a light alternative to
  :class:`~nhssynth.transformers.GMMEncoder` for plain numeric columns.
* :func:`decimals_hold` / :func:`finalize_numeric` -- how a decoded float column becomes the
  declared dtype again: clip to the bounds, round to the declared decimals (0 for integers),
  cast (``int64``, nullable ``Int64``, ``float64``...).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._base import ColumnEncoderMixin
from .gmm import resolve_bounds

__all__ = ["MinMaxEncoder", "decimals_hold", "finalize_numeric", "grid_bounds"]


class MinMaxEncoder(ColumnEncoderMixin):
    """Affine map of each column's ``[lo, hi]`` onto ``[-1, 1]`` (one scalar per column).

    Parameters
    ----------
    bounds : None, (lo, hi) or list of pairs, default=None
        Range per column; None (or a None end) means the observed min/max (**derived from the
        data**).  Values are clipped to it on transform and on inverse.

    Attributes
    ----------
    bounds_ : ndarray of shape ``(n_features_in_, 2)``
        Observed or given range.
    n_features_out_, n_features_in_, feature_names_in_
        As usual.

    Notes
    -----
    Inverse is exact up to float64 round-off (about ``1e-16 * (hi - lo)``).  A constant column
    (``lo == hi``) encodes to 0 and decodes to the constant.
    """

    _parameter_constraints: dict = {"bounds": "no_validation"}  # per-column pairs, checked in fit

    def __init__(self, bounds: Any = None) -> None:
        self.bounds = bounds

    def fit(self, X: Any, y: Any = None) -> "MinMaxEncoder":
        """Record the range of each column."""
        self._validate_params()
        cols = self._input_columns(X, reset=True, numeric=True)
        pairs = resolve_bounds(self.bounds, len(cols), "MinMaxEncoder")
        self.bounds_ = np.empty((len(cols), 2))
        for j, x in enumerate(cols):
            self._check_finite(x, j)
            lo = float(x.min()) if pairs[j][0] is None else float(pairs[j][0])
            hi = float(x.max()) if pairs[j][1] is None else float(pairs[j][1])
            if lo > hi:
                raise ValueError(f"MinMaxEncoder: lower bound {lo} > upper bound {hi} for column "
                                 f"{self._name(j)!r}.")
            self.bounds_[j] = (lo, hi)
        self.n_features_out_ = len(cols)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Scale to ``[-1, 1]``."""
        check_is_fitted(self)
        cols = self._input_columns(X, reset=False, numeric=True)
        out = np.empty((len(cols[0]), len(cols)))
        for j, x in enumerate(cols):
            self._check_finite(x, j)
            out[:, j] = self._encode(j, x)
        return out

    def _encode(self, j: int, x: np.ndarray) -> np.ndarray:
        lo, hi = self.bounds_[j]
        if hi == lo:
            return np.zeros(len(x))
        return np.clip(2.0 * (np.clip(x, lo, hi) - lo) / (hi - lo) - 1.0, -1.0, 1.0)

    def _encode_into(self, j: int, x: np.ndarray, out: np.ndarray) -> None:
        out[:, 0] = self._encode(j, x)

    def _width(self, j: int) -> int:
        return 1

    def _neutral_row(self, j: int = 0) -> np.ndarray:
        return np.zeros(1)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Map back to ``[lo, hi]`` (input scalars are clipped to ``[-1, 1]`` first)."""
        Z = self._check_inverse_input(X)
        return np.column_stack([self._decode(j, Z[:, j:j + 1]) for j in range(Z.shape[1])])

    def _decode(self, j: int, Z: np.ndarray) -> np.ndarray:
        lo, hi = self.bounds_[j]
        s = np.clip(Z[:, 0].astype(np.float64), -1.0, 1.0)
        return np.clip(lo + (s + 1.0) * 0.5 * (hi - lo), lo, hi)

    def _feature_names_for(self, j: int, name: str) -> list[str]:
        return [f"{name}__value"]


def decimals_hold(x: np.ndarray, decimals: int, rtol: float = 1e-9) -> bool:
    """Whether rounding ``x`` to ``decimals`` changes no value by more than ``rtol`` relative.

    Used to decide whether declared/inferred decimals may be applied on output without
    breaking the exact round trip of the training data.
    """
    x = x[np.isfinite(x)]
    if x.size == 0:
        return True
    r = np.round(x, decimals)
    return bool(np.all(np.abs(r - x) <= rtol * np.maximum(np.abs(x), 1e-300)))


def grid_bounds(bounds: tuple[float, float], decimals: int) -> tuple[float, float]:
    """Bounds moved onto the ``decimals`` grid, inwards -- unless they are on it up to 1e-9
    relative (then they round to themselves, like the training values that satisfied the
    decimals)."""
    lo, hi = bounds
    scale = 10.0 ** decimals
    lo_r, hi_r = np.round(lo, decimals), np.round(hi, decimals)
    if abs(lo_r - lo) > 1e-9 * abs(lo) and lo_r < lo:
        lo_r = np.ceil(lo * scale) / scale
    if abs(hi_r - hi) > 1e-9 * abs(hi) and hi_r > hi:
        hi_r = np.floor(hi * scale) / scale
    if lo_r > hi_r:  # no grid point inside: the (rounded) midpoint
        lo_r = hi_r = np.round(0.5 * (lo + hi), decimals)
    return float(lo_r), float(hi_r)


def finalize_numeric(values: np.ndarray, mask: np.ndarray | None, dtype: Any, *,
                     decimals: int | None, bounds: tuple[float, float] | None) -> Any:
    """Clip, round and cast decoded floats to ``dtype``; missing where ``mask``.

    Parameters
    ----------
    values : ndarray of float64
    mask : bool ndarray or None
        Rows to set missing (NaN / pd.NA).
    dtype : numpy or pandas dtype
        The column dtype to restore.
    decimals : int or None
        Round to this many decimals (0 for integer columns); None: no rounding.
    bounds : (lo, hi) or None
        Clip to this range (after rounding, re-clipped so rounding cannot leave it).

    Returns
    -------
    ndarray or pandas ExtensionArray of ``dtype``.
    """
    v = np.asarray(values, dtype=np.float64)
    if bounds is not None:
        v = np.clip(v, bounds[0], bounds[1])
    if decimals is not None:
        v = np.round(v, decimals)
        if bounds is not None:  # keep rounded values inside the bounds, on the decimal grid
            v = np.clip(v, *grid_bounds(bounds, decimals))
    dtype = pd.api.types.pandas_dtype(dtype)
    has_mask = mask is not None and bool(mask.any())
    if isinstance(dtype, pd.api.types.CategoricalDtype) or dtype == object:
        out = v.astype(object)
        if has_mask:
            out[mask] = np.nan
        return out
    if pd.api.types.is_extension_array_dtype(dtype):
        if pd.api.types.is_integer_dtype(dtype):
            ints = np.where(mask, 0.0, v) if has_mask else v
            arr = pd.array(ints.astype(dtype.numpy_dtype), dtype=dtype)
        else:
            arr = pd.array(v, dtype=dtype)
        if has_mask:
            arr[mask] = pd.NA
        return arr
    if np.issubdtype(dtype, np.integer):
        if has_mask:  # a non-nullable int column cannot hold missing values: use float
            out = v.copy()
            out[mask] = np.nan
            return out
        info = np.iinfo(dtype)
        return np.clip(v, info.min, info.max).astype(dtype)
    if np.issubdtype(dtype, np.bool_):
        return v >= 0.5
    out = v.astype(dtype)
    if has_mask:
        out[mask] = np.nan
    return out
