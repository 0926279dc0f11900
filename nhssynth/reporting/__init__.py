"""Reporting: plots, the self-contained HTML report and the experiment dashboard.

Depends on :mod:`nhssynth.metrics`, never the reverse.
"""
from .report import render_report, write_report

__all__ = ["render_report", "write_report"]
