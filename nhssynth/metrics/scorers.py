"""Scorers for model selection: ``scorer(estimator, X, y=None) -> float``, greater is better.

A scorer samples ``len(X)`` rows from the fitted estimator with a fixed seed and compares them
with ``X`` -- in :class:`~sklearn.model_selection.GridSearchCV` that is the held-out fold, real
rows the synthesizer did not see::

    GridSearchCV(MarginalSynthesizer(), {"epsilon": [0.5, 1, 3]},
                 scoring=get_scorer("fidelity"), cv=3).fit(df)

Privacy scorers need the training rows too: pass the whole table as ``data=df`` and the
training rows of each split are taken as the rows of ``data`` whose index is not in ``X``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..metadata import Metadata
from ._encoding import resolve_metadata
from .fidelity import (column_pair_trends, column_shapes, coverage, detection, missing_similarity,
                       pair_trends_score, relationship_score)
from .privacy import dcr, exact_copy_rate, membership_inference, nndr
from .utility import tstr

__all__ = ["get_scorer", "get_scorer_names", "SyntheticDataScorer"]


def _fidelity(X, S, md, kw):
    return float(np.nanmean([column_shapes(X, S, md)["score"].mean(),
                             pair_trends_score(column_pair_trends(X, S, md))]))


def _coverage_of(metric):
    def f(X, S, md, kw):
        c = coverage(X, S, md)
        c = c if metric is None else c[c["metric"] == metric]
        return float(c["score"].mean()) if len(c) else 1.0
    return f


def _utility(X, S, md, kw):
    if kw.get("target") is None:
        raise ValueError("the 'utility' scorer needs a target: get_scorer('utility', target='col').")
    train = kw.get("train")
    if train is not None:  # real training rows of this split train the reference model
        return tstr(train, S, kw["target"], X, md, model=kw.get("model"),
                    random_state=kw["random_state"])["score"]
    return tstr(X, S, kw["target"], None, md, model=kw.get("model"),
                random_state=kw["random_state"])["score"]


def _quality(X, S, md, kw):
    parts = [column_shapes(X, S, md)["score"].mean(),
             relationship_score(column_pair_trends(X, S, md)),
             detection(X, S, md, random_state=kw["random_state"])["score"]]
    if kw.get("target") is not None:
        parts.append(_utility(X, S, md, kw))
    return float(np.nanmean(parts))


def _needs_train(kw, name):
    if kw.get("train") is None:
        raise ValueError(
            f"the {name!r} scorer measures closeness to the training rows, which a fitted "
            f"synthesizer does not keep: pass the full table, get_scorer({name!r}, data=df); the "
            f"training rows of each split are the rows of data whose index is not in X.")
    return kw["train"]


def _dcr_score(X, S, md, kw):
    return dcr(_needs_train(kw, "dcr_share"), S, X, md, random_state=kw["random_state"])["score"]


def _mia(X, S, md, kw):
    return membership_inference(_needs_train(kw, "membership_inference"), S, X, md,
                                random_state=kw["random_state"])["score"]


def _nndr(X, S, md, kw):
    return nndr(_needs_train(kw, "nndr"), S, md, random_state=kw["random_state"])["mean"]


def _copies(X, S, md, kw):
    return 1.0 - exact_copy_rate(_needs_train(kw, "exact_copy"), S, md)


_SCORERS: dict[str, tuple[Callable, str]] = {
    "fidelity": (_fidelity, "mean of column_shapes and column_pair_trends"),
    "quality": (_quality, "mean of column_shapes, relationships, detection (and utility with a target)"),
    "column_shapes": (lambda X, S, md, kw: float(column_shapes(X, S, md)["score"].mean()),
                      "mean KS / TV complement over columns"),
    "missing_similarity": (lambda X, S, md, kw: float(missing_similarity(X, S, md)["score"].mean()),
                           "mean missing-rate similarity"),
    "column_pair_trends": (lambda X, S, md, kw: pair_trends_score(column_pair_trends(X, S, md)),
                           "mean correlation / contingency similarity over column pairs"),
    "relationships": (lambda X, S, md, kw: relationship_score(column_pair_trends(X, S, md)),
                      "share of the real dependence between columns kept"),
    "coverage": (_coverage_of(None), "mean range and category coverage"),
    "range_coverage": (_coverage_of("range_coverage"), "mean range coverage of numeric columns"),
    "category_coverage": (_coverage_of("category_coverage"), "mean category coverage"),
    "detection": (lambda X, S, md, kw: detection(X, S, md, random_state=kw["random_state"])["score"],
                  "1 - 2|AUC - 0.5| of a real-vs-synthetic classifier"),
    "utility": (_utility, "TSTR / TRTR above chance for target (needs target=)"),
    "dcr_share": (_dcr_score, "1 - 2|DCR share - 0.5| (needs data=)"),
    "privacy": (_dcr_score, "alias of dcr_share"),
    "membership_inference": (_mia, "1 - 2|AUC - 0.5| of a distance-based attack (needs data=)"),
    "nndr": (_nndr, "mean nearest-neighbour distance ratio to training rows (needs data=)"),
    "exact_copy": (_copies, "1 - share of synthetic rows copying a training row (needs data=)"),
}


def get_scorer_names() -> list[str]:
    """Return the names accepted by :func:`get_scorer`."""
    return sorted(_SCORERS)


class SyntheticDataScorer:
    """Callable ``scorer(estimator, X, y=None) -> float`` (see :func:`get_scorer`)."""

    def __init__(self, name: str, *, target: str | None = None, data: pd.DataFrame | None = None,
                 metadata: Any = None, model: Any = None, random_state: int = 0) -> None:
        if name not in _SCORERS:
            raise ValueError(f"unknown scorer {name!r}; choose one of {get_scorer_names()}.")
        self.name = name
        self.target = target
        self.data = data
        self.metadata = metadata
        self.model = model
        self.random_state = random_state

    def __call__(self, estimator: Any, X: pd.DataFrame, y: Any = None) -> float:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"the {self.name!r} scorer compares DataFrames; got "
                            f"{type(X).__name__}. Pass a DataFrame to GridSearchCV.fit.")
        synthetic = estimator.sample(len(X), random_state=self.random_state)
        if not isinstance(synthetic, pd.DataFrame):
            synthetic = pd.DataFrame(np.asarray(synthetic), columns=X.columns)
        md = self.metadata
        if md is None and isinstance(getattr(estimator, "metadata_", None), Metadata):
            md = estimator.metadata_
        md = resolve_metadata(md, X)
        train = None
        if self.data is not None:
            if not X.index.isin(self.data.index).all():
                raise ValueError("X has rows whose index is not in data=; pass the same DataFrame "
                                 "(with its index) to get_scorer(data=...) and to fit.")
            train = self.data.loc[~self.data.index.isin(X.index)]
            if len(train) == 0:
                train = None
        kw = {"target": self.target, "train": train, "model": self.model,
              "random_state": self.random_state}
        value = float(_SCORERS[self.name][0](X, synthetic, md, kw))
        return value if math.isfinite(value) else 0.0

    def __repr__(self) -> str:
        extra = f", target={self.target!r}" if self.target else ""
        return f"get_scorer({self.name!r}{extra})"


def get_scorer(name: str, *, target: str | None = None, data: pd.DataFrame | None = None,
               metadata: Any = None, model: Any = None, random_state: int = 0) -> SyntheticDataScorer:
    """Return a scorer ``scorer(estimator, X, y=None) -> float`` (greater is better, in [0, 1]).

    Parameters
    ----------
    name : str
        One of :func:`get_scorer_names`: ``fidelity``, ``quality``, ``column_shapes``,
        ``missing_similarity``, ``column_pair_trends``, ``relationships``, ``coverage``,
        ``range_coverage``, ``category_coverage``, ``detection``, ``utility``, ``dcr_share``
        (alias ``privacy``), ``membership_inference``, ``nndr``, ``exact_copy``.
    target : str, optional
        Target column of ``utility`` (and of ``quality``, which then includes utility).
    data : DataFrame, optional
        The full table given to ``fit``; required by the privacy scorers, whose training rows
        are the rows of ``data`` not in ``X``.  With ``utility`` it trains the real reference
        model on those rows.
    metadata : Metadata, optional
        Default: the estimator's ``metadata_`` if it has one, else inferred from ``X``.
    model : sklearn estimator, optional
        Model of the ``utility`` scorer.
    random_state : int, default 0
        Seed passed to ``estimator.sample`` and to the metrics, so every candidate is scored on
        equal terms.
    """
    return SyntheticDataScorer(name, target=target, data=data, metadata=metadata, model=model,
                               random_state=random_state)
