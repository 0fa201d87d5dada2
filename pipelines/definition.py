"""Builds the training pipeline's definition with the SageMaker SDK 2.x, offline and deterministically.

`build` composes the per-step builders of pipelines/builders/, which import the SDK; this module
does not at import time, so a synth whose definition is stored (`cached`) never loads it.
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
# Where SageMaker delivers that object in the training container: the `code` channel, under its key.
TRAINING_CODE_FILE = "/opt/ml/input/data/code/${TrainingCodeKey}"
# The platform's monitoring library (a zip of monitoring/): the steps write its baselines with it.
LIBRARY_CODE = "s3://${AssetsBucket}/${MonitoringLibraryKey}"
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
    "MonitoringLibraryKey",
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
# The monitoring engines (monitoring.engine): the platform's own baselines come from the preprocess
# and evaluate steps; Model Monitor's from QualityCheckSteps on its analyzer image.
PLATFORM_ENGINE = "platform"
MODEL_MONITOR_ENGINE = "model_monitor"
# Where a step receives the library and writes the platform engine's baselines (pipelines/steps).
LIBRARY_DIR = "/opt/ml/processing/input/library"
BASELINE_DIR = "/opt/ml/processing/monitoring"
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
# The cache key covers this module and every step builder.
BUILDER_FILES = (Path(__file__), *sorted((Path(__file__).parent / "builders").glob("*.py")))


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
    # Who computes the baselines registered with the version: PLATFORM_ENGINE or MODEL_MONITOR_ENGINE.
    monitoring_engine: str = PLATFORM_ENGINE

    @property
    def platform_baselines(self) -> bool:
        return self.monitoring_engine == PLATFORM_ENGINE

    @property
    def image_families(self) -> tuple[str, ...]:
        """The IMAGE_FAMILIES the pipeline's jobs run images of (their roles may pull only these)."""
        used = {
            "PyTorch": True,
            "SKLearn": True,
            "ModelMonitor": not self.platform_baselines,
            "Debugger": bool(self.debugger_rules),
            "Clarify": not self.platform_baselines and self.bias_facet is not None,
        }
        return tuple(family for family in IMAGE_FAMILIES if used[family])

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
    telemetry_logging._send_telemetry_request = _no_telemetry


def _no_telemetry(*_args: object, **_kwargs: object) -> None:
    return None


def build(spec: PipelineSpec) -> str:
    """The pipeline definition JSON for `spec`, with placeholders for deploy-time values.

    preprocess -> train (or tune) -> evaluate -> quality gate -> baselines, compilation, register.
    With the platform engine the preprocess and evaluate steps write the baselines themselves.
    """
    _offline()
    # The builders import the SDK (seconds): only a build that is not stored pays for it.
    from sagemaker.workflow.pipeline import Pipeline

    from pipelines.builders.baselines import quality_baselines
    from pipelines.builders.bias import bias_baseline
    from pipelines.builders.context import Build
    from pipelines.builders.evaluate import evaluate_step
    from pipelines.builders.explainability import explainability_reports
    from pipelines.builders.gate import quality_gate
    from pipelines.builders.neuron import servable_model
    from pipelines.builders.parameters import parameters
    from pipelines.builders.preprocess import preprocess_step
    from pipelines.builders.register import register_step
    from pipelines.builders.train import point_at_delivered_code, train_step

    build = Build.start(spec)
    inputs = parameters(spec)
    preprocess = preprocess_step(build, inputs.input_data)
    trained = train_step(build, preprocess)
    evaluation = evaluate_step(build, preprocess, trained.model_data)
    reports = (
        quality_baselines(build, preprocess, evaluation),
        bias_baseline(build, preprocess, evaluation),
        explainability_reports(build, evaluation),
    )
    model = servable_model(build, trained)
    register = register_step(
        build, trained=trained, model=model, approval=inputs.approval, evaluation=evaluation, reports=reports
    )
    gate = quality_gate(spec, evaluation, [*(s for report in reports for s in report.steps), *model.steps, register])
    pipeline = Pipeline(
        name=spec.name,
        parameters=inputs.all,
        steps=[preprocess, trained.step, evaluation.step, gate],
        sagemaker_session=build.session,
    )
    text = pipeline.definition()
    if spec.region is None:
        text = _region_placeholders(text)
    definition = json.loads(text)
    point_at_delivered_code(definition)
    if spec.mlflow_tracking_server and spec.tuning is None:
        _log_to_mlflow(definition, spec.mlflow_tracking_server, spec.name)
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def _log_to_mlflow(definition: dict[str, Any], server: str, experiment: str) -> None:
    """Have SageMaker log the training job to the MLflow tracking server (CreateTrainingJob's MlflowConfig).

    The service, not the container, talks to the server, so the job keeps its network isolation;
    SDK 2.x has no parameter for it, hence the edit. Tuning jobs have no MlflowConfig.
    """
    (train,) = (step for step in definition["Steps"] if step["Name"] == "Train" and step["Type"] == "Training")
    train["Arguments"]["MlflowConfig"] = {
        "MlflowResourceArn": mlflow_server_arn(server),
        "MlflowExperimentName": experiment,
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

    def table(name: str, *path: str) -> dict[str, str]:
        data = json.loads((config_dir / f"{name}.json").read_text())
        for key in path:
            data = data[key]
        registries: dict[str, str] = data["registries"]
        return registries

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
