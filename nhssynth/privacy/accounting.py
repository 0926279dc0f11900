"""Privacy accounting for DP-SGD with Poisson subsampling, via opacus' accountants.

Only accountants that give *upper bounds* are offered for reported guarantees: ``"prv"``
(numerical privacy random variables, tight; the default) and ``"rdp"`` (Rényi DP, looser by
roughly 7-20% on typical settings).  Opacus' ``"gdp"`` accountant is an asymptotic
approximation that can *under*-report epsilon, so it is refused here.
"""
from __future__ import annotations

import math
from functools import lru_cache

from ..exceptions import PrivacyBudgetError

__all__ = ["ACCOUNTANTS", "check_accountant", "compute_epsilon", "solve_noise_multiplier"]

ACCOUNTANTS = ("prv", "rdp")
_MAX_NOISE = 1e4


def check_accountant(name: str) -> str:
    if name == "gdp":
        raise ValueError("accountant='gdp' is an asymptotic approximation that can under-report "
                         "epsilon; use 'prv' (default, tight) or 'rdp' (conservative).")
    if name not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {name!r}.")
    return name


@lru_cache(maxsize=4096)
def compute_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                    accountant: str = "prv") -> float:
    """Epsilon spent by ``steps`` Poisson-subsampled Gaussian steps (an upper bound).

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation divided by the clipping norm.
    sample_rate : float
        Poisson sampling probability of each record per step (``batch_size / n``).
    steps : int
        Number of noisy steps taken.
    delta : float
        Target delta.
    accountant : {"prv", "rdp"}
    """
    check_accountant(accountant)
    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    if accountant == "prv":
        from opacus.accountants import PRVAccountant
        acc = PRVAccountant()
        acc.history = [(noise_multiplier, sample_rate, steps)]
        # eps_error bounds the numerical error; PRVAccountant returns the *upper* bound.
        try:
            return float(acc.get_epsilon(delta=delta, eps_error=0.01))
        except (ValueError, RuntimeError, FloatingPointError):
            # the PRV discretisation fails for extreme (tiny) noise; RDP still bounds it
            pass
    from opacus.accountants import RDPAccountant
    acc = RDPAccountant()
    acc.history = [(noise_multiplier, sample_rate, steps)]
    return float(acc.get_epsilon(delta=delta))


def solve_noise_multiplier(target_epsilon: float, delta: float, sample_rate: float, steps: int,
                           accountant: str = "prv", rel_tol: float = 0.005) -> float:
    """Smallest noise multiplier (to ``rel_tol``) whose epsilon does not exceed the target.

    The returned value is verified: ``compute_epsilon(result, ...) <= target_epsilon``, so a
    training run of ``steps`` steps never overspends.

    Raises
    ------
    PrivacyBudgetError
        If even an enormous noise multiplier cannot meet the target (tiny epsilon with many
        steps / a high sampling rate).
    """
    if not target_epsilon > 0:
        raise PrivacyBudgetError(f"epsilon must be > 0, got {target_epsilon}.")
    eps = lambda s: compute_epsilon(round(s, 12), sample_rate, steps, delta, accountant)  # noqa: E731
    hi = 1.0
    while eps(hi) > target_epsilon:
        hi *= 2.0
        if hi > _MAX_NOISE:
            raise PrivacyBudgetError(
                f"epsilon={target_epsilon} cannot be met with sample rate {sample_rate:.4g} over "
                f"{steps} steps (delta={delta:g}); use a larger epsilon, fewer epochs, a smaller "
                f"batch_size, or more data.")
    lo = hi / 2.0 if hi > 1.0 else 0.0
    if lo == 0.0:
        lo = 0.05
        if eps(lo) <= target_epsilon:
            return round(lo, 12)
    while (hi - lo) / hi > rel_tol:
        mid = 0.5 * (lo + hi)
        if eps(mid) <= target_epsilon:
            hi = mid
        else:
            lo = mid
    return round(hi, 12)
