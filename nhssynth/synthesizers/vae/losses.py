"""Per-sample VAE losses over the blocks (:class:`~nhssynth.base.OutputSpan`) of an encoded table.

Every loss here returns one value per row: DP-SGD clips per-sample gradients, so the loss must
never be reduced over the batch before the clipping step.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ...base import OutputSpan

__all__ = ["SpanLayout", "reconstruction_loss", "kl_divergence"]

# Bounds of the decoder's per-feature Gaussian scale for continuous scalars (features live in
# [-1, 1]): a smooth squashing keeps gradients alive, unlike a hard clamp.
LOG_SCALE_MIN = math.log(0.005)
LOG_SCALE_MAX = math.log(1.0)


class SpanLayout:
    """Index tensors for vectorised losses and sampling over all spans at once."""

    def __init__(self, spans: Sequence[OutputSpan], n_features: int) -> None:
        covered = np.zeros(n_features, dtype=int)
        for s in spans:
            covered[s.slice] += 1
        if not (covered == 1).all():
            raise ValueError("output spans must cover every encoded feature exactly once.")
        self.continuous = torch.tensor([i for s in spans if s.kind == "continuous"
                                        for i in range(s.start, s.stop)], dtype=torch.long)
        self.binary = torch.tensor([i for s in spans if s.kind == "binary"
                                    for i in range(s.start, s.stop)], dtype=torch.long)
        groups = [s for s in spans if s.kind == "softmax"]
        width = max((s.width for s in groups), default=1)
        index = torch.zeros((len(groups), width), dtype=torch.long)
        mask = torch.zeros((len(groups), width), dtype=torch.bool)
        for g, s in enumerate(groups):
            index[g, : s.width] = torch.arange(s.start, s.stop)
            mask[g, : s.width] = True
        self.softmax_index = index
        self.softmax_mask = mask
        self.softmax_features = index[mask]
        self.n_continuous = len(self.continuous)
        self.n_features = n_features
        # Gates: a column's value blocks are only scored on rows where it is observed (its
        # "missing" indicator is 0).  Otherwise the fill value used for missing rows would be
        # learnt as if it were data, skewing the distribution of observed values.  Index
        # ``n_features`` points at an always-zero padding column (= no gate).
        missing_of = {s.column: s.start for s in spans if s.kind == "binary" and s.role == "missing"}

        def gate(s: OutputSpan) -> int:
            return n_features if s.role == "missing" else missing_of.get(s.column, n_features)

        self.continuous_gate = torch.tensor([gate(s) for s in spans if s.kind == "continuous"
                                             for _ in range(s.width)], dtype=torch.long)
        self.binary_gate = torch.tensor([gate(s) for s in spans if s.kind == "binary"
                                         for _ in range(s.width)], dtype=torch.long)
        self.softmax_gate = torch.tensor([gate(s) for s in groups], dtype=torch.long)
        self.has_gates = bool(missing_of)

    def to(self, device) -> "SpanLayout":
        """Move the index tensors to ``device`` (in place; returns self)."""
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device))
        return self

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-row weights (1 = observed) for continuous features, softmax groups, binaries."""
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1)
        return (1.0 - padded[:, self.continuous_gate], 1.0 - padded[:, self.softmax_gate],
                1.0 - padded[:, self.binary_gate])

    def group_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits arranged ``(batch, n_groups, max_width)``, padding set to ``-inf``."""
        g = logits[:, self.softmax_index]
        return g.masked_fill(~self.softmax_mask, float("-inf"))


def squash_log_scale(raw: torch.Tensor) -> torch.Tensor:
    return LOG_SCALE_MIN + (LOG_SCALE_MAX - LOG_SCALE_MIN) * torch.sigmoid(raw)


def reconstruction_loss(x: torch.Tensor, out: torch.Tensor, raw_log_scale: torch.Tensor,
                        layout: SpanLayout) -> torch.Tensor:
    """Negative log-likelihood of each row of ``x`` under the decoder output, shape ``(batch,)``.

    Gaussian for continuous scalars, categorical cross-entropy for each softmax group (GMM
    modes, categories, missingness folded into categories) and Bernoulli for binary features.
    """
    loss = x.new_zeros(x.shape[0])
    g_cont, g_soft, g_bin = layout.gates(x)
    if layout.n_continuous:
        xc = x[:, layout.continuous]
        mc = out[:, layout.continuous]
        log_s = squash_log_scale(raw_log_scale)
        loss = loss + ((0.5 * ((xc - mc) * torch.exp(-log_s)).pow(2) + log_s) * g_cont).sum(dim=1)
    if layout.softmax_index.shape[0]:
        lse = torch.logsumexp(layout.group_logits(out), dim=2)
        picked = (x[:, layout.softmax_index] * out[:, layout.softmax_index]
                  * layout.softmax_mask).sum(dim=2)
        loss = loss + ((lse - picked) * g_soft).sum(dim=1)
    if len(layout.binary):
        loss = loss + (torch.nn.functional.binary_cross_entropy_with_logits(
            out[:, layout.binary], x[:, layout.binary], reduction="none") * g_bin).sum(dim=1)
    return loss


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per row."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
