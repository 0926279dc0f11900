"""Invertible encoders: one scikit-learn transformer per column kind, and the table router.

Each column encoder works column by column on a 2-D input and has an exact
``inverse_transform`` (see ``docs/encoders.md``); :class:`TableEncoder` routes the columns of a
table to them from its :class:`~nhssynth.Metadata`.
"""
from .categorical import CategoricalEncoder
from .datetime import DatetimeEncoder
from .gmm import GMMEncoder
from .missing import MissingIndicatorEncoder
from .numeric import MinMaxEncoder
from .table import TableEncoder

__all__ = ["CategoricalEncoder", "DatetimeEncoder", "GMMEncoder", "MinMaxEncoder",
           "MissingIndicatorEncoder", "TableEncoder"]
