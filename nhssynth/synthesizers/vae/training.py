"""The training loop: DP-SGD (Poisson sampling, ghost clipping, Gaussian noise) or plain SGD."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from ...privacy.accounting import compose_epsilon
from ...privacy.dpsgd import (GaussianNoise, LinearRecorder, add_noise, ghost_clipped_gradients,
                              poisson_batch_indices)
from .losses import SpanLayout, kl_divergence, reconstruction_loss
from .networks import VAENetwork

logger = logging.getLogger("nhssynth")

__all__ = ["DPSettings", "train_vae", "vae_losses"]


@dataclass
class DPSettings:
    """What DP-SGD needs at each step and what the accountant needs afterwards."""

    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    delta: float
    accountant: str
    secure_mode: bool = False
    prior: tuple = ()  # accountant entries spent before training (DP preprocessing)


def vae_losses(network: VAENetwork, layout: SpanLayout, x: torch.Tensor, beta: float,
               generator: torch.Generator, recorder: LinearRecorder | None = None):
    """Per-row reconstruction and KL terms for a batch (reparameterised sample of z)."""
    mu, logvar = network.encode(x, recorder)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + torch.exp(0.5 * logvar) * eps
    out, raw_log_scale = network.decode(z, recorder)
    return reconstruction_loss(x, out, raw_log_scale, layout), kl_divergence(mu, logvar)


def train_vae(network: VAENetwork, X: torch.Tensor, layout: SpanLayout, *, epochs: int,
              batch_size: int, learning_rate: float, beta: float, weight_decay: float,
              generator: torch.Generator, dp: DPSettings | None,
              on_epoch: Callable[[dict], None] | None = None,
              sampling_generator: torch.Generator | None = None) -> list[dict]:
    """Train ``network`` in place on the encoded matrix ``X``; return per-epoch history.

    With ``dp``: every step draws a Poisson batch (each row with probability
    ``dp.sample_rate``), clips each row's gradient to ``dp.max_grad_norm`` (ghost clipping),
    adds ``N(0, (noise_multiplier * max_grad_norm)^2)`` to the sum, divides by the expected batch
    size, and takes an Adam step.  ``1 / sample_rate`` steps make an epoch.
    Without ``dp``: shuffled mini-batches, mean loss, ordinary back-propagation.

    ``generator`` (on the network's device) draws the reparameterisation and DP noise;
    ``sampling_generator`` (CPU; defaults to ``generator``) draws batches, so batches are the
    same on every device.
    """
    sampler = sampling_generator if sampling_generator is not None else generator
    n = X.shape[0]
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    history: list[dict] = []
    if dp is not None:
        steps_per_epoch = max(1, round(1.0 / dp.sample_rate))
        expected_batch = dp.sample_rate * n
        noise = GaussianNoise(generator, secure=dp.secure_mode)
    else:
        steps_per_epoch = math.ceil(n / batch_size)
    steps_done = 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64, device=X.device)  # no per-step host sync
        rows = 0
        if dp is None:
            perm = torch.randperm(n, generator=sampler)
        for step in range(steps_per_epoch):
            if dp is not None:
                idx = poisson_batch_indices(n, dp.sample_rate, sampler)
                xb = X[idx]

                def loss_fn(recorder: LinearRecorder) -> torch.Tensor:
                    rec, kl = vae_losses(network, layout, xb, beta, generator, recorder)
                    loss_fn.parts = (rec.detach(), kl.detach())
                    return rec + beta * kl

                grads, _, losses = ghost_clipped_gradients(loss_fn, dp.max_grad_norm)
                if steps_done == 0 and len(idx):
                    missing = [p for p in params if p not in grads]
                    if missing:  # a parameter outside a recorded Linear would escape clipping
                        raise RuntimeError(f"{len(missing)} parameter(s) are not covered by ghost clipping")
                add_noise(grads, params, dp.noise_multiplier, dp.max_grad_norm, expected_batch, noise)
                if len(idx):
                    rec, kl = loss_fn.parts
                    sums += torch.stack([losses.sum(), rec.sum(), kl.sum()]).double()
            else:
                idx = perm[step * batch_size:(step + 1) * batch_size]
                xb = X[idx]
                optimizer.zero_grad(set_to_none=True)
                rec, kl = vae_losses(network, layout, xb, beta, generator)
                loss = rec + beta * kl
                loss.mean().backward()
                sums += torch.stack([loss.sum(), rec.sum(), kl.sum()]).detach().double()
            optimizer.step()
            rows += len(idx)
            steps_done += 1
        denom = max(rows, 1)
        sums = sums.cpu()
        record = {"epoch": epoch, "loss": sums[0].item() / denom,
                  "reconstruction": sums[1].item() / denom, "kl": sums[2].item() / denom,
                  "rows": rows, "steps": steps_done, "seconds": time.perf_counter() - t0}
        if dp is not None:
            record["epsilon"] = compose_epsilon(
                dp.prior + ((dp.noise_multiplier, dp.sample_rate, steps_done),), dp.delta, dp.accountant)
        if not all(math.isfinite(v) for v in (record["loss"],)):
            raise FloatingPointError(
                f"training diverged at epoch {epoch} (loss is {record['loss']}); lower learning_rate "
                f"or max_grad_norm.")
        history.append(record)
        logger.debug("epoch %d: %s", epoch, record)
        if on_epoch is not None:
            on_epoch(record)
    return history
