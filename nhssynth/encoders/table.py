"""TableEncoder: a mixed-type table <-> the numeric matrix a neural generator learns, exactly.

Each column is routed, from its :class:`~nhssynth.metadata.ColumnMetadata`, to one invertible
encoder (see ``docs/encoders.md``):

============  ==========================================  ==================================
kind          encoder                                     output spans (in order)
============  ==========================================  ==================================
continuous    GMMEncoder                                  continuous(1, "value"),
                                                          softmax(K, "mode")
integer       GMMEncoder, rounded and cast back           same as continuous
datetime      DatetimeEncoder (GMM or min-max on ticks)   same as continuous (min-max: only
                                                          the continuous span)
categorical   CategoricalEncoder                          softmax(n_categories, "category")
boolean       CategoricalEncoder(drop="if_binary")        binary(1, "value")
id            none (fresh ids 1..n on inverse)            no output
============  ==========================================  ==================================

A nullable column with ``missing="augment"`` (the default) is followed by a
``binary(1, "missing")`` span (1 = missing) -- for every kind, categoricals included (NaN is
*not* folded into the category group, so every column's missingness has the same form).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_array, check_is_fitted

from ..base import OutputSpan
from ..exceptions import EncodingError, MetadataError, MetadataWarning
from ..metadata import ColumnMetadata, Metadata, as_metadata, infer_column
from ..privacy.accounting import zcdp_rho_for
from ..table_source import TableSource
from ._base import all_missing, fresh_ids, spawn_seed
from .categorical import CategoricalEncoder, restore_categories
from .datetime import DatetimeEncoder
from .domain import data_statistics, impute_from_domain, public_metadata, release_domain
from .gmm import GMMEncoder
from .missing import missing_mask
from .numeric import decimals_hold, finalize_numeric

__all__ = ["TableEncoder"]

logger = logging.getLogger(__name__)

_DOMAIN_KEYS = ("categories", "bounds", "gmm_values", "gmm_weights")


@dataclass
class _Column:
    """Fitted routing of one column (internal)."""

    meta: ColumnMetadata
    encoder: Any = None
    augment: bool = False            # emits a "missing" indicator span
    impute_value: Any = None         # fill for missing="impute"
    decimals: int | None = None      # rounding on output (0 for integers)
    value_width: int = 0
    withheld: bool = False           # under DP nothing could be released: output missing
    spans: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def kind(self) -> str:
        return self.meta.kind


class TableEncoder(TransformerMixin, BaseEstimator):
    """Encode a mixed-type DataFrame to a float matrix and decode it back exactly.

    Parameters
    ----------
    metadata : Metadata, str, dict or None, default=None
        Column descriptions (a :class:`~nhssynth.Metadata`, a YAML path or a dict).  None:
        inferred from the DataFrame given to ``fit`` (categories marked ``domain: data``).
    gmm_components : int, default=10
        Maximum number of modes of each continuous/integer/datetime column.
    gmm_weight_threshold : float, default=0.005
        Modes lighter than this are dropped.
    gmm_max_fit_samples : int or None, default=10_000
        Each mixture is fitted on a seeded subsample of at most this many rows (all rows when
        None); the subsample is not kept.
    gmm_max_iter : int, default=100
        Variational EM iterations per mixture.
    datetime_method : {"gmm", "minmax"}, default="gmm"
        Continuous encoding of datetime columns.
    categorical_min_frequency : int, float or None, default=None
        Group categories rarer than this into one ``infrequent`` feature (not exact on
        inverse; see :class:`~nhssynth.transformers.CategoricalEncoder`).
    handle_unknown : {"error", "ignore"}, default="error"
        Unseen categories at transform: :class:`EncodingError`, or all-zero features.
    domains : dict or None, default=None
        Pre-computed (public or differentially private) statistics overriding those read from
        the data, per column: ``{"col": {"categories": [...], "bounds": (lo, hi),
        "gmm_values": array, "gmm_weights": array}}``.  ``gmm_values``/``gmm_weights`` is a
        weighted histogram the column's mixture is fitted on instead of the column.
    epsilon : float or None, default=None
        With a budget, every statistic the metadata does not declare -- category sets, bounds,
        the histograms the mixtures are fitted to, impute values -- comes from the DP domain
        release (:func:`~nhssynth.encoders.domain.release_domain`) at ``(epsilon, delta)``
        instead of the rows; values whose category was not released encode as no category,
        datetime columns are encoded min-max, and a column nothing could be released about
        is *withheld* (generated as missing).  ``domain_`` and ``privacy_spends_`` say what
        was released and what it cost.  None: statistics are read from the rows (listed in
        ``non_private_statistics_``).
    delta : float or None, default=None
        Delta of that release; None uses ``min(1e-5, 0.1 / n_rows)``.
    dtype : {"float32", "float64"}, default="float32"
        dtype of the encoded matrix.  float32 (what torch trains on) carries ~7 significant
        digits: integers, categories, booleans, missing flags, dates and values with few
        declared decimals still round-trip exactly; use float64 for the 1e-9 exactness of
        arbitrary floats.
    random_state : int, RandomState instance or None, default=None
        Seeds the GMM subsamples and initialisations (and the choice inside an infrequent
        category group on inverse).

    Attributes
    ----------
    metadata_ : Metadata
        The metadata actually used (inferred when ``metadata`` is None).
    column_encoders_ : dict
        Column name -> fitted encoder (:class:`GMMEncoder`, :class:`CategoricalEncoder`,
        :class:`DatetimeEncoder`...); None for ``id`` columns.
    output_spans_ : list of OutputSpan
        Contiguous blocks covering every output feature, in order.
    n_features_out_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        The metadata's column names (defined when fitted on a DataFrame).
    impute_values_ : dict
        Fill value of each ``missing="impute"`` column: the declared ``impute_value``, else
        the mean / mode of the data (**derived from the data**) or, with ``epsilon``, of the
        released histogram.
    domain_ : TableDomain or None
        The DP domain release (with ``epsilon``).
    privacy_spends_ : list of dict
        Ledger entries of that release (empty without ``epsilon``).
    non_private_statistics_ : list of str
        Statistics read from the rows without DP (empty with ``epsilon``).

    Notes
    -----
    **Privacy.** Statistics read from the data at fit time: category sets (unless declared
    or given in ``domains``), numeric/datetime bounds (unless declared ``min``/``max`` or
    given in ``domains``), mixture parameters (unless ``gmm_values`` given), datetime
    resolution, whether declared decimals hold (one bit), infrequent category groups and
    impute means/modes.  No row is stored.

    **Exactness.** ``inverse_transform(transform(df))`` equals ``df`` (columns, order,
    dtypes, categories, missing positions, integers, datetimes; floats within ~1e-9 of the
    column's magnitude) with ``dtype="float64"``, except: ``id`` columns (fresh ids),
    ``missing="impute"``/``"drop"`` columns, grouped infrequent categories, and values
    outside declared bounds (clipped).

    **Row dropping.** A transformer returns every row it receives, so rows missing a value in a
    ``missing="drop"`` column are an error here: :meth:`Metadata.drop_incomplete_rows` drops
    them (the generators and :class:`~nhssynth.SynthesisPipeline` call it before encoding).
    """

    _parameter_constraints: dict = {
        "metadata": [Metadata, str, Path, dict, None],
        "gmm_components": [Interval(Integral, 1, None, closed="left")],
        "gmm_weight_threshold": [Interval(Real, 0, 1, closed="left")],
        "gmm_max_fit_samples": [Interval(Integral, 2, None, closed="left"), None],
        "gmm_max_iter": [Interval(Integral, 1, None, closed="left")],
        "datetime_method": [StrOptions({"gmm", "minmax"})],
        "categorical_min_frequency": [Interval(Integral, 1, None, closed="left"),
                                      Interval(Real, 0, 1, closed="neither"), None],
        "handle_unknown": [StrOptions({"error", "ignore"})],
        "domains": [dict, None],
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "delta": [Interval(Real, 0, 1, closed="neither"), None],
        "dtype": "no_validation",  # float32 or float64, checked in fit (a type or a string)
        "random_state": ["random_state"],
    }

    def __init__(self, metadata: Metadata | str | Mapping | None = None, *,
                 gmm_components: int = 10, gmm_weight_threshold: float = 0.005,
                 gmm_max_fit_samples: int | None = 10_000, gmm_max_iter: int = 100,
                 datetime_method: str = "gmm", categorical_min_frequency: int | float | None = None,
                 handle_unknown: str = "error", domains: Mapping[str, Mapping] | None = None,
                 epsilon: float | None = None, delta: float | None = None,
                 dtype: Any = "float32", random_state: Any = None) -> None:
        self.metadata = metadata
        self.gmm_components = gmm_components
        self.gmm_weight_threshold = gmm_weight_threshold
        self.gmm_max_fit_samples = gmm_max_fit_samples
        self.gmm_max_iter = gmm_max_iter
        self.datetime_method = datetime_method
        self.categorical_min_frequency = categorical_min_frequency
        self.handle_unknown = handle_unknown
        self.domains = domains
        self.epsilon = epsilon
        self.delta = delta
        self.dtype = dtype
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------------------------------
    def _as_frame(self, X: Any, fitting: bool) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        if isinstance(X, pd.Series):
            return X.to_frame()
        if hasattr(X, "__array__") or isinstance(X, (list, tuple)) or sp.issparse(X):
            # arrays: sklearn's own validation (sparse, complex, empty, 1-D input messages)
            arr = check_array(X, dtype=None, ensure_all_finite=False, accept_sparse=False,
                              estimator=self)
            if fitting or not hasattr(self, "metadata_"):
                names = [f"x{j}" for j in range(arr.shape[1])]
            elif arr.shape[1] == len(self.metadata_):
                names = self.metadata_.names
            else:
                raise MetadataError(f"X has {arr.shape[1]} features, but TableEncoder is expecting "
                                    f"{len(self.metadata_)} features as input (columns "
                                    f"{self.metadata_.names}).")
            return pd.DataFrame(arr, columns=names)
        raise MetadataError(f"TableEncoder needs a pandas DataFrame, got {type(X).__name__}.")

    def _check_params(self) -> None:
        if np.dtype(self.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"TableEncoder: dtype must be float32 or float64, got {self.dtype!r}.")
        if self.domains is not None:
            if not isinstance(self.domains, Mapping):
                raise MetadataError("domains must be a dict: column -> {'categories'|'bounds'|"
                                    "'gmm_values'|'gmm_weights': ...}.")
            for col, spec in self.domains.items():
                if col not in self.metadata_:
                    raise MetadataError(f"domains names column {col!r}, which is not in the metadata "
                                        f"({self.metadata_.names}).")
                bad = set(spec) - set(_DOMAIN_KEYS)
                if bad:
                    raise MetadataError(f"domains[{col!r}] has unknown key(s) {sorted(bad)}; allowed: "
                                        f"{list(_DOMAIN_KEYS)}.")

    def _check_no_drop_rows(self, X: pd.DataFrame) -> None:
        cols = [c.name for c in self.metadata_ if c.missing == "drop" and c.name in X
                and X[c.name].isna().any()]
        if cols:
            raise EncodingError(
                f"column(s) {cols} have missing values and missing='drop', but a transformer "
                f"must return every row it receives: drop those rows first with "
                f"metadata.drop_incomplete_rows(df) (the generators and SynthesisPipeline do "
                f"this for you).")

    def _numeric_values(self, s: pd.Series, name: str) -> np.ndarray:
        if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
            raise EncodingError(
                f"column {name!r} is numeric in the metadata but has dtype {s.dtype}; convert it "
                f"(e.g. pd.to_numeric(df[{name!r}])) or fix its kind/dtype in the metadata.")
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(v).any():
            raise EncodingError(f"column {name!r} holds infinite values, which TableEncoder does "
                                f"not encode; the synthesizers model them as values of their own "
                                f"(constraint infinite_values), or replace them with NaN (missing) "
                                f"or a finite value before encoding.")
        return v

    def _domain(self, name: str) -> Mapping:
        return self._domains_.get(name, {})

    def _release(self, X: pd.DataFrame, md: Metadata) -> None:
        """The domains the column encoders use: DP-released with ``epsilon`` (merged under any
        given ``domains``), else the given ones; and what reading them cost."""
        self.domain_, self.privacy_spends_ = None, []
        self._domains_ = dict(self.domains or {})
        if self.epsilon is None:
            given = set(self._domains_)
            self.non_private_statistics_ = [s for s in data_statistics(md)
                                            if s.split(":")[0] not in given]
            return
        n = len(X)
        delta = self.delta if self.delta is not None else min(1e-5, 0.1 / n)
        undeclared = any(c.kind == "categorical" and not c.has_declared_categories for c in md)
        delta_threshold = 0.1 * delta if undeclared else 0.0
        rho = zcdp_rho_for(float(self.epsilon), delta - delta_threshold)
        noise = np.random.default_rng(spawn_seed(check_random_state(self.random_state)))
        self.domain_ = release_domain(X, md, rho=rho, delta_threshold=delta_threshold, rng=noise)
        self.privacy_spends_ = list(self.domain_.spends)
        self.non_private_statistics_ = []
        self._domains_ = {**self.domain_.encoder_domains(md), **self._domains_}
        self.metadata_ = impute_from_domain(md, self.domain_)

    # ------------------------------------------------------------------------------------------
    # fit
    # ------------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None) -> "TableEncoder":
        """Learn one encoder per column.

        Parameters
        ----------
        X : DataFrame or TableSource
            The real table (a 2-D array is accepted, with columns named ``x0, x1, ...``), or a
            :class:`~nhssynth.TableSource` over a table on disk: fitted one column at a time
            (and validated one batch of rows at a time), so memory holds one column; encode it
            with :meth:`transform` on its batches (``source.iter_frames()``).
        y : None
            Ignored.

        Returns
        -------
        self

        Raises
        ------
        MetadataError
            ``X`` does not match the metadata (missing/extra column, wrong values).
        EncodingError
            A column cannot be encoded (infinite values, non-numeric values in a numeric
            column...).
        """
        self._validate_params()
        if isinstance(X, TableSource):
            from_array = False
            md = self._source_metadata(X)
        else:
            from_array = not isinstance(X, (pd.DataFrame, pd.Series))
            X = self._as_frame(X, fitting=True)
            if self.metadata is None:
                md = Metadata.from_dataframe(X)
            else:
                md = as_metadata(self.metadata).copy()
                md.validate(X)
            self.metadata_ = md
            self._check_no_drop_rows(X)
        self.metadata_ = md
        self._check_params()
        rng = check_random_state(self.random_state)
        self._release(X, md)
        self._columns_: list[_Column] = []
        self.impute_values_ = {}
        for meta in self.metadata_:
            col = self._fit_column(meta, X[meta.name], spawn_seed(rng))
            self._columns_.append(col)
        # spans and names
        spans, names, start = [], [], 0
        for col in self._columns_:
            col.spans = []
            if col.encoder is not None:
                for kind, width, role in self._value_layout(col):
                    col.spans.append(OutputSpan(col.name, kind, start, width, role))
                    start += width
                names.extend(col.encoder._feature_names_for(0, col.name))
            if col.augment:
                col.spans.append(OutputSpan(col.name, "binary", start, 1, "missing"))
                names.append(f"{col.name}__missing")
                start += 1
            spans.extend(col.spans)
        self.output_spans_ = spans
        self.n_features_out_ = start
        self._feature_names_out_ = np.asarray(names, dtype=object)
        self.column_encoders_ = {c.name: c.encoder for c in self._columns_}
        self.n_features_in_ = len(md)
        if self.domain_ is not None:  # keep (and save) no category list read from the rows
            self.metadata_ = public_metadata(self.metadata_, self.domain_)
            for col in self._columns_:
                col.meta = self.metadata_[col.name]
        if not from_array:
            self.feature_names_in_ = np.asarray(md.names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def _source_metadata(self, source: TableSource) -> Metadata:
        """Metadata of a table on disk (given, or inferred one column at a time), with every
        batch of rows validated against it."""
        if self.metadata is None:
            md = Metadata([infer_column(source[name], name) for name in source.columns])
        else:
            md = as_metadata(self.metadata).copy()
        self.metadata_ = md
        for frame in source.iter_frames():
            md.validate(frame)
            self._check_no_drop_rows(frame)
        return md

    @staticmethod
    def _value_layout(col: _Column) -> list[tuple[str, int, str]]:
        enc = col.encoder
        if isinstance(enc, CategoricalEncoder):
            if enc.binary_[0]:
                return [("binary", 1, "value")]
            return [("softmax", enc._width(0), "category")]
        inner = enc.encoder_ if isinstance(enc, DatetimeEncoder) else enc
        if isinstance(inner, GMMEncoder):
            return [("continuous", 1, "value"), ("softmax", int(inner.n_modes_[0]), "mode")]
        return [("continuous", 1, "value")]

    def _impute_fill(self, meta: ColumnMetadata, s: pd.Series, mask: np.ndarray) -> Any:
        if meta.impute_value is not None:
            value = meta.impute_value
            if meta.kind == "datetime":
                value = pd.Timestamp(value)
                if meta.timezone is not None and value.tzinfo is None:
                    value = value.tz_localize(meta.timezone)
            return value
        obs = s[~mask]
        if len(obs) == 0:
            raise MetadataError(f"column {meta.name!r} is entirely missing; missing='impute' needs "
                                f"an impute_value in the metadata.")
        if meta.kind in ("continuous", "integer"):
            mean = float(self._numeric_values(obs, meta.name).mean())
            return round(mean) if meta.kind == "integer" else mean
        if meta.kind == "datetime":
            if not pd.api.types.is_datetime64_any_dtype(obs.dtype):
                return obs.mode().iloc[0]
            return obs.mean().floor("s") if obs.dt.unit != "ns" else obs.mean()
        return obs.mode().iloc[0]  # categorical / boolean: most frequent value

    def _fit_column(self, meta: ColumnMetadata, s: pd.Series, seed: int) -> _Column:
        name, kind = meta.name, meta.kind
        col = _Column(meta)
        if kind == "id":
            return col
        if self.domain_ is not None and name in self.domain_.columns \
                and self.domain_.columns[name].withheld:
            col.withheld = True  # nothing released about its values: generated as missing
            return col
        mask = missing_mask(s)
        if mask.any() and not meta.nullable:
            raise MetadataError(f"column {name!r} has missing values but the metadata says it has "
                                f"none; set nullable: true for it.")
        if mask.all() and self.epsilon is None and not self._domain(name):
            # entirely missing, fitted without DP: nothing to learn, generated as missing (under
            # DP the released missing share decides, never the raw rows)
            col.withheld = True
            return col
        if meta.nullable and meta.missing == "impute":
            fill = self._impute_fill(meta, s, mask)
            self.impute_values_[name] = fill
            col.impute_value = fill
            if mask.any():
                s = self._fillna(s, fill, name)
                mask = np.zeros(len(s), dtype=bool)
        col.augment = bool(meta.nullable and meta.missing == "augment")
        dom = self._domain(name)
        obs = s[~mask] if mask.any() else s
        all_missing = len(obs) == 0

        if kind in ("continuous", "integer"):
            values = self._numeric_values(obs, name)
            bounds = dom.get("bounds", (meta.min, meta.max))
            enc = GMMEncoder(self.gmm_components, weight_threshold=self.gmm_weight_threshold,
                             max_fit_samples=self.gmm_max_fit_samples, max_iter=self.gmm_max_iter,
                             bounds=bounds, random_state=seed)
            if "gmm_values" in dom:
                enc.fit(np.asarray(dom["gmm_values"], dtype=np.float64).reshape(-1, 1),
                        sample_weight=dom.get("gmm_weights"))
            elif all_missing:  # declared column that is entirely missing: any placeholder
                enc.fit(np.array([[next((b for b in bounds if b is not None), 0.0)]], dtype=np.float64))
            else:
                enc.fit(values.reshape(-1, 1))
            if kind == "integer":
                col.decimals = 0
            elif meta.decimals is not None:
                # decimals are those of (at least 99.9% of) the values, a float artefact such
                # as 1.5503000001405671 aside: output is rounded to them either way
                col.decimals = meta.decimals
                if self.metadata is not None and not decimals_hold(values, meta.decimals):
                    warnings.warn(
                        f"column {name!r}: some values have more than the declared {meta.decimals} "
                        f"decimals; they are rounded to {meta.decimals} on output (fix decimals "
                        f"in the metadata to keep them).", MetadataWarning, stacklevel=3)
        elif kind == "datetime":
            bounds = dom.get("bounds", (meta.min, meta.max))
            # under DP there is no data-fitted mixture for a datetime: min-max between the bounds
            method = "minmax" if self.domain_ is not None else self.datetime_method
            enc = DatetimeEncoder(method, n_components=self.gmm_components,
                                  weight_threshold=self.gmm_weight_threshold,
                                  max_fit_samples=self.gmm_max_fit_samples, max_iter=self.gmm_max_iter,
                                  bounds=None if bounds == (None, None) else bounds,
                                  datetime_format=meta.datetime_format, random_state=seed)
            if all_missing:
                lo = next((b for b in bounds if b is not None), "1970-01-01")
                placeholder = pd.Series([pd.Timestamp(lo)])
                if meta.datetime_format is not None:
                    placeholder = placeholder.dt.strftime(meta.datetime_format).astype(meta.pandas_dtype)
                else:
                    tz = getattr(meta.pandas_dtype, "tz", None)
                    if tz is not None and placeholder.dt.tz is None:
                        placeholder = placeholder.dt.tz_localize(tz)
                    placeholder = placeholder.astype(meta.pandas_dtype)
                obs = placeholder
            enc.fit(obs.to_frame(name))
        else:  # categorical / boolean
            if "categories" in dom:
                cats = list(dom["categories"])
            elif meta.has_declared_categories or (kind == "boolean" and meta.categories is not None):
                cats = list(meta.categories)
            elif kind == "boolean":
                cats = [False, True] if pd.api.types.is_bool_dtype(s.dtype) or s.dtype == object else [0, 1]
            else:
                cats = None
            if all_missing:
                if cats is None:
                    cats = list(meta.categories) if meta.categories else None
                if not cats:
                    raise EncodingError(f"column {name!r} is entirely missing and declares no "
                                        f"categories; declare them in the metadata or drop it.")
                obs = pd.Series([cats[0]], dtype=object)
            binary = kind == "boolean" and cats is not None and len(cats) == 2
            min_frequency = None if kind == "boolean" else self.categorical_min_frequency
            enc = CategoricalEncoder(
                categories="auto" if cats is None else [cats],
                min_frequency=min_frequency,
                # under DP a value whose category was not released encodes as no category
                handle_unknown="ignore" if "categories" in dom else self.handle_unknown,
                drop="if_binary" if binary else None,
                random_state=seed)
            if "categories" in dom and min_frequency is None and not all_missing:
                # the released categories are the whole fit (unknown values are ignored, no
                # frequencies are counted): fitting on them skips a pass over the rows (a
                # column of 10M strings cost 500 MB here out of core)
                obs = pd.Series(np.asarray(cats, dtype=object), name=name, dtype=object)
            enc.fit(obs.to_frame(name))
        col.encoder = enc
        col.value_width = enc._width(0)
        return col

    @staticmethod
    def _fillna(s: pd.Series, fill: Any, name: str) -> pd.Series:
        try:
            return s.fillna(fill)
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"column {name!r}: impute_value {fill!r} does not fit the column "
                                f"({exc}); fix impute_value in the metadata.") from None

    # ------------------------------------------------------------------------------------------
    # transform
    # ------------------------------------------------------------------------------------------
    def _check_columns(self, X: pd.DataFrame) -> None:
        names = self.metadata_.names
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise MetadataError(f"column(s) {missing} seen at fit time are missing from X; add them "
                                f"(same names as in the metadata).")
        extra = [c for c in X.columns if c not in self.metadata_]
        if extra:
            raise MetadataError(f"column(s) {extra} are not in the metadata the encoder was fitted "
                                f"with; drop them from X or refit with them in the metadata.")
        if X.columns.duplicated().any():
            raise MetadataError(f"duplicate column names {X.columns[X.columns.duplicated()].tolist()}.")

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Encode ``X`` into a C-contiguous 2-D matrix of ``dtype``.

        Raises
        ------
        MetadataError
            Missing or extra columns.
        EncodingError
            Unseen category (``handle_unknown="error"``), infinite values, wrong dtype,
            missing values in a column declared non-nullable.
        """
        check_is_fitted(self)
        X = self._as_frame(X, fitting=False)
        self._check_columns(X)
        self._check_no_drop_rows(X)
        n = len(X)
        # 1. every column to compact parts (column-wise work on 1-D arrays), 2. one chunked
        # pass over the row-major output writes them (each output row is touched once).
        parts = _Parts(self.dtype)
        for col in self._columns_:
            if col.encoder is None and not col.augment:
                continue
            self._encode_column(col, X[col.name], n, parts)
        out = np.zeros((n, self.n_features_out_), dtype=np.dtype(self.dtype))
        parts.write(out)
        return out

    def _encode_column(self, col: _Column, s: pd.Series, n: int, parts: "_Parts") -> None:
        first = col.spans[0].start
        enc = col.encoder
        if (col.kind in ("categorical", "boolean") and col.impute_value is None
                and not bool(np.any(pd.isna(enc.categories_[0])))):
            # codes of all rows at once; missing values (code -1) are found among the
            # unmatched values only (no isna pass over the column)
            try:
                if col.meta.nullable:
                    codes, mask = enc._codes(s, 0, missing_ok=True)
                else:
                    codes, mask = enc._codes(s, 0), None
            except EncodingError:
                raise
            except (TypeError, ValueError) as exc:
                self._raise_cannot_encode(col, s, exc)
            if mask is None and col.meta.nullable:
                mask = np.zeros(n, dtype=bool)
            cols = enc._output_columns(0, codes)
            if enc.binary_[0]:
                parts.scalar(first, cols == 1)      # missing: the neutral row is 0
            else:
                if mask is not None and mask.any():
                    cols[mask] = 0                  # missing: the neutral row, first feature
                parts.hot(first, cols)
            if col.augment:
                parts.scalar(col.spans[-1].start, mask)
            return
        if col.meta.nullable:
            mask = missing_mask(s)
            any_missing = bool(mask.any())
        else:  # missing values are caught by the value encoding (cheaper than an isna pass)
            mask, any_missing = None, False
        if any_missing and col.impute_value is not None:
            s = self._fillna(s, col.impute_value, col.name)
            mask, any_missing = np.zeros(n, bool), False
        if col.kind in ("continuous", "integer") and not any_missing:
            try:
                values = self._numeric_values(s, col.name)
                if np.isnan(values).any():
                    self._raise_non_nullable(col)
                scalar, k = enc._encode_codes(0, values)
            except EncodingError:
                raise
            except (TypeError, ValueError) as exc:
                self._raise_cannot_encode(col, s, exc)
            parts.scalar(first, scalar)
            parts.hot(first + 1, k)
        elif col.kind in ("continuous", "integer"):
            obs = s[~mask]
            try:
                values = self._numeric_values(obs, col.name)
                scalar, k = enc._encode_codes(0, values)
            except EncodingError:
                raise
            except (TypeError, ValueError) as exc:
                self._raise_cannot_encode(col, obs, exc)
            neutral = enc._neutral_row(0)
            full_scalar = np.full(n, neutral[0])
            full_scalar[~mask] = scalar
            full_k = np.full(n, int(np.argmax(neutral[1:])), dtype=k.dtype)
            full_k[~mask] = k
            parts.scalar(first, full_scalar)
            parts.hot(first + 1, full_k)
        else:
            block = np.zeros((n, col.value_width), dtype=np.dtype(self.dtype))
            if any_missing:
                tmp = np.zeros((n - int(mask.sum()), col.value_width))
                self._encode_values(col, s[~mask], tmp)
                block[~mask] = tmp
                block[mask] = enc._neutral_row(0)
            else:
                self._encode_values(col, s, block)
            parts.dense(first, block)
        if col.augment:
            parts.scalar(col.spans[-1].start, mask)

    def _encode_values(self, col: _Column, s: pd.Series, out: np.ndarray) -> None:
        enc = col.encoder
        try:
            if col.kind in ("continuous", "integer"):
                values = self._numeric_values(s, col.name)
                if np.isnan(values).any():
                    self._raise_non_nullable(col)
                enc._encode_into(0, values, out)
            elif col.kind == "datetime":
                if pd.api.types.is_datetime64_any_dtype(s.dtype) and s.isna().any():
                    self._raise_non_nullable(col)
                enc._encode_into(0, s, out)
            else:
                enc._encode_into(0, s, out)
        except EncodingError:
            raise
        except (TypeError, ValueError) as exc:
            self._raise_cannot_encode(col, s, exc)

    @staticmethod
    def _raise_cannot_encode(col: _Column, s: pd.Series, exc: Exception) -> None:
        raise EncodingError(f"column {col.name!r} cannot be encoded as {col.kind} "
                            f"(dtype {s.dtype}): {exc}. Check its dtype against the metadata "
                            f"({col.meta.dtype}).") from None

    @staticmethod
    def _raise_non_nullable(col: _Column) -> None:
        raise EncodingError(f"column {col.name!r} has missing values but was declared "
                            f"non-nullable; fill them or set nullable: true in the metadata.")

    # ------------------------------------------------------------------------------------------
    # inverse
    # ------------------------------------------------------------------------------------------
    def inverse_transform(self, Z: np.ndarray) -> pd.DataFrame:
        """Decode an encoded matrix -- or any model output of the right width -- to a table.

        Softmax groups take their argmax, binary features are thresholded at 0.5,
        continuous scalars are clipped to [-1, 1]; numeric values are clipped to the bounds,
        rounded to the column's decimals (integers to 0) and cast to the column dtype; a
        ``missing`` feature >= 0.5 makes the value missing (NaN, NaT or pd.NA).  ``id``
        columns get fresh ids ``1..n`` (or ``"id-000001"``... for string ids).

        Returns
        -------
        DataFrame
            The metadata's columns, in order, with their dtypes and a RangeIndex.
        """
        check_is_fitted(self)
        Z = np.asarray(Z)
        if Z.ndim != 2 or Z.shape[1] != self.n_features_out_:
            raise EncodingError(f"TableEncoder.inverse_transform expects a 2-D array with "
                                f"{self.n_features_out_} columns (n_features_out_), got shape {Z.shape}.")
        if not np.issubdtype(Z.dtype, np.number) and Z.dtype != bool:
            raise EncodingError(f"TableEncoder.inverse_transform expects numbers, got dtype {Z.dtype}.")
        if np.isnan(Z).any():
            raise EncodingError("TableEncoder.inverse_transform got NaN values; the model output "
                                "must be finite (check the generator for divergence).")
        n = Z.shape[0]
        data = {}
        for col in self._columns_:
            dtype = col.meta.pandas_dtype
            if col.kind == "id":
                data[col.name] = fresh_ids(n, dtype)
                continue
            if col.withheld:
                data[col.name] = all_missing(n, col.meta)
                continue
            mask = (Z[:, col.spans[-1].start] >= 0.5) if col.augment else None
            first = col.spans[0].start
            block = Z[:, first:first + col.value_width]  # a view: argmax needs no float64 copy
            enc = col.encoder
            if col.kind in ("continuous", "integer"):
                data[col.name] = finalize_numeric(enc._decode(0, block), mask, dtype,
                                                  decimals=col.decimals, bounds=tuple(enc.bounds_[0]))
            elif col.kind == "datetime":
                data[col.name] = enc._restore(0, enc._decode_ticks(0, block), mask)
            else:
                codes = enc._decode_codes(0, block, enc._inverse_rng())
                data[col.name] = restore_categories(enc.categories_[0], codes, mask, dtype)
        # Series with explicit dtypes: pandas >= 3 would turn object arrays of strings into "str"
        index = pd.RangeIndex(n)
        return pd.DataFrame({name: pd.Series(values, index=index, copy=False,
                                             dtype=object if getattr(values, "dtype", None) == object else None)
                             for name, values in data.items()}, index=index, columns=self.metadata_.names)

    # ------------------------------------------------------------------------------------------
    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Get the names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Checked against ``feature_names_in_`` when given.

        Returns
        -------
        ndarray of str
            ``"<column>__<part>"`` per output feature (value, modeK, category, missing...).
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features)
        return self._feature_names_out_.copy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.transformer_tags.preserves_dtype = []  # always returns `dtype` (float32 by default)
        return tags


class _Parts:
    """What ``TableEncoder.transform`` writes, column by column, before writing it row-major.

    ``scalar(c, v)``: output column ``c`` gets ``v``; ``hot(c, k)``: output column ``c + k`` of
    each row gets 1 (none where ``k`` is -1); ``dense(c, block)``: columns ``c, c + 1, ...``
    get ``block``.  :meth:`write` fills the matrix in row chunks that stay in cache.
    """

    _CHUNK_BYTES = 1 << 20

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.scalars: list = []
        self.hots: list = []
        self.dense_blocks: list = []

    def scalar(self, c: int, values: np.ndarray) -> None:
        if values.dtype.kind == "f":  # the output's dtype now: the same single rounding
            values = values.astype(self.dtype, copy=False)
        self.scalars.append((c, values))

    def hot(self, c: int, k: np.ndarray) -> None:
        k = np.asarray(k)
        self.hots.append((c, k, bool(len(k)) and int(k.min()) < 0))

    def dense(self, c: int, block: np.ndarray) -> None:
        self.dense_blocks.append((c, block))

    def write(self, out: np.ndarray) -> None:
        n, width = out.shape
        if n == 0 or width == 0:
            return
        flat = out.reshape(-1)
        rows = max(1, self._CHUNK_BYTES // (width * out.itemsize))
        row_start = np.arange(min(rows, n), dtype=np.intp) * width
        for a in range(0, n, rows):
            b = min(n, a + rows)
            sub = out[a:b]
            sub_flat = flat[a * width:b * width]
            base = row_start[:b - a]
            for c, v in self.scalars:
                sub[:, c] = v[a:b]
            for c, k, has_none in self.hots:
                idx = base + k[a:b]
                if has_none:
                    keep = k[a:b] >= 0
                    sub_flat[idx[keep] + c] = 1
                else:
                    idx += c
                    sub_flat[idx] = 1
            for c, block in self.dense_blocks:
                sub[:, c:c + block.shape[1]] = block[a:b]
