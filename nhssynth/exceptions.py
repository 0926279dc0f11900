"""Errors and warnings raised by nhssynth.

Every error names the column or parameter at fault and says how to fix it.
"""
from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

__all__ = [
    "NhssynthError",
    "MetadataError",
    "EncodingError",
    "PrivacyBudgetError",
    "SamplingError",
    "NotFittedError",
    "NonPrivateOperationWarning",
    "MetadataWarning",
    "PrivacyWarning",
]


class NhssynthError(Exception):
    """Base class of every error raised deliberately by nhssynth."""


class MetadataError(NhssynthError, ValueError):
    """A DataFrame does not match its metadata, or the metadata itself is invalid."""


class EncodingError(NhssynthError, ValueError):
    """Data cannot be encoded or decoded (unseen category, inf values, wrong width...)."""


class PrivacyBudgetError(NhssynthError, ValueError):
    """The requested privacy budget cannot be met (or was exceeded) with these settings."""


class SamplingError(NhssynthError, RuntimeError):
    """A draw could not return the rows asked for.

    Constraints or conditions rejected too many draws; the message says which rule rejected
    what share.
    """


# Alias, not a subclass: ``sklearn.utils.validation.check_is_fitted`` raises sklearn's class,
# and ``except nhssynth.exceptions.NotFittedError`` must catch it.
NotFittedError = _SklearnNotFittedError


class NonPrivateOperationWarning(UserWarning):
    """Something was computed from the real data without differential privacy."""


class MetadataWarning(UserWarning):
    """Metadata inference made a guess the user should check."""


class PrivacyWarning(UserWarning):
    """A privacy setting is legal but unwise (e.g. delta close to 1/n)."""
