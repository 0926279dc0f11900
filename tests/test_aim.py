"""AIMSynthesizer: select, measure, generate (nhssynth.synthesizers.aim)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from nhssynth import AIMSynthesizer, Metadata, NonPrivateOperationWarning
from nhssynth.privacy.report import PrivacyReport


def _table(n: int = 3_000, seed: int = 0) -> pd.DataFrame:
    """A diagnosis that mostly decides the ward, an age that rises with the diagnosis, a
    length of stay with a heavy tail, a flag, some missing values."""
    rng = np.random.default_rng(seed)
    diag = rng.choice(["cardio", "neuro", "onco", "resp"], n, p=[0.4, 0.25, 0.2, 0.15])
    ward = np.where(rng.random(n) < 0.9, pd.Series(diag).map(
        {"cardio": "W1", "neuro": "W2", "onco": "W3", "resp": "W1"}).to_numpy(), "W4")
    base = pd.Series(diag).map({"cardio": 70, "neuro": 55, "onco": 62, "resp": 40}).to_numpy()
    df = pd.DataFrame({
        "diagnosis": diag, "ward": ward,
        "age": np.clip(np.round(base + rng.normal(0, 6, n)), 18, 99).astype(int),
        "stay": np.round(rng.lognormal(1.5, 0.7, n), 1),
        "readmitted": rng.random(n) < 0.2,
    })
    df.loc[rng.random(n) < 0.05, "stay"] = np.nan
    return df


def _cramers_v(a: pd.Series, b: pd.Series) -> float:
    table = pd.crosstab(a, b).to_numpy().astype(float)
    expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
    chi2 = ((table - expected) ** 2 / expected).sum()
    return float(np.sqrt(chi2 / table.sum() / (min(table.shape) - 1)))


@pytest.fixture(scope="module")
def fitted():
    df = _table()
    return df, AIMSynthesizer(epsilon=1.0, random_state=0).fit(df)


def test_samples_keep_columns_dtypes_and_missing_values(fitted):
    df, model = fitted
    out = model.sample(2_000, random_state=1)
    assert list(out.columns) == list(df.columns) and (out.dtypes == df.dtypes).all()
    assert set(out["diagnosis"]) <= set(df["diagnosis"])
    assert 0.01 < out["stay"].isna().mean() < 0.12
    assert out["age"].between(10, 128).all()


def test_relationships_are_kept_at_epsilon_1(fitted):
    df, model = fitted
    out = model.sample(len(df), random_state=1)
    assert _cramers_v(out["diagnosis"], out["ward"]) > 0.6  # real: ~0.8, independent: ~0
    means = out.groupby("diagnosis")["age"].mean()
    assert means["cardio"] - means["resp"] > 15  # real: 30
    assert ("diagnosis", "ward") in model.measured_ or ("ward", "diagnosis") in model.measured_


def test_privacy_report_is_typed_and_within_budget(fitted):
    _, model = fitted
    report = model.privacy_report()
    assert isinstance(report, PrivacyReport) and report.private and report.covers_preprocessing
    assert 0.95 < model.epsilon_ <= 1.0 and report.accountant == "zcdp"
    stages = [s.stage for s in report.spends]
    assert stages[0].startswith("domain release") and "rounds: measurement" in stages
    assert "differentially private" in report.statement
    assert report.to_dict()["epsilon"] == model.epsilon_


@pytest.mark.parametrize("epsilon", [0.5, 3.0])
def test_budget_is_never_overspent(epsilon):
    model = AIMSynthesizer(epsilon=epsilon, random_state=0).fit(_table(1_500, seed=1))
    assert model.epsilon_ <= epsilon


def test_seeds_reproduce_fits_and_draws_and_save_load_keeps_them(tmp_path):
    df = _table(1_000, seed=2)
    a = AIMSynthesizer(epsilon=1.0, random_state=3).fit(df)
    b = AIMSynthesizer(epsilon=1.0, random_state=3).fit(df)
    pd.testing.assert_frame_equal(a.sample(300, random_state=4), b.sample(300, random_state=4))
    a.save(tmp_path / "m")
    c = AIMSynthesizer.load(tmp_path / "m")
    pd.testing.assert_frame_equal(a.sample(300, random_state=4), c.sample(300, random_state=4))
    assert c.privacy_report() == a.privacy_report()


def test_a_rare_category_never_comes_out():
    df = _table(2_000, seed=3)
    df.loc[[5, 6], "diagnosis"] = "one-off"
    model = AIMSynthesizer(epsilon=1.0, random_state=0).fit(df)
    assert "one-off" not in set(model.sample(5_000, random_state=0)["diagnosis"])


def test_not_private_warns_unless_acknowledged_and_learns_exactly():
    df = _table(1_500, seed=4)
    with pytest.warns(NonPrivateOperationWarning):
        AIMSynthesizer(epsilon=None, rounds=2, random_state=0).fit(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonPrivateOperationWarning)
        model = AIMSynthesizer(epsilon=None, allow_non_private=True, random_state=0).fit(df)
    report = model.privacy_report()
    assert not report.private and "diagnosis: category set" in report.non_private_statistics
    out = model.sample(len(df), random_state=0)
    assert abs(_cramers_v(out["diagnosis"], out["ward"]) - _cramers_v(df["diagnosis"], df["ward"])) < 0.05


def test_declared_metadata_is_used_and_costs_nothing_for_categories():
    df = _table(1_500, seed=5)
    md = Metadata.from_dataframe(df).update("diagnosis", domain="declared")
    model = AIMSynthesizer(epsilon=1.0, metadata=md, random_state=0).fit(df)
    domain = next(s for s in model.privacy_report().spends if s.stage == "domain release: domains")
    assert domain.delta_extra < model.privacy_report().delta  # ward is still released by threshold
    assert model.bins_.columns[0].other is False  # declared: every value has a code


def test_rows_of_unreleased_categories_keep_the_rest_of_their_row():
    """Ten common names, all female, hold 45 % of the rows; the men's names are rare, none
    released.  Their rows go to the "other" code, which the model keeps: gender stays half and
    half (conditioning the model on "not other" made the sample ~100 % female), and only the
    name of those rows is drawn from the released ones."""
    rng = np.random.default_rng(11)
    common = np.repeat([f"f{i}" for i in range(10)], 900)
    rare_f = np.array([f"rf{i}" for i in range(500)]).repeat(2)
    rare_m = np.array([f"rm{i}" for i in range(5_000)]).repeat(2)
    df = pd.DataFrame({"name": np.concatenate([common, rare_f, rare_m]),
                       "gender": ["F"] * 10_000 + ["M"] * 10_000,
                       "age": rng.integers(20, 80, 20_000)}).sample(frac=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AIMSynthesizer(epsilon=3.0, random_state=0).fit(df)
    labels = model.bins_.columns[model.bins_.names.index("name")].labels
    assert set(labels) == {f"f{i}" for i in range(10)}  # only the common names are released
    out = model.sample(20_000, random_state=1)
    assert 0.45 < (out["gender"] == "M").mean() < 0.55
    assert out["name"].isin(labels).all()
    # the conditional paths redraw the same way: a condition, and known values
    men = model.sample(500, random_state=2, conditions={"gender": "M"})
    assert (men["gender"] == "M").all() and men["name"].isin(labels).all()
    filled = model.sample_remaining_columns(pd.DataFrame({"gender": ["M"] * 300 + ["F"] * 300}),
                                            random_state=3)
    assert list(filled["gender"]) == ["M"] * 300 + ["F"] * 300
    assert filled["name"].isin(labels).all() and filled["age"].between(20, 79).all()


@pytest.mark.parametrize("params", [dict(degree=4), dict(n_bins=1), dict(epsilon=-1.0),
                                    dict(domain_fraction=1.5), dict(rounds=0)])
def test_bad_parameters_are_named(params):
    with pytest.raises(InvalidParameterError, match=next(iter(params))):
        AIMSynthesizer(**params).fit(_table(200))


def test_arrays_in_arrays_out():
    X = np.random.default_rng(0).normal(size=(300, 3))
    model = AIMSynthesizer(epsilon=None, allow_non_private=True, random_state=0).fit(X)
    out = model.sample(50, random_state=0)
    assert isinstance(out, np.ndarray) and out.shape == (50, 3)


def test_strongly_related_numeric_columns_move_together_inside_their_codes():
    # two lab values measured together (r = 0.97) and an unrelated one: the model relates the
    # first two's codes, so their values are placed inside the codes by one shared uniform;
    # drawn independently inside a code, the correlation is diluted by the codes' widths
    rng = np.random.default_rng(0)
    n = 5_000
    a = rng.lognormal(0.0, 0.5, n)
    df = pd.DataFrame({"a": np.round(a, 2),
                       "b": np.round(2 * a + rng.normal(0, 0.15, n), 2),
                       "c": np.round(rng.normal(10, 2, n), 1),
                       "d": -np.round(a + rng.normal(0, 0.1, n), 2)})
    model = AIMSynthesizer(epsilon=3.0, random_state=0).fit(df)
    together = {name: (group, sign) for name, group, sign in model.together_}
    assert {"a", "b", "d"} <= set(together) and "c" not in together
    assert together["a"][0] == together["b"][0] == together["d"][0]
    assert together["a"][1] == together["b"][1] == -together["d"][1]
    joint = model.sample(n, random_state=1)
    model.together_ = []
    free = model.sample(n, random_state=1)
    real = df["a"].corr(df["b"])
    assert abs(joint["a"].corr(joint["b"]) - real) < abs(free["a"].corr(free["b"]) - real)
    assert joint["a"].corr(joint["d"]) < free["a"].corr(free["d"]) < 0
