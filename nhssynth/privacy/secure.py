"""Cryptographically secure noise for ``secure_mode=True``.

Bits come from the operating system's CSPRNG (``os.urandom``: ``getrandom(2)`` on Linux, a
ChaCha20-based generator seeded from kernel entropy; ``BCryptGenRandom`` on Windows), so an
attacker cannot predict or replay the DP noise from a seed.  ``torchcsprng`` does not build on
current Python/torch, hence this small replacement.

Gaussian samples are produced in float64 by the Box-Muller transform from 53-bit uniforms.
Against floating-point attacks on the low-order bits of a single Gaussian draw (Mironov 2012;
Holohan & Braghin 2021) each output is the sum of four independent draws divided by two, which
has the same variance and no exploitable gaps in its low bits — the defence opacus uses in its
own secure mode.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["SecureGaussian", "SecureRandom", "secure_uniform"]

_TWO_POW_53 = float(2**53)


def secure_uniform(size: int) -> np.ndarray:
    """``size`` float64 uniforms in (0, 1] with 53 random bits each, from OS entropy."""
    raw = np.frombuffer(os.urandom(8 * size), dtype=np.uint64)
    return ((raw >> np.uint64(11)).astype(np.float64) + 1.0) / _TWO_POW_53


class SecureGaussian:
    """Gaussian sampler backed by the OS CSPRNG (not seedable, by design)."""

    def standard_normal(self, n: int) -> np.ndarray:
        half = (n + 1) // 2
        u1, u2 = secure_uniform(half), secure_uniform(half)
        radius = np.sqrt(-2.0 * np.log(u1))
        z = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
        return z[:n]

    def normal(self, shape: tuple, std: float) -> np.ndarray:
        n = int(np.prod(shape)) if shape else 1
        total = self.standard_normal(n)
        for _ in range(3):
            total = total + self.standard_normal(n)
        return (std * total / 2.0).reshape(shape)

    def laplace(self, shape: tuple, scale: float) -> np.ndarray:
        n = int(np.prod(shape)) if shape else 1
        u = secure_uniform(n) - 0.5
        return (-scale * np.sign(u) * np.log1p(-2.0 * np.abs(u))).reshape(shape)


class SecureRandom:
    """The noise methods of :class:`numpy.random.Generator` that DP mechanisms call
    (``normal``, ``gumbel``), drawn from the OS CSPRNG: pass it wherever a mechanism takes an
    ``rng`` for its noise in secure mode."""

    def __init__(self) -> None:
        self._gaussian = SecureGaussian()

    def normal(self, loc: float = 0.0, scale: float = 1.0, size=None) -> np.ndarray:
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size or ())
        return loc + self._gaussian.normal(shape, scale)

    def gumbel(self, loc: float = 0.0, scale: float = 1.0, size=None) -> np.ndarray:
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size or ())
        n = int(np.prod(shape)) if shape else 1
        u = secure_uniform(n)  # in (0, 1]: -log(-log(u)) is finite except at u == 1
        u = np.minimum(u, 1.0 - 2.0**-53)
        return (loc - scale * np.log(-np.log(u))).reshape(shape)
