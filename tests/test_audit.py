"""Empirical privacy audit (one-run canary attack): the bound's math, and that it separates a DP
model from a non-private one."""
import warnings

import numpy as np
import pytest
from scipy import stats

from nhssynth.datasets import load_example
from nhssynth import DPVAESynthesizer
from nhssynth.privacy.audit import audit, canary_tags, epsilon_lower_bound, make_canaries


def test_lower_bound_is_the_binomial_tail_inversion():
    lb = epsilon_lower_bound(100, 100, 0.95)
    p = np.exp(lb) / (1 + np.exp(lb))
    assert stats.binom.sf(99, 100, p) == pytest.approx(0.05, rel=1e-3)  # P[all 100 right] = alpha
    assert lb == pytest.approx(np.log(0.05 ** 0.01 / (1 - 0.05 ** 0.01)), rel=1e-4)
    assert epsilon_lower_bound(100, 50) == 0.0  # chance level: nothing rejected
    assert epsilon_lower_bound(100, 55) == 0.0  # within noise of chance
    assert epsilon_lower_bound(0, 0) == 0.0
    bounds = [epsilon_lower_bound(100, k) for k in (60, 70, 80, 90, 100)]
    assert bounds == sorted(bounds) and bounds[0] > 0
    # more confidence -> a smaller (more cautious) lower bound
    assert epsilon_lower_bound(100, 90, 0.99) < epsilon_lower_bound(100, 90, 0.95)


def test_make_canaries_keeps_dtypes_and_tags_are_unique():
    X = load_example()[["age", "sex", "dzgroup"]].iloc[:200]
    c = make_canaries(X, 50, np.random.default_rng(0), canary_column="tag")
    assert (c[["age", "sex", "dzgroup"]].dtypes == X.dtypes).all()
    assert c["tag"].tolist() == canary_tags(50) and c["tag"].is_unique


@pytest.fixture(scope="module")
def audit_table():
    """Categorical SUPPORT2 columns, categories declared public (from the data dictionary)."""
    df, md = load_example(return_metadata=True)
    cols = ["sex", "dzgroup", "race", "ca", "income", "sfdm2", "diabetes", "dementia"]
    return df[cols].iloc[:300].reset_index(drop=True), md.select(cols)


AUDIT = dict(n_canaries=200, guess_fraction=0.5, canary_column="audit_tag", random_state=0)
MODEL = dict(max_epochs=50, batch_size=64, hidden_dims=(64,), latent_dim=8, calibrate=False,
             random_state=0)


@pytest.mark.slow
def test_audit_separates_dp_from_non_private_training(audit_table):
    X, md = audit_table
    claimed = 1.0
    dp = audit(DPVAESynthesizer(epsilon=claimed, metadata=md, **MODEL), X, **AUDIT)
    assert dp.claimed_epsilon is not None and dp.claimed_epsilon <= claimed
    assert dp.n_guesses == 100 and 60 <= dp.n_included <= 140
    assert dp.epsilon_lower_bound < claimed  # the DP claim survives the attack
    assert not dp.violates_claim
    assert dp.auc < 0.7

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nodp = audit(DPVAESynthesizer(epsilon=None, allow_non_private=True, metadata=md, **MODEL),
                     X, **AUDIT)
    assert nodp.claimed_epsilon is None
    # the same attack proves that the non-private model is not 1-DP, with 95% confidence
    assert nodp.epsilon_lower_bound > 2 * claimed
    assert nodp.auc > 0.9
