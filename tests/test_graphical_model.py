"""The graphical model estimated from noisy marginals (nhssynth.calibration.graphical_model)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from nhssynth.calibration.graphical_model import (JunctionTree, Measurement, estimate,
                                                       junction_tree_cells)

SIZES = [3, 4, 5, 2]


def _chain_table(n: int, rng) -> np.ndarray:
    """Columns 0 - 1 - 2 dependent along a chain, column 3 independent."""
    a = rng.integers(0, 3, n)
    b = (a + rng.integers(0, 2, n)) % 4
    c = (2 * b + rng.integers(0, 2, n)) % 5
    d = rng.integers(0, 2, n)
    return np.stack([a, b, c, d], axis=1)


def _marginal(codes: np.ndarray, cols, sizes=SIZES) -> np.ndarray:
    shape = [sizes[c] for c in cols]
    flat = np.ravel_multi_index(tuple(codes[:, c] for c in cols), shape)
    return np.bincount(flat, minlength=math.prod(shape)).astype(float)


def test_junction_tree_covers_every_clique_and_has_the_running_intersection_property():
    cliques = [(0, 1), (1, 2), (2, 3), (0, 3)]  # a 4-cycle: triangulation must add a chord
    tree = JunctionTree(SIZES, cliques)
    for c in cliques:
        assert tree.home(c) is not None
    # running intersection: the cliques holding a column form a connected subtree
    for a in range(len(SIZES)):
        holders = {i for i, c in enumerate(tree.cliques) if a in c}
        start = next(iter(holders))
        seen, stack = {start}, [start]
        while stack:
            i = stack.pop()
            for j in tree.neighbours[i]:
                if j in holders and j not in seen:
                    seen.add(j)
                    stack.append(j)
        assert seen == holders
    assert junction_tree_cells(SIZES, cliques) == tree.cells


def test_exact_measurements_of_a_chain_are_recovered_and_implied_marginals_are_right():
    codes = _chain_table(20_000, np.random.default_rng(0))
    n = len(codes)
    ms = [Measurement((j,), _marginal(codes, (j,)), 1.0) for j in range(4)]
    ms += [Measurement((0, 1), _marginal(codes, (0, 1)), 1.0),
           Measurement((1, 2), _marginal(codes, (1, 2)), 1.0)]
    model = estimate(SIZES, ms, n, iterations=500)
    for cols in [(0, 1), (1, 2)]:
        assert np.abs(model.marginal(cols).ravel() - _marginal(codes, cols)).sum() / n < 0.01
    # (0, 2) is not measured: the chain model implies it through column 1 (A _|_ C | B holds)
    assert np.abs(model.marginal((0, 2)).ravel() - _marginal(codes, (0, 2))).sum() / n < 0.03
    # and the unmeasured pair with the independent column is the product of the marginals
    implied = model.marginal((2, 3))
    product = np.outer(_marginal(codes, (2,)), _marginal(codes, (3,))) / n
    assert np.allclose(implied, product, atol=0.01 * n)


def test_marginal_by_elimination_equals_the_brute_force_joint():
    rng = np.random.default_rng(1)
    codes = _chain_table(5_000, rng)
    ms = [Measurement((j,), _marginal(codes, (j,)) + rng.normal(0, 20, SIZES[j]), 20.0)
          for j in range(4)]
    ms += [Measurement(c, _marginal(codes, c) + rng.normal(0, 20, math.prod(SIZES[a] for a in c)), 20.0)
           for c in [(0, 1), (1, 2), (2, 3)]]
    model = estimate(SIZES, ms, 5_000, iterations=200)
    # brute force: the joint is the product of clique marginals over separator marginals
    joint = np.zeros(SIZES)
    for idx in itertools.product(*[range(s) for s in SIZES]):
        p = 1.0
        for i, c in enumerate(model.tree.cliques):
            p *= model.probabilities[i][tuple(idx[a] for a in c)]
        for child, sep in model.tree.separator.items():
            if sep:
                parent = model.tree.parent[child]
                clique = model.tree.cliques[parent]
                axes = tuple(k for k, a in enumerate(clique) if a not in sep)
                p /= model.probabilities[parent].sum(axis=axes)[tuple(idx[a] for a in sep)]
        joint[idx] = p
    for cols in [(0, 2), (0, 3), (1, 3), (0, 2, 3)]:
        other = tuple(k for k in range(4) if k not in cols)
        expected = 5_000 * joint.sum(axis=other)
        assert np.allclose(model.marginal(cols), expected, rtol=1e-6, atol=1e-6)


def test_noisy_measurements_give_consistent_non_negative_marginals():
    rng = np.random.default_rng(2)
    codes = _chain_table(3_000, rng)
    ms = [Measurement((j,), _marginal(codes, (j,)) + rng.normal(0, 50, SIZES[j]), 50.0)
          for j in range(4)]
    ms += [Measurement((0, 1), _marginal(codes, (0, 1)) + rng.normal(0, 50, 12), 50.0)]
    model = estimate(SIZES, ms, 3_000, iterations=100)
    ab = model.marginal((0, 1))
    assert (ab >= 0).all()
    assert np.allclose(ab.sum(axis=1), model.marginal((0,)))  # consistent with the one-way
    assert ab.sum() == pytest.approx(3_000)


def test_partial_measurements_leave_unmeasured_cells_to_the_other_measurements():
    codes = _chain_table(4_000, np.random.default_rng(3))
    full = _marginal(codes, (0,))
    ms = [Measurement((0,), full[:2], 1.0, cells=np.array([0, 1])),
          Measurement((0, 1), _marginal(codes, (0, 1)), 1.0)]
    model = estimate(SIZES, ms, 4_000, iterations=300)
    assert np.allclose(model.marginal((0,)), full, atol=0.01 * 4_000)


def test_samples_follow_the_model():
    codes = _chain_table(10_000, np.random.default_rng(4))
    ms = [Measurement((j,), _marginal(codes, (j,)), 1.0) for j in range(4)]
    ms += [Measurement((0, 1), _marginal(codes, (0, 1)), 1.0),
           Measurement((1, 2), _marginal(codes, (1, 2)), 1.0)]
    model = estimate(SIZES, ms, 10_000, iterations=300)
    sample = model.sample(40_000, np.random.default_rng(5))
    assert sample.shape == (40_000, 4)
    for cols in [(0, 1), (1, 2), (0, 2)]:
        p_model = model.marginal(cols).ravel() / 10_000
        p_sample = _marginal(sample, cols) / 40_000
        assert np.abs(p_model - p_sample).sum() < 0.03
    again = model.sample(100, np.random.default_rng(5))
    assert np.array_equal(again, model.sample(100, np.random.default_rng(5)))


def test_inverse_cdf_lookup_equals_one_searchsorted_per_row():
    from nhssynth.calibration.graphical_model import _inverse_cdf
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(7), size=50)
    p[3] = [0, 0, 1, 0, 0, 0, 0]          # point masses and empty cells
    p[4] = [0, 0, 0, 0, 0, 0, 1]
    cdf = np.cumsum(p, axis=1)
    cdf[:, -1] = 1.0
    row = rng.integers(0, 50, 20_000)
    u = rng.random(20_000)
    u[:3] = 0.0
    expected = np.array([min(np.searchsorted(cdf[r], x, side="right"), 6) for r, x in zip(row, u)])
    assert np.array_equal(_inverse_cdf(cdf, row, u), expected)
    assert np.all(_inverse_cdf(cdf, np.full(100, 3), rng.random(100)) == 2)


def test_disjoint_set_says_whether_a_union_joins_two_sets():
    from nhssynth.base import DisjointSet
    forest = DisjointSet("abcd")
    assert forest.union("a", "b") and forest.union("c", "d")
    assert not forest.union("b", "a")  # already one set: an edge here would close a cycle
    assert forest.union("a", "d") and not forest.union("b", "c")
    assert len({forest.find(x) for x in "abcd"}) == 1


def _tree_model(seed: int):
    """A model over 7 columns whose junction tree has several cliques and branches."""
    rng = np.random.default_rng(seed)
    sizes = (3, 4, 2, 3, 2, 3, 4)
    n = 4_000
    codes = np.zeros((n, 7), dtype=np.int64)
    codes[:, 0] = rng.integers(0, 3, n)
    codes[:, 1] = (codes[:, 0] + rng.integers(0, 2, n)) % 4
    codes[:, 2] = (codes[:, 1] > 1).astype(int) ^ (rng.random(n) < 0.2)
    codes[:, 3] = (codes[:, 2] + codes[:, 0] + rng.integers(0, 2, n)) % 3
    codes[:, 4] = (codes[:, 3] == 0).astype(int) ^ (rng.random(n) < 0.3)
    codes[:, 5] = (codes[:, 1] + rng.integers(0, 2, n)) % 3
    codes[:, 6] = (codes[:, 5] + rng.integers(0, 3, n)) % 4
    cliques = [(0, 1), (1, 2), (0, 2, 3), (3, 4), (1, 5), (5, 6)]
    ms = [Measurement((j,), _marginal(codes, (j,), sizes), 1.0) for j in range(7)]
    ms += [Measurement(c, _marginal(codes, c, sizes), 1.0) for c in cliques]
    return estimate(sizes, ms, n, iterations=50)


def test_many_marginals_at_once_equal_one_at_a_time():
    model = _tree_model(6)
    assert len(model.tree.cliques) >= 4
    wanted = list(itertools.combinations(range(7), 2)) + [(0, 4, 6)]
    together = model.marginals(wanted)
    for cols, values in zip(wanted, together):
        assert values.shape == tuple(model.tree.sizes[a] for a in cols)
        assert np.allclose(values, model.marginal(cols), rtol=1e-9, atol=1e-9), cols


def test_resample_redraws_one_column_from_its_conditional_and_leaves_the_rest():
    model = _tree_model(7)
    sample = model.sample(60_000, np.random.default_rng(8))
    before = sample.copy()
    # a Gibbs step on column 1 over all its codes keeps the model's joint
    model.resample(sample, 1, np.arange(len(sample)), np.ones(4, dtype=bool),
                   np.random.default_rng(9))
    assert np.array_equal(np.delete(sample, 1, axis=1), np.delete(before, 1, axis=1))
    assert (sample[:, 1] != before[:, 1]).mean() > 0.05
    for cols in [(0, 1), (1, 2), (1, 5), (1, 6)]:
        p_model = model.marginal(cols).ravel() / model.total
        p_sample = _marginal(sample, cols, model.tree.sizes) / len(sample)
        assert np.abs(p_model - p_sample).sum() < 0.03, cols
    # a code ruled out is redrawn as the others given the row: P(1 | 0, 2, 5) without code 3
    rows = np.flatnonzero(sample[:, 1] == 3)
    allowed = np.array([True, True, True, False])
    model.resample(sample, 1, rows, allowed, np.random.default_rng(10))
    assert not (sample[:, 1] == 3).any()
    assert np.array_equal(np.delete(sample, 1, axis=1), np.delete(before, 1, axis=1))
    # expected: each redrawn row's P(1 | its other six columns) over codes 0-2, summed
    joint = model.marginal(tuple(range(7)))
    others = np.delete(sample[rows], 1, axis=1)
    cond = np.moveaxis(joint, 1, -1)[tuple(others.T)][:, :3]
    cond = cond / cond.sum(axis=1, keepdims=True)
    drawn = sample[rows, 1]
    assert len(rows) > 2_000
    # per group of the columns next to column 1 in the model (0, 2, 5), where the conditional
    # differs most
    key = others[:, 0] * 100 + others[:, 1] * 10 + others[:, 4]
    checked = 0
    for k in np.unique(key):
        at = key == k
        if at.sum() < 100:
            continue
        expected = cond[at].sum(axis=0)
        observed = np.bincount(drawn[at], minlength=4)[:3]
        assert np.all(np.abs(observed - expected) < 4 * np.sqrt(expected) + 2), (k, observed, expected)
        checked += 1
    assert checked >= 3
