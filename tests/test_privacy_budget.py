"""The privacy ledger (PrivacyBudget) and what a fitted DPVAESynthesizer reports from it."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from nhssynth import Metadata, NonPrivateOperationWarning, PrivacyBudgetError
from nhssynth import DPVAESynthesizer
from nhssynth.privacy.accounting import compose_epsilon
from nhssynth.privacy.budget import PrivacyBudget

TINY = dict(max_epochs=2, batch_size=500, hidden_dims=(16,), latent_dim=4, random_state=0)


# --------------------------------------------------------------------------------------------
# the ledger on its own
# --------------------------------------------------------------------------------------------
def test_records_spends_and_reports_the_composed_total():
    budget = PrivacyBudget(epsilon=8.0, delta=1e-5)
    assert budget.spent() == (0.0, 0.0)
    budget.record("preprocessing: domains", "Gaussian histogram", history=((20.0, 1.0, 1),), columns=["a"])
    budget.record("training", "DP-SGD", history=((1.2, 0.05, 400),))
    assert [s.stage for s in budget.spends] == ["preprocessing: domains", "training"]
    eps, delta = budget.spent()
    assert eps == pytest.approx(compose_epsilon(((20.0, 1.0, 1), (1.2, 0.05, 400)), 1e-5))
    assert 0 < eps <= 8.0 and delta == 1e-5
    report = budget.report()
    assert report["epsilon"] == eps and report["epsilon_budget"] == 8.0
    assert [s["stage"] for s in report["spends"]] == ["preprocessing: domains", "training"]
    assert report["spends"][0]["columns"] == ["a"]
    assert report["spends"][1]["accountant_entries"] == [[1.2, 0.05, 400]]


def test_composition_is_tighter_than_the_sum_of_epsilons():
    budget = PrivacyBudget(epsilon=10.0, delta=1e-5)
    for stage in ("a", "b", "c"):
        budget.record(stage, "Gaussian", history=((5.0, 1.0, 1),))
    total, _ = budget.spent()
    parts = [budget.epsilon_of(s) for s in budget.spends]
    assert all(p > 0 for p in parts)
    assert total < 0.8 * sum(parts)  # Gaussian composition grows like sqrt(k), not k
    assert total > max(parts)


def test_refuses_overspend_and_keeps_the_ledger_unchanged():
    budget = PrivacyBudget(epsilon=1.0, delta=1e-5)
    budget.record("ok", "Gaussian", history=((10.0, 1.0, 1),))
    before = budget.spent()
    with pytest.raises(PrivacyBudgetError, match="over the budget"):
        budget.record("too much", "Gaussian", history=((0.5, 1.0, 1),))
    assert [s.stage for s in budget.spends] == ["ok"]
    assert budget.spent() == before
    # a threshold delta that eats the whole delta is refused as well
    with pytest.raises(PrivacyBudgetError):
        budget.record("threshold", "stable histogram", delta_extra=1e-5)


def test_delta_extra_is_taken_from_the_accountant_delta():
    hist = ((3.0, 1.0, 1),)
    plain = PrivacyBudget(epsilon=5.0, delta=1e-5)
    plain.record("x", "Gaussian", history=hist)
    thresh = PrivacyBudget(epsilon=5.0, delta=1e-5)
    thresh.record("x", "Gaussian + threshold", history=hist, delta_extra=4e-6)
    assert thresh.delta_extra == pytest.approx(4e-6)
    eps_t, delta_t = thresh.spent()
    assert delta_t == pytest.approx(1e-5)  # the total delta includes the threshold delta
    assert eps_t == pytest.approx(compose_epsilon(hist, 1e-5 - 4e-6))
    assert eps_t > plain.spent()[0]  # less delta left for the accountant -> larger epsilon
    assert thresh.report()["spends"][0]["delta_extra"] == pytest.approx(4e-6)


def test_planning_helpers_respect_the_budget():
    budget = PrivacyBudget(epsilon=1.0, delta=1e-5)
    z = budget.mechanism_noise_multiplier(0.1, 2, delta_extra=1e-6)
    budget.record("pre", "Gaussian", history=((z, 1.0, 1), (z, 1.0, 1)), delta_extra=1e-6)
    assert budget.spent()[0] <= 0.1 * 1.0 * (1 + 1e-9)
    sigma = budget.training_noise_multiplier(0.1, 200)
    total = budget.epsilon_with(((sigma, 0.1, 200),))
    assert total <= 1.0 and total > 0.9  # tight: the solver uses (almost) all that is left
    budget.record("training", "DP-SGD", history=((sigma, 0.1, 200),))
    assert budget.spent()[0] == pytest.approx(total)


@pytest.mark.parametrize("kwargs", [dict(epsilon=0.0, delta=1e-5), dict(epsilon=math.inf, delta=1e-5),
                                    dict(epsilon=1.0, delta=0.0), dict(epsilon=1.0, delta=1.0),
                                    dict(epsilon=1.0, delta=1e-5, preprocessing_fraction=1.0)])
def test_invalid_budgets_are_refused(kwargs):
    with pytest.raises(PrivacyBudgetError):
        PrivacyBudget(**kwargs)


def test_gdp_accountant_is_refused():
    with pytest.raises(ValueError, match="gdp"):
        PrivacyBudget(epsilon=1.0, delta=1e-5, accountant="gdp")


# --------------------------------------------------------------------------------------------
# a fitted model's ledger
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 3000
    return pd.DataFrame({"age": rng.normal(60, 15, n).clip(18, 100).round(1),
                         "los": rng.integers(0, 60, n),
                         "group": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).astype(object)})


def _full_metadata(df):
    md = Metadata.from_dataframe(df)
    md = md.update("age", min=0.0, max=120.0, domain="declared")
    md = md.update("los", min=0, max=365, domain="declared")
    return md.update("group", categories=["a", "b", "c", "d"], domain="declared")


def _check_ledger(model):
    report = model.privacy_report()
    entries = tuple(tuple(e) for s in report.spends for e in s.details["accountant_entries"])
    delta_extra = sum(s.delta_extra for s in report.spends)
    assert model.epsilon_ == pytest.approx(
        compose_epsilon(entries, model.delta_ - delta_extra, report.accountant))
    assert report.epsilon == model.epsilon_ and 0 < model.epsilon_ <= model.epsilon
    assert report.covers_preprocessing and not report.non_private_statistics
    return report


def test_undeclared_metadata_spends_on_the_domain_release_within_the_budget(table):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonPrivateOperationWarning)  # DP mode never reads raw stats
        model = DPVAESynthesizer(epsilon=2.0, **TINY).fit(table)
    report = _check_ledger(model)
    stages = [s.stage for s in report.spends]
    assert stages == ["domain release: domains", "domain release: histograms",
                      "calibration: rank correlations", "calibration: two-way marginals",
                      "training"]
    # the exponential mechanism choosing the pairs composes in Renyi DP: the report says so
    assert report.accountant == "rdp" and any("rdp" in note for note in report.notes)
    domains = report.spends[0]
    assert set(domains.details["columns"]) == {"age", "los", "group"}
    assert domains.delta_extra > 0  # the category threshold is paid for in delta
    assert all(s.epsilon > 0 for s in report.spends)
    assert model.delta_ == pytest.approx(min(1e-5, 0.1 / len(table)))


def test_fully_declared_metadata_spends_only_on_histograms(table):
    # declared categories and bounds: no category release, no bounds search (no delta spent
    # on thresholds); numeric columns are still histogrammed for their mixtures
    model = DPVAESynthesizer(epsilon=2.0, metadata=_full_metadata(table), **TINY).fit(table)
    report = _check_ledger(model)
    stages = [s.stage for s in report.spends]
    assert stages == ["domain release: domains", "domain release: histograms",
                      "calibration: rank correlations", "calibration: two-way marginals",
                      "training"]
    assert report.spends[0].details["columns"] == ["group"]  # the declared column's shape only
    assert all(s.delta_extra == 0 for s in report.spends)
    # declared categories are kept in full, even one absent from the data
    assert model.encoder_.column_encoders_["group"].categories_[0].tolist() == ["a", "b", "c", "d"]


def test_without_calibration_the_fit_is_accounted_with_prv(table):
    model = DPVAESynthesizer(epsilon=2.0, calibrate=False, **TINY).fit(table)
    report = _check_ledger(model)
    assert report.accountant == "prv"
    assert [s.stage for s in report.spends][-1] == "training"
    assert "calibration: two-way marginals" not in [s.stage for s in report.spends]


def test_small_preprocessing_share_is_solvable_under_prv_and_rdp():
    """10% of epsilon=1 over two full-table histograms: PRV reaches it, and so does "rdp",
    which converts full-batch Gaussians through zCDP exactly (no subsampling bound), at a
    noise no smaller than PRV's (PRV is the tight one)."""
    from nhssynth.privacy.accounting import solve_noise_multiplier
    z = solve_noise_multiplier(0.1, 1e-5, 1.0, 2, "prv")
    assert compose_epsilon(((z, 1.0, 2),), 1e-5, "prv") <= 0.1
    assert compose_epsilon(((0.9 * z, 1.0, 2),), 1e-5, "prv") > 0.1 * 0.99  # not wildly over-noised
    z_rdp = solve_noise_multiplier(0.1, 1e-5, 1.0, 2, "rdp")
    assert compose_epsilon(((z_rdp, 1.0, 2),), 1e-5, "rdp") <= 0.1
    assert z <= z_rdp <= 1.5 * z
