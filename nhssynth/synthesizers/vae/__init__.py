"""The DP-VAE: a tabular variational auto-encoder trained with DP-SGD.

``estimator`` holds the scikit-learn estimator, ``networks`` the torch modules, ``losses`` the
per-span reconstruction and KL terms, ``training`` the (DP-)SGD loop and ``sampling`` the
decoding of prior draws.  Calibration to DP marginals is :mod:`nhssynth.calibration`.
"""
from .estimator import DPVAESynthesizer

__all__ = ["DPVAESynthesizer"]
