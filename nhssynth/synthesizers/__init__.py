"""Generators: every ``<Method>Synthesizer`` with ``epsilon``, ``fit``, ``sample``,
``privacy_report`` and ``save``/``load``."""
from .marginal import MarginalSynthesizer
from .vae import DPVAESynthesizer

__all__ = ["DPVAESynthesizer", "MarginalSynthesizer"]
