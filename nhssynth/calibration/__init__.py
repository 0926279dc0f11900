"""Calibration: make a generator's draws match released (DP) marginals.

``marginals`` releases one-way marginals, ``pairs`` chooses and releases two-way marginals,
``raking`` reweights and selects rows to match them, and ``quantile_matching`` maps numeric
columns onto their released distributions.  All of it is post-processing of DP releases.
"""
