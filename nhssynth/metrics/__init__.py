"""Evaluation of synthetic data: fidelity, utility and privacy metrics, scorers for model
selection, ``evaluate`` (tidy table + summary, with baselines); the HTML report is
:mod:`nhssynth.reporting`.

All scores are in [0, 1] and 1 is ideal unless stated (the DCR share's ideal is 0.5); see
``docs/evaluation.md``.
"""
from .evaluation import METRIC_INFO, EvaluationResult, evaluate
from .fidelity import (column_pair_trends, column_shapes, coverage, detection, ks_complement,
                       missing_similarity, pair_trends_score, relationship_score,
                       tv_complement)
from .privacy import dcr, dcr_share, exact_copy_rate, membership_inference, nearest_distances, nndr
from .scorers import SyntheticDataScorer, get_scorer, get_scorer_names
from .utility import tstr

__all__ = [
    "EvaluationResult", "METRIC_INFO", "SyntheticDataScorer", "column_pair_trends",
    "column_shapes", "coverage", "dcr", "dcr_share", "detection", "evaluate", "exact_copy_rate",
    "get_scorer", "get_scorer_names", "ks_complement", "membership_inference",
    "missing_similarity", "nearest_distances", "nndr", "pair_trends_score", "relationship_score",
    "tstr", "tv_complement",
]
