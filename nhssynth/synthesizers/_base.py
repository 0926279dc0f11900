"""What every generator shares: the privacy budget, input checks, the report and persistence.

A generator subclasses :class:`BaseSynthesizer`, declares its own parameters in
``_parameter_constraints`` (merged with the common ones here) and implements ``fit`` and
``sample``.  It gets:

* :meth:`_make_budget` -- the :class:`~nhssynth.privacy.budget.PrivacyBudget` of a fit (or
  None with a warning when not private), with the default ``delta = min(1e-5, 0.1 / n)``;
* :meth:`_check_frame` -- the DataFrame and its validated :class:`~nhssynth.Metadata`;
* ``privacy_report()`` from the fitted ``privacy_report_``; ``save``/``load``.
"""
from __future__ import annotations

import logging
import warnings
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array, check_is_fitted

from ..base import GeneratorMixin
from ..exceptions import MetadataError, NonPrivateOperationWarning, PrivacyBudgetError, PrivacyWarning
from ..io import load_synthesizer, save_synthesizer
from ..metadata import Metadata, as_metadata, infer_column
from ..privacy.budget import PrivacyBudget
from ..privacy.report import PrivacyReport
from ..sampling_io import DEFAULT_CHUNK_SIZE, sample_to_parquet
from ..table_source import TableSource, is_table_source_input
from ._constrained import check_known, draw_valid, fill_valid, fit_constraints

logger = logging.getLogger("nhssynth.synthesizers")

__all__ = ["BaseSynthesizer"]


def refuse_out_of_core(estimator: Any, X: Any) -> None:
    """The error of a generator that fits tables in memory only, given a path or chunks."""
    raise MetadataError(
        f"{type(estimator).__name__}.fit needs the table in memory (a DataFrame or array), got "
        f"{type(X).__name__}. Read it with pandas first, or, for a table larger than memory, "
        "fit AIMSynthesizer or DPVAESynthesizer, which read a Parquet/CSV path or DataFrame "
        "chunks out of core (docs/scale.md).")


def sample_to_path(generator: Any, n_samples: int, path: Any, *, random_state: Any,
                   conditions: Any, chunk_size: int, overwrite: bool):
    """``sample(n, path=...)`` of every generator: the rows go to a Parquet file chunk by chunk
    (memory holds one chunk), as :func:`nhssynth.sample_to_parquet`; returns the path."""
    return sample_to_parquet(generator, n_samples, path, chunk_size=chunk_size,
                             random_state=random_state, overwrite=overwrite,
                             conditions=conditions)


class BaseSynthesizer(GeneratorMixin, BaseEstimator):
    """Base class of the ``<Method>Synthesizer`` generators (not used on its own)."""

    _parameter_constraints: dict = {
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "delta": [Interval(Real, 0, 1, closed="neither"), None],
        "metadata": [Metadata, str, dict, None],
        "allow_non_private": ["boolean"],
        "random_state": ["random_state"],
    }

    # -- fit helpers ------------------------------------------------------------------------
    def _check_frame(self, X: Any, *, out_of_core: bool = False) -> tuple[pd.DataFrame, Metadata]:
        """The table as a DataFrame and its metadata (declared or inferred), validated.

        A DataFrame is used as it is (``sample`` then returns DataFrames); any other 2-D
        array-like is checked by scikit-learn (numbers, NaN allowed) and named ``x0, x1, ...``
        (``sample`` then returns arrays).  With ``out_of_core``, a path or chunks give a
        :class:`~nhssynth.table_source.TableSource` instead of a DataFrame (see
        :meth:`_check_source`); without it they are an error naming the generator that can."""
        if is_table_source_input(X):
            if not out_of_core:
                refuse_out_of_core(self, X)
            return self._check_source(TableSource.open(X))
        if isinstance(X, pd.DataFrame):
            if len(X) < 2:
                raise MetadataError(f"{type(self).__name__}.fit needs at least 2 rows, got "
                                    f"{len(X)}.")
            frame, self._input_kind = X, "dataframe"
            self.feature_names_in_ = X.columns.to_numpy(dtype=object)
        else:
            arr = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan",
                              ensure_min_samples=2, estimator=self)
            frame = pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])])
            self._input_kind = "array"
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        metadata = as_metadata(self.metadata, frame)
        metadata.validate(frame)
        self.n_features_in_ = frame.shape[1]
        # declared constraints: the generator learns a reparametrised table (see
        # nhssynth.constraints); constraints_ is the fitted plan (empty without constraints)
        self.metadata_ = metadata
        self.constraints_, frame, metadata = fit_constraints(metadata.drop_incomplete_rows(frame),
                                                             metadata)
        return frame, metadata

    def _check_source(self, source: TableSource) -> tuple[TableSource, Metadata]:
        """A table on disk and its metadata, validated without holding the table: metadata is
        inferred one column at a time, every batch of rows is validated, and rows a
        ``missing="drop"`` column lacks are masked out of the source."""
        source.keep_rows(None)  # a source fitted before: its rows as stored, not last fit's
        if len(source) < 2:
            raise MetadataError(f"{type(self).__name__}.fit needs at least 2 rows, got "
                                f"{len(source)}.")
        self._input_kind = "dataframe"
        self.feature_names_in_ = np.asarray(source.columns, dtype=object)
        self.n_features_in_ = len(source.columns)
        if self.metadata is None:
            metadata = Metadata([infer_column(source[name], name) for name in source.columns])
        else:
            metadata = as_metadata(self.metadata)
        if metadata.constraints:
            raise MetadataError(
                f"the metadata declares {len(metadata.constraints)} constraint(s), which an "
                "out-of-core fit cannot enforce yet (they rewrite whole rows); fit a DataFrame, "
                "or drop the constraints from the metadata.")
        drop = [c.name for c in metadata if c.missing == "drop"]
        keep = []
        for frame in source.iter_frames():
            metadata.validate(frame)
            if drop:
                keep.append(~frame[drop].isna().any(axis=1).to_numpy())
        if drop:
            keep = np.concatenate(keep)
            if not keep.all():
                logger.warning("dropped %d of %d rows with missing values in column(s) %s "
                               "(metadata missing='drop').", int((~keep).sum()), keep.size, drop)
                source.keep_rows(keep)
        self.metadata_ = metadata
        self.constraints_, _, _ = fit_constraints(source, metadata)
        return source, metadata

    def sample_remaining_columns(self, known: pd.DataFrame, *, random_state: Any = None) -> pd.DataFrame:
        """Complete rows: keep the given columns of each row of ``known`` and draw the others.

        Parameters
        ----------
        known : DataFrame
            Some columns of the table (one synthetic row per row of ``known``).
        random_state : int, RandomState, Generator or None
            Seed of this draw.

        Returns
        -------
        DataFrame
            Every column of the table, ``known``'s values unchanged, the others drawn from
            the model given them; every row satisfies the declared constraints.

        Raises
        ------
        MetadataError
            An unknown or identifier column, a value the metadata does not allow, or a column
            a declared constraint generates (give the column the rule starts from).
        SamplingError
            A given value the model cannot produce (a category too rare to be released).
        """
        check_is_fitted(self, "constraints_")
        known = check_known(known, self.constraints_, type(self).__name__)
        return fill_valid(self._draw_given, known, random_state, self.constraints_)

    def _draw_given(self, rows: pd.DataFrame, random_state: Any) -> pd.DataFrame:
        raise NotImplementedError(
            f"{type(self).__name__} cannot condition its model on given values; use "
            "AIMSynthesizer (exact, any columns) or sample(conditions=...) for conditions on "
            "a few columns.")

    def _sample_table(self, n: int, random_state: Any, conditions: Any) -> pd.DataFrame:
        """``n`` rows of the original table meeting the constraints and ``conditions``, from
        the generator's ``_draw(m, random_state, narrow)`` (rows of the learnt table)."""
        return draw_valid(self._draw, n, random_state, self.constraints_, conditions)

    def _as_input_kind(self, frame: pd.DataFrame):
        """A sampled table in the form ``fit`` received: a DataFrame, or an array."""
        return frame.to_numpy(dtype=np.float64) if self._input_kind == "array" else frame

    def _make_budget(self, n: int, accountant: str) -> PrivacyBudget | None:
        """The fit's budget; ``None`` (with a :class:`NonPrivateOperationWarning` unless
        ``allow_non_private``) when ``epsilon`` is None."""
        if self.epsilon is None:
            if not self.allow_non_private:
                warnings.warn(f"epsilon=None: {type(self).__name__} is fitted WITHOUT differential "
                              "privacy; the synthetic data carries no formal privacy guarantee. "
                              "Pass allow_non_private=True to acknowledge.",
                              NonPrivateOperationWarning, stacklevel=3)
            return None
        delta = self.delta if self.delta is not None else min(1e-5, 0.1 / n)
        if delta >= 1.0 / n:
            raise PrivacyBudgetError(
                f"delta={delta:g} is not below 1/n_rows={1.0 / n:.3g}: a mechanism that publishes "
                f"one random row would satisfy it. Use delta <= {0.1 / n:.2g} (or leave it None).")
        if delta > 0.1 / n:
            warnings.warn(f"delta={delta:g} is close to 1/n_rows={1.0 / n:.3g}; consider "
                          f"<= {0.1 / n:.2g}.", PrivacyWarning, stacklevel=3)
        return PrivacyBudget(float(self.epsilon), float(delta), accountant)

    # -- public ---------------------------------------------------------------------------
    def privacy_report(self) -> PrivacyReport:
        """Say what the fitted model's guarantee covers.

        Returns
        -------
        PrivacyReport
            The total (epsilon, delta), every spend, the statistics read without DP and notes
            on the release (:class:`~nhssynth.privacy.report.PrivacyReport`).
        """
        check_is_fitted(self)
        return self.privacy_report_

    def save(self, path) -> None:
        """Save to a directory (JSON and, for neural generators, a weights file; no pickle)."""
        save_synthesizer(self, path)

    @classmethod
    def load(cls, path):
        """Load a generator saved with :meth:`save`."""
        return load_synthesizer(path, cls)
