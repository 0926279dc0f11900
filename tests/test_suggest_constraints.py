"""suggest_constraints: candidate rules from the metadata, judged by DP violation counts."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from nhssynth import Metadata
from nhssynth.constraints import Inequality, MissingLink, MissingWhenMissing, OneHot, Positive
from nhssynth.exceptions import MetadataError, PrivacyBudgetError
from nhssynth.privacy.accounting import zcdp_epsilon, zcdp_rho
from nhssynth.suggest import candidate_constraints, suggest_constraints

from .test_cli import run_cli


def _table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Known rules: b >= a; measured <-> lab present; grp_* one-hot; count >= 0.
    No rule: c (half negative), other (missing at random), coin."""
    rng = np.random.default_rng(seed)
    a = rng.normal(50, 10, n).round(1)
    measured = rng.random(n) < 0.6
    g = rng.integers(0, 3, n)
    return pd.DataFrame({
        "a": a,
        "b": (a + rng.exponential(5, n)).round(1),
        "c": rng.normal(0, 1, n).round(2),
        "count": rng.poisson(3, n),
        "lab": np.where(measured, rng.normal(5, 1, n).round(2), np.nan),
        "measured": measured,
        "grp_x": (g == 0).astype(int), "grp_y": (g == 1).astype(int),
        "grp_z": (g == 2).astype(int),
        "other": np.where(rng.random(n) < 0.3, np.nan, rng.normal(0, 1, n).round(2)),
        "coin": rng.random(n) < 0.5,
    })


@pytest.fixture(scope="module")
def table():
    df = _table()
    return df, Metadata.from_dataframe(df)


def _rules(result, status="suggested"):
    return {c.describe() for c in result.by_status(status)}


def test_true_rules_are_suggested_and_broken_ones_are_not(table):
    df, md = table
    s = suggest_constraints(df, md, epsilon=5, random_state=0)
    got = _rules(s)
    for rule in (Inequality(low="a", high="b"), Positive(column="count"),
                 OneHot(columns=["grp_x", "grp_y", "grp_z"]),
                 MissingLink(value="lab", flag="measured")):
        assert rule.describe() in got
    violated = _rules(s, "violated")
    for rule in (Inequality(low="b", high="a"), Positive(column="c"),
                 MissingLink(value="lab", flag="measured", present=False, absent=True),
                 MissingLink(value="other", flag="coin"),
                 MissingWhenMissing(column="lab", source="other")):
        assert rule.describe() in violated
        assert rule.describe() not in got
    # every decision is read off the noisy counts, which are reported
    frame = s.to_frame()
    assert len(frame) == len(s.candidates) and set(frame["status"]) <= {
        "suggested", "violated", "inconclusive", "conflict"}
    for c in s.suggested:
        assert c.noisy_violations <= 2 * s.noise_sd
        assert c.violation_share_upper <= s.max_violation_share


def test_snippet_is_yaml_that_the_metadata_accepts(table, tmp_path):
    df, md = table
    s = suggest_constraints(df, md, epsilon=5, random_state=0)
    text = s.to_yaml()
    assert "noisy violations" in text and "epsilon=5" in text
    spec = yaml.safe_load(text)
    assert len(spec["constraints"]) == len(s.suggested) > 0
    path = tmp_path / "meta.yaml"
    path.write_text(md.to_yaml() + text, encoding="utf-8")
    loaded = Metadata.from_yaml(path)
    assert [c.to_dict() for c in loaded.constraints] == [c.to_dict() for c in s.constraints]


def test_privacy_spent_is_what_is_reported(table):
    df, md = table
    s = suggest_constraints(df, md, epsilon=0.5, delta=1e-6, random_state=0)
    report = s.privacy_report
    assert report.private and report.accountant == "zcdp"
    assert (s.epsilon, s.delta) == (report.epsilon, report.delta)
    assert s.epsilon <= 0.5 * (1 + 1e-9) and s.epsilon > 0.49 and s.delta == 1e-6
    (spend,) = report.spends
    history = tuple(tuple(h) for h in spend.details["accountant_entries"])
    assert math.isclose(zcdp_epsilon(zcdp_rho(history), 1e-6), s.epsilon, rel_tol=1e-9)
    # the noise is the Gaussian mechanism of that budget on counts of L2 sensitivity sqrt(d)
    z = history[0][0]
    assert math.isclose(s.noise_sd, z * math.sqrt(spend.details["counts"]), rel_tol=1e-9)
    assert "epsilon=0.5" in s.statement and "separate from" in s.statement
    # default delta follows the generators: min(1e-5, 0.1 / n)
    assert suggest_constraints(df, md, epsilon=1, random_state=0).delta == min(1e-5, 0.1 / len(df))


def test_tiny_epsilon_reports_the_noise_and_suggests_nothing_unsupported(table):
    df, md = table
    s = suggest_constraints(df, md, epsilon=0.01, random_state=0)
    assert s.noise_sd > 500
    assert len(s.candidates) > 0
    assert "inconclusive" in {c.status for c in s.candidates}
    assert f"{s.noise_sd:.3g}" in s.to_yaml()
    for c in s.suggested:  # whatever passes, passes on noisy counts only
        assert c.violation_share_upper <= s.max_violation_share


def test_reproducible_with_random_state(table):
    df, md = table
    one = suggest_constraints(df, md, epsilon=1, random_state=3)
    two = suggest_constraints(df, md, epsilon=1, random_state=3)
    three = suggest_constraints(df, md, epsilon=1, random_state=4)
    assert one.to_yaml() == two.to_yaml()
    assert [c.noisy_violations for c in one.candidates] == \
        [c.noisy_violations for c in two.candidates]
    assert [c.noisy_violations for c in one.candidates] != \
        [c.noisy_violations for c in three.candidates]


def test_candidates_come_from_the_metadata_only(table):
    df, md = table
    cands = candidate_constraints(md)
    # the same metadata, different rows: the same candidates in the same order
    other = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    other["b"] = other["a"] - 1.0
    assert [c.to_dict() for c in candidate_constraints(Metadata.from_dataframe(other))] == \
        [c.to_dict() for c in cands]
    kinds = {c.type for c in cands}
    assert kinds == {"positive", "one_hot", "missing_link", "inequality", "missing_when_missing"}
    assert {c.type for c in candidate_constraints(md, types=["one_hot"])} == {"one_hot"}
    # a declared rule is not proposed again
    declared = Metadata(md.columns, constraints=[Inequality(low="a", high="b")])
    assert "inequality: b >= a" not in {c.describe() for c in candidate_constraints(declared)}


def test_cap_is_deterministic_and_reports_what_was_skipped(table):
    df, md = table
    s = suggest_constraints(df, md, epsilon=1, max_candidates=5, random_state=0)
    assert len(s.candidates) == 5
    everything = [c.describe() for c in candidate_constraints(md)]
    assert [c.describe() for c in s.candidates] == everything[:5]
    assert list(s.skipped) == everything[5:]
    assert f"{len(everything) - 5} candidates not measured" in s.to_yaml()


@pytest.mark.parametrize("kwargs, error, needle", [
    ({"epsilon": 0}, PrivacyBudgetError, "epsilon must be a positive"),
    ({"epsilon": -1}, PrivacyBudgetError, "epsilon must be a positive"),
    ({"epsilon": 1, "delta": 2.0}, PrivacyBudgetError, "delta"),
    ({"epsilon": 1, "max_candidates": 0}, ValueError, "max_candidates"),
    ({"epsilon": 1, "types": ["range"]}, ValueError, "types"),
])
def test_bad_arguments(table, kwargs, error, needle):
    df, md = table
    with pytest.raises(error, match=needle):
        suggest_constraints(df, md, **kwargs)


def test_metadata_naming_unknown_columns_is_refused(table):
    df, md = table
    with pytest.raises(MetadataError, match="missing from the DataFrame"):
        suggest_constraints(df.drop(columns=["b"]), md, epsilon=1)


def test_cli_writes_a_snippet_the_metadata_file_accepts(tmp_path, capsys):
    df = _table(n=1500)
    df.to_csv(tmp_path / "t.csv", index=False)
    meta = tmp_path / "t.metadata.yaml"
    rc, out, err = run_cli(tmp_path, "metadata", "template", "t.csv", "-o", str(meta),
                           capsys=capsys)
    assert rc == 0, err
    rc, out, err = run_cli(tmp_path, "metadata", "suggest-constraints", "t.csv", "--metadata",
                           str(meta), "--epsilon", "5", "--seed", "0", "-o", "s.yaml",
                           capsys=capsys)
    assert rc == 0, err
    assert "epsilon=5" in out and "wrote" in out
    snippet = (tmp_path / "s.yaml").read_text()
    assert yaml.safe_load(snippet)["constraints"]
    with open(meta, "a", encoding="utf-8") as fh:
        fh.write(snippet)
    md = Metadata.from_yaml(meta)
    assert "inequality: b >= a" in {c.describe() for c in md.constraints}
    # printed to stdout without -o, the same for the same seed; refuses to overwrite
    rc, out, err = run_cli(tmp_path, "metadata", "suggest-constraints", "t.csv", "--metadata",
                           str(meta.with_name("none.yaml")), capsys=capsys)
    assert rc == 2 and "does not exist" in err
    rc, out, err = run_cli(tmp_path, "metadata", "suggest-constraints", "t.csv", "--epsilon",
                           "5", "--seed", "0", "--types", "inequality", capsys=capsys)
    assert rc == 0 and yaml.safe_load(out)["constraints"] and "epsilon=5" in err
    rc, out, err = run_cli(tmp_path, "metadata", "suggest-constraints", "t.csv", "-o", "s.yaml",
                           capsys=capsys)
    assert rc == 2 and "--force" in err
    rc, out, err = run_cli(tmp_path, "metadata", "suggest-constraints", "t.csv", "--epsilon",
                           "0", capsys=capsys)
    assert rc == 2 and "epsilon must be a positive" in err


def test_secure_mode_draws_unseeded_noise(table):
    df, md = table
    s = suggest_constraints(df, md, epsilon=1, types=["positive"], random_state=0,
                            secure_mode=True)
    t = suggest_constraints(df, md, epsilon=1, types=["positive"], random_state=0,
                            secure_mode=True)
    assert [c.noisy_violations for c in s.candidates] != [c.noisy_violations for c in t.candidates]
    assert all(0.0 <= c.violation_share <= 1.0 for c in s.candidates)
