"""Decoder initialisation from released one-way marginals (post-processing of DP outputs).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from ...base import OutputSpan
from ...calibration.marginals import SCALAR_BINS, SUB_EDGES, ValueBins, columns_of

__all__ = ['decoder_bias']

def decoder_bias(spans: Sequence[OutputSpan], one_way: Sequence[np.ndarray],
                 n_features: int, value_bins: Mapping[str, ValueBins] | None = None) -> np.ndarray:
    """Output-layer bias that makes a decoder with zero weights reproduce the released
    one-way marginals: log-probabilities for softmax groups (modes, categories), log-odds for
    binaries and missing indicators, the mean position for continuous scalars.

    Starting DP-SGD here means the noisy gradient steps need not rediscover every column's
    distribution and can go to the relationships between columns.  Post-processing of DP
    output: no privacy cost.
    """
    bias = np.zeros(n_features, dtype=np.float64)
    sub_centres = np.concatenate([[SUB_EDGES[0] - 0.15], 0.5 * (SUB_EDGES[1:] + SUB_EDGES[:-1]),
                                  [SUB_EDGES[-1] + 0.15]])
    value_bins = value_bins or {}
    for col, p in zip(columns_of(spans), one_way):
        p = np.asarray(p, dtype=np.float64)
        n_value = len(p) - int(col.missing is not None)
        observed = p[:n_value] / max(p[:n_value].sum(), 1e-12)
        if col.missing is not None:
            bias[col.missing.start] = _logit(p[-1])
        if col.soft is not None and col.scalar is not None and col.name in value_bins:
            bias[col.soft.slice] = np.log(value_bins[col.name].mode_probabilities(observed) + 1e-4)
        elif col.soft is not None and col.scalar is not None:
            per_mode = observed.reshape(col.soft.width, len(sub_centres))
            bias[col.soft.slice] = np.log(per_mode.sum(axis=1) + 1e-4)
            bias[col.scalar.start] = float(per_mode.sum(axis=0) @ sub_centres)
        elif col.soft is not None:
            bias[col.soft.slice] = np.log(observed + 1e-4)
        elif col.binary is not None:
            bias[col.binary.start] = _logit(observed[1])
        else:
            centres = (np.arange(SCALAR_BINS) + 0.5) / SCALAR_BINS * 2 - 1
            bias[col.scalar.start] = float(observed @ centres)
    return bias

def _logit(q: float) -> float:
    q = float(np.clip(q, 1e-4, 1 - 1e-4))
    return math.log(q / (1 - q))
