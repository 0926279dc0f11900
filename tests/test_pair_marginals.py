"""DP two-way marginals: coarse groups, pair selection from the generator's own draws, the
noisy release and raking to it — and, end to end, that they put back dependence the generator
did not learn."""
import numpy as np
import pandas as pd
import pytest

from nhssynth import DPVAESynthesizer, Metadata
from nhssynth.base import OutputSpan
from nhssynth.calibration.pairs import PairMarginal, coarse_groups, noisy_pair_marginals, select_pairs
from nhssynth.calibration.raking import cap_weights, rake_factors, rake_weights
from nhssynth.calibration.marginals import column_bins


def _categorical_spans(widths):
    spans, start = [], 0
    for i, w in enumerate(widths):
        spans.append(OutputSpan(f"c{i}", "softmax", start, w, "category"))
        start += w
    return spans, start


def _one_hot(codes, widths):
    spans, width = _categorical_spans(widths)
    Z = np.zeros((len(codes), width))
    for j, s in enumerate(spans):
        Z[np.arange(len(codes)), s.start + codes[:, j]] = 1.0
    return Z, spans


def test_coarse_groups_merge_ordered_runs_and_lump_light_categories():
    scalar = OutputSpan("x", "continuous", 0, 1)  # ten ordered scalar bins
    cat = OutputSpan("c", "softmax", 1, 7, "category")
    flag = OutputSpan("c", "binary", 8, 1, "missing")
    small = OutputSpan("b", "softmax", 9, 3, "category")
    p_scalar = np.full(10, 0.1)
    p_cat = np.array([0.02, 0.4, 0.03, 0.25, 0.05, 0.15, 0.05, 0.05])  # last: missing
    g_scalar, g_cat, g_small = coarse_groups([scalar, cat, flag, small],
                                             [p_scalar, p_cat, np.full(3, 1 / 3)], n_groups=4)
    # ordered: contiguous runs of equal mass, in order
    assert np.all(np.diff(g_scalar) >= 0) and set(g_scalar) == {0, 1, 2, 3}
    assert np.all(np.abs(np.bincount(g_scalar, weights=p_scalar) - 0.25) <= 0.05 + 1e-9)
    # unordered: the three heaviest categories keep a group each, the rest share one, and
    # "missing" is a group of its own
    assert g_cat[1] != g_cat[3] != g_cat[5] and len({g_cat[1], g_cat[3], g_cat[5]}) == 3
    assert len({g_cat[i] for i in (0, 2, 4, 6)}) == 1 and g_cat[0] not in {g_cat[1], g_cat[3], g_cat[5]}
    assert g_cat[7] == g_cat.max() and (g_cat == g_cat[7]).sum() == 1
    np.testing.assert_array_equal(g_small, [0, 1, 2])  # few enough categories: unchanged


def test_select_pairs_takes_the_heaviest_edges_of_a_spanning_tree():
    rng = np.random.default_rng(0)
    n = 20000
    a = rng.integers(0, 4, n)
    b = np.where(rng.uniform(size=n) < 0.9, a, rng.integers(0, 4, n))   # strongly tied to a
    c = np.where(rng.uniform(size=n) < 0.9, a, rng.integers(0, 4, n))   # also tied to a (and b)
    d = rng.integers(0, 4, n)
    e = np.where(rng.uniform(size=n) < 0.5, d, rng.integers(0, 4, n))   # weakly tied to d
    keys = np.stack([a, b, c, d, e], axis=1)
    groups = [np.arange(4)] * 5
    tree = select_pairs(keys, groups, n_pairs=10)
    assert len(tree) == 4  # a spanning tree of 5 columns, however many pairs are allowed
    assert {frozenset(p) for p in tree[:3]} >= {frozenset((3, 4))}
    # a, b, c form a triangle of strong ties: the tree takes two of its edges, not all three
    strong = [p for p in tree if set(p) <= {0, 1, 2}]
    assert len(strong) == 2
    assert {frozenset(p) for p in select_pairs(keys, groups, n_pairs=2)} <= {
        frozenset(p) for p in [(0, 1), (0, 2), (1, 2)]}
    assert select_pairs(keys[:, :1], groups[:1], 3) == [] and select_pairs(keys, groups, 0) == []


def test_exact_pair_marginals_are_the_coarse_joint_table():
    rng = np.random.default_rng(1)
    codes = np.stack([rng.integers(0, 6, 5000), rng.integers(0, 2, 5000)], axis=1)
    codes[:, 1] = np.where(codes[:, 0] < 2, 1, codes[:, 1])
    Z, spans = _one_hot(codes, [6, 2])
    keys, n_bins, _ = column_bins(Z, spans)
    one_way = [np.bincount(keys[:, j], minlength=w) / len(keys) for j, w in enumerate(n_bins)]
    groups = coarse_groups(spans, one_way, n_groups=4)
    (pair,) = noisy_pair_marginals(keys, [(0, 1)], groups, one_way, 0.0, rng)
    want = np.zeros((4, 2))
    np.add.at(want, (groups[0][keys[:, 0]], keys[:, 1]), 1.0)
    np.testing.assert_allclose(pair.target, want / len(keys), atol=1e-6)
    np.testing.assert_array_equal(pair.keys(keys), groups[0][keys[:, 0]] * 2 + keys[:, 1])


def test_noisy_pair_marginals_are_distributions_consistent_with_the_one_way_releases():
    rng = np.random.default_rng(2)
    codes = np.stack([rng.integers(0, 5, 3000), rng.integers(0, 3, 3000), rng.integers(0, 4, 3000)],
                     axis=1)
    Z, spans = _one_hot(codes, [5, 3, 4])
    keys, n_bins, _ = column_bins(Z, spans)
    one_way = [np.full(w, 1.0 / w) for w in n_bins]  # a (public) release the tables must agree with
    groups = coarse_groups(spans, one_way, n_groups=4)
    pairs = noisy_pair_marginals(keys, [(0, 1), (1, 2)], groups, one_way, 30.0, rng)
    for pair in pairs:
        t = pair.target
        assert np.all(t >= 0) and t.sum() == pytest.approx(1.0)
        rows = np.bincount(groups[pair.first], weights=one_way[pair.first])
        cols = np.bincount(groups[pair.second], weights=one_way[pair.second])
        np.testing.assert_allclose(t.sum(axis=1), rows, atol=1e-6)
        np.testing.assert_allclose(t.sum(axis=0), cols, atol=1e-6)


def test_raking_to_a_pair_table_puts_back_the_dependence_and_keeps_the_marginals():
    rng = np.random.default_rng(3)
    n = 60000
    codes = np.stack([rng.integers(0, 3, n), rng.integers(0, 3, n)], axis=1)  # independent draw
    Z, spans = _one_hot(codes, [3, 3])
    one_way = [np.full(3, 1 / 3), np.full(3, 1 / 3)]
    groups = [np.arange(3), np.arange(3)]
    target = np.array([[0.25, 0.05, 0.0333], [0.05, 0.25, 0.0333], [0.0333, 0.0333, 0.2668]])
    target /= target.sum()
    pair = PairMarginal(0, 1, groups[0], groups[1], target)
    factors = rake_factors(Z, spans, one_way, pairs=[pair], n_iter=30)
    assert len(factors) == 3
    w = cap_weights(rake_weights(Z, spans, factors, pairs=[pair]))
    keys, _, _ = column_bins(Z, spans)
    joint = np.bincount(keys[:, 0] * 3 + keys[:, 1], weights=w, minlength=9).reshape(3, 3)
    joint /= joint.sum()
    np.testing.assert_allclose(joint, target, atol=0.01)
    for j in range(2):
        np.testing.assert_allclose(np.bincount(keys[:, j], weights=w) / w.sum(), one_way[j], atol=0.01)


@pytest.fixture(scope="module")
def tied_table():
    """Three categorical columns: b copies a 80% of the time, c is independent noise."""
    rng = np.random.default_rng(0)
    n = 4000
    a = rng.choice(list("pqrs"), n)
    b = np.where(rng.uniform(size=n) < 0.8, a, rng.choice(list("pqrs"), n))
    frame = pd.DataFrame({"a": a, "b": b, "c": rng.choice(list("xyz"), n)}).astype(object)
    md = Metadata.from_yaml(
        "columns:\n"
        "  a: {kind: categorical, dtype: object, categories: [p, q, r, s], domain: declared}\n"
        "  b: {kind: categorical, dtype: object, categories: [p, q, r, s], domain: declared}\n"
        "  c: {kind: categorical, dtype: object, categories: [x, y, z], domain: declared}\n")
    return frame, md


def _agreement(frame):
    return float((frame["a"] == frame["b"]).mean())


def test_pair_marginals_put_back_dependence_the_generator_missed(tied_table):
    frame, md = tied_table
    # one epoch of a tiny network learns the marginals (its bias starts there), not the tie
    params = dict(metadata=md, max_epochs=1, batch_size=500, hidden_dims=(8,), latent_dim=2,
                  random_state=0)
    without = DPVAESynthesizer(epsilon=3.0, pair_fraction=0, **params).fit(frame)
    with_pairs = DPVAESynthesizer(epsilon=3.0, **params).fit(frame)
    assert without.pair_marginals_ is None
    assert [s["stage"] for s in without.privacy_report()["spends"]] == ["marginals", "training"]
    spends = {s["stage"]: s for s in with_pairs.privacy_report()["spends"]}
    assert spends["pair marginals"]["n_pairs"] == 2 and with_pairs.epsilon_ <= 3.0
    assert {(p.first, p.second) for p in with_pairs.pair_marginals_} >= {(0, 1)}
    real = _agreement(frame)  # ~0.85
    assert _agreement(without.sample(4000, random_state=0)) < 0.5
    assert _agreement(with_pairs.sample(4000, random_state=0)) == pytest.approx(real, abs=0.08)
