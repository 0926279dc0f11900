"""Rules on where values are missing: a flag that says whether a value was measured, and a
column that is missing whenever another one is."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from ._base import Constraint

__all__ = ["MissingLink", "MissingWhenMissing"]


def _equals(series: pd.Series, value: Any) -> np.ndarray:
    s = series.astype(object)
    return np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) and v == value
                     for v in s], dtype=bool)


@dataclass
class MissingLink(Constraint):
    """``value`` is present exactly when ``flag`` equals ``present``.

    Otherwise ``flag`` equals ``absent``: a lab value and its ``*_measured`` flag.

    The generator does not learn ``flag``: it is derived from whether ``value`` was generated,
    so the two always agree.

    Parameters
    ----------
    value : str
        A nullable column.
    flag : str
        A boolean, categorical or integer column.
    present, absent : scalar, default True, False
        The flag's value when ``value`` is present / missing.
    """

    type = "missing_link"
    reparametrisable = True

    value: str
    flag: str
    present: Any = True
    absent: Any = False

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.value, self.flag)

    @property
    def restructures(self) -> tuple[str, ...]:
        return (self.flag,)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.value,)

    def describe(self) -> str:
        return f"missing_link: {self.flag} == {self.present!r} exactly when {self.value} is present"

    def check(self, columns: Mapping[str, Any]) -> None:
        super().check(columns)
        if self.value == self.flag:
            raise MetadataError(f"constraint {self.describe()!r} links a column with itself.")
        self._require_kinds(columns, [self.flag], ("boolean", "categorical", "integer"),
                            "a missingness flag")
        if self.present == self.absent:
            raise MetadataError(f"constraint {self.describe()!r}: 'present' and 'absent' are "
                                "the same value.")
        cats = columns[self.flag].categories
        if cats is not None and columns[self.flag].domain == "declared":
            for v in (self.present, self.absent):
                if v not in cats:
                    raise MetadataError(f"constraint {self.describe()!r}: {v!r} is not a "
                                        f"category of {self.flag!r} ({cats}).")

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        here = frame[self.value].notna().to_numpy()
        flag = frame[self.flag]
        return ~np.where(here, _equals(flag, self.present), _equals(flag, self.absent))

    def transformed_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        return {self.flag: None}

    def transform(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        return frame.drop(columns=[self.flag])

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        out = frame.copy()
        here = out[self.value].notna().to_numpy()
        flag = np.empty(len(out), dtype=object)
        flag[here], flag[~here] = self.present, self.absent
        out[self.flag] = flag
        return out


@dataclass
class MissingWhenMissing(Constraint):
    """``column`` is missing whenever ``source`` is missing.

    A discharge date needs an admission date.  Enforced on every sample by blanking ``column``
    where ``source`` is missing.
    """

    type = "missing_when_missing"
    reparametrisable = True

    column: str
    source: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column, self.source)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.source,)

    @property
    def adjusts(self) -> tuple[str, ...]:
        return (self.column,)

    def describe(self) -> str:
        return f"missing_when_missing: {self.column} is missing whenever {self.source} is"

    def check(self, columns: Mapping[str, Any]) -> None:
        super().check(columns)
        if self.column == self.source:
            raise MetadataError(f"constraint {self.describe()!r} links a column with itself.")
        if not columns[self.column].nullable:
            raise MetadataError(f"constraint {self.describe()!r}: column {self.column!r} is not "
                                "nullable; mark it nullable or drop the constraint.")

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        return (frame[self.source].isna() & frame[self.column].notna()).to_numpy()

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        out = frame.copy()
        gone = out[self.source].isna().to_numpy()
        if gone.any():
            s = out[self.column].copy()
            if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_extension_array_dtype(s.dtype) \
                    or pd.api.types.is_datetime64_any_dtype(s.dtype):
                s[gone] = None
            else:
                s = s.astype(object) if s.dtype.kind in "biu" else s
                s[gone] = np.nan
            out[self.column] = s
        return out
