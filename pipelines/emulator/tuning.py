"""A hyperparameter tuning job, emulated: a few training jobs over the ranges, ranked by the objective metric."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from pipelines.emulator import training
from pipelines.emulator.errors import EmulationError
from pipelines.emulator.world import World


@dataclass(frozen=True)
class Tuned:
    properties: dict[str, Any]
    jobs: list[training.Trained]


def run(step: str, name: str, arguments: dict[str, Any], world: World) -> Tuned:
    """Run min(world.tuning_jobs, MaxNumberOfTrainingJobs) jobs; TrainingJobSummaries best first.

    Job k of n takes each range at quantile (k + 0.5) / n on its scale; categorical values in turn.
    Which values SageMaker's strategy (Bayesian, Hyperband...) picks, and early stopping, are not emulated.
    """
    config = arguments["HyperParameterTuningJobConfig"]
    definition = arguments["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    count = max(1, min(world.tuning_jobs, int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"])))
    jobs, summaries = [], []
    for k in range(count):
        tuned = candidate(config.get("ParameterRanges", {}), k, count)
        digest = hashlib.sha256(repr(sorted(tuned.items())).encode()).hexdigest()[:8]
        job_name = f"{name[:32]}-{k + 1:03d}-{digest}"
        request = _training_request(definition, tuned, objective["MetricName"])
        trained = training.run(training.TrainingJob(step, job_name, request, "TrainingJobDefinition."), world)
        value = _objective(step, objective["MetricName"], trained)
        jobs.append(trained)
        summaries.append(
            {
                "TrainingJobName": job_name,
                "TrainingJobArn": trained.properties["TrainingJobArn"],
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": tuned,
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": objective["MetricName"], "Value": value},
            }
        )
    summaries = ranked(summaries, objective["Type"])
    properties = {
        **arguments,
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": world.arn("hyper-parameter-tuning-job", name),
        "HyperParameterTuningJobStatus": "Completed",
        "BestTrainingJob": summaries[0],
        "TrainingJobSummaries": summaries,
    }
    return Tuned(properties, jobs)


def ranked(summaries: list[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    """Training job summaries best first, as the tuning step's TrainingJobSummaries list them."""
    return sorted(
        summaries,
        key=lambda s: float(s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]),
        reverse=objective == "Maximize",
    )


def _training_request(definition: dict[str, Any], tuned: dict[str, str], metric: str) -> dict[str, Any]:
    """The CreateTrainingJob request SageMaker derives from the tuning job's training job definition."""
    request = {
        key: value
        for key, value in definition.items()
        if key not in ("StaticHyperParameters", "HyperParameterTuningResourceConfig")
    }
    request["ResourceConfig"] = definition.get("ResourceConfig") or definition["HyperParameterTuningResourceConfig"]
    # Tuned values arrive as plain strings; SageMaker adds the objective metric's name for script-mode images.
    request["HyperParameters"] = {
        **definition.get("StaticHyperParameters", {}),
        **tuned,
        "_tuning_objective_metric": metric,
    }
    return request


def candidate(ranges: dict[str, Any], k: int, count: int) -> dict[str, str]:
    """The k-th of `count` evenly spread settings of the ranges, as the strings SageMaker passes."""
    fraction = (k + 0.5) / count
    values: dict[str, str] = {}
    for spec in ranges.get("ContinuousParameterRanges", []):
        values[spec["Name"]] = repr(
            _scaled(float(spec["MinValue"]), float(spec["MaxValue"]), spec.get("ScalingType", "Auto"), fraction)
        )
    for spec in ranges.get("IntegerParameterRanges", []):
        value = _scaled(float(spec["MinValue"]), float(spec["MaxValue"]), spec.get("ScalingType", "Auto"), fraction)
        values[spec["Name"]] = str(round(value))
    for spec in ranges.get("CategoricalParameterRanges", []):
        values[spec["Name"]] = str(spec["Values"][k % len(spec["Values"])])
    return values


def _scaled(low: float, high: float, scaling: str, fraction: float) -> float:
    if scaling == "Logarithmic":
        return math.exp(math.log(low) + fraction * (math.log(high) - math.log(low)))
    if scaling == "ReverseLogarithmic":
        return 1.0 - math.exp(math.log(1.0 - high) + (1.0 - fraction) * (math.log(1.0 - low) - math.log(1.0 - high)))
    return low + fraction * (high - low)


def _objective(step: str, metric: str, trained: training.Trained) -> float:
    for item in trained.properties["FinalMetricDataList"]:
        if item["MetricName"] == metric:
            return float(item["Value"])
    raise EmulationError(
        step,
        "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName",
        metric,
        f"training job {trained.properties['TrainingJobName']} logged no line its metric definition's regex matches",
    )
