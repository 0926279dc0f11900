"""Privacy machinery: accounting, DP-SGD clipping/noise, DP statistics, budget ledger."""
from .accounting import compute_epsilon, solve_noise_multiplier

__all__ = ["compute_epsilon", "solve_noise_multiplier"]
