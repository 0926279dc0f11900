"""Draws from a trained VAE: latent prior samples decoded to encoded rows."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...base import OutputSpan
from .losses import SpanLayout, squash_log_scale
from .networks import VAENetwork

__all__ = ["decode_prior"]

_CHUNK = 16384


def decode_prior(network: VAENetwork, spans: Sequence[OutputSpan], n_samples: int,
                 rng: np.random.Generator, device: str = "cpu") -> np.ndarray:
    """Decode ``n_samples`` latent draws from the prior N(0, I) into encoded rows: continuous
    values drawn from the decoder's Gaussian (clipped to [-1, 1]), one-hot groups and binary
    features drawn from its probabilities (not thresholded)."""
    layout = SpanLayout(spans, network.n_features)
    out = np.empty((n_samples, layout.n_features), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, n_samples, _CHUNK):
            m = min(_CHUNK, n_samples - start)
            z = torch.from_numpy(rng.standard_normal((m, network.latent_dim)).astype(np.float32))
            logits, raw_log_scale = network.decode(z.to(device))
            logits = logits.cpu()
            block = out[start:start + m]
            block[:] = 0.0
            if layout.n_continuous:
                mean = logits[:, layout.continuous].numpy()
                scale = np.exp(squash_log_scale(raw_log_scale.cpu()).numpy())
                value = mean + scale * rng.standard_normal(mean.shape).astype(np.float32)
                block[:, layout.continuous.numpy()] = np.clip(value, -1.0, 1.0)
            if layout.softmax_index.shape[0]:
                g = layout.group_logits(logits).numpy()
                # Gumbel-max (argmax of logits + Gumbel noise) is a draw from the softmax;
                # -log(E), E ~ Exp(1), is Gumbel noise with one log instead of two
                e = rng.standard_exponential(size=g.shape, dtype=np.float32)
                np.maximum(e, np.float32(1e-30), out=e)  # float32 draws can be exactly 0
                choice = np.argmax(g - np.log(e), axis=2)
                cols = layout.softmax_index.numpy()[np.arange(g.shape[1])[None, :], choice]
                block[np.arange(m)[:, None], cols] = 1.0
            if len(layout.binary):
                p = torch.sigmoid(logits[:, layout.binary]).numpy()
                block[:, layout.binary.numpy()] = (rng.uniform(size=p.shape) < p).astype(np.float32)
    return out
