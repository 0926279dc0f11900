"""Table metadata: what each column is, inferred from a DataFrame or declared in YAML.

The metadata is the *schema* of a table, which nhssynth treats as public: column names, kinds,
dtypes, whether a column may be missing, and (optionally) declared public domains such as the
full category list or ``min``/``max`` bounds.  Anything else (e.g. the categories seen in the
data) is marked ``domain: data``: it was read from the real rows and is *not* public, so the
privacy-aware encoders never reuse it without spending budget (see ``docs/privacy.md``).
"""
from __future__ import annotations

import logging

import bz2
import copy
import csv
import dataclasses
import gzip
import io
import lzma
import math
import numbers
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from .constraints import Constraint, ConstraintPlan, InfiniteValues, constraint_from_dict
from .exceptions import MetadataError, MetadataWarning

__all__ = ["ColumnMetadata", "Metadata", "KINDS", "MISSING_STRATEGIES", "read_csv_frame",
           "sniff_delimiter"]

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime", "id")
logger = logging.getLogger(__name__)

MISSING_STRATEGIES = ("augment", "impute", "drop")
DOMAIN_SOURCES = ("declared", "data")
_FORMAT_VERSION = 1
_ID_NAME = re.compile(r"(^|[_.\s-])(id|no|sno|num|number|key|uuid|guid)$|^id[_.\s-]|^(sno|uuid|guid)$",
                      re.IGNORECASE)
_MAX_DECIMALS = 6
# Decimals are inferred from the bulk of a column, not its single worst value: the smallest d such
# that at least _DECIMALS_SHARE of the values have at most d decimals (one float artefact such as
# 1.521312232748112 among 4-decimal values must not switch rounding off).
_DECIMALS_SHARE = (999, 1000)  # 99.9%, as an exact fraction
# A text column is inferred as kind "id" (an identifier or free text, not modelled) when more than
# _TEXT_ID_SHARE of its non-missing values are distinct and it has at least _TEXT_ID_MIN_DISTINCT
# distinct values.  Above that share the average value occurs fewer than twice: nothing repeats
# enough to be learnt (under DP such rare categories are suppressed anyway), while one-hot
# encoding costs one feature per distinct value.  The floor keeps small tables' genuine
# categoricals (a few dozen codes in a few dozen rows: cheap to encode) categorical; they get a
# MetadataWarning instead.
_TEXT_ID_SHARE = 0.5
_TEXT_ID_MIN_DISTINCT = 50
# candidate CSV delimiters for sniffing, and how much of the file the sniffer reads
CSV_DELIMITERS = ",;\t|"
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 50


def _to_builtin(value: Any) -> Any:
    """Numpy/pandas scalars -> plain Python values that YAML can represent exactly."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return str(value)  # numpy.str_ -> str (YAML cannot represent it)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    return value


@dataclass
class ColumnMetadata:
    """Description of one column.

    Parameters
    ----------
    name : str
        Column name.
    kind : {"continuous", "integer", "categorical", "boolean", "datetime", "id"}
        How the column is modelled.  ``id`` columns are unique per row and are never learnt:
        synthetic rows get fresh sequential identifiers.
    dtype : str
        The pandas dtype to restore (``"float64"``, ``"Int64"``, ``"category"``, ``"bool"``,
        ``"datetime64[ns, UTC]"``, ``"object"``...).
    nullable : bool
        Whether the column may hold missing values (NaN / NaT / pd.NA).
    categories : list, optional
        Category list for categorical/boolean columns.
    ordered : bool
        Whether a ``category`` dtype is ordered.
    min, max : number or str (ISO datetime), optional
        Public bounds.  Values outside them are invalid; encoders clip synthetic values to them.
    decimals : int, optional
        Number of decimals numeric values are rounded to on output.
    datetime_format : str, optional
        ``strftime`` format of datetimes stored as strings (``None`` for datetime64 columns).
    timezone : str, optional
        Time zone of a tz-aware datetime column.
    missing : {"augment", "impute", "drop"}
        What to do with missing values: model them with an indicator (``augment``, default),
        fill them with ``impute_value`` (so synthetic data has none), or drop those rows.
    impute_value : scalar, optional
        Fill value for ``missing="impute"``; ``None`` means the column mean/mode.
    domain : {"declared", "data"}
        Where ``categories``/``min``/``max`` come from.  ``declared`` values are public
        knowledge (spend no privacy budget); ``data`` values were read from the real rows and
        are only used by non-private encoders.
    """

    name: str
    kind: str
    dtype: str
    nullable: bool = False
    categories: list | None = None
    ordered: bool = False
    min: Any = None
    max: Any = None
    decimals: int | None = None
    datetime_format: str | None = None
    timezone: str | None = None
    missing: str = "augment"
    impute_value: Any = None
    domain: str = "declared"

    def __post_init__(self) -> None:
        self.check()

    # -- validation of the metadata itself -------------------------------------------------
    def check(self) -> None:
        """Raise :class:`MetadataError` if the declaration is inconsistent."""
        where = f"column {self.name!r}"
        if not isinstance(self.name, str):
            raise MetadataError(f"{where}: column names must be strings, got {type(self.name).__name__}.")
        if self.kind not in KINDS:
            raise MetadataError(f"{where}: unknown kind {self.kind!r}; use one of {', '.join(KINDS)}.")
        if self.missing not in MISSING_STRATEGIES:
            raise MetadataError(
                f"{where}: unknown missing strategy {self.missing!r}; use one of {', '.join(MISSING_STRATEGIES)}.")
        if self.domain not in DOMAIN_SOURCES:
            raise MetadataError(f"{where}: domain must be 'declared' or 'data', got {self.domain!r}.")
        try:
            self.pandas_dtype
        except (TypeError, ValueError) as exc:
            raise MetadataError(f"{where}: {self.dtype!r} is not a pandas dtype ({exc}).") from None
        if self.categories is not None:
            if not isinstance(self.categories, (list, tuple)):
                raise MetadataError(f"{where}: categories must be a list.")
            self.categories = [_to_builtin(c) for c in self.categories]
            if len(set(map(repr, self.categories))) != len(self.categories):
                raise MetadataError(f"{where}: categories contain duplicates.")
        if self.kind == "categorical" and self.dtype == "category" and self.categories is None:
            raise MetadataError(f"{where}: a 'category' dtype needs its categories listed.")
        if self.kind in ("continuous", "integer", "datetime") and self.min is not None \
                and self.max is not None:
            lo, hi = self.bounds()
            if lo > hi:
                raise MetadataError(f"{where}: min ({self.min}) is greater than max ({self.max}).")
        if self.decimals is not None and (not isinstance(self.decimals, int) or self.decimals < 0):
            raise MetadataError(f"{where}: decimals must be a non-negative integer.")

    # -- derived views ---------------------------------------------------------------------
    @property
    def pandas_dtype(self):
        """The pandas dtype object (``CategoricalDtype`` with its categories for ``category``)."""
        if self.dtype == "category":
            cats = self.categories if self.categories is not None else []
            return pd.CategoricalDtype(categories=cats, ordered=self.ordered)
        return pd.api.types.pandas_dtype(self.dtype)

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("continuous", "integer")

    def bounds(self) -> tuple[Any, Any]:
        """Declared ``(min, max)``; datetimes as tz-aware/naive ``pd.Timestamp``."""
        if self.kind == "datetime":
            conv = (lambda v: None if v is None else pd.Timestamp(v))
            lo, hi = conv(self.min), conv(self.max)
            if self.timezone is not None:
                lo = lo if lo is None or lo.tzinfo is not None else lo.tz_localize(self.timezone)
                hi = hi if hi is None or hi.tzinfo is not None else hi.tz_localize(self.timezone)
            return lo, hi
        return self.min, self.max

    @property
    def has_declared_categories(self) -> bool:
        return self.categories is not None and self.domain == "declared"

    @property
    def has_declared_bounds(self) -> bool:
        return self.min is not None and self.max is not None and self.domain == "declared"

    def to_dict(self) -> dict:
        """Plain-dict form (only non-default fields besides name/kind/dtype)."""
        out: dict[str, Any] = {"kind": self.kind, "dtype": self.dtype}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for f in dataclasses.fields(self):
            if f.name in ("name", "kind", "dtype"):
                continue
            value = getattr(self, f.name)
            if f.name == "categories" and value is not None:
                value = [_to_builtin(v) for v in value]
            elif f.name in ("min", "max", "impute_value"):
                value = _to_builtin(value)
            if value != defaults[f.name] or f.name == "nullable":
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, name: str, spec: Mapping[str, Any]) -> "ColumnMetadata":
        if not isinstance(spec, Mapping):
            raise MetadataError(f"column {name!r}: expected a mapping of fields, got {spec!r}.")
        known = {f.name for f in dataclasses.fields(cls)} - {"name"}
        unknown = set(spec) - known
        if unknown:
            raise MetadataError(
                f"column {name!r}: unknown field(s) {sorted(unknown)}; allowed fields are {sorted(known)}.")
        for required in ("kind", "dtype"):
            if required not in spec:
                raise MetadataError(f"column {name!r}: field {required!r} is required.")
        return cls(name=name, **dict(spec))


# --------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------
def _value_family(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, numbers.Number):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "isoformat"):
        return "datetime"
    return type(v).__name__


def _infer_decimals(values: np.ndarray) -> int | None:
    """Decimals that represent the bulk of a float column: the smallest ``d`` (<= 6) such that at
    least 99.9% of the finite values have at most ``d`` decimals, else None.

    A value "has at most ``d`` decimals" when rounding it to ``d`` decimals moves it by no more
    than 1e-9 relative (the encoder's criterion).  The few values beyond (float artefacts such as
    ``1.521312232748112`` in a 4-decimal column) are rounded on output; declare ``decimals`` in
    the metadata to choose otherwise (``decimals: null`` for no rounding).
    """
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    need_num, need_den = _DECIMALS_SHARE
    scale = np.maximum(np.abs(values), 1e-300)
    for d in range(_MAX_DECIMALS + 1):
        ok = int(np.count_nonzero(np.abs(np.round(values, d) - values) <= 1e-9 * scale))
        if ok * need_den >= need_num * values.size:
            return d
    return None


def _guess_datetime_format(values: pd.Series, name: str) -> str | None:
    """Return a strftime format that parses *every* string in ``values``, or None.

    Raises :class:`MetadataError` when the strings are datetimes with different UTC offsets (a
    mixture of time zones, e.g. local time across a daylight-saving change).
    """
    from pandas.tseries.api import guess_datetime_format

    first = values.iloc[0]
    if not isinstance(first, str) or len(first) < 6 or not any(ch.isdigit() for ch in first):
        return None
    fmt = guess_datetime_format(str(first))  # str(): numpy.str_ is rejected
    if fmt is None:
        return None
    try:
        parsed = pd.to_datetime(values.map(str), format=fmt, errors="raise")  # numpy.str_
        if parsed.dtype == object:  # pandas 2: mixed UTC offsets give objects, not an error
            raise ValueError("mixed time zones")
    except (ValueError, TypeError):
        if "%z" in fmt and _parses_as_utc(values, fmt):
            raise MetadataError(_mixed_tz_message(name, "UTC offsets",
                                                  _offset_examples(values, fmt))) from None
        return None
    # must round-trip exactly, otherwise we would lose information on output
    if not (parsed.dt.strftime(fmt) == values).all():
        return None
    return fmt


def _parses_as_utc(values: pd.Series, fmt: str | None) -> bool:
    """Whether ``values`` parse as datetimes once converted to UTC (so only their zones differ)."""
    try:
        pd.to_datetime(values, format=fmt, utc=True, errors="raise")
    except (ValueError, TypeError):
        return False
    return True


def _offset_examples(values: pd.Series, fmt: str) -> str:
    """Up to three values with different UTC offsets."""
    seen: dict[Any, str] = {}
    for v in values.drop_duplicates().iloc[:2000]:
        try:
            offset = pd.to_datetime(v, format=fmt).utcoffset()
        except (ValueError, TypeError):
            continue
        seen.setdefault(offset, v)
        if len(seen) == 3:
            break
    return ", ".join(repr(v) for v in seen.values())


def _mixed_tz_message(name: str, what: str, examples: str) -> str:
    return (f"column {name!r} mixes time zones ({what}: {examples}); a datetime column needs a "
            f"single time zone. Convert it first: df[{name!r}] = pd.to_datetime(df[{name!r}], "
            f"utc=True), then .dt.tz_convert('Europe/London') if you want local time (naive "
            f"values are read as UTC).")


def _check_one_time_zone(nonnull: pd.Series, name: str) -> str | None:
    """Time zone shared by datetime objects (None if naive); MetadataError if they differ."""
    zones = {str(tz) if tz is not None else "naive"
             for tz in (getattr(v, "tzinfo", None) for v in nonnull)}
    if len(zones) > 1:
        raise MetadataError(_mixed_tz_message(name, "zones", ", ".join(sorted(zones))))
    zone = zones.pop()
    return None if zone == "naive" else zone


def _looks_like_id(series: pd.Series, nonnull: pd.Series, name: str) -> bool:
    n = len(series)
    if n < 10 or len(nonnull) != n or not nonnull.is_unique:
        return False
    if _ID_NAME.search(name):
        return True
    if pd.api.types.is_integer_dtype(nonnull.dtype):
        vals = np.sort(nonnull.to_numpy(dtype=np.int64))
        return bool(vals[-1] - vals[0] == n - 1)  # a consecutive range: a row counter
    return pd.api.types.is_string_dtype(nonnull.dtype) or nonnull.map(type).eq(str).all()


def infer_column(series: pd.Series, name: str) -> ColumnMetadata:
    """Infer the :class:`ColumnMetadata` of one column (see :meth:`Metadata.from_dataframe`)."""
    dtype = series.dtype
    dtype_str = str(dtype)
    nonnull = series.dropna()
    nullable = bool(len(nonnull) < len(series))
    if len(nonnull) == 0:
        return _infer_all_missing(series, name)

    if pd.api.types.is_bool_dtype(dtype):
        return ColumnMetadata(name, "boolean", dtype_str, nullable, categories=[False, True])
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        tz = str(dtype.tz) if getattr(dtype, "tz", None) is not None else None
        return ColumnMetadata(name, "datetime", dtype_str, nullable, timezone=tz)
    if isinstance(dtype, pd.CategoricalDtype):
        cats = [_to_builtin(c) for c in dtype.categories]
        return ColumnMetadata(name, "categorical", "category", nullable, categories=cats,
                              ordered=bool(dtype.ordered), domain="data")
    if pd.api.types.is_numeric_dtype(dtype):
        values = nonnull.to_numpy(dtype=np.float64)
        # infinite values are values of their own (Metadata.from_dataframe adds an
        # ``infinite_values`` rule); the column is described by its finite ones
        values = values[np.isfinite(values)]
        if values.size == 0:
            return ColumnMetadata(name, "continuous", dtype_str, nullable)
        uniques = np.unique(values)
        if len(uniques) == 2 and set(uniques.tolist()) == {0.0, 1.0}:
            return ColumnMetadata(name, "boolean", dtype_str, nullable, categories=[0, 1])
        if pd.api.types.is_integer_dtype(dtype):
            if _looks_like_id(series, nonnull, name):
                return ColumnMetadata(name, "id", dtype_str, nullable)
            return ColumnMetadata(name, "integer", dtype_str, nullable)
        if np.all(values == np.round(values)):
            return ColumnMetadata(name, "integer", dtype_str, nullable)
        return ColumnMetadata(name, "continuous", dtype_str, nullable, decimals=_infer_decimals(values))

    # object / string columns
    if pd.api.types.infer_dtype(nonnull, skipna=True) == "string":  # all str: one pass in C
        families = {"str"}
    else:
        families = set(nonnull.map(_value_family).unique())
    if len(families) > 1:
        examples = {fam: next(v for v in nonnull if _value_family(v) == fam) for fam in sorted(families)}
        raise MetadataError(
            f"column {name!r} mixes value types {sorted(families)} (e.g. {examples}); cast it to "
            f"one type first, e.g. df[{name!r}] = df[{name!r}].astype(str) for a categorical.")
    family = families.pop()
    if family == "datetime":
        _check_one_time_zone(nonnull, name)
        return ColumnMetadata(name, "datetime", dtype_str, nullable)
    n_distinct = int(nonnull.nunique())
    if family == "str":
        fmt = _guess_datetime_format(nonnull, name)
        if fmt is not None:
            return ColumnMetadata(name, "datetime", dtype_str, nullable, datetime_format=fmt)
        unique_id = _looks_like_id(series, nonnull, name)
        if unique_id or _is_near_unique_text(n_distinct, len(nonnull)):
            if not (unique_id and _ID_NAME.search(name)):  # an id-like name says it all
                _warn_text_id(name, n_distinct, len(nonnull))
            return ColumnMetadata(name, "id", dtype_str, nullable)
    if n_distinct > 0.5 * len(series) and len(series) >= 20:
        warnings.warn(
            f"column {name!r} has {n_distinct} distinct values in {len(series)} rows; it is treated "
            f"as categorical. If it is free text or an identifier, drop it or declare kind: id "
            f"(Metadata.from_dataframe(df, kinds={{{name!r}: 'id'}}) or kind: id in the YAML).",
            MetadataWarning, stacklevel=3)
    cats = sorted({_to_builtin(v) for v in nonnull.unique()}, key=lambda v: (str(type(v)), v))
    return ColumnMetadata(name, "categorical", dtype_str, nullable, categories=cats, domain="data")


def _is_near_unique_text(n_distinct: int, n_nonnull: int) -> bool:
    """The rule for identifiers and free text (see ``_TEXT_ID_SHARE``)."""
    return n_distinct >= _TEXT_ID_MIN_DISTINCT and n_distinct > _TEXT_ID_SHARE * n_nonnull


def _infer_all_missing(series: pd.Series, name: str) -> ColumnMetadata:
    """An entirely missing column: its kind from its dtype alone (there are no values to look
    at), nullable, no categories or bounds.  Nothing can be learnt about its values, so every
    generator returns it entirely missing (kept, not dropped: the output has the input's
    columns)."""
    dtype = series.dtype
    dtype_str = str(dtype)
    if len(series) == 0:
        raise MetadataError(f"column {name!r} has no rows, so its kind cannot be inferred.")
    if pd.api.types.is_bool_dtype(dtype):
        meta = ColumnMetadata(name, "boolean", dtype_str, True, categories=[False, True])
    elif isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        tz = str(dtype.tz) if getattr(dtype, "tz", None) is not None else None
        meta = ColumnMetadata(name, "datetime", dtype_str, True, timezone=tz)
    elif isinstance(dtype, pd.CategoricalDtype):
        meta = ColumnMetadata(name, "categorical", "category", True,
                              categories=[_to_builtin(c) for c in dtype.categories] or None,
                              ordered=bool(dtype.ordered), domain="data")
    elif pd.api.types.is_integer_dtype(dtype):
        meta = ColumnMetadata(name, "integer", dtype_str, True)
    elif pd.api.types.is_numeric_dtype(dtype):
        meta = ColumnMetadata(name, "continuous", dtype_str, True)
    else:  # object / str: no values to say which; nothing is encoded for it either way
        meta = ColumnMetadata(name, "categorical", dtype_str, True)
    warnings.warn(
        f"column {name!r} is entirely missing: it is kept as a nullable {meta.kind} column (from "
        f"its dtype {dtype_str}) and comes back entirely missing, since there is nothing to learn "
        f"about its values. Drop it if it is not needed, or declare its kind in the metadata.",
        MetadataWarning, stacklevel=4)
    return meta


def _warn_text_id(name: str, n_distinct: int, n_nonnull: int) -> None:
    warnings.warn(
        f"column {name!r} has {n_distinct:,} distinct values in {n_nonnull:,} non-missing rows "
        f"({n_distinct / n_nonnull:.0%}): it looks like an identifier or free text, so it is "
        f"inferred as kind 'id': not modelled, and synthetic rows get fresh placeholder ids "
        f"('id-000001', ...). If it is a category, override the kind: "
        f"Metadata.from_dataframe(df, kinds={{{name!r}: 'categorical'}}) or kind: categorical "
        f"in the metadata YAML.", MetadataWarning, stacklevel=4)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
def _check_frame_structure(df: Any, action: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise MetadataError(f"{action} needs a pandas DataFrame, got {type(df).__name__}.")
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad:
        raise MetadataError(
            f"column names must be strings; found {bad[:5]!r}. Rename them, e.g. "
            f"df.columns = df.columns.astype(str).")
    dup = df.columns[df.columns.duplicated()].unique().tolist()
    if dup:
        raise MetadataError(f"duplicate column names {dup!r}; rename them so each is unique.")


@dataclass
class Metadata:
    """Ordered collection of :class:`ColumnMetadata` describing a table.

    Examples
    --------
    >>> import pandas as pd
    >>> from nhssynth import Metadata
    >>> md = Metadata.from_dataframe(pd.DataFrame({"age": [30.5, 41.0, None], "sex": ["F", "M", "F"]}))
    >>> md["age"].kind, md["sex"].kind
    ('continuous', 'categorical')
    """

    columns: list[ColumnMetadata] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.columns = list(self.columns)
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise MetadataError(f"metadata declares column(s) {dup} more than once.")
        if not isinstance(self.constraints, (list, tuple)):
            raise MetadataError("constraints must be a list of constraints (see "
                                "docs/constraints.md).")
        self.constraints = [constraint_from_dict(c) for c in self.constraints]
        if self.constraints:
            ConstraintPlan(self.constraints).check({c.name: c for c in self.columns})

    # -- container protocol ----------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> ColumnMetadata:
        for col in self.columns:
            if col.name == name:
                return col
        raise MetadataError(f"no column {name!r} in metadata; known columns: {self.names}.")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[ColumnMetadata]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def copy(self) -> "Metadata":
        return Metadata([dataclasses.replace(c, categories=None if c.categories is None else list(c.categories))
                         for c in self.columns], [copy.copy(c) for c in self.constraints])

    def select(self, names: Sequence[str]) -> "Metadata":
        """Metadata restricted to ``names`` (in that order).

        Only the constraints on those columns are kept.
        """
        keep = set(names)
        return Metadata([dataclasses.replace(self[n]) for n in names],
                        [copy.copy(c) for c in self.constraints if set(c.columns) <= keep])

    def update(self, name: str, **changes: Any) -> "Metadata":
        """Return a copy with ``changes`` applied to column ``name``."""
        new = self.copy()
        idx = new.names.index(self[name].name)
        new.columns[idx] = dataclasses.replace(new.columns[idx], **changes)
        return new

    # -- inference -------------------------------------------------------------------------
    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, *, kinds: Mapping[str, str] | None = None) -> "Metadata":
        """Infer metadata from a DataFrame.

        Per column: kind, dtype, whether missing values occur, categories (marked
        ``domain: data`` because they were read from the rows), decimals for floats, datetime
        format and time zone.  A column unique per row that looks like a row identifier is
        flagged ``kind: id``.  Bounds (``min``/``max``) are never inferred: declare them, or let
        the DP encoders estimate them under the privacy budget.

        Parameters
        ----------
        df : DataFrame
        kinds : dict, optional
            Override the inferred kind of some columns, e.g. ``{"postcode": "categorical"}``.

        Raises
        ------
        MetadataError
            Empty frame, duplicate or non-string column names, an all-missing column, a column
            mixing value types, or infinite values.
        """
        _check_frame_structure(df, "Metadata.from_dataframe")
        if df.shape[1] == 0:
            raise MetadataError("the DataFrame has no columns; there is nothing to describe.")
        if df.shape[0] == 0:
            raise MetadataError("the DataFrame has no rows; metadata cannot be inferred from an "
                                "empty table (declare it in YAML instead).")
        kinds = dict(kinds or {})
        unknown = set(kinds) - set(df.columns)
        if unknown:
            raise MetadataError(f"kinds= names unknown column(s) {sorted(unknown)}.")
        cols, rules = [], []
        for name in df.columns:
            col = infer_column(df[name], name)
            if name in kinds and kinds[name] != col.kind:
                col = _override_kind(col, kinds[name], df[name])
            cols.append(col)
            signs = _infinite_signs(df[name]) if col.kind in ("continuous", "integer") else []
            if signs:
                rules.append(InfiniteValues(name, signs))
                warnings.warn(f"column {name!r} holds {' and '.join(signs)}: they are modelled as "
                              f"values of their own (constraint infinite_values; which of them "
                              f"occur is read from the rows, like nullability).",
                              MetadataWarning, stacklevel=2)
        return cls(cols, rules)

    # -- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {"nhssynth_metadata": _FORMAT_VERSION,
               "columns": {c.name: c.to_dict() for c in self.columns}}
        if self.constraints:
            out["constraints"] = [c.to_dict() for c in self.constraints]
        return out

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> "Metadata":
        if not isinstance(spec, Mapping) or "columns" not in spec:
            raise MetadataError("metadata must be a mapping with a 'columns' key "
                                "(see docs/user_guide.md#metadata).")
        version = spec.get("nhssynth_metadata", _FORMAT_VERSION)
        if version != _FORMAT_VERSION:
            raise MetadataError(f"metadata format version {version} is not supported (expected {_FORMAT_VERSION}).")
        extra = set(spec) - {"columns", "nhssynth_metadata", "constraints"}
        if extra:
            raise MetadataError(f"unknown top-level metadata key(s) {sorted(extra)}.")
        columns = spec["columns"]
        if not isinstance(columns, Mapping) or not columns:
            raise MetadataError("'columns' must be a non-empty mapping of column name -> fields.")
        constraints = spec.get("constraints") or []
        if not isinstance(constraints, list):
            raise MetadataError("'constraints' must be a list of mappings with a 'type' key "
                                "(see docs/constraints.md).")
        return cls([ColumnMetadata.from_dict(str(name), fields or {}) for name, fields in columns.items()],
                   constraints)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Write the metadata as YAML to ``path`` (and return the text)."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> "Metadata":
        """Read metadata from a YAML file path (or from YAML text containing a newline)."""
        if isinstance(path_or_text, Path) or "\n" not in str(path_or_text):
            path = Path(path_or_text)
            if not path.exists():
                raise MetadataError(f"metadata file {str(path)!r} does not exist.")
            text = path.read_text(encoding="utf-8")
        else:
            text = str(path_or_text)
        try:
            spec = yaml.safe_load(io.StringIO(text))
        except yaml.YAMLError as exc:
            raise MetadataError(f"metadata is not valid YAML: {exc}") from None
        return cls.from_dict(spec)

    # -- validation and dtype coercion -----------------------------------------------------
    def drop_incomplete_rows(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` without the rows missing a value in a ``missing="drop"`` column.

        A transformer must return as many rows as it receives, so encoders never drop rows:
        the generators (on a DataFrame) and :class:`~nhssynth.SynthesisPipeline` call this
        before encoding.  Each drop is logged (WARNING, logger ``nhssynth.metadata``).

        Parameters
        ----------
        df : DataFrame

        Returns
        -------
        DataFrame
            ``df`` itself when nothing is dropped.
        """
        cols = [c.name for c in self.columns if c.missing == "drop" and c.name in df]
        if not cols:
            return df
        mask = df[cols].isna().any(axis=1).to_numpy()
        if not mask.any():
            return df
        logger.warning("dropped %d of %d rows with missing values in column(s) %s (metadata "
                       "missing='drop').", int(mask.sum()), len(df), cols)
        return df.loc[~mask]

    def validate(self, df: pd.DataFrame, *, allow_extra: bool = False,
                 allow_empty: bool = False) -> None:
        """Check that ``df`` matches this metadata.

        Parameters
        ----------
        df : DataFrame
        allow_extra : bool, default False
            Accept columns that are not in the metadata (they are ignored).
        allow_empty : bool, default False
            Accept a frame with no rows (there is nothing to fit or evaluate on one).

        Raises
        ------
        MetadataError
            Naming the column and the problem: an empty frame, unknown or missing column, a
            value outside the declared categories or bounds, missing values in a non-nullable
            column, a value of the wrong type, datetimes mixing time zones, or infinite values.
        """
        _check_frame_structure(df, "Metadata.validate")
        if df.shape[1] == 0 and len(self):
            raise MetadataError(f"the DataFrame has no columns; the metadata expects "
                                f"{', '.join(map(repr, self.names[:10]))}"
                                f"{'...' if len(self) > 10 else ''}.")
        if df.shape[0] == 0 and not allow_empty:
            raise MetadataError("the DataFrame has no rows; pass a table with data (an empty "
                                "table can be neither fitted nor evaluated).")
        extra = [c for c in df.columns if c not in self]
        if extra and not allow_extra:
            raise MetadataError(
                f"column(s) {extra} are not in the metadata; drop them from the DataFrame or add "
                f"them to the metadata.")
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise MetadataError(f"column(s) {missing} from the metadata are missing from the DataFrame.")
        special = {c.column for c in self.constraints if isinstance(c, InfiniteValues)}
        for col in self.columns:
            _validate_series(df[col.name], col, allow_infinite=col.name in special)

    def coerce(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return ``df`` with columns in metadata order and cast to the declared dtypes."""
        self.validate(df, allow_extra=True, allow_empty=True)
        return pd.DataFrame({c.name: cast_series(df[c.name], c) for c in self.columns}, index=df.index)

    def read_csv(self, path: str | Path, *, sep: str | None = None, **kwargs: Any) -> pd.DataFrame:
        """Read a CSV file and cast it to this metadata (validating it).

        Parameters
        ----------
        path : str or Path
            The file (``.gz``/``.bz2``/``.xz`` compression is inferred from the name).
        sep : str, optional
            Field delimiter.  Default: sniffed from the first lines among ``,`` ``;`` tab and
            ``|`` (comma when in doubt).
        **kwargs
            Passed to :func:`pandas.read_csv`.

        Raises
        ------
        MetadataError
            The file does not exist, was read as a single column although its header holds a
            likely delimiter (pass ``sep``), lacks a column of the metadata or has an extra one,
            or its values do not match the metadata.
        """
        dtype = {c.name: (str if c.kind in ("categorical", "datetime", "id") and not _is_numeric_dtype_str(c.dtype)
                          else None) for c in self.columns}
        dtype = {k: v for k, v in dtype.items() if v is not None}
        raw = _read_csv(path, sep, len(self),
                        {"dtype": dtype or None, "keep_default_na": True, **kwargs})
        out = {}
        for c in self.columns:
            if c.name not in raw.columns:
                raise MetadataError(f"column {c.name!r} from the metadata is missing from {str(path)!r}.")
            out[c.name] = _parse_series(raw[c.name], c)
        extra = [c for c in raw.columns if c not in self]
        if extra:
            raise MetadataError(f"column(s) {extra} in {str(path)!r} are not in the metadata.")
        return self.coerce(pd.DataFrame(out))

    def __repr__(self) -> str:
        body = ", ".join(f"{c.name}:{c.kind}" for c in self.columns[:8])
        more = f", ... (+{len(self) - 8})" if len(self) > 8 else ""
        return f"Metadata([{body}{more}])"


# --------------------------------------------------------------------------------------------
# CSV input
# --------------------------------------------------------------------------------------------
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
# names accepted for a delimiter (a tab is awkward to type on a command line)
SEP_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _check_sep(sep: Any) -> str | None:
    """Normalise a ``sep`` argument: None, one character, or a name (``tab``, ``\\t``...)."""
    if sep is None:
        return None
    if not isinstance(sep, str) or not sep:
        raise MetadataError(f"sep must be a one-character string such as ',' or ';', got {sep!r}.")
    sep = SEP_NAMES.get(sep.lower(), sep)
    if len(sep) != 1:
        raise MetadataError(f"sep must be one character (or 'tab'), got {sep!r}; e.g. sep=';' "
                            f"(command line: --sep ';').")
    return sep


def _head_lines(path: Path) -> list[str]:
    """The first complete lines of a (possibly compressed) text file; [] if unreadable."""
    opener = _OPENERS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:
            text = f.read(_SNIFF_BYTES)
    except (OSError, EOFError, lzma.LZMAError):
        return []
    lines = text.splitlines()
    if len(text) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short
    return lines[:_SNIFF_LINES]


def sniff_delimiter(path: str | Path, *, default: str = ",") -> str:
    """Guess the field delimiter of a CSV file from its first lines.

    :class:`csv.Sniffer` chooses among ``,`` ``;`` tab and ``|`` (``CSV_DELIMITERS``); a guess
    that does not occur in the header line, or no guess, gives ``default``.

    Parameters
    ----------
    path : str or Path
        A text file, optionally ``.gz``/``.bz2``/``.xz`` compressed.
    default : str, default ","

    Returns
    -------
    str
        One character.
    """
    lines = _head_lines(Path(path))
    if not lines:
        return default
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines), delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        return default
    return delimiter if delimiter in lines[0] else default


def read_csv_frame(path: str | Path, *, sep: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV file with :func:`pandas.read_csv`, sniffing its delimiter.

    Parameters
    ----------
    path : str or Path
        A file path (a file-like object is read with ``sep`` or a comma, unsniffed).
    sep : str, optional
        Field delimiter (one character, or ``"tab"``); default: :func:`sniff_delimiter`.
    **kwargs
        Passed to :func:`pandas.read_csv` (``delimiter=`` is accepted for ``sep``).

    Returns
    -------
    DataFrame

    Raises
    ------
    MetadataError
        The file does not exist or is empty, ``sep`` is not one character, or ``sep`` was
        sniffed and the file was read as one column although its header contains a likely
        delimiter: the message names the file and the ``sep`` to pass.
    """
    return _read_csv(path, sep, None, kwargs)


def _read_csv(path: Any, sep: Any, expected_columns: int | None, kwargs: dict) -> pd.DataFrame:
    """:func:`read_csv_frame`; a one-column read is also an error (whatever ``sep``) when more
    than one column was ``expected_columns``."""
    if "delimiter" in kwargs:
        if sep is not None:
            raise MetadataError("pass either sep= or delimiter=, not both.")
        kwargs = dict(kwargs)
        sep = kwargs.pop("delimiter")
    sep = _check_sep(sep)
    is_path = isinstance(path, (str, Path))
    if is_path and not Path(path).is_file():
        raise MetadataError(f"data file {str(path)!r} does not exist.")
    used = sep if sep is not None else (sniff_delimiter(path) if is_path else ",")
    try:
        raw = pd.read_csv(path, sep=used, **kwargs)
    except pd.errors.EmptyDataError:
        raise MetadataError(f"data file {str(path)!r} is empty.") from None
    except pd.errors.ParserError as exc:
        raise MetadataError(f"data file {str(path)!r} cannot be read as CSV with delimiter "
                            f"{used!r}: {' '.join(str(exc).split())}. Pass the right delimiter "
                            f"with sep= (command line: --sep).") from None
    if raw.shape[1] == 1 and (sep is None or (expected_columns or 0) > 1):
        header = str(raw.columns[0])
        likely = [d for d in CSV_DELIMITERS if d != used and d in header]
        if likely:
            shown = "tab" if likely[0] == "\t" else likely[0]
            raise MetadataError(
                f"data file {str(path)!r} was read as a single column {header[:60]!r}, but its "
                f"header contains {likely[0]!r}: the file is probably delimited by {likely[0]!r}. "
                f"Pass sep={shown!r} (command line: --sep {shown!r})"
                + ("" if sep is not None else
                   f"; if it really has one column, pass sep={used!r} explicitly") + ".")
    return raw


def _is_numeric_dtype_str(dtype: str) -> bool:
    try:
        return pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(dtype))
    except TypeError:
        return False


def _override_kind(col: ColumnMetadata, kind: str, series: pd.Series) -> ColumnMetadata:
    if kind not in KINDS:
        raise MetadataError(f"column {col.name!r}: unknown kind {kind!r}; use one of {', '.join(KINDS)}.")
    changes: dict[str, Any] = {"kind": kind, "domain": "data"}
    if kind in ("categorical", "boolean"):
        nonnull = series.dropna()
        changes["categories"] = sorted({_to_builtin(v) for v in nonnull.unique()}, key=lambda v: (str(type(v)), v))
    else:
        changes["categories"] = None
    if kind == "continuous" and pd.api.types.is_float_dtype(series.dtype):
        changes["decimals"] = _infer_decimals(series.dropna().to_numpy(dtype=float))
    return dataclasses.replace(col, **changes)


def _example(values: pd.Series) -> str:
    return ", ".join(repr(_to_builtin(v)) for v in values.unique()[:3])


def _infinite_signs(s: pd.Series) -> list[str]:
    """Which of +inf / -inf a numeric column holds (schema bits, like nullability)."""
    if not pd.api.types.is_float_dtype(s.dtype):
        return []
    values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return [label for label, v in (("+inf", np.inf), ("-inf", -np.inf)) if (values == v).any()]


def _validate_series(s: pd.Series, col: ColumnMetadata, allow_infinite: bool = False) -> None:
    where = f"column {col.name!r}"
    isna = s.isna()
    if isna.any() and not col.nullable:
        raise MetadataError(
            f"{where} has {int(isna.sum())} missing value(s) but the metadata says it has none; "
            f"set nullable: true for it, or fill the missing values.")
    nonnull = s[~isna]
    if col.kind in ("continuous", "integer"):
        if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            converted = pd.to_numeric(nonnull, errors="coerce")
            bad = nonnull[converted.isna()]
            if len(bad) or pd.api.types.is_bool_dtype(s.dtype):
                raise MetadataError(
                    f"{where} should be numeric ({col.kind}) but holds non-numeric values, e.g. "
                    f"{_example(bad if len(bad) else nonnull)}; clean or cast it (dtype {col.dtype}).")
            nonnull = converted
        values = nonnull.to_numpy(dtype=np.float64)
        if allow_infinite:
            values = values[np.isfinite(values)]
        elif not np.all(np.isfinite(values)):
            raise MetadataError(
                f"{where} holds infinite values; declare them as values of their own (constraint "
                f"`{{type: infinite_values, column: {col.name}}}`; inferred metadata does this) or "
                f"replace them with NaN or finite values.")
        if col.kind == "integer" and not np.all(values == np.round(values)):
            raise MetadataError(
                f"{where} is declared integer but holds fractional values, e.g. "
                f"{_example(nonnull[values != np.round(values)])}; declare kind: continuous or round it.")
        lo, hi = col.bounds()
        if values.size and lo is not None and values.min() < lo:
            raise MetadataError(f"{where} has values below the declared min {lo} (e.g. {values.min()}).")
        if values.size and hi is not None and values.max() > hi:
            raise MetadataError(f"{where} has values above the declared max {hi} (e.g. {values.max()}).")
    elif col.kind in ("categorical", "boolean"):
        if col.categories is not None:
            allowed = set(col.categories)
            if col.kind == "boolean":
                allowed |= {bool(c) if isinstance(c, (int, np.integer)) else c for c in col.categories}
            unknown = nonnull[~nonnull.isin(list(allowed))]
            if len(unknown):
                raise MetadataError(
                    f"{where} has value(s) outside the {'declared ' if col.domain == 'declared' else ''}"
                    f"categories: {_example(unknown)}; add them to the column's categories in the "
                    f"metadata (allowed: {col.categories[:10]}{'...' if len(col.categories) > 10 else ''}).")
    elif col.kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            parsed = nonnull
        else:
            try:
                parsed = pd.to_datetime(nonnull, format=col.datetime_format, errors="raise")
                if parsed.dtype == object:  # pandas 2: mixed UTC offsets give objects
                    raise ValueError("mixed time zones")
            except (ValueError, TypeError):
                if _parses_as_utc(nonnull, col.datetime_format):  # only the time zones differ
                    zones = (_offset_examples(nonnull, col.datetime_format)
                             if col.datetime_format is not None and nonnull.map(type).eq(str).all()
                             else None)
                    if zones is None:
                        zones = ", ".join(sorted({str(tz) if tz is not None else "naive" for tz in (
                            getattr(v, "tzinfo", None) for v in nonnull)}))
                    raise MetadataError(_mixed_tz_message(col.name, "values", zones)) from None
                bad = nonnull[pd.to_datetime(nonnull, format=col.datetime_format, errors="coerce").isna()]
                raise MetadataError(
                    f"{where} should hold datetimes"
                    f"{' in format ' + repr(col.datetime_format) if col.datetime_format else ''} but "
                    f"has {_example(bad)}; fix those values or the datetime_format.") from None
        lo, hi = col.bounds()
        if len(parsed) and lo is not None and _tz_compat(parsed.min(), lo) < lo:
            raise MetadataError(f"{where} has datetimes before the declared min {col.min}.")
        if len(parsed) and hi is not None and _tz_compat(parsed.max(), hi) > hi:
            raise MetadataError(f"{where} has datetimes after the declared max {col.max}.")


def _tz_compat(ts: pd.Timestamp, ref: pd.Timestamp) -> pd.Timestamp:
    if ts.tzinfo is None and ref.tzinfo is not None:
        return ts.tz_localize(ref.tzinfo)
    if ts.tzinfo is not None and ref.tzinfo is None:
        return ts.tz_localize(None)
    return ts


def _parse_series(raw: pd.Series, col: ColumnMetadata) -> pd.Series:
    """Parse a column as read from CSV (strings/numbers) towards its declared dtype."""
    if col.kind == "datetime" and col.datetime_format is None and not pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = pd.to_datetime(raw, errors="coerce", utc=col.timezone is not None, format="ISO8601")
        if col.timezone is not None:
            parsed = parsed.dt.tz_convert(col.timezone)
        return parsed
    if col.kind == "boolean" and col.dtype in ("bool", "boolean") and raw.dtype == object:
        return raw.map({"True": True, "False": False, "true": True, "false": False, "1": True, "0": False},
                       na_action="ignore")
    return raw


def cast_series(s: pd.Series, col: ColumnMetadata) -> pd.Series:
    """Cast a validated series to the dtype the metadata declares."""
    target = col.pandas_dtype
    if s.dtype == target:
        return s
    try:
        if isinstance(target, pd.CategoricalDtype):
            return s.astype(target)
        if pd.api.types.is_datetime64_any_dtype(target):
            out = pd.to_datetime(s, format=col.datetime_format) if not pd.api.types.is_datetime64_any_dtype(s.dtype) else s
            tz = getattr(target, "tz", None)
            if tz is not None and out.dt.tz is None:
                out = out.dt.tz_localize(tz)
            return out.astype(target)
        if pd.api.types.is_integer_dtype(target) and not pd.api.types.is_extension_array_dtype(target) \
                and s.isna().any():
            raise MetadataError(
                f"column {col.name!r} has missing values but dtype {col.dtype} cannot hold them; "
                f"use the nullable dtype 'Int64'.")
        return s.astype(target)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"column {col.name!r} cannot be cast to dtype {col.dtype}: {exc}") from None


def as_metadata(metadata: Metadata | str | Path | Mapping | None, df: pd.DataFrame | None = None) -> Metadata:
    """Normalise a metadata argument: a Metadata, a YAML path, a dict, or None (infer from df)."""
    if metadata is None:
        if df is None:
            raise MetadataError("no metadata given and no DataFrame to infer it from.")
        return Metadata.from_dataframe(df)
    if isinstance(metadata, Metadata):
        return metadata
    if isinstance(metadata, (str, Path)):
        return Metadata.from_yaml(metadata)
    if isinstance(metadata, Mapping):
        return Metadata.from_dict(metadata)
    raise MetadataError(f"metadata must be a Metadata, a YAML path or a dict, got {type(metadata).__name__}.")

