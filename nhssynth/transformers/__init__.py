"""The column encoders under their public import path (``nhssynth.transformers``).

They live in :mod:`nhssynth.encoders`; this module re-exports them so that
``from nhssynth.transformers import GMMEncoder`` keeps working.
"""
from ..encoders import (CategoricalEncoder, DatetimeEncoder, GMMEncoder, MinMaxEncoder,
                        MissingIndicatorEncoder)

__all__ = ["CategoricalEncoder", "DatetimeEncoder", "GMMEncoder", "MinMaxEncoder",
           "MissingIndicatorEncoder"]
