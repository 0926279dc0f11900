"""Calibration: DP marginals any generator's draws can be made to match.

``selection`` chooses and measures two-way marginals privately where a generator is furthest
from the data; ``copula`` releases the numeric columns' rank correlation and re-orders draws
to it; ``graphical_model`` reconciles noisy marginals (Private-PGM, also the model of
:class:`~nhssynth.AIMSynthesizer`); ``quantile_matching`` maps numeric columns onto released
histograms; ``raking`` reweights and selects rows; ``calibrator`` puts them together
(:class:`~nhssynth.calibration.calibrator.MarginalCalibrator`).
"""
from .calibrator import MarginalCalibrator

__all__ = ["MarginalCalibrator"]
