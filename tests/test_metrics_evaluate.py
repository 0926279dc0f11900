import numpy as np
import pytest

from nhssynth import Metadata
from nhssynth.metrics import evaluate
from nhssynth.synthesizers import MarginalSynthesizer

from .test_metrics_data import make_table


@pytest.fixture(scope="module")
def data():
    df = make_table(1800, seed=6)
    md = Metadata.from_dataframe(df).update("group", domain="declared")
    return df.iloc[:900], df.iloc[900:], md


@pytest.fixture(scope="module")
def marginal_result(data):
    train, holdout, md = data
    est = MarginalSynthesizer(metadata=md, random_state=0).fit(train)
    return evaluate(est, train, holdout, md, target="flag")


def test_tidy_table_and_summary(marginal_result, data):
    table, summary = marginal_result
    assert list(table.columns) == ["group", "metric", "column", "value", "baseline", "holdout", "ideal"]
    overall = table[table["column"] == ""].set_index("metric")
    for key in ("fidelity", "column_shapes", "column_pair_trends", "detection", "utility",
                "privacy", "dcr_share", "exact_copy_rate", "membership_inference", "quality"):
        assert key in summary and overall.loc[key, "value"] == pytest.approx(summary[key])
    # baseline and holdout references sit next to every table-level number
    assert overall.loc["fidelity", ["baseline", "holdout"]].notna().all()
    assert overall.loc["dcr_share", "ideal"] == 0.5
    per_col = table[table["metric"] == "column_shapes"]
    assert set(per_col["column"]) >= set(data[2].names) - {""}
    bounded = ~table["metric"].isin(["dcr_median", "utility_real", "utility_synthetic"])
    assert table.loc[bounded, "value"].between(0, 1).all()
    assert all(np.isfinite(v) for v in marginal_result.timings.values())
    assert marginal_result.privacy["private"] is False  # from MarginalSynthesizer.privacy_report


def test_independent_columns_do_not_look_good(marginal_result):
    """The known trap: marginal-only scores reward independent columns.  Pair trends,
    relationships, detection, utility and the headline 'quality' expose it."""
    res = marginal_result
    s, real = res.summary, res.holdout_summary  # holdout: real unseen rows as "synthetic"
    assert s["column_shapes"] > 0.9  # marginals look great ...
    assert s["relationships"] < 0.1 < 0.5 < real["relationships"]
    assert s["column_pair_trends"] < real["column_pair_trends"] - 0.05
    assert s["detection"] < 0.3 < 0.7 < real["detection"]
    assert s["utility"] < 0.3
    assert s["quality"] < 0.6 < 0.8 < real["quality"]
    assert any("independent columns" in f for f in res.findings)


def test_dataframe_input_and_good_synthetic_data(data):
    train, holdout, md = data
    fresh = make_table(900, seed=60)  # same generating process, unseen rows
    res = evaluate(fresh, train, holdout, md, target="y", baseline=False)
    s = res.summary
    assert s["quality"] > 0.75 and s["utility"] > 0.8 and s["privacy"] > 0.8
    assert not res.findings
    assert res.privacy is None and res.table["baseline"].isna().all()


def test_copies_are_flagged(data):
    train, holdout, md = data
    res = evaluate(train.copy(), train, holdout, md, baseline=False,
                   privacy={"epsilon": 1.0, "delta": 1e-5, "accountant": "prv", "spends": []})
    assert res.summary["exact_copy_rate"] == 1.0 and res.summary["dcr_share"] == pytest.approx(1.0)
    assert res.summary["privacy"] == pytest.approx(0.0)
    assert any("exact copies" in f for f in res.findings)
    assert res.epsilon == 1.0


def test_bad_inputs(data):
    train, holdout, md = data
    with pytest.raises(TypeError, match="sample method"):
        evaluate(object(), train)
    with pytest.raises(ValueError, match="target"):
        evaluate(train, train, target="nope", baseline=False)
