"""Conditions of a conditional draw: ``sample(n, conditions={...})``.

One entry per column, on the original (unconstrained) table:

* a scalar: equality (``"F"``, ``True``, ``3``; ``None`` asks for a missing value);
* a list or a set: membership (``["E10", "E11"]``);
* a 2-tuple ``(low, high)`` or a mapping ``{"min": low, "max": high}``: an inclusive range on a
  number or a datetime (``None`` for an open side).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from ._values import numbers, ticks

__all__ = ["Conditions"]


def _is_missing(v: Any) -> bool:
    return v is None or (not isinstance(v, str) and not isinstance(v, (list, tuple, set))
                         and pd.isna(v))


@dataclass(frozen=True)
class _Condition:
    column: str
    op: str             # "in" or "range"
    values: tuple       # "in": the allowed values (None for missing); "range": (low, high)
    kind: str


class Conditions:
    """Validated conditions on some columns of a table.

    Parameters
    ----------
    conditions : mapping
        Column name -> condition (see the module docstring).
    columns : mapping
        Column name -> column metadata of the original table.
    """

    def __init__(self, conditions: Mapping[str, Any], columns: Mapping[str, Any]) -> None:
        if not isinstance(conditions, Mapping):
            raise MetadataError(f"conditions must be a mapping of column -> value, got "
                                f"{type(conditions).__name__}.")
        self.items = [self._parse(name, spec, columns) for name, spec in conditions.items()]

    @staticmethod
    def _parse(name: str, spec: Any, columns: Mapping[str, Any]) -> _Condition:
        if name not in columns:
            raise MetadataError(f"condition on {name!r}: no such column; known columns: "
                                f"{list(columns)}.")
        col = columns[name]
        if col.kind == "id":
            raise MetadataError(f"condition on {name!r}: an identifier column (kind: id) is not "
                                "modelled, so it cannot be conditioned on.")
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"min", "max"}
            if unknown:
                raise MetadataError(f"condition on {name!r}: a range is {{'min': ..., 'max': "
                                    f"...}}; unknown key(s) {sorted(unknown)}.")
            spec = (spec.get("min"), spec.get("max"))
        if isinstance(spec, tuple):
            return Conditions._range(name, spec, col)
        values = tuple(spec) if isinstance(spec, (list, set, frozenset)) else (spec,)
        if not values:
            raise MetadataError(f"condition on {name!r}: an empty list allows no value.")
        values = tuple(None if _is_missing(v) else v for v in values)
        if None in values and not col.nullable:
            raise MetadataError(f"condition on {name!r} asks for missing values, but the column "
                                "has none (it is not nullable).")
        if col.kind == "datetime":
            values = tuple(None if v is None else _timestamp(v, name) for v in values)
        elif col.kind in ("continuous", "integer"):
            for v in values:
                if v is not None and (isinstance(v, bool) or not isinstance(v, Real)):
                    raise MetadataError(f"condition on {name!r}: {v!r} is not a number.")
        cats = col.categories
        if cats is not None and col.kind in ("categorical", "boolean"):
            unknown = [v for v in values if v is not None and v not in cats]
            if unknown and col.domain == "declared":
                raise MetadataError(f"condition on {name!r}: {unknown} is not a category of the "
                                    f"column (declared categories: {cats}); no row can meet it.")
        if col.kind in ("continuous", "integer", "datetime") and col.min is not None \
                and col.max is not None and col.domain == "declared":
            lo, hi = col.bounds()
            lo, hi = (_timestamp(lo, name), _timestamp(hi, name)) if col.kind == "datetime" \
                else (lo, hi)
            outside = [v for v in values if v is not None and not lo <= v <= hi]
            if outside and len(outside) == len([v for v in values if v is not None]) \
                    and None not in values:
                raise MetadataError(f"condition on {name!r}: {outside} lies outside the column's "
                                    f"declared range [{col.min}, {col.max}]; no row can meet it.")
        return _Condition(name, "in", values, col.kind)

    @staticmethod
    def _range(name: str, spec: tuple, col: Any) -> _Condition:
        if len(spec) != 2:
            raise MetadataError(f"condition on {name!r}: a range is a 2-tuple (low, high), got "
                                f"{spec!r}; use a list for a set of values.")
        if col.kind not in ("continuous", "integer", "datetime"):
            raise MetadataError(f"condition on {name!r}: a range needs a numeric or datetime "
                                f"column; {name!r} is {col.kind} (use a list of values).")
        lo, hi = spec
        if col.kind == "datetime":
            lo = None if lo is None else _timestamp(lo, name)
            hi = None if hi is None else _timestamp(hi, name)
        else:
            for v in (lo, hi):
                if v is not None and (isinstance(v, bool) or not isinstance(v, Real)):
                    raise MetadataError(f"condition on {name!r}: range bound {v!r} is not a "
                                        "number.")
        if lo is not None and hi is not None and lo > hi:
            raise MetadataError(f"condition on {name!r}: low ({spec[0]}) is above high "
                                f"({spec[1]}); no row can meet it.")
        if col.min is not None and col.max is not None and col.domain == "declared":
            cmin, cmax = col.bounds()
            if col.kind == "datetime":
                cmin, cmax = _timestamp(cmin, name), _timestamp(cmax, name)
            if (lo is not None and lo > cmax) or (hi is not None and hi < cmin):
                raise MetadataError(f"condition on {name!r}: the range {spec} lies outside the "
                                    f"column's declared range [{col.min}, {col.max}]; no row "
                                    "can meet it.")
        return _Condition(name, "range", (lo, hi), col.kind)

    # -- rows -----------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return [c.column for c in self.items]

    def __bool__(self) -> bool:
        return bool(self.items)

    def accepts(self, column: str, series: pd.Series, col: Any) -> np.ndarray:
        """Where the values of ``column`` meet its condition (all ``True`` without one)."""
        cond = next((c for c in self.items if c.column == column), None)
        if cond is None:
            return np.ones(len(series), dtype=bool)
        if cond.kind == "datetime":
            t, missing = ticks(series, col)
            values = t.astype(np.float64)
        elif cond.kind in ("continuous", "integer"):
            values = numbers(series)
            missing = np.isnan(values)
        else:
            values, missing = series.astype(object).to_numpy(), series.isna().to_numpy()
        if cond.op == "range":
            lo, hi = cond.values
            lo = -np.inf if lo is None else (_ns(lo) if cond.kind == "datetime" else lo)
            hi = np.inf if hi is None else (_ns(hi) if cond.kind == "datetime" else hi)
            with np.errstate(invalid="ignore"):
                return ~missing & (values >= lo) & (values <= hi)
        ok = np.zeros(len(series), dtype=bool)
        for v in cond.values:
            if v is None:
                ok |= missing
            elif cond.kind == "datetime":
                ok |= ~missing & (values == _ns(v))
            else:
                ok |= ~missing & np.array([x == v for x in values], dtype=bool)
        return ok

    def mask(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> np.ndarray:
        """Where every condition holds."""
        ok = np.ones(len(frame), dtype=bool)
        for c in self.items:
            ok &= self.accepts(c.column, frame[c.column], columns[c.column])
        return ok

    def describe(self) -> str:
        parts = []
        for c in self.items:
            if c.op == "range":
                parts.append(f"{c.values[0]} <= {c.column} <= {c.values[1]}")
            else:
                parts.append(f"{c.column} in {list(c.values)}" if len(c.values) > 1
                             else f"{c.column} == {c.values[0]!r}")
        return ", ".join(parts)

    def get(self, column: str) -> _Condition | None:
        return next((c for c in self.items if c.column == column), None)


def _timestamp(v: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        raise MetadataError(f"condition on {name!r}: {v!r} is not a datetime.") from None
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


def _ns(ts: pd.Timestamp) -> float:
    return float(ts.as_unit("ns").value)
