"""Declared constraints: how often synthetic rows break real rules without them, and what
enforcing them costs.

Two real tables with rules that hold in every real row:

* ``support2`` (the bundled example, 9,105 rows): six ``<lab>_measured`` flags (True exactly
  when the lab value is present: ``missing_link``), ``d.time >= slos`` (``inequality``),
  ``dzclass`` determined by ``dzgroup`` and ``hospdead`` only when ``death``
  (``fixed_combinations``), ``charges >= 0`` (``positive``);
* ``flchain`` (``../shared/data``): ``chapter`` (cause of death) present exactly when
  ``death == 1`` (``missing_link``), ``futime >= 0`` (``positive``).

For each generator, fitted once without the constraints and once with them (same seed, same
parameters): fit and sample seconds, and the share of synthetic rows breaking each rule.
With constraints every share is 0 by construction (the script asserts it); the ratio of the
times is the cost.  One torch thread; run nothing else heavy at the same time.

    OMP_NUM_THREADS=1 python benchmarks/bench_constraints.py [--tables support2 flchain]
        [--generators AIM DPVAE Marginal] [--epsilon 1] [--vae-epsilon 3] [--json OUT]
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

from nhssynth import AIMSynthesizer, DPVAESynthesizer, MarginalSynthesizer, Metadata  # noqa: E402
from nhssynth.constraints import FixedCombinations, Inequality, MissingLink, Positive  # noqa: E402
from nhssynth.datasets import load_example  # noqa: E402

torch.set_num_threads(1)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABS = ["alb", "bili", "pafi", "ph", "glucose", "urine"]


def support2() -> tuple[pd.DataFrame, list]:
    df = load_example().drop(columns=["sno"])
    for lab in LABS:
        df[f"{lab}_measured"] = df[lab].notna()
    rules = [MissingLink(value=lab, flag=f"{lab}_measured") for lab in LABS]
    rules += [Inequality(low="slos", high="d.time"),
              FixedCombinations(columns=["dzgroup", "dzclass"]),
              FixedCombinations(columns=["death", "hospdead"]),
              Positive(column="charges")]
    return df, rules


def flchain() -> tuple[pd.DataFrame, list]:
    df = pd.read_csv(SHARED / "flchain.csv")
    return df, [MissingLink(value="chapter", flag="death", present=1, absent=0),
                Positive(column="futime")]


TABLES = {"support2": support2, "flchain": flchain}


def make(name: str, metadata: Metadata, eps: float, vae_eps: float, epochs: int | None):
    if name == "AIM":
        return AIMSynthesizer(epsilon=eps, metadata=metadata, random_state=0)
    if name == "Marginal":
        return MarginalSynthesizer(epsilon=eps, metadata=metadata, random_state=0)
    kw = {} if epochs is None else {"max_epochs": epochs}
    return DPVAESynthesizer(epsilon=vae_eps, metadata=metadata, random_state=0, **kw)


def shares(md: Metadata, rules, frame: pd.DataFrame, real: pd.DataFrame) -> dict[str, float]:
    """Share of rows breaking each rule; combinations without a declared list are checked
    against the real table's."""
    cols = {c.name: c for c in md.columns}
    out = {}
    for r in rules:
        r.check(cols)
        rule = r.with_reference(real) if isinstance(r, FixedCombinations) else r
        out[r.describe()] = float(np.mean(rule.violations(frame, cols)))
    return out


def run(table: str, generators, eps, vae_eps, epochs) -> list[dict]:
    df, rules = TABLES[table]()
    inferred = Metadata.from_dataframe(df)
    out = []
    for gen in generators:
        for label, md in (("without", inferred), ("with", Metadata(inferred.columns, rules))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                est = make(gen, md, eps, vae_eps, epochs).fit(df)
                t1 = time.perf_counter()
                fake = est.sample(len(df), random_state=1)
                t2 = time.perf_counter()
            v = shares(inferred, rules, fake, df)
            if label == "with":
                assert all(x == 0 for x in v.values()), v
            rec = {"table": table, "generator": gen, "constraints": label, "fit_s": t1 - t0,
                   "sample_s": t2 - t1, "violations": v,
                   "epsilon": vae_eps if gen == "DPVAE" else eps}
            print(json.dumps({k: (round(x, 2) if isinstance(x, float) else x)
                              for k, x in rec.items() if k != "violations"}), flush=True)
            out.append(rec)
    return out


RARE = {"dzgroup": "Cirrhosis", "age": (80.0, None)}   # 0.13 % of SUPPORT2's rows


def conditional_cost(eps: float, n: int = 5000) -> dict:
    """AIM on SUPPORT2: seconds of ``sample(n)`` vs ``sample(n, conditions=RARE)``."""
    df, _ = support2()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AIMSynthesizer(epsilon=eps, random_state=0).fit(df)
        t0 = time.perf_counter()
        plain = est.sample(n, random_state=1)
        t1 = time.perf_counter()
        rare = est.sample(n, random_state=1, conditions=RARE)
        t2 = time.perf_counter()
    share = float(((plain["dzgroup"] == "Cirrhosis") & (plain["age"] >= 80)).mean())
    assert len(rare) == n and (rare["dzgroup"] == "Cirrhosis").all() and (rare["age"] >= 80).all()
    rec = {"condition": "dzgroup == Cirrhosis and age >= 80", "share_real": float(
        ((df["dzgroup"] == "Cirrhosis") & (df["age"] >= 80)).mean()), "share_model": share,
        "unconditional_s": t1 - t0, "conditional_s": t2 - t1, "ratio": (t2 - t1) / (t1 - t0)}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rec.items()}),
          flush=True)
    return rec


def markdown(records: list[dict]) -> str:
    lines = []
    for table in dict.fromkeys(r["table"] for r in records):
        rs = [r for r in records if r["table"] == table]
        rules = list(rs[0]["violations"])
        lines += [f"\n### {table}\n", "| rule | " + " | ".join(
            f"{r['generator']} ε={r['epsilon']:g} {r['constraints']}" for r in rs
            if r["constraints"] == "without") + " |",
            "|---|" + "---|" * sum(r["constraints"] == "without" for r in rs)]
        for rule in rules:
            lines.append(f"| {rule} | " + " | ".join(
                f"{r['violations'][rule]:.1%}" for r in rs if r["constraints"] == "without")
                + " |")
        lines += ["", "| generator | fit s without / with | sample s without / with | "
                      "rows breaking a rule with constraints |", "|---|---|---|---|"]
        for gen in dict.fromkeys(r["generator"] for r in rs):
            a = next(r for r in rs if r["generator"] == gen and r["constraints"] == "without")
            b = next(r for r in rs if r["generator"] == gen and r["constraints"] == "with")
            lines.append(f"| {gen} | {a['fit_s']:.1f} / {b['fit_s']:.1f} | "
                         f"{a['sample_s']:.2f} / {b['sample_s']:.2f} | "
                         f"{max(b['violations'].values()):.0%} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    p.add_argument("--generators", nargs="+", default=["AIM", "DPVAE", "Marginal"],
                   choices=["AIM", "DPVAE", "Marginal"])
    p.add_argument("--epsilon", type=float, default=1.0, help="AIM and Marginal")
    p.add_argument("--vae-epsilon", type=float, default=3.0, help="DP-VAE")
    p.add_argument("--max-epochs", type=int, default=None, help="DP-VAE (default: its own)")
    p.add_argument("--conditional-only", action="store_true",
                   help="only time a rare conditional draw (AIM on SUPPORT2)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    records = []
    if not args.conditional_only:
        for table in args.tables:
            records += run(table, args.generators, args.epsilon, args.vae_epsilon,
                           args.max_epochs)
        print(markdown(records))
    cond = conditional_cost(args.epsilon)
    print(f"\nAIM epsilon={args.epsilon:g}, 5,000 rows meeting {cond['condition']} (real "
          f"{cond['share_real']:.2%}, model {cond['share_model']:.2%}): "
          f"{cond['conditional_s']:.2f} s vs {cond['unconditional_s']:.2f} s unconditional "
          f"({cond['ratio']:.1f}x)")
    if args.json:
        args.json.write_text(json.dumps({"runs": records, "conditional": cond}, indent=1))


if __name__ == "__main__":
    main()
