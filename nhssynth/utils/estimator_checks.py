"""Checks for generators that :func:`sklearn.utils.estimator_checks.check_estimator` cannot do.

sklearn never calls ``sample``; these checks do.  Use :func:`generator_checks` to parametrise a
test, or :func:`check_generator` to run them all::

    from nhssynth.utils.estimator_checks import check_generator
    check_generator(DPVAESynthesizer(max_epochs=2), df)
"""
from __future__ import annotations

import copy
import pickle
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import re
from contextlib import contextmanager
from sklearn.base import clone

from ..exceptions import NotFittedError

__all__ = ["generator_checks", "check_generator"]


@contextmanager
def _raises(exc_type, match: str | None = None):
    """Minimal ``pytest.raises`` (pytest is not a runtime dependency)."""
    try:
        yield
    except exc_type as exc:
        if match is not None and not re.search(match, str(exc)):
            raise AssertionError(f"error message {str(exc)!r} does not match {match!r}") from exc
    else:
        raise AssertionError(f"{exc_type.__name__} was not raised")


def _assert_same(a, b, what: str) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=what)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=what)


def check_not_fitted_error(estimator, X) -> None:
    """``sample`` before ``fit`` raises NotFittedError."""
    with _raises(NotFittedError):
        clone(estimator).sample(5)


def check_sample_schema(estimator, X) -> None:
    """Samples have the input's columns, order and dtypes (and categories)."""
    est = clone(estimator).fit(X)
    out = est.sample(17, random_state=0)
    assert len(out) == 17
    if isinstance(X, pd.DataFrame):
        assert isinstance(out, pd.DataFrame)
        assert list(out.columns) == list(X.columns)
        for c in X.columns:
            assert out[c].dtype == X[c].dtype, f"dtype of {c!r}: {out[c].dtype} != {X[c].dtype}"
            if isinstance(X[c].dtype, pd.CategoricalDtype):
                assert set(out[c].dropna()) <= set(X[c].dtype.categories)
    else:
        assert isinstance(out, np.ndarray) and out.shape == (17, np.asarray(X).shape[1])


def check_sample_reproducible(estimator, X) -> None:
    """Same ``random_state`` in ``sample`` -> identical samples; different -> different."""
    est = clone(estimator).fit(X)
    _assert_same(est.sample(50, random_state=1), est.sample(50, random_state=1), "same-seed samples")
    a, b = est.sample(50, random_state=1), est.sample(50, random_state=2)
    if isinstance(a, pd.DataFrame):
        assert not a.equals(b), "different seeds gave identical samples"


def check_fit_reproducible(estimator, X) -> None:
    """Two fits with the same ``random_state`` give identical samples (on CPU)."""
    params = estimator.get_params()
    if params.get("random_state") is None:
        estimator = clone(estimator).set_params(random_state=0)
    a = clone(estimator).fit(X).sample(40, random_state=3)
    b = clone(estimator).fit(X).sample(40, random_state=3)
    _assert_same(a, b, "samples of two identically seeded fits")


def check_pickle_roundtrip(estimator, X) -> None:
    """A pickled and unpickled estimator samples exactly the same rows."""
    est = clone(estimator).fit(X)
    back = pickle.loads(pickle.dumps(est))
    _assert_same(est.sample(30, random_state=5), back.sample(30, random_state=5), "after pickling")


def check_sample_does_not_mutate(estimator, X) -> None:
    """``sample`` leaves every attribute of the fitted estimator unchanged."""
    est = clone(estimator).fit(X)
    before = pickle.dumps(est)
    est.sample(25, random_state=0)
    est.sample(25)
    assert pickle.dumps(est) == before, "sample() changed the estimator's state"


def _iter_values(obj, depth=0) -> Iterator:
    if depth > 6:
        return
    if isinstance(obj, pd.DataFrame):
        yield obj
    elif isinstance(obj, (pd.Series, np.ndarray)):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _iter_values(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _iter_values(v, depth + 1)
    elif hasattr(obj, "__dict__") and type(obj).__module__.startswith(("nhssynth", "sklearn")):
        yield from _iter_values(vars(obj), depth + 1)


def check_no_training_rows_stored(estimator, X) -> None:
    """No DataFrame, and no array holding a full training row, is kept in the fitted object."""
    est = clone(estimator).fit(X)
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    numeric = frame.select_dtypes(include=["number", "bool"]).astype("float64")
    rows = {tuple(np.round(r, 9)) for r in numeric.dropna().to_numpy()}
    for value in _iter_values(vars(est)):
        assert not isinstance(value, pd.DataFrame), "a DataFrame is stored in the fitted estimator"
        arr = np.asarray(value)
        if arr.ndim == 2 and arr.shape[1] == numeric.shape[1] and arr.dtype.kind in "biuf":
            stored = {tuple(np.round(r.astype(float), 9)) for r in arr}
            assert not (stored & rows), "a training row is stored in the fitted estimator"
        if arr.ndim >= 1 and arr.shape[0] == len(frame) and len(frame) > 50:
            raise AssertionError(f"an array with one entry per training row ({arr.shape}) is stored")


def check_epsilon_within_budget(estimator, X) -> None:
    """The privacy actually spent never exceeds the requested epsilon."""
    est = clone(estimator).fit(X)
    eps = est.get_params().get("epsilon")
    if eps is None:
        return
    assert 0 < est.epsilon_ <= eps, f"epsilon_={est.epsilon_} exceeds epsilon={eps}"
    for record in getattr(est, "history_", []):
        if "epsilon" in record:
            assert record["epsilon"] <= eps


def check_n_samples_validation(estimator, X) -> None:
    """``sample`` rejects 0, negative, float and bool ``n_samples`` with a clear error."""
    est = clone(estimator).fit(X)
    for bad in (0, -3):
        with _raises(ValueError, match="n_samples must be a positive integer"):
            est.sample(bad)
    for bad in (2.5, "10", True):
        with _raises(TypeError, match="n_samples must be a positive integer"):
            est.sample(bad)


_CHECKS: tuple[Callable, ...] = (
    check_not_fitted_error, check_sample_schema, check_sample_reproducible, check_fit_reproducible,
    check_pickle_roundtrip, check_sample_does_not_mutate, check_no_training_rows_stored,
    check_epsilon_within_budget, check_n_samples_validation,
)


def generator_checks() -> tuple[Callable, ...]:
    """All generator checks, each ``check(estimator, X)``."""
    return _CHECKS


def check_generator(estimator, X) -> None:
    """Run every generator check on ``estimator`` with data ``X``."""
    for check in _CHECKS:
        check(copy.deepcopy(estimator), X)
