"""Datetime columns: integer ticks -> continuous encoding, and back to the exact dtype."""
from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..exceptions import EncodingError
from ._base import ColumnEncoderMixin
from .gmm import GMMEncoder, resolve_bounds
from .numeric import MinMaxEncoder

__all__ = ["DatetimeEncoder"]

_NAT = np.iinfo(np.int64).min
_TICKS_PER_SECOND = {"s": 1, "ms": 10 ** 3, "us": 10 ** 6, "ns": 10 ** 9}
# candidate resolutions, coarsest first, in seconds as (numerator, denominator)
_RESOLUTIONS = [(86400, 1), (3600, 1), (60, 1), (1, 1), (1, 10 ** 3), (1, 10 ** 6), (1, 10 ** 9)]


def _as_datetime(col: Any, fmt: str | None, name: str) -> pd.Series:
    s = col if isinstance(col, pd.Series) else pd.Series(col, copy=False)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    try:
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            if np.isinf(s.to_numpy(dtype=np.float64, na_value=np.nan)).any():
                raise EncodingError(f"column {name!r} holds infinite values (inf); they are not "
                                    f"datetimes. Replace them with NaN (missing) first.")
            # numbers = POSIX seconds; missing ones become NaT afterwards (NaN given to
            # to_datetime(unit=) can raise FloatingPointError on pandas 2.2)
            secs = s.astype(np.float64)
            return pd.to_datetime(secs.fillna(0.0), unit="s").where(secs.notna())
        return pd.to_datetime(s, format=fmt)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(
            f"column {name!r} should hold datetimes"
            f"{' in format ' + repr(fmt) if fmt else ''} but cannot be parsed ({exc}); fix the "
            f"values, the datetime_format in the metadata, or convert it with pd.to_datetime.") from None


def _ticks(s: pd.Series) -> np.ndarray:
    """int64 ticks since the epoch (UTC for tz-aware data) in the column's own unit."""
    return np.asarray(s.array.asi8, dtype=np.int64)


def _to_ticks(value: Any, unit: str, tz: Any) -> int:
    ts = pd.Timestamp(value)
    if tz is not None:
        ts = ts.tz_localize(tz) if ts.tzinfo is None else ts
        ts = ts.tz_convert("UTC").tz_localize(None)
    elif ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(np.datetime64(ts.to_datetime64(), unit).astype(np.int64))


class DatetimeEncoder(ColumnEncoderMixin):
    """Encode datetimes as a continuous value and restore their exact dtype, unit and zone.

    Each column is converted to integer ticks in its own unit (``s``, ``ms``, ``us`` or
    ``ns``; UTC for tz-aware data), shifted by a reference offset (the lower bound) and
    divided by the coarsest resolution that divides every value (day, hour, minute, second,
    ms, us, ns).  These small integers are exact in float64 and are encoded by a
    :class:`~nhssynth.transformers.GMMEncoder` (``method="gmm"``) or a
    :class:`~nhssynth.transformers.MinMaxEncoder` (``method="minmax"``).

    Parameters
    ----------
    method : {"gmm", "minmax"}, default="gmm"
        Continuous encoding of the ticks.
    n_components : int, default=10
        Passed to :class:`GMMEncoder` when ``method="gmm"``.
    weight_threshold : float, default=0.005
        Passed to :class:`GMMEncoder` when ``method="gmm"``.
    max_fit_samples : int or None, default=10_000
        Passed to :class:`GMMEncoder` when ``method="gmm"``.
    max_iter : int, default=100
        Passed to :class:`GMMEncoder` when ``method="gmm"``.
    bounds : None, (lo, hi) or list of pairs, default=None
        Range (anything :class:`pandas.Timestamp` accepts; naive bounds are read in the
        column's time zone).  None: observed min/max (**derived from the data**).
    datetime_format : str or None, default=None
        ``strftime`` format of string columns; they are decoded back to strings in it.
        Numeric input is read as POSIX seconds.
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    dtypes_ : list
        Dtype of each input column (restored by ``inverse_transform``).
    units_ : list of str
        Unit of the ticks of each column.
    resolution_ : ndarray of int64
        Resolution of each column in ticks (**derived from the data**, like decimals).
    offset_ : ndarray of int64
        Reference tick of each column (the lower bound).
    bounds_ : ndarray of shape ``(n_features_in_, 2)``, int64
        Tick range of each column (observed -- **derived from the data** -- or given).
    encoder_ : GMMEncoder or MinMaxEncoder
        Fitted encoder of the scaled ticks.
    n_iter_ : int
        Most EM iterations of any column (1 for ``method="minmax"``, which has no iterations).
    n_features_out_, n_features_in_, feature_names_in_

    Notes
    -----
    The round trip is exact (same instants, dtype, unit and zone; strings identical for a
    format that round-trips) as long as ``(hi - lo) / resolution < 2**53``: always for
    second/ms/us data spanning < 285 years, and for ns-resolution data spanning < 104 days.
    ``inverse_transform`` returns a DataFrame because numpy cannot hold time zones.
    """

    _parameter_constraints: dict = {
        "method": [StrOptions({"gmm", "minmax"})],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "weight_threshold": [Interval(Real, 0, 1, closed="left")],
        "max_fit_samples": [Interval(Integral, 2, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "bounds": "no_validation",  # per-column pairs, checked against X in fit
        "datetime_format": [str, None],
        "random_state": ["random_state"],
    }

    def __init__(self, method: str = "gmm", *, n_components: int = 10,
                 weight_threshold: float = 0.005, max_fit_samples: int | None = 10_000,
                 max_iter: int = 100, bounds: Any = None, datetime_format: str | None = None,
                 random_state: Any = None) -> None:
        self.method = method
        self.n_components = n_components
        self.weight_threshold = weight_threshold
        self.max_fit_samples = max_fit_samples
        self.max_iter = max_iter
        self.bounds = bounds
        self.datetime_format = datetime_format
        self.random_state = random_state

    def _columns(self, X: Any, reset: bool) -> list[pd.Series]:
        cols = self._input_columns(X, reset=reset, numeric=False)
        out = []
        for j, c in enumerate(cols):
            s = _as_datetime(c, self.datetime_format, self._name(j))
            if s.isna().any():
                raise EncodingError(
                    f"column {self._name(j)!r} has missing values (NaN/NaT) or infinite values "
                    f"(inf); DatetimeEncoder encodes finite observed values only: "
                    f"use TableEncoder or MissingIndicatorEncoder first.")
            out.append(s)
        return out

    def fit(self, X: Any, y: Any = None) -> "DatetimeEncoder":
        """Learn unit, zone, resolution and range, then fit the continuous encoder."""
        self._validate_params()
        raw = self._input_columns(X, reset=True, numeric=False)
        cols = self._columns(X, reset=False)
        pairs = resolve_bounds(self.bounds, len(cols), "DatetimeEncoder")
        self.dtypes_, self.units_ = [], []
        self.resolution_ = np.empty(len(cols), dtype=np.int64)
        self.offset_ = np.empty(len(cols), dtype=np.int64)
        self.bounds_ = np.empty((len(cols), 2), dtype=np.int64)
        scaled = np.empty((len(cols[0]), len(cols)), dtype=np.float64)
        for j, s in enumerate(cols):
            original = getattr(raw[j], "dtype", None)
            self.dtypes_.append(s.dtype if self.datetime_format is None or original is None
                                or pd.api.types.is_datetime64_any_dtype(original) else original)
            unit = s.dt.unit
            tz = getattr(s.dtype, "tz", None)
            self.units_.append(unit)
            t = _ticks(s)
            lo = int(t.min()) if pairs[j][0] is None else _to_ticks(pairs[j][0], unit, tz)
            hi = int(t.max()) if pairs[j][1] is None else _to_ticks(pairs[j][1], unit, tz)
            if lo > hi:
                raise ValueError(f"DatetimeEncoder: lower bound after upper bound for column "
                                 f"{self._name(j)!r}.")
            per_s = _TICKS_PER_SECOND[unit]
            res = 1
            for num, den in _RESOLUTIONS:
                r = num * per_s // den
                if r >= 1 and num * per_s % den == 0 and not np.any(t % r):
                    res = r
                    break
            self.resolution_[j] = res
            self.offset_[j] = (lo // res) * res
            self.bounds_[j] = (lo, hi)
            scaled[:, j] = self._scale(j, t)
        inner_bounds = [(float(self._scale(j, np.array([lo]))[0]), float(self._scale(j, np.array([hi]))[0]))
                        for j, (lo, hi) in enumerate(self.bounds_)]
        if self.method == "gmm":
            self.encoder_ = GMMEncoder(self.n_components, weight_threshold=self.weight_threshold,
                                       max_fit_samples=self.max_fit_samples, max_iter=self.max_iter,
                                       bounds=inner_bounds, random_state=self.random_state)
        else:
            self.encoder_ = MinMaxEncoder(bounds=inner_bounds)
        self.encoder_.fit(scaled)
        self.n_iter_ = getattr(self.encoder_, "n_iter_", 1)
        self.n_features_out_ = self.encoder_.n_features_out_
        return self

    def _scale(self, j: int, t: np.ndarray) -> np.ndarray:
        # integer arithmetic first (exact), then one conversion to float64
        return ((t - self.offset_[j]) // self.resolution_[j]).astype(np.float64)

    def _width(self, j: int) -> int:
        return self.encoder_._width(j)

    def transform(self, X: Any) -> np.ndarray:
        """Encode (float64)."""
        check_is_fitted(self)
        cols = self._columns(X, reset=False)
        out = np.zeros((len(cols[0]), self.n_features_out_), dtype=np.float64)
        start = 0
        for j, s in enumerate(cols):
            width = self._width(j)
            self._encode_into(j, s, out[:, start:start + width])
            start += width
        return out

    def _encode_into(self, j: int, s: pd.Series, out: np.ndarray) -> None:
        if not pd.api.types.is_datetime64_any_dtype(s.dtype):
            s = _as_datetime(s, self.datetime_format, self._name(j))
        t = _ticks(s)
        if s.dt.unit != self.units_[j]:
            t = np.asarray(s.astype(f"datetime64[{self.units_[j]}]" if getattr(s.dtype, "tz", None) is None
                                    else pd.DatetimeTZDtype(self.units_[j], s.dtype.tz)).array.asi8)
        t = np.clip(t, self.bounds_[j, 0], self.bounds_[j, 1])
        self.encoder_._encode_into(j, self._scale(j, t), out)

    def _neutral_row(self, j: int = 0) -> np.ndarray:
        return self.encoder_._neutral_row(j)

    def _decode_ticks(self, j: int, Z: np.ndarray) -> np.ndarray:
        v = np.round(self.encoder_._decode(j, Z))
        t = v.astype(np.int64) * self.resolution_[j] + self.offset_[j]
        return np.clip(t, self.bounds_[j, 0], self.bounds_[j, 1])

    def _restore(self, j: int, ticks: np.ndarray, mask: np.ndarray | None = None) -> Any:
        """Ticks -> array of the original dtype (NaT / NaN where ``mask``)."""
        ticks = ticks.copy()
        has_mask = mask is not None and bool(mask.any())
        if has_mask:
            ticks[mask] = _NAT
        idx = pd.DatetimeIndex(ticks.view(f"datetime64[{self.units_[j]}]"))
        dtype = self.dtypes_[j]
        tz = getattr(dtype, "tz", None)
        if tz is not None:
            idx = idx.tz_localize("UTC").tz_convert(tz)
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return idx.array
        text = idx.strftime(self.datetime_format) if self.datetime_format else idx.astype(str)
        out = np.asarray(text, dtype=object)
        if has_mask:
            out[mask] = np.nan
        return out if dtype == object else pd.array(out, dtype=dtype)

    def inverse_transform(self, X: Any) -> pd.DataFrame:
        """Decode any matrix of the right width to a DataFrame of the original dtypes."""
        Z = self._check_inverse_input(X)
        names = [self._name(j) for j in range(self.n_features_in_)]
        out, start = {}, 0
        for j, name in enumerate(names):
            width = self._width(j)
            values = self._restore(j, self._decode_ticks(j, Z[:, start:start + width]))
            # explicit object dtype: pandas >= 3 would infer "str" for strings
            out[name] = pd.Series(values, dtype=object if getattr(values, "dtype", None) == object else None)
            start += width
        return pd.DataFrame(out)

    def _feature_names_for(self, j: int, name: str) -> list[str]:
        return self.encoder_._feature_names_for(j, name)
