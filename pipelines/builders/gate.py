"""The quality gate: the baselines, compilation and registration run only when the test metric clears the threshold."""

from __future__ import annotations

from collections.abc import Sequence

from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import JsonGet
from sagemaker.workflow.step_collections import StepCollection
from sagemaker.workflow.steps import Step

from pipelines.builders.evaluate import Evaluation
from pipelines.definition import PipelineSpec


def quality_gate(spec: PipelineSpec, evaluation: Evaluation, passed: Sequence[Step | StepCollection]) -> ConditionStep:
    """Runs `passed` when the evaluation's gate metric is at least the threshold; fails the execution otherwise."""
    metric = JsonGet(
        step_name=evaluation.step.name,
        property_file=evaluation.metrics,
        json_path=f"binary_classification_metrics.{spec.gate_metric}.value",
    )
    return ConditionStep(
        name="QualityGate",
        # The SDK's annotation of `left` omits JsonGet, the documented way to read a property file.
        conditions=[ConditionGreaterThanOrEqualTo(left=metric, right=spec.gate_threshold)],  # type: ignore[arg-type]
        if_steps=list(passed),
        else_steps=[
            FailStep(
                name="BelowQualityGate",
                error_message=f"{spec.gate_metric} on the test split is below {spec.gate_threshold:g}",
            )
        ],
    )
