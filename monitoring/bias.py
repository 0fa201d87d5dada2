"""Bias across one facet: Clarify's class imbalance and differences in positive proportions, and their drift.

The facet group d holds the rows whose facet value is above the threshold (Clarify's
`value_or_threshold` for a numeric facet), group a the others; rows without a facet value are left
out. With n the row counts, q the share of positive labels and q' of positive predictions per group:

- CI   = (n_a - n_d) / (n_a + n_d)   class imbalance (needs the facet only)
- DPL  = q_a - q_d                   difference in proportions of labels (needs ground truth)
- DPPL = q'_a - q'_d                 difference in positive proportions in predicted labels

The evaluate step writes their values on the test split as the baseline; a window violates when a
metric moved more than `max_shift` away from its baseline value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from monitoring import documents
from monitoring.documents import CONSTRAINTS_FILE, STATISTICS_FILE, Fields
from monitoring.drift import violation

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

KIND = "bias"
METRICS = ("CI", "DPL", "DPPL")
DEFAULT_MAX_SHIFT = 0.1
DEFAULT_MIN_ROWS = 100


@dataclass
class FacetCounts:
    """Per group (index 0 for a, 1 for d): rows, labelled rows and their positives, predicted rows and positives."""

    threshold: float
    score_threshold: float
    rows: list[int] = field(default_factory=lambda: [0, 0])
    labelled: list[int] = field(default_factory=lambda: [0, 0])
    label_positive: list[int] = field(default_factory=lambda: [0, 0])
    predicted: list[int] = field(default_factory=lambda: [0, 0])
    predicted_positive: list[int] = field(default_factory=lambda: [0, 0])

    def update(self, facet: npt.ArrayLike, labels: npt.ArrayLike, scores: npt.ArrayLike) -> None:
        """Add rows: facet values, 0/1 labels and scores, each NaN where unknown."""
        values = np.asarray(facet, dtype="float64")
        y, p = np.asarray(labels, dtype="float64"), np.asarray(scores, dtype="float64")
        known = ~np.isnan(values)
        for group, members in enumerate((known & (values <= self.threshold), known & (values > self.threshold))):
            self.rows[group] += int(members.sum())
            has_label, has_score = members & ~np.isnan(y), members & ~np.isnan(p)
            self.labelled[group] += int(has_label.sum())
            self.label_positive[group] += int((y[has_label] == 1).sum())
            self.predicted[group] += int(has_score.sum())
            self.predicted_positive[group] += int((p[has_score] >= self.score_threshold).sum())

    def metrics(self) -> dict[str, float | None]:
        """CI, DPL and DPPL; None where a group has no rows of the kind the metric needs."""
        total = sum(self.rows)
        return {
            "CI": (self.rows[0] - self.rows[1]) / total if total else None,
            "DPL": _difference(self.label_positive, self.labelled),
            "DPPL": _difference(self.predicted_positive, self.predicted),
        }

    def as_dict(self) -> dict[str, list[int]]:
        return {
            "rows": list(self.rows),
            "labelled": list(self.labelled),
            "label_positive": list(self.label_positive),
            "predicted": list(self.predicted),
            "predicted_positive": list(self.predicted_positive),
        }


def _difference(positive: list[int], rows: list[int]) -> float | None:
    if not rows[0] or not rows[1]:
        return None
    return positive[0] / rows[0] - positive[1] / rows[1]


def write_bias_baseline(
    output_dir: Path,
    facet_name: str,
    counts: FacetCounts,
    *,
    max_shift: float = DEFAULT_MAX_SHIFT,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> dict[str, Any]:
    """statistics.json (the facet's counts and metrics) and constraints.json (each metric's allowed shift)."""
    if not 0.0 < max_shift <= 2.0:
        raise ValueError(f"max_shift must be in (0, 2], got {max_shift}")
    metrics = counts.metrics()
    common = {
        "schema_version": documents.SCHEMA_VERSION,
        "kind": KIND,
        "facet": facet_name,
        "facet_threshold": counts.threshold,
        "score_threshold": counts.score_threshold,
    }
    statistics = {**common, "groups": ["a", "d"], "counts": counts.as_dict(), "metrics": metrics}
    constraints = {
        **common,
        "min_rows": min_rows,
        "metrics": {
            name: {"baseline": value, "max_shift": max_shift} for name, value in metrics.items() if value is not None
        },
    }
    documents.write(output_dir / STATISTICS_FILE, statistics)
    documents.write(output_dir / CONSTRAINTS_FILE, constraints)
    return statistics


@dataclass(frozen=True)
class BiasBaseline:
    """A loaded bias baseline: the facet, its thresholds, each metric's baseline value and allowed shift."""

    facet: str
    facet_threshold: float
    score_threshold: float
    min_rows: int
    metrics: dict[str, tuple[float, float]]  # name -> (baseline value, max shift)

    @classmethod
    def load(cls, directory: Path) -> BiasBaseline:
        path = directory / CONSTRAINTS_FILE
        constraints = Fields(path, documents.read(path, KIND), "")
        limits = constraints.object("metrics")
        metrics = {}
        for name in METRICS:
            if name in limits.value:
                metric = limits.object(name)
                metrics[name] = (metric.number("baseline", -1.0, 1.0), metric.number("max_shift", 0.0, 2.0))
        return cls(
            facet=constraints.text("facet"),
            facet_threshold=constraints.number("facet_threshold"),
            score_threshold=constraints.number("score_threshold", 0.0, 1.0),
            min_rows=constraints.count("min_rows"),
            metrics=metrics,
        )

    def new_counts(self) -> FacetCounts:
        return FacetCounts(self.facet_threshold, self.score_threshold)


def bias_section(baseline: BiasBaseline, counts: FacetCounts) -> dict[str, Any]:
    """The bias section of a report: the window's facet metrics, their shifts and violations."""
    rows = sum(counts.rows)
    section: dict[str, Any] = {
        "facet": baseline.facet,
        "rows": rows,
        "min_rows": baseline.min_rows,
        "counts": counts.as_dict(),
        "baseline": {name: value for name, (value, _) in baseline.metrics.items()},
    }
    if rows == 0:
        return {**section, "status": "no_data", "metrics": None, "shifts": None, "violations": []}
    if rows < max(baseline.min_rows, 1):
        return {**section, "status": "insufficient_data", "metrics": None, "shifts": None, "violations": []}
    metrics = counts.metrics()
    shifts: dict[str, float | None] = {}
    violations = []
    for name in METRICS:
        value, limit = metrics[name], baseline.metrics.get(name)
        shifts[name] = None if value is None or limit is None else abs(value - limit[0])
        shift = shifts[name]
        if shift is not None and limit is not None and shift > limit[1]:
            text = f"{name} on facet {baseline.facet!r} is {value:.4f}, {shift:.4f} from its baseline {limit[0]:.4f}"
            violations.append(violation(KIND, "shift", name, shift, limit[1], text))
    return {**section, "status": "ok", "metrics": metrics, "shifts": shifts, "violations": violations}
