"""Speed of TableEncoder: fit / transform / inverse_transform on adult and a 1M-row resample.

Run: ``python benchmarks/bench_encoders.py [--rows 1000000] [--repeat 1]``.  Prints seconds
and rows/s per step; the 1M-row table is adult resampled with replacement (seed 0).
Targets (issue): fit on 1M rows < 10 s on a 2-core machine; transform/inverse >= 1M rows/s.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import pandas as pd

from nhssynth.encoding import TableEncoder
from nhssynth.metadata import Metadata

DATA = Path(os.environ.get("NHSSYNTH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_adult() -> pd.DataFrame:
    dtypes = json.loads((DATA / "adult.dtypes.json").read_text())
    return pd.read_csv(DATA / "adult.csv", dtype=dtypes)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def bench(name: str, df: pd.DataFrame, metadata: Metadata | None, repeat: int) -> None:
    best = {}
    for _ in range(repeat):
        enc = TableEncoder(metadata, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, t_fit = timed(lambda: enc.fit(df))
        Z, t_tr = timed(lambda: enc.transform(df))
        _, t_inv = timed(lambda: enc.inverse_transform(Z))
        for k, v in (("fit", t_fit), ("transform", t_tr), ("inverse", t_inv)):
            best[k] = min(best.get(k, float("inf")), v)
    n = len(df)
    print(f"{name:<38} rows={n:>9,}  features_out={Z.shape[1]:>4}  " + "  ".join(
        f"{k} {v:6.2f}s ({n / v / 1e6:5.2f} M rows/s)" for k, v in best.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    adult = load_adult()
    md = Metadata.from_dataframe(adult)
    big = adult.sample(n=args.rows, replace=True, random_state=0).reset_index(drop=True)
    _, t_infer = timed(lambda: Metadata.from_dataframe(big))
    print(f"Metadata.from_dataframe on {len(big):,} rows: {t_infer:.2f}s (included in 'inferred' fits)")
    bench("adult, metadata inferred", adult, None, args.repeat)
    bench("adult, metadata given", adult, md, args.repeat)
    bench(f"adult x{len(big) // len(adult)} resample, inferred", big, None, args.repeat)
    bench(f"adult x{len(big) // len(adult)} resample, metadata given", big, md, args.repeat)


if __name__ == "__main__":
    main()
