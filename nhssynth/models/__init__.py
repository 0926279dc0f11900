"""Synthesizers: the DP-VAE and baselines."""
from .vae import DPVAESynthesizer

__all__ = ["DPVAESynthesizer"]
from .marginal import MarginalSynthesizer  # noqa: E402

__all__ += ["MarginalSynthesizer"]
