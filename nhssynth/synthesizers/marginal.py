"""Independent-marginals synthesizer: the baseline every evaluation is compared with.

Each column is sampled on its own from (an estimate of) its marginal distribution, so the
synthetic table has realistic columns and *no* relationship between them.  A model that does
not beat it on pair trends, detection and utility has learnt nothing about the rows' structure.
"""
from __future__ import annotations

import math
import os
import warnings
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted

from ..base import GeneratorMixin, check_n_samples
from ..exceptions import NonPrivateOperationWarning, PrivacyBudgetError, PrivacyWarning
from .._values import numeric_values
from ..metadata import ColumnMetadata, Metadata, as_metadata
from ..table_source import is_table_source_input
from ._base import refuse_out_of_core, sample_to_path
from ..sampling_io import DEFAULT_CHUNK_SIZE
from ._constrained import check_known, draw_valid, fill_valid, fit_constraints
from ..privacy.report import PrivacyReport, SpendRecord

__all__ = ["MarginalSynthesizer"]

_EPOCH = pd.Timestamp(0, tz="UTC")
_BOUND_SHARE = 0.2          # share of a column's epsilon spent on its DP bounds
_SMALL_ROWS = 1000          # tables with fewer rows (public) are *small*: ...
_SMALL_BOUND_SHARE = 0.5    # ... their bounds get this share (without bounds, no column) ...
_SMALL_BIN_FACTOR = 4       # ... and their histograms over DP bounds this many times ``bins``
_MAX_UNIT_BINS = 100        # integer columns with a range this small get one bin per value
_MAX_SECONDS = 9.0e9        # datetimes are kept within what pandas can represent


def _log_edges(smallest: int) -> np.ndarray:
    """Public, data-independent bin edges for the DP bound estimate: +-2^k for
    k = smallest..62 (bins [2^k, 2^(k+1)), mirrored for negatives, plus [-2^smallest, 2^smallest))."""
    pos = 2.0 ** np.arange(smallest, 63)
    return np.concatenate([-pos[::-1], pos])


_LOG_EDGES = {"continuous": _log_edges(-20), "integer": _log_edges(0)}


def _dp_bounds(values: np.ndarray, epsilon: float, rng: np.random.RandomState,
               integer: bool = False) -> tuple[float, float] | None:
    """Epsilon-DP bounds from one noisy histogram over power-of-two bins, or None.

    Every value falls in exactly one of the fixed bins ``_LOG_EDGES`` (values beyond the outer
    edges are clipped to them), so the count vector has L1 sensitivity 1 under adding/removing
    a row and Laplace noise of scale ``b = 1/epsilon`` makes it epsilon-DP.  The bounds are the
    outer edges of the lowest and highest bins whose noisy count exceeds
    ``b * ln(n_bins / 0.002)`` (an empty bin passes with probability <= 0.1% over all bins).
    When no bin does, the fullest run of 2, 4, 8 or 16 adjacent bins whose noisy sum clears
    the same test for sums gives a wider but sane range; when none does either, None (the
    caller withholds the column): the largest noisy count alone would be any of 126 bins, up
    to 2^62.  All post-processing of the one noisy release.
    """
    edges = _LOG_EDGES["integer" if integer else "continuous"]
    x = np.clip(values, edges[0], np.nextafter(edges[-1], 0))
    counts = np.histogram(x, bins=edges)[0].astype(float)
    b = 1.0 / epsilon
    noisy = counts + rng.laplace(scale=b, size=counts.shape)
    above = np.flatnonzero(noisy > b * np.log(counts.size / 0.002))
    if above.size:
        return float(edges[above[0]]), float(edges[above[-1] + 1])
    for width in (2, 4, 8, 16):
        sums = np.convolve(noisy, np.ones(width), mode="valid")
        # a sum of `width` Laplace draws: its tail is below that of one draw of scale
        # b * sqrt(width) times the same log factor (a conservative bound)
        threshold = b * math.sqrt(width) * np.log(4 * sums.size / 0.002)
        if sums.max() > threshold:
            start = int(np.argmax(sums))
            return float(edges[start]), float(edges[start + width])
    return None


def _numeric(s: pd.Series, col: ColumnMetadata) -> np.ndarray:
    """Float view (datetimes as seconds since 1970 UTC), NaN where missing."""
    if col.kind == "boolean":
        s = pd.to_numeric(s.astype(object), errors="coerce")
    return numeric_values(s, col)


def _declared_seconds(value: Any, col: ColumnMetadata) -> float:
    if col.kind == "datetime":
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return float((ts - _EPOCH).total_seconds())
    return float(value)


class MarginalSynthesizer(GeneratorMixin, BaseEstimator):
    """Synthesizer that samples every column independently from its marginal distribution.

    Without ``epsilon`` it is the non-private *independent-columns baseline*: categorical and
    boolean columns are resampled from their category frequencies, numeric columns with few
    distinct values from their value frequencies, other numeric and datetime columns by
    interpolating ``bins`` empirical quantiles.  With ``epsilon`` it is differentially private
    (pure epsilon-DP, Laplace mechanism, add/remove-one-row neighbours): the budget is split
    evenly across the non-``id`` columns and each column's histogram (missing values as one
    more cell) gets Laplace noise of scale ``1 / epsilon_column``.  Histograms are laid over

    * the declared categories or ``min``/``max`` of the metadata (public: no budget spent);
    * otherwise, for numeric/datetime columns, bounds estimated from a noisy histogram over
      fixed power-of-two bins (20% of the column's budget; the bounds are powers of two, so the
      range can be up to twice too wide).  Tables of under 1,000 rows spend half the column's
      budget on them (without bounds the column is withheld), and their histogram over the
      bounds has ``4 * bins`` bins, which locate data filling a small part of a power-of-two
      range (years 1935-1954 in 1024-2048);
    * otherwise, for categorical columns, the categories seen in the data: a
      :class:`~nhssynth.exceptions.NonPrivateOperationWarning` is issued and
      :meth:`privacy_report` lists it.

    Parameters
    ----------
    epsilon : float or None, default None
        Total privacy budget.  ``None``: no privacy (exact marginals).
    delta : float, default 0.0
        Accepted for API symmetry with the other synthesizers; the Laplace mechanism spends
        ``delta = 0``.
    bins : int, default 20
        Number of quantile intervals (non-private) or of equal-width histogram bins (DP) for
        numeric and datetime columns.
    random_state : int, RandomState or None, default None
        Seed for the noise of ``fit`` (``sample`` takes its own ``random_state``).
    metadata : Metadata, YAML path, dict or None, default None
        Table metadata; inferred from the data in ``fit`` when ``None``.

    Attributes
    ----------
    metadata_ : Metadata
        The table's metadata (declared or inferred), its constraints included.
    constraints_ : ConstraintPlan
        How each declared constraint is enforced (``constraints_.summary()``: by construction
        or by rejection) and the columns of the table the model learns (``columns_out_``).
    learnt_metadata_ : Metadata
        The metadata of the table the marginals are of (reparametrised by the constraints).
    marginals_ : dict
        Per column, the fitted marginal (probabilities, bins or quantiles; never rows).
    epsilon_ : float
        Budget spent (``inf`` without ``epsilon``).
    spends_ : list of dict
        One entry per DP release: ``stage``, ``epsilon``, ``delta``, ``mechanism``.
    non_private_ : list of str
        What was taken from the data without differential privacy.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> from nhssynth.datasets import load_example
    >>> from nhssynth.synthesizers import MarginalSynthesizer
    >>> df, md = load_example(return_metadata=True)
    >>> fake = MarginalSynthesizer(epsilon=1.0, metadata=md, random_state=0).fit(df).sample(5, random_state=0)
    >>> list(fake.columns) == list(df.columns)
    True
    """

    _parameter_constraints: dict = {
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "delta": [Interval(Real, 0, 1, closed="left")],
        "bins": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "metadata": [Metadata, str, Path, dict, None],
    }

    def __init__(self, epsilon: float | None = None, delta: float = 0.0, bins: int = 20,
                 random_state: Any = None, metadata: Any = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.bins = bins
        self.random_state = random_state
        self.metadata = metadata

    # ------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: Any = None) -> "MarginalSynthesizer":
        """Fit one marginal per column of ``X`` (a DataFrame, or a 2-D array)."""
        self._validate_params()
        if is_table_source_input(X):
            refuse_out_of_core(self, X)
        if not isinstance(X, pd.DataFrame):  # arrays: numeric only (DataFrames keep dtypes)
            arr = check_array(X, dtype="numeric", ensure_all_finite="allow-nan")
            X = pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])
        else:
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        md = as_metadata(self.metadata, X)
        md.validate(X)
        self.metadata_ = md
        # declared constraints: the marginals are of the table learnt (see nhssynth.constraints)
        self.constraints_, X, md = fit_constraints(X, md)
        self.learnt_metadata_ = md
        rng = check_random_state(self.random_state)
        learnt = [c for c in md.columns if c.kind != "id"]
        eps_col = None if self.epsilon is None else float(self.epsilon) / max(len(learnt), 1)
        self.spends_: list[dict] = []
        self.non_private_: list[str] = []
        self.notes_: list[str] = []
        self.marginals_: dict[str, dict] = {}
        for col in md.columns:
            if col.kind == "id":
                self.marginals_[col.name] = {"type": "id"}
            elif col.kind in ("categorical", "boolean"):
                self.marginals_[col.name] = self._fit_categorical(X[col.name], col, eps_col, rng)
            else:
                self.marginals_[col.name] = self._fit_numeric(X[col.name], col, eps_col, rng)
        learnt_names = [c.name for c in learnt]
        if learnt_names and all(self.marginals_[c]["type"] == "withheld" for c in learnt_names):
            # a column holding a third of the rows in one power-of-two bin clears the bounds'
            # threshold ln(n_bins / 0.002) / eps_b (public: rows, columns, epsilon)
            share = _SMALL_BOUND_SHARE if len(X) < _SMALL_ROWS else _BOUND_SHARE
            needed = 3.0 * len(learnt_names) * math.log(_LOG_EDGES["continuous"].size / 0.002) \
                / (share * max(len(X), 1))
            raise PrivacyBudgetError(
                f"no column's range could be estimated privately: {len(X)} rows are too few for "
                f"epsilon={self.epsilon} split over {len(learnt_names)} columns (all would be "
                f"generated as missing). Declare min/max (or categories) in the metadata "
                f"(`nhssynth metadata template`), or raise epsilon: the smallest that releases "
                f"some column (one holding a third of the rows in one power of two) is about "
                f"{needed:.2g}.")
        self.n_features_in_ = X.shape[1]
        self.epsilon_ = math.inf if self.epsilon is None else float(sum(s["epsilon"] for s in self.spends_))
        return self

    def _noisy(self, counts: np.ndarray, eps: float, rng, stage: str) -> np.ndarray:
        noisy = counts + rng.laplace(scale=1.0 / eps, size=counts.shape)
        self.spends_.append({"stage": stage, "epsilon": eps, "delta": 0.0, "mechanism": "laplace"})
        return np.clip(noisy, 0.0, None)

    @staticmethod
    def _normalise(weights: np.ndarray) -> np.ndarray:
        total = weights.sum()
        return np.full(weights.shape, 1.0 / weights.size) if total <= 0 else weights / total

    def _fit_categorical(self, s: pd.Series, col: ColumnMetadata, eps, rng) -> dict:
        nonnull = s.dropna()
        if col.kind == "boolean":
            cats = list(col.categories) if col.categories is not None else [False, True]
            codes = pd.Index([float(c) for c in cats]).get_indexer(_numeric(nonnull, col))
        else:
            cats = list(col.categories) if col.categories is not None else \
                sorted(pd.unique(nonnull.astype(object)), key=lambda v: (str(type(v)), v))
            codes = pd.Index(cats).get_indexer(nonnull.astype(object))
        k = len(cats)
        if k == 0:  # entirely missing, no category declared: nothing to learn
            return {"type": "withheld", "p_missing": 1.0}
        counts = np.bincount(codes[codes >= 0], minlength=k).astype(float)
        counts = np.append(counts, float(s.isna().sum())) if col.nullable else counts
        if eps is None:
            probs = self._normalise(counts)
        else:
            if not col.has_declared_categories and col.kind != "boolean":
                msg = (f"column {col.name!r}: its categories were read from the data (metadata "
                       f"domain: data), which is not differentially private; declare them in the "
                       f"metadata to keep the whole fit private.")
                warnings.warn(msg, NonPrivateOperationWarning, stacklevel=3)
                self.non_private_.append(msg)
            probs = self._normalise(self._noisy(counts, eps, rng, f"{col.name}: category histogram"))
        p_missing = float(probs[k]) if col.nullable else 0.0
        probs = self._normalise(probs[:k])
        return {"type": "categorical", "categories": cats, "probs": probs, "p_missing": p_missing}

    def _fit_numeric(self, s: pd.Series, col: ColumnMetadata, eps, rng) -> dict:
        v = _numeric(s, col)
        miss = np.isnan(v)
        fin = v[~miss]
        n_missing = float(miss.sum())
        if eps is None:
            if fin.size == 0:  # entirely missing: nothing to learn
                return {"type": "withheld", "p_missing": 1.0}
            p_missing = n_missing / max(len(v), 1)
            distinct, counts = np.unique(fin, return_counts=True)
            if distinct.size <= 4 * self.bins:
                return {"type": "points", "values": distinct, "probs": self._normalise(counts.astype(float)),
                        "p_missing": p_missing}
            quantiles = np.quantile(fin, np.linspace(0.0, 1.0, self.bins + 1))
            return {"type": "quantiles", "quantiles": quantiles, "p_missing": p_missing}
        # --- differentially private histogram over public or DP-estimated bounds -------------
        small = len(s) < _SMALL_ROWS  # the number of rows is public
        if col.has_declared_bounds:
            lo, hi = _declared_seconds(col.min, col), _declared_seconds(col.max, col)
            eps_hist = eps
        else:
            eps_b = (_SMALL_BOUND_SHARE if small else _BOUND_SHARE) * eps
            found = _dp_bounds(fin, eps_b, rng, integer=col.kind == "integer")
            self.spends_.append({"stage": f"{col.name}: bounds (power-of-two histogram)",
                                 "epsilon": eps_b, "delta": 0.0, "mechanism": "laplace"})
            if found is None:
                note = (f"{col.name}: too few rows to estimate its range privately at this "
                        f"budget; the column is generated as missing. Declare min and max in "
                        f"the metadata or raise epsilon.")
                warnings.warn(f"column {note}", PrivacyWarning, stacklevel=3)
                self.notes_.append(note)
                return {"type": "withheld", "p_missing": 1.0}
            lo, hi = found
            if col.kind == "datetime":
                lo, hi = max(lo, -_MAX_SECONDS), min(hi, _MAX_SECONDS)
            eps_hist = eps - eps_b
        if col.kind == "integer":
            lo, hi = math.ceil(lo), math.floor(hi)
            hi = max(hi, lo)
        clipped = np.clip(fin, lo, hi)
        if col.kind == "integer" and hi - lo + 1 <= max(self.bins, _MAX_UNIT_BINS):
            edges = np.arange(lo, hi + 2) - 0.5
            kind = "units"
        else:
            # bounds found under DP are powers of two, and the data may fill a small part of
            # that range (years 1935-1954 in 1024-2048): finer bins locate it (Laplace noise per
            # bin does not grow with their number; the floor below empties the noise bins)
            n_bins = _SMALL_BIN_FACTOR * self.bins if not col.has_declared_bounds and small \
                else self.bins
            edges = np.linspace(lo, hi, n_bins + 1) if hi > lo else np.array([lo, lo])
            kind = "histogram"
        counts = np.histogram(clipped, bins=edges)[0].astype(float) if hi > lo or kind == "units" \
            else np.array([float(clipped.size)])
        if col.nullable:
            counts = np.append(counts, n_missing)
        noisy = self._noisy(counts, eps_hist, rng, f"{col.name}: histogram")
        values = noisy[:-1] if col.nullable else noisy
        if not col.has_declared_bounds:
            # bounds from powers of two are up to twice too wide: bins whose noisy count noise
            # alone would reach (about 5 % chance over all bins) are empty, not a thin tail
            # of values far from the data (post-processing)
            floor = np.log(10.0 * values.size) / eps_hist
            if (values > floor).any():
                values = np.where(values > floor, values, 0.0)
        probs = self._normalise(np.append(values, noisy[-1]) if col.nullable else values)
        p_missing = float(probs[-1]) if col.nullable else 0.0
        probs = self._normalise(probs[:-1] if col.nullable else probs)
        return {"type": kind, "edges": edges, "probs": probs, "p_missing": p_missing}

    # ------------------------------------------------------------------------------------
    def sample(self, n_samples: int, *, random_state: Any = None, conditions: Any = None,
               path: str | os.PathLike | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
               overwrite: bool = False) -> pd.DataFrame | Path:
        """Draw ``n_samples`` synthetic rows (a DataFrame with the training columns and dtypes).

        Parameters
        ----------
        n_samples : int
        random_state : int, RandomState or None, default None
            Seed for this draw only; the fitted state is not changed.
        conditions : dict, optional
            Column -> value, list of values or ``(low, high)`` range; every row returned meets
            them.  Columns are independent here, so a conditioned column is drawn from its own
            marginal restricted to the condition and the others as usual.
        path : str or os.PathLike, optional
            Write the rows to this Parquet file instead of returning them, ``chunk_size`` rows
            at a time (memory holds one chunk, whatever ``n_samples``), and return the path:
            :func:`nhssynth.sample_to_parquet` (which says how chunks are seeded).  Needs
            pyarrow.
        chunk_size : int, default 250_000
            Rows per chunk when ``path`` is given.
        overwrite : bool, default False
            Replace ``path`` if it exists (otherwise :class:`FileExistsError`).

        Returns
        -------
        DataFrame or pathlib.Path
            The rows; the Parquet file's path when ``path`` is given.
        """
        check_is_fitted(self, "marginals_")
        n = check_n_samples(n_samples)
        if path is not None:
            return sample_to_path(self, n, path, random_state=random_state,
                                  conditions=conditions, chunk_size=chunk_size,
                                  overwrite=overwrite)
        return draw_valid(self._draw, n, random_state, self.constraints_, conditions)

    def _draw(self, n: int, random_state: Any, narrow) -> pd.DataFrame:
        if isinstance(random_state, np.random.Generator):
            random_state = np.random.RandomState(int(random_state.integers(0, 2**31 - 1)))
        rng = self._sample_rng(random_state)
        out = {}
        for col in self.learnt_metadata_.columns:
            m = self.marginals_[col.name]
            if narrow is not None and narrow.get(col.name) is not None:
                out[col.name] = self._sample_meeting(col, m, n, rng, narrow)
            else:
                out[col.name] = self._sample_column(col, m, n, rng)
        return pd.DataFrame(out)

    def sample_remaining_columns(self, known: pd.DataFrame, *, random_state: Any = None) -> pd.DataFrame:
        """Complete rows: keep the given columns of ``known`` and draw the others.

        Columns are independent here, so the others are drawn as in :meth:`sample`.

        Parameters
        ----------
        known : DataFrame
        random_state : int, RandomState or None

        Returns
        -------
        DataFrame
        """
        check_is_fitted(self, "marginals_")
        known = check_known(known, self.constraints_, type(self).__name__)
        return fill_valid(lambda rows, rs: self._draw(len(rows), rs, None), known, random_state,
                          self.constraints_)

    def _sample_meeting(self, col: ColumnMetadata, m: dict, n: int, rng, narrow) -> pd.Series:
        """``n`` values of one column meeting its condition: the column's marginal restricted
        to the condition, by drawing the column alone (cheap) until enough meet it."""
        kept, got = [], 0
        for _ in range(40):
            draw = pd.Series(self._sample_column(col, m, max(4 * n, 1024), rng))
            ok = narrow.accepts(col.name, draw, col)
            kept.append(draw[ok])
            got += int(ok.sum())
            if got >= n:
                break
        values = pd.concat(kept, ignore_index=True) if kept else pd.Series([], dtype=object)
        if len(values) < n:  # the restricted marginal is (numerically) empty: the caller says so
            return pd.Series(self._sample_column(col, m, n, rng))
        return values.iloc[:n].reset_index(drop=True)

    @staticmethod
    def _sample_column(col: ColumnMetadata, m: dict, n: int, rng) -> pd.Series:
        if m["type"] == "id":
            ids = np.arange(n)
            if pd.api.types.is_numeric_dtype(col.pandas_dtype):
                return pd.Series(ids).astype(col.pandas_dtype)
            return pd.Series([f"synthetic-{i}" for i in ids], dtype=object).astype(col.pandas_dtype)
        if m["type"] == "withheld":  # no DP range: all missing (an integer column as float)
            if col.kind == "datetime":
                return pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
            dtype = col.pandas_dtype
            if pd.api.types.is_integer_dtype(dtype) \
                    and not pd.api.types.is_extension_array_dtype(dtype):
                dtype = np.float64
            return pd.Series(np.full(n, np.nan)).astype(dtype)
        missing = rng.random_sample(n) < m["p_missing"]
        if m["type"] == "categorical":
            codes = rng.choice(len(m["categories"]), size=n, p=m["probs"])
            values = np.empty(n, dtype=object)
            values[:] = [m["categories"][c] for c in codes]
            values[missing] = np.nan
            if isinstance(col.pandas_dtype, pd.CategoricalDtype):
                return pd.Series(pd.Categorical(values, dtype=col.pandas_dtype))
            return pd.Series(values, dtype=object).astype(col.pandas_dtype)
        if m["type"] == "points":
            values = m["values"][rng.choice(len(m["values"]), size=n, p=m["probs"])]
        elif m["type"] == "quantiles":
            q = m["quantiles"]
            values = np.interp(rng.random_sample(n), np.linspace(0.0, 1.0, q.size), q)
        else:
            edges = m["edges"]
            b = rng.choice(len(m["probs"]), size=n, p=m["probs"])
            if m["type"] == "units":
                values = (edges[b] + 0.5).astype(float)
            else:
                values = edges[b] + rng.random_sample(n) * (edges[b + 1] - edges[b])
        values = values.astype(float)
        lo, hi = col.bounds()
        if col.kind in ("continuous", "integer"):
            if lo is not None or hi is not None:
                values = np.clip(values, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
            if col.kind == "integer":
                values = np.round(values)
            elif col.decimals is not None:
                values = np.round(values, col.decimals)
            values[missing] = np.nan
            if pd.api.types.is_integer_dtype(col.pandas_dtype) \
                    and not pd.api.types.is_extension_array_dtype(col.pandas_dtype):
                return pd.Series(values.astype(np.int64)).astype(col.pandas_dtype)
            return pd.Series(values).astype(col.pandas_dtype)
        # datetime
        values = np.clip(values, -_MAX_SECONDS, _MAX_SECONDS)
        # missing rows become NaT after the conversion: NaN passed to to_datetime(unit=) can
        # raise FloatingPointError on pandas 2.2 (it rounds uninitialised memory under
        # errstate(over="raise"))
        values[missing] = 0.0
        dt = pd.to_datetime(pd.Series(values), unit="s", utc=True).dt.round("s")
        dt = dt.where(~pd.Series(missing))
        if col.timezone is not None:
            dt = dt.dt.tz_convert(col.timezone)
        else:
            dt = dt.dt.tz_localize(None)
        if col.datetime_format is not None:
            return dt.dt.strftime(col.datetime_format).where(~missing, None).astype(col.pandas_dtype)
        return dt.astype(col.pandas_dtype)

    # ------------------------------------------------------------------------------------
    def privacy_report(self) -> PrivacyReport:
        """Say what the fit spent and what its guarantee covers.

        Returns
        -------
        PrivacyReport
            Pure epsilon-DP by basic composition of the Laplace releases, what was read from
            the data without DP, and the guarantee in one sentence.
        """
        check_is_fitted(self, "marginals_")
        if self.epsilon is None:
            return PrivacyReport(False, None, None, None, None,
                                 non_private_statistics=("all marginals (epsilon=None)",))
        spends = tuple(SpendRecord(s["stage"], f"{s['mechanism']} histogram", float(s["epsilon"]))
                       for s in self.spends_)
        return PrivacyReport(True, float(self.epsilon_), 0.0, float(self.epsilon),
                             "basic composition (pure epsilon-DP)", spends,
                             tuple(self.non_private_), notes=tuple(getattr(self, "notes_", ())),
                             details={"mechanism": "laplace histograms"})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = False
        return tags
