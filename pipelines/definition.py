"""Builds the training pipeline's definition with the SageMaker SDK 2.x, offline and deterministically.

Deploy-time values (roles, buckets, keys, subnets, script locations, image registries) appear as
`${Name}` placeholders that CloudFormation's Fn::Sub fills in (see PLACEHOLDERS); everything
else comes from a `PipelineSpec` built from the platform config. Building makes no AWS call: the
session has a region and no credentials, every S3 location is explicit, the SDK's telemetry
request is switched off, and job names are fixed so that no timestamp lands in the JSON.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Placeholders the Training stack substitutes (Fn::Sub variables).
# Role ARNs spelled out with a `/`, which the SDK takes as an ARN instead of asking IAM.
PROCESSING_ROLE = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${ProcessingRoleName}"
TRAINING_ROLE = "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${TrainingRoleName}"
ARTIFACTS_BUCKET = "${ArtifactsBucket}"
CURATED_BUCKET = "${CuratedBucket}"
KMS_KEY = "${ArtifactsKeyArn}"
SECURITY_GROUP = "${SecurityGroupId}"
# Scripts are CDK file assets: the object key (a content hash) is also the file name the
# container runs, so both come from the same placeholder.
PREPROCESS_CODE = "s3://${AssetsBucket}/${PreprocessKey}"
EVALUATE_CODE = "s3://${AssetsBucket}/${EvaluateKey}"
COMPILE_CODE = "s3://${AssetsBucket}/${CompileKey}"
TRAINING_CODE = "s3://${AssetsBucket}/${TrainingCodeKey}"
PLACEHOLDERS = (
    "ProcessingRoleName",
    "TrainingRoleName",
    "ArtifactsBucket",
    "CuratedBucket",
    "ArtifactsKeyArn",
    "SecurityGroupId",
    "AssetsBucket",
    "PreprocessKey",
    "EvaluateKey",
    "TrainingCodeKey",
    "CompileKey",
)
# Images: the registry host of each image family, per region (a CloudFormation mapping when the
# environment names no region; the SDK's own registry tables provide the accounts).
IMAGE_REGION = "us-east-1"
IMAGE_FAMILIES = {
    "PyTorch": "pytorch",
    "SKLearn": "sklearn",
    "ModelMonitor": "model-monitor",
    "Debugger": "debugger",
    "Clarify": "clarify",
}
# The ECR repositories the pipeline's jobs pull from, per registry (the job roles name exactly these).
JOB_REPOSITORIES = {
    "PyTorch": ("pytorch-training", "pytorch-training-neuronx", "pytorch-inference-neuronx"),
    "SKLearn": ("sagemaker-scikit-learn",),
    "ModelMonitor": ("sagemaker-model-monitor-analyzer",),
    "Debugger": ("sagemaker-debugger-rules",),
    "Clarify": ("sagemaker-clarify-processing",),
}
# Debugger rules the config may name: tensor rules need a framework hook (smdebug) in the script;
# profiler rules read system metrics of any job.
TENSOR_RULES = ("loss_not_decreasing", "overfit")
PROFILER_RULES = {"low_gpu_utilization": "LowGPUUtilization", "cpu_bottleneck": "CPUBottleneck"}
PYTORCH_VERSION = "2.6.0"
PYTORCH_PY = "py312"
SKLEARN_VERSION = "1.2-1"
# The SDK's table stops at an old Neuron release; this is the current Neuron training DLC.
NEURON_TRAINING_IMAGE = "pytorch-training-neuronx:2.8.0-neuronx-py311-sdk2.26.1-ubuntu22.04"
# Compiles (on a CPU instance: the Neuron compiler needs no device) and serves on Inferentia2.
NEURON_INFERENCE_IMAGE = "pytorch-inference-neuronx:2.1.2-neuronx-py310-sdk2.20.2-ubuntu20.04"
BUILDER_FILES = (Path(__file__),)


@dataclass(frozen=True)
class Tuning:
    strategy: str
    objective_metric: str
    objective: str
    max_jobs: int
    max_parallel_jobs: int
    early_stopping: str
    # name -> (kind, min, max, values, scaling)
    ranges: tuple[tuple[str, str, float | None, float | None, tuple[str, ...] | None, str], ...]


@dataclass(frozen=True)
class Explainability:
    """SHAP values of the trained model on the first `rows` test rows, written by the evaluate step."""

    rows: int


@dataclass(frozen=True)
class PipelineSpec:
    """Everything the definition depends on besides the placeholders, as plain values."""

    name: str
    region: str | None
    model_package_group: str
    dataset: str
    key: str
    target: str
    features: tuple[str, ...]
    subnets: int
    training_instance_type: str
    training_instance_count: int
    training_runtime: str  # cpu | cuda | neuron
    training_volume_kms: bool
    volume_size_gb: int
    max_runtime_seconds: int
    processing_instance_type: str
    processing_volume_kms: bool
    hyperparameters: tuple[tuple[str, str], ...]
    metric_definitions: tuple[tuple[str, str], ...]
    spot: bool
    max_wait_seconds: int | None
    gate_metric: str
    gate_threshold: float
    inference_instance_types: tuple[str, ...]
    tuning: Tuning | None = None
    debugger_rules: tuple[str, ...] = ()
    tensorboard: bool = False
    neuron_inference: bool = False  # compile the model for Inferentia2 and register that
    bias_facet: str | None = None  # Clarify pre-training bias baseline over this feature
    bias_threshold: float | None = None
    # SHAP baseline of the trained model (the evaluate step's analysis.json), registered with the model version.
    explainability: Explainability | None = None
    # SageMaker logs the training job's metrics and hyperparameters to this MLflow tracking server.
    mlflow_tracking_server: str | None = None

    def cache_key(self) -> str:
        """Changes whenever the spec, the builder's code or the SDK version changes."""
        import importlib.metadata

        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        for path in BUILDER_FILES:
            digest.update(path.read_bytes())
        digest.update(importlib.metadata.version("sagemaker").encode())
        return digest.hexdigest()


def subnet_placeholder(index: int) -> str:
    return f"${{Subnet{index}}}"


def _offline() -> None:
    """Make the SDK unable and unwilling to call AWS while it builds."""
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.telemetry import telemetry_logging

    # The SDK's usage ping calls STS and S3; its documented opt-out still probes for a config.
    telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None


def _session(region: str):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from sagemaker.workflow.pipeline_context import PipelineSession

    boto_session = boto3.Session(region_name=region, aws_access_key_id=None, aws_secret_access_key=None)
    session = PipelineSession(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker", config=Config(signature_version=UNSIGNED)),
    )
    # Preset, so default_bucket() never asks S3 or STS for one.
    session._default_bucket = ARTIFACTS_BUCKET
    return session


def build(spec: PipelineSpec) -> str:
    """The pipeline definition JSON for `spec`, with placeholders for deploy-time values."""
    _offline()
    from sagemaker import image_uris
    from sagemaker.debugger import (
        DebuggerHookConfig,
        ProfilerConfig,
        ProfilerRule,
        Rule,
        TensorBoardOutputConfig,
        rule_configs,
    )
    from sagemaker.drift_check_baselines import DriftCheckBaselines
    from sagemaker.inputs import TrainingInput
    from sagemaker.model_metrics import FileSource, MetricsSource, ModelMetrics
    from sagemaker.model_monitor.dataset_format import DatasetFormat
    from sagemaker.network import NetworkConfig
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor, ScriptProcessor
    from sagemaker.pytorch import PyTorch
    from sagemaker.sklearn.processing import SKLearnProcessor
    from sagemaker.tuner import CategoricalParameter, ContinuousParameter, HyperparameterTuner, IntegerParameter
    from sagemaker.workflow.check_job_config import CheckJobConfig
    from sagemaker.workflow.condition_step import ConditionStep
    from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
    from sagemaker.workflow.execution_variables import ExecutionVariables
    from sagemaker.workflow.fail_step import FailStep
    from sagemaker.workflow.functions import Join, JsonGet
    from sagemaker.workflow.parameters import ParameterString
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.properties import PropertyFile
    from sagemaker.workflow.quality_check_step import (
        DataQualityCheckConfig,
        ModelQualityCheckConfig,
        QualityCheckStep,
    )
    from sagemaker.workflow.step_collections import RegisterModel
    from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TuningStep

    region = spec.region or IMAGE_REGION
    session = _session(region)
    base = f"s3://{ARTIFACTS_BUCKET}/pipelines/{spec.name}"

    def run_path(*parts: str):
        # Every execution writes under its own id: runs never read each other's outputs.
        return Join(on="/", values=[base, "runs", ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])

    trigger = ParameterString(name="TriggerReason", default_value="manual")
    approval = ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval")
    input_data = ParameterString(name="InputData", default_value=f"s3://{CURATED_BUCKET}/{spec.dataset}/")

    network = NetworkConfig(
        enable_network_isolation=True,
        security_group_ids=[SECURITY_GROUP],
        subnets=[subnet_placeholder(i) for i in range(spec.subnets)],
        encrypt_inter_container_traffic=True,
    )
    processing_volume_key = KMS_KEY if spec.processing_volume_kms else None

    def processing(job: str) -> dict[str, Any]:
        """What every processing job of the pipeline shares: role, instance, keys, network, limits."""
        return {
            "role": PROCESSING_ROLE,
            "instance_type": spec.processing_instance_type,
            "instance_count": 1,
            "volume_kms_key": processing_volume_key,
            "output_kms_key": KMS_KEY,
            "network_config": network,
            "max_runtime_in_seconds": 3600,
            "base_job_name": f"{spec.name}-{job}",
            "sagemaker_session": session,
        }

    def processor(job: str) -> Any:
        return SKLearnProcessor(framework_version=SKLEARN_VERSION, **processing(job))

    preprocess = ProcessingStep(
        name="Preprocess",
        step_args=processor("preprocess").run(
            code=PREPROCESS_CODE,
            inputs=[ProcessingInput(source=input_data, destination="/opt/ml/processing/input", input_name="curated")],
            outputs=[
                ProcessingOutput(
                    output_name=split,
                    source=f"/opt/ml/processing/output/{split}",
                    destination=run_path(split),
                )
                for split in ("train", "validation", "test", "baseline", *(("clarify",) if spec.bias_facet else ()))
            ],
            arguments=[
                "--key",
                spec.key,
                "--target",
                spec.target,
                "--features",
                ",".join(spec.features),
                *(
                    ("--bias-facet", spec.bias_facet, "--bias-threshold", str(spec.bias_threshold))
                    if spec.bias_facet
                    else ()
                ),
            ],
        ),
    )
    outputs = preprocess.properties.ProcessingOutputConfig.Outputs

    if spec.training_runtime == "neuron":
        registry = image_uris.retrieve(
            "pytorch",
            region,
            version=PYTORCH_VERSION,
            py_version=PYTORCH_PY,
            instance_type="ml.m5.xlarge",
            image_scope="training",
        ).split("/")[0]
        training_image = f"{registry}/{NEURON_TRAINING_IMAGE}"
    else:
        training_image = image_uris.retrieve(
            "pytorch",
            region,
            version=PYTORCH_VERSION,
            py_version=PYTORCH_PY,
            instance_type=spec.training_instance_type,
            image_scope="training",
        )
    if spec.neuron_inference:
        inference_image = f"{image_registries(region)['PyTorch']}/{NEURON_INFERENCE_IMAGE}"
    else:
        inference_image = image_uris.retrieve(
            "pytorch",
            region,
            version=PYTORCH_VERSION,
            py_version=PYTORCH_PY,
            instance_type=spec.inference_instance_types[0],
            image_scope="inference",
        )
    rules: list[Any] = []
    for rule in spec.debugger_rules:
        if rule in TENSOR_RULES:
            rules.append(Rule.sagemaker(getattr(rule_configs, rule)()))
        else:
            rules.append(ProfilerRule.sagemaker(getattr(rule_configs, PROFILER_RULES[rule])()))
    tensor_rules = any(rule in TENSOR_RULES for rule in spec.debugger_rules)
    profiler_rules = any(rule in PROFILER_RULES for rule in spec.debugger_rules)
    estimator = PyTorch(
        entry_point="train.py",
        source_dir=TRAINING_CODE,
        image_uri=training_image,
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
        checkpoint_s3_uri=run_path("checkpoints") if spec.spot else None,
        hyperparameters=dict(spec.hyperparameters),
        metric_definitions=[{"Name": n, "Regex": r} for n, r in spec.metric_definitions],
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
        sagemaker_session=session,
    )
    channels = {
        split: TrainingInput(s3_data=outputs[split].S3Output.S3Uri, content_type="text/csv")
        for split in ("train", "validation")
    }
    if spec.tuning is None:
        train = TrainingStep(name="Train", step_args=estimator.fit(inputs=channels))
        model_data = train.properties.ModelArtifacts.S3ModelArtifacts
    else:
        tuning = spec.tuning
        ranges: dict[str, Any] = {}
        for name, kind, low, high, values, scaling in tuning.ranges:
            if values is not None:
                ranges[name] = CategoricalParameter(list(values))
            elif kind == "integer":
                ranges[name] = IntegerParameter(int(low), int(high), scaling_type=scaling)
            else:
                ranges[name] = ContinuousParameter(low, high, scaling_type=scaling)
        tuner = HyperparameterTuner(
            estimator,
            objective_metric_name=tuning.objective_metric,
            objective_type=tuning.objective,
            hyperparameter_ranges=ranges,
            metric_definitions=[{"Name": n, "Regex": r} for n, r in spec.metric_definitions],
            strategy=tuning.strategy,
            max_jobs=tuning.max_jobs,
            max_parallel_jobs=tuning.max_parallel_jobs,
            early_stopping_type=tuning.early_stopping,
            base_tuning_job_name=f"{spec.name[:20]}-tune",
        )
        train = TuningStep(name="Tune", step_args=tuner.fit(inputs=channels, job_name=f"{spec.name[:20]}-tune"))
        model_data = train.get_top_model_s3_uri(
            top_k=0, s3_bucket=ARTIFACTS_BUCKET, prefix=f"pipelines/{spec.name}/models"
        )

    explainability = spec.explainability
    # The evaluate step computes the SHAP values itself: no model, no endpoint, isolation kept (decision 21).
    explain_arguments = ["--explainability-rows", str(explainability.rows)] if explainability is not None else []

    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="Evaluate",
        step_args=processor("evaluate").run(
            code=EVALUATE_CODE,
            inputs=[
                ProcessingInput(source=model_data, destination="/opt/ml/processing/model", input_name="model"),
                ProcessingInput(
                    source=outputs["test"].S3Output.S3Uri, destination="/opt/ml/processing/test", input_name="test"
                ),
                ProcessingInput(
                    source=outputs["train"].S3Output.S3Uri, destination="/opt/ml/processing/train", input_name="train"
                ),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation", source="/opt/ml/processing/evaluation", destination=run_path("evaluation")
                ),
                ProcessingOutput(
                    output_name="predictions",
                    source="/opt/ml/processing/predictions",
                    destination=run_path("predictions"),
                ),
                *(
                    [
                        ProcessingOutput(
                            output_name="explainability",
                            source="/opt/ml/processing/explainability",
                            destination=run_path("explainability"),
                        )
                    ]
                    if explainability is not None
                    else []
                ),
            ],
            arguments=explain_arguments or None,
        ),
        property_files=[evaluation],
    )

    check_job = CheckJobConfig(
        role=PROCESSING_ROLE,
        instance_count=1,
        instance_type=spec.processing_instance_type,
        volume_kms_key=processing_volume_key,
        output_kms_key=KMS_KEY,
        network_config=network,
        max_runtime_in_seconds=3600,
        base_job_name=f"{spec.name}-baseline",
        sagemaker_session=session,
    )
    data_baseline = QualityCheckStep(
        name="DataQualityBaseline",
        check_job_config=check_job,
        quality_check_config=DataQualityCheckConfig(
            baseline_dataset=outputs["baseline"].S3Output.S3Uri,
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=run_path("baselines", "data-quality"),
        ),
        skip_check=True,
        register_new_baseline=True,
        model_package_group_name=spec.model_package_group,
    )
    predictions = evaluate.properties.ProcessingOutputConfig.Outputs["predictions"].S3Output.S3Uri
    model_baseline = QualityCheckStep(
        name="ModelQualityBaseline",
        check_job_config=check_job,
        quality_check_config=ModelQualityCheckConfig(
            baseline_dataset=predictions,
            dataset_format=DatasetFormat.csv(header=True),
            output_s3_uri=run_path("baselines", "model-quality"),
            problem_type="BinaryClassification",
            inference_attribute="prediction",
            probability_attribute="probability",
            ground_truth_attribute="label",
        ),
        skip_check=True,
        register_new_baseline=True,
        model_package_group_name=spec.model_package_group,
    )
    evaluation_uri = Join(
        on="/",
        values=[evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"],
    )
    data_props, model_props = data_baseline.properties, model_baseline.properties
    bias_steps: list[Any] = []
    bias_metrics: dict[str, Any] = {}
    bias_drift: dict[str, Any] = {}
    if spec.bias_facet:
        # A plain processing job on the Clarify image: ClarifyCheckStep would upload its config at
        # build time (decision 21), so the preprocess step writes config and data instead.
        clarify = outputs["clarify"].S3Output.S3Uri
        bias = ProcessingStep(
            name="DataBiasBaseline",
            step_args=Processor(image_uri=image_uris.retrieve("clarify", region), **processing("bias")).run(
                inputs=[
                    ProcessingInput(
                        source=Join(on="/", values=[clarify, "config"]),
                        destination="/opt/ml/processing/input/config",
                        input_name="analysis_config",
                    ),
                    ProcessingInput(
                        source=Join(on="/", values=[clarify, "data"]),
                        destination="/opt/ml/processing/input/data",
                        input_name="dataset",
                    ),
                ],
                outputs=[
                    ProcessingOutput(
                        output_name="analysis_result",
                        source="/opt/ml/processing/output",
                        destination=run_path("baselines", "bias"),
                    )
                ],
            ),
        )
        bias_steps.append(bias)
        result = bias.properties.ProcessingOutputConfig.Outputs["analysis_result"].S3Output.S3Uri
        bias_metrics["bias_pre_training"] = MetricsSource(
            s3_uri=Join(on="/", values=[result, "analysis.json"]), content_type="application/json"
        )
        # The endpoint's model-bias monitor reads this config (written by the preprocess step).
        bias_drift["bias_config_file"] = FileSource(
            s3_uri=Join(on="/", values=[clarify, "monitoring", "analysis_config.json"]),
            content_type="application/json",
        )
    explain_metrics: dict[str, Any] = {}
    explain_drift: dict[str, Any] = {}
    if explainability is not None:
        # analysis.json in Clarify's layout is both the version's explainability report and the
        # explainability drift baseline: for Clarify's own baselining job too, that file is the
        # constraints (the SDK's ClarifyBaseliningJob.suggested_constraints). The config file is
        # the monitor's analysis config without the model it explains, which the promotion
        # function adds for the version it deploys.
        explained = evaluate.properties.ProcessingOutputConfig.Outputs["explainability"].S3Output.S3Uri
        report = MetricsSource(
            s3_uri=Join(on="/", values=[explained, "analysis.json"]), content_type="application/json"
        )
        explain_metrics["explainability"] = report
        explain_drift["explainability_constraints"] = report
        explain_drift["explainability_config_file"] = FileSource(
            s3_uri=Join(on="/", values=[explained, "monitoring", "analysis_config.json"]),
            content_type="application/json",
        )
    compile_steps: list[Any] = []
    registered_model = model_data
    if spec.neuron_inference:
        compiler = ScriptProcessor(image_uri=inference_image, command=["python3"], **processing("compile"))
        compile_step = ProcessingStep(
            name="CompileForInferentia",
            step_args=compiler.run(
                code=COMPILE_CODE,
                inputs=[ProcessingInput(source=model_data, destination="/opt/ml/processing/model", input_name="model")],
                outputs=[
                    ProcessingOutput(
                        output_name="compiled", source="/opt/ml/processing/compiled", destination=run_path("compiled")
                    )
                ],
            ),
        )
        compile_steps.append(compile_step)
        registered_model = Join(
            on="/",
            values=[
                compile_step.properties.ProcessingOutputConfig.Outputs["compiled"].S3Output.S3Uri,
                "model.tar.gz",
            ],
        )
    register = RegisterModel(
        name="Register",
        estimator=estimator,
        model_data=registered_model,
        image_uri=inference_image,
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=list(spec.inference_instance_types),
        transform_instances=[spec.processing_instance_type],
        model_package_group_name=spec.model_package_group,
        approval_status=approval,
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(s3_uri=evaluation_uri, content_type="application/json"),
            model_data_statistics=MetricsSource(
                s3_uri=data_props.CalculatedBaselineStatistics, content_type="application/json"
            ),
            model_data_constraints=MetricsSource(
                s3_uri=data_props.CalculatedBaselineConstraints, content_type="application/json"
            ),
            model_constraints=MetricsSource(
                s3_uri=model_props.CalculatedBaselineConstraints, content_type="application/json"
            ),
            **bias_metrics,
            **explain_metrics,
        ),
        drift_check_baselines=DriftCheckBaselines(
            model_data_statistics=MetricsSource(
                s3_uri=data_props.BaselineUsedForDriftCheckStatistics, content_type="application/json"
            ),
            model_data_constraints=MetricsSource(
                s3_uri=data_props.BaselineUsedForDriftCheckConstraints, content_type="application/json"
            ),
            model_constraints=MetricsSource(
                s3_uri=model_props.BaselineUsedForDriftCheckConstraints, content_type="application/json"
            ),
            **explain_drift,
            **bias_drift,
        ),
        customer_metadata_properties={"trigger": "see pipeline execution parameter TriggerReason"},
    )
    gate = ConditionStep(
        name="QualityGate",
        conditions=[
            ConditionGreaterThanOrEqualTo(
                left=JsonGet(
                    step_name=evaluate.name,
                    property_file=evaluation,
                    json_path=f"binary_classification_metrics.{spec.gate_metric}.value",
                ),
                right=spec.gate_threshold,
            )
        ],
        if_steps=[data_baseline, model_baseline, *bias_steps, *compile_steps, register],
        else_steps=[
            FailStep(
                name="BelowQualityGate",
                error_message=f"{spec.gate_metric} on the test split is below {spec.gate_threshold:g}",
            )
        ],
    )
    pipeline = Pipeline(
        name=spec.name,
        parameters=[trigger, approval, input_data],
        steps=[preprocess, train, evaluate, gate],
        sagemaker_session=session,
    )
    text = pipeline.definition()
    if spec.region is None:
        text = _region_placeholders(text)
    definition = json.loads(text)
    if spec.mlflow_tracking_server and spec.tuning is None:
        _log_to_mlflow(definition, spec)
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def _log_to_mlflow(definition: dict[str, Any], spec: PipelineSpec) -> None:
    """Have SageMaker log the training job to the MLflow tracking server (CreateTrainingJob's MlflowConfig).

    The service, not the container, talks to the server, so the job keeps its network isolation;
    SDK 2.x has no parameter for it, hence the edit. Tuning jobs have no MlflowConfig.
    """
    (train,) = (step for step in definition["Steps"] if step["Name"] == "Train" and step["Type"] == "Training")
    train["Arguments"]["MlflowConfig"] = {
        "MlflowResourceArn": mlflow_server_arn(spec.mlflow_tracking_server),
        "MlflowExperimentName": spec.name,
    }


def mlflow_server_arn(name: str) -> str:
    return f"arn:${{AWS::Partition}}:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:mlflow-tracking-server/{name}"


def _region_placeholders(text: str) -> str:
    """Turn the image hosts and region of IMAGE_REGION into per-region placeholders."""
    for family, host in image_registries(IMAGE_REGION).items():
        text = text.replace(host, f"${{{family}Registry}}.dkr.ecr.${{AWS::Region}}.${{AWS::URLSuffix}}")
    text = text.replace(f'\\"{IMAGE_REGION}\\"', '\\"${AWS::Region}\\"')  # sagemaker_region
    if IMAGE_REGION in text:
        raise ValueError(f"the pipeline definition still names {IMAGE_REGION}; add a placeholder for it")
    return text


def image_registries(region: str = IMAGE_REGION) -> dict[str, str]:
    """Registry host of each image family in `region`, e.g. {"PyTorch": "763104351884.dkr.ecr..."}."""
    return dict(_image_registries(region))


@functools.cache
def _image_registries(region: str) -> dict[str, str]:
    # The SDK's tables do not change within a process; a lookup reads them and botocore's endpoints (~0.8 s).
    _offline()
    from sagemaker import image_uris

    samples = {
        "PyTorch": image_uris.retrieve(
            "pytorch",
            region,
            version=PYTORCH_VERSION,
            py_version=PYTORCH_PY,
            instance_type="ml.m5.xlarge",
            image_scope="training",
        ),
        "SKLearn": image_uris.retrieve("sklearn", region, version=SKLEARN_VERSION, instance_type="ml.m5.xlarge"),
        "ModelMonitor": image_uris.retrieve("model-monitor", region),
        "Debugger": image_uris.retrieve("debugger", region),
        "Clarify": image_uris.retrieve("clarify", region),
    }
    return {family: uri.split("/")[0] for family, uri in samples.items()}


def registry_accounts() -> dict[str, dict[str, str]]:
    """Region -> image family -> ECR registry account, read from the SDK's bundled tables.

    Reads the JSON files without importing the SDK (which costs seconds), so a synth whose
    definition is cached stays fast.
    """
    import importlib.util

    spec = importlib.util.find_spec("sagemaker")
    assert spec is not None and spec.submodule_search_locations
    config_dir = Path(next(iter(spec.submodule_search_locations))) / "image_uri_config"

    def table(name: str, *path: str) -> dict[str, Any]:
        data = json.loads((config_dir / f"{name}.json").read_text())
        for key in path:
            data = data[key]
        return data["registries"]

    tables = {
        "PyTorch": table("pytorch", "training", "versions", PYTORCH_VERSION),
        "SKLearn": table("sklearn", "training", "versions", SKLEARN_VERSION),
        "ModelMonitor": table("model-monitor", "versions", ""),
        "Debugger": table("debugger", "versions", "latest"),
        "Clarify": table("clarify", "processing", "versions", "1.0"),
    }
    regions: dict[str, dict[str, str]] = {}
    for family, registries in tables.items():
        for region, account in registries.items():
            regions.setdefault(region, {})[family] = account
    return {r: families for r, families in sorted(regions.items()) if len(families) == len(tables)}


CACHE_DIR = Path(__file__).resolve().parent / "definitions"
# "Store in CACHE_DIR if the environment has a file in config/": the Training stack's default.
SHIPPED = Path("<shipped environments>")


def cached(spec: PipelineSpec, cache_dir: Path | None = CACHE_DIR) -> str:
    """The definition for `spec`: from `cache_dir` when its key matches, else built (and stored).

    Importing the SDK and building costs about 4 s, more than the rest of a synth; the stored
    definitions (one per shipped environment, reviewed in pull requests like a lock file) keep
    it off the path of every synth whose inputs did not change. With the environment variable
    PIPELINE_DEFINITIONS=check (the tests set it) a stale file is an error instead of a rebuild.
    """
    key = spec.cache_key()
    path = cache_dir / f"{spec.name}.json" if cache_dir else None
    if path is not None and path.exists():
        stored = json.loads(path.read_text())
        if stored.get("key") == key:
            return json.dumps(stored["definition"], sort_keys=True, separators=(",", ":"))
    if path is not None and os.environ.get("PIPELINE_DEFINITIONS") == "check":
        raise StaleDefinition(
            f"{path.relative_to(path.parents[2])} does not match the config and the pipeline code: "
            "run `make synth` for that environment and commit the file"
        )
    definition = build(spec)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "spec": asdict(spec), "definition": json.loads(definition)}
        path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return definition


class StaleDefinition(RuntimeError):
    """A stored pipeline definition that no longer matches its inputs."""
