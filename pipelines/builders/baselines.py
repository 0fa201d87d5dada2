"""The data-quality and model-quality baselines, registered with the model version for drift checks."""

from __future__ import annotations

from sagemaker.model_metrics import MetricsSource
from sagemaker.model_monitor.dataset_format import DatasetFormat
from sagemaker.workflow.check_job_config import CheckJobConfig
from sagemaker.workflow.functions import Join
from sagemaker.workflow.quality_check_step import DataQualityCheckConfig, ModelQualityCheckConfig, QualityCheckStep
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build, output_uri
from pipelines.builders.evaluate import Evaluation
from pipelines.builders.register import JSON, Reports
from pipelines.definition import KMS_KEY, PROCESSING_ROLE


def quality_baselines(build: Build, preprocess: ProcessingStep, evaluation: Evaluation) -> Reports:
    """The data baseline (training data) and the model baseline (test-split predictions), on the spec's engine."""
    if build.spec.platform_baselines:
        return platform_quality_baselines(preprocess, evaluation)
    return model_monitor_quality_baselines(build, preprocess, evaluation)


def baseline_document(step: ProcessingStep, kind: str, document: str) -> MetricsSource:
    """statistics.json or constraints.json of a platform baseline a step wrote (its 'monitoring' output)."""
    return MetricsSource(
        s3_uri=Join(on="/", values=[output_uri(step, "monitoring"), kind, document]), content_type=JSON
    )


def platform_quality_baselines(preprocess: ProcessingStep, evaluation: Evaluation) -> Reports:
    """The platform engine's baselines, written by the preprocess and evaluate steps (monitoring/README.md).

    They take the places of Model Monitor's: promotion reads the same DriftCheckBaselines paths
    (infra/catalog/monitors.py), and the monitor run reads each document's directory.
    """
    statistics = baseline_document(preprocess, "data_quality", "statistics.json")
    constraints = baseline_document(preprocess, "data_quality", "constraints.json")
    model = baseline_document(evaluation.step, "model_quality", "constraints.json")
    return Reports(
        metrics={
            "model_data_statistics": statistics,
            "model_data_constraints": constraints,
            "model_constraints": model,
        },
        drift={"model_data_statistics": statistics, "model_data_constraints": constraints, "model_constraints": model},
    )


def model_monitor_quality_baselines(build: Build, preprocess: ProcessingStep, evaluation: Evaluation) -> Reports:
    """QualityCheckSteps on Model Monitor's analyzer image over the baseline split and the test-split predictions."""
    spec = build.spec
    # CheckJobConfig and DatasetFormat.csv carry no annotations in the SDK (the ignores below).
    check_job = CheckJobConfig(  # type: ignore[no-untyped-call]
        role=PROCESSING_ROLE,
        instance_count=1,
        instance_type=spec.processing_instance_type,
        volume_kms_key=build.processing_volume_key,
        output_kms_key=KMS_KEY,
        network_config=build.network,
        max_runtime_in_seconds=3600,
        base_job_name=f"{spec.name}-baseline",
        sagemaker_session=build.session,
    )
    data = QualityCheckStep(
        name="DataQualityBaseline",
        check_job_config=check_job,
        quality_check_config=DataQualityCheckConfig(
            baseline_dataset=output_uri(preprocess, "baseline"),
            dataset_format=DatasetFormat.csv(header=True),  # type: ignore[no-untyped-call]
            output_s3_uri=build.run_path("baselines", "data-quality"),
        ),
        skip_check=True,
        register_new_baseline=True,
        model_package_group_name=spec.model_package_group,
    )
    model = QualityCheckStep(
        name="ModelQualityBaseline",
        check_job_config=check_job,
        quality_check_config=ModelQualityCheckConfig(
            baseline_dataset=output_uri(evaluation.step, "predictions"),
            dataset_format=DatasetFormat.csv(header=True),  # type: ignore[no-untyped-call]
            output_s3_uri=build.run_path("baselines", "model-quality"),
            problem_type="BinaryClassification",
            inference_attribute="prediction",
            probability_attribute="probability",
            ground_truth_attribute="label",
        ),
        skip_check=True,
        register_new_baseline=True,
        model_package_group_name=spec.model_package_group,
    )
    d, m = data.properties, model.properties
    return Reports(
        steps=(data, model),
        metrics={
            "model_data_statistics": MetricsSource(s3_uri=d.CalculatedBaselineStatistics, content_type=JSON),
            "model_data_constraints": MetricsSource(s3_uri=d.CalculatedBaselineConstraints, content_type=JSON),
            "model_constraints": MetricsSource(s3_uri=m.CalculatedBaselineConstraints, content_type=JSON),
        },
        drift={
            "model_data_statistics": MetricsSource(s3_uri=d.BaselineUsedForDriftCheckStatistics, content_type=JSON),
            "model_data_constraints": MetricsSource(s3_uri=d.BaselineUsedForDriftCheckConstraints, content_type=JSON),
            "model_constraints": MetricsSource(s3_uri=m.BaselineUsedForDriftCheckConstraints, content_type=JSON),
        },
    )
