"""Order between two columns (``high >= low + offset``) and one-column ranges."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from ._base import Constraint
from ._values import coarsest_step, from_ticks, numbers, round_numeric, ticks, unit

__all__ = ["Inequality", "Range", "Positive"]

_ORDERED = ("continuous", "integer", "datetime")


@dataclass
class Inequality(Constraint):
    """``high >= low + offset`` (``>`` when ``strict``) wherever both are present.

    Numbers or datetimes (a date of death never before the date of diagnosis: ``low:
    diagnosis_date, high: death_date``).  When ``low`` cannot be missing, the generator learns
    the gap ``high - low - offset`` instead of ``high`` (a non-negative column), so every
    sampled row satisfies the rule by construction; otherwise rows that break it are drawn
    again.

    Parameters
    ----------
    low, high : str
        Column names.
    strict : bool, default False
        ``high > low + offset``.
    offset : number or str, default 0
        A number for numeric columns; a pandas timedelta string (``"1D"``, ``"12h"``) for
        datetimes.
    """

    type = "inequality"
    reparametrisable = True

    low: str
    high: str
    strict: bool = False
    offset: Any = 0
    _step: int = field(default=1, init=False, repr=False, compare=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.low, self.high)

    @property
    def restructures(self) -> tuple[str, ...]:
        return (self.high,)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.low,)

    def describe(self) -> str:
        op = ">" if self.strict else ">="
        off = f" + {self.offset}" if self.offset not in (0, None, "0") else ""
        return f"inequality: {self.high} {op} {self.low}{off}"

    def check(self, columns: Mapping[str, Any]) -> None:
        super().check(columns)
        if self.low == self.high:
            raise MetadataError(f"constraint {self.describe()!r} compares a column with itself.")
        self._require_kinds(columns, self.columns, _ORDERED, "an inequality")
        kinds = {columns[self.low].kind == "datetime", columns[self.high].kind == "datetime"}
        if len(kinds) > 1:
            raise MetadataError(f"constraint {self.describe()!r}: one column is a datetime and "
                                "the other a number; compare two datetimes or two numbers.")
        self._offset(columns)

    def _is_datetime(self, columns) -> bool:
        return columns[self.low].kind == "datetime"

    def _offset(self, columns) -> float:
        """The offset as a number (ns for datetimes)."""
        if self._is_datetime(columns):
            if self.offset in (0, None):
                return 0
            if not isinstance(self.offset, str):
                raise MetadataError(f"constraint {self.describe()!r}: the offset between two "
                                    "datetimes must be a timedelta string such as '1D' or '12h', "
                                    f"got {self.offset!r}.")
            try:
                return int(pd.Timedelta(self.offset).value)
            except ValueError:
                raise MetadataError(f"constraint {self.describe()!r}: offset {self.offset!r} is "
                                    "not a timedelta ('1D', '12h', '30min').") from None
        if isinstance(self.offset, bool) or not isinstance(self.offset, Real):
            raise MetadataError(f"constraint {self.describe()!r}: offset must be a number, got "
                                f"{self.offset!r}.")
        return float(self.offset)

    def _pairs(self, frame: pd.DataFrame, columns):
        if self._is_datetime(columns):
            lo, lo_na = ticks(frame[self.low], columns[self.low])
            hi, hi_na = ticks(frame[self.high], columns[self.high])
            return lo, hi, lo_na | hi_na
        lo, hi = numbers(frame[self.low]), numbers(frame[self.high])
        return lo, hi, np.isnan(lo) | np.isnan(hi)

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        columns = columns if columns is not None else self._columns
        lo, hi, absent = self._pairs(frame, columns)
        gap = hi - lo - self._offset(columns)
        # numbers: a float rounding error is not a violation (3.00 - 1.50 - 1.5 may be -2e-16)
        tol = 0.0 if self._is_datetime(columns) else \
            1e-9 * (np.abs(lo) + np.abs(hi) + abs(self._offset(columns)) + 1.0)
        with np.errstate(invalid="ignore"):
            ok = gap > tol if self.strict else gap >= -tol
        return ~absent & ~ok

    # -- reparametrisation: the generator learns the gap --------------------------------------
    def can_reparametrise(self, columns: Mapping[str, Any]) -> bool:
        return not columns[self.low].nullable

    def fit(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> "Inequality":
        self._columns = dict(columns)
        if self._is_datetime(columns):
            lo, hi, absent = self._pairs(frame, columns)
            gaps = (hi - lo - self._offset(columns))[~absent]
            # the coarsest unit dividing every gap, read like the datetime encoder's resolution
            self._step = coarsest_step(gaps) if gaps.size else 1
        return self

    def _min_gap(self, columns) -> float:
        if not self.strict:
            return 0.0
        if self._is_datetime(columns):
            return 1.0
        return unit(columns[self.high]) if columns[self.low].kind == columns[self.high].kind \
            == "integer" else 0.0

    def _gap_is_integer(self, columns) -> bool:
        if self._is_datetime(columns):
            return True
        off = self._offset(columns)
        return columns[self.low].kind == columns[self.high].kind == "integer" \
            and float(off).is_integer()

    def transformed_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        lo_col, hi_col = columns[self.low], columns[self.high]
        integer = self._gap_is_integer(columns)
        gap_max = None
        if lo_col.min is not None and hi_col.max is not None and lo_col.domain == hi_col.domain \
                == "declared":
            if self._is_datetime(columns):
                lo_min, _ = lo_col.bounds()
                _, hi_max = hi_col.bounds()
                span = (pd.Timestamp(hi_max).value - pd.Timestamp(lo_min).value
                        - self._offset(columns))
                gap_max = max(int(span // self._step), 1)
            else:
                gap_max = float(hi_col.max) - float(lo_col.min) - self._offset(columns)
                gap_max = max(gap_max, 1.0)
                gap_max = int(np.ceil(gap_max)) if integer else gap_max
        decimals = None
        if not integer:
            ds = [c.decimals for c in (lo_col, hi_col)]
            decimals = max(ds) if all(d is not None for d in ds) else None
        gap = dataclasses.replace(
            hi_col, kind="integer" if integer else "continuous",
            dtype=("Int64" if hi_col.nullable else "int64") if integer else "float64",
            categories=None, ordered=False, min=0 if integer else 0.0, max=gap_max,
            decimals=decimals, datetime_format=None, timezone=None,
            impute_value=None if hi_col.missing == "impute" else hi_col.impute_value)
        return {self.high: gap}

    def transform(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        lo, hi, absent = self._pairs(frame, columns)
        gap = (hi - lo - self._offset(columns)).astype(np.float64)
        if self._is_datetime(columns):
            gap = gap / self._step
        gap[absent] = np.nan
        out = frame.copy()
        out[self.high] = pd.array(np.round(gap), dtype="Int64") if self._gap_is_integer(columns) \
            else gap
        return out

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        out = frame.copy()
        gap = numbers(out[self.high])
        missing = np.isnan(gap)
        gap = np.maximum(np.where(missing, 0.0, gap), self._min_gap(columns))
        hi_col = columns[self.high]
        if self._is_datetime(columns):
            lo, lo_na = ticks(out[self.low], columns[self.low])
            hi = lo + self._offset(columns) + np.round(gap).astype(np.int64) * self._step
            out[self.high] = from_ticks(hi, missing | lo_na, hi_col).to_numpy()
            return out
        floor = numbers(out[self.low]) + self._offset(columns)
        hi = round_numeric(floor + gap, hi_col)
        step = unit(hi_col)
        if self.strict:
            bump = np.nextafter(floor, np.inf) if step == 0 else round_numeric(floor + step, hi_col)
            hi = np.where(hi <= floor, bump, hi)
        else:
            hi = np.where(hi < floor, floor, hi)
        if hi_col.min is not None and hi_col.domain == "declared":
            hi = np.maximum(hi, float(hi_col.min))  # raising high keeps the order
        hi[missing] = np.nan
        out[self.high] = hi
        return out


@dataclass
class Range(Constraint):
    """``min <= column <= max`` (either side optional) for a number or a datetime.

    With both sides given the range becomes the column's declared bounds (public, so the
    generators use them without spending budget); a one-sided range clips sampled values.
    """

    type = "range"
    reparametrisable = True

    column: str
    min: Any = None
    max: Any = None

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def adjusts(self) -> tuple[str, ...]:
        return (self.column,)

    def describe(self) -> str:
        lo = "" if self.min is None else f"{self.min} <= "
        hi = "" if self.max is None else f" <= {self.max}"
        return f"range: {lo}{self.column}{hi}"

    def check(self, columns: Mapping[str, Any]) -> None:
        super().check(columns)
        self._require_kinds(columns, self.columns, _ORDERED, "a range")
        if self.min is None and self.max is None:
            raise MetadataError(f"constraint on {self.column!r}: a range needs min, max or both.")
        lo, hi = self._bounds(columns)
        if lo is not None and hi is not None and lo > hi:
            raise MetadataError(f"constraint {self.describe()!r}: min is greater than max; no "
                                "value can satisfy it.")

    def _bounds(self, columns) -> tuple[Any, Any]:
        col = columns[self.column]
        if col.kind == "datetime":
            conv = lambda v: None if v is None else int(pd.Timestamp(v).tz_localize(None).value  # noqa: E731
                                                           if pd.Timestamp(v).tzinfo is None
                                                           else pd.Timestamp(v).tz_convert("UTC")
                                                           .tz_localize(None).value)
            return conv(self.min), conv(self.max)
        for v in (self.min, self.max):
            if v is not None and (isinstance(v, bool) or not isinstance(v, Real)):
                raise MetadataError(f"constraint {self.describe()!r}: bounds of a numeric column "
                                    f"must be numbers, got {v!r}.")
        return self.min, self.max

    def _values(self, frame, columns):
        col = columns[self.column]
        if col.kind == "datetime":
            v, mask = ticks(frame[self.column], col)
            return v.astype(np.float64), mask
        v = numbers(frame[self.column])
        return v, np.isnan(v)

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        columns = columns if columns is not None else self._columns
        v, mask = self._values(frame, columns)
        lo, hi = self._bounds(columns)
        bad = np.zeros(len(v), dtype=bool)
        if lo is not None:
            bad |= v < lo
        if hi is not None:
            bad |= v > hi
        return bad & ~mask

    def fit(self, frame, columns):
        self._columns = dict(columns)
        return self

    def transformed_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        col = columns[self.column]
        lo = self.min if col.min is None or self.min is None else max(col.min, self.min, key=_key)
        hi = self.max if col.max is None or self.max is None else min(col.max, self.max, key=_key)
        lo = col.min if lo is None else lo
        hi = col.max if hi is None else hi
        return {self.column: dataclasses.replace(col, min=lo, max=hi)}

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        col = columns[self.column]
        out = frame.copy()
        if col.kind == "datetime":
            v, mask = ticks(out[self.column], col)
            lo, hi = self._bounds(columns)
            v = np.clip(v, lo if lo is not None else v.min(initial=0),
                        hi if hi is not None else v.max(initial=0))
            out[self.column] = from_ticks(v, mask, col).to_numpy()
            return out
        v = numbers(out[self.column])
        lo, hi = self._bounds(columns)
        v = np.clip(v, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        out[self.column] = v
        return out


def _key(v):
    return pd.Timestamp(v).value if isinstance(v, str) else v


@dataclass
class Positive(Range):
    """``column >= 0`` (``> 0`` when ``strict``): counts, durations, doses."""

    type = "positive"

    column: str
    strict: bool = False
    min: Any = field(default=None, init=False, repr=False)
    max: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.min = 0

    def describe(self) -> str:
        return f"positive: {self.column} {'>' if self.strict else '>='} 0"

    def check(self, columns: Mapping[str, Any]) -> None:
        Constraint.check(self, columns)
        self._require_kinds(columns, self.columns, ("continuous", "integer"), "positivity")
        col = columns[self.column]
        if self.strict:
            step = unit(col)
            self.min = step if step else float(np.nextafter(0.0, 1.0))

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        v = numbers(frame[self.column])
        with np.errstate(invalid="ignore"):
            bad = v <= 0 if self.strict else v < 0
        return bad & ~np.isnan(v)
