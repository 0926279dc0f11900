"""Do the categories that matter survive the DP domain step?  Issue 14's target, measured.

Target (issue 14, item 3): at ε = 1, every category holding >= 2 % and >= 150 rows of its
column appears in the synthetic output of every seed, on every table in ../shared/data.

Each generator is fitted as ``bench_quality.py`` fits it (default parameters, no metadata, the
same table files and the same 20,000-row subsample of adult), sampled to as many rows as the
table, and every categorical column (the benchmark's metadata rule) is checked: its real
categories above both thresholds against the set of values in the sample.

    python benchmarks/bench_categories.py                                  # all, 3 seeds
    python benchmarks/bench_categories.py --tables flchain --seeds 1 --generators AIMSynthesizer

Prints one line per fit and a summary table (markdown); ``--json`` keeps the runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402

import nhssynth  # noqa: E402
from _tables import _category_text, column_kinds  # noqa: E402
from bench_quality import fit_generator, load_table  # noqa: E402

SHARE, ROWS = 0.02, 150
TABLES = ["flchain", "support2", "covid_testing", "adult"]


def big_categories(real: pd.DataFrame) -> dict[str, list]:
    """Column -> its categories holding >= SHARE and >= ROWS of the rows (categorical columns
    by the benchmark's metadata rule)."""
    n = len(real)
    out = {}
    for name, kind in column_kinds(real).items():
        if kind != "categorical":
            continue
        counts = real[name].map(_category_text).value_counts(dropna=True)
        big = counts[(counts >= SHARE * n) & (counts >= ROWS)]
        if len(big):
            out[name] = list(big.index)
    return out


def lost_categories(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[int, list[str]]:
    """How many big categories ``real`` has, and those absent from ``synthetic``."""
    big = big_categories(real)
    lost = []
    for name, cats in big.items():
        seen = set(synthetic[name].map(_category_text).dropna())
        lost += [f"{name}={c}" for c in cats if c not in seen]
    return sum(len(c) for c in big.values()), lost


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--generators", default="AIMSynthesizer,DPVAESynthesizer")
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--max-rows", type=int, default=20000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    runs = []
    for table in args.tables.split(","):
        real, note = load_table(table, args.max_rows)
        for gen in args.generators.split(","):
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                try:
                    synthetic, fit_s, _ = fit_generator(getattr(nhssynth, gen), real,
                                                        args.epsilon, seed, quick=False)
                except Exception as exc:  # a refusal is a result here, not a crash
                    runs.append({"table": table, "generator": gen, "seed": seed,
                                 "error": f"{type(exc).__name__}: {exc}"[:300]})
                    print(f"{table} {gen} seed {seed}: {runs[-1]['error']}", flush=True)
                    continue
                n_big, lost = lost_categories(real, synthetic)
                runs.append({"table": table, "generator": gen, "seed": seed, "big": n_big,
                             "lost": lost, "fit_s": round(fit_s, 1)})
                print(f"{table} {gen} seed {seed}: {n_big - len(lost)}/{n_big} kept"
                      f"{'; lost ' + ', '.join(lost) if lost else ''} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\nε = {args.epsilon}; categories holding >= {SHARE:.0%} and >= {ROWS} rows of their "
          f"column, kept in the synthetic output of every seed ({args.seeds} seeds)\n")
    print("| table | generator | big categories | kept in every seed | lost (seed: category) |")
    print("|---|---|---|---|---|")
    for table in args.tables.split(","):
        for gen in args.generators.split(","):
            mine = [r for r in runs if r["table"] == table and r["generator"] == gen]
            done = [r for r in mine if "big" in r]
            if not done:
                print(f"| {table} | {gen} | - | refused | {mine[0]['error'] if mine else ''} |")
                continue
            lost = {c for r in done for c in r["lost"]}
            where = "; ".join(f"{r['seed']}: {', '.join(r['lost'])}" for r in done if r["lost"])
            every = done[0]["big"] - len(lost)
            print(f"| {table} | {gen} | {done[0]['big']} | {every} "
                  f"({'all' if not lost else 'not all'}, {len(done)} of {len(mine)} seeds fit) "
                  f"| {where or '-'} |")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
