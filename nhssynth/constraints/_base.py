"""The constraint interface: what every declared rule can say about a table.

A constraint is a rule that holds in every real row.  It is *declared* (in the metadata, from
documentation or clinical knowledge), so it costs no privacy budget.  Each kind can

* name the columns it reads (``columns``) and check them against the table's column metadata
  (:meth:`Constraint.check`);
* find the rows that break it (:meth:`Constraint.violations`);
* optionally *reparametrise* the table so that any generator's output satisfies it by
  construction: :meth:`Constraint.transform` before the generator sees the rows,
  :meth:`Constraint.reverse` on what it samples, :meth:`Constraint.transformed_columns` for
  the metadata of the columns it replaces (``restructures``).  A constraint that cannot be
  reparametrised (or whose columns another constraint already reparametrises) is enforced by
  rejection: rows that break it are drawn again.

This module (and the package) depends on pandas/numpy and the exceptions only: column
metadata is read through its attributes (``kind``, ``dtype``, ``nullable``, ``decimals``,
``min``, ``max``...) and new column metadata is made with :func:`dataclasses.replace`, so the
metadata module can parse constraints from YAML without an import cycle.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd

from ..exceptions import MetadataError

__all__ = ["Constraint", "constraint_from_dict", "CONSTRAINT_TYPES"]

# YAML ``type`` -> class; filled by ``Constraint.__init_subclass__``
CONSTRAINT_TYPES: dict[str, type["Constraint"]] = {}


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    return value


class Constraint:
    """Base class of the declared constraints (not used on its own).

    Subclasses are dataclasses with a ``type`` name (the YAML key) and implement
    :meth:`violations`; reparametrisable kinds also implement :meth:`transform`,
    :meth:`reverse` and :meth:`transformed_columns` and set ``reparametrisable = True``.
    """

    type: ClassVar[str] = ""
    reparametrisable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.type:
            CONSTRAINT_TYPES[cls.type] = cls

    # -- description ----------------------------------------------------------------------
    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the rule reads."""
        raise NotImplementedError

    @property
    def restructures(self) -> tuple[str, ...]:
        """Columns replaced in the table the generator learns (reparametrisation only)."""
        return ()

    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns :meth:`reverse` reads (they must hold their final values by then)."""
        return ()

    @property
    def adjusts(self) -> tuple[str, ...]:
        """Columns :meth:`reverse` edits in place after they are restored (clipping,
        blanking), without replacing them in the learnt table."""
        return ()

    def can_reparametrise(self, columns: Mapping[str, Any]) -> bool:
        """Whether this instance can be enforced by construction given the metadata."""
        return self.reparametrisable

    def describe(self) -> str:
        """One line for errors and reports, e.g. ``"inequality: dod >= diagnosis"``."""
        return f"{self.type}: {', '.join(self.columns)}"

    def check(self, columns: Mapping[str, Any]) -> None:
        """Raise :class:`MetadataError` when a column is unknown or of a kind the rule cannot
        apply to.  ``columns`` maps names to column metadata."""
        for name in self.columns:
            if name not in columns:
                raise MetadataError(f"constraint {self.describe()!r} names column {name!r}, which "
                                    f"is not in the metadata; known columns: {list(columns)}.")
            if columns[name].kind == "id":
                raise MetadataError(f"constraint {self.describe()!r}: column {name!r} is an "
                                    "identifier (kind: id), which is not modelled; drop it from "
                                    "the constraint.")

    def _require_kinds(self, columns: Mapping[str, Any], names, kinds: tuple[str, ...],
                       what: str) -> None:
        for name in names:
            if columns[name].kind not in kinds:
                raise MetadataError(f"constraint {self.describe()!r}: column {name!r} is "
                                    f"{columns[name].kind}; {what} needs {' or '.join(kinds)} "
                                    "columns.")

    # -- rows ---------------------------------------------------------------------------------
    def violations(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean array: ``True`` where a row breaks the rule."""
        raise NotImplementedError

    # -- reparametrisation --------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> "Constraint":
        """Learn what the reparametrisation needs from the (validated) real rows.  Only a few
        bits of schema may be read here (a datetime resolution), never a value."""
        return self

    def transformed_columns(self, columns: Mapping[str, Any]) -> dict[str, Any]:
        """Column metadata of the table the generator learns, for the columns this rule adds
        or replaces (``None`` as a value drops that column)."""
        return {}

    def transform(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        return frame

    def reverse(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> pd.DataFrame:
        return frame

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            if f.name.startswith("_") or not f.init:
                continue
            value = getattr(self, f.name)
            if value != f.default or f.default is dataclasses.MISSING:
                # ``columns_`` stores ``columns`` (the name of the interface property)
                out[f.name.rstrip("_")] = _to_builtin(value)
        return out

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> "Constraint":
        known = {f.name.rstrip("_") for f in dataclasses.fields(cls)
                 if f.init and not f.name.startswith("_")}
        unknown = set(spec) - known - {"type"}
        if unknown:
            raise MetadataError(f"constraint of type {cls.type!r}: unknown field(s) "
                                f"{sorted(unknown)}; allowed fields are {sorted(known)}.")
        try:
            return cls(**{k: v for k, v in spec.items() if k != "type"})
        except TypeError as exc:
            raise MetadataError(f"constraint of type {cls.type!r}: {exc}; allowed fields are "
                                f"{sorted(known)}.") from None


def constraint_from_dict(spec: Any) -> Constraint:
    """A constraint from its YAML/dict form ``{"type": ..., **fields}``."""
    if isinstance(spec, Constraint):
        return spec
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise MetadataError(f"a constraint must be a mapping with a 'type' key (one of "
                            f"{sorted(CONSTRAINT_TYPES)}), got {spec!r}.")
    kind = spec["type"]
    if kind not in CONSTRAINT_TYPES:
        raise MetadataError(f"unknown constraint type {kind!r}; use one of "
                            f"{sorted(CONSTRAINT_TYPES)}.")
    return CONSTRAINT_TYPES[kind].from_dict(spec)
