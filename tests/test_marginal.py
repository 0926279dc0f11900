import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from nhssynth import Metadata, NonPrivateOperationWarning, NotFittedError
from nhssynth.metrics import column_shapes
from nhssynth.synthesizers import MarginalSynthesizer

from .test_metrics_data import make_table


@pytest.fixture(scope="module")
def real():
    df = make_table(800, seed=4)
    df.insert(0, "patient_id", np.arange(1000, 1000 + len(df)))
    return df


@pytest.fixture(scope="module")
def declared(real):
    md = Metadata.from_dataframe(real)
    return md.update("group", domain="declared").update("x", min=0.0, max=100.0)


@pytest.mark.parametrize("epsilon", [None, 5.0])
def test_schema_dtypes_and_missing_rates(real, declared, epsilon):
    synth = MarginalSynthesizer(epsilon=epsilon, metadata=declared, random_state=0).fit(real)
    fake = synth.sample(3000, random_state=1)
    assert list(fake.columns) == list(real.columns)
    assert fake.dtypes.equals(real.dtypes)
    declared.validate(fake)
    tol = 0.03 if epsilon is None else 0.08
    for c in real.columns:
        assert abs(fake[c].isna().mean() - real[c].isna().mean()) < tol, c
    assert fake["patient_id"].is_unique
    if epsilon is None:
        assert column_shapes(real, fake, declared)["score"].min() > 0.9


def test_reproducible_and_sample_does_not_mutate(real, declared):
    synth = MarginalSynthesizer(epsilon=2.0, metadata=declared, random_state=3).fit(real)
    before = pickle.dumps(synth)
    a = synth.sample(50, random_state=7)
    pd.testing.assert_frame_equal(a, synth.sample(50, random_state=7))
    assert pickle.dumps(synth) == before
    again = MarginalSynthesizer(epsilon=2.0, metadata=declared, random_state=3).fit(real)
    pd.testing.assert_frame_equal(a, again.sample(50, random_state=7))
    restored = pickle.loads(pickle.dumps(synth))
    pd.testing.assert_frame_equal(a, restored.sample(50, random_state=7))
    assert clone(synth).get_params() == synth.get_params()


def test_no_training_rows_in_fitted_state(real, declared):
    synth = MarginalSynthesizer(epsilon=1.0, metadata=declared, random_state=0).fit(real)
    state = pickle.dumps(synth.marginals_)
    for value in real["y"].dropna().iloc[:50]:  # continuous values with 3 decimals
        assert pickle.dumps(float(value)) not in state
    assert synth.marginals_["patient_id"] == {"type": "id"}


def test_privacy_report_and_budget(real, declared):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonPrivateOperationWarning)
        synth = MarginalSynthesizer(epsilon=2.0, metadata=declared, random_state=0).fit(real)
    rep = synth.privacy_report()
    assert synth.epsilon_ <= 2.0 + 1e-9 and rep.epsilon == pytest.approx(2.0)
    assert rep.delta == 0.0 and rep.private and rep.accountant and rep.covers_preprocessing
    assert sum(s.epsilon for s in rep.spends) == pytest.approx(2.0)
    # the declared bounds of x cost nothing; the undeclared y spends on its bounds
    stages = [s.stage for s in rep.spends]
    assert not any(s.startswith("x: bounds") for s in stages)
    assert any(s.startswith("y: bounds") for s in stages)
    nonpriv = MarginalSynthesizer().fit(real).privacy_report()
    assert nonpriv.private is False and nonpriv.epsilon is None
    assert "No differential privacy" in nonpriv.statement


def test_undeclared_categories_warn_under_dp(real):
    md = Metadata.from_dataframe(real)  # categories have domain: data
    with pytest.warns(NonPrivateOperationWarning, match="group"):
        synth = MarginalSynthesizer(epsilon=1.0, metadata=md, random_state=0).fit(real)
    assert any("group" in s for s in synth.privacy_report().non_private_statistics)
    assert not synth.privacy_report().covers_preprocessing


def test_dp_noise_decreases_with_epsilon(real, declared):
    def shape(eps):
        s = MarginalSynthesizer(epsilon=eps, metadata=declared, random_state=0).fit(real)
        return column_shapes(real, s.sample(2000, random_state=0), declared)["score"].mean()
    assert shape(100.0) > shape(0.05)


def test_errors(real):
    with pytest.raises(NotFittedError):
        MarginalSynthesizer().sample(5)
    for bad in (0, -1.0, float("inf"), "1"):
        with pytest.raises(ValueError, match="epsilon"):
            MarginalSynthesizer(epsilon=bad).fit(real)
    with pytest.raises(ValueError, match="bins"):
        MarginalSynthesizer(bins=0).fit(real)
    synth = MarginalSynthesizer().fit(real)
    for bad in (0, -3):
        with pytest.raises(ValueError):
            synth.sample(bad)
    with pytest.raises(TypeError):
        synth.sample(2.5)


def test_example_dataset_round_trip():
    from nhssynth.datasets import load_example
    df, md = load_example(return_metadata=True)
    fake = MarginalSynthesizer(epsilon=3.0, metadata=md, random_state=0).fit(df).sample(500, random_state=0)
    assert fake.dtypes.equals(df.dtypes)
    md.validate(fake)


def test_sklearn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(MarginalSynthesizer(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed


def test_sample_without_seed_leaves_numpy_global_rng_alone():
    import numpy as np
    import pandas as pd
    from nhssynth.synthesizers import MarginalSynthesizer

    df = pd.DataFrame({"x": np.arange(50, dtype=float), "c": ["a", "b"] * 25})
    synth = MarginalSynthesizer(random_state=0).fit(df)
    before = np.random.get_state()[1].copy()
    synth.sample(20)
    assert (np.random.get_state()[1] == before).all()
