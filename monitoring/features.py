"""Streaming summaries of one feature's values: what a baseline records and what a window is compared with.

A summary is updated chunk by chunk, so a window of any size is summarized in bounded memory. The
baseline and the window use the same code for binning, so their counts are comparable bin by bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]
    Counts = npt.NDArray[np.int64]

# The three feature types of a schema: whole numbers, other numbers, and text (categorical).
INTEGRAL, FRACTIONAL, STRING = "integral", "fractional", "string"
TYPES = (INTEGRAL, FRACTIONAL, STRING)
NUMERIC = (INTEGRAL, FRACTIONAL)
DEFAULT_BINS = 10
DEFAULT_CATEGORIES = 20
# Up to this many bin edges, histogram() compares instead of searching.
FEW_EDGES = 32


def quantile_edges(values: Floats, bins: int = DEFAULT_BINS) -> Floats:
    """Interior cut points at the 1/bins ... (bins-1)/bins quantiles of finite `values`.

    Each cut is a value of the data (the one at rank floor(k * n / bins) in sorted order), never an
    interpolation between two, so no bin is empty on the baseline: bin k starts at a value it holds.
    Ties collapse (a feature with few distinct values gets fewer bins) and a cut at the minimum is
    dropped, since nothing lies below it.
    """
    if bins < 1:
        raise ValueError(f"bins must be 1 or more, got {bins}")
    if values.size == 0:
        return np.empty(0, dtype="float64")
    ordered = np.sort(values)
    cuts = np.unique(ordered[(np.arange(1, bins) * ordered.size) // bins])
    return np.asarray(cuts[cuts > ordered[0]], dtype="float64")


def histogram(edges: Floats, values: Floats) -> Counts:
    """Counts per bin: bin i holds edges[i-1] <= v < edges[i]; the first and last bins are open-ended."""
    if edges.size > FEW_EDGES:
        found = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        return np.asarray(found, dtype="int64")
    # With few edges, counting the values at or above each edge beats a binary search per value
    # (branch-free passes over the data, no index array).
    at_or_above = np.array([values.size, *(np.count_nonzero(values >= edge) for edge in edges), 0], dtype="int64")
    counts: Counts = at_or_above[:-1] - at_or_above[1:]
    return counts


@dataclass
class NumericSummary:
    """Counts, moments, range and histogram (on fixed `edges`) of a numeric feature.

    `low`/`high` are the baseline's range: values outside it are counted as out of range. With
    `integral`, a value with a fractional part is a type error (the baseline held whole numbers only).
    """

    edges: Floats
    integral: bool = False
    low: float | None = None
    high: float | None = None
    counts: Counts = field(init=False)
    count: int = 0
    missing: int = 0
    type_errors: int = 0
    out_of_range: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    minimum: float = math.inf
    maximum: float = -math.inf

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.edges.size + 1, dtype="int64")

    def update(self, values: Floats, missing: int = 0, type_errors: int = 0) -> None:
        """Add finite `values`, plus `missing` absent and `type_errors` unreadable cells of the same rows."""
        self.missing += missing
        self.type_errors += type_errors
        if self.integral and values.size:
            whole = np.floor(values) == values
            self.type_errors += int(values.size - np.count_nonzero(whole))
            values = values[whole]
        if values.size == 0:
            return
        self.counts += histogram(self.edges, values)
        if self.low is not None and self.high is not None:
            self.out_of_range += int(np.count_nonzero((values < self.low) | (values > self.high)))
        self._add_moments(values)

    def _add_moments(self, values: Floats) -> None:
        # Chan et al.'s pairwise combination: numerically stable across chunks of any size.
        size = int(values.size)
        chunk_mean = float(values.mean())
        chunk_m2 = float(np.square(values - chunk_mean).sum())
        total = self.count + size
        delta = chunk_mean - self.mean
        self.mean += delta * size / total
        self.m2 += chunk_m2 + delta * delta * self.count * size / total
        self.count = total
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))

    @property
    def rows(self) -> int:
        """Rows that had this feature's cell: present, missing or unreadable."""
        return self.count + self.missing + self.type_errors

    @property
    def std(self) -> float:
        """Population standard deviation of the present values (0 for fewer than two)."""
        return math.sqrt(self.m2 / self.count) if self.count > 1 else 0.0


@dataclass
class CategoricalSummary:
    """Frequencies of a text feature over fixed `categories`; anything else counts in the "other" bucket."""

    categories: list[str]
    counts: Counts = field(init=False)
    missing: int = 0
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(len(self.categories) + 1, dtype="int64")
        self._index = {value: i for i, value in enumerate(self.categories)}

    def update(self, values: Any, missing: int = 0) -> None:
        """Add present text `values` (any sequence of str) and `missing` absent cells."""
        self.missing += missing
        frequencies = pd.Series(values, dtype=object).value_counts(sort=False)
        other = len(self.categories)
        for value, times in frequencies.items():
            self.counts[self._index.get(str(value), other)] += int(times)

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    @property
    def rows(self) -> int:
        return self.count + self.missing

    @property
    def other(self) -> int:
        return int(self.counts[-1])


if TYPE_CHECKING:
    Summary = NumericSummary | CategoricalSummary


def top_categories(values: Sequence[str], limit: int = DEFAULT_CATEGORIES) -> list[str]:
    """The `limit` most frequent values, most frequent first (ties in value order), for a baseline."""
    frequencies = pd.Series(list(values), dtype=object).astype(str).value_counts(sort=False)
    ranked = sorted(frequencies.items(), key=lambda item: (-int(item[1]), str(item[0])))
    return [str(value) for value, _ in ranked[:limit]]


def infer_type(values: Any) -> str:
    """INTEGRAL, FRACTIONAL or STRING for a column of raw cells (missing cells are NaN/None)."""
    present = pd.Series(values, dtype=object).dropna()
    numbers = pd.to_numeric(present, errors="coerce").astype("float64").to_numpy()
    if np.isnan(numbers).any():
        return STRING
    finite = numbers[np.isfinite(numbers)]
    return INTEGRAL if finite.size and bool((np.floor(finite) == finite).all()) else FRACTIONAL
