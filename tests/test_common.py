"""sklearn's estimator checks plus nhssynth's generator checks on every synthesizer."""
import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from nhssynth import AIMSynthesizer, DPVAESynthesizer, NonPrivateOperationWarning
from nhssynth.datasets import load_example
from nhssynth.synthesizers import MarginalSynthesizer
from nhssynth.utils.estimator_checks import generator_checks

FAST = dict(max_epochs=2, batch_size=8, hidden_dims=(8,), latent_dim=2, random_state=0)


@parametrize_with_checks([
    DPVAESynthesizer(epsilon=None, allow_non_private=True, **FAST),
    MarginalSynthesizer(random_state=0),
    AIMSynthesizer(epsilon=None, allow_non_private=True, rounds=2, iterations=20, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPrivateOperationWarning)
        check(estimator)


@pytest.fixture(scope="module")
def table():
    df, md = load_example(return_metadata=True)
    cols = ["age", "sex", "death", "edu", "income", "charges", "dzgroup", "sno"]
    return df[cols].iloc[:1500].reset_index(drop=True), md.select(cols)


def _generators(md):
    return [DPVAESynthesizer(epsilon=3.0, metadata=md, max_epochs=2, batch_size=128, hidden_dims=(16,),
                             latent_dim=4, random_state=0),
            MarginalSynthesizer(epsilon=3.0, metadata=md, random_state=0),
            AIMSynthesizer(epsilon=3.0, metadata=md, iterations=20, random_state=0)]


@pytest.mark.parametrize("which", [0, 1, 2],
                         ids=["DPVAESynthesizer", "MarginalSynthesizer", "AIMSynthesizer"])
@pytest.mark.parametrize("check", generator_checks(), ids=lambda c: c.__name__)
def test_generator_checks(table, which, check):
    df, md = table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPrivateOperationWarning)
        check(_generators(md)[which], df)


def test_generator_check_catches_a_leaky_generator(table):
    """The no-training-rows check is not vacuous: a generator that keeps its data fails it."""
    from nhssynth.utils.estimator_checks import check_no_training_rows_stored

    class Leaky(MarginalSynthesizer):
        def fit(self, X, y=None):
            super().fit(X)
            self.rows_ = X.select_dtypes("number").to_numpy()
            return self

    df, md = table
    with pytest.raises(AssertionError):
        check_no_training_rows_stored(Leaky(metadata=md, random_state=0), df)
