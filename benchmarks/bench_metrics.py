"""Time every metric on the adult table (48,842 rows): python benchmarks/bench_metrics.py

The "synthetic" table is a non-private MarginalSynthesizer sample of the same size as the
training half; the other half is the holdout.  Prints seconds per metric, measured in one run.
Set NHSSYNTH_METRICS_THREADS to change the OpenMP thread cap of the metrics (default 1).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nhssynth.metrics import (column_pair_trends, column_shapes, coverage, dcr, detection,
                              exact_copy_rate, membership_inference, missing_similarity, nndr, tstr)
from nhssynth.metrics._encoding import resolve_metadata
from nhssynth.synthesizers import MarginalSynthesizer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DATA / "adult.csv"))
    parser.add_argument("--target", default="income_per_year")
    parser.add_argument("--max-rows", type=int, default=None,
                        help="cap of the distance/detection metrics (default: all rows)")
    args = parser.parse_args()
    path = Path(args.data)
    df = pd.read_csv(path, dtype=json.loads(path.with_suffix(".dtypes.json").read_text()))
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(df))
    train, holdout = df.iloc[perm[: len(df) // 2]], df.iloc[perm[len(df) // 2:]]
    md = resolve_metadata(None, df)
    synth = MarginalSynthesizer(metadata=md, random_state=0).fit(train).sample(len(train), random_state=0)
    print(f"{path.name}: train {len(train)}, holdout {len(holdout)}, synthetic {len(synth)} rows, "
          f"{len(md)} columns")
    mr = args.max_rows
    jobs = {
        "column_shapes": lambda: column_shapes(train, synth, md),
        "missing_similarity": lambda: missing_similarity(train, synth, md),
        "coverage": lambda: coverage(train, synth, md),
        "column_pair_trends": lambda: column_pair_trends(train, synth, md),
        "detection (10k rows/side, default)": lambda: detection(train, synth, md),
        f"detection (max_rows={mr})": lambda: detection(train, synth, md, max_rows=mr),
        "utility (TSTR+TRTR)": lambda: tstr(train, synth, args.target, holdout, md),
        f"dcr + share (max_rows={mr})": lambda: dcr(train, synth, holdout, md, max_rows=mr),
        f"nndr (max_rows={mr})": lambda: nndr(train, synth, md, max_rows=mr),
        "exact_copy_rate": lambda: exact_copy_rate(train, synth, md),
        f"membership_inference (max_rows={mr})": lambda: membership_inference(
            train, synth, holdout, md, max_rows=mr),
    }
    for name, job in jobs.items():
        t0 = time.perf_counter()
        job()
        print(f"  {name:42s} {time.perf_counter() - t0:7.2f} s")


if __name__ == "__main__":
    main()
