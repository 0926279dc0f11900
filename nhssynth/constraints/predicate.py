"""A rule given as Python code: enforced by rejection only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from ._base import Constraint

__all__ = ["RowPredicate"]


@dataclass
class RowPredicate(Constraint):
    """Any rule written as a function of the table, enforced by rejection.

    ``predicate(frame)`` returns a boolean array (``True`` where a row is valid).

    It cannot be reparametrised, so sampled rows that break it are drawn again (a bounded
    number of rounds; a clear error says which share of draws it rejects).  It lives in Python
    only: it is not written to YAML.

    Parameters
    ----------
    predicate : callable
        ``DataFrame -> array of bool`` (vectorised).
    columns : list of str
        The columns it reads (checked against the metadata).
    name : str, optional
        For errors and reports.
    """

    type = "row_predicate"

    predicate: Callable[[pd.DataFrame], Any]
    columns_: list
    name: str = "row predicate"

    def __init__(self, predicate, columns, name: str = "row predicate") -> None:
        self.predicate = predicate
        self.columns_ = list(columns)
        self.name = name

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.columns_)

    def describe(self) -> str:
        return f"row_predicate: {self.name}"

    def check(self, columns) -> None:
        if not callable(self.predicate):
            raise MetadataError(f"constraint {self.describe()!r}: predicate must be callable.")
        super().check(columns)

    def violations(self, frame: pd.DataFrame, columns=None) -> np.ndarray:
        ok = np.asarray(self.predicate(frame))
        if ok.shape != (len(frame),) or ok.dtype != bool:
            raise MetadataError(f"constraint {self.describe()!r}: the predicate must return one "
                                f"bool per row, got shape {ok.shape} and dtype {ok.dtype}.")
        return ~ok

    def to_dict(self) -> dict:
        raise MetadataError(f"constraint {self.describe()!r} is Python code and cannot be "
                            "written to YAML; declare it in Python (Metadata(..., "
                            "constraints=[RowPredicate(...)])).")
