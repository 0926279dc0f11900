import pytest

from nhssynth import Metadata
from nhssynth.metrics import tstr
from nhssynth.metrics.utility import task_of

from .test_metrics_data import make_table, shuffle_columns


@pytest.fixture(scope="module")
def data():
    df = make_table(1200, seed=2)
    return df.iloc[:800], df.iloc[800:], Metadata.from_dataframe(df)


def test_task_is_chosen_from_metadata(data):
    _, _, md = data
    assert task_of(md, "flag") == "classification"
    assert task_of(md, "group") == "classification"
    assert task_of(md, "y") == "regression"


@pytest.mark.parametrize("target,metric", [("flag", "roc_auc"), ("group", "balanced_accuracy"),
                                           ("y", "r2")])
def test_training_on_real_rows_keeps_all_utility(data, target, metric):
    train, test, md = data
    res = tstr(train, train, target, test, md)
    assert res["metric"] == metric
    assert res["synthetic"] == pytest.approx(res["real"])
    assert res["score"] == pytest.approx(1.0)


def test_broken_relationships_lose_utility(data):
    train, test, md = data
    res = tstr(train, shuffle_columns(train), "flag", test, md)
    assert res["real"] > 0.8
    assert res["score"] < 0.25


def test_model_is_a_parameter_and_no_holdout_splits(data):
    from sklearn.linear_model import LinearRegression
    train, _, md = data
    res = tstr(train, train, "y", metadata=md, model=LinearRegression())
    assert res["real"] > 0.9 and res["score"] == pytest.approx(1.0)
