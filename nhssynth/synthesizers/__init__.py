"""Generators: every ``<Method>Synthesizer`` with ``epsilon``, ``fit``, ``sample``,
``privacy_report`` and ``save``/``load``."""
from .aim import AIMSynthesizer
from .marginal import MarginalSynthesizer
from .vae import DPVAESynthesizer

__all__ = ["AIMSynthesizer", "DPVAESynthesizer", "MarginalSynthesizer"]
