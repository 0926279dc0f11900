"""SynthesisPipeline: an sklearn Pipeline whose last step generates data, inverted on the way out."""
from __future__ import annotations

import inspect
import os
from collections import Counter
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .encoders.table import TableEncoder
from .exceptions import MetadataError
from .metadata import as_metadata
from .sampling_io import DEFAULT_CHUNK_SIZE, sample_to_parquet

__all__ = ["SynthesisPipeline", "make_synthesis_pipeline"]


def _active(step: Any) -> bool:
    return step is not None and not (isinstance(step, str) and step == "passthrough")


class SynthesisPipeline(Pipeline):
    """A :class:`sklearn.pipeline.Pipeline` of transformers ending in a generator.

    ``fit(df)`` fits each transformer in turn, then fits the generator on the transformed
    matrix, passing it the last transformer's ``output_spans_`` (when the generator's ``fit``
    accepts ``output_spans``).  ``sample(n)`` draws from the generator and applies every
    transformer's ``inverse_transform`` in reverse order, so the result is in the space of the
    pipeline's input (a DataFrame with the original columns and dtypes).

    Everything of :class:`~sklearn.pipeline.Pipeline` applies: ``get_params``/``set_params``
    with ``<step>__<param>`` names, :func:`sklearn.base.clone`, pickling, and use inside
    :class:`~sklearn.model_selection.GridSearchCV` with a scorer such as
    ``nhssynth.metrics.get_scorer("fidelity")``.
    """

    def fit(self, X, y=None, **params):
        """Fit the transformers, then the generator on their output.

        Parameters
        ----------
        X : DataFrame
        y : ignored
        **params : dict
            ``<step>__<param>`` fit parameters routed to the steps.

        Returns
        -------
        self
        """
        self._check_steps()
        step_params: dict[str, dict] = {name: {} for name, _ in self.steps}
        for key, value in params.items():
            step, _, param = key.partition("__")
            if step not in step_params or not param:
                raise ValueError(f"fit parameter {key!r} must be named '<step>__<param>' with a step "
                                 f"among {list(step_params)}.")
            step_params[step][param] = value
        Xt = self._drop_incomplete_rows(X)
        spans = None
        for name, transformer in self.steps[:-1]:
            if not _active(transformer):
                continue
            Xt = transformer.fit_transform(Xt, y, **step_params[name])
            spans = getattr(transformer, "output_spans_", spans)
        name, generator = self.steps[-1]
        fit_kwargs = dict(step_params[name])
        accepted = inspect.signature(generator.fit).parameters
        if spans is not None and "output_spans" in accepted:
            fit_kwargs.setdefault("output_spans", spans)
        if "preprocessing_privacy" in accepted:
            fit_kwargs.setdefault("preprocessing_privacy", self._preprocessing_privacy())
        generator.fit(Xt, y, **fit_kwargs)
        return self

    def _drop_incomplete_rows(self, X):
        """Rows missing a ``missing="drop"`` value dropped before any step (a transformer
        cannot drop rows), per the declared metadata of the first TableEncoder."""
        first = next((t for _, t in self.steps[:-1] if _active(t)), None)
        if isinstance(first, TableEncoder) and first.metadata is not None \
                and isinstance(X, pd.DataFrame):
            metadata = as_metadata(first.metadata, X)
            if metadata.constraints:
                # the pipeline's generator sees encoded columns: it cannot enforce the rules,
                # and ignoring them silently would hand back rows that break them
                raise MetadataError(
                    f"the metadata declares {len(metadata.constraints)} constraint(s), which a "
                    "SynthesisPipeline cannot enforce (its generator sees encoded columns). Fit "
                    "the synthesizer on the DataFrame instead, e.g. "
                    "AIMSynthesizer(metadata=...).fit(df), where every sampled row satisfies "
                    "them.")
            return metadata.drop_incomplete_rows(X)
        return X

    def _preprocessing_privacy(self) -> dict:
        """What the fitted transformers read from the data, for the generator's budget and
        report, and the last :class:`~nhssynth.TableEncoder` (a generator that calibrates to
        released marginals decodes through it and uses its DP domain release).

        A :class:`~nhssynth.TableEncoder` with ``epsilon`` spends budget (its
        ``privacy_spends_``); one without reads every statistic its metadata does not declare
        without DP (``non_private_statistics_``); any other fitted transformer reads the data.
        """
        leaks: list[str] = []
        spends: list[dict] = []
        encoder = None
        for _, t in self.steps[:-1]:
            if isinstance(t, TableEncoder):
                leaks += list(t.non_private_statistics_)
                spends += list(t.privacy_spends_)
                encoder = t
            elif _active(t):
                leaks.append(f"{type(t).__name__}: fitted on the data")
        return {"spends": spends, "non_private_statistics": leaks, "encoder": encoder}

    def _check_steps(self) -> None:
        if not self.steps:
            raise ValueError("a SynthesisPipeline needs at least a generator step.")
        generator = self.steps[-1][1]
        if not hasattr(generator, "sample"):
            raise TypeError(f"the last step of a SynthesisPipeline must have a sample() method; got "
                            f"{type(generator).__name__}.")
        for name, t in self.steps[:-1]:
            if _active(t) and not (hasattr(t, "fit_transform") and hasattr(t, "inverse_transform")):
                raise TypeError(f"step {name!r} ({type(t).__name__}) must implement fit_transform and "
                                f"inverse_transform so samples can be mapped back.")

    def sample(self, n_samples: int, *, random_state: Any = None,
               path: str | os.PathLike | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
               overwrite: bool = False):
        """Draw ``n_samples`` rows and invert them through every transformer.

        Parameters
        ----------
        n_samples : int
        random_state : int, RandomState, Generator or None
            Seed of this draw (passed to the generator's ``sample``).
        path : str or os.PathLike, optional
            Write the rows to this Parquet file instead of returning them, ``chunk_size`` rows
            at a time, and return the path (:func:`nhssynth.sample_to_parquet`).  Needs pyarrow.
        chunk_size : int, default 250_000
            Rows per chunk when ``path`` is given.
        overwrite : bool, default False
            Replace ``path`` if it exists (otherwise :class:`FileExistsError`).

        Returns
        -------
        DataFrame, ndarray or pathlib.Path
            The rows, inverted through every transformer; the file's path when ``path`` is
            given.
        """
        generator = self.steps[-1][1]
        check_is_fitted(generator)
        if path is not None:
            return sample_to_parquet(self, n_samples, path, chunk_size=chunk_size,
                                     random_state=random_state, overwrite=overwrite)
        out = generator.sample(n_samples, random_state=random_state)
        for _, transformer in reversed(self.steps[:-1]):
            if _active(transformer):
                out = transformer.inverse_transform(out)
        return out

    def privacy_report(self):
        """Privacy report of the generator, with the transformers' spends included.

        Returns
        -------
        PrivacyReport
            The generator's report; its ledger already holds what the transformers spent and
            lists what they read without DP.
        """
        generator = self.steps[-1][1]
        if not hasattr(generator, "privacy_report"):
            raise AttributeError(f"{type(generator).__name__} has no privacy_report().")
        return generator.privacy_report()


def make_synthesis_pipeline(*steps, memory=None, verbose: bool = False) -> SynthesisPipeline:
    """Build a :class:`SynthesisPipeline`, naming steps by their lowercased class names.

    >>> from nhssynth import TableEncoder, DPVAESynthesizer, make_synthesis_pipeline
    >>> pipe = make_synthesis_pipeline(TableEncoder(), DPVAESynthesizer(epsilon=1.0))
    >>> [name for name, _ in pipe.steps]
    ['tableencoder', 'dpvaesynthesizer']
    """
    names = [type(s).__name__.lower() if _active(s) else "passthrough" for s in steps]
    counts = Counter(names)
    seen: Counter = Counter()
    unique = []
    for n in names:
        if counts[n] > 1:
            seen[n] += 1
            unique.append(f"{n}-{seen[n]}")
        else:
            unique.append(n)
    return SynthesisPipeline(list(zip(unique, steps)), memory=memory, verbose=verbose)
