import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from nhssynth import (DPVAESynthesizer, NonPrivateOperationWarning, SynthesisPipeline,
                      TableEncoder, make_synthesis_pipeline)
from nhssynth.datasets import load_example

COLS = ["age", "sex", "death", "income", "charges", "dzclass"]
FAST = dict(max_epochs=2, batch_size=100, hidden_dims=(16,), latent_dim=4, random_state=0)


@pytest.fixture(scope="module")
def data():
    df, md = load_example(return_metadata=True)
    return df[COLS].iloc[:1200].reset_index(drop=True), md.select(COLS)


def test_make_pipeline_names_and_params(data):
    df, md = data
    pipe = make_synthesis_pipeline(TableEncoder(metadata=md), DPVAESynthesizer(epsilon=1.0))
    assert isinstance(pipe, SynthesisPipeline)
    assert [n for n, _ in pipe.steps] == ["tableencoder", "dpvaesynthesizer"]
    pipe.set_params(dpvaesynthesizer__epsilon=3.0, tableencoder__gmm_components=5)
    assert pipe.get_params()["dpvaesynthesizer__epsilon"] == 3.0
    assert clone(pipe).get_params()["tableencoder__gmm_components"] == 5
    dup = make_synthesis_pipeline(TableEncoder(), TableEncoder(), DPVAESynthesizer())
    assert [n for n, _ in dup.steps] == ["tableencoder-1", "tableencoder-2", "dpvaesynthesizer"]


def test_fit_sample_inverts_through_every_step(data):
    df, md = data
    pipe = make_synthesis_pipeline(TableEncoder(metadata=md), DPVAESynthesizer(epsilon=3.0, **FAST))
    with pytest.warns(NonPrivateOperationWarning, match="WITHOUT differential privacy"):
        pipe.fit(df)
    out = pipe.sample(150, random_state=0)
    assert list(out.columns) == COLS and (out.dtypes == df.dtypes).all()
    report = pipe.privacy_report()
    assert report.private and not report.covers_preprocessing
    assert any("charges" in s for s in report.non_private_statistics)
    # the generator inside received encoded data plus spans and the fitted encoder (whose
    # domain it calibrates to), and returns encoded rows
    gen = pipe.named_steps["dpvaesynthesizer"]
    assert gen.encoder_ is pipe[0] and gen.sample(3, random_state=0).shape == (3, pipe[0].n_features_out_)
    back = pickle.loads(pickle.dumps(pipe))
    pd.testing.assert_frame_equal(back.sample(40, random_state=2), pipe.sample(40, random_state=2))


def test_grid_search_over_epsilon(data):
    df, md = data

    def fidelity(estimator, X, y=None):
        fake = estimator.sample(len(X), random_state=0)
        return -float(np.abs(fake["age"].mean() - X["age"].mean()))

    pipe = make_synthesis_pipeline(TableEncoder(metadata=md), DPVAESynthesizer(**FAST))
    search = GridSearchCV(pipe, {"dpvaesynthesizer__epsilon": [1.0, 10.0]}, scoring=fidelity, cv=2,
                          error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPrivateOperationWarning)
        search.fit(df)
    assert set(search.cv_results_["param_dpvaesynthesizer__epsilon"]) == {1.0, 10.0}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.named_steps["dpvaesynthesizer"].epsilon_ <= 10.0


def test_grid_search_with_library_scorer(data):
    from nhssynth.metrics import get_scorer

    df, md = data
    pipe = make_synthesis_pipeline(TableEncoder(metadata=md), DPVAESynthesizer(**FAST))
    search = GridSearchCV(pipe, {"dpvaesynthesizer__epsilon": [1.0, 5.0]},
                          scoring=get_scorer("fidelity"), cv=2, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPrivateOperationWarning)
        search.fit(df)
    scores = search.cv_results_["mean_test_score"]
    assert ((0 <= scores) & (scores <= 1)).all()


def test_bad_pipelines(data):
    df, md = data
    with pytest.raises(TypeError, match="must have a sample"):
        SynthesisPipeline([("enc", TableEncoder(metadata=md))]).fit(df)
    with pytest.raises(ValueError, match="'<step>__<param>'"):
        make_synthesis_pipeline(TableEncoder(metadata=md), DPVAESynthesizer(**FAST)).fit(df, bogus=1)


def test_missing_drop_rows_are_dropped_before_encoding_on_both_paths(data):
    df, md = data
    assert df["income"].isna().any()
    md = md.update("income", missing="drop")
    kept = int(df["income"].notna().sum())
    pipe = make_synthesis_pipeline(TableEncoder(metadata=md, epsilon=0.5),
                                   DPVAESynthesizer(epsilon=3.0, **FAST))
    pipe.fit(df)
    gen = pipe.named_steps["dpvaesynthesizer"]
    assert gen.sample_rate_ == pytest.approx(100 / kept)  # accounted on the rows it trained on
    assert not pipe.sample(200, random_state=0)["income"].isna().any()
    direct = DPVAESynthesizer(epsilon=3.0, metadata=md, **FAST).fit(df)
    assert direct.sample_rate_ == pytest.approx(100 / kept)
    assert not direct.sample(200, random_state=0)["income"].isna().any()
