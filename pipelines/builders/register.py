"""The Register step: the model version with its metrics, baselines and drift-check baselines, in the group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sagemaker.drift_check_baselines import DriftCheckBaselines
from sagemaker.model_metrics import FileSource, MetricsSource, ModelMetrics
from sagemaker.workflow.entities import PipelineVariable
from sagemaker.workflow.parameters import ParameterString
from sagemaker.workflow.quality_check_step import QualityCheckStep
from sagemaker.workflow.step_collections import RegisterModel
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build
from pipelines.builders.evaluate import Evaluation
from pipelines.builders.train import Trained

JSON = "application/json"


@dataclass(frozen=True)
class Reports:
    """What an optional analysis adds to the registration: the steps that produce it, metrics and drift baselines.

    `metrics` are keyword arguments of ModelMetrics; `drift` and `drift_configs` of DriftCheckBaselines.
    """

    steps: tuple[ProcessingStep | QualityCheckStep, ...] = ()
    metrics: Mapping[str, MetricsSource] = field(default_factory=dict)
    drift: Mapping[str, MetricsSource] = field(default_factory=dict)
    drift_configs: Mapping[str, FileSource] = field(default_factory=dict)


@dataclass(frozen=True)
class ServableModel:
    """The artifact the version registers, the image that serves it, and the steps that produce it from training."""

    data: PipelineVariable
    image: str
    steps: tuple[ProcessingStep | QualityCheckStep, ...] = ()


def register_step(
    build: Build,
    *,
    trained: Trained,
    model: ServableModel,
    approval: ParameterString,
    evaluation: Evaluation,
    reports: Sequence[Reports],
) -> RegisterModel:
    """Registers `model` with the evaluation and each of `reports` (the baselines among them)."""
    spec = build.spec
    metrics = {name: source for report in reports for name, source in report.metrics.items()}
    drift = {name: source for report in reports for name, source in report.drift.items()}
    configs = {name: source for report in reports for name, source in report.drift_configs.items()}
    return RegisterModel(
        name="Register",
        estimator=trained.estimator,
        model_data=model.data,
        image_uri=model.image,
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=list(spec.inference_instance_types),
        # No batch transform types: the platform runs no transform jobs, and the processing type named
        # here before (a CPU type) does not fit the CUDA or Neuron image a package may register.
        model_package_group_name=spec.model_package_group,
        approval_status=approval,
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(s3_uri=evaluation.metrics_uri, content_type=JSON),
            **metrics,
        ),
        drift_check_baselines=DriftCheckBaselines(
            bias_config_file=configs.get("bias_config_file"),
            explainability_config_file=configs.get("explainability_config_file"),
            **drift,
        ),
        customer_metadata_properties={"trigger": "see pipeline execution parameter TriggerReason"},
    )
