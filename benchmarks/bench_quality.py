"""Fidelity of DPVAESynthesizer at epsilon 1, 3, 10 and non-private, next to two baselines.

For each table: 80/20 train/holdout split (seeded); every model is fitted on train and
sampled ``len(train)`` rows; scores compare with train:

* column shapes: mean KS complement (numeric) / TV complement (categorical) per column;
* pair trends: mean correlation similarity (numeric pairs) / contingency similarity (others);
* overall: mean of the two;
* relat.: share of the real table's dependence between columns kept (0 for independent columns,
  1 for a perfect copy; ``nhssynth.metrics.fidelity.relationship_score``).  Pair trends mix
  marginal and relationship errors; this column isolates the relationships.

Baselines from the same run: *independent columns* (each training column shuffled on its own:
perfect marginals, no relationships) and the *real holdout* (what fresh real data scores).

Metadata: categories are declared public (SUPPORT2: its data dictionary, shipped with
nhssynth; flchain: sex and ICD chapter names, public code lists); numeric bounds are NOT
declared, so DP preprocessing estimates them inside the budget.  A second flchain row at
epsilon=1 declares clinically plausible public bounds (not read from the data).

Each DP-VAE row is the mean over ``--seeds`` fits (random_state 0, 1, 2 by default): at
epsilon 1 the overall score of a single fit varies by several hundredths between seeds.

Run: ``python benchmarks/bench_quality.py [--quick] [--seeds N]``.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from nhssynth import DPVAESynthesizer, Metadata
from nhssynth.datasets import load_example
from nhssynth.metrics.fidelity import column_pair_trends, column_shapes, relationship_score

warnings.simplefilter("ignore")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FLCHAIN_PUBLIC_BOUNDS = {"age": (40, 110), "sample.yr": (1990, 2005), "kappa": (0, 30),
                         "lambda": (0, 30), "flc.grp": (1, 10), "creatinine": (0, 15),
                         "futime": (0, 6000)}


def split(df: pd.DataFrame, seed: int = 0):
    idx = np.random.default_rng(seed).permutation(len(df))
    cut = int(0.8 * len(df))
    return df.iloc[idx[:cut]].reset_index(drop=True), df.iloc[idx[cut:]].reset_index(drop=True)


def scores(train, other, md) -> tuple[float, float, float, float]:
    shapes = column_shapes(train, other, md)["score"].mean()
    pairs = column_pair_trends(train, other, md)
    trends = pairs["score"].mean()
    return shapes, trends, (shapes + trends) / 2, relationship_score(pairs)


def tables():
    df, md = load_example(return_metadata=True)
    df, md = df.drop(columns="sno"), md.select([c for c in md.names if c != "sno"])
    yield "support2", df, md, None
    csv = SHARED / "flchain.csv"
    if csv.exists():
        fl = pd.read_csv(csv, dtype=json.loads((SHARED / "flchain.dtypes.json").read_text()))
        fmd = Metadata.from_dataframe(fl)
        for c in fmd:
            if c.kind == "categorical":
                fmd = fmd.update(c.name, domain="declared")
        bounded = fmd
        for name, (lo, hi) in FLCHAIN_PUBLIC_BOUNDS.items():
            bounded = bounded.update(name, min=lo, max=hi, domain="declared")
        yield "flchain", fl, fmd, bounded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="epsilon 3 only, 5 epochs (smoke test)")
    ap.add_argument("--seeds", type=int, default=3,
                    help="fits per model (random_state 0..N-1); scores are averaged (default 3)")
    args = ap.parse_args()
    eps_list = [3.0] if args.quick else [1.0, 3.0, 10.0, None]
    extra = {"max_epochs": 5} if args.quick else {}
    print(f"{'table':<9} {'model':<28} {'shapes':>7} {'trends':>7} {'overall':>8} {'relat.':>6} {'min-max':>11} "
          f"{'eps spent':>9} {'fit s':>6}   (DP-VAE rows: mean over {args.seeds} seeds)")
    for name, df, md, bounded in tables():
        train, hold = split(df)
        indep = pd.DataFrame({c: train[c].sample(frac=1, random_state=i).to_numpy()
                              for i, c in enumerate(train.columns)}).astype(train.dtypes.to_dict())
        for label, frame in [("baseline: independent cols", indep), ("baseline: real holdout", hold)]:
            s = scores(train, frame, md)
            print(f"{name:<9} {label:<28} {s[0]:>7.3f} {s[1]:>7.3f} {s[2]:>8.3f} {s[3]:>6.3f}")
        runs = [(e, md, "", {}) for e in eps_list]
        if bounded is not None and not args.quick:
            runs.append((1.0, bounded, " +public bounds", {}))
        for eps, meta, tag, params in runs:
            all_scores, spent, secs = [], [], []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                synth = DPVAESynthesizer(epsilon=eps, metadata=meta, allow_non_private=True,
                                         random_state=seed, **{**params, **extra}).fit(train)
                secs.append(time.perf_counter() - t0)
                all_scores.append(scores(train, synth.sample(len(train), random_state=1), md))
                spent.append(synth.epsilon_)
            s = np.mean(all_scores, axis=0)
            lo, hi = min(x[2] for x in all_scores), max(x[2] for x in all_scores)
            label = ("DPVAE eps=" + (f"{eps:g}" if eps else "inf (non-DP)")) + tag
            spent_txt = f"{max(spent):.3f}" if eps else "-"
            print(f"{name:<9} {label:<28} {s[0]:>7.3f} {s[1]:>7.3f} {s[2]:>8.3f} {s[3]:>6.3f} {lo:>5.3f}-{hi:.3f} "
                  f"{spent_txt:>9} {np.mean(secs):>6.1f}", flush=True)


if __name__ == "__main__":
    main()
