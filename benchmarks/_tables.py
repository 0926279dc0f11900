"""Metadata rule and CSV exchange shared by the benchmark, the judge and the peers.

Pure pandas/numpy: this module is imported both in the nhssynth environment
(``bench_quality.py``) and in the peers environment (``_judge.py``, ``peers/run_peer.py``),
so every party reads the same column kinds and the same CSV representation.

Metadata rule (one rule for every method and for the judge)
-----------------------------------------------------------
* datetime dtype -> ``datetime``;
* bool, object, string or category dtype, or at most 10 distinct non-missing values ->
  ``categorical``;
* anything else -> ``numerical``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

MAX_CATEGORIES = 10
KINDS = ("categorical", "numerical", "datetime")


def column_kinds(df: pd.DataFrame, max_categories: int = MAX_CATEGORIES) -> dict[str, str]:
    """Apply the metadata rule to every column of ``df``.

    Parameters
    ----------
    df : DataFrame
        The real table, with its intended dtypes.
    max_categories : int, default 10
        Numeric columns with at most this many distinct values are categorical.

    Returns
    -------
    dict
        Column name -> ``"categorical"``, ``"numerical"`` or ``"datetime"``, in column order.
    """
    kinds = {}
    for name in df.columns:
        s = df[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            kinds[name] = "datetime"
        elif (pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype)
              or pd.api.types.is_string_dtype(s.dtype)
              or isinstance(s.dtype, pd.CategoricalDtype)
              or s.nunique(dropna=True) <= max_categories):
            kinds[name] = "categorical"
        else:
            kinds[name] = "numerical"
    return kinds


def _category_text(value: object) -> object:
    """Canonical text of one category: integral floats lose their ``.0``; missing stays None."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def write_table(df: pd.DataFrame, path: Path, kinds: dict[str, str]) -> None:
    """Write ``df`` as CSV with categorical values in canonical text.

    A category such as ``1`` is written ``1`` whether the frame holds it as an integer, a
    float or a string, so that real and synthetic tables agree value for value.

    Parameters
    ----------
    df : DataFrame
    path : Path
    kinds : dict
        Column kinds of the metadata rule.
    """
    out = df[list(kinds)].copy()
    for name, kind in kinds.items():
        if kind == "categorical":
            out[name] = out[name].astype(object).map(_category_text)
    out.to_csv(path, index=False)


def read_table(path: Path, kinds: dict[str, str]) -> pd.DataFrame:
    """Read a CSV written by :func:`write_table` (or a peer) in the judge's representation.

    Categorical columns are strings (missing = NaN), numerical columns float64, datetime
    columns ``datetime64``.

    Parameters
    ----------
    path : Path
    kinds : dict
        Column kinds of the metadata rule.

    Returns
    -------
    DataFrame
    """
    dtype = {c: (object if k in ("categorical", "datetime") else "float64")
             for c, k in kinds.items()}
    df = pd.read_csv(path, dtype=dtype, usecols=list(kinds))[list(kinds)]
    for name, kind in kinds.items():
        if kind == "datetime":
            df[name] = pd.to_datetime(df[name], errors="coerce")
    return df


def write_kinds(kinds: dict[str, str], path: Path) -> None:
    """Write the column kinds as JSON (read by the judge and the peers)."""
    path.write_text(json.dumps(kinds, indent=1))


def read_kinds(path: Path) -> dict[str, str]:
    """Read the column kinds written by :func:`write_kinds`."""
    kinds = json.loads(Path(path).read_text())
    bad = {k for k in kinds.values() if k not in KINDS}
    if bad:
        raise ValueError(f"unknown column kind(s) {sorted(bad)} in {path}")
    return kinds
