"""Data-parallel DP-SGD: training speed of ``DPVAESynthesizer`` with 1 vs k processes.

Fits the same model (same seed, same DP settings) on the first ``--rows`` rows of the bundled
SUPPORT2 table with ``n_processes=1`` and ``n_processes=k``, each process on one thread
(``torch.set_num_threads(1)`` here, ``OMP_NUM_THREADS=1`` inherited by the workers), and
prints:

* training rows/s: rows of the Poisson batches processed per second of the training loop
  (the epochs' ``seconds`` in ``history_``, measured on rank 0: the all-reduce waits included,
  the worker start-up excluded), and its ratio k / 1;
* the wall time of the whole ``fit`` (encoding, the workers' start-up -- each imports torch and
  nhssynth -- and training);
* that epsilon is identical and how far the weights are from the single-process ones;
* the work of one rank, measured in this process on one thread: the training loop of rank 0 of
  ``k`` with an all-reduce that does nothing, against the single-process loop.  Their ratio is
  the speed-up ``k`` idle cores would give if communication were free -- an upper bound that a
  shared machine cannot distort the way it distorts the wall-clock ratio.

Run (2 idle cores at least): ``OMP_NUM_THREADS=1 python benchmarks/bench_distributed.py
[--rows 5000] [--epochs 10] [--batch-size 1024] [--hidden 128] [--processes 2] [--repeats 2]
[--json out.json]``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import torch

from nhssynth import DPVAESynthesizer
from nhssynth.datasets import load_example
from nhssynth.synthesizers.vae.losses import SpanLayout
from nhssynth.synthesizers.vae.networks import VAENetwork
from nhssynth.synthesizers.vae.training import DPSettings, train_vae


class _NoComm:
    """Rank 0 of ``world_size`` with an all-reduce that does nothing: one rank's work alone."""

    def __init__(self, world_size: int) -> None:
        self.rank, self.world_size = 0, world_size

    def all_reduce(self, tensor) -> None:
        pass


def _loop_seconds_per_step(model, Z, args, comm) -> float:
    layout = SpanLayout(model.output_spans_, Z.shape[1])
    net = VAENetwork(**model.network_.config)
    net.reset_parameters(torch.Generator().manual_seed(0))
    dp = DPSettings(model.noise_multiplier_, float(model.max_grad_norm), model.sample_rate_,
                    model.delta_, "rdp")
    history = train_vae(net, Z, layout, epochs=args.epochs, batch_size=args.batch_size,
                        learning_rate=model.learning_rate, beta=model.beta, weight_decay=0.0,
                        generator=torch.Generator().manual_seed(1), dp=dp,
                        sampling_generator=torch.Generator().manual_seed(2), comm=comm)
    later = history[1:] or history
    return sum(h["seconds"] for h in later) / (later[-1]["steps"] - later[0]["steps"]
                                                + round(1 / model.sample_rate_))


def _fit(df, md, args, n_processes):
    model = DPVAESynthesizer(epsilon=3.0, max_epochs=args.epochs, batch_size=args.batch_size,
                             calibrate=False, metadata=md, random_state=0,
                             hidden_dims=args.hidden, n_processes=n_processes)
    t0 = time.perf_counter()
    model.fit(df)
    wall = time.perf_counter() - t0
    rows = sum(h["rows"] for h in model.history_)
    seconds = sum(h["seconds"] for h in model.history_)
    later = model.history_[1:] or model.history_  # without the first epoch's warm-up
    return model, {"n_processes": n_processes, "fit_seconds": wall, "train_seconds": seconds,
                   "rows": rows, "steps": model.n_steps_, "rows_per_s": rows / seconds,
                   "rows_per_s_after_epoch_1": sum(h["rows"] for h in later)
                   / sum(h["seconds"] for h in later),
                   "epsilon": model.epsilon_}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--hidden", type=lambda v: tuple(int(h) for h in v.split(",")),
                        default=(128,), help="hidden widths, e.g. 256,256 (default 128)")
    parser.add_argument("--repeats", type=int, default=2, help="fits per setting; the fastest "
                        "training is kept (the machine may be shared)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    df, md = load_example(return_metadata=True)
    df = df.iloc[: args.rows]
    results, models = [], {}
    for k in (1, args.processes):
        runs = [_fit(df, md, args, k) for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r[1]["train_seconds"])
        models[k] = best[0]
        results.append(best[1])
        r = best[1]
        print(f"n_processes={k}: {r['rows_per_s']:,.0f} training rows/s ({r['rows']:,} rows, "
              f"{r['steps']} steps in {r['train_seconds']:.2f} s; "
              f"{r['rows_per_s_after_epoch_1']:,.0f} rows/s after epoch 1); "
              f"fit {r['fit_seconds']:.1f} s; epsilon {r['epsilon']:.6f}", flush=True)
    one, many = results
    diff = max((models[args.processes].network_.state_dict()[name] - w).abs().max().item()
               for name, w in models[1].network_.state_dict().items())
    Z = torch.from_numpy(models[1].encoder_.transform(df)).float()
    per_step_one = _loop_seconds_per_step(models[1], Z, args, None)
    per_step_rank = _loop_seconds_per_step(models[1], Z, args, _NoComm(args.processes))
    print(f"one rank's work (one thread, no communication): {1000 * per_step_rank:.1f} ms/step "
          f"vs {1000 * per_step_one:.1f} ms/step in one process: at most "
          f"{per_step_one / per_step_rank:.2f}x on {args.processes} idle cores")
    summary = {"rows": len(df), "columns": df.shape[1], "epochs": args.epochs,
               "batch_size": args.batch_size, "hidden_dims": list(args.hidden),
               "threads_per_process": 1,
               "speedup_training": many["rows_per_s"] / one["rows_per_s"],
               "speedup_training_after_epoch_1": many["rows_per_s_after_epoch_1"]
               / one["rows_per_s_after_epoch_1"],
               "speedup_fit": one["fit_seconds"] / many["fit_seconds"],
               "same_epsilon": one["epsilon"] == many["epsilon"],
               "max_weight_difference": diff,
               "loop_ms_per_step_one_process": 1000 * per_step_one,
               "loop_ms_per_step_one_rank_no_communication": 1000 * per_step_rank,
               "speedup_bound_idle_cores": per_step_one / per_step_rank, "cpu_count": os.cpu_count(), "runs": results}
    print(f"speed-up 1 -> {args.processes} processes: training {summary['speedup_training']:.2f}x "
          f"({summary['speedup_training_after_epoch_1']:.2f}x after epoch 1), "
          f"whole fit {summary['speedup_fit']:.2f}x; same epsilon: {summary['same_epsilon']}; "
          f"max |weight difference| {diff:.2e}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)


if __name__ == "__main__":
    main()
