"""Infinite values as values of their own: the open end of an interval-censored time (``u =
inf``: the event had not happened by the last visit), a ratio whose denominator was 0."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from ._base import Constraint

__all__ = ["InfiniteValues"]

_SIGNS = {"+inf": np.inf, "-inf": -np.inf}
_FINITE = "finite"


@dataclass
class InfiniteValues(Constraint):
    """``column`` holds ``+inf`` and/or ``-inf`` as values of their own.

    The generator learns the column with those rows missing and, when needed, a categorical
    column ``<column>__special`` saying which special value each row holds (``finite``,
    ``+inf``, ``-inf``); sampling puts them back.  A column without missing values and with
    one special value needs no extra column: a generated missing value *is* that value.  The
    special values are schema (declared, no budget); how often each occurs is learnt like
    any category (under DP, with noise).

    Inferred metadata adds this rule to every numeric column that holds infinite values
    (with a :class:`~nhssynth.exceptions.MetadataWarning`).

    Parameters
    ----------
    column : str
        A continuous or integer column.
    values : list of {"+inf", "-inf"}, default both
        The special values the column can hold.
    """

    type = "infinite_values"
    reparametrisable = True

    column: str
    values: list = dataclasses.field(default_factory=lambda: ["+inf", "-inf"])

    def __post_init__(self) -> None:
        values = [self.values] if isinstance(self.values, str) else list(self.values)
        bad = [v for v in values if v not in _SIGNS]
        if bad or not values:
            raise MetadataError(f"constraint 'infinite_values' on {self.column!r}: 'values' "
                                f"must list '+inf' and/or '-inf', got {self.values!r}.")
        self.values = sorted(set(values), key=list(_SIGNS).index)

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def restructures(self) -> tuple[str, ...]:
        return (self.column,)

    def describe(self) -> str:
        return f"infinite_values: {self.column} may be {' or '.join(self.values)}"

    def check(self, columns: Mapping[str, Any]) -> None:
        super().check(columns)
        self._require_kinds(columns, [self.column], ("continuous", "integer"),
                            "infinite values")

    def indicator(self, columns: Mapping[str, Any]) -> str | None:
        """Name of the learnt column of special values (None when none is needed)."""
        if len(self.values) == 1 and not columns[self.column].nullable:
            return None
        name = f"{self.column}__special"
        while name in columns:
            name += "_"
        return name

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        values = pd.to_numeric(frame[self.column], errors="coerce").to_numpy(dtype=np.float64)
        allowed = np.isfinite(values) | np.isnan(values)
        for v in self.values:
            allowed |= values == _SIGNS[v]
        return ~allowed

    def transformed_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        col = columns[self.column]
        out = {self.column: dataclasses.replace(col, nullable=True)}
        name = self.indicator(columns)
        if name is not None:
            out[name] = dataclasses.replace(
                col, name=name, kind="categorical", dtype="object", nullable=False,
                categories=[_FINITE, *self.values], ordered=False, min=None, max=None,
                decimals=None, missing="augment", impute_value=None, domain="declared")
        return out

    def transform(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        out = frame.copy()
        values = pd.to_numeric(out[self.column], errors="coerce").to_numpy(dtype=np.float64)
        special = np.isinf(values)
        name = self.indicator(columns)
        if name is not None:
            label = np.full(len(out), _FINITE, dtype=object)
            label[values == np.inf] = "+inf"
            label[values == -np.inf] = "-inf"
            out[name] = label
        out[self.column] = np.where(special, np.nan, values)
        return out

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        out = frame.copy()
        values = pd.to_numeric(out[self.column], errors="coerce").to_numpy(dtype=np.float64,
                                                                            copy=True)
        name = self.indicator(columns)
        if name is not None:
            label = out.pop(name).astype(object).to_numpy()
            for v in self.values:
                values[label == v] = _SIGNS[v]
        if not columns[self.column].nullable:
            # a value the model left missing in a column that has none is its special value
            values[np.isnan(values)] = _SIGNS[self.values[0]]
        out[self.column] = values
        return out
