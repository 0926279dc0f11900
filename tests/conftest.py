"""Shared fixtures: the real datasets in ../shared/data, read with their dtype sidecars."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(os.environ.get("NHSSYNTH_SHARED_DATA",
                                  Path(__file__).resolve().parents[1].parent / "shared" / "data"))
DATASETS = ("support2", "covid_testing", "flchain", "adult")


def load_shared(name: str, nrows: int | None = None) -> pd.DataFrame:
    csv = SHARED_DATA / f"{name}.csv"
    if not csv.exists():
        pytest.skip(f"shared dataset {csv} not available")
    dtypes = json.loads((SHARED_DATA / f"{name}.dtypes.json").read_text())
    return pd.read_csv(csv, dtype=dtypes, nrows=nrows)


@pytest.fixture(scope="session")
def shared_data():
    return load_shared
