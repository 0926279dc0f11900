"""How a set of declared constraints is applied to a table and its samples.

:class:`ConstraintPlan` decides, for each constraint, whether it is enforced *by construction*
(its ``transform`` runs before the generator sees the rows and its ``reverse`` on what the
generator samples) or *by rejection* (rows that break it are drawn again).  A constraint is
reparametrised when its kind allows it, the metadata allows it (an inequality whose lower
column can be missing cannot become a gap) and no earlier constraint already restructures one
of its columns.  The reverse steps run in an order where every step's inputs hold their final
values; transforms run in the opposite order, so each reads the original columns.

Every sample is also checked against *every* constraint (reparametrised ones included) before
it is returned: construction is the mechanism, the check is the guarantee.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..exceptions import MetadataError
from ._base import Constraint, constraint_from_dict
from .combinations import FixedCombinations, _ColumnGroup
from .inequality import Inequality, Range
from .missingness import MissingLink

__all__ = ["ConstraintPlan", "plan_state", "plan_from_state", "publish"]


class ConstraintPlan:
    """The declared constraints of one table, checked, ordered and fitted.

    Parameters
    ----------
    constraints : list of Constraint
    """

    def __init__(self, constraints: Sequence[Constraint]) -> None:
        self.constraints = list(constraints)

    # -- checks on the declaration --------------------------------------------------------
    def check(self, columns: Mapping[str, Any]) -> None:
        """Unknown columns, wrong kinds and contradictions (:class:`MetadataError`)."""
        for c in self.constraints:
            c.check(columns)
        self._check_cycles(columns)
        self._check_ranges(columns)

    def _check_cycles(self, columns) -> None:
        edges: dict[str, list[tuple[str, Inequality]]] = {}
        for c in self.constraints:
            if isinstance(c, Inequality):
                edges.setdefault(c.low, []).append((c.high, c))
        state: dict[str, int] = {}
        path: list[Inequality] = []

        def visit(node: str) -> None:
            state[node] = 1
            for nxt, c in edges.get(node, []):
                path.append(c)
                if state.get(nxt) == 1:
                    cycle = path[next(i for i, p in enumerate(path) if p.low == nxt):]
                    what = "contradict each other" if any(p.strict for p in cycle) else \
                        "force the columns to be equal (drop all but one of them)"
                    raise MetadataError("constraints " + "; ".join(repr(p.describe()) for p in cycle)
                                        + f" form a cycle and {what}.")
                if state.get(nxt) is None:
                    visit(nxt)
                path.pop()
            state[node] = 2

        for node in list(edges):
            if state.get(node) is None:
                visit(node)

    def _check_ranges(self, columns) -> None:
        by_col: dict[str, list[Range]] = {}
        for c in self.constraints:
            if isinstance(c, Range):
                by_col.setdefault(c.column, []).append(c)
        for name, ranges in by_col.items():
            bounds = [r._bounds(columns) for r in ranges]
            lows = [lo for lo, _ in bounds if lo is not None]
            highs = [hi for _, hi in bounds if hi is not None]
            if lows and highs and max(lows) > min(highs):
                raise MetadataError(f"constraints {[r.describe() for r in ranges]} on column "
                                    f"{name!r} leave no value that satisfies all of them.")

    # -- fit ------------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, columns: Mapping[str, Any]) -> "ConstraintPlan":
        """Check the declaration and the real rows, then plan the reparametrisation.

        Raises
        ------
        MetadataError
            A constraint the data break: how many rows (never which).
        """
        self.columns_in_ = dict(columns)
        self.check(self.columns_in_)
        n = len(frame)
        for c in self.constraints:
            c.fit(frame, self.columns_in_)
            bad = int(np.count_nonzero(c.violations(frame, self.columns_in_)))
            if bad:
                raise MetadataError(
                    f"constraint {c.describe()!r}: {bad} of {n} rows of the data break it. A "
                    "declared constraint must hold in every row: fix those rows, or drop the "
                    "constraint (nhssynth does not say which rows, so that this message is safe "
                    "to share).")
        self.reparametrised_, self.rejected_ = self._choose()
        self.order_ = self._order(self.reparametrised_)
        for c in self.rejected_:
            if isinstance(c, FixedCombinations) and c.allowed is None:
                # its allowed set would be the combinations released under DP with its own
                # joint column, which it cannot have here: checking it would need the real set
                raise MetadataError(
                    f"constraint {c.describe()!r} shares a column with another rule that "
                    "restructures it, so it cannot be learnt as one column; declare its "
                    "'allowed' combinations (then it is enforced by rejection) or merge the "
                    "two rules.")
        self.columns_out_ = self._transformed_columns(frame)
        return self

    def _choose(self) -> tuple[list[Constraint], list[Constraint]]:
        owned: set[str] = set()
        chosen, rejected = [], []
        for c in self.constraints:
            if not c.can_reparametrise(self.columns_in_) or set(c.restructures) & owned:
                rejected.append(c)
                continue
            chosen.append(c)
            owned |= set(c.restructures)
        # a range on a restructured column cannot become its declared bounds
        keep = []
        for c in chosen:
            if isinstance(c, Range) and c.column in owned:
                rejected.append(c)
            else:
                keep.append(c)
        return keep, rejected

    def _order(self, chosen: list[Constraint]) -> list[Constraint]:
        """Reverse order: a step runs after every step that writes one of its inputs, and an
        adjusting step (clip, blank) after the step that restores its column."""
        writes = {id(c): set(c.restructures) | set(c.adjusts) for c in chosen}
        before: dict[int, set[int]] = {id(c): set() for c in chosen}
        for k in chosen:
            for j in chosen:
                if j is k:
                    continue
                if set(k.inputs) & writes[id(j)] or set(k.adjusts) & set(j.restructures):
                    before[id(k)].add(id(j))
        order, done = [], set()
        pending = list(chosen)
        while pending:
            ready = [c for c in pending if before[id(c)] <= done]
            if not ready:  # a cycle: the last pending constraint falls back to rejection
                dropped = pending.pop()
                self.rejected_.append(dropped)
                self.reparametrised_.remove(dropped)
                for deps in before.values():
                    deps.discard(id(dropped))
                continue
            for c in ready:
                order.append(c)
                done.add(id(c))
                pending.remove(c)
        return order

    def _transformed_columns(self, frame: pd.DataFrame) -> dict[str, Any]:
        names = list(self.columns_in_)
        cols = dict(self.columns_in_)
        for c in reversed(self.order_):
            changes = c.transformed_columns(self.columns_in_)
            for name, meta in changes.items():
                if meta is None:
                    cols.pop(name, None)
                    continue
                if name not in cols:
                    # a joint column takes the place of the first column it replaces
                    first = next((x for x in c.columns if x in names), None)
                    pos = names.index(first) if first is not None else len(names)
                    names.insert(pos, name)
                    # undeclared combinations are left without a list: the private
                    # generators release them under DP, as any undeclared category set (a
                    # list of the ones seen would put rare combinations into the model)
                cols[name] = meta
        return {n: cols[n] for n in names if n in cols}

    # -- frames ---------------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The table the generator learns."""
        out = frame
        for c in reversed(self.order_):
            out = c.transform(out, self.columns_in_)
        return out[list(self.columns_out_)]

    def reverse(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A sampled table in the original columns (values not yet cast to their dtypes)."""
        out = frame
        for c in self.order_:
            out = c.reverse(out, self.columns_in_)
        return out[list(self.columns_in_)]

    def violations(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per constraint (its description), where ``frame`` breaks it."""
        return {c.describe(): np.asarray(c.violations(frame, self.columns_in_), dtype=bool)
                for c in self.constraints}

    def summary(self) -> list[dict]:
        """How each constraint is enforced (for reports and ``privacy_report().details``)."""
        chosen = {id(c) for c in self.reparametrised_}
        return [{"constraint": c.describe(),
                 "enforced_by": "construction" if id(c) in chosen else "rejection"}
                for c in self.constraints]


def plan_state(plan: ConstraintPlan) -> dict:
    """The fitted plan as plain data (constraints as their dicts, column metadata objects as
    they are): what :func:`plan_from_state` needs, for saving a model without pickle."""
    index = {id(c): i for i, c in enumerate(plan.constraints)}
    return {"constraints": [c.to_dict() for c in plan.constraints],
            "steps": [getattr(c, "_step", None) for c in plan.constraints],
            "reparametrised": [index[id(c)] for c in plan.reparametrised_],
            "order": [index[id(c)] for c in plan.order_],
            "columns_in": list(plan.columns_in_.values()),
            "columns_out": list(plan.columns_out_.values())}


def plan_from_state(state: Mapping[str, Any]) -> ConstraintPlan:
    """Inverse of :func:`plan_state`."""
    constraints = [constraint_from_dict(spec) for spec in state["constraints"]]
    for c, step in zip(constraints, state["steps"]):
        if step is not None:
            c._step = int(step)
    plan = ConstraintPlan(constraints)
    plan.columns_in_ = {c.name: c for c in state["columns_in"]}
    plan.columns_out_ = {c.name: c for c in state["columns_out"]}
    plan.reparametrised_ = [constraints[i] for i in state["reparametrised"]]
    plan.rejected_ = [c for i, c in enumerate(constraints) if i not in set(state["reparametrised"])]
    plan.order_ = [constraints[i] for i in state["order"]]
    for c in constraints:
        c._columns = plan.columns_in_
        c.check(plan.columns_in_)  # re-derives values such as a strict positive's floor
    return plan


def publish(plan: ConstraintPlan, released: Mapping[str, Any]) -> None:
    """Replace, in place, every category list the plan read from the rows (``domain: data``)
    by what the generator released: ``released`` maps the learnt table's columns to their
    released categories (``None`` when nothing was).  Members of a combination or one-hot
    group get the values of the released groups; a ``missing_link`` flag its two declared
    values.  After this the plan stores no category a generator did not release."""
    def public(col, cats):
        if cats is None and col.dtype == "category":
            cats = []
        return dataclasses.replace(col, categories=None if cats is None else list(cats),
                                   domain="data")

    out = {}
    for name, col in plan.columns_out_.items():
        if (col.domain == "data" and col.categories is not None) or \
                (col.categories is None and released.get(name) is not None):
            col = public(col, released.get(name))
        out[name] = col
    plan.columns_out_ = out
    members: dict[str, set] = {}
    flags: dict[str, tuple] = {}
    for c in plan.reparametrised_:
        if isinstance(c, _ColumnGroup):
            cats = list(out[c.joint_name].categories or [])
            decoded = c.reverse(pd.DataFrame({c.joint_name: pd.Series(cats, dtype=object)}),
                                plan.columns_in_)
            for m in c.columns:
                members[m] = {v for v in decoded[m] if v is not None}
        elif isinstance(c, MissingLink):
            flags[c.flag] = (c.present, c.absent)
    ins = {}
    for name, col in plan.columns_in_.items():
        if col.domain == "data" and col.categories is not None:
            if name in members:
                col = public(col, [v for v in col.categories if v in members[name]])
            elif name in flags:
                col = public(col, [v for v in col.categories if v in flags[name]])
            else:
                col = public(col, out[name].categories if name in out else None)
        ins[name] = col
    plan.columns_in_ = ins
