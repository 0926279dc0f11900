"""Cost of ``secure_mode``: one DP-SGD step with OS-CSPRNG noise vs seeded torch noise.

Same VAE (hidden (128, 128), latent 32), same encoded SUPPORT2 table, Poisson batches of
expected size 512, ghost clipping; only the noise source differs.  Prints the median time per
step of each, the ratio, and the time of the noise draw alone (one draw per parameter, as in
:func:`nhssynth.privacy.dpsgd.add_noise`).

Run: ``python benchmarks/bench_secure_mode.py [--steps 60] [--device cpu]``.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from nhssynth import TableEncoder
from nhssynth.datasets import load_example
from nhssynth.synthesizers.vae.losses import SpanLayout
from nhssynth.synthesizers.vae.networks import VAENetwork
from nhssynth.synthesizers.vae.training import vae_losses
from nhssynth.privacy.dpsgd import GaussianNoise, add_noise, ghost_clipped_gradients, poisson_batch_indices

warnings.simplefilter("ignore")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_times(secure: bool, Z, spans, batch: int, steps: int, device: str) -> list[float]:
    layout = SpanLayout(spans, Z.shape[1]).to(device)
    net = VAENetwork(Z.shape[1], layout.n_continuous, 32, (128, 128))
    net.reset_parameters(torch.Generator().manual_seed(0))
    net.to(device)
    X = Z.to(device)
    params = list(net.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    g = torch.Generator(device=device).manual_seed(0)
    cpu_g = torch.Generator().manual_seed(1)
    noise = GaussianNoise(g, secure=secure)
    n = X.shape[0]
    q = batch / n
    times = []
    for i in range(steps + 3):
        _sync(device)
        t0 = time.perf_counter()
        xb = X[poisson_batch_indices(n, q, cpu_g).to(device)]
        grads, _, _ = ghost_clipped_gradients(
            lambda r: (lambda rk: rk[0] + rk[1])(vae_losses(net, layout, xb, 1.0, g, r)), 1.0)
        add_noise(grads, params, 1.0, 1.0, q * n, noise)
        opt.step()
        _sync(device)
        if i >= 3:  # warm-up
            times.append(time.perf_counter() - t0)
    return times


def noise_times(secure: bool, params, steps: int, device: str) -> list[float]:
    noise = GaussianNoise(torch.Generator(device=device).manual_seed(0), secure=secure)
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        for p in params:
            p.grad = noise(p.shape, 1.0, p.dtype).to(device)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    df, md = load_example(return_metadata=True)
    Z = torch.from_numpy(TableEncoder(metadata=md, random_state=0).fit_transform(df))
    spans = TableEncoder(metadata=md, random_state=0).fit(df).output_spans_
    net = VAENetwork(Z.shape[1], SpanLayout(spans, Z.shape[1]).n_continuous, 32, (128, 128)).to(args.device)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"device={args.device} threads={torch.get_num_threads()} SUPPORT2 encoded {tuple(Z.shape)}, "
          f"batch {args.batch}, {n_params:,} parameters, {args.steps} steps")
    # interleave the two modes so that machine load affects both alike
    seeded, secure = [], []
    for _ in range(2):
        seeded += step_times(False, Z, spans, args.batch, args.steps // 2, args.device)
        secure += step_times(True, Z, spans, args.batch, args.steps // 2, args.device)
    ns_seeded = noise_times(False, list(net.parameters()), args.steps, args.device)
    ns_secure = noise_times(True, list(net.parameters()), args.steps, args.device)
    med = lambda t: 1e3 * float(np.median(t))  # noqa: E731
    print(f"{'':24}{'seeded':>10}{'secure':>10}{'ratio':>8}")
    print(f"{'DP-SGD step (ms)':24}{med(seeded):>10.2f}{med(secure):>10.2f}{med(secure) / med(seeded):>8.2f}")
    print(f"{'noise draw only (ms)':24}{med(ns_seeded):>10.2f}{med(ns_secure):>10.2f}"
          f"{med(ns_secure) / med(ns_seeded):>8.2f}")
    print(f"secure-mode overhead per step: {med(secure) - med(seeded):+.2f} ms "
          f"({100 * (med(secure) / med(seeded) - 1):+.0f}%)")


if __name__ == "__main__":
    main()
