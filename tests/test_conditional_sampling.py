"""Exact conditional sampling: ``sample(n, conditions=...)`` and ``sample_remaining_columns``.

Exact means every returned row meets its condition and the rows follow the model's own
conditional distribution (checked against the fitted graphical model's joint, which is known).
Rare conditions are cheap for AIMSynthesizer (its model is conditioned, not rejection-sampled):
checked by counting the rows drawn, not by timing."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from nhssynth import AIMSynthesizer, DPVAESynthesizer, MarginalSynthesizer, Metadata, MetadataError
from nhssynth.constraints import Inequality
from nhssynth.exceptions import SamplingError


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 20_000
    group = rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.199, 0.001])   # d: 0.1 %
    shift = pd.Series(group).map({"a": 0.0, "b": 5.0, "c": 10.0, "d": 20.0}).to_numpy()
    x = (rng.normal(40, 5, n) + shift).round(1)
    outcome = np.where(rng.random(n) < np.where(group == "a", 0.2, 0.7), "yes", "no")
    start = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return pd.DataFrame({"group": group, "x": x, "y": (x + rng.exponential(3, n)).round(1),
                         "outcome": outcome, "start": start})


@pytest.fixture(scope="module")
def aim(table):
    md = Metadata(Metadata.from_dataframe(table).columns, [Inequality(low="x", high="y")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return AIMSynthesizer(epsilon=None, allow_non_private=True, metadata=md,
                              random_state=0).fit(table)


def test_equality_membership_and_ranges_hold_in_every_row(aim):
    out = aim.sample(2000, random_state=1, conditions={
        "group": ["b", "c"], "x": (45.0, 55.0), "outcome": "yes",
        "start": ("2021-03-01", "2021-06-30")})
    assert len(out) == 2000
    assert set(out["group"]) <= {"b", "c"} and (out["outcome"] == "yes").all()
    assert out["x"].between(45.0, 55.0).all()
    assert out["start"].between(pd.Timestamp("2021-03-01"), pd.Timestamp("2021-06-30")).all()
    assert (out["y"] >= out["x"]).all()   # the declared constraint holds too


def test_conditional_distribution_is_the_models(aim):
    """P(outcome | group = b) in the sample matches the fitted model's joint."""
    bins = aim.bins_
    g, o = bins.names.index("group"), bins.names.index("outcome")
    joint = aim.model_.model().marginal([g, o])           # counts over (group, outcome) codes
    gi = bins.columns[g].labels.index("b")
    yes = bins.columns[o].labels.index("yes")
    expected = joint[gi, yes] / joint[gi].sum() if g < o else joint[yes, gi] / joint[:, gi].sum()
    out = aim.sample(20_000, random_state=2, conditions={"group": "b"})
    observed = (out["outcome"] == "yes").mean()
    assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / 20_000)
    unconditional = (aim.sample(20_000, random_state=2)["outcome"] == "yes").mean()
    assert abs(observed - unconditional) > 0.05           # the condition does change it


def test_a_rare_condition_costs_about_one_draw_per_row(aim, table):
    assert (table["group"] == "d").mean() < 0.002
    drawn = []
    original = aim._draw

    def counting(m, random_state, narrow):
        drawn.append(m)
        return original(m, random_state, narrow)

    aim._draw = counting
    try:
        out = aim.sample(5000, random_state=3, conditions={"group": "d"})
    finally:
        del aim._draw
    assert (out["group"] == "d").all() and len(out) == 5000
    assert sum(drawn) <= 2 * 5000          # rejection would need ~1,000x more draws
    assert out["x"].mean() > table.loc[table["group"] == "a", "x"].mean() + 10


@pytest.mark.parametrize("conditions, error, message", [
    ({"nope": 1}, MetadataError, "no such column"),
    ({"x": (5, 1)}, MetadataError, "above high"),
    ({"group": (1, 2)}, MetadataError, "range needs a numeric"),
    ({"x": "high"}, MetadataError, "not a number"),
    ({"group": []}, MetadataError, "allows no value"),
    ({"group": None}, MetadataError, "not nullable"),
    ({"start": "yesterday-ish"}, MetadataError, "not a datetime"),
])
def test_bad_conditions_are_clear_errors(aim, conditions, error, message):
    with pytest.raises(error, match=message):
        aim.sample(10, random_state=0, conditions=conditions)


def test_a_condition_the_model_cannot_meet_names_it(aim):
    with pytest.raises(SamplingError, match="group == 'zzz'"):
        aim.sample(10, random_state=0, conditions={"group": "zzz"})


def test_declared_categories_make_an_impossible_value_an_error_before_sampling(table):
    md = Metadata.from_dataframe(table).update("group", domain="declared",
                                               categories=["a", "b", "c", "d"])
    est = MarginalSynthesizer(epsilon=None, metadata=md, random_state=0).fit(table)
    with pytest.raises(MetadataError, match="not a category"):
        est.sample(10, conditions={"group": "e"})


def test_rejection_generators_meet_conditions_and_stop_on_impossible_ones(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = DPVAESynthesizer(epsilon=None, allow_non_private=True, max_epochs=2,
                               random_state=0).fit(table.head(3000))
    out = vae.sample(300, random_state=1, conditions={"outcome": "yes", "x": (None, 45.0)})
    assert (out["outcome"] == "yes").all() and (out["x"] <= 45.0).all()
    with pytest.raises(SamplingError, match="accepted"):
        vae.sample(50, random_state=1, conditions={"x": (1e6, None)})


def test_marginal_conditions_a_column_on_its_own_marginal(table):
    est = MarginalSynthesizer(epsilon=1.0, random_state=0).fit(table)
    out = est.sample(1000, random_state=0, conditions={"x": (60.0, None), "group": "b"})
    assert (out["x"] >= 60.0).all() and (out["group"] == "b").all()


# -- sample_remaining_columns ---------------------------------------------------------------
def test_remaining_columns_keep_the_given_values_and_follow_them(aim, table):
    known = pd.DataFrame({"group": ["d"] * 300 + ["a"] * 300,
                          "outcome": ["yes"] * 600})
    out = aim.sample_remaining_columns(known, random_state=0)
    assert list(out.columns) == list(table.columns)
    pd.testing.assert_frame_equal(out[["group", "outcome"]], known)
    assert out.loc[:299, "x"].mean() > out.loc[300:, "x"].mean() + 10   # x depends on group
    assert (out["y"] >= out["x"]).all()


def test_remaining_columns_start_from_a_given_low_side_of_a_rule(aim):
    known = pd.DataFrame({"x": [30.0, 45.5, 70.2] * 50})
    out = aim.sample_remaining_columns(known, random_state=1)
    assert (out["x"].to_numpy() == known["x"].to_numpy()).all()
    assert (out["y"] >= out["x"]).all()


@pytest.mark.parametrize("known, message", [
    (pd.DataFrame({"y": [50.0]}), "generated through a declared constraint"),
    (pd.DataFrame({"nope": [1]}), "not in the table"),
    (pd.DataFrame({"group": ["a"]}).iloc[:0], "at least one row"),
])
def test_remaining_columns_bad_input(aim, known, message):
    with pytest.raises(MetadataError, match=message):
        aim.sample_remaining_columns(known)


def test_remaining_columns_with_a_value_never_released_names_the_column(table):
    est = AIMSynthesizer(epsilon=0.5, random_state=0).fit(table)
    with pytest.raises((SamplingError, MetadataError), match="'group'"):
        est.sample_remaining_columns(pd.DataFrame({"group": ["zzz"]}))


def test_the_network_cannot_be_conditioned_on_given_rows(table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vae = DPVAESynthesizer(epsilon=None, allow_non_private=True, max_epochs=1,
                               random_state=0).fit(table.head(1000))
    with pytest.raises(NotImplementedError, match="AIMSynthesizer"):
        vae.sample_remaining_columns(table[["group"]].head(5))


def test_a_condition_on_an_identifier_is_an_error():
    df = pd.DataFrame({"patient_id": np.arange(300), "sex": np.resize(["F", "M"], 300)})
    md = Metadata.from_dataframe(df).update("patient_id", kind="id")
    est = MarginalSynthesizer(epsilon=None, metadata=md, random_state=0).fit(df)
    with pytest.raises(MetadataError, match="identifier"):
        est.sample(5, conditions={"patient_id": 3})
    with pytest.raises(MetadataError, match="identifier"):
        est.sample_remaining_columns(df[["patient_id"]].head(3))


@pytest.mark.parametrize("column, bounds", [("x", (44.0, 47.5)),
                                            ("start", ("2021-03-10", "2021-05-20"))])
def test_a_range_condition_draws_what_rejection_from_the_model_would(aim, column, bounds):
    """Evidence on the bins that hold the range, then the exact check inside partly covered
    bins: the same distribution as filtering a large unconditional draw."""
    lo, hi = (pd.Timestamp(b) for b in bounds) if column == "start" else bounds
    plain = aim.sample(200_000, random_state=5)
    kept = plain[plain[column].between(lo, hi)]
    out = aim.sample(20_000, random_state=6, conditions={column: bounds})
    assert out[column].between(lo, hi).all()
    for col, value in (("outcome", "yes"), ("group", "a")):
        p, q = (kept[col] == value).mean(), (out[col] == value).mean()
        se = np.sqrt(p * (1 - p) * (1 / len(kept) + 1 / len(out)))
        assert abs(p - q) < 4 * se + 1e-3, (col, p, q)
    other = "y" if column == "x" else "x"
    assert abs(kept[other].mean() - out[other].mean()) < 4 * kept[other].std() * np.sqrt(
        1 / len(kept) + 1 / len(out))
