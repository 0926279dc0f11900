"""Numeric views of table columns, shared by the generators and the metrics."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .metadata import ColumnMetadata

__all__ = ["numeric_values"]

_EPOCH = pd.Timestamp(0, tz="UTC")


def numeric_values(s: pd.Series, col: ColumnMetadata) -> np.ndarray:
    """Float64 view of a numeric, boolean or datetime column (NaN where missing).

    Datetimes become seconds since 1970-01-01 UTC (naive datetimes are read as UTC).
    """
    if col.kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            dt = s.dt.tz_convert("UTC") if getattr(s.dtype, "tz", None) is not None \
                else s.dt.tz_localize("UTC")
        else:
            dt = pd.to_datetime(s, format=col.datetime_format, errors="coerce", utc=True)
        return (dt - _EPOCH).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if s.dtype == object:
        s = pd.to_numeric(s, errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)
