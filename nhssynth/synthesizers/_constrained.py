"""Constraints and conditions, for every generator: the learnt table and the sampling loop.

A generator fitted on a DataFrame calls :func:`fit_constraints` after validating the table: it
gets back the table (and metadata) to learn -- reparametrised so that declared constraints
hold by construction -- and a fitted :class:`~nhssynth.constraints.ConstraintPlan`.  Its
``sample`` calls :func:`draw_valid` with a function that draws rows of the learnt table; the
loop reverses the reparametrisation, casts the columns, and keeps drawing (a bounded number of
rounds) until it has ``n`` rows that meet every constraint and the conditions.

Conditions are met exactly (every returned row meets them; rows are the model's rows that meet
them, so their distribution is the model's conditional distribution).  A generator can make
rare conditions cheap by *narrowing* its draws (the select-measure-generate model conditions
its graphical model); the check here keeps the result exact whatever the generator does.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from .._rng import spawn
from ..constraints import Conditions, ConstraintPlan, FixedCombinations, OneHot
from ..constraints.conditions import _Condition
from ..constraints.plan import publish
from ..base import fresh_ids
from ..encoders._base import all_missing
from ..exceptions import MetadataError, SamplingError
from ..metadata import Metadata, cast_series

__all__ = ["fit_constraints", "draw_valid", "make_conditions", "to_learnt", "check_known", "fill_valid", "publish_fit",
           "joint_constraints", "joint_accepts",
           "MAX_ROUNDS"]

# Rounds of a draw, and the most rows drawn in all per row returned: a condition met by one
# draw in 2,000 still returns (with margin) rather than stalling; rarer ones get a clear error.
MAX_ROUNDS = 12
MAX_DRAWS_PER_ROW = 2_000
MIN_BATCH = 256


def fit_constraints(frame: pd.DataFrame, metadata: Metadata) -> tuple[ConstraintPlan, pd.DataFrame,
                                                                       Metadata]:
    """The fitted plan, the table to learn and its metadata (unchanged without constraints)."""
    plan = ConstraintPlan(metadata.constraints).fit(frame, {c.name: c for c in metadata})
    if not metadata.constraints:
        return plan, frame, metadata
    learnt = Metadata(list(plan.columns_out_.values()))
    return plan, learnt.coerce(plan.transform(frame)), learnt


def publish_fit(est: Any, released: Mapping[str, Any]) -> None:
    """After a private fit: the plan and ``est.metadata_`` keep only the categories the
    generator released (``released``: learnt column -> categories or None), never the ones
    read from the rows."""
    publish(est.constraints_, released)
    est.metadata_ = Metadata(list(est.constraints_.columns_in_.values()),
                             list(est.metadata_.constraints))


def to_learnt(frame: pd.DataFrame, plan: ConstraintPlan) -> pd.DataFrame:
    """Rows of the original table as the generator learnt them (for scoring real rows)."""
    if not plan.constraints:
        return frame
    return Metadata(list(plan.columns_out_.values())).coerce(plan.transform(frame))


def make_conditions(conditions: Any, plan: ConstraintPlan) -> Conditions | None:
    if conditions is None:
        return None
    out = Conditions(conditions, plan.columns_in_)
    return out if out else None


def joint_constraints(plan: ConstraintPlan) -> list:
    """The reparametrised rules that learn a group of columns as one categorical column."""
    return [c for c in plan.reparametrised_ if isinstance(c, (FixedCombinations, OneHot))]


def joint_accepts(c, plan: ConstraintPlan, accepts: Callable[[str, pd.Series], np.ndarray],
                  categories: list | None = None) -> tuple[list, np.ndarray]:
    """The joint column's categories (or ``categories``) and which of them
    ``accepts(column, values)`` keeps for every component column (the categories decoded
    through the rule's reverse)."""
    if categories is None:
        categories = list(plan.columns_out_[c.joint_name].categories or [])
    if not categories:
        return categories, np.zeros(0, dtype=bool)
    decoded = c.reverse(pd.DataFrame({c.joint_name: pd.Series(categories, dtype=object)}),
                        plan.columns_in_)
    ok = np.ones(len(categories), dtype=bool)
    for name in c.columns:
        ok &= accepts(name, decoded[name])
    return categories, ok


def narrowable(conditions: Conditions | None, plan: ConstraintPlan) -> Conditions | None:
    """The conditions a generator can condition on, in the columns it learns: those on columns
    it learns as they are, and conditions on the members of a combination or one-hot group
    as a membership condition on the joint column (the categories whose members meet them)."""
    if conditions is None:
        return None
    touched = set()
    for c in plan.reparametrised_:
        touched |= set(c.restructures) | set(c.adjusts)
    keep = [c for c in conditions.items if c.column not in touched]
    for c in joint_constraints(plan):
        if not set(c.columns) & set(conditions.columns) \
                or not plan.columns_out_[c.joint_name].categories:
            continue  # no condition on the group, or its categories are not known here
        categories, ok = joint_accepts(
            c, plan, lambda name, values: conditions.accepts(name, values, plan.columns_in_[name]))
        keep.append(_Condition(c.joint_name, "in", tuple(np.asarray(categories, dtype=object)[ok]),
                               "categorical"))
    if not keep:
        return None
    out = Conditions.__new__(Conditions)
    out.items = keep
    return out


def _finish(frame: pd.DataFrame, plan: ConstraintPlan) -> pd.DataFrame:
    """Reverse the reparametrisation and cast restored columns to their declared dtypes."""
    if not plan.constraints:
        return frame
    out = plan.reverse(frame.reset_index(drop=True))
    for name, col in plan.columns_in_.items():
        if out[name].dtype == col.pandas_dtype:
            continue
        if out[name].isna().all():
            # a withheld column (nothing about it was released): all missing, as the
            # generators return it without constraints
            out[name] = all_missing(len(out), col)
            continue
        out[name] = cast_series(out[name], col)
    return out


def draw_valid(draw: Callable[[int, Any, Conditions | None], pd.DataFrame], n: int,
               random_state: Any, plan: ConstraintPlan, conditions: Any = None) -> pd.DataFrame:
    """``n`` rows from ``draw`` that meet every constraint of ``plan`` and the conditions.

    Parameters
    ----------
    draw : callable
        ``draw(m, random_state, narrow)`` -> ``m`` rows of the learnt table; ``narrow`` are
        the conditions the generator may condition on (it may ignore them).
    n : int
    random_state : seed of the whole draw
    plan : ConstraintPlan
    conditions : mapping, optional

    Raises
    ------
    SamplingError
        After the bounded rounds, too few rows met the constraints and conditions: the message
        says which rule rejected what share of the draws.
    """
    conds = make_conditions(conditions, plan)
    if conds is None and not plan.constraints:
        return _fresh_ids(draw(n, random_state, None), plan)
    narrow = narrowable(conds, plan)
    names = [f"round{k}" for k in range(MAX_ROUNDS)]
    seeds = spawn(random_state, names)
    kept: list[pd.DataFrame] = []
    got = drawn = 0
    rejected: Counter = Counter()
    m = n
    for name in names:
        batch = _finish(draw(m, seeds[name], narrow), plan)
        ok = np.ones(len(batch), dtype=bool)
        for rule, bad in plan.violations(batch).items():
            rejected[rule] += int(np.count_nonzero(bad & ok))
            ok &= ~bad
        if conds is not None:
            meets = conds.mask(batch, plan.columns_in_)
            rejected[f"conditions ({conds.describe()})"] += int(np.count_nonzero(~meets & ok))
            ok &= meets
        kept.append(batch.loc[ok])
        got += int(ok.sum())
        drawn += len(batch)
        if got >= n:
            break
        rate = max(got, 1) / drawn
        budget = MAX_DRAWS_PER_ROW * n - drawn
        if budget <= 0:
            break
        m = int(min(max(math.ceil(1.25 * (n - got) / rate), MIN_BATCH), budget))
    if got < n:
        shares = ", ".join(f"{rule}: {count / drawn:.2%}" for rule, count in rejected.most_common())
        raise SamplingError(
            f"only {got} of the {n} rows asked for met the constraints and conditions after "
            f"drawing {drawn} rows ({got / drawn:.4%} accepted). Share of draws rejected by each "
            f"rule: {shares}. Relax the conditions, declare the rule so that it holds by "
            "construction, or use AIMSynthesizer (it conditions its model exactly).")
    out = pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)
    return _fresh_ids(out, plan)


def _fresh_ids(frame: pd.DataFrame, plan: ConstraintPlan) -> pd.DataFrame:
    """Identifier columns numbered ``1..n`` in the rows returned: rows kept from several
    draws, or chosen from a larger pool of candidates (a calibrated DP-VAE), carry the ids of
    those draws (repeated, up to the pool's size)."""
    ids = [name for name, col in getattr(plan, "columns_in_", {}).items()
           if col.kind == "id" and name in frame.columns]
    for name in ids:
        frame[name] = fresh_ids(len(frame), plan.columns_in_[name].pandas_dtype)
    return frame


def check_known(known: Any, plan: ConstraintPlan, who: str) -> pd.DataFrame:
    """The given columns of :meth:`sample_remaining_columns`, validated and cast."""
    if not isinstance(known, pd.DataFrame):
        raise TypeError(f"{who}.sample_remaining_columns takes a DataFrame of the known columns, "
                        f"got {type(known).__name__}.")
    if known.shape[0] == 0 or known.shape[1] == 0:
        raise MetadataError("sample_remaining_columns needs at least one row and one known "
                            "column.")
    columns = plan.columns_in_
    unknown = [c for c in known.columns if c not in columns]
    if unknown:
        raise MetadataError(f"known column(s) {unknown} are not in the table; known columns: "
                            f"{list(columns)}.")
    for name in known.columns:
        if columns[name].kind == "id":
            raise MetadataError(f"known column {name!r} is an identifier (kind: id), which is not "
                                "modelled; drop it (ids are generated fresh).")
    touched = {}
    joint = joint_constraints(plan)
    for c in plan.reparametrised_:
        if any(c is j for j in joint):
            continue  # members of a group: the generator is given the consistent groups
        for name in c.restructures:
            touched[name] = c.describe()
    bad = [f"{n!r} ({touched[n]})" for n in known.columns if n in touched]
    if bad:
        raise MetadataError(f"known column(s) {', '.join(bad)} are generated through a declared "
                            "constraint, so they cannot be given: give the columns the rule "
                            "starts from instead, or use sample(conditions=...).")
    md = Metadata([columns[n] for n in known.columns])
    return md.coerce(known.reset_index(drop=True))


def fill_valid(draw_given: Callable[[pd.DataFrame, Any], pd.DataFrame], known: pd.DataFrame,
               random_state: Any, plan: ConstraintPlan) -> pd.DataFrame:
    """One row per row of ``known``: its given values, the other columns drawn by
    ``draw_given(known_rows, random_state)`` (rows of the learnt table aligned with
    ``known_rows``), redrawn until every row satisfies the constraints."""
    names = [f"round{k}" for k in range(MAX_ROUNDS)]
    seeds = spawn(random_state, names)
    done: list[pd.DataFrame] = []
    todo = np.arange(len(known))
    for name in names:
        rows = known.iloc[todo].reset_index(drop=True)
        learnt = draw_given(rows, seeds[name])
        for col in known.columns:  # before the reverse: rules start from the given values
            learnt[col] = rows[col].to_numpy()
            if learnt[col].dtype != rows[col].dtype:
                learnt[col] = learnt[col].astype(rows[col].dtype)
        batch = _finish(learnt, plan)
        # a rule's reverse may rewrite a given column (a group member, a clipped value): such
        # rows are drawn again
        differs = np.zeros(len(batch), dtype=bool)
        for col in known.columns:
            a, b = batch[col].reset_index(drop=True), rows[col].reset_index(drop=True)
            same = (a.astype(object).to_numpy() == b.astype(object).to_numpy()) | (a.isna() & b.isna()).to_numpy()
            differs |= ~same
        bad = differs.copy()
        for v in plan.violations(batch).values():
            bad |= v
        batch.index = todo
        done.append(batch.loc[~bad])
        todo = todo[bad]
        if not todo.size:
            out = pd.concat(done).sort_index() if len(done) > 1 else done[0]
            return out[list(plan.columns_in_)].reset_index(drop=True)
    raise SamplingError(f"{todo.size} of {len(known)} rows could not be completed so that every "
                        "constraint holds: their given values make the rules (almost) impossible "
                        "under the model. Check those rows against the declared constraints.")
