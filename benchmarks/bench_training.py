"""Training throughput: DP-SGD (ghost clipping) vs non-private vs opacus per-sample hooks.

All three train the *same* VAE network on the same encoded table with the same batch size, in
one process, so the ratios are measured in one run:

* non-private: mini-batch Adam, mean loss, ordinary back-propagation (the baseline);
* nhssynth DP-SGD: Poisson batches, ghost-norm clipping, Gaussian noise (what ``fit`` runs);
* opacus hooks: per-sample gradients materialised by opacus' ``GradSampleModule``, then
  clipped and summed (the "slow way").

Also prints the wall time of ``DPVAESynthesizer.fit`` on the bundled SUPPORT2 table and on
adult.  Run: ``python benchmarks/bench_training.py [--device cuda] [--quick]``.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import torch

from nhssynth import DPVAESynthesizer, TableEncoder
from nhssynth.datasets import load_example
from nhssynth.synthesizers.vae.losses import SpanLayout
from nhssynth.synthesizers.vae.networks import VAENetwork
from nhssynth.synthesizers.vae.training import vae_losses
from nhssynth.privacy.dpsgd import GaussianNoise, add_noise, ghost_clipped_gradients, poisson_batch_indices

warnings.simplefilter("ignore")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _encoded_support():
    df, md = load_example(return_metadata=True)
    enc = TableEncoder(metadata=md, random_state=0)
    return torch.from_numpy(enc.fit_transform(df)), enc.output_spans_


def _network(Z, spans, hidden, device):
    layout = SpanLayout(spans, Z.shape[1])
    net = VAENetwork(Z.shape[1], layout.n_continuous, 32, hidden).to(device)
    net.reset_parameters(torch.Generator().manual_seed(0))
    layout = _layout_to(layout, device)
    return net, layout


def _layout_to(layout, device):
    for name in ("continuous", "binary", "softmax_index", "softmax_mask", "softmax_features",
                 "continuous_gate", "binary_gate", "softmax_gate"):
        setattr(layout, name, getattr(layout, name).to(device))
    return layout


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def rows_per_second(mode: str, Z, spans, batch: int, steps: int, hidden, device: str) -> float:
    net, layout = _network(Z, spans, hidden, device)
    X = Z.to(device)
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    g = torch.Generator(device=device).manual_seed(0) if device.startswith("cuda") else torch.Generator().manual_seed(0)
    cpu_g = torch.Generator().manual_seed(1)
    noise = GaussianNoise(g)
    n = X.shape[0]
    q = batch / n
    if mode == "opacus":
        from opacus import GradSampleModule
        gsm = GradSampleModule(net)

    def step():
        if mode == "nonprivate":
            idx = torch.randint(0, n, (batch,), generator=cpu_g).to(device)
            opt.zero_grad(set_to_none=True)
            rec, kl = vae_losses(net, layout, X[idx], 1.0, g)
            (rec + kl).mean().backward()
            return len(idx)
        idx = poisson_batch_indices(n, q, cpu_g).to(device)
        xb = X[idx]
        if mode == "ghost":
            grads, _, _ = ghost_clipped_gradients(
                lambda r: (lambda rec_kl: rec_kl[0] + rec_kl[1])(vae_losses(net, layout, xb, 1.0, g, r)), 1.0)
        else:  # opacus: materialised per-sample gradients, then clip and sum
            opt.zero_grad(set_to_none=True)
            rec, kl = vae_losses(gsm._module, layout, xb, 1.0, g)
            (rec + kl).sum().backward()
            per = [p.grad_sample.reshape(len(idx), -1) for p in params]
            norms = torch.cat(per, dim=1).norm(dim=1)
            scale = (1.0 / (norms + 1e-6)).clamp(max=1.0)
            grads = {p: torch.einsum("i,i...->...", scale, p.grad_sample) for p in params}
            for p in params:
                p.grad_sample = None
        add_noise(grads, params, 1.0, 1.0, q * n, noise)
        return len(idx)

    for _ in range(3):  # warm-up
        step()
        opt.step()
    _sync(device)
    rows, t0 = 0, time.perf_counter()
    for _ in range(steps):
        rows += step()
        opt.step()
    _sync(device)
    return rows / (time.perf_counter() - t0)


def fit_time(df, md, **params) -> tuple[float, float]:
    t0 = time.perf_counter()
    synth = DPVAESynthesizer(metadata=md, random_state=0, **params).fit(df)
    return time.perf_counter() - t0, synth.epsilon_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke test)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    torch.manual_seed(0)
    Z, spans = _encoded_support()
    steps = 10 if args.quick else 60
    results = {"device": args.device, "torch_threads": torch.get_num_threads(), "throughput": []}
    print(f"device={args.device} threads={torch.get_num_threads()} encoded SUPPORT2: {tuple(Z.shape)}")
    print(f"{'hidden':>12} {'batch':>6} {'non-DP rows/s':>14} {'DP ghost rows/s':>16} {'ratio':>6} "
          f"{'opacus hooks rows/s':>20} {'ratio':>6}")
    for hidden, batch in [((128,), 1024), ((128, 128), 512), ((256, 256), 512), ((128, 128), 1024)]:
        base = rows_per_second("nonprivate", Z, spans, batch, steps, hidden, args.device)
        ghost = rows_per_second("ghost", Z, spans, batch, steps, hidden, args.device)
        hooks = rows_per_second("opacus", Z, spans, batch, max(3, steps // 4), hidden, args.device)
        results["throughput"].append({"hidden": hidden, "batch": batch, "nonprivate": base,
                                      "ghost": ghost, "opacus_hooks": hooks})
        print(f"{str(hidden):>12} {batch:>6} {base:>14,.0f} {ghost:>16,.0f} {ghost / base:>6.2f} "
              f"{hooks:>20,.0f} {hooks / base:>6.2f}")
    if not args.quick:
        df, md = load_example(return_metadata=True)
        secs, eps = fit_time(df, md, epsilon=3.0, device=args.device)
        print(f"DPVAESynthesizer.fit on SUPPORT2 (9,105 x 48, defaults, epsilon=3): {secs:.1f} s "
              f"(epsilon_={eps:.3f})")
        results["fit_support2_s"] = secs
        adult_csv = SHARED / "adult.csv"
        if adult_csv.exists():
            import pandas as pd
            from nhssynth import Metadata
            dtypes = json.loads((SHARED / "adult.dtypes.json").read_text())
            adult = pd.read_csv(adult_csv, dtype=dtypes)
            amd = Metadata.from_dataframe(adult)
            secs, eps = fit_time(adult, amd, epsilon=3.0, device=args.device,
                                 preprocessing="dp")
            print(f"DPVAESynthesizer.fit on adult (48,842 x 15, defaults, epsilon=3, DP preprocessing): "
                  f"{secs:.1f} s (epsilon_={eps:.3f})")
            results["fit_adult_s"] = secs
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
