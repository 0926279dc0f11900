"""Privacy accounting for DP-SGD with Poisson subsampling, via opacus' accountants.

Only accountants that give *upper bounds* are offered for reported guarantees: ``"prv"``
(numerical privacy random variables, tight; the default) and ``"rdp"`` (Rényi DP, looser by
roughly 7-20% on typical settings).  Opacus' ``"gdp"`` accountant is an asymptotic
approximation that can *under*-report epsilon, so it is refused here.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from functools import lru_cache

from ..exceptions import PrivacyBudgetError

__all__ = ["ACCOUNTANTS", "check_accountant", "compute_epsilon", "compose_epsilon",
           "solve_noise_multiplier"]

# One accountant entry: (noise_multiplier, sample_rate, steps) of a (subsampled) Gaussian
# mechanism.  A Gaussian mechanism applied once to the whole table is (z, 1.0, 1).
History = tuple

ACCOUNTANTS = ("prv", "rdp")  # for DP-SGD (subsampled Gaussian steps)
# "zcdp" composes full-table mechanisms only (Gaussian and exponential), see zcdp_rho
_MAX_NOISE = 1e4
_MIN_NOISE = 0.3


def check_accountant(name: str, *, allow_zcdp: bool = False) -> str:
    """Check an accountant name and return it.

    Parameters
    ----------
    name : str
        One of :data:`ACCOUNTANTS` (``"prv"`` or ``"rdp"``), or ``"zcdp"`` when allowed.
    allow_zcdp : bool, default=False
        Whether ``"zcdp"`` is accepted (it composes full-table mechanisms only).

    Returns
    -------
    str
        The name, unchanged.

    Raises
    ------
    ValueError
        For ``"gdp"`` (an asymptotic approximation that can under-report epsilon) or any
        other unknown name.
    """
    if allow_zcdp and name == "zcdp":
        return name
    if name == "gdp":
        raise ValueError("accountant='gdp' is an asymptotic approximation that can under-report "
                         "epsilon; use 'prv' (default, tight) or 'rdp' (conservative).")
    if name not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {name!r}.")
    return name


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
    return compose_epsilon(((noise_multiplier, sample_rate, steps),), delta, accountant)


@lru_cache(maxsize=4096)
def compose_epsilon(history: History, delta: float, accountant: str = "prv") -> float:
    """Epsilon of the adaptive composition of several (subsampled) Gaussian mechanisms.

    ``history`` is a tuple of ``(noise_multiplier, sample_rate, steps)`` entries, e.g. the DP
    preprocessing histograms ``(z, 1.0, 1)`` followed by DP-SGD ``(sigma, q, T)``.  Composing
    them in one accountant is tighter than adding their epsilons.
    """
    check_accountant(accountant, allow_zcdp=True)
    history = tuple((float(z), float(q), int(t)) for z, q, t in history if t > 0)
    if not history:
        return 0.0
    if accountant == "zcdp" or (accountant == "rdp" and all(q == 1.0 for _, q, _ in history)):
        # full-table mechanisms only: their Renyi curve is exactly rho * alpha, converted over
        # every order (opacus' RDP grid stops at 63, too low for small budgets)
        return zcdp_epsilon(zcdp_rho(history), delta)
    if any(z <= 0 for z, _, _ in history):
        return math.inf
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # opacus warns about q=1 entries and the alpha range; neither affects the bound's validity
        warnings.simplefilter("ignore")
        return _compose(history, delta, accountant)


def _compose(history, delta: float, accountant: str) -> float:
    from opacus.accountants import PRVAccountant, RDPAccountant

    rdp = RDPAccountant()
    rdp.history = list(history)
    rdp_eps = float(rdp.get_epsilon(delta=delta))
    # PRV's discretisation grows with epsilon and can exhaust memory far outside the useful
    # range; both are upper bounds, so above ~30 the RDP bound is reported.
    if accountant == "rdp" or rdp_eps > 30:
        return rdp_eps
    acc = PRVAccountant()
    acc.history = list(history)
    try:
        # eps_error bounds the numerical error; PRVAccountant returns the *upper* bound.
        return min(rdp_eps, float(acc.get_epsilon(delta=delta, eps_error=0.01)))
    except (ValueError, RuntimeError, FloatingPointError, MemoryError):
        return rdp_eps


def solve_noise_multiplier(target_epsilon: float, delta: float, sample_rate: float, steps: int,
                           accountant: str = "prv", rel_tol: float = 0.005,
                           prior: History = ()) -> float:
    """Smallest noise multiplier (to ``rel_tol``) whose epsilon does not exceed the target.

    The returned value is verified: ``compute_epsilon(result, ...) <= target_epsilon``, so a
    training run of ``steps`` steps never overspends.  ``prior`` holds accountant entries
    already spent (DP preprocessing); the target then bounds their composition with training.

    The search is bracketed with the cheap RDP bound first (its solution is valid for PRV too,
    since the PRV result reported is never above RDP's), then refined with the accountant.

    Raises
    ------
    PrivacyBudgetError
        If even an enormous noise multiplier cannot meet the target (tiny epsilon with many
        steps / a high sampling rate).
    """
    if not target_epsilon > 0:
        raise PrivacyBudgetError(f"epsilon must be > 0, got {target_epsilon}.")
    check_accountant(accountant)
    prior = tuple(prior)
    if compose_epsilon(prior, delta, accountant) >= target_epsilon:
        raise PrivacyBudgetError(f"preprocessing alone spends the whole epsilon={target_epsilon}; "
                                 f"declare bounds/categories in the metadata or raise epsilon.")

    def search(acct: str, lo: float, hi: float) -> float:
        eps = lambda s: compose_epsilon(prior + ((round(s, 12), sample_rate, steps),), delta, acct)  # noqa: E731
        while eps(hi) > target_epsilon:
            lo, hi = hi, hi * 2.0
            if hi > _MAX_NOISE:
                raise PrivacyBudgetError(
                    f"epsilon={target_epsilon} cannot be met with sample rate {sample_rate:.4g} over "
                    f"{steps} steps (delta={delta:g}); use a larger epsilon, fewer epochs, a smaller "
                    f"batch_size, or more data.")
        # below ~0.3 DP-SGD noise is meaningless (epsilon explodes) and PRV discretisation
        # becomes numerically unstable; stop the search there.
        lo = max(lo, _MIN_NOISE)
        if lo >= hi or eps(lo) <= target_epsilon:
            return round(min(lo, hi), 12)
        while (hi - lo) / hi > rel_tol:
            mid = 0.5 * (lo + hi)
            if eps(mid) <= target_epsilon:
                hi = mid
            else:
                lo = mid
        return round(hi, 12)

    try:
        upper = search("rdp", 0.0, 1.0)
    except PrivacyBudgetError:
        if accountant == "rdp":
            raise
        # RDP has a floor (its finite range of orders): a small target, e.g. the 10% share of
        # epsilon=1 for preprocessing, can be out of RDP's reach but met under PRV.
        return search(accountant, 0.0, 1.0)
    if accountant == "rdp":
        return upper
    return search(accountant, 0.6 * upper, upper)


# --------------------------------------------------------------------------------------------
# zero-concentrated DP: for mechanisms run once on the whole table
# --------------------------------------------------------------------------------------------
# A Gaussian mechanism of L2 sensitivity 1 and noise multiplier z is rho = 1 / (2 z^2)-zCDP,
# exactly; the exponential mechanism with epsilon e0 is e0^2 / 8-zCDP (bounded range; Cesar and
# Rogers 2021), i.e. it has the Renyi divergences of a Gaussian with z = 2 / e0.  zCDP composes
# by adding rho, and rho-zCDP implies (epsilon, delta)-DP with the conversion below.  Generators
# that select what to measure with the exponential mechanism (AIMSynthesizer) account in zCDP;
# their ledger entries are (z, 1.0, steps) tuples with z the equivalent Gaussian's.


def zcdp_rho(history: History) -> float:
    """Total zCDP rho of full-table mechanisms given as ``(z, 1.0, steps)`` entries."""
    rho = 0.0
    for z, q, t in history:
        if t <= 0:
            continue
        if q != 1.0:
            raise PrivacyBudgetError("the zCDP accountant covers full-table mechanisms only "
                                     f"(sample rate 1), got sample rate {q}.")
        if z <= 0:
            return math.inf
        rho += t / (2.0 * z * z)
    return rho


def zcdp_epsilon(rho: float, delta: float) -> float:
    """Smallest epsilon such that rho-zCDP implies (epsilon, delta)-DP.

    Uses the conversion through Renyi DP of order ``alpha`` (Balle et al. 2020, as opacus does):
    ``epsilon = rho alpha + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1)``,
    minimised over ``alpha > 1``.
    """
    if rho <= 0:
        return 0.0
    if not math.isfinite(rho):
        return math.inf
    if not 0 < delta < 1:
        raise PrivacyBudgetError(f"delta must be in (0, 1), got {delta!r}.")

    def eps(alpha: float) -> float:
        return (rho * alpha + math.log((alpha - 1.0) / alpha)
                - (math.log(delta) + math.log(alpha)) / (alpha - 1.0))

    # convex in alpha: a coarse log grid, then golden-section refinement around the best point
    grid = np.exp(np.linspace(math.log(1.0001), math.log(1e7), 400))
    values = [eps(a) for a in grid]
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if eps(a) < eps(b):
            hi = b
        else:
            lo = a
    return max(0.0, min(values[i], eps(0.5 * (lo + hi))))


def zcdp_rho_for(epsilon: float, delta: float) -> float:
    """Largest rho whose (epsilon, delta) conversion stays within ``epsilon`` (bisection)."""
    if not epsilon > 0:
        raise PrivacyBudgetError(f"epsilon must be > 0, got {epsilon!r}.")
    lo, hi = 0.0, 1.0
    while zcdp_epsilon(hi, delta) < epsilon:
        lo, hi = hi, 2.0 * hi
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if zcdp_epsilon(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo
