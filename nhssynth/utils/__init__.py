"""Utilities (estimator checks for generators)."""
