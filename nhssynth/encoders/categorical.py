"""One-hot encoding of categorical (and boolean) columns, with rare-category grouping."""
from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..exceptions import EncodingError
from ._base import ColumnEncoderMixin, spawn_seed
from .numeric import finalize_numeric

__all__ = ["CategoricalEncoder", "restore_categories"]


def _sort_key(v: Any):
    return (str(type(v)), v)


def _unique_sorted(values: pd.Series) -> list:
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories)) > 0
        return list(values.cat.categories[used])  # keeps the dtype's (possibly ordered) order
    uniq = pd.unique(values.to_numpy())
    try:
        return sorted(uniq.tolist(), key=_sort_key)
    except TypeError:
        return sorted(uniq.tolist(), key=lambda v: (str(type(v)), str(v)))


class CategoricalEncoder(ColumnEncoderMixin):
    """One-hot encode each column (a ``softmax`` group), or one 0/1 feature for two categories.

    Parameters
    ----------
    categories : "auto" or list of list, default="auto"
        ``"auto"``: the categories observed in the fit data (**derived from the data**; in the
        dtype's order for ``category`` columns, sorted otherwise).  A list (one list per
        column): exactly these categories, the data's category set is never read -- pass
        public (declared) categories here for privacy.
    min_frequency : int, float or None, default=None
        Categories seen fewer than ``min_frequency`` times (a count, or a fraction of the rows
        when a float in (0, 1)) are grouped into one ``infrequent`` output feature.  On
        inverse, that feature decodes to one of the grouped categories drawn uniformly at
        random (seeded by ``random_state``), so the round trip of rare categories is **not**
        exact.  No counts are stored.
    handle_unknown : {"error", "ignore"}, default="error"
        A value outside the categories at transform time raises :class:`EncodingError`
        (``"error"``) or encodes as all zeros (``"ignore"``).
    drop : {None, "if_binary"}, default=None
        ``"if_binary"``: a column with exactly two output features is encoded as one 0/1
        feature (1 = second category); this is how boolean columns are encoded.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of a category for the ``infrequent`` feature on inverse.  With an
        int, every ``inverse_transform`` call draws the same way.

    Attributes
    ----------
    categories_ : list of ndarray
        Categories of each column (all of them, frequent and infrequent).
    infrequent_categories_ : list of (ndarray or None)
        The grouped categories of each column (**derived from the data**: which categories
        are rare).
    output_index_ : list of ndarray of int
        For each column, the output feature of each category.
    binary_ : list of bool
        Whether the column is encoded as one 0/1 feature.
    n_features_out_, n_features_in_, feature_names_in_
        As usual.

    Notes
    -----
    Missing values are not a category here: they raise :class:`EncodingError`.
    :class:`~nhssynth.TableEncoder` gives each nullable column a separate
    ``missing`` indicator instead.  Inverse of arbitrary scores takes the argmax of each group
    (0.5 threshold for binary features); with ``min_frequency=None`` the round trip is exact.
    """

    _parameter_constraints: dict = {
        "categories": [StrOptions({"auto"}), list],  # one list per column, checked in fit
        "min_frequency": [Interval(Integral, 1, None, closed="left"),
                          Interval(Real, 0, 1, closed="neither"), None],
        "handle_unknown": [StrOptions({"error", "ignore"})],
        "drop": [StrOptions({"if_binary"}), None],
        "random_state": ["random_state"],
    }

    def __init__(self, categories: Any = "auto", *, min_frequency: int | float | None = None,
                 handle_unknown: str = "error", drop: str | None = None,
                 random_state: Any = None) -> None:
        self.categories = categories
        self.min_frequency = min_frequency
        self.handle_unknown = handle_unknown
        self.drop = drop
        self.random_state = random_state

    def _check_categories(self, n_features: int) -> None:
        if not (isinstance(self.categories, str) and self.categories == "auto"):
            if isinstance(self.categories, str) or len(self.categories) != n_features:
                raise ValueError(f"CategoricalEncoder: categories must be 'auto' or a list of "
                                 f"{n_features} lists (one per column), got {self.categories!r}.")

    @staticmethod
    def _as_series(col: Any) -> pd.Series:
        return col if isinstance(col, pd.Series) else pd.Series(col, copy=False)

    def fit(self, X: Any, y: Any = None) -> "CategoricalEncoder":
        """Learn (or take) the categories of each column.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Any hashable values; no missing values.
        y : None
            Ignored.
        """
        cols = self._input_columns(X, reset=True, numeric=False)
        self._validate_params()
        self._check_categories(len(cols))
        self.categories_, self.infrequent_categories_, self.output_index_, self.binary_ = [], [], [], []
        n_out = 0
        for j, col in enumerate(cols):
            s = self._as_series(col)
            self._check_no_missing(s, j)
            if isinstance(self.categories, str):
                try:
                    cats = _unique_sorted(s)
                except TypeError as exc:
                    raise TypeError(f"CategoricalEncoder: each value must be hashable (argument must "
                                    f"be a string or a number); column {self._name(j)!r}: {exc}.") from None
            else:
                cats = list(self.categories[j])
                if len(set(map(repr, cats))) != len(cats):
                    raise ValueError(f"CategoricalEncoder: categories of column {self._name(j)!r} "
                                     f"contain duplicates.")
            if len(cats) == 0:
                raise EncodingError(f"column {self._name(j)!r} has no categories; declare them "
                                    f"in the metadata or drop the column.")
            cats_arr = np.empty(len(cats), dtype=object)
            cats_arr[:] = cats
            if all(isinstance(c, Real) and not isinstance(c, (bool, np.bool_)) for c in cats):
                cats_arr = np.asarray(cats)
            self.categories_.append(cats_arr)
            codes = self._codes(s, j, fitting=True)
            infrequent = np.zeros(len(cats), dtype=bool)
            if self.min_frequency is not None:
                counts = np.bincount(codes[codes >= 0], minlength=len(cats))
                mf = self.min_frequency
                thresh = mf if isinstance(mf, Integral) else int(np.ceil(mf * len(s)))
                infrequent = counts < thresh
            n_freq = int((~infrequent).sum())
            index = np.empty(len(cats), dtype=np.int64)
            index[~infrequent] = np.arange(n_freq)
            index[infrequent] = n_freq
            width = n_freq + int(infrequent.any())
            self.output_index_.append(index)
            self.infrequent_categories_.append(cats_arr[infrequent] if infrequent.any() else None)
            binary = self.drop == "if_binary" and width == 2
            self.binary_.append(binary)
            n_out += 1 if binary else width
        self.n_features_out_ = n_out
        return self

    def _check_no_missing(self, s: pd.Series, j: int) -> None:
        if s.isna().any():
            raise EncodingError(
                f"column {self._name(j)!r} has missing values (NaN); CategoricalEncoder encodes "
                f"observed values only. Use TableEncoder (missing='augment'/'impute'/'drop') or "
                f"fill them.")
        if pd.api.types.is_float_dtype(s.dtype) and np.isinf(s.to_numpy(dtype=np.float64)).any():
            raise EncodingError(f"column {self._name(j)!r} holds infinite values (inf), which are "
                                f"not valid categories; replace them first.")

    def _lookup_index(self, j: int) -> tuple[pd.Index, bool]:
        """``categories_[j]`` as an Index, and whether they are all Python strings."""
        cats = self.categories_[j]
        all_str = cats.dtype == object and all(type(c) is str for c in cats)
        if all_str:  # an object Index: object-to-object lookups skip pandas' dtype checks
            return pd.Index(cats, dtype=object, copy=False, tupleize_cols=False), True
        return pd.Index(cats, tupleize_cols=False), False

    def _codes(self, s: pd.Series, j: int, fitting: bool = False,
               missing_ok: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray | None]:
        """Index of each value in ``categories_[j]``; -1 for unknown values (after the check).

        Missing values raise :class:`EncodingError` (checked only among the unmatched values,
        so the common case costs one hash lookup per value).  With ``missing_ok``, missing
        values get code -1 instead and ``(codes, missing)`` is returned, ``missing`` being
        the boolean mask of missing values (None when there is none).
        """
        cats, all_str = self._lookup_index(j)
        if isinstance(s.dtype, pd.CategoricalDtype):  # recode the codes, no hashing of values
            recode = np.append(cats.get_indexer(s.cat.categories), -1)
            codes = recode[s.cat.codes.to_numpy()]
        else:
            values = s.to_numpy()
            if all_str and values.dtype == object:
                # string categories: only str values can match, so look the values up as an
                # object Index (no dtype inference pass over the values, same matches)
                values = pd.Index(values, dtype=object, copy=False)
            codes = cats.get_indexer(values)
        codes = np.asarray(codes, dtype=np.int64)
        unknown = codes < 0
        missing = None
        if unknown.any():
            if missing_ok:  # missing values are not unknown values: mask them out
                where = np.flatnonzero(unknown)
                miss = np.asarray(pd.isna(s.iloc[where]), dtype=bool)
                if miss.any():
                    missing = np.zeros(len(codes), dtype=bool)
                    missing[where[miss]] = True
                    unknown[where[miss]] = False
            if unknown.any():
                self._check_no_missing(s[unknown], j)
                if self.handle_unknown == "error":
                    examples = pd.unique(s[unknown].to_numpy())[:5].tolist()
                    declared = not isinstance(self.categories, str) or fitting
                    where = ("not in its declared categories" if declared
                             else "not seen when the encoder was fitted")
                    raise EncodingError(
                        f"column {self._name(j)!r} has value(s) {examples} {where}; pass "
                        f"handle_unknown='ignore' (they are encoded as all zeros), or add them to "
                        f"the column's categories in the metadata (with domain: declared).")
        return (codes, missing) if missing_ok else codes

    def _output_columns(self, j: int, codes: np.ndarray) -> np.ndarray:
        """Output feature (within column ``j``'s block) of each code; -1 for code -1."""
        table = np.append(self.output_index_[j], -1)
        return table.astype(np.min_scalar_type(-len(table)))[codes]  # smallest int type

    def _width(self, j: int) -> int:
        return 1 if self.binary_[j] else int(self.output_index_[j].max()) + 1

    def transform(self, X: Any) -> np.ndarray:
        """One-hot encode (float64)."""
        check_is_fitted(self)
        cols = self._input_columns(X, reset=False, numeric=False)
        out = np.zeros((len(cols[0]), self.n_features_out_), dtype=np.float64)
        start = 0
        for j, col in enumerate(cols):
            width = self._width(j)
            self._encode_into(j, self._as_series(col), out[:, start:start + width])
            start += width
        return out

    def _encode_into(self, j: int, s: pd.Series, out: np.ndarray) -> None:
        codes = self._codes(s, j)
        # output feature of each category; -1 (unknown, handle_unknown="ignore") -> zero row
        col = self._output_columns(j, codes)
        if self.binary_[j]:
            out[:, 0] = (col == 1)
        else:
            width = out.shape[1]
            table = np.zeros((width + 1, width), dtype=out.dtype)
            table[np.arange(width), np.arange(width)] = 1.0
            for a in range(0, len(col), 8192):  # row -1 is the zero row; cache-sized copies
                out[a:a + 8192] = table[col[a:a + 8192]]

    def _neutral_row(self, j: int = 0) -> np.ndarray:
        """Encoding used for a missing value: the first category."""
        row = np.zeros(self._width(j))
        if not self.binary_[j]:
            row[0] = 1.0
        return row

    def _decode_codes(self, j: int, Z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Category index (into ``categories_[j]``) of each row of the block ``Z``."""
        col = (Z[:, 0] >= 0.5).astype(np.int64) if self.binary_[j] else np.argmax(Z, axis=1)
        index = self.output_index_[j]
        n_cols = int(index.max()) + 1
        rare_cat = (index == n_cols - 1) if self.infrequent_categories_[j] is not None \
            else np.zeros(len(index), dtype=bool)
        code_of = np.full(n_cols, -1, dtype=np.int64)
        code_of[index[~rare_cat]] = np.flatnonzero(~rare_cat)
        codes = code_of[col]
        rare = codes < 0
        if rare.any():  # the infrequent group: one of its categories, uniformly
            pool = np.flatnonzero(rare_cat)
            codes[rare] = pool[rng.integers(0, len(pool), size=int(rare.sum()))]
        return codes

    def _inverse_rng(self) -> np.random.Generator:
        return np.random.default_rng(spawn_seed(check_random_state(self.random_state)))

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode any scores of the right width (argmax per group, 0.5 threshold if binary).

        Returns
        -------
        ndarray of shape ``(n_samples, n_features_in_)``
            Categories (object dtype unless all columns have numeric categories).
        """
        Z = self._check_inverse_input(X)
        rng = self._inverse_rng()
        numeric = all(c.dtype != object for c in self.categories_)
        out = np.empty((Z.shape[0], self.n_features_in_), dtype=np.float64 if numeric else object)
        start = 0
        for j in range(self.n_features_in_):
            width = self._width(j)
            out[:, j] = self.categories_[j][self._decode_codes(j, Z[:, start:start + width], rng)]
            start += width
        return out

    def _feature_names_for(self, j: int, name: str) -> list[str]:
        cats = self.categories_[j]
        index = self.output_index_[j]
        names = [f"{name}__{cats[np.flatnonzero(index == k)[0]]}" for k in range(int(index.max()) + 1)]
        if self.infrequent_categories_[j] is not None:
            names[-1] = f"{name}__infrequent"
        return names[1:] if self.binary_[j] else names


def restore_categories(cats: np.ndarray, codes: np.ndarray, mask: np.ndarray | None,
                       dtype: Any) -> Any:
    """Category values ``cats[codes]`` as an array of ``dtype`` (categorical, numeric, bool,
    nullable boolean, object...), missing where ``mask``."""
    cats = np.asarray(cats) if not isinstance(cats, np.ndarray) else cats
    has_mask = mask is not None and bool(mask.any())
    if isinstance(dtype, pd.CategoricalDtype):
        remap = dtype.categories.get_indexer(pd.Index(cats, tupleize_cols=False))
        if (remap >= 0).all():
            new = remap[codes]
            if has_mask:
                new = np.where(mask, -1, new)
            return pd.Categorical.from_codes(new, dtype=dtype)
    values = cats[codes]
    if cats.dtype != object and pd.api.types.is_numeric_dtype(dtype):
        return finalize_numeric(values, mask, dtype, decimals=None, bounds=None)
    if np.dtype(bool) == dtype:
        return values.astype(bool)
    if pd.api.types.is_bool_dtype(dtype):  # nullable "boolean"
        return pd.arrays.BooleanArray(values.astype(bool), mask if has_mask else np.zeros(len(codes), bool))
    values = values.astype(object)
    if has_mask:
        values[mask] = np.nan
    if dtype == object:  # explicit, or pandas >= 3 would infer the "str" dtype
        return pd.Series(values, dtype=object, copy=False).to_numpy()
    return pd.array(values, dtype=dtype) if not isinstance(dtype, pd.CategoricalDtype) \
        else pd.Categorical(values, dtype=dtype)
