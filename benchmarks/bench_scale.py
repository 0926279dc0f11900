"""Rows/s and peak memory of ``sample_to_parquet`` against the number of rows, next to the
in-memory baseline (``generator.sample(n)`` then ``DataFrame.to_parquet``) measured in the same
run (docs/scale.md has the numbers).

Each (method, n) runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own; the
generator is fitted once in the parent and pickled to the children.  One thread everywhere
(OMP_NUM_THREADS=1, pyarrow's CPU and IO pools set to 1).

    python benchmarks/bench_scale.py                       # n = 1e4, 1e5, 1e6
    python benchmarks/bench_scale.py --max 1e7             # up to 1e7
    python benchmarks/bench_scale.py --generator marginal  # all 48 columns, MarginalSynthesizer
    python benchmarks/bench_scale.py --no-baseline --max 1e8   # 100M rows, chunked only
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

AIM_COLUMNS = ["age", "sex", "dzclass", "income", "charges", "hospdead", "num.co", "edu", "race",
               "scoma"]


def _rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(method: str, n: int, model: str, out: str, chunk_size: int) -> None:
    import pyarrow as pa

    from nhssynth import sample_to_parquet

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    with open(model, "rb") as f:
        generator = pickle.load(f)
    generator.sample(10, random_state=0)  # warm up (imports, caches) before the baseline RSS
    base = _rss_mb()
    t = time.perf_counter()
    if method == "chunked":
        sample_to_parquet(generator, n, out, chunk_size=chunk_size, random_state=0,
                          overwrite=True)
    else:
        generator.sample(n, random_state=0).to_parquet(out, index=False)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "peak_rss_mb": _rss_mb(), "base_rss_mb": base,
                      "file_mb": os.path.getsize(out) / 2**20}))


def fit(generator: str):
    from nhssynth import AIMSynthesizer, MarginalSynthesizer
    from nhssynth.datasets import load_example

    df, md = load_example(return_metadata=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if generator == "aim":
            return AIMSynthesizer(metadata=md.select(AIM_COLUMNS), epsilon=1.0,
                                  random_state=0).fit(df[AIM_COLUMNS]), len(AIM_COLUMNS)
        return MarginalSynthesizer(metadata=md, epsilon=1.0, random_state=0).fit(df), df.shape[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generator", choices=["aim", "marginal"], default="aim")
    ap.add_argument("--max", type=float, default=1e6, help="largest n (powers of ten from 1e4)")
    ap.add_argument("--chunk-size", type=int, default=250_000)
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the in-memory baseline (for n that would not fit in memory)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        method, n, model, out, chunk = args.child
        child(method, int(n), model, out, int(chunk))
        return

    generator, n_cols = fit(args.generator)
    sizes = [10 ** k for k in range(4, 20) if 10 ** k <= args.max]
    methods = ["chunked"] + ([] if args.no_baseline else ["in_memory"])
    print(f"generator={args.generator} ({n_cols} columns), chunk_size={args.chunk_size}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print("| n | method | seconds | rows/s | peak RSS MB | RSS over start MB | file MB |")
    print("|---|---|---|---|---|---|---|")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.pkl"
        model.write_bytes(pickle.dumps(generator))
        for n in sizes:
            for method in methods:
                out = Path(tmp) / f"{method}.parquet"
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", method, str(n), str(model), str(out),
                     str(args.chunk_size)], env=env, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(f"| {n:.0e} | {method} | failed: {proc.stderr.strip()[-300:]} |")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"| {n:.0e} | {method} | {r['seconds']:.2f} | {n / r['seconds']:,.0f} | "
                      f"{r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] - r['base_rss_mb']:.0f} | "
                      f"{r['file_mb']:.1f} |", flush=True)
                out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
