"""Invertible column encoders (scikit-learn transformers).

Each works column by column on a 2-D input and has an exact ``inverse_transform`` (see
``docs/encoders.md``); :class:`nhssynth.encoding.TableEncoder` routes table columns to them.
"""
from .categorical import CategoricalEncoder
from .datetime import DatetimeEncoder
from .gmm import GMMEncoder
from .missing import MissingIndicatorEncoder
from .numeric import MinMaxEncoder

__all__ = ["CategoricalEncoder", "DatetimeEncoder", "GMMEncoder", "MinMaxEncoder",
           "MissingIndicatorEncoder"]
