"""Stand-in for the Model Monitor analyzer image (QualityCheck steps): baseline statistics and constraints."""

from __future__ import annotations

import json
from typing import Any

from pipelines.emulator.container import Container
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.standins import tables


class Analyzer:
    """Reads the baseline dataset the job delivers (dataset_source, dataset_format) and writes
    statistics.json and constraints.json to output_path in the layout of AWS's published schemas.

    Data quality: per-column inferred type, completeness and numeric statistics. Model quality
    (BinaryClassification): the configured ground-truth, inference and probability columns must exist
    and hold 0/1 labels and probabilities; the metrics are computed from them.
    """

    name = "Model Monitor analyzer"

    def run(self, step: str, args: dict[str, Any], container: Container) -> str:
        env = args.get("Environment") or {}
        for required in ("dataset_source", "output_path", "dataset_format"):
            if required not in env:
                raise EmulationError(step, f"Environment.{required}", "(unset)", "the analyzer needs it")
        source = container.host(env["dataset_source"])
        files = tables.csv_files(source)
        if not files:
            raise EmulationError(
                step, "Environment.dataset_source", env["dataset_source"], "no CSV file delivered there"
            )
        header = bool(json.loads(env["dataset_format"]).get("csv", {}).get("header", False))
        try:
            columns, rows = tables.read_rows(files, header)
        except ValueError as error:
            raise EmulationError(step, "Environment.dataset_source", env["dataset_source"], str(error)) from None
        names = columns or [f"_c{i}" for i in range(len(rows[0]) if rows else 0)]
        kind = env.get("analysis_type", "DATA_QUALITY")
        if kind == "MODEL_QUALITY":
            statistics, constraints = _model_quality(step, env, names, rows)
        elif kind == "DATA_QUALITY":
            statistics, constraints = _data_quality(names, rows)
        else:
            raise NotEmulated(step, "Environment.analysis_type", kind, "DATA_QUALITY and MODEL_QUALITY are emulated")
        output = container.host(env["output_path"])
        output.mkdir(parents=True, exist_ok=True)
        (output / "statistics.json").write_text(json.dumps(statistics, indent=2))
        (output / "constraints.json").write_text(json.dumps(constraints, indent=2))
        return f"{kind}: {len(rows)} rows of {len(names)} columns from {len(files)} file(s)"


def _inferred_type(values: list[str]) -> str:
    present = [v for v in values if v != ""]
    if not present:
        return "Unknown"
    if all(v.lstrip("-").isdigit() for v in present):
        return "Integral"
    if all(tables.number(v) is not None for v in present):
        return "Fractional"
    return "String"


def _data_quality(names: list[str], rows: list[list[str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    features, constrained = [], []
    for i, name in enumerate(names):
        values = [row[i] if i < len(row) else "" for row in rows]
        kind = _inferred_type(values)
        numbers = [n for n in (tables.number(v) for v in values) if n is not None]
        missing = sum(1 for v in values if v == "")
        feature: dict[str, Any] = {"name": name, "inferred_type": kind}
        if kind in ("Integral", "Fractional") and numbers:
            mean = sum(numbers) / len(numbers)
            spread = (sum((n - mean) ** 2 for n in numbers) / len(numbers)) ** 0.5
            feature["numerical_statistics"] = {
                "common": {"num_present": len(values) - missing, "num_missing": missing},
                "mean": mean,
                "sum": sum(numbers),
                "std_dev": spread,
                "min": min(numbers),
                "max": max(numbers),
            }
        features.append(feature)
        rule: dict[str, Any] = {"name": name, "inferred_type": kind, "completeness": 1 - missing / max(len(values), 1)}
        if numbers:
            rule["num_constraints"] = {"is_non_negative": min(numbers) >= 0}
        constrained.append(rule)
    statistics = {"version": 0.0, "dataset": {"item_count": len(rows)}, "features": features}
    constraints = {
        "version": 0.0,
        "features": constrained,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1},
        },
    }
    return statistics, constraints


def _column(step: str, env: dict[str, Any], attribute: str, names: list[str]) -> int:
    name = env.get(attribute)
    if name not in names:
        raise EmulationError(
            step, f"Environment.{attribute}", str(name), f"not a column of the dataset (it has {', '.join(names)})"
        )
    return names.index(name)


def _model_quality(
    step: str, env: dict[str, Any], names: list[str], rows: list[list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    if env.get("problem_type") != "BinaryClassification":
        raise NotEmulated(
            step, "Environment.problem_type", str(env.get("problem_type")), "BinaryClassification is emulated"
        )
    truth_at = _column(step, env, "ground_truth_attribute", names)
    label_at = _column(step, env, "inference_attribute", names)
    score_at = _column(step, env, "probability_attribute", names)
    truth, predicted, scores = [], [], []
    for number, row in enumerate(rows, start=2):
        values = (tables.number(row[truth_at]), tables.number(row[label_at]), tables.number(row[score_at]))
        if values[0] not in (0, 1) or values[1] not in (0, 1) or values[2] is None or not 0 <= values[2] <= 1:
            raise EmulationError(
                step,
                "Environment.dataset_source",
                env["dataset_source"],
                f"row {number}: labels must be 0/1 and probabilities in [0, 1], got {row}",
            )
        truth.append(int(values[0] or 0))
        predicted.append(int(values[1] or 0))
        scores.append(float(values[2]))
    metrics = tables.binary_metrics(truth, predicted, scores)
    statistics = {
        "version": 0.0,
        "dataset": {"item_count": len(rows)},
        "binary_classification_metrics": {
            name: {"value": value, "standard_deviation": 0.0} for name, value in metrics.items()
        },
    }
    constraints = {
        "version": 0.0,
        "binary_classification_constraints": {
            name: {"threshold": value, "comparison_operator": "LessThanThreshold"} for name, value in metrics.items()
        },
    }
    return statistics, constraints
