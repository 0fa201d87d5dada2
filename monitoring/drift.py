"""Data quality of a window against its baseline: per-feature drift, missing rate, type and range checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitoring.distance import js_distance, psi
from monitoring.documents import finite
from monitoring.features import NumericSummary

if TYPE_CHECKING:
    from collections.abc import Sequence

    from monitoring.baseline import DataQualityBaseline, FeatureBaseline
    from monitoring.features import Summary

KIND = "data_quality"


def violation(monitor: str, check: str, subject: str, value: float, threshold: float, text: str) -> dict[str, Any]:
    """One entry of a report's violations: which check of which feature or metric, and the numbers."""
    return {
        "monitor": monitor,
        "check": check,
        "subject": subject,
        "value": value,
        "threshold": threshold,
        "description": text,
    }


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def feature_report(baseline: FeatureBaseline, summary: Summary, checked: bool) -> dict[str, Any]:
    """The window's statistics of one feature and, when `checked`, its distances to the baseline and violations."""
    rows = summary.rows
    report: dict[str, Any] = {
        "name": baseline.name,
        "type": baseline.type,
        "rows": rows,
        "missing_rate": _rate(summary.missing, rows),
        "baseline_missing_rate": _rate(baseline.missing, baseline.rows),
    }
    if isinstance(summary, NumericSummary):
        present = summary.count > 0
        report.update(
            type_error_rate=_rate(summary.type_errors, rows),
            out_of_range_rate=_rate(summary.out_of_range, summary.count),
            mean=summary.mean if present else None,
            std=summary.std if present else None,
            min=summary.minimum if present else None,
            max=summary.maximum if present else None,
        )
    else:
        report.update(type_error_rate=0.0, other_rate=_rate(summary.other, summary.count))
    report["counts"] = [int(c) for c in summary.counts]
    # A feature the baseline never saw a value of has no distribution to compare with.
    measured = checked and summary.count > 0 and sum(baseline.counts) > 0
    report["psi"] = finite(psi(baseline.counts, summary.counts)) if measured else None
    report["js_distance"] = finite(js_distance(baseline.counts, summary.counts)) if measured else None
    report["violations"] = _violations(baseline, report) if checked else []
    return report


def _violations(baseline: FeatureBaseline, report: dict[str, Any]) -> list[dict[str, Any]]:
    name, found = baseline.name, []
    checks = [
        ("missing_rate", report["missing_rate"], baseline.max_missing_rate, "missing values"),
        ("type", report["type_error_rate"], baseline.max_type_error_rate, f"values not of type {baseline.type}"),
        ("range", report.get("out_of_range_rate"), baseline.max_out_of_range_rate, "values outside the baseline range"),
        ("drift", report["js_distance"], baseline.max_js_distance, "Jensen-Shannon distance to the baseline"),
        ("psi", report["psi"], baseline.max_psi, "population stability index against the baseline"),
    ]
    for check, value, threshold, what in checks:
        if value is not None and threshold is not None and value > threshold:
            text = f"feature {name!r}: {what} {value:.4f}, above {threshold:.4f}"
            found.append(violation(KIND, check, name, value, threshold, text))
    return found


def data_quality_section(
    baseline: DataQualityBaseline, summaries: Sequence[Summary], schema_errors: int
) -> dict[str, Any]:
    """The data_quality section of a report for one window (see README.md, "Report").

    A window of fewer than the baseline's `min_rows` rows (counting rows of the wrong width) is
    described but not judged: status "insufficient_data", no distances, no violations.
    """
    rows = max((s.rows for s in summaries), default=0)
    seen = rows + schema_errors
    status = "no_data" if not seen else "insufficient_data" if seen < max(baseline.min_rows, 1) else "ok"
    checked = status == "ok"
    features = [feature_report(b, s, checked) for b, s in zip(baseline.features, summaries)]  # noqa: B905  Python 3.8
    violations = [v for feature in features for v in feature["violations"]]
    schema_rate = _rate(schema_errors, seen)
    if checked and schema_rate > baseline.max_schema_error_rate:
        text = (
            f"{schema_errors} captured rows do not have the baseline's {len(baseline.features)} columns "
            f"({schema_rate:.4f} of rows, above {baseline.max_schema_error_rate:.4f})"
        )
        violations.insert(0, violation(KIND, "schema", "*", schema_rate, baseline.max_schema_error_rate, text))
    measured = [f for f in features if f["js_distance"] is not None]
    worst = max(measured, key=lambda f: f["js_distance"], default=None)
    return {
        "status": status,
        "rows": rows,
        "min_rows": baseline.min_rows,
        "schema_errors": schema_errors,
        "features": features,
        "worst_feature": None if worst is None else {"name": worst["name"], "js_distance": worst["js_distance"]},
        "max_js_distance": None if worst is None else worst["js_distance"],
        "max_psi": max((f["psi"] for f in measured), default=None),
        "violations": violations,
    }
