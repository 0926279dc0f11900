"""Synthesizers: the DP-VAE and baselines."""
from .vae import DPVAESynthesizer

__all__ = ["DPVAESynthesizer"]
