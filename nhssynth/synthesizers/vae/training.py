"""The training loop: DP-SGD (Poisson sampling, ghost clipping, Gaussian noise) or plain SGD."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ...privacy.accounting import compose_epsilon
from ...privacy.dpsgd import (GaussianNoise, LinearRecorder, add_noise, add_noise_sharded,
                              ghost_clipped_gradients, poisson_batch_indices)
from .losses import SpanLayout, kl_divergence, reconstruction_loss
from .networks import VAENetwork

logger = logging.getLogger("nhssynth")

__all__ = ["Communicator", "DPSettings", "train_vae", "vae_losses"]


class Communicator(Protocol):
    """What data-parallel training needs from a process group (see
    :mod:`nhssynth.synthesizers.vae.distributed`): this process's rank, the number of processes
    and an in-place sum of a tensor over all of them."""

    rank: int
    world_size: int

    def all_reduce(self, tensor: torch.Tensor) -> None:
        ...


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
               generator: torch.Generator, recorder: LinearRecorder | None = None,
               eps: torch.Tensor | None = None):
    """Per-row reconstruction and KL terms for a batch (reparameterised sample of z).

    ``eps`` (standard normal, ``(len(x), latent_dim)``) is drawn from ``generator`` unless given
    (data-parallel training draws it for the whole batch and passes each shard its rows).
    """
    mu, logvar = network.encode(x, recorder)
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + torch.exp(0.5 * logvar) * eps
    out, raw_log_scale = network.decode(z, recorder)
    return reconstruction_loss(x, out, raw_log_scale, layout), kl_divergence(mu, logvar)


def train_vae(network: VAENetwork, X: torch.Tensor, layout: SpanLayout, *, epochs: int,
              batch_size: int, learning_rate: float, beta: float, weight_decay: float,
              generator: torch.Generator, dp: DPSettings | None,
              on_epoch: Callable[[dict], None] | None = None,
              sampling_generator: torch.Generator | None = None,
              comm: Communicator | None = None) -> list[dict]:
    """Train ``network`` in place on the encoded matrix ``X``; return per-epoch history.

    With ``dp``: every step draws a Poisson batch (each row with probability
    ``dp.sample_rate``), clips each row's gradient to ``dp.max_grad_norm`` (ghost clipping),
    adds ``N(0, (noise_multiplier * max_grad_norm)^2)`` to the sum, divides by the expected batch
    size, and takes an Adam step.  ``1 / sample_rate`` steps make an epoch.
    Without ``dp``: shuffled mini-batches, mean loss, ordinary back-propagation.

    ``generator`` (on the network's device) draws the reparameterisation and DP noise;
    ``sampling_generator`` (CPU; defaults to ``generator``) draws batches, so batches are the
    same on every device.

    With ``comm`` (data parallel; every process calls this with the same arguments and the same
    generator states): every rank draws the same batch over the whole table and the same
    reparameterisation noise for it, and works on its shard of the batch (positions
    ``rank, rank + world_size, ...``).  Under DP the clipped per-sample gradient sums of the
    shards are summed across processes and the Gaussian noise is added once
    (:func:`~nhssynth.privacy.dpsgd.add_noise_sharded`); without DP the shards' gradient sums
    are summed and divided by the batch size.  Every rank then takes the same Adam step, so the
    replicas stay identical and the result equals the single-process run up to the order of
    floating-point sums.
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
                xb, eps = _shard(X, idx, network, generator, comm)

                def loss_fn(recorder: LinearRecorder) -> torch.Tensor:
                    rec, kl = vae_losses(network, layout, xb, beta, generator, recorder, eps)
                    loss_fn.parts = (rec.detach(), kl.detach())
                    return rec + beta * kl

                grads, _, losses = ghost_clipped_gradients(loss_fn, dp.max_grad_norm)
                if steps_done == 0 and len(xb):
                    missing = [p for p in params if p not in grads]
                    if missing:  # a parameter outside a recorded Linear would escape clipping
                        raise RuntimeError(f"{len(missing)} parameter(s) are not covered by ghost clipping")
                if comm is None:
                    add_noise(grads, params, dp.noise_multiplier, dp.max_grad_norm, expected_batch,
                              noise)
                else:  # shards summed across processes, the noise added once (by rank 0)
                    add_noise_sharded(grads, params, dp.noise_multiplier, dp.max_grad_norm,
                                      expected_batch, noise, rank=comm.rank,
                                      all_reduce=comm.all_reduce)
                if len(xb):
                    rec, kl = loss_fn.parts
                    sums += torch.stack([losses.sum(), rec.sum(), kl.sum()]).double()
            else:
                idx = perm[step * batch_size:(step + 1) * batch_size]
                xb, eps = _shard(X, idx, network, generator, comm)
                optimizer.zero_grad(set_to_none=True)
                rec, kl = vae_losses(network, layout, xb, beta, generator, eps=eps)
                loss = rec + beta * kl
                if comm is None:
                    loss.mean().backward()
                else:  # the shards' sums, summed across processes: the mean over the batch
                    (loss.sum() / max(len(idx), 1)).backward()
                    _sum_gradients(params, comm)
                sums += torch.stack([loss.sum(), rec.sum(), kl.sum()]).detach().double()
            optimizer.step()
            rows += len(idx)
            steps_done += 1
        denom = max(rows, 1)
        if comm is not None:
            comm.all_reduce(sums)
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


def _shard(X: torch.Tensor, idx: torch.Tensor, network: VAENetwork, generator: torch.Generator,
           comm: Communicator | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """This process's rows of the batch ``idx`` and their reparameterisation noise.

    Single process: all rows, noise drawn later by :func:`vae_losses` (unchanged stream).
    Data parallel: the noise is drawn for the whole batch -- the same draw as the
    single-process run, on every rank -- and each rank keeps its shard's rows of it.
    """
    if comm is None:
        return X[idx], None
    dtype = next(network.parameters()).dtype
    eps = torch.randn((len(idx), network.latent_dim), generator=generator, dtype=dtype,
                      device=X.device)
    part = slice(comm.rank, None, comm.world_size)
    return X[idx[part]], eps[part]


def _sum_gradients(params: list[torch.nn.Parameter], comm: Communicator) -> None:
    """Sum every parameter's gradient across processes (one flat all-reduce)."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    comm.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
