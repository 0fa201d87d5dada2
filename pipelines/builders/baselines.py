"""The data-quality and model-quality baselines, registered with the model version for drift checks."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker.model_monitor.dataset_format import DatasetFormat
from sagemaker.workflow.check_job_config import CheckJobConfig
from sagemaker.workflow.quality_check_step import DataQualityCheckConfig, ModelQualityCheckConfig, QualityCheckStep
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build, output_uri
from pipelines.builders.evaluate import Evaluation
from pipelines.definition import KMS_KEY, PROCESSING_ROLE


@dataclass(frozen=True)
class QualityBaselines:
    """Model Monitor baselines of the training data (statistics and constraints) and of the model's predictions."""

    data: QualityCheckStep
    model: QualityCheckStep


def quality_baselines(build: Build, preprocess: ProcessingStep, evaluation: Evaluation) -> QualityBaselines:
    """Baselines of the preprocess step's baseline split and of the evaluate step's test-split predictions."""
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
    return QualityBaselines(data, model)
