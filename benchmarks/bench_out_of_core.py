"""Out-of-core fit: rows/s and peak memory of ``AIMSynthesizer.fit(path)`` (or, with
``--generator dpvae``, ``DPVAESynthesizer.fit(path)``) against the number of rows, next to the in-memory fit (``pd.read_parquet`` then ``fit(df)``) measured in the same
run (docs/scale.md has the numbers).

The table is ``../shared/data/adult.csv`` (48,842 x 15) resampled with replacement to ``n``
rows and written to Parquet in row groups of 200,000 (the writer never holds the table).  Each
(method, n) fit runs in a fresh child process at epsilon = 1, metadata inferred, seed 0, so its
peak RSS (``ru_maxrss``) is its own.  One thread everywhere.

    python benchmarks/bench_out_of_core.py                      # n = 1e4 .. 1e6, both methods
    python benchmarks/bench_out_of_core.py --max 1e7 --plot docs/images/out_of_core.png
    python benchmarks/bench_out_of_core.py --generator dpvae --max-epochs 1 --max 1e6
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adult.csv"
ROW_GROUP = 200_000


def _rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_table(n: int, path: Path) -> None:
    """``n`` rows of adult drawn with replacement, written one row group at a time."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = pd.read_csv(DATA)
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, n, ROW_GROUP):
        part = df.iloc[rng.integers(0, len(df), size=min(ROW_GROUP, n - start))]
        table = pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def child(method: str, path: str, generator: str, max_epochs: int) -> None:
    import pandas as pd
    import pyarrow as pa

    from nhssynth import AIMSynthesizer, DPVAESynthesizer

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    base = _rss_mb()
    t = time.perf_counter()
    X = path if method == "out_of_core" else pd.read_parquet(path)
    read = time.perf_counter() - t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AIMSynthesizer(epsilon=1.0, random_state=0) if generator == "aim" else \
            DPVAESynthesizer(epsilon=1.0, random_state=0, max_epochs=max_epochs)
        model.fit(X)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "read_seconds": read, "peak_rss_mb": _rss_mb(),
                      "base_rss_mb": base, "epsilon": model.epsilon_,
                      "measured": len(getattr(model, "measured_", []))}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max", type=float, default=1e6, help="largest n (powers of ten from 1e4)")
    ap.add_argument("--max-in-memory", type=float, default=None,
                    help="largest n for the in-memory fit (default: --max)")
    ap.add_argument("--json", help="write the measurements to this JSON file")
    ap.add_argument("--plot", help="write seconds and peak RSS against rows to this PNG")
    ap.add_argument("--generator", choices=["aim", "dpvae"], default="aim")
    ap.add_argument("--max-epochs", type=int, default=1,
                    help="max_epochs of the DP-VAE (default 1: an epoch reads every row once)")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        method, path, generator, epochs = args.child
        child(method, path, generator, int(epochs))
        return
    max_mem = args.max if args.max_in_memory is None else args.max_in_memory
    sizes = [10 ** k for k in range(4, 20) if 10 ** k <= args.max]
    name = "AIMSynthesizer(epsilon=1)" if args.generator == "aim" else \
        f"DPVAESynthesizer(epsilon=1, max_epochs={args.max_epochs})"
    print(f"{name}, adult resampled (15 columns), "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print("| n | method | fit seconds (read included) | rows/s | peak RSS MB | out-of-core / "
          "in-memory seconds |")
    print("|---|---|---|---|---|---|")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"adult_{n}.parquet"
            write_table(n, path)
            seconds = {}
            for method in ["in_memory", "out_of_core"]:
                if method == "in_memory" and n > max_mem:
                    continue
                proc = subprocess.run([sys.executable, __file__, "--child", method, str(path),
                                       args.generator, str(args.max_epochs)],
                                      env=env, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    print(f"| {n:.0e} | {method} | failed: {proc.stderr.strip()[-300:]} |")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                seconds[method] = r["seconds"]
                rows.append({"n": n, "method": method, **r})
                ratio = (f"{seconds['out_of_core'] / seconds['in_memory']:.2f}"
                         if len(seconds) == 2 else "")
                print(f"| {n:.0e} | {method} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | "
                      f"{r['peak_rss_mb']:.0f} | {ratio} |", flush=True)
            path.unlink()
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if args.plot:
        plot(rows, args.plot, name)


def plot(rows: list[dict], path: str, name: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for method, style in [("in_memory", "o--"), ("out_of_core", "s-")]:
        mine = [r for r in rows if r["method"] == method]
        n = [r["n"] for r in mine]
        axes[0].plot(n, [r["seconds"] for r in mine], style, label=method.replace("_", " "))
        axes[1].plot(n, [r["peak_rss_mb"] for r in mine], style, label=method.replace("_", " "))
    axes[0].set(xscale="log", yscale="log", xlabel="rows", ylabel="fit seconds (1 thread)")
    axes[1].set(xscale="log", yscale="log", xlabel="rows", ylabel="peak RSS (MB)")
    axes[1].axhline(1536, color="grey", lw=0.8, ls=":")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{name}.fit, adult resampled to n rows x 15 columns")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
