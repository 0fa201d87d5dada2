"""How far a window's distribution is from the baseline's, on the baseline's bins.

Two measures on the same counts (numeric bins or categories plus "other"):

- the population stability index, PSI = sum (a - e) * ln(a / e) over the bins, with the baseline
  proportions e and the window's a, each floored at PSI_FLOOR and renormalized so that an empty bin
  gives a large but finite value. It equals KL(a || e) + KL(e || a) of the floored proportions.
- the Jensen-Shannon distance with base-2 logarithms: sqrt of the JS divergence, symmetric, defined
  with empty bins, and bounded by [0, 1], so one threshold reads the same for every feature. It is
  the platform's drift measure (`monitoring.data_quality.drift_threshold`).

Why not two-sample Kolmogorov-Smirnov: the window is streamed into the baseline's bins, and on
binned data KS is only the largest CDF gap at the bin edges (a lower bound of the real statistic,
off by up to a bin's mass); it does not exist for categorical features; and its usual threshold is
a p-value that, on a million rows, flags differences nobody would act on.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

PSI_FLOOR = 1e-4


def proportions(counts: npt.ArrayLike) -> Floats:
    """Counts as proportions summing to 1; ValueError for negative counts or an empty total."""
    values = np.asarray(counts, dtype="float64")
    if values.ndim != 1 or values.size == 0 or (values < 0).any():
        raise ValueError(f"counts must be a non-empty list of numbers >= 0, got {values.tolist()}")
    total = float(values.sum())
    if total <= 0:
        raise ValueError("counts add up to 0: no distribution to compare")
    return values / total


def _check(expected: Floats, actual: Floats) -> None:
    if expected.size != actual.size:
        raise ValueError(f"the baseline has {expected.size} bins and the window {actual.size}: they must match")


def psi(expected_counts: npt.ArrayLike, actual_counts: npt.ArrayLike) -> float:
    """Population stability index of the window's counts against the baseline's, on the same bins."""
    expected, actual = proportions(expected_counts), proportions(actual_counts)
    _check(expected, actual)
    expected = np.maximum(expected, PSI_FLOOR)
    actual = np.maximum(actual, PSI_FLOOR)
    expected, actual = expected / expected.sum(), actual / actual.sum()
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def js_distance(expected_counts: npt.ArrayLike, actual_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the baseline's and the window's counts."""
    expected, actual = proportions(expected_counts), proportions(actual_counts)
    _check(expected, actual)
    middle = (expected + actual) / 2.0
    divergence = 0.5 * (_relative_entropy(expected, middle) + _relative_entropy(actual, middle))
    # Rounding can leave a tiny negative divergence for identical distributions.
    return math.sqrt(max(divergence, 0.0))


def _relative_entropy(p: Floats, q: Floats) -> float:
    """sum p * log2(p / q) over the bins where p > 0 (0 * log 0 is 0); q > 0 wherever p > 0."""
    present = p > 0
    return float(np.sum(p[present] * np.log2(p[present] / q[present])))
