"""Shared plumbing of the column encoders: input validation and the inverse-input check.

Every encoder works column by column on a 2-D input (``n_samples, n_features``), like
:class:`sklearn.preprocessing.OneHotEncoder`, so that it is a regular scikit-learn transformer.
:class:`~nhssynth.TableEncoder` uses one encoder per table column.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ..base import fresh_ids  # noqa: F401  (re-exported: the encoders' id columns)
from ..exceptions import EncodingError

__all__ = ["ColumnEncoderMixin", "fresh_ids", "all_missing"]


class ColumnEncoderMixin(TransformerMixin, BaseEstimator):
    """Base class: per-column validation, feature names, inverse-input checks.

    Subclasses set ``n_features_out_`` and implement ``_feature_names_for(j, name)``.
    """

    # -- input handling -----------------------------------------------------------------------
    def _input_columns(self, X: Any, *, reset: bool, numeric: bool) -> list:
        """Validate ``X`` (setting/checking ``n_features_in_``/``feature_names_in_``).

        Returns one 1-D object per input column: a :class:`pandas.Series` when ``X`` is a
        DataFrame (so category/datetime dtypes are kept), a 1-D ndarray otherwise.
        """
        if isinstance(X, pd.Series):
            X = X.to_frame()
        if isinstance(X, pd.DataFrame):
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[1] == 0:
                raise ValueError("0 feature(s) (shape=(%d, 0)) while a minimum of 1 is required."
                                 % X.shape[0])
            if X.shape[0] == 0:
                raise ValueError("0 sample(s) (shape=(0, %d)) while a minimum of 1 is required."
                                 % X.shape[1])
            cols = [X.iloc[:, j] for j in range(X.shape[1])]
            if numeric:
                cols = [self._numeric_series(s, j) for j, s in enumerate(cols)]
            return cols
        X = validate_data(self, X, reset=reset, dtype="numeric" if numeric else None,
                          ensure_all_finite=False)
        if numeric:
            X = X.astype(np.float64, copy=False)
        return [X[:, j] for j in range(X.shape[1])]

    def _numeric_series(self, s: pd.Series, j: int) -> np.ndarray:
        if not pd.api.types.is_numeric_dtype(s.dtype):
            raise EncodingError(
                f"column {self._name(j)!r} must be numeric for {type(self).__name__} but has dtype "
                f"{s.dtype}; convert it (pd.to_numeric) or declare its kind in the metadata.")
        return s.to_numpy(dtype=np.float64, na_value=np.nan)

    def _name(self, j: int) -> str:
        names = getattr(self, "feature_names_in_", None)
        return str(names[j]) if names is not None and j < len(names) else f"x{j}"

    def _check_finite(self, x: np.ndarray, j: int) -> None:
        if not np.all(np.isfinite(x)):
            if np.isnan(x).any():
                raise EncodingError(
                    f"column {self._name(j)!r} has missing values (NaN); {type(self).__name__} "
                    f"encodes observed values only. Use TableEncoder (missing='augment'/'impute'/"
                    f"'drop') or MissingIndicatorEncoder first.")
            raise EncodingError(
                f"column {self._name(j)!r} holds infinite values; replace them with NaN (missing) "
                f"or a finite value before encoding.")

    # -- output side ----------------------------------------------------------------------------
    def _check_inverse_input(self, Z: Any) -> np.ndarray:
        check_is_fitted(self)
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim == 1:
            Z = Z.reshape(-1, 1) if self.n_features_out_ == 1 else Z.reshape(1, -1)
        if Z.ndim != 2 or Z.shape[1] != self.n_features_out_:
            raise EncodingError(
                f"{type(self).__name__}.inverse_transform expects {self.n_features_out_} columns "
                f"(n_features_out_), got shape {Z.shape}.")
        if np.isnan(Z).any():
            raise EncodingError(f"{type(self).__name__}.inverse_transform got NaN values; the "
                                f"model output must be finite.")
        return Z

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Output feature names, ``"<column>__<part>"`` for each output feature."""
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        out: list[str] = []
        for j, name in enumerate(names):
            out.extend(self._feature_names_for(j, str(name)))
        return np.asarray(out, dtype=object)

    def _feature_names_for(self, j: int, name: str) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError


def spawn_seed(rng: np.random.RandomState) -> int:
    """A fresh 32-bit seed drawn from ``rng`` (to seed sub-estimators reproducibly)."""
    return int(rng.randint(np.iinfo(np.int32).max))


def all_missing(n: int, col) -> Any:
    """``n`` missing values of the column's dtype (NaN, NaT or pd.NA): a withheld column."""
    dtype = col.pandas_dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(np.full(n, -1), dtype=dtype)
    if col.kind == "datetime" and pd.api.types.is_datetime64_any_dtype(dtype):
        return pd.array(np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"), dtype=dtype)
    if pd.api.types.is_extension_array_dtype(dtype):
        return pd.array([None] * n, dtype=dtype)
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return np.full(n, np.nan, dtype=np.float64 if np.dtype(dtype).kind != "f" else dtype)
    return np.full(n, np.nan, dtype=object)
