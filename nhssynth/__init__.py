"""nhssynth: differentially private synthetic health data with a scikit-learn API.

>>> from nhssynth import DPVAESynthesizer
>>> from nhssynth.datasets import load_example
>>> df = load_example()                                            # doctest: +SKIP
>>> synth = DPVAESynthesizer(epsilon=3.0, random_state=0).fit(df)  # doctest: +SKIP
>>> fake = synth.sample(1000, random_state=1)                      # doctest: +SKIP
"""
import logging as _logging

from ._version import __version__
from .encoders import TableEncoder
from .exceptions import (EncodingError, MetadataError, NonPrivateOperationWarning, NotFittedError,
                         PrivacyBudgetError)
from .metadata import ColumnMetadata, Metadata
from .synthesizers import AIMSynthesizer, DPVAESynthesizer, MarginalSynthesizer
from .pipeline import SynthesisPipeline, make_synthesis_pipeline
from .sampling_io import sample_to_parquet
from .table_source import TableSource
from .suggest import suggest_constraints


_logging.getLogger("nhssynth").addHandler(_logging.NullHandler())

__all__ = [
    "AIMSynthesizer",
    "ColumnMetadata",
    "DPVAESynthesizer",
    "EncodingError",
    "MarginalSynthesizer",
    "Metadata",
    "MetadataError",
    "NonPrivateOperationWarning",
    "NotFittedError",
    "PrivacyBudgetError",
    "SynthesisPipeline",
    "TableEncoder",
    "TableSource",
    "make_synthesis_pipeline",
    "sample_to_parquet",
    "suggest_constraints",
    "__version__",
]
