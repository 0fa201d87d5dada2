"""The train (or tune) step: the PyTorch estimator with its Debugger rules, on the preprocessed splits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import smdebug_rulesconfig as rule_configs  # type: ignore[import-untyped]  # the SDK's rule table, untyped
from sagemaker.debugger.debugger import DebuggerHookConfig, ProfilerRule, Rule, TensorBoardOutputConfig
from sagemaker.debugger.profiler_config import ProfilerConfig
from sagemaker.inputs import TrainingInput
from sagemaker.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter, ParameterRange
from sagemaker.pytorch.estimator import PyTorch
from sagemaker.tuner import HyperparameterTuner
from sagemaker.workflow.entities import PipelineVariable
from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TuningStep

from pipelines.builders.context import Build, output_uri
from pipelines.builders.images import training_image
from pipelines.definition import (
    ARTIFACTS_BUCKET,
    KMS_KEY,
    PROFILER_RULES,
    SECURITY_GROUP,
    TENSOR_RULES,
    TRAINING_CODE,
    TRAINING_CODE_FILE,
    TRAINING_ROLE,
    PipelineSpec,
    Tuning,
    subnet_placeholder,
)


@dataclass(frozen=True)
class Trained:
    """The estimator, the step that runs it, and where the step leaves the model artifact."""

    estimator: PyTorch
    step: TrainingStep | TuningStep
    model_data: PipelineVariable  # resolved at run time


def train_step(build: Build, preprocess: ProcessingStep) -> Trained:
    """A training step, or a tuning step when the spec tunes, on the train and validation splits."""
    spec = build.spec
    estimator = _estimator(build)
    channels = {
        split: TrainingInput(s3_data=output_uri(preprocess, split), content_type="text/csv")
        for split in ("train", "validation")
    }
    if spec.tuning is None:
        step = TrainingStep(name="Train", step_args=estimator.fit(inputs=channels))
        return Trained(estimator, step, step.properties.ModelArtifacts.S3ModelArtifacts)
    tuner = _tuner(spec, spec.tuning, estimator)
    tuning = TuningStep(name="Tune", step_args=tuner.fit(inputs=channels, job_name=f"{spec.name[:20]}-tune"))
    model_data = tuning.get_top_model_s3_uri(
        top_k=0, s3_bucket=ARTIFACTS_BUCKET, prefix=f"pipelines/{spec.name}/models"
    )
    return Trained(estimator, tuning, model_data)


def _estimator(build: Build) -> PyTorch:
    spec, base = build.spec, build.base
    rules = _debugger_rules(spec.debugger_rules)
    tensor_rules = any(rule in TENSOR_RULES for rule in spec.debugger_rules)
    profiler_rules = any(rule in PROFILER_RULES for rule in spec.debugger_rules)
    return PyTorch(
        entry_point="train.py",
        source_dir=TRAINING_CODE,
        image_uri=training_image(spec, build.region),
        role=TRAINING_ROLE,
        instance_type=spec.training_instance_type,
        instance_count=spec.training_instance_count,
        volume_size=spec.volume_size_gb,
        volume_kms_key=KMS_KEY if spec.training_volume_kms else None,
        output_kms_key=KMS_KEY,
        output_path=f"{base}/models",
        code_location=f"{base}/code",
        subnets=[subnet_placeholder(i) for i in range(spec.subnets)],
        security_group_ids=[SECURITY_GROUP],
        enable_network_isolation=True,
        encrypt_inter_container_traffic=True,
        max_run=spec.max_runtime_seconds,
        use_spot_instances=spec.spot,
        max_wait=spec.max_wait_seconds if spec.spot else None,
        # Per execution: a new run must not resume from the last run's final checkpoint.
        checkpoint_s3_uri=build.run_path("checkpoints") if spec.spot else None,
        hyperparameters=dict(spec.hyperparameters),
        metric_definitions=_metric_definitions(spec),
        distribution={"torch_distributed": {"enabled": True}} if spec.training_instance_count > 1 else None,
        rules=rules or None,
        # The hook and the profiler run only for the rules that read them; their output is encrypted
        # with the job's output key under this pipeline's prefix.
        debugger_hook_config=DebuggerHookConfig(s3_output_path=f"{base}/debugger") if tensor_rules else False,
        disable_profiler=not profiler_rules,
        profiler_config=ProfilerConfig(s3_output_path=f"{base}/profiler") if profiler_rules else None,
        tensorboard_output_config=(
            TensorBoardOutputConfig(s3_output_path=f"{base}/tensorboard") if spec.tensorboard else None
        ),
        base_job_name=f"{spec.name}-train",
        sagemaker_session=build.session,
    )


def _debugger_rules(names: tuple[str, ...]) -> list[Rule | ProfilerRule]:
    """SageMaker's built-in rules of these names: tensor rules read the hook, the others the profiler."""
    rules: list[Rule | ProfilerRule] = []
    # Rule.sagemaker and ProfilerRule.sagemaker carry no annotations in the SDK (the ignores below).
    for name in names:
        if name in TENSOR_RULES:
            rules.append(Rule.sagemaker(getattr(rule_configs, name)()))  # type: ignore[no-untyped-call]
        else:
            profiler_rule = getattr(rule_configs, PROFILER_RULES[name])()
            rules.append(ProfilerRule.sagemaker(profiler_rule))  # type: ignore[no-untyped-call]
    return rules


def _metric_definitions(spec: PipelineSpec) -> list[dict[str, str | PipelineVariable]]:
    return [{"Name": n, "Regex": r} for n, r in spec.metric_definitions]


def _tuner(spec: PipelineSpec, tuning: Tuning, estimator: PyTorch) -> HyperparameterTuner:
    return HyperparameterTuner(
        estimator,
        objective_metric_name=tuning.objective_metric,
        objective_type=tuning.objective,
        hyperparameter_ranges=_ranges(tuning),
        metric_definitions=_metric_definitions(spec),
        strategy=tuning.strategy,
        max_jobs=tuning.max_jobs,
        max_parallel_jobs=tuning.max_parallel_jobs,
        early_stopping_type=tuning.early_stopping,
        base_tuning_job_name=f"{spec.name[:20]}-tune",
    )


def _ranges(tuning: Tuning) -> dict[str | PipelineVariable, ParameterRange]:
    ranges: dict[str | PipelineVariable, ParameterRange] = {}
    for name, kind, low, high, values, scaling in tuning.ranges:
        if values is not None:  # CategoricalParameter carries no annotations in the SDK
            ranges[name] = CategoricalParameter(list(values))  # type: ignore[no-untyped-call]
        elif low is None or high is None:
            raise ValueError(f"tuning range {name}: min={low}, max={high}; a range without values needs both")
        elif kind == "integer":
            ranges[name] = IntegerParameter(int(low), int(high), scaling_type=scaling)
        else:
            ranges[name] = ContinuousParameter(low, high, scaling_type=scaling)
    return ranges


def point_at_delivered_code(definition: dict[str, Any]) -> None:
    """Point the training toolkit at the code archive under the name SageMaker delivers it.

    With network isolation the SDK adds a `code` channel for `source_dir` and assumes its object is
    named sourcedir.tar.gz. The channel is the CDK asset `<hash>.gz`, which SageMaker copies to
    /opt/ml/input/data/code/<hash>.gz: with the SDK's path the toolkit finds no file and the job fails.
    """
    for step in definition["Steps"]:
        if step["Type"] == "Training":
            hyperparameters = step["Arguments"]["HyperParameters"]
        elif step["Type"] == "Tuning":
            hyperparameters = step["Arguments"]["TrainingJobDefinition"]["StaticHyperParameters"]
        else:
            continue
        hyperparameters["sagemaker_submit_directory"] = json.dumps(TRAINING_CODE_FILE)
