"""Rules over a group of columns: only some combinations of values occur; one-hot flags."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from ._base import Constraint, _to_builtin

__all__ = ["FixedCombinations", "OneHot"]

_DISCRETE = ("categorical", "boolean", "integer")


def _plain(v: Any) -> Any:
    """A JSON-able form of one cell (missing -> None)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return _to_builtin(v)


def _key(values) -> str:
    return json.dumps([_plain(v) for v in values], separators=(",", ":"))


class _ColumnGroup(Constraint):
    """A rule over a group of columns, learnt as one categorical column (``joint_name``)."""

    reparametrisable = True
    _prefix: ClassVar[str] = "__group__"
    _kinds: ClassVar[tuple[str, ...]] = _DISCRETE
    _what: ClassVar[str] = "a group"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.columns_)

    @property
    def restructures(self) -> tuple[str, ...]:
        return self.columns

    @property
    def joint_name(self) -> str:
        return self._prefix + "__".join(self.columns)

    def describe(self) -> str:
        return f"{self.type}: {', '.join(self.columns)}"

    def check(self, columns: Mapping[str, Any]) -> None:
        if len(self.columns) < 2 or len(set(self.columns)) != len(self.columns):
            raise MetadataError(f"constraint {self.describe()!r}: name two or more distinct "
                                "columns.")
        super().check(columns)
        self._require_kinds(columns, self.columns, self._kinds, self._what)

    def _joint_columns(self, columns: Mapping[str, Any], categories: list | None,
                       declared: bool) -> dict[str, Any]:
        """The group's columns dropped, and the joint column's metadata."""
        joint = dataclasses.replace(
            columns[self.columns[0]], name=self.joint_name, kind="categorical", dtype="object",
            nullable=False, categories=categories, ordered=False, min=None, max=None,
            decimals=None, datetime_format=None, timezone=None, missing="augment",
            impute_value=None, domain="declared" if declared else "data")
        out: dict[str, Any] = {c: None for c in self.columns}
        out[self.joint_name] = joint
        return out

    def _replace(self, frame: pd.DataFrame, values) -> pd.DataFrame:
        out = frame.drop(columns=list(self.columns))
        out[self.joint_name] = values
        return out


@dataclass
class FixedCombinations(_ColumnGroup):
    """Only some combinations of the values of ``columns`` occur.

    Codes that go together, a pregnant patient who is female.

    The generator learns the combination as *one* categorical column, so it can only sample
    combinations in its category set: the ``allowed`` list when declared (public, no budget),
    otherwise the combinations released under DP like any category set (a combination too rare
    to be released is never sampled).

    Parameters
    ----------
    columns : list of str
        Two or more categorical, boolean or integer columns.
    allowed : list of lists, optional
        The allowed combinations, each a list of values in ``columns`` order (``null`` for
        missing).
    """

    type = "fixed_combinations"
    _prefix = "__combination__"
    _what = "fixed combinations"

    columns_: list = field(metadata={"yaml": "columns"})
    allowed: list | None = None

    # dataclass field named ``columns_`` so that ``columns`` stays the interface property
    def __init__(self, columns, allowed=None) -> None:
        self.columns_ = list(columns)
        self.allowed = None if allowed is None else [list(c) for c in allowed]

    def check(self, columns: Mapping[str, Any]) -> None:
        super().check(columns)
        if self.allowed is not None:
            if not self.allowed:
                raise MetadataError(f"constraint {self.describe()!r}: 'allowed' is empty; no row "
                                    "could be generated.")
            for combo in self.allowed:
                if len(combo) != len(self.columns):
                    raise MetadataError(f"constraint {self.describe()!r}: allowed combination "
                                        f"{combo!r} has {len(combo)} values for "
                                        f"{len(self.columns)} columns.")

    def _keys(self, frame: pd.DataFrame) -> pd.Series:
        cols = [frame[c].astype(object).to_numpy() for c in self.columns]
        return pd.Series([_key(vals) for vals in zip(*cols)], index=frame.index, dtype=object)

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        """Rows whose combination is not allowed (rows missing every value of the group are
        not checked).  Without ``allowed`` the rule has no list
        to check against (its combinations are those a generator released under DP, enforced
        by construction): no row is flagged; :meth:`with_reference` makes a checkable copy
        from a reference table."""
        allowed = self._allowed_keys()
        if allowed is None:
            return np.zeros(len(frame), dtype=bool)
        # a row with no value in the group states no combination (a group withheld because
        # too few rows support any combination under DP is generated as missing)
        empty = frame[list(self.columns)].isna().all(axis=1).to_numpy()
        return ~self._keys(frame).isin(allowed).to_numpy() & ~empty

    def with_reference(self, frame: pd.DataFrame) -> "FixedCombinations":
        """A copy whose ``allowed`` list is the combinations in ``frame`` (for evaluation
        against the real table; never used to fit)."""
        if self.allowed is not None:
            return self
        keys = sorted(set(self._keys(frame)))
        return FixedCombinations(self.columns, [json.loads(k) for k in keys])

    def _allowed_keys(self) -> list[str] | None:
        return None if self.allowed is None else [_key(c) for c in self.allowed]

    def fit(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> "FixedCombinations":
        return self

    def transformed_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        allowed = self._allowed_keys()
        return self._joint_columns(columns, allowed, declared=allowed is not None)

    def transform(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        return self._replace(frame, self._keys(frame).to_numpy())

    def transformed_categories(self, frame: pd.DataFrame) -> list[str]:
        """The combinations seen in ``frame`` (for inferred metadata, ``domain: data``: the
        private generators release them under DP)."""
        return sorted(set(self._keys(frame)))

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        out = frame.copy()
        # a missing joint value (a withheld group) decodes to a missing value in every column
        keys = out.pop(self.joint_name).astype(object).where(lambda k: k.notna(), "").to_numpy()
        decoded = {k: json.loads(k) if k else [None] * len(self.columns) for k in set(keys)}
        rows = [decoded[k] for k in keys]
        for j, name in enumerate(self.columns):
            vals = np.empty(len(rows), dtype=object)
            vals[:] = [r[j] for r in rows]
            out[name] = vals
        return out


@dataclass
class OneHot(_ColumnGroup):
    """Exactly one of ``columns`` is 1 (``True``) in every row; the others are 0 (``False``).

    The generator learns which column is set, as one categorical column whose categories are
    the column names (public), so every sampled row has exactly one.
    """

    type = "one_hot"
    _prefix = "__one_hot__"
    _kinds = ("boolean", "integer")
    _what = "a one-hot group"

    columns_: list = field(default_factory=list)

    def __init__(self, columns) -> None:
        self.columns_ = list(columns)

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return np.column_stack([pd.to_numeric(frame[c].astype(object), errors="coerce")
                                .to_numpy(dtype=np.float64, na_value=np.nan)
                                for c in self.columns])

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        m = self._matrix(frame)
        ok = np.isin(m, (0.0, 1.0)).all(axis=1) & (np.nansum(m, axis=1) == 1)
        return ~ok

    def transformed_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        # the categories are the column names: public, no budget
        return self._joint_columns(columns, list(self.columns), declared=True)

    def transform(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        return self._replace(frame, np.asarray(self.columns, dtype=object)[
            np.argmax(self._matrix(frame), axis=1)])

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        out = frame.copy()
        which = out.pop(self.joint_name).to_numpy()
        for name in self.columns:
            hit = which == name
            col = columns[name]
            if col.kind == "boolean" and col.categories is not None \
                    and not set(col.categories) <= {True, False}:
                # a 0/1 boolean column: its categories are the two values
                values = np.where(hit, 1, 0)
            elif col.kind == "boolean":
                values = hit
            else:
                values = hit.astype(np.int64)
            out[name] = values
        return out
