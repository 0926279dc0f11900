"""The privacy ledger: one (epsilon, delta) budget shared by preprocessing and training.

Composition used
----------------
Every mechanism nhssynth runs on the real rows is a Gaussian mechanism: the DP preprocessing
histograms (full-table, ``sample_rate = 1``) and each DP-SGD step (Poisson-subsampled).  The
ledger keeps their accountant entries ``(noise_multiplier, sample_rate, steps)`` and composes
them *together* in one accountant (PRV by default; adaptive composition holds because each
mechanism is DP for every fixed input of the earlier outputs).  The only non-Gaussian part —
releasing data-dependent category sets — costs a fixed ``delta_threshold`` which is added to
delta (basic composition).  The reported guarantee is therefore

    epsilon = accountant(all entries, delta_total - delta_threshold),   delta = delta_total.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import PrivacyBudgetError
from .accounting import (check_accountant, compose_epsilon, solve_noise_multiplier, zcdp_rho,
                         zcdp_rho_for)

__all__ = ["PrivacyBudget", "Spend"]


@dataclass
class Spend:
    """One ledger entry."""

    stage: str
    mechanism: str
    history: tuple = ()
    delta_extra: float = 0.0
    details: dict = field(default_factory=dict)


@dataclass
class PrivacyBudget:
    """A total ``(epsilon, delta)`` budget and the record of what has been spent from it.

    Parameters
    ----------
    epsilon : float
        Total epsilon for everything computed from the real data.
    delta : float
        Total delta.
    accountant : {"prv", "rdp", "zcdp"}
        ``"zcdp"`` composes full-table mechanisms only (Gaussian noise and the exponential
        mechanism, entered as the Gaussian of the same zCDP), see
        :func:`~nhssynth.privacy.accounting.zcdp_rho`.
    preprocessing_fraction : float
        Share of epsilon planned for DP preprocessing when it is needed (the composition is
        sub-additive, so training gets at least the rest).
    """

    epsilon: float
    delta: float
    accountant: str = "prv"
    preprocessing_fraction: float = 0.1
    spends: list[Spend] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (isinstance(self.epsilon, (int, float)) and self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise PrivacyBudgetError(f"epsilon must be a positive finite number, got {self.epsilon!r}.")
        if not 0 < self.delta < 1:
            raise PrivacyBudgetError(f"delta must be in (0, 1), got {self.delta!r}.")
        if not 0 < self.preprocessing_fraction < 1:
            raise PrivacyBudgetError(
                f"preprocessing_fraction must be in (0, 1), got {self.preprocessing_fraction!r}.")
        check_accountant(self.accountant, allow_zcdp=True)

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def history(self) -> tuple:
        return tuple(entry for s in self.spends for entry in s.history)

    @property
    def delta_extra(self) -> float:
        return float(sum(s.delta_extra for s in self.spends))

    def record(self, stage: str, mechanism: str, *, history: tuple = (), delta_extra: float = 0.0,
               **details: Any) -> Spend:
        """Add a spend; raises if the total would exceed the budget."""
        spend = Spend(stage, mechanism, tuple(history), float(delta_extra), details)
        self.spends.append(spend)
        eps, delta = self.spent()
        if eps > self.epsilon * (1 + 1e-9) or delta > self.delta * (1 + 1e-9):
            self.spends.pop()
            raise PrivacyBudgetError(
                f"{stage}: spending would bring the total to epsilon={eps:.4g}, delta={delta:.3g}, "
                f"over the budget ({self.epsilon}, {self.delta:g}).")
        return spend

    def spent(self) -> tuple[float, float]:
        """Total ``(epsilon, delta)`` spent so far under the composition described above."""
        if not self.spends:
            return 0.0, 0.0
        accountant_delta = self.delta - self.delta_extra
        if accountant_delta <= 0:
            return math.inf, self.delta_extra
        return compose_epsilon(self.history, accountant_delta, self.accountant), self.delta

    def epsilon_of(self, spend: Spend) -> float:
        """Epsilon of one spend on its own (at the accountant's delta), for the report."""
        if not spend.history:
            return 0.0
        return compose_epsilon(spend.history, self.delta - self.delta_extra, self.accountant)

    # -- planning ---------------------------------------------------------------------------
    def mechanism_noise_multiplier(self, fraction: float, n_mechanisms: int = 1,
                                   delta_extra: float = 0.0) -> float:
        """Noise multiplier ``z`` so that ``n_mechanisms`` full-table Gaussian mechanisms cost
        ``fraction * epsilon`` on their own (the composition with the rest costs less)."""
        if not 0 < fraction < 1:
            raise PrivacyBudgetError(f"budget fraction must be in (0, 1), got {fraction!r}.")
        return solve_noise_multiplier(fraction * self.epsilon,
                                      self.delta - self.delta_extra - delta_extra, 1.0,
                                      n_mechanisms, self.accountant)

    def epsilon_with(self, extra_history: tuple) -> float:
        """Total epsilon if ``extra_history`` were spent on top of what is recorded."""
        return compose_epsilon(self.history + tuple(extra_history), self.delta - self.delta_extra,
                               self.accountant)

    def remaining_rho(self) -> float:
        """zCDP budget still available: the ``rho`` whose conversion, composed with what is
        spent (in zCDP), stays within ``epsilon`` at the accountant's delta.  Used to plan
        full-table mechanisms; the spend is then recorded and accounted as usual."""
        total = zcdp_rho_for(self.epsilon, self.delta - self.delta_extra)
        return max(0.0, total - zcdp_rho(tuple(h for h in self.history if h[1] == 1.0)))

    def training_noise_multiplier(self, sample_rate: float, steps: int) -> float:
        """Smallest DP-SGD noise multiplier whose composition with what is already spent stays
        within the budget."""
        return solve_noise_multiplier(self.epsilon, self.delta - self.delta_extra, sample_rate,
                                      steps, self.accountant, prior=self.history)

    def report(self) -> dict:
        """Ledger as plain data: per-spend epsilon and the composed total."""
        eps, delta = self.spent()
        return {"epsilon_budget": self.epsilon, "delta_budget": self.delta,
                "epsilon": eps, "delta": delta, "accountant": self.accountant,
                "composition": "all Gaussian mechanisms composed in one accountant; "
                               "threshold deltas added",
                "spends": [{"stage": s.stage, "mechanism": s.mechanism,
                            "epsilon": self.epsilon_of(s), "delta_extra": s.delta_extra,
                            "accountant_entries": [list(h) for h in s.history], **s.details}
                           for s in self.spends]}
