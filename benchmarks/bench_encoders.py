"""Speed of TableEncoder: fit / transform / inverse_transform on adult and a 1M-row resample.

Run: ``python benchmarks/bench_encoders.py [--rows 1000000] [--repeat 1]``.  Prints seconds
and rows/s per step; the 1M-row table is adult resampled with replacement (seed 0).
Targets (issue): fit on 1M rows < 10 s on a 2-core machine; transform/inverse >= 1M rows/s.

``transform`` is the first call after ``fit``; ``again`` is a second call made right after
``inverse`` (the previous output freed just before).  The difference is the cost of mapping
fresh memory for the output (1M x 150 float32 = 600 MB): on some virtual machines the first
touch of fresh pages costs more than the encoding itself.  The line "first touch" measures it
alone (allocate a zero matrix of the output's shape and write one value per row).
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from nhssynth import TableEncoder
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
        width = Z.shape[1]
        del Z
        _, t_again = timed(lambda: enc.transform(df))
        for k, v in (("fit", t_fit), ("transform", t_tr), ("inverse", t_inv), ("again", t_again)):
            best[k] = min(best.get(k, float("inf")), v)
    n = len(df)
    print(f"{name:<38} rows={n:>9,}  features_out={width:>4}  " + "  ".join(
        f"{k} {v:6.2f}s ({n / v / 1e6:5.2f} M rows/s)" for k, v in best.items()))


def first_touch(n: int, width: int) -> float:
    """Seconds to allocate a fresh (n, width) float32 zero matrix and write one value per row."""
    def touch():
        a = np.zeros((n, width), dtype=np.float32)
        a[:, 0] = 1.0
    return timed(touch)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    adult = load_adult()
    md = Metadata.from_dataframe(adult)
    big = adult.sample(n=args.rows, replace=True, random_state=0).reset_index(drop=True)
    width = TableEncoder(md, random_state=0).fit(adult).n_features_out_
    print(f"first touch of a fresh {len(big):,} x {width} float32 matrix: "
          f"{first_touch(len(big), width):.2f}s (paid by a transform whose output lands in fresh "
          f"memory)")
    _, t_infer = timed(lambda: Metadata.from_dataframe(big))
    print(f"Metadata.from_dataframe on {len(big):,} rows: {t_infer:.2f}s (included in 'inferred' fits)")
    bench("adult, metadata inferred", adult, None, args.repeat)
    bench("adult, metadata given", adult, md, args.repeat)
    bench(f"adult x{len(big) // len(adult)} resample, inferred", big, None, args.repeat)
    bench(f"adult x{len(big) // len(adult)} resample, metadata given", big, md, args.repeat)


if __name__ == "__main__":
    main()
