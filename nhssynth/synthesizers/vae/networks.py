"""Torch modules of the VAE: plain ``Linear`` stacks that can record what ghost clipping needs.

Every trainable parameter lives in a :class:`torch.nn.Linear` that is applied exactly once per
sample.  That restriction is what lets :mod:`nhssynth.privacy.dpsgd` compute per-sample gradient
norms from activations and output gradients alone ("ghost norms"), without materialising
per-sample gradients.  Normalisation layers that mix samples (BatchNorm) are therefore absent.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ...privacy.dpsgd import LinearRecorder

__all__ = ["MLP", "VAENetwork"]


def _linear(layer: nn.Linear, x: torch.Tensor, recorder: LinearRecorder | None) -> torch.Tensor:
    return recorder.linear(layer, x) if recorder is not None else layer(x)


def _init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default Linear init, drawn from ``generator`` (never the global RNG)."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(layer.weight.shape, generator=generator) * 2 * bound - bound)
        if layer.bias is not None:
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound)


class MLP(nn.Module):
    """``Linear -> activation`` blocks followed by a final ``Linear`` (no activation)."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int,
                 activation: str = "relu") -> None:
        super().__init__()
        sizes = [in_features, *hidden, out_features]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.activation = {"relu": F.relu, "elu": F.elu, "tanh": torch.tanh, "silu": F.silu}[activation]

    def forward(self, x: torch.Tensor, recorder: LinearRecorder | None = None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = _linear(layer, x, recorder)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x


class VAENetwork(nn.Module):
    """Encoder q(z|x) and decoder p(x|z) of the tabular VAE.

    The decoder emits, per output feature of the encoded table, one value (continuous mean,
    softmax logit or Bernoulli logit) and additionally one log-scale per continuous feature
    (heteroscedastic Gaussian), so the whole network is ``Linear`` layers only.
    """

    def __init__(self, n_features: int, n_continuous: int, latent_dim: int,
                 hidden_dims: Sequence[int], activation: str = "relu") -> None:
        super().__init__()
        self.n_features = n_features
        self.n_continuous = n_continuous
        self.latent_dim = latent_dim
        self.hidden_dims = [int(h) for h in hidden_dims]
        self.activation = activation
        self.encoder = MLP(n_features, hidden_dims, 2 * latent_dim, activation)
        self.decoder = MLP(latent_dim, list(hidden_dims)[::-1], n_features + n_continuous, activation)

    @property
    def config(self) -> dict:
        """Constructor arguments: ``VAENetwork(**net.config)`` builds the same architecture
        (what :mod:`nhssynth.io` saves next to the weights)."""
        return {"n_features": self.n_features, "n_continuous": self.n_continuous,
                "latent_dim": self.latent_dim, "hidden_dims": list(self.hidden_dims),
                "activation": self.activation}

    def reset_parameters(self, generator: torch.Generator) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                _init_linear(module, generator)

    def encode(self, x: torch.Tensor, recorder: LinearRecorder | None = None):
        h = self.encoder(x, recorder)
        mu, logvar = h[:, : self.latent_dim], h[:, self.latent_dim:]
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor, recorder: LinearRecorder | None = None):
        out = self.decoder(z, recorder)
        return out[:, : self.n_features], out[:, self.n_features:]
