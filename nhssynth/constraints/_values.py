"""Column values as numbers for the rules: floats for numeric columns, int64 ticks (ns since
the epoch, UTC) for datetimes, and back."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_NS_STEPS = (86_400 * 10 ** 9, 3_600 * 10 ** 9, 60 * 10 ** 9, 10 ** 9, 10 ** 6, 10 ** 3, 1)


def as_datetime(series: pd.Series, col: Any) -> pd.Series:
    """The column as datetime64 (UTC-naive for tz-aware data); strings parsed with its format."""
    s = series
    if not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, format=col.datetime_format, utc=col.timezone is not None)
    if getattr(s.dtype, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s


def ticks(series: pd.Series, col: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(int64 ns since the epoch, missing mask)`` of a datetime column."""
    s = as_datetime(series, col)
    mask = s.isna().to_numpy()
    out = np.zeros(len(s), dtype=np.int64)
    out[~mask] = s[~mask].astype("datetime64[ns]").to_numpy().astype(np.int64)
    return out, mask


def from_ticks(values: np.ndarray, mask: np.ndarray, col: Any) -> pd.Series:
    """A datetime column in the representation the metadata declares (datetime64 with its zone,
    or strings in its format) from ns ticks."""
    idx = pd.DatetimeIndex(np.asarray(values, dtype=np.int64).view("datetime64[ns]"))
    if col.timezone is not None:
        idx = idx.tz_localize("UTC").tz_convert(col.timezone)
    dtype = col.pandas_dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        out = pd.Series(idx)
        out[mask] = pd.NaT
        return out.astype(dtype)
    text = np.asarray(idx.strftime(col.datetime_format) if col.datetime_format else idx.astype(str),
                      dtype=object)
    text[mask] = np.nan
    return pd.Series(text, dtype=object)


def numbers(series: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing values."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def coarsest_step(values: np.ndarray) -> int:
    """Coarsest of day, hour, minute, second, ms, us, ns dividing every value (ns)."""
    v = np.asarray(values, dtype=np.int64)
    for step in _NS_STEPS:
        if np.all(v % step == 0):
            return step
    return 1


def round_numeric(values: np.ndarray, col: Any) -> np.ndarray:
    """Round to what the column holds: whole numbers for integers, its declared decimals."""
    if col.kind == "integer":
        return np.round(values)
    if col.decimals is not None:
        return np.round(values, int(col.decimals))
    return values


def unit(col: Any) -> float:
    """The smallest step of a numeric column (1 for integers, 10^-decimals), 0 if continuous."""
    if col.kind == "integer":
        return 1.0
    if col.decimals is not None:
        return 10.0 ** -int(col.decimals)
    return 0.0
