"""Declared constraints: YAML, clear errors, and every sampled row satisfying every rule, for
every generator, whether the rule is enforced by construction or by rejection."""
from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhssynth import AIMSynthesizer, DPVAESynthesizer, MarginalSynthesizer, Metadata, MetadataError
from nhssynth.exceptions import MetadataWarning
from nhssynth.constraints import (FixedCombinations, Inequality, MissingLink, MissingWhenMissing,
                                  OneHot, Positive, Range, RowPredicate, constraint_from_dict)
from nhssynth.exceptions import SamplingError


def clinical(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A table where every rule below holds in every row."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 12, n).round(1)
    diagnosed = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D")
    died = diagnosed + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    died = pd.Series(died).where(rng.random(n) < 0.6)            # many alive: missing
    lab = np.where(rng.random(n) < 0.3, np.nan, rng.lognormal(1.0, 0.4, n).round(2))
    sex = rng.choice(["F", "M"], n)
    pregnant = np.where(sex == "F", rng.choice([True, False], n, p=[0.1, 0.9]), False)
    arm = rng.integers(0, 3, n)
    return pd.DataFrame({
        "age": age,
        "age_at_review": (age + rng.exponential(2.0, n)).round(1),
        "diagnosed": diagnosed,
        "died": died,
        "lab": lab,
        "lab_measured": ~np.isnan(lab),
        "sex": sex,
        "pregnant": pregnant,
        "arm_a": (arm == 0).astype(np.int64),
        "arm_b": (arm == 1).astype(np.int64),
        "arm_c": (arm == 2).astype(np.int64),
        "visits": rng.poisson(3, n),
    })


RULES = [
    Inequality(low="age", high="age_at_review"),
    Inequality(low="diagnosed", high="died"),
    MissingLink(value="lab", flag="lab_measured"),
    FixedCombinations(columns=["sex", "pregnant"]),
    OneHot(columns=["arm_a", "arm_b", "arm_c"]),
    Positive(column="visits"),
]


def declared(df: pd.DataFrame, rules) -> Metadata:
    return Metadata(Metadata.from_dataframe(df).columns, list(rules))


def violations(est, frame, real=None) -> dict[str, int]:
    """Rows breaking each rule; combinations without a declared list are checked against the
    real table's (``real``, default the module's table)."""
    real = clinical() if real is None else real
    cols = est.constraints_.columns_in_
    out = {}
    for c in est.constraints_.constraints:
        rule = c.with_reference(real) if isinstance(c, FixedCombinations) else c
        out[c.describe()] = int(np.asarray(rule.violations(frame, cols)).sum())
    return out


# -- declaration ---------------------------------------------------------------------------
def test_every_kind_round_trips_through_yaml():
    df = clinical(50)
    md = declared(df, RULES + [Range(column="age", min=0, max=120),
                               MissingWhenMissing(column="died", source="diagnosed")])
    text = md.to_yaml()
    assert "constraints:" in text and "type: inequality" in text
    back = Metadata.from_yaml(text)
    assert [c.to_dict() for c in back.constraints] == [c.to_dict() for c in md.constraints]
    assert constraint_from_dict({"type": "one_hot", "columns": ["a", "b"]}).columns == ("a", "b")


def test_a_predicate_is_python_only():
    md = declared(clinical(50), [RowPredicate(lambda f: f["age"] > 0, ["age"], name="adult")])
    with pytest.raises(MetadataError, match="cannot be written to YAML"):
        md.to_yaml()


@pytest.mark.parametrize("rules, message", [
    ([Inequality(low="age", high="nope")], "names column 'nope'"),
    ([{"type": "inequality", "low": "age"}], "inequality"),
    ([{"type": "greater"}], "unknown constraint type 'greater'"),
    ([Inequality(low="age", high="age_at_review"), Inequality(low="age_at_review", high="age",
                                                              strict=True)], "contradict"),
    ([Inequality(low="age", high="age_at_review"), Inequality(low="age_at_review", high="age")],
     "equal"),
    ([Inequality(low="age", high="diagnosed")], "datetime and the other a number"),
    ([Range(column="age", min=10, max=5)], "min is greater than max"),
    ([Range(column="age", min=50), Range(column="age", max=40)], "no value"),
    ([OneHot(columns=["arm_a", "age"])], "'age' is continuous"),
    ([FixedCombinations(columns=["sex", "pregnant"], allowed=[["F"]])], "has 1 values"),
    ([FixedCombinations(columns=["sex", "pregnant"], allowed=[])], "empty"),
    ([MissingWhenMissing(column="age", source="lab")], "not nullable"),
    ([Inequality(low="diagnosed", high="died", offset=3)], "timedelta string"),
])
def test_bad_declarations_name_the_rule_and_the_fix(rules, message):
    with pytest.raises(MetadataError, match=message):
        declared(clinical(50), rules)


def test_data_that_break_a_rule_are_counted_not_shown():
    df = clinical(200)
    df.loc[[3, 7, 11], "age_at_review"] = df.loc[[3, 7, 11], "age"] - 1
    md = declared(df, [Inequality(low="age", high="age_at_review")])
    with pytest.raises(MetadataError, match=r"3 of 200 rows of the data break it") as err:
        MarginalSynthesizer(metadata=md, random_state=0).fit(df)
    assert not re.search(r"\brows? (3|7|11)\b|index", str(err.value))


# -- every sampled row satisfies every rule ------------------------------------------------------
@pytest.fixture(scope="module")
def table():
    return clinical()


@pytest.mark.parametrize("make", [
    lambda md: MarginalSynthesizer(epsilon=1.0, metadata=md, random_state=0),
    lambda md: AIMSynthesizer(epsilon=1.0, metadata=md, random_state=0),
    lambda md: AIMSynthesizer(epsilon=None, allow_non_private=True, metadata=md, random_state=0),
    lambda md: DPVAESynthesizer(epsilon=3.0, max_epochs=3, metadata=md, random_state=0),
], ids=["marginal", "aim-eps1", "aim-nonprivate", "dpvae"])
def test_every_generator_samples_only_valid_rows(table, make):
    md = declared(table, RULES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make(md).fit(table)
    assert all(s["enforced_by"] == "construction" for s in est.constraints_.summary())
    out = est.sample(3000, random_state=1)
    assert list(out.columns) == list(table.columns)
    assert out.dtypes.to_dict() == table.dtypes.to_dict()
    assert violations(est, out, table) == {c.describe(): 0 for c in RULES}
    # not a degenerate table: both sides of each rule vary
    assert out["age_at_review"].nunique() > 20 and out["died"].notna().any()
    assert out["lab_measured"].any() and not out["lab_measured"].all()
    assert set(out["sex"]) == {"F", "M"}
    assert set(out[["arm_a", "arm_b", "arm_c"]].sum(axis=1)) == {1}


def test_without_constraints_the_same_columns_are_learnt(table):
    # the learnt table differs only where a rule reparametrises it
    est = AIMSynthesizer(epsilon=None, allow_non_private=True, metadata=declared(table, RULES),
                         random_state=0).fit(table)
    learnt = est.constraints_.columns_out_
    assert "lab_measured" not in learnt and "arm_a" not in learnt
    assert "age_at_review" in learnt and learnt["age_at_review"].min == 0
    assert est.metadata_.names == list(table.columns) and est.metadata_.constraints
    assert any(n.startswith("__combination__") for n in learnt)


def test_a_rule_that_cannot_be_reparametrised_is_enforced_by_rejection():
    df = clinical(800)
    df["review"] = df["died"] + pd.to_timedelta(30, unit="D")   # missing where died is
    md = declared(df, [Inequality(low="died", high="review", strict=True),   # low nullable
                       RowPredicate(lambda f: (f["age"] < 85).to_numpy(), ["age"], name="age < 85")])
    df = df[df["age"] < 85].reset_index(drop=True)
    est = MarginalSynthesizer(epsilon=None, metadata=md, random_state=0).fit(df)
    summary = {s["constraint"]: s["enforced_by"] for s in est.constraints_.summary()}
    assert set(summary.values()) == {"rejection"}
    out = est.sample(2000, random_state=3)
    assert len(out) == 2000 and out["age"].max() < 85
    assert sum(violations(est, out, df).values()) == 0


def test_a_rule_rejecting_almost_every_draw_says_which_and_how_often():
    df = clinical(500)
    md = declared(df, [RowPredicate(lambda f: (f["age"] > 10).to_numpy(), ["age"], name="rare")])
    est = MarginalSynthesizer(epsilon=None, metadata=md, random_state=0).fit(df)
    est.constraints_.constraints[0].predicate = lambda f: np.zeros(len(f), dtype=bool)
    with pytest.raises(SamplingError, match=r"row_predicate: rare: 100\.00%"):
        est.sample(100, random_state=0)


def test_chained_inequalities_and_missing_links_compose():
    rng = np.random.default_rng(1)
    n = 1000
    a = rng.integers(0, 50, n)
    b = a + rng.integers(0, 20, n)
    c = b + rng.integers(1, 10, n)
    df = pd.DataFrame({"a": a, "b": b, "c": c, "c_flag": rng.random(n) < 2})
    md = declared(df, [Inequality(low="b", high="c", strict=True), Inequality(low="a", high="b"),
                       Range(column="a", min=0, max=60)])
    est = AIMSynthesizer(epsilon=None, allow_non_private=True, metadata=md, random_state=0).fit(df)
    out = est.sample(3000, random_state=2)
    assert sum(violations(est, out, df).values()) == 0
    assert ((out["a"] <= out["b"]) & (out["b"] < out["c"])).all()
    assert out["a"].between(0, 60).all()


def test_saved_model_keeps_its_constraints(tmp_path, table):
    est = AIMSynthesizer(epsilon=1.0, metadata=declared(table, RULES), random_state=0).fit(table)
    est.save(tmp_path / "m")
    back = AIMSynthesizer.load(tmp_path / "m")
    pd.testing.assert_frame_equal(back.sample(200, random_state=4), est.sample(200, random_state=4))


def test_dpvae_scores_real_rows_through_the_reparametrisation(table):
    est = DPVAESynthesizer(epsilon=None, allow_non_private=True, max_epochs=2,
                           metadata=declared(table, RULES), random_state=0).fit(table)
    scores = est.score_samples(table.head(50))
    assert scores.shape == (50,) and np.isfinite(scores).all()


# -- property: random tables, random rule sets ------------------------------------------------
@st.composite
def tables_and_rules(draw):
    n = draw(st.integers(60, 300))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    cols, rules = {}, []
    base = rng.normal(draw(st.floats(-100, 100)), draw(st.floats(0.1, 50)), n).round(2)
    cols["x"] = base
    if draw(st.booleans()):
        strict = draw(st.booleans())
        offset = draw(st.sampled_from([0, 1.5]))
        gap = rng.exponential(3, n).round(2) + (0.01 if strict else 0) + offset
        cols["y"] = (base + gap).round(2)
        rules.append(Inequality(low="x", high="y", strict=strict, offset=offset))
    if draw(st.booleans()):
        start = pd.Timestamp("2019-06-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D")
        cols["start"] = start
        cols["end"] = start + pd.to_timedelta(rng.integers(0, 90, n), unit="D")
        rules.append(Inequality(low="start", high="end"))
    if draw(st.booleans()):
        v = np.where(rng.random(n) < 0.4, np.nan, rng.normal(0, 1, n).round(3))
        cols["v"] = v
        cols["v_flag"] = np.where(np.isnan(v), "no", "yes")
        rules.append(MissingLink(value="v", flag="v_flag", present="yes", absent="no"))
    k = draw(st.integers(2, 4))
    if draw(st.booleans()):
        pick = rng.integers(0, k, n)
        for j in range(k):
            cols[f"h{j}"] = pick == j
        rules.append(OneHot(columns=[f"h{j}" for j in range(k)]))
    if draw(st.booleans()):
        g = rng.choice(list("ABC"), n)
        cols["g"] = g
        cols["s"] = np.where(g == "A", "a1", rng.choice(["b1", "b2"], n))
        allowed = [["A", "a1"], ["B", "b1"], ["B", "b2"], ["C", "b1"], ["C", "b2"]] \
            if draw(st.booleans()) else None
        rules.append(FixedCombinations(columns=["g", "s"], allowed=allowed))
    if draw(st.booleans()):
        cols["count"] = rng.poisson(2, n)
        rules.append(Positive(column="count", strict=False))
    if not rules:
        cols["count"] = rng.poisson(2, n)
        rules.append(Range(column="count", min=0, max=30))
    df = pd.DataFrame(cols)
    return df, rules, draw(st.sampled_from([None, 0.5, 3.0])), seed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables_and_rules())
def test_property_every_sampled_row_satisfies_every_declared_rule(case):
    df, rules, eps, seed = case
    md = declared(df, rules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in (MarginalSynthesizer(epsilon=eps, metadata=md, random_state=seed),
                    AIMSynthesizer(epsilon=eps, allow_non_private=True, metadata=md,
                                   random_state=seed, rounds=3)):
            try:
                est.fit(df)
            except Exception as exc:  # a tiny table at a small epsilon may be refused: clearly
                from nhssynth import PrivacyBudgetError
                assert isinstance(exc, PrivacyBudgetError), exc
                continue
            out = est.sample(400, random_state=seed)
            assert len(out) == 400
            bad = violations(est, out, df)
            assert sum(bad.values()) == 0, (type(est).__name__, bad)
            withheld = [c for c in out if out[c].isna().all() and df[c].notna().any()]
            assert out.drop(columns=withheld).dtypes.to_dict() == \
                df.drop(columns=withheld).dtypes.to_dict()


# -- evaluation and report ----------------------------------------------------------------
def test_evaluate_and_report_show_each_rule_next_to_real_and_independent_columns(table):
    from nhssynth.metrics import evaluate
    from nhssynth.reporting import render_report

    train, holdout = table.iloc[:1000], table.iloc[1000:]
    est = AIMSynthesizer(epsilon=None, allow_non_private=True, metadata=declared(train, RULES),
                         random_state=0).fit(train)
    res = evaluate(est, train, holdout, max_rows=500)
    rows = res.table[res.table["metric"] == "violation_share"].set_index("column")
    assert list(rows.index) == [c.describe() for c in RULES]
    assert (rows["value"] == 0).all() and (rows["holdout"] == 0).all()
    # independent columns break the relational rules (not positivity, a one-column rule)
    assert rows.loc["inequality: age_at_review >= age", "baseline"] > 0.2
    assert rows.loc[RULES[2].describe(), "baseline"] > 0.1
    assert res.summary["constraint_violations"] == 0
    assert res.baseline_summary["constraint_violations"] > 0.5
    html = render_report(res)
    assert "Declared constraints" in html and "inequality: died &gt;= diagnosed" in html


def test_a_pipeline_refuses_constraints_it_cannot_enforce(table):
    from nhssynth import TableEncoder, make_synthesis_pipeline

    pipe = make_synthesis_pipeline(TableEncoder(metadata=declared(table, RULES)),
                                   DPVAESynthesizer(epsilon=None, allow_non_private=True,
                                                    max_epochs=1))
    with pytest.raises(MetadataError, match="SynthesisPipeline cannot enforce"):
        pipe.fit(table)


def test_conditions_and_known_values_on_members_of_a_group(table):
    est = AIMSynthesizer(epsilon=None, allow_non_private=True, metadata=declared(table, RULES),
                         random_state=0).fit(table)
    drawn = []
    original = est._draw
    est._draw = lambda m, rs, narrow: drawn.append(m) or original(m, rs, narrow)
    out = est.sample(1000, random_state=0, conditions={"pregnant": True, "arm_b": 1})
    del est._draw
    assert (out["pregnant"] & (out["sex"] == "F") & (out["arm_b"] == 1)).all()
    assert sum(drawn) <= 2000        # the groups' joint columns are conditioned, not rejected
    known = pd.DataFrame({"sex": ["M", "F"] * 100, "arm_c": [1] * 100 + [0] * 100})
    filled = est.sample_remaining_columns(known, random_state=1)
    pd.testing.assert_frame_equal(filled[["sex", "arm_c"]], known)
    assert not filled.loc[filled["sex"] == "M", "pregnant"].any()
    assert sum(violations(est, filled, table).values()) == 0


def test_an_undeclared_combination_rule_that_cannot_be_learnt_as_one_column_is_an_error():
    df = clinical(300)
    md = declared(df, [OneHot(columns=["arm_a", "arm_b", "arm_c"]),
                       FixedCombinations(columns=["arm_a", "sex"])])
    with pytest.raises(MetadataError, match="declare its 'allowed'"):
        MarginalSynthesizer(metadata=md, random_state=0).fit(df)


def test_a_rare_combination_never_reaches_the_model_or_its_files(tmp_path):
    rng = np.random.default_rng(3)
    n = 4000
    df = pd.DataFrame({"sex": rng.choice(["F", "M"], n), "ward": rng.choice(["A", "B"], n)})
    df.loc[:2, ["sex", "ward"]] = ["X_RARE_SEX", "Z_RARE_WARD"]   # three people
    # the metadata a user writes: no category lists (inferred ones would carry the rare value
    # in the estimator's own parameters, which is the documented cost of inferred metadata)
    md = Metadata([dataclasses.replace(c, categories=None) for c in
                   Metadata.from_dataframe(df).columns], [FixedCombinations(columns=["sex", "ward"])])
    for est in (AIMSynthesizer(epsilon=1.0, metadata=md, random_state=0),
                DPVAESynthesizer(epsilon=1.0, max_epochs=1, metadata=md, random_state=0)):
        est.fit(df)
        path = tmp_path / type(est).__name__
        est.save(path)
        text = "".join(p.read_bytes().decode("latin-1") for p in path.iterdir() if p.is_file())
        assert "RARE" not in text, type(est).__name__
        out = est.sample(2000, random_state=0)
        assert not out.isin(["X_RARE_SEX", "Z_RARE_WARD"]).any().any()


def test_datetime_ranges_and_missing_when_missing_hold_in_samples():
    df = clinical(800)
    df["reviewed"] = df["died"] + pd.to_timedelta(7, unit="D")     # missing whenever died is
    md = declared(df, [Range(column="diagnosed", min="2020-01-01", max="2021-02-04"),
                       MissingWhenMissing(column="reviewed", source="died")])
    for est in (MarginalSynthesizer(epsilon=1.0, metadata=md, random_state=0),
                AIMSynthesizer(epsilon=None, allow_non_private=True, metadata=md,
                               random_state=0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = est.fit(df).sample(2000, random_state=1)
        assert out["diagnosed"].between(pd.Timestamp("2020-01-01"),
                                        pd.Timestamp("2021-02-04")).all()
        assert not (out["died"].isna() & out["reviewed"].notna()).any()
        assert out["reviewed"].notna().any()
        assert sum(violations(est, out, df).values()) == 0


# -- infinite values ------------------------------------------------------------------------
def _with_infinities(n=1_500, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.gamma(2.0, 3.0, n)
    u[rng.random(n) < 0.4] = np.inf  # interval-censored: the open upper end
    v = rng.normal(0.0, 1.0, n)
    v[rng.random(n) < 0.1] = -np.inf
    v[rng.random(n) < 0.1] = np.inf
    v[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"l": rng.gamma(2.0, 2.0, n), "u": u, "v": v,
                         "g": rng.choice(["a", "b"], n)})


def test_inferred_metadata_models_infinite_values_and_says_so():
    from nhssynth.constraints import InfiniteValues
    df = _with_infinities()
    with pytest.warns(MetadataWarning, match=r"'u' holds \+inf.*infinite_values"):
        md = Metadata.from_dataframe(df)
    assert md.constraints == [InfiniteValues("u", ["+inf"]), InfiniteValues("v", ["+inf", "-inf"])]
    assert md["u"].kind == "continuous" and not md["u"].nullable  # from the finite values
    back = Metadata.from_dict(md.to_dict())  # YAML round trip
    assert back.constraints == md.constraints
    back.validate(df)
    plain = Metadata(md.columns)  # the same columns without the rule: a clear error
    with pytest.raises(MetadataError, match=r"'u' holds infinite values.*infinite_values"):
        plain.validate(df)
    with pytest.raises(MetadataError, match="'values' must list"):
        InfiniteValues("u", ["inf"])


def test_infinite_values_round_trip_through_the_learnt_table():
    from nhssynth.constraints import ConstraintPlan, InfiniteValues
    df = _with_infinities(300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetadataWarning)
        md = Metadata.from_dataframe(df)
    plan = ConstraintPlan(md.constraints).fit(df, {c.name: c for c in md})
    learnt = plan.transform(df)
    # u (one special value, no missing ones) needs no extra column: missing means +inf
    assert list(learnt.columns) == ["l", "u", "v__special", "v", "g"]
    assert np.isfinite(learnt[["u", "v"]].to_numpy(dtype=float)[~learnt[["u", "v"]].isna().to_numpy()]).all()
    assert set(learnt["v__special"]) == {"finite", "+inf", "-inf"}
    assert plan.columns_out_["v__special"].domain == "declared"  # schema, no budget
    back = plan.reverse(learnt)
    pd.testing.assert_frame_equal(back, df[back.columns], check_dtype=False)
    assert not plan.violations(back)["infinite_values: v may be +inf or -inf"].any()
    assert InfiniteValues("u", ["+inf"]).violations(df.assign(u=-np.inf)).all()


@pytest.mark.parametrize("generator", ["AIMSynthesizer", "DPVAESynthesizer", "MarginalSynthesizer"])
@pytest.mark.parametrize("epsilon", [1.0, None])
def test_every_generator_fits_and_samples_infinite_values(generator, epsilon):
    # lifelines' mice table (interval-censored, u = inf for 82 of 144 rows) was refused
    import nhssynth
    df = _with_infinities()
    kw = {"epsilon": epsilon, "random_state": 0}
    if epsilon is None and generator != "MarginalSynthesizer":
        kw["allow_non_private"] = True
    if generator == "DPVAESynthesizer":
        kw["max_epochs"] = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = getattr(nhssynth, generator)(**kw).fit(df).sample(2_000, random_state=1)
    assert list(s.columns) == list(df.columns) and s["u"].dtype == np.float64
    assert 0.3 < float(np.isposinf(s["u"]).mean()) < 0.5  # real 0.40
    assert not s["u"].isna().any()  # the column has no missing values
    assert 0.05 < float(np.isneginf(s["v"]).mean()) < 0.16  # real 0.095
    finite = s["u"][np.isfinite(s["u"])]
    assert finite.min() >= 0 and finite.quantile(0.99) < 60  # real gamma(2, 3): p99 ~20
