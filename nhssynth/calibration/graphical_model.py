"""A graphical model over discrete columns, estimated from noisy marginals.

Given noisy measurements ``y_i`` of marginals ``M_{C_i}(p)`` of an unknown distribution ``p``
over discrete columns (Gaussian noise of standard deviation ``sigma_i`` per cell), the
estimate is the Markov random field on the measured cliques whose marginals minimise

    L(mu) = sum_i || M_{C_i}(mu) - y_i ||^2 / (2 sigma_i^2)

(McKenna, Sheldon and Miklau, "Graphical-model based estimation and inference for
differential privacy", ICML 2019 -- Private-PGM).  The minimisation runs by mirror descent on the
log-potentials of the cliques of a junction tree of the measured cliques' graph, with exact
marginals by belief propagation, so the marginals of the estimate are consistent with each
other however noisy the measurements are.  Sampling is ancestral along the junction tree.

Everything here is post-processing of noisy measurements: no privacy cost.

Cliques are tuples of column indices in increasing order; every array over a clique has one
axis per column, in that order.  Potentials are kept in log space, marginals as probabilities.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..base import DisjointSet

__all__ = ["Factor", "JunctionTree", "Measurement", "GraphicalModel", "ModelState", "estimate",
           "junction_tree_cells"]

Clique = tuple[int, ...]


@dataclass(frozen=True)
class Factor:
    """A non-negative table over the columns ``attrs`` (increasing)."""

    attrs: Clique
    values: np.ndarray

    def expand(self, attrs: Clique) -> np.ndarray:
        """The values broadcast to the superset ``attrs`` (size-1 axes for the other columns)."""
        shape = [self.values.shape[self.attrs.index(a)] if a in self.attrs else 1 for a in attrs]
        return self.values.reshape(shape)

    def __mul__(self, other: "Factor") -> "Factor":
        attrs = tuple(sorted(set(self.attrs) | set(other.attrs)))
        return Factor(attrs, self.expand(attrs) * other.expand(attrs))

    def __truediv__(self, other: "Factor") -> "Factor":
        """Division with 0 / 0 = 0 (a conditional given an impossible value)."""
        attrs = tuple(sorted(set(self.attrs) | set(other.attrs)))
        num, den = np.broadcast_arrays(self.expand(attrs), other.expand(attrs))
        return Factor(attrs, np.divide(num, den, out=np.zeros(num.shape), where=den > 0))

    def project(self, attrs: Sequence[int]) -> "Factor":
        """Sum out every column not in ``attrs``."""
        keep = tuple(a for a in self.attrs if a in set(attrs))
        axis = tuple(i for i, a in enumerate(self.attrs) if a not in set(keep))
        return Factor(keep, self.values.sum(axis=axis) if axis else self.values)


@dataclass(frozen=True)
class Measurement:
    """A noisy marginal: counts over ``clique`` (flattened in C order), noise std ``sigma``.

    ``cells``, when given, are the flat cells ``values`` are counts of (a marginal measured on
    part of its cells, e.g. without the "other" code of a column); otherwise every cell."""

    clique: Clique
    values: np.ndarray
    sigma: float
    cells: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# junction tree
# --------------------------------------------------------------------------------------------
def _triangulate(sizes: Sequence[int], cliques: Sequence[Clique]) -> list[Clique]:
    """Maximal cliques of a chordal graph containing every clique: greedy elimination, each
    step removing the column whose elimination clique has the fewest cells."""
    d = len(sizes)
    adj = {v: set() for v in range(d)}
    for c in cliques:
        for a, b in itertools.combinations(c, 2):
            adj[a].add(b)
            adj[b].add(a)
    remaining = set(range(d))
    found: list[frozenset] = []
    while remaining:
        def cost(v):
            nb = adj[v] & remaining
            cells = math.prod(sizes[u] for u in nb | {v})
            fill = sum(1 for a, b in itertools.combinations(nb, 2) if b not in adj[a])
            return cells, fill, v
        v = min(remaining, key=cost)
        nb = adj[v] & remaining
        found.append(frozenset(nb | {v}))
        for a in nb:
            adj[a] |= nb - {a}
        remaining.remove(v)
    maximal = [c for c in found if not any(c < other for other in found)]
    return sorted({tuple(sorted(c)) for c in maximal})


def junction_tree_cells(sizes: Sequence[int], cliques: Sequence[Clique]) -> int:
    """Total cells of the junction tree the cliques would need (its memory, in floats)."""
    return sum(math.prod(sizes[a] for a in c) for c in _triangulate(sizes, cliques))


class JunctionTree:
    """A junction tree over the triangulated graph of ``cliques`` (all columns covered)."""

    def __init__(self, sizes: Sequence[int], cliques: Sequence[Clique]) -> None:
        self.sizes = tuple(int(s) for s in sizes)
        cover = list(cliques) + [(a,) for a in range(len(sizes))]
        self.cliques: list[Clique] = _triangulate(self.sizes, cover)
        k = len(self.cliques)
        # maximum spanning tree over shared columns (Kruskal); components joined by empty
        # separators, so independent parts still form one tree
        edges = sorted(((len(set(a) & set(b)), i, j)
                        for (i, a), (j, b) in itertools.combinations(enumerate(self.cliques), 2)),
                       reverse=True)
        forest = DisjointSet(range(k))
        neighbours: dict[int, list[int]] = {i: [] for i in range(k)}
        for _, i, j in edges:
            if forest.union(i, j):
                neighbours[i].append(j)
                neighbours[j].append(i)
        # breadth-first order from clique 0, each clique after its parent
        self.parent = {0: None}
        self.order = [0]
        for i in self.order:
            for j in neighbours[i]:
                if j not in self.parent:
                    self.parent[j] = i
                    self.order.append(j)
        self.separator = {c: tuple(sorted(set(self.cliques[c]) & set(self.cliques[p])))
                          for c, p in self.parent.items() if p is not None}
        self.neighbours = neighbours
        # for each child clique: the axes it sums out to its separator, the axes its parent
        # sums out, and the separator's shape broadcast into the child and into the parent
        self._edges = {}
        for c, p in self.parent.items():
            if p is None:
                continue
            sep, child, par = self.separator[c], self.cliques[c], self.cliques[p]
            self._edges[c] = (tuple(i for i, a in enumerate(child) if a not in sep),
                              tuple(i for i, a in enumerate(par) if a not in sep),
                              [self.sizes[a] if a in sep else 1 for a in child],
                              [self.sizes[a] if a in sep else 1 for a in par])
        self.shapes = [tuple(self.sizes[a] for a in c) for c in self.cliques]

    def home(self, attrs: Sequence[int]) -> int | None:
        """Index of the smallest junction-tree clique containing ``attrs``, or None."""
        want = set(attrs)
        best = None
        for i, c in enumerate(self.cliques):
            if want <= set(c) and (best is None or len(c) < len(self.cliques[best])):
                best = i
        return best

    @property
    def cells(self) -> int:
        return sum(math.prod(self.sizes[a] for a in c) for c in self.cliques)


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelState:
    """What a fitted model is made of (plain data, for saving): the column sizes, the cliques
    the junction tree was built from, the log-potentials of its cliques and the total."""

    sizes: tuple[int, ...]
    cliques: tuple[Clique, ...]
    potentials: tuple[np.ndarray, ...]
    total: float

    def model(self) -> "GraphicalModel":
        return GraphicalModel(JunctionTree(self.sizes, self.cliques), self.potentials, self.total,
                              self.cliques)


class GraphicalModel:
    """Calibrated clique marginals of a Markov random field on a junction tree.

    Parameters
    ----------
    tree : JunctionTree
    potentials : list of ndarray
        Log-potential of each junction-tree clique.
    total : float
        Number of rows the marginals are scaled to.
    """

    def __init__(self, tree: JunctionTree, potentials: Sequence[np.ndarray], total: float,
                 measured: Sequence[Clique] = ()) -> None:
        self.tree = tree
        self.potentials = [np.asarray(p, dtype=np.float64) for p in potentials]
        self.total = float(total)
        self.measured = tuple(measured)
        self.probabilities = self._calibrate()

    def state(self) -> ModelState:
        return ModelState(self.tree.sizes, self.measured, tuple(self.potentials), self.total)

    def _calibrate(self) -> list[np.ndarray]:
        """Clique marginals (probabilities) by two-pass belief propagation."""
        t = self.tree
        belief = [np.exp(p - p.max()) for p in self.potentials]
        upward = {}
        for c in reversed(t.order[1:]):  # leaves first: each clique has its children's messages
            sum_child, _, _, in_parent = t._edges[c]
            msg = belief[c].sum(axis=sum_child) if sum_child else belief[c].copy()
            msg /= max(float(msg.max()), 1e-300)
            upward[c] = msg.reshape(in_parent)
            belief[t.parent[c]] *= upward[c]
        for c in t.order[1:]:  # root first: each parent's belief is complete when used
            _, sum_parent, in_child, _ = t._edges[c]
            p = belief[t.parent[c]]
            up = np.broadcast_to(upward[c], p.shape)
            ratio = np.divide(p, up, out=np.zeros(p.shape), where=up > 0)
            msg = ratio.sum(axis=sum_parent) if sum_parent else ratio
            belief[c] *= (msg / max(float(msg.max()), 1e-300)).reshape(in_child)
        return [b / max(float(b.sum()), 1e-300) for b in belief]

    # -- marginals ------------------------------------------------------------------------
    def clique_marginal(self, index: int) -> np.ndarray:
        """Counts of junction-tree clique ``index`` (scaled to ``total``)."""
        return self.total * self.probabilities[index]

    def _factor(self, index: int) -> Factor:
        return Factor(self.tree.cliques[index], self.probabilities[index])

    def marginal(self, attrs: Sequence[int]) -> np.ndarray:
        """Counts of the marginal over ``attrs`` (increasing), any columns of the model."""
        attrs = tuple(sorted(attrs))
        home = self.tree.home(attrs)
        if home is not None:
            return self.total * self._factor(home).project(attrs).values
        if len(attrs) == 2:
            return self.marginals([attrs])[0]
        return self.total * self._eliminate(attrs).values

    def marginals(self, cliques: Sequence[Clique]) -> list[np.ndarray]:
        """Counts of many marginals at once, each as :meth:`marginal` gives it.

        A marginal inside a junction-tree clique is projected from it.  The pairs that span
        cliques are grouped by their first column ``a``: one sweep of the tree from ``a``'s
        clique carries ``P(a, C)`` to every clique ``C`` (each clique's conditional given its
        separator absorbed once), and every pair ``(a, b)`` is projected from the first clique
        holding ``b``.  Scoring ~1,100 candidate pairs of SUPPORT2 against a grown model took
        one variable elimination each; a sweep per column shares that work."""
        out: list = [None] * len(cliques)
        pending: dict[int, list[tuple[int, int]]] = {}
        for i, c in enumerate(cliques):
            c = tuple(sorted(c))
            home = self.tree.home(c)
            if home is not None:
                out[i] = self.total * self._factor(home).project(c).values
            elif len(c) == 2:
                pending.setdefault(c[0], []).append((i, c[1]))
            else:
                out[i] = self.total * self._eliminate(c).values
        conditionals: dict[tuple[int, Clique], Factor] = {}
        t = self.tree
        for a, wanted in pending.items():
            todo: dict[int, list[int]] = {}
            for i, b in wanted:
                todo.setdefault(b, []).append(i)
            start = t.home((a,))
            joint = {start: self._factor(start)}  # clique -> P(a, clique), while needed
            seen = {start}
            for k in _bfs(start, t.neighbours):
                if k != start:
                    j = next(n for n in t.neighbours[k] if n in seen)
                    seen.add(k)
                    sep = tuple(sorted(set(t.cliques[k]) & set(t.cliques[j])))
                    cond = conditionals.get((k, sep))
                    if cond is None:
                        cond = conditionals[(k, sep)] = self._factor(k) / self._factor(k).project(sep)
                    joint[k] = joint[j].project(tuple(sorted({a} | set(sep)))) * cond
                    if all(n in seen for n in t.neighbours[j]):
                        del joint[j]  # every child of j has its factor
                for b in [b for b in todo if b in t.cliques[k]]:
                    values = self.total * joint[k].project((a, b)).values
                    for i in todo.pop(b):
                        out[i] = values
                if not todo:
                    break
        return out

    def _eliminate(self, attrs: Clique) -> Factor:
        """P(attrs) by absorbing, along the smallest subtree covering ``attrs``, each clique's
        conditional given its separator: P(C) / P(S)."""
        t = self.tree
        want = set(attrs)
        holders = {i for i, c in enumerate(t.cliques) if want & set(c)}
        # the subtree: every clique on the tree path between two holders
        start = next(iter(holders))
        path_parent = {start: None}
        stack = [start]
        while stack:
            i = stack.pop()
            for j in t.neighbours[i]:
                if j not in path_parent:
                    path_parent[j] = i
                    stack.append(j)
        keep = set()
        for h in holders:
            while h is not None and h not in keep:
                keep.add(h)
                h = path_parent[h]
        # absorb from ``start`` outwards; the running factor keeps the wanted columns seen so
        # far and the separators still to be crossed
        order = [i for i in _bfs(start, t.neighbours) if i in keep]
        factor = self._factor(start)
        seen = {start}
        for i in order[1:]:
            j = path_parent[i]
            sep = tuple(sorted(set(t.cliques[i]) & set(t.cliques[j])))
            cond = self._factor(i) / self._factor(i).project(sep)
            factor = factor * cond
            seen.add(i)
            future = set()  # the separators to cliques not absorbed yet, next to absorbed ones
            for k in keep - seen:
                if path_parent[k] in seen:
                    future |= set(t.cliques[k]) & set(t.cliques[path_parent[k]])
            factor = factor.project(tuple(sorted(want | future)))
        return factor.project(attrs)

    # -- conditioning ---------------------------------------------------------------------
    def condition(self, weights: dict[int, np.ndarray]) -> "GraphicalModel | None":
        """The model given evidence: ``weights[a][code]`` (in [0, 1]) multiplies the
        probability of column ``a`` taking ``code`` (1 keeps it, 0 rules it out; a fraction
        is soft evidence).  ``None`` when the evidence rules out every row."""
        potentials = [p.copy() for p in self.potentials]
        for a, w in weights.items():
            w = np.asarray(w, dtype=np.float64)
            if w.shape != (self.tree.sizes[a],):
                raise ValueError(f"evidence for column {a} has shape {w.shape}, expected "
                                 f"({self.tree.sizes[a]},)")
            home = self.tree.home((a,))
            shape = [1] * potentials[home].ndim
            shape[self.tree.cliques[home].index(a)] = w.size
            with np.errstate(divide="ignore"):
                potentials[home] = potentials[home] + np.log(w).reshape(shape)
        if any(not np.isfinite(p).any() for p in potentials):
            return None
        model = GraphicalModel(self.tree, potentials, self.total, self.measured)
        if not all(np.isfinite(p).all() and p.sum() > 0.5 for p in model.probabilities):
            return None
        return model

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` rows of column codes drawn from the model (ancestral, along the tree)."""
        t = self.tree
        codes = np.zeros((n, len(t.sizes)), dtype=np.int64)
        for c in t.order:
            clique = t.cliques[c]
            p = self.probabilities[c]
            sep = t.separator.get(c, ())
            new = tuple(a for a in clique if a not in sep)
            # axes: separator columns first, then the new ones
            perm = [clique.index(a) for a in sep + new]
            table = np.transpose(p, perm).reshape(math.prod(t.sizes[a] for a in sep) if sep else 1, -1)
            sums = table.sum(axis=1, keepdims=True)
            cond = np.where(sums > 0, table / np.where(sums > 0, sums, 1.0), 1.0 / table.shape[1])
            cdf = np.cumsum(cond, axis=1)
            cdf[:, -1] = 1.0
            row = (np.ravel_multi_index(tuple(codes[:, a] for a in sep), [t.sizes[a] for a in sep])
                   if sep else np.zeros(n, dtype=np.int64))
            u = rng.random(n)
            pick = _inverse_cdf(cdf, row, u)
            for a, values in zip(new, np.unravel_index(pick, [t.sizes[a] for a in new])):
                codes[:, a] = values
        return codes

    def resample(self, codes: np.ndarray, a: int, rows: np.ndarray, allowed: np.ndarray,
                 rng: np.random.Generator) -> None:
        """Redraw column ``a`` of ``codes[rows]`` (in place) from its conditional given each
        row's other columns, restricted to the codes ``allowed`` (a boolean mask over ``a``'s
        codes): ``P(a | rest)`` is proportional to the product of the potentials of the
        cliques holding ``a``, so the rest of each row keeps the model's joint."""
        rows = np.asarray(rows, dtype=np.int64)
        keep = np.flatnonzero(allowed)
        if not rows.size or not keep.size:
            return
        logits = np.zeros((rows.size, keep.size))
        for c, clique in enumerate(self.tree.cliques):
            if a not in clique:
                continue
            table = np.moveaxis(self.potentials[c], clique.index(a), -1)[..., keep]
            logits += table[tuple(codes[rows, b] for b in clique if b != a)]
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        cdf[:, -1] = 1.0
        pick = _inverse_cdf(cdf, np.arange(rows.size), rng.random(rows.size))
        codes[rows, a] = keep[pick]


def _inverse_cdf(cdf: np.ndarray, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each draw ``i``, the first column of ``cdf[row[i]]`` above ``u[i]`` (inverse-CDF
    sampling from many discrete distributions at once).  Row ``r`` of the CDF table is
    shifted by ``r`` and flattened, which keeps it sorted (each row rises from ``r`` to
    ``r + 1``), so one ``searchsorted`` of ``row + u`` finds every draw: no sort of the draws,
    no loop over rows."""
    k = cdf.shape[1]
    flat = (cdf + np.arange(cdf.shape[0], dtype=np.float64)[:, None]).ravel()
    pick = np.searchsorted(flat, row + u, side="right") - row * k
    return np.clip(pick, 0, k - 1)


def _bfs(start: int, neighbours: dict[int, list[int]]) -> list[int]:
    order, seen = [start], {start}
    for i in order:
        for j in neighbours[i]:
            if j not in seen:
                seen.add(j)
                order.append(j)
    return order


# --------------------------------------------------------------------------------------------
# estimation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Fit:
    """How one measurement enters the loss: its home clique, the axes the home sums out, the
    shape of the measured marginal broadcast into the home clique."""

    home: int
    axes: tuple[int, ...]
    shape: tuple[int, ...]
    broadcast: tuple[int, ...]


def _fits(tree: JunctionTree, measurements: Sequence[Measurement]) -> list[_Fit]:
    out = []
    for m in measurements:
        h = tree.home(m.clique)
        if h is None:
            raise ValueError(f"measured clique {m.clique} is not inside the junction tree.")
        clique = tree.cliques[h]
        out.append(_Fit(h, tuple(i for i, a in enumerate(clique) if a not in m.clique),
                        tuple(tree.sizes[a] for a in m.clique),
                        tuple(tree.sizes[a] if a in m.clique else 1 for a in clique)))
    return out


def _loss(marginals: Sequence[np.ndarray], measurements: Sequence[Measurement],
          fits: Sequence[_Fit]) -> tuple[float, list[np.ndarray]]:
    """Loss and its gradient with respect to each clique's marginal (counts)."""
    grads = [np.zeros_like(mu) for mu in marginals]
    loss = 0.0
    for m, f in zip(measurements, fits):
        mu = marginals[f.home].sum(axis=f.axes) if f.axes else marginals[f.home]
        flat = mu.ravel()
        if m.cells is None:
            diff = (flat - m.values) / m.sigma
            g = diff / m.sigma
        else:
            diff = (flat[m.cells] - m.values) / m.sigma
            g = np.zeros(flat.size)
            g[m.cells] = diff / m.sigma
        loss += 0.5 * float(diff @ diff)
        grads[f.home] += g.reshape(f.broadcast)
    return loss, grads


def estimate(sizes: Sequence[int], measurements: Sequence[Measurement], total: float, *,
             iterations: int = 500, warm_start: GraphicalModel | None = None,
             tree: JunctionTree | None = None, tol: float = 1e-7) -> GraphicalModel:
    """Fit the graphical model to noisy marginals by mirror descent (Private-PGM).

    Parameters
    ----------
    sizes : sequence of int
        Number of codes of each column.
    measurements : sequence of Measurement
    total : float
        Number of rows (a DP estimate); the marginals are scaled to it.
    iterations : int
        Mirror-descent steps (each one belief propagation, with a backtracking line search).
    warm_start : GraphicalModel, optional
        A previous estimate: its potentials start the descent on the cliques it shares.
    tree : JunctionTree, optional
        The junction tree to use (built from the measured cliques when omitted).
    tol : float
        Stop once a step improves the loss by less than ``tol`` times the loss.
    """
    cliques = tuple(dict.fromkeys(m.clique for m in measurements))
    if tree is None:
        tree = JunctionTree(sizes, cliques)
    fits = _fits(tree, measurements)
    theta = [np.zeros(shape) for shape in tree.shapes]
    if warm_start is not None:
        old = {c: p for c, p in zip(warm_start.tree.cliques, warm_start.potentials)}
        for i, c in enumerate(tree.cliques):
            for oc, op in list(old.items()):
                if set(oc) <= set(c):  # an old clique's potential lives on in the new one
                    theta[i] = theta[i] + Factor(oc, op).expand(c)
                    old.pop(oc)
    model = GraphicalModel(tree, theta, total, cliques)
    mu = [model.clique_marginal(i) for i in range(len(theta))]
    loss, grad = _loss(mu, measurements, fits)
    # step size: the curvature of the loss in the potentials is about total / sigma^2
    alpha = min(m.sigma for m in measurements) ** 2 / max(total, 1.0) if measurements else 1.0
    for _ in range(iterations):
        alpha *= 2.0
        for _ in range(30):
            cand_theta = [t - alpha * g for t, g in zip(theta, grad)]
            cand = GraphicalModel(tree, cand_theta, total, cliques)
            cand_mu = [cand.clique_marginal(i) for i in range(len(theta))]
            cand_loss, cand_grad = _loss(cand_mu, measurements, fits)
            # Armijo condition for mirror descent (the Bregman step of Private-PGM)
            decrease = sum(float(np.vdot(g, m0 - m1)) for g, m0, m1 in zip(grad, mu, cand_mu))
            if loss - cand_loss >= 0.5 * alpha * decrease:
                break
            alpha *= 0.5
        else:
            break
        improved = loss - cand_loss
        theta, model, mu, loss, grad = cand_theta, cand, cand_mu, cand_loss, cand_grad
        if improved <= tol * max(loss, 1e-12):
            break
    return model
