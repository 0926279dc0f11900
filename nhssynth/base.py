"""Shared base classes: the generator (``sample``) contract and the output-span description."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

__all__ = ["OutputSpan", "GeneratorMixin", "SPAN_KINDS", "DisjointSet", "check_n_samples", "fresh_ids"]

SPAN_KINDS = ("continuous", "softmax", "binary")


@dataclass(frozen=True)
class OutputSpan:
    """One block of an encoded matrix, so a decoder can build one output head per block.

    Attributes
    ----------
    column : str
        Source column in the original table.
    kind : {"continuous", "softmax", "binary"}
        ``continuous``: real scalars (one per output feature, roughly in [-1, 1]);
        ``softmax``: a one-hot group (exactly one 1 per row: GMM mode, category, ...);
        ``binary``: independent 0/1 features (one per output feature).
    start : int
        Index of the first output feature of the block.
    width : int
        Number of output features in the block.
    role : str
        What the block encodes (``"value"``, ``"mode"``, ``"category"``, ``"missing"``...),
        informative only.
    """

    column: str
    kind: Literal["continuous", "softmax", "binary"]
    start: int
    width: int
    role: str = "value"

    def __post_init__(self) -> None:
        if self.kind not in SPAN_KINDS:
            raise ValueError(f"span kind must be one of {SPAN_KINDS}, got {self.kind!r}")
        if self.width < 1 or self.start < 0:
            raise ValueError(f"invalid span {self}")

    @property
    def stop(self) -> int:
        return self.start + self.width

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def check_n_samples(n_samples) -> int:
    """Validate the ``n_samples`` argument of ``sample``."""
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, (int, np.integer)):
        raise TypeError(f"n_samples must be a positive integer, got {n_samples!r} "
                        f"({type(n_samples).__name__}).")
    if n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples}.")
    return int(n_samples)


class GeneratorMixin:
    """Mixin for estimators that generate synthetic data with ``sample``.

    Subclasses implement ``sample(n_samples, *, random_state=None)``; the method takes its own
    random state (as :class:`sklearn.neighbors.KernelDensity` does) and never touches global
    RNG state nor the fitted attributes.
    """

    _estimator_type = "generator"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags

    @staticmethod
    def _sample_rng(random_state) -> np.random.RandomState:
        """RandomState for one ``sample`` call; ``None`` draws fresh OS entropy instead of
        using (and advancing) numpy's global RNG."""
        if random_state is None:
            return np.random.RandomState(np.random.SeedSequence().generate_state(1)[0])
        return check_random_state(random_state)


def fresh_ids(n: int, dtype: Any, start: int = 1) -> Any:
    """Identifiers ``start..start + n - 1`` of ``dtype`` (``"id-000001"``... for text): an
    ``id`` column is never learnt, synthetic rows get fresh ones."""
    if pd.api.types.is_numeric_dtype(dtype):
        ids = np.arange(start, start + n)
        return pd.array(ids, dtype=dtype) if pd.api.types.is_extension_array_dtype(dtype) \
            else ids.astype(dtype)
    width = max(6, len(str(start + n - 1)))
    text = np.strings.add("id-", np.strings.zfill(np.arange(start, start + n).astype(str), width))
    return pd.array(text.astype(object), dtype=dtype)


class DisjointSet:
    """Union-find over hashable items (path halving).

    ``union(a, b)`` joins the sets of ``a`` and ``b`` and says whether they were apart: the
    test Kruskal's algorithm makes before adding an edge (the calibration's spanning forest of
    pairs, the junction tree of the graphical model, AIM's groups of related columns).
    """

    def __init__(self, items) -> None:
        self._parent = {x: x for x in items}

    def find(self, x):
        """The representative of ``x``'s set."""
        parent = self._parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b) -> bool:
        """Join the sets of ``a`` and ``b``; False when they were already one."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self._parent[ra] = rb
        return True
