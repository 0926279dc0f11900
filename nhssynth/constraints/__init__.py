"""Declared constraints: rules that hold in every real row, enforced on every synthetic row.

Declare them in the metadata (Python or YAML, ``constraints:``); they are public knowledge and
cost no privacy budget.  See ``docs/constraints.md``.

>>> from nhssynth.constraints import Inequality
>>> Inequality(low="admitted", high="discharged").describe()
'inequality: discharged >= admitted'
"""
from ._base import CONSTRAINT_TYPES, Constraint, constraint_from_dict
from .combinations import FixedCombinations, OneHot
from .conditions import Conditions
from .inequality import Inequality, Positive, Range
from .infinite import InfiniteValues
from .missingness import MissingLink, MissingWhenMissing
from .plan import ConstraintPlan
from .predicate import RowPredicate

__all__ = [
    "CONSTRAINT_TYPES",
    "Conditions",
    "Constraint",
    "ConstraintPlan",
    "FixedCombinations",
    "Inequality",
    "InfiniteValues",
    "MissingLink",
    "MissingWhenMissing",
    "OneHot",
    "Positive",
    "Range",
    "RowPredicate",
    "constraint_from_dict",
]
