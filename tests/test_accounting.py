"""Golden tests for privacy accounting."""
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from nhssynth.exceptions import PrivacyBudgetError
from nhssynth.privacy.accounting import compose_epsilon, compute_epsilon, solve_noise_multiplier


def analytic_gaussian_epsilon(z: float, delta: float) -> float:
    """Exact epsilon of one Gaussian mechanism (sensitivity 1, std z), Balle & Wang 2018."""
    def delta_of(eps):
        return norm.cdf(1 / (2 * z) - eps * z) - math.exp(eps) * norm.cdf(-1 / (2 * z) - eps * z) - delta
    return brentq(delta_of, 0.0, 100.0)


@pytest.mark.parametrize("z, delta", [(1.0, 1e-5), (3.0, 1e-6), (0.7, 1e-4)])
def test_prv_matches_analytic_gaussian_mechanism_and_is_an_upper_bound(z, delta):
    exact = analytic_gaussian_epsilon(z, delta)
    prv = compute_epsilon(z, 1.0, 1, delta, "prv")
    rdp = compute_epsilon(z, 1.0, 1, delta, "rdp")
    assert exact <= prv <= exact + 0.05
    assert rdp >= prv  # RDP is the looser bound


@pytest.mark.parametrize("eps, q, steps", [(1.0, 0.05, 600), (0.5, 0.1, 100), (10.0, 0.02, 1000)])
@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_solved_noise_never_overshoots_and_is_tight(eps, q, steps, accountant):
    sigma = solve_noise_multiplier(eps, 1e-5, q, steps, accountant)
    assert compute_epsilon(sigma, q, steps, 1e-5, accountant) <= eps
    assert compute_epsilon(sigma * 0.98, q, steps, 1e-5, accountant) > eps  # not wastefully large


def test_epsilon_is_monotone_in_steps_and_noise():
    steps = [10, 50, 200, 1000, 5000]
    by_steps = [compute_epsilon(1.5, 0.02, s, 1e-5) for s in steps]
    assert all(a < b for a, b in zip(by_steps, by_steps[1:]))
    noises = [0.6, 0.9, 1.5, 3.0, 8.0]
    by_noise = [compute_epsilon(z, 0.02, 500, 1e-5) for z in noises]
    assert all(a > b for a, b in zip(by_noise, by_noise[1:]))


@pytest.mark.parametrize("name, cls", [("rdp", "RDPAccountant"), ("prv", "PRVAccountant")])
def test_values_match_opacus_accountants_driven_step_by_step(name, cls):
    import opacus.accountants as acc_mod
    acc = getattr(acc_mod, cls)()
    for _ in range(2000):
        acc.step(noise_multiplier=1.1, sample_rate=0.01)
    expected = acc.get_epsilon(delta=1e-5) if name == "rdp" else acc.get_epsilon(delta=1e-5, eps_error=0.01)
    assert compute_epsilon(1.1, 0.01, 2000, 1e-5, name) == pytest.approx(expected, rel=1e-9)


def test_golden_values_abadi_setting():
    # Abadi et al. (2016) setting: q=0.01, sigma=1.1, 10,000 steps (~100 epochs), delta=1e-5.
    rdp = compute_epsilon(1.1, 0.01, 10_000, 1e-5, "rdp")
    prv = compute_epsilon(1.1, 0.01, 10_000, 1e-5, "prv")
    assert rdp == pytest.approx(5.632, rel=0.01)  # opacus 1.6 value
    assert prv == pytest.approx(5.203, rel=0.02)
    assert 1.05 < rdp / prv < 1.25  # PRV is the tighter bound


def test_composition_is_subadditive_but_costs_something():
    pre = ((20.0, 1.0, 1), (20.0, 1.0, 1))
    train = (2.0, 0.05, 400)
    both = compose_epsilon(pre + (train,), 1e-5)
    alone = compose_epsilon((train,), 1e-5)
    assert alone < both < alone + compose_epsilon(pre, 1e-5)


def test_bad_accounting_requests():
    with pytest.raises(ValueError, match="gdp"):
        compute_epsilon(1.0, 0.01, 100, 1e-5, "gdp")
    with pytest.raises(PrivacyBudgetError, match="epsilon must be > 0"):
        solve_noise_multiplier(0.0, 1e-5, 0.01, 100)
    with pytest.raises(PrivacyBudgetError, match="cannot be met"):
        solve_noise_multiplier(1e-4, 1e-9, 0.9, 10**5, "rdp")
    assert np.isinf(compute_epsilon(0.0, 0.1, 10, 1e-5))
