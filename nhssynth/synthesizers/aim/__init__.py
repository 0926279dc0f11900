"""AIM: select, measure and generate over noisy marginals with a graphical model.

``estimator`` holds :class:`AIMSynthesizer`; ``graphical_model`` the model estimated from
noisy marginals (junction tree, belief propagation, mirror descent, sampling).
"""
from .estimator import AIMSynthesizer

__all__ = ["AIMSynthesizer"]
