"""The pipeline builder's inputs (a PipelineSpec), from the training and dataset config and the instance catalog."""

from __future__ import annotations

from infra.catalog import instances, naming
from infra.config import (
    TRAINING_HYPERPARAMETERS,
    TRAINING_METRIC_REGEXES,
    DatasetConfig,
    PlatformConfig,
    TrainingConfig,
    TuningConfig,
)
from pipelines import definition as pipeline


def pipeline_spec(
    config: PlatformConfig, training: TrainingConfig, dataset: DatasetConfig, *, subnets: int
) -> pipeline.PipelineSpec:
    """The spec of `training` on `dataset`, with jobs in `subnets` subnets."""
    return pipeline.PipelineSpec(
        name=naming.training_pipeline(config),
        region=config.region,
        model_package_group=naming.model_package_group(config),
        dataset=dataset.name,
        key=dataset.key_columns[0],
        target=training.target,
        features=tuple(training.features),
        subnets=subnets,
        training_instance_type=training.instance_type,
        training_instance_count=training.instance_count,
        training_runtime=training.runtime,
        # SageMaker refuses a customer volume key on local-NVMe types (encrypted in hardware).
        training_volume_kms=not instances.has_local_nvme(training.instance_type),
        volume_size_gb=training.volume_size_gb,
        max_runtime_seconds=training.max_runtime_minutes * 60,
        processing_instance_type=training.processing_instance_type,
        processing_volume_kms=not instances.has_local_nvme(training.processing_instance_type),
        hyperparameters=tuple(sorted((k, str(v)) for k, v in training.hyperparameters.items())),
        metric_definitions=tuple(TRAINING_METRIC_REGEXES.items()),
        spot=training.spot.enabled,
        max_wait_seconds=training.spot.max_wait_minutes * 60 if training.spot.max_wait_minutes else None,
        gate_metric=training.quality_gate.metric,
        gate_threshold=training.quality_gate.threshold,
        inference_instance_types=tuple(training.inference_instance_types),
        tuning=_tuning(training.tuning) if training.tuning else None,
        neuron_inference=training.serves_on_inferentia,
        bias_facet=training.bias_baseline.facet if training.bias_baseline else None,
        bias_threshold=training.bias_baseline.threshold if training.bias_baseline else None,
        explainability=pipeline.Explainability(rows=training.explainability.rows) if training.explainability else None,
        debugger_rules=tuple(training.debugger.rules),
        tensorboard=training.debugger.tensorboard,
        mlflow_tracking_server=naming.mlflow_server(config) if training.mlflow else None,
        # The baselines follow the monitors' engine; a registry without monitors here registers the
        # platform's, which every account can compute.
        monitoring_engine=config.monitoring.engine if config.monitoring else pipeline.PLATFORM_ENGINE,
    )


def _tuning(tuning: TuningConfig) -> pipeline.Tuning:
    return pipeline.Tuning(
        strategy=tuning.strategy,
        objective_metric=tuning.objective_metric,
        objective=tuning.objective,
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping=tuning.early_stopping,
        ranges=tuple(
            (
                name,
                TRAINING_HYPERPARAMETERS[name],
                r.min,
                r.max,
                tuple(str(v) for v in r.values) if r.values else None,
                r.scaling,
            )
            for name, r in sorted(tuning.ranges.items())
        ),
    )
