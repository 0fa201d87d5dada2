"""CSV files as the analysis images read them, and the binary-classification metrics they report."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path


def csv_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix == ".csv") if directory.is_dir() else []


def read_rows(files: Sequence[Path], header: bool) -> tuple[list[str] | None, list[list[str]]]:
    """(header, rows) of CSV files that must agree on their header (or all have none)."""
    first: list[str] | None = None
    rows: list[list[str]] = []
    for path in files:
        with path.open(newline="") as handle:
            lines = list(csv.reader(handle))
        if header:
            if not lines:
                raise ValueError(f"{path.name} is empty but the dataset format says it has a header")
            if first is not None and lines[0] != first:
                raise ValueError(f"{path.name} has header {lines[0]}, {files[0].name} has {first}")
            first, lines = lines[0], lines[1:]
        rows += lines
    return first, rows


def number(text: str) -> float | None:
    """The value of a CSV field, None when it is empty (missing) or not a finite number."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve from ranks; ties count one half."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return math.nan
    rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label == 1)
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def binary_metrics(truth: Sequence[int], predicted: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == 1 and p == 1)
    fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == 0 and p == 1)
    fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == 1 and p == 0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": sum(1 for t, p in zip(truth, predicted, strict=True) if t == p) / len(truth),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "auc": roc_auc(truth, scores),
    }
