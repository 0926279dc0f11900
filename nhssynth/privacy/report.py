"""The privacy report of a fitted generator: one typed object for every generator.

:class:`PrivacyReport` is what ``privacy_report()`` returns; the CLI, the HTML report and the
dashboard read only this (through :meth:`PrivacyReport.to_dict` when they store it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .budget import PrivacyBudget

__all__ = ["PrivacyReport", "SpendRecord"]


@dataclass(frozen=True)
class SpendRecord:
    """One mechanism run on the real rows.

    Attributes
    ----------
    stage : str
        What it was for (``"domain release: domains"``, ``"training"``...).
    mechanism : str
        What it was, in words.
    epsilon : float
        Its epsilon on its own (at the accountant's delta); the total composes them tighter.
    delta_extra : float
        Delta it adds outside the accountant (released category sets).
    details : dict
        Noise multipliers, columns, sample rates, steps...
    """

    stage: str
    mechanism: str
    epsilon: float
    delta_extra: float = 0.0
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PrivacyReport:
    """What a fitted generator's guarantee covers.

    Attributes
    ----------
    private : bool
        Whether the generator was fitted with differential privacy.
    epsilon, delta : float or None
        The guarantee actually spent (None when not private).
    epsilon_budget : float or None
        The ``epsilon`` asked for.
    accountant : str or None
        How the spends were composed (``"prv"``, ``"rdp"`` or ``"zcdp"``).
    spends : tuple of SpendRecord
    non_private_statistics : tuple of str
        Statistics read from the rows without DP (the guarantee does not cover them).
    notes : tuple of str
        What the user should know about the release (withheld columns, widened ranges...).
    details : dict
        Generator-specific facts (DP-SGD noise multiplier, steps, measured marginals...).
    """

    private: bool
    epsilon: float | None
    delta: float | None
    epsilon_budget: float | None
    accountant: str | None
    spends: tuple[SpendRecord, ...] = ()
    non_private_statistics: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)

    @classmethod
    def from_budget(cls, budget: PrivacyBudget | None, *, epsilon_budget: float | None,
                    non_private_statistics=(), notes=(), details=None) -> "PrivacyReport":
        """The report of a fit whose spends are recorded in ``budget`` (None: not private)."""
        if budget is None:
            return cls(False, None, None, epsilon_budget, None,
                       non_private_statistics=tuple(non_private_statistics), notes=tuple(notes),
                       details=dict(details or {}))
        ledger = budget.report()
        spends = tuple(SpendRecord(s["stage"], s["mechanism"], float(s["epsilon"]),
                                   float(s["delta_extra"]),
                                   {k: v for k, v in s.items()
                                    if k not in ("stage", "mechanism", "epsilon", "delta_extra")})
                       for s in ledger["spends"])
        return cls(True, float(ledger["epsilon"]), float(ledger["delta"]), epsilon_budget,
                   budget.accountant, spends, tuple(non_private_statistics), tuple(notes),
                   dict(details or {}))

    @property
    def covers_preprocessing(self) -> bool:
        """Whether everything learnt from the rows is covered by the guarantee."""
        return self.private and not self.non_private_statistics

    @property
    def statement(self) -> str:
        """The guarantee in one sentence."""
        if not self.private:
            return "No differential privacy: the model was fitted with epsilon=None."
        eps, delta = self.epsilon, self.delta
        if self.non_private_statistics:
            return (f"Model fitting is ({eps:.3g}, {delta:.2g})-differentially private, but "
                    f"{len(self.non_private_statistics)} statistic(s) were read from the data "
                    f"without DP, so the guarantee does not cover them.")
        return (f"Everything learnt from the training table is ({eps:.3g}, {delta:.2g})-"
                f"differentially private: adding or removing any one person's row changes the "
                f"probability of any output by at most a factor e^{eps:.3g} (plus {delta:.2g}).")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready: infinities as None) with the statement."""
        out = asdict(self)
        out["statement"] = self.statement
        out["covers_preprocessing"] = self.covers_preprocessing
        out["spends"] = [dict(s) for s in out["spends"]]
        for key in ("epsilon", "delta"):
            if isinstance(out[key], float) and not math.isfinite(out[key]):
                out[key] = None
        return out
