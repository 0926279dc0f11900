"""Helpers (no tests): small correlated tables with every column kind, shared by the metrics tests."""
from __future__ import annotations

import numpy as np
import pandas as pd


def make_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Columns strongly related to each other, of every kind, with missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, n)
    y = x * 2 + rng.normal(0, 3, n)
    group = np.where(x > 55, "high", np.where(x > 45, "mid", "low"))
    flag = (y + rng.normal(0, 5, n)) > 100
    count = pd.array(np.round(np.clip(x / 10 + rng.normal(0, 0.5, n), 0, None)).astype(int), dtype="Int64")
    count[rng.random(n) < 0.1] = pd.NA
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.round(x * 3), unit="D")
    z = y.copy()
    z[rng.random(n) < 0.15] = np.nan
    return pd.DataFrame({
        "x": np.round(x, 3), "y": np.round(z, 3),
        "group": pd.Categorical(group, categories=["low", "mid", "high"]),
        "flag": flag, "count": count, "when": pd.Series(when),
    })


def shuffle_columns(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Each column permuted independently: same marginals, no relationships."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: df[c].to_numpy()[rng.permutation(len(df))] for c in df.columns}
                        ).astype(df.dtypes.to_dict())
