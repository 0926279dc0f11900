import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from nhssynth import Metadata
from nhssynth.metrics import get_scorer, get_scorer_names
from nhssynth.synthesizers import MarginalSynthesizer

from .test_metrics_data import make_table

ALL = {"fidelity", "quality", "column_shapes", "missing_similarity", "column_pair_trends",
       "relationships", "coverage", "range_coverage", "category_coverage", "detection", "utility",
       "dcr_share", "privacy", "membership_inference", "nndr", "exact_copy"}


@pytest.fixture(scope="module")
def data():
    df = make_table(900, seed=8)
    md = Metadata.from_dataframe(df).update("group", domain="declared")
    return df, md


def test_scorer_names():
    assert set(get_scorer_names()) == ALL
    with pytest.raises(ValueError, match="unknown scorer"):
        get_scorer("nope")


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_scorer_returns_a_score_in_unit_interval(data, name):
    df, md = data
    train, test = df.iloc[:600], df.iloc[600:]
    est = MarginalSynthesizer(metadata=md, random_state=0).fit(train)
    scorer = get_scorer(name, target="flag", data=df)
    value = scorer(est, test)
    assert 0.0 <= value <= 1.0
    assert value == scorer(est, test)  # fixed seed: deterministic


def test_privacy_scorers_need_the_training_rows(data):
    df, md = data
    est = MarginalSynthesizer(metadata=md).fit(df.iloc[:600])
    with pytest.raises(ValueError, match="data=df"):
        get_scorer("dcr_share")(est, df.iloc[600:])
    with pytest.raises(ValueError, match="target"):
        get_scorer("utility")(est, df.iloc[600:])


def run_grid_search(estimator, param_grid, df, scoring, cv=3):
    """GridSearchCV with our scorers; reused for any synthesizer (e.g. the DP-VAE)."""
    search = GridSearchCV(estimator, param_grid, scoring=scoring, cv=cv, refit="fidelity",
                          error_score="raise")
    return search.fit(df)


def test_grid_search_over_epsilon_end_to_end(data):
    df, md = data
    scoring = {"fidelity": get_scorer("fidelity"), "privacy": get_scorer("dcr_share", data=df),
               "utility": get_scorer("utility", target="flag", data=df)}
    search = run_grid_search(MarginalSynthesizer(metadata=md, random_state=0),
                             {"epsilon": [0.01, 1.0, 100.0]}, df, scoring)
    fid = search.cv_results_["mean_test_fidelity"]
    assert np.all((fid >= 0) & (fid <= 1))
    assert fid[2] > fid[0]  # more budget, less noise
    assert search.best_params_["epsilon"] in (1.0, 100.0)
    assert np.all(np.isfinite(search.cv_results_["mean_test_privacy"]))
    fake = search.best_estimator_.sample(10, random_state=0)
    assert list(fake.columns) == list(df.columns)
