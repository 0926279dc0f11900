"""nhssynth: differentially private synthetic health data with a scikit-learn API."""
from .exceptions import (MetadataError, NonPrivateOperationWarning, NotFittedError,
                         PrivacyBudgetError)
from .metadata import ColumnMetadata, Metadata

__version__ = "0.1.0"

__all__ = [
    "ColumnMetadata",
    "Metadata",
    "MetadataError",
    "NonPrivateOperationWarning",
    "NotFittedError",
    "PrivacyBudgetError",
    "__version__",
]
