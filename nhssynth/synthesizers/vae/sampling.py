"""Draws from a trained VAE: latent prior samples decoded to encoded rows."""
from __future__ import annotations

from typing import Sequence

import math

import numpy as np
import torch

from ...base import OutputSpan
from .losses import SpanLayout, squash_log_scale
from .networks import VAENetwork

__all__ = ["decode_prior", "fit_decode_bias", "one_way_feature_means"]

_CHUNK = 16384


def decode_prior(network: VAENetwork, spans: Sequence[OutputSpan], n_samples: int,
                 rng: np.random.Generator, device: str = "cpu",
                 bias: np.ndarray | None = None) -> np.ndarray:
    """Decode ``n_samples`` latent draws from the prior N(0, I) into encoded rows: continuous
    values drawn from the decoder's Gaussian (clipped to [-1, 1]), one-hot groups and binary
    features drawn from its probabilities (not thresholded).  ``bias`` (one per encoded
    feature, 0 for continuous ones) is added to the logits of the one-hot groups and binary
    features (:func:`fit_decode_bias`)."""
    bias_t = None if bias is None else torch.from_numpy(np.asarray(bias, dtype=np.float32))
    layout = SpanLayout(spans, network.n_features)
    out = np.empty((n_samples, layout.n_features), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, n_samples, _CHUNK):
            m = min(_CHUNK, n_samples - start)
            z = torch.from_numpy(rng.standard_normal((m, network.latent_dim)).astype(np.float32))
            logits, raw_log_scale = network.decode(z.to(device))
            logits = logits.cpu()
            if bias_t is not None:
                logits = logits + bias_t
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


_BIAS_STEPS = 60
_FLOOR = 1e-6


def one_way_feature_means(Z: np.ndarray, spans: Sequence[OutputSpan]) -> np.ndarray:
    """Each encoded feature's mean in ``Z``: over every row for a column's missing indicator,
    over the rows where its column is observed for the others (what the decoder's logits of
    that feature are trained on; see :class:`~.losses.SpanLayout`)."""
    Z = np.asarray(Z, dtype=np.float64)
    means = Z.mean(axis=0) if len(Z) else np.zeros(Z.shape[1])
    missing_of = {s.column: s.start for s in spans if s.kind == "binary" and s.role == "missing"}
    for s in spans:
        m = missing_of.get(s.column)
        if m is None or s.role == "missing":
            continue
        observed = Z[:, m] < 0.5
        if observed.any():
            means[s.slice] = Z[observed, s.slice].mean(axis=0)
    return means


def fit_decode_bias(network: VAENetwork, spans: Sequence[OutputSpan], targets: np.ndarray,
                    n_samples: int, rng: np.random.Generator, device: str = "cpu") -> np.ndarray:
    """Logit offsets that make the decoder's one-hot groups and binary features match
    ``targets`` (their means, :func:`one_way_feature_means`) on average over the prior.

    A network trained with DP-SGD at a small epsilon gets its categories' frequencies wrong
    (a 74/26 % outcome drawn 41/59 %): its output biases are random-walked by the noise.
    Shifting every category's logit by one constant per category keeps what the network says
    about which rows differ (the logits' differences between latent draws) and fixes the
    frequencies, as iterative proportional fitting does for a table; raking a draw
    afterwards then has little left to correct.  Missing indicators are fitted first; the
    other features of their column are matched over the rows drawn as observed.
    Post-processing of the network and the released one-way marginals: no privacy cost."""
    layout = SpanLayout(spans, network.n_features)
    with torch.no_grad():
        z = torch.from_numpy(rng.standard_normal((n_samples, network.latent_dim)).astype(np.float32))
        logits = network.decode(z.to(device))[0].cpu().numpy().astype(np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    bias = np.zeros(network.n_features, dtype=np.float64)
    missing_of = {s.column: s.start for s in spans if s.kind == "binary" and s.role == "missing"}

    def fit_binary(j: int, weight: np.ndarray | None) -> None:
        t = float(np.clip(targets[j], _FLOOR, 1.0 - _FLOOR))
        for _ in range(_BIAS_STEPS):
            p = float(np.average(_sigmoid(logits[:, j] + bias[j]), weights=weight))
            p = min(max(p, _FLOOR), 1.0 - _FLOOR)
            step = math.log(t / (1.0 - t)) - math.log(p / (1.0 - p))
            bias[j] += step
            if abs(step) < 1e-4:
                break

    observed_weight: dict[str, np.ndarray] = {}
    for s in spans:  # missing indicators first: they weight the rest of their column
        if s.kind == "binary" and s.role == "missing":
            fit_binary(s.start, None)
            observed_weight[s.column] = 1.0 - _sigmoid(logits[:, s.start] + bias[s.start])
    for s in spans:
        if s.kind == "continuous" or (s.kind == "binary" and s.role == "missing"):
            continue
        w = observed_weight.get(s.column) if s.column in missing_of else None
        if w is not None and w.sum() <= 0:
            continue
        if s.kind == "binary":
            for j in range(s.start, s.stop):
                fit_binary(j, w)
            continue
        t = targets[s.slice]
        if not np.isfinite(t).all() or t.sum() <= 0:
            continue
        t = t / t.sum()
        g = logits[:, s.slice]
        b = np.zeros(s.width)
        absent = t <= 0
        for _ in range(_BIAS_STEPS):
            x = g + b
            x -= x.max(axis=1, keepdims=True)
            p = np.exp(x)
            p /= p.sum(axis=1, keepdims=True)
            current = np.average(p, axis=0, weights=w)
            step = np.where(absent, 0.0, np.log(np.maximum(t, _FLOOR))
                            - np.log(np.maximum(current, _FLOOR)))
            b += step
            if np.abs(step).max() < 1e-4:
                break
        b[absent] = -30.0  # a value the release says does not occur is never drawn
        b -= b[~absent].mean() if (~absent).any() else 0.0
        bias[s.slice] = b
    return bias.astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))
