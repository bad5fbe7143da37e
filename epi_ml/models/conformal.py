"""Split-conformal intervals: a stated coverage from a calibration set the model never fit.

    q = conformal_quantile(scores, coverage=0.9)   # scores = |y − ŷ| / spread on the calibration set
    lower, upper = ŷ − q·spread, ŷ + q·spread

For exchangeable data, P(y in the interval) ≥ coverage (Vovk et al. 2005; Angelopoulos & Bates,
"A Gentle Introduction to Conformal Prediction", 2021, §2). The spread makes the interval wider
where the ensemble disagrees (normalized scores, Papadopoulos et al. 2008); a spread of ones gives
the plain absolute-residual interval.
"""

from __future__ import annotations

import math

import numpy as np


def conformal_quantile(scores: np.ndarray, coverage: float = 0.9) -> float:
    """The ⌈(n+1)·coverage⌉-th smallest score (finite-sample corrected); inf when n is too small
    for the coverage asked (an honest "no interval" rather than a too narrow one)."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be between 0 and 1, not {coverage}")
    finite = np.sort(np.asarray(scores, dtype=float)[np.isfinite(scores)])
    n = finite.size
    rank = math.ceil((n + 1) * coverage)
    if n == 0 or rank > n:
        return math.inf
    return float(finite[rank - 1])


def normalized_scores(y: np.ndarray, predicted: np.ndarray, spread: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(y) - np.asarray(predicted)) / np.asarray(spread)


def empirical_coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of finite y inside [lower, upper] (NaN when none)."""
    y, lower, upper = (np.asarray(a, dtype=float) for a in (y, lower, upper))
    keep = np.isfinite(y)
    if not keep.any():
        return math.nan
    return float(np.mean((y[keep] >= lower[keep]) & (y[keep] <= upper[keep])))
