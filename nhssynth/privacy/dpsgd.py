"""DP-SGD machinery: Poisson sampling, fast per-sample clipping ("ghost norms"), Gaussian noise.

Why not opacus' ``GradSampleModule``?  It materialises a per-sample gradient for every weight
(``batch x out x in`` floats per layer), which is memory-bound on a CPU and measured ~50x
slower than non-private training for a tabular MLP.  For a ``Linear`` layer applied once per
sample, the per-sample gradient is the outer product ``g_i a_i^T`` of the output gradient and
the input activation, so

* its squared norm is ``|g_i|^2 |a_i|^2`` (plus ``|g_i|^2`` for the bias), and
* the *sum of clipped* per-sample gradients is ``(c * G)^T A`` with ``c_i = min(1, C/|grad_i|)``.

One backward pass to the layer outputs gives every ``G``; the clipped gradient then costs one
matrix product per layer, the same as ordinary back-propagation ("book-keeping" ghost
clipping).  Opacus is still used for what it does best: accounting
(:mod:`nhssynth.privacy.accounting`).
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from .secure import SecureGaussian

__all__ = ["LinearRecorder", "poisson_batch_indices", "ghost_clipped_gradients", "add_noise",
           "add_noise_sharded", "GaussianNoise"]


class LinearRecorder:
    """Collects ``(layer, input, output)`` of every recorded Linear call during a forward: what
    :func:`ghost_clipped_gradients` needs (a network passes it through its ``forward``)."""

    def __init__(self) -> None:
        self.records: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []

    def linear(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        z = F.linear(x, layer.weight, layer.bias)
        self.records.append((layer, x, z))
        return z


_SPARSE_FROM = 1_000_000  # rows from which a batch is drawn in O(batch) rather than O(n)


def poisson_batch_indices(n: int, sample_rate: float, generator: torch.Generator, *,
                          sparse_from: int = _SPARSE_FROM) -> torch.Tensor:
    """Indices of a Poisson-sampled batch: each of ``n`` records independently w.p. ``sample_rate``.

    This is the sampling the accountant assumes; shuffled fixed-size batches would make the
    reported epsilon an underestimate.  Returned in increasing order.

    Below ``sparse_from`` rows one uniform draw per record decides it (O(n) a step).  From
    ``sparse_from`` rows on, the same distribution is drawn in O(batch): the batch size is
    ``Binomial(n, sample_rate)`` (the number of records a per-record draw would include) and
    the batch a uniformly random set of that many distinct records, which is exactly the law
    of independent inclusion.  (At 10M rows the per-record draw cost 50 ms a step, most of a
    DP-SGD epoch.)
    """
    if n < sparse_from:
        mask = torch.rand(n, generator=generator) < sample_rate
        return mask.nonzero(as_tuple=True)[0]
    size = int(torch.binomial(torch.tensor([float(n)], dtype=torch.float64),
                              torch.tensor([float(sample_rate)], dtype=torch.float64),
                              generator=generator).item())
    if size == 0:
        return torch.zeros(0, dtype=torch.long)
    if 2 * size > n:  # a dense batch: a permutation is as cheap
        return torch.randperm(n, generator=generator)[:size].sort().values
    # distinct values of iid uniform draws form an exchangeable random set, so a uniform
    # subset of `size` of them is a uniform `size`-subset of range(n)
    found = torch.zeros(0, dtype=torch.long)
    while len(found) < size:
        more = torch.randint(n, (size - len(found) + 16 + size // 8,), generator=generator)
        found = torch.unique(torch.cat([found, more]))
    if len(found) > size:
        found = found[torch.randperm(len(found), generator=generator)[:size]].sort().values
    return found


def ghost_clipped_gradients(
    loss_fn: Callable[[LinearRecorder], torch.Tensor],
    max_grad_norm: float,
) -> tuple[dict[nn.Parameter, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Sum of per-sample gradients, each clipped to ``max_grad_norm``, without materialising them.

    Parameters
    ----------
    loss_fn : callable
        Runs the forward pass routing every trainable ``Linear`` through the given recorder and
        returns the *per-sample* losses, shape ``(batch,)``.  Each sample's loss must depend on
        that sample only (no BatchNorm), and each recorded layer must be applied once per sample.
    max_grad_norm : float
        Clipping bound ``C``.

    Returns
    -------
    grads : dict
        Parameter -> clipped gradient sum (same shape as the parameter).
    per_sample_norms : Tensor, shape (batch,)
        Unclipped per-sample gradient norms over all recorded parameters.
    losses : Tensor, shape (batch,)
        The per-sample losses (detached).
    """
    recorder = LinearRecorder()
    losses = loss_fn(recorder)
    records = recorder.records
    if losses.numel() == 0:
        grads = {}
        for layer, _, _ in records:
            grads[layer.weight] = torch.zeros_like(layer.weight)
            if layer.bias is not None:
                grads[layer.bias] = torch.zeros_like(layer.bias)
        return grads, losses.detach(), losses.detach()
    outputs = [z for _, _, z in records]
    out_grads = torch.autograd.grad(losses.sum(), outputs)
    sq_norms = torch.zeros(losses.shape[0], dtype=losses.dtype, device=losses.device)
    for (layer, a, _), g in zip(records, out_grads):
        g_sq = g.pow(2).sum(dim=1)
        a_sq = a.detach().pow(2).sum(dim=1)
        sq_norms += g_sq * (a_sq + (1.0 if layer.bias is not None else 0.0))
    norms = sq_norms.sqrt()
    scale = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
    grads: dict[nn.Parameter, torch.Tensor] = {}
    for (layer, a, _), g in zip(records, out_grads):
        gs = g * scale[:, None]
        grads[layer.weight] = grads.get(layer.weight, 0) + gs.t() @ a.detach()
        if layer.bias is not None:
            grads[layer.bias] = grads.get(layer.bias, 0) + gs.sum(dim=0)
    return grads, norms.detach(), losses.detach()


class GaussianNoise:
    """Draws the DP-SGD noise.  ``secure=True`` uses an OS-entropy-seeded CSPRNG (see
    :mod:`nhssynth.privacy.secure`); otherwise a seeded ``torch.Generator`` (reproducible)."""

    def __init__(self, generator: torch.Generator, secure: bool = False) -> None:
        self.generator = generator
        self.secure = secure
        self._secure_rng = None
        if secure:
            self._secure_rng = SecureGaussian()

    def __call__(self, shape: torch.Size, std: float, dtype: torch.dtype,
                 device: torch.device | str = "cpu") -> torch.Tensor:
        if self._secure_rng is not None:
            return torch.from_numpy(self._secure_rng.normal(tuple(shape), std)).to(dtype=dtype, device=device)
        return torch.normal(0.0, std, size=tuple(shape), generator=self.generator, dtype=dtype,
                            device=device)


def add_noise(grads: dict[nn.Parameter, torch.Tensor], params: Iterable[nn.Parameter],
              noise_multiplier: float, max_grad_norm: float, expected_batch_size: float,
              noise: GaussianNoise) -> None:
    """Write ``(clipped_sum + N(0, (sigma C)^2)) / expected_batch_size`` into ``param.grad``.

    Dividing by the *expected* batch size (not the realised Poisson batch size) keeps the
    sensitivity analysis of the accountant valid.
    """
    std = noise_multiplier * max_grad_norm
    for p in params:
        g = grads.get(p)
        if g is None:
            g = torch.zeros_like(p)
        if std > 0:
            g = g + noise(p.shape, std, p.dtype, p.device)
        p.grad = g / expected_batch_size


def add_noise_sharded(grads: dict[nn.Parameter, torch.Tensor], params: Iterable[nn.Parameter],
                      noise_multiplier: float, max_grad_norm: float, expected_batch_size: float,
                      noise: GaussianNoise, *, rank: int,
                      all_reduce: Callable[[torch.Tensor], None]) -> None:
    """:func:`add_noise` for data-parallel DP-SGD: ``grads`` is this process's share of the
    clipped sum (its shard of the Poisson batch).

    Rank 0 alone adds ``N(0, (sigma C)^2)`` to its share, ``all_reduce`` sums the shares in
    place (one flat vector), and every rank writes the same
    ``(clipped_sum + noise) / expected_batch_size`` into ``param.grad``: the noise enters the
    sum exactly once, whatever the number of processes, so the accountant's analysis is that of
    the single-process run.  The other ranks still draw (and discard) the same noise from their
    copy of the seeded generator so that every rank's stream stays in step with rank 0's (the
    reparameterisation noise of the next step must agree); in secure mode the noise comes from
    rank 0's CSPRNG only.
    """
    params = list(params)
    std = noise_multiplier * max_grad_norm
    parts = []
    for p in params:
        g = grads.get(p)
        if g is None:
            g = torch.zeros_like(p)
        if std > 0 and (rank == 0 or not noise.secure):
            z = noise(p.shape, std, p.dtype, p.device)
            if rank == 0:
                g = g + z
        parts.append(g.reshape(-1))
    flat = torch.cat(parts) if parts else torch.zeros(0)
    all_reduce(flat)
    flat = flat / expected_batch_size
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
