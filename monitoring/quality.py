"""Model quality of a binary classifier: its metrics, the baseline the evaluate step writes, and the window's check.

The metrics are defined once here, for the baseline and for every window, so both are comparable by
construction. They match the evaluate step's evaluation.json (a test keeps them in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from monitoring import documents
from monitoring.documents import CONSTRAINTS_FILE, STATISTICS_FILE, Fields, finite
from monitoring.drift import violation

if TYPE_CHECKING:
    from pathlib import Path

    import numpy.typing as npt

KIND = "model_quality"
METRICS = ("auc", "accuracy", "precision", "recall", "f1")
PROBLEM = "binary_classification"
DEFAULT_TOLERANCE = 0.05
DEFAULT_MIN_ROWS = 100


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), ties counting one half; NaN unless both classes occur."""
    y = np.asarray(labels, dtype="float64")
    positives = int((y == 1).sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(scores, dtype="float64"), return_inverse=True, return_counts=True)
    # Tied scores share the mean of the 1-based ranks they span.
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum = float(mean_rank[inverse.reshape(-1)][y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def binary_metrics(labels: npt.ArrayLike, scores: npt.ArrayLike, threshold: float = 0.5) -> dict[str, Any]:
    """METRICS of scores against 0/1 labels (a row is predicted positive when its score >= threshold).

    With no predicted (or actual) positive, precision (recall) is 0 rather than undefined, as in
    evaluation.json. Also the confusion matrix, rows actual and columns predicted labels.
    """
    y = np.asarray(labels, dtype="float64").astype(int)
    p = np.asarray(scores, dtype="float64")
    predicted = (p >= threshold).astype(int)
    tp = int(((predicted == 1) & (y == 1)).sum())
    fp = int(((predicted == 1) & (y == 0)).sum())
    fn = int(((predicted == 0) & (y == 1)).sum())
    tn = int(((predicted == 0) & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "auc": roc_auc(y, p),
        "accuracy": (tp + tn) / y.size if y.size else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
    }


def write_model_quality_baseline(
    output_dir: Path,
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    threshold: float = 0.5,
    tolerance: float = DEFAULT_TOLERANCE,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> dict[str, Any]:
    """statistics.json (the metrics on the evaluation rows) and constraints.json (each metric's floor).

    A metric's floor is its baseline value minus `tolerance`; a metric that is undefined on the
    baseline (AUC with one class) gets no floor. Returns the statistics.
    """
    if not 0.0 <= threshold <= 1.0 or not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"threshold {threshold} and tolerance {tolerance} must both be in [0, 1]")
    y = np.asarray(labels, dtype="float64")
    if y.size == 0 or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"labels must be a non-empty list of 0 and 1, got {np.unique(y)[:5].tolist()}")
    metrics = binary_metrics(y, scores, threshold)
    values = {name: finite(metrics[name]) for name in METRICS}
    statistics = {
        "schema_version": documents.SCHEMA_VERSION,
        "kind": KIND,
        "problem_type": PROBLEM,
        "threshold": threshold,
        "rows": int(y.size),
        "positive_rate": float(y.mean()),
        "metrics": values,
        "confusion_matrix": metrics["confusion_matrix"],
    }
    floors = {name: max(0.0, value - tolerance) for name, value in values.items() if value is not None}
    constraints = {
        "schema_version": documents.SCHEMA_VERSION,
        "kind": KIND,
        "problem_type": PROBLEM,
        "threshold": threshold,
        "min_rows": min_rows,
        "min_metrics": floors,
    }
    documents.write(output_dir / STATISTICS_FILE, statistics)
    documents.write(output_dir / CONSTRAINTS_FILE, constraints)
    return statistics


@dataclass(frozen=True)
class ModelQualityBaseline:
    """A loaded model-quality baseline: the threshold that turns scores into labels, metrics and floors."""

    threshold: float
    min_rows: int
    metrics: dict[str, float | None]
    min_metrics: dict[str, float]

    @classmethod
    def load(cls, directory: Path) -> ModelQualityBaseline:
        statistics_path, constraints_path = directory / STATISTICS_FILE, directory / CONSTRAINTS_FILE
        statistics = Fields(statistics_path, documents.read(statistics_path, KIND), "")
        constraints = Fields(constraints_path, documents.read(constraints_path, KIND), "")
        statistics.text("problem_type", (PROBLEM,))
        measured, floors = statistics.object("metrics"), constraints.object("min_metrics")
        return cls(
            threshold=constraints.number("threshold", 0.0, 1.0),
            min_rows=constraints.count("min_rows"),
            metrics={name: measured.optional_number(name, 0.0, 1.0) for name in METRICS},
            min_metrics={
                name: floors.number(name, 0.0, 1.0) for name in METRICS if floors.optional_number(name) is not None
            },
        )

    def with_floors(self, overrides: dict[str, float]) -> ModelQualityBaseline:
        """The same baseline with some floors replaced (the platform config's `min_value`, say)."""
        unknown = sorted(set(overrides) - set(METRICS))
        if unknown:
            raise ValueError(f"unknown model-quality metrics {unknown}; known: {list(METRICS)}")
        return ModelQualityBaseline(self.threshold, self.min_rows, self.metrics, {**self.min_metrics, **overrides})


def model_quality_section(
    baseline: ModelQualityBaseline, labels: npt.ArrayLike, scores: npt.ArrayLike
) -> dict[str, Any]:
    """The model_quality section of a report: metrics of the joined rows and the floors they fall below."""
    y = np.asarray(labels, dtype="float64")
    section: dict[str, Any] = {"rows": int(y.size), "min_rows": baseline.min_rows, "baseline": baseline.metrics}
    if y.size == 0:
        return {**section, "status": "no_data", "metrics": None, "violations": []}
    if y.size < max(baseline.min_rows, 1):
        return {**section, "status": "insufficient_data", "metrics": None, "violations": []}
    metrics = binary_metrics(y, scores, baseline.threshold)
    values = {name: finite(metrics[name]) for name in METRICS}
    violations = []
    for name, floor in sorted(baseline.min_metrics.items()):
        value = values.get(name)
        if value is not None and value < floor:
            text = f"{name} {value:.4f} on {y.size} labelled rows, below {floor:.4f}"
            violations.append(violation(KIND, "metric", name, value, floor, text))
    return {
        **section,
        "status": "ok",
        "positive_rate": float(y.mean()),
        "metrics": values,
        "confusion_matrix": metrics["confusion_matrix"],
        "violations": violations,
    }
