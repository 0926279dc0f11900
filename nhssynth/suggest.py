"""Constraint suggestions under differential privacy: candidate rules from the metadata, judged by
noisy violation counts.

:func:`suggest_constraints` proposes rules (an order between two columns, a non-negative
column, a flag that says whether a value is present, a column missing whenever another is, a
one-hot group) for the user to review and *declare* in the metadata.  Nothing is enforced until
it is declared.

The privacy contract (``docs/privacy.md``): the candidates are generated from the metadata only
(column names, kinds, nullability, declared categories), never from the rows, and the rows are
read once, by one Gaussian mechanism that releases, for every candidate, its number of violating
rows and the number of rows it applies to.  One row changes each of these counts by at most 1,
so the vector of ``d`` counts has L2 sensitivity ``sqrt(d)``; its zCDP cost is converted to
``(epsilon, delta)`` and recorded in a :class:`~nhssynth.privacy.budget.PrivacyBudget` ledger.
Everything else (which rules are suggested, the YAML) is post-processing of the noisy counts.
The cost is separate from, and adds to, any synthesizer fitted on the same table.

>>> from nhssynth.suggest import suggest_constraints             # doctest: +SKIP
>>> s = suggest_constraints(df, metadata, epsilon=1.0, random_state=0)  # doctest: +SKIP
>>> print(s.to_yaml())                                          # doctest: +SKIP
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ._rng import spawn
from .constraints import (
    Constraint,
    ConstraintPlan,
    Inequality,
    MissingLink,
    MissingWhenMissing,
    OneHot,
    Positive,
)
from .exceptions import MetadataError, PrivacyBudgetError
from .metadata import Metadata, as_metadata
from .privacy.accounting import zcdp_rho_for
from .privacy.budget import PrivacyBudget
from .privacy.report import PrivacyReport
from .privacy.secure import SecureRandom

__all__ = [
    "SUGGESTED_TYPES",
    "CandidateRule",
    "Suggestions",
    "candidate_constraints",
    "suggest_constraints",
]

# the kinds of rule proposed (candidate_constraints says in which order they are listed)
SUGGESTED_TYPES = ("positive", "one_hot", "missing_link", "inequality", "missing_when_missing")
_NUMERIC = ("continuous", "integer")
_Z = 2.0  # noise standard deviations: "no more violations than noise" and the share's margin
_SEPARATORS = re.compile(r"[_.:\-]")


# --------------------------------------------------------------------------------------------
# candidates: from the metadata only
# --------------------------------------------------------------------------------------------
def _flag_values(col: Any) -> tuple[Any, Any] | None:
    """``(true_value, false_value)`` of a two-valued column whose values are public: a boolean
    column (``True/False`` or ``1/0``) or a categorical column with two declared categories."""
    if col.kind == "boolean":
        cats = list(col.categories) if col.categories is not None else [False, True]
        if len(cats) != 2:
            return None
        if set(cats) == {0, 1}:  # True == 1: covers [False, True] and [0, 1]
            one = next(c for c in cats if c == 1)
            zero = next(c for c in cats if c == 0)
            return one, zero
        return (cats[1], cats[0]) if col.domain == "declared" else None
    if col.kind == "categorical" and col.has_declared_categories and len(col.categories) == 2:
        return col.categories[1], col.categories[0]
    return None


def _is_zero_one(col: Any) -> bool:
    return col.kind == "boolean" and (col.categories is None or set(col.categories) == {0, 1})


def _prefixes(name: str) -> list[str]:
    """Every prefix of ``name`` ending before a separator (``eth_white`` -> ``eth``)."""
    return [name[:m.start()] for m in _SEPARATORS.finditer(name) if m.start() > 0]


def _one_hot_groups(names: Sequence[str]) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for name in names:
        for prefix in _prefixes(name):
            groups.setdefault(prefix, []).append(name)
    out, seen = [], set()
    for prefix in sorted(groups, key=lambda p: (-len(p), p)):  # the most specific group first
        members = groups[prefix]
        key = tuple(members)
        if len(members) >= 2 and key not in seen:
            seen.add(key)
            out.append(members)
    return out


def _words(name: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", name.lower()) if len(w) >= 2 and not w.isdigit()}


def _related(a: str, b: str) -> bool:
    """Whether two column names share a word (``bp_low``/``bp_high``, ``hba1c``/
    ``hba1c_measured``) or one starts with the other."""
    return bool(_words(a) & _words(b)) or a.lower().startswith(b.lower()) \
        or b.lower().startswith(a.lower())


def candidate_constraints(metadata: Metadata, *, types: Iterable[str] | None = None
                          ) -> list[Constraint]:
    """Every candidate rule the metadata allows, in a fixed order (no data is read).

    * ``positive``: each numeric column ``>= 0``;
    * ``one_hot``: each group of two or more boolean 0/1 columns sharing a name prefix
      (``eth_white``, ``eth_black``...);
    * ``inequality``: each ordered pair of datetime columns (``high >= low``), and of numeric
      columns;
    * ``missing_link``: each (nullable column, two-valued flag) pair, both polarities;
    * ``missing_when_missing``: each ordered pair of nullable columns.

    The order (which matters when ``max_candidates`` cuts the list): positivity, one-hot
    groups and datetime orders first; then the pairs of columns whose names share a word
    (``bp_low``/``bp_high``, ``hba1c``/``hba1c_measured``); then the other pairs, the three
    kinds taking turns.  Rules already declared in ``metadata.constraints`` are left out.
    Identifier columns are never used.

    Parameters
    ----------
    metadata : Metadata
    types : iterable of str, optional
        The kinds of rule to propose (a subset of :data:`SUGGESTED_TYPES`); default all.
    """
    kinds = _check_types(types)
    cols = [c for c in metadata.columns if c.kind != "id"]
    numeric = [c.name for c in cols if c.kind in _NUMERIC]
    dates = [c.name for c in cols if c.kind == "datetime"]
    nullable = [c.name for c in cols if c.nullable]
    flags = [(c.name, _flag_values(c)) for c in cols if _flag_values(c) is not None]
    zero_one = [c.name for c in cols if _is_zero_one(c)]

    first: list[Constraint] = []
    if "positive" in kinds:
        first += [Positive(column=n) for n in numeric]
    if "one_hot" in kinds:
        first += [OneHot(columns=g) for g in _one_hot_groups(zero_one)]
    if "inequality" in kinds:
        first += [Inequality(low=a, high=b) for a in dates for b in dates if a != b]
    pairs: dict[str, list[tuple[tuple[str, str], Constraint]]] = {}
    if "inequality" in kinds:
        pairs["inequality"] = [((a, b), Inequality(low=a, high=b))
                               for a in numeric for b in numeric if a != b]
    if "missing_link" in kinds:
        pairs["missing_link"] = [
            ((value, flag), MissingLink(value=value, flag=flag, present=p, absent=q))
            for value in nullable for flag, (yes, no) in flags if flag != value
            for p, q in ((yes, no), (no, yes))]
    if "missing_when_missing" in kinds:
        pairs["missing_when_missing"] = [((a, b), MissingWhenMissing(column=a, source=b))
                                         for a in nullable for b in nullable if a != b]
    # pairs of columns whose names share a word come before the rest, then the kinds take
    # turns, so that a cap keeps some of each (the order depends on the names only)
    related = [c for kind in pairs for names, c in pairs[kind] if _related(*names)]
    rest = [[c for names, c in pairs[kind] if not _related(*names)] for kind in pairs]
    out = first + related + [c for turn in zip_longest(*rest) for c in turn if c is not None]
    declared = {_key(c) for c in metadata.constraints}
    return [c for c in out if _key(c) not in declared]


def _key(c: Constraint) -> str:
    return repr(sorted(c.to_dict().items(), key=lambda kv: kv[0]))


def _check_types(types: Iterable[str] | None) -> tuple[str, ...]:
    if types is None:
        return SUGGESTED_TYPES
    if isinstance(types, str):
        types = [types]
    types = tuple(types)
    unknown = [t for t in types if t not in SUGGESTED_TYPES]
    if unknown or not types:
        raise ValueError(f"types must be a non-empty subset of {list(SUGGESTED_TYPES)}, got "
                         f"{list(types)}.")
    return types


def _applies(c: Constraint) -> tuple:
    """Which rows a rule can be checked on (a key: rules sharing it share one count)."""
    if isinstance(c, Inequality):
        return ("both present",) + tuple(sorted((c.low, c.high)))
    if isinstance(c, Positive):
        return ("present", c.column)
    if isinstance(c, MissingWhenMissing):
        return ("missing", c.source)
    return ("all",)


def _applicable_rows(key: tuple, frame: pd.DataFrame) -> int:
    if key[0] == "all":
        return len(frame)
    if key[0] == "present":
        return int(frame[key[1]].notna().sum())
    if key[0] == "missing":
        return int(frame[key[1]].isna().sum())
    return int((frame[key[1]].notna() & frame[key[2]].notna()).sum())


# --------------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CandidateRule:
    """One candidate rule and what the noisy counts say about it.

    Attributes
    ----------
    constraint : Constraint
        The rule, ready to declare (``constraint.to_dict()`` is its YAML form).
    noisy_violations : float
        Noisy number of rows that break it (Gaussian noise of standard deviation ``noise_sd``;
        can be negative).
    noisy_rows : float
        Noisy number of rows it applies to (both columns present for an inequality, the column
        present for ``positive``, ``source`` missing for ``missing_when_missing``, every row
        otherwise).
    noise_sd : float
        Standard deviation of the noise on each count.
    status : {"suggested", "violated", "inconclusive", "conflict"}
        ``suggested``: no more violations than the noise explains, and the noise is small
        enough to have seen violations in more than ``max_violation_share`` of the rows;
        ``violated``: more violations than noise; ``inconclusive``: too few rows for the
        noise; ``conflict``: suggested, but contradicts an earlier suggestion or a declared
        rule (two inequalities in a cycle: the columns look equal).
    """

    constraint: Constraint
    noisy_violations: float
    noisy_rows: float
    noise_sd: float
    status: str

    @property
    def violation_share(self) -> float:
        """Estimated share of the applicable rows that break the rule (from the noisy counts,
        clipped to [0, 1])."""
        return min(max(self.noisy_violations, 0.0) / max(self.noisy_rows, 1.0), 1.0)

    @property
    def violation_share_upper(self) -> float:
        """A conservative upper bound on that share: ``_Z`` noise standard deviations added to
        the violations and taken off the rows (``inf`` when the rows are within the noise)."""
        rows = self.noisy_rows - _Z * self.noise_sd
        if rows <= 0:
            return math.inf
        return (max(self.noisy_violations, 0.0) + _Z * self.noise_sd) / rows

    def describe(self) -> str:
        return self.constraint.describe()

    def comment(self) -> str:
        upper = self.violation_share_upper
        share = "unknown" if not math.isfinite(upper) else f"<= {100 * upper:.2g}%"
        return (f"{self.describe()}: noisy violations {self.noisy_violations:.1f} (noise sd "
                f"{self.noise_sd:.1f}) of about {max(self.noisy_rows, 0):.0f} rows it applies "
                f"to; violation share {share}")


@dataclass(frozen=True)
class Suggestions:
    """What :func:`suggest_constraints` returns.

    Attributes
    ----------
    candidates : tuple of CandidateRule
        Every candidate measured, in the order they were generated.
    skipped : tuple of str
        Candidates generated but not measured (over ``max_candidates``), described.
    epsilon, delta : float
        The privacy spent (``privacy_report.epsilon``, ``privacy_report.delta``).
    noise_sd : float
        Standard deviation of the Gaussian noise on every released count.
    privacy_report : PrivacyReport
        The ledger of the one mechanism run on the rows.
    notes : tuple of str
        What the guarantee does not cover (metadata inferred from the rows).
    """

    candidates: tuple[CandidateRule, ...]
    skipped: tuple[str, ...]
    epsilon: float
    delta: float
    noise_sd: float
    max_violation_share: float
    privacy_report: PrivacyReport
    notes: tuple[str, ...] = field(default=())

    @property
    def suggested(self) -> list[CandidateRule]:
        """The candidates whose status is ``"suggested"``."""
        return [c for c in self.candidates if c.status == "suggested"]

    @property
    def constraints(self) -> list[Constraint]:
        """The suggested rules, ready for ``Metadata(columns, constraints=...)`` after review."""
        return [c.constraint for c in self.suggested]

    def by_status(self, status: str) -> list[CandidateRule]:
        return [c for c in self.candidates if c.status == status]

    @property
    def statement(self) -> str:
        """The privacy spent, in one sentence."""
        return (f"These constraint suggestions are ({self.epsilon:.3g}, {self.delta:.2g})-"
                f"differentially private: computing them cost epsilon={self.epsilon:.3g}, "
                f"delta={self.delta:.2g}, which is separate from (and adds to) the budget of "
                f"any synthesizer fitted on the same data.")

    def to_frame(self) -> pd.DataFrame:
        """One row per candidate: rule, type, status, noisy counts, share estimate and bound."""
        return pd.DataFrame({
            "rule": [c.describe() for c in self.candidates],
            "type": [c.constraint.type for c in self.candidates],
            "status": [c.status for c in self.candidates],
            "noisy_violations": [c.noisy_violations for c in self.candidates],
            "noisy_rows": [c.noisy_rows for c in self.candidates],
            "violation_share": [c.violation_share for c in self.candidates],
            "violation_share_upper": [c.violation_share_upper for c in self.candidates],
        })

    def to_yaml(self) -> str:
        """A ``constraints:`` YAML snippet of the suggested rules, each commented with its noisy
        counts, to review and append to (or merge into) a metadata file."""
        counts = {s: len(self.by_status(s)) for s in
                  ("suggested", "violated", "inconclusive", "conflict")}
        lines = [
            "# Constraint suggestions (nhssynth metadata suggest-constraints).",
            f"# Privacy: {self.statement}",
            "# These rules looked true in noisy counts; they are NOT checked facts. Keep only the",
            "# rules you know hold (documentation, clinical knowledge): a declared rule is",
            "# enforced on every synthetic row, and fitting fails if a real row breaks it.",
            (f"# {len(self.candidates)} candidates measured (noise sd {self.noise_sd:.3g} per "
             f"count): {counts['suggested']} suggested, {counts['violated']} violated, "
             f"{counts['inconclusive']} inconclusive (too few rows for the noise: raise epsilon "
             f"or ask for fewer types), {counts['conflict']} in conflict."),
        ]
        if self.skipped:
            lines.append(f"# {len(self.skipped)} candidates not measured (over max_candidates).")
        lines += [f"# Note: {n}" for n in self.notes]
        if not self.suggested:
            lines.append("constraints: []")
            return "\n".join(lines) + "\n"
        lines.append("constraints:")
        for c in self.suggested:
            lines.append(f"  # {c.comment()}")
            body = yaml.safe_dump([c.constraint.to_dict()], sort_keys=False,
                                  allow_unicode=True, default_flow_style=False)
            lines += ["  " + line for line in body.rstrip("\n").splitlines()]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return (f"Suggestions({len(self.suggested)} suggested of {len(self.candidates)} "
                f"candidates; epsilon={self.epsilon:.3g}, delta={self.delta:.2g}, noise sd "
                f"{self.noise_sd:.3g})")


# --------------------------------------------------------------------------------------------
# the mechanism
# --------------------------------------------------------------------------------------------
def suggest_constraints(df: pd.DataFrame, metadata: Metadata | str | Mapping | None = None, *,
                        epsilon: float = 1.0, delta: float | None = None,
                        max_candidates: int = 200, max_violation_share: float = 0.05,
                        types: Iterable[str] | None = None, random_state: Any = None,
                        secure_mode: bool = False) -> Suggestions:
    """Propose constraints for the user to declare, from differentially private violation counts.

    Candidates come from the metadata only (see :func:`candidate_constraints`); the first
    ``max_candidates`` are measured.  One Gaussian mechanism releases, for each, the number of
    rows breaking it and the number of rows it applies to (each count shifts by at most 1 when a
    row is added or removed; ``d`` counts have L2 sensitivity ``sqrt(d)``).  A rule is
    suggested when its noisy violation count is within ``2`` noise standard deviations of zero
    *and* the noise is small enough that a rule broken by more than ``max_violation_share`` of
    its rows would have shown (the upper bound on the share is below it).  Exact counts are
    never used to decide.

    Parameters
    ----------
    df : DataFrame
        The real table.
    metadata : Metadata, YAML path or dict, optional
        Its metadata.  ``None`` infers it from ``df``: the candidates then depend on the
        inferred schema (kinds, nullability), which is read without DP (see
        ``docs/privacy.md``); declare the metadata for a formal guarantee.
    epsilon : float, default=1.0
        Privacy budget of the suggestions (on top of any synthesizer's).
    delta : float, optional
        Default ``min(1e-5, 0.1 / n_rows)``, as the generators.
    max_candidates : int, default=200
        At most this many candidates are measured, the first in the order of
        :func:`candidate_constraints`; the rest are listed in ``skipped``.  Fewer candidates,
        less noise (the noise grows with the square root of the number of counts).
    max_violation_share : float, default=0.05
        The test's resolution: a rule is only suggested when the noisy counts rule out that it
        is broken in more than this share of its rows.
    types : iterable of str, optional
        Kinds of rule to propose (subset of :data:`SUGGESTED_TYPES`).
    random_state : None, int or Generator
        Seeds the noise (reproducible suggestions).  Ignored with ``secure_mode``.
    secure_mode : bool, default=False
        Draw the noise from the OS CSPRNG (not reproducible).

    Returns
    -------
    Suggestions

    Raises
    ------
    MetadataError
        When the metadata names columns that ``df`` lacks, or ``df`` does not match it.
    PrivacyBudgetError
        When ``epsilon`` or ``delta`` is out of range.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) \
            or not (epsilon > 0 and math.isfinite(epsilon)):
        raise PrivacyBudgetError(f"epsilon must be a positive finite number, got {epsilon!r}; "
                                 "constraint suggestions are always differentially private.")
    if isinstance(max_candidates, bool) or not isinstance(max_candidates, (int, np.integer)) \
            or max_candidates < 1:
        raise ValueError(f"max_candidates must be a positive integer, got {max_candidates!r}.")
    if not 0 < max_violation_share < 1:
        raise ValueError(f"max_violation_share must be in (0, 1), got {max_violation_share!r}.")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}.")
    notes = []
    if metadata is None:
        notes.append("the metadata was inferred from the rows (kinds, nullability), without DP; "
                     "the candidates depend on it. Declare the metadata for a formal guarantee.")
    md = as_metadata(metadata, df)
    frame = md.drop_incomplete_rows(md.coerce(df))
    n = len(frame)
    if n == 0:
        raise MetadataError("the DataFrame has no rows; there is nothing to suggest from.")
    if delta is None:
        delta = min(1e-5, 0.1 / n)
    budget = PrivacyBudget(float(epsilon), float(delta), accountant="zcdp")
    types = _check_types(types)
    columns = {c.name: c for c in md.columns}

    generated = []
    for c in candidate_constraints(md, types=types):
        try:
            c.check(columns)
        except MetadataError:
            continue
        generated.append(c)
    measured, skipped = generated[:max_candidates], generated[max_candidates:]

    # the one mechanism: violation counts and applicable-row counts, Gaussian noise
    keys = list(dict.fromkeys([("all",)] + [_applies(c) for c in measured]))
    exact = np.array([np.count_nonzero(c.violations(frame, columns)) for c in measured]
                     + [_applicable_rows(k, frame) for k in keys], dtype=np.float64)
    dims = exact.size
    rho = zcdp_rho_for(budget.epsilon, budget.delta)
    z = 1.0 / math.sqrt(2.0 * rho)  # noise multiplier of the whole vector (sensitivity 1)
    sigma = z * math.sqrt(dims)  # the vector's L2 sensitivity is sqrt(dims)
    rng = SecureRandom() if secure_mode else spawn(random_state, ["suggest"])["suggest"]
    noisy = exact + rng.normal(0.0, sigma, size=dims)
    del exact  # nothing below reads the exact counts
    budget.record("constraint suggestions", "Gaussian mechanism on violation and row counts",
                  history=((z, 1.0, 1),), counts=dims, noise_sd=sigma,
                  candidates=len(measured))
    violations, rows = noisy[:len(measured)], dict(zip(keys, noisy[len(measured):]))

    plan = list(md.constraints)
    results = []
    for c, v in zip(measured, violations):
        a = float(rows[_applies(c)])
        status = _status(float(v), a, sigma, max_violation_share)
        if status == "suggested":
            try:
                ConstraintPlan(plan + [c]).check(columns)
                plan.append(c)
            except MetadataError:
                status = "conflict"
        results.append(CandidateRule(c, float(v), a, sigma, status))

    report = PrivacyReport.from_budget(budget, epsilon_budget=float(epsilon), notes=notes,
                                       details={"noise_sd": sigma, "counts": dims})
    return Suggestions(tuple(results), tuple(c.describe() for c in skipped), report.epsilon,
                       report.delta, sigma, float(max_violation_share), report, tuple(notes))


def _status(violations: float, rows: float, sigma: float, max_share: float) -> str:
    if violations > _Z * sigma:
        return "violated"
    lower_rows = rows - _Z * sigma
    if lower_rows <= 0 or (max(violations, 0.0) + _Z * sigma) / lower_rows > max_share:
        return "inconclusive"
    return "suggested"
