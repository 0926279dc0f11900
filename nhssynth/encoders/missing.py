"""Missingness as its own 0/1 indicator feature, so a generator learns where values are missing."""
from __future__ import annotations

import numbers
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from ..exceptions import EncodingError
from ._base import ColumnEncoderMixin

__all__ = ["MissingIndicatorEncoder", "missing_mask"]


def missing_mask(values: Any) -> np.ndarray:
    """Boolean mask of missing entries (NaN, None, NaT, pd.NA) of a 1-D array or Series."""
    return np.asarray(pd.isna(values), dtype=bool)


class MissingIndicatorEncoder(ColumnEncoderMixin):
    """Split each numeric column into (filled value, missing indicator).

    ``transform`` returns ``[X_filled, M]``: the input with missing entries replaced by a fill
    value, followed by one ``binary`` indicator per column (1 = missing).  ``inverse_transform``
    puts NaN back wherever the indicator is >= 0.5 (so it also decodes generated scores).

    :class:`~nhssynth.TableEncoder` applies the same idea to columns of any dtype
    (numeric, categorical, datetime; restoring NaN, NaT or pd.NA): a nullable column with
    ``missing="augment"`` gets a ``binary`` span of width 1, role ``"missing"``, right after
    its value block.

    Parameters
    ----------
    fill_value : "mean", "median" or float, default="mean"
        Value written in place of missing entries.  ``"mean"``/``"median"`` are computed from
        the observed values of each column (**derived from the data**); a number is public.
        An entirely missing column is filled with 0.

    Attributes
    ----------
    fill_values_ : ndarray of shape ``(n_features_in_,)``
    n_features_out_ : int
        ``2 * n_features_in_``.
    n_features_in_, feature_names_in_

    Notes
    -----
    The round trip is exact: observed values pass through unchanged and missing positions are
    restored from the indicator.
    """

    _parameter_constraints: dict = {"fill_value": [StrOptions({"mean", "median"}), Real]}

    def __init__(self, fill_value: Any = "mean") -> None:
        self.fill_value = fill_value

    def fit(self, X: Any, y: Any = None) -> "MissingIndicatorEncoder":
        """Compute the fill value of each column."""
        self._validate_params()
        cols = self._input_columns(X, reset=True, numeric=True)
        fills = []
        for j, x in enumerate(cols):
            if np.isinf(x).any():
                self._check_finite(np.where(np.isnan(x), 0.0, x), j)
            obs = x[~np.isnan(x)]
            if isinstance(self.fill_value, str):
                if self.fill_value not in ("mean", "median"):
                    raise ValueError(f"MissingIndicatorEncoder: fill_value must be 'mean', 'median' "
                                     f"or a number, got {self.fill_value!r}.")
                fills.append(0.0 if obs.size == 0 else float(getattr(np, self.fill_value)(obs)))
            elif isinstance(self.fill_value, numbers.Real) and np.isfinite(self.fill_value):
                fills.append(float(self.fill_value))
            else:
                raise ValueError(f"MissingIndicatorEncoder: fill_value must be 'mean', 'median' "
                                 f"or a finite number, got {self.fill_value!r}.")
        self.fill_values_ = np.asarray(fills, dtype=np.float64)
        self.n_features_out_ = 2 * len(cols)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return ``[X with missing entries filled, missing indicators]`` (float64)."""
        check_is_fitted(self)
        cols = self._input_columns(X, reset=False, numeric=True)
        X = np.column_stack(cols)
        if np.isinf(X).any():
            j = int(np.flatnonzero(np.isinf(X).any(axis=0))[0])
            raise EncodingError(f"column {self._name(j)!r} holds infinite values; replace them "
                                f"with NaN (missing) or a finite value before encoding.")
        mask = np.isnan(X)
        filled = np.where(mask, self.fill_values_, X)
        return np.hstack([filled, mask.astype(np.float64)])

    def inverse_transform(self, X: Any) -> np.ndarray:
        """NaN where the indicator is >= 0.5, the value otherwise."""
        Z = self._check_inverse_input(X)
        p = self.n_features_in_
        out = Z[:, :p].copy()
        out[Z[:, p:] >= 0.5] = np.nan
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``[<col>..., <col>__missing...]``."""
        from sklearn.utils.validation import _check_feature_names_in

        check_is_fitted(self)
        names = [str(n) for n in _check_feature_names_in(self, input_features)]
        return np.asarray(names + [f"{n}__missing" for n in names], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
