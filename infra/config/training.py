"""The training section: the SageMaker pipeline's instances, spot, tuning, quality gate and registry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.config.base import Problem, Rule, Strict, allowed, run_rules
from infra.config.fields import PeerEnvironment, ProcessingInstance, RealtimeInstance, TrainingInstance

# What the evaluation step reports (pipelines/steps/evaluate.py METRICS) and the training script's
# tunable hyperparameters and scraped metrics (pipelines/steps/train.py); tests keep them in sync.
EVALUATION_METRICS = ("auc", "accuracy", "precision", "recall", "f1")
TRAINING_HYPERPARAMETERS = {
    "epochs": "integer",
    "learning-rate": "continuous",
    "l2": "continuous",
    "batch-size": "integer",
}
# Metric name -> the regex SageMaker scrapes from the training log (train.py METRIC_DEFINITIONS).
TRAINING_METRIC_REGEXES = {
    "train:loss": r"train:loss=([0-9.]+)",
    "validation:loss": r"validation:loss=([0-9.]+)",
    "validation:auc": r"validation:auc=([0-9.]+)",
}
TRAINING_METRICS = ("validation:auc", "validation:loss", "train:loss")
MAX_TRAINING_MINUTES = 28 * 24 * 60  # SageMaker's MaxRuntimeInSeconds limit


class SpotConfig(Strict):
    """Managed spot training: cheaper, interruptible, resumed from checkpoints."""

    enabled: bool = Field(default=False, **allowed("true or false"))
    max_wait_minutes: int | None = Field(
        default=None, ge=1, le=MAX_TRAINING_MINUTES, **allowed("minutes to wait for spot capacity plus run time")
    )
    checkpoints: bool = Field(
        default=True, **allowed("true or false (checkpoints in the artifacts bucket, resumed after an interruption)")
    )


class TuningRange(Strict):
    """The search range of one hyperparameter."""

    min: float | None = Field(default=None, **allowed("a number (continuous/integer parameters)"))
    max: float | None = Field(default=None, **allowed("a number at least min"))
    values: list[str | int | float] | None = Field(
        default=None, min_length=1, max_length=30, **allowed("1 to 30 values (categorical)")
    )
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = Field(
        default="Auto", **allowed("Auto, Linear, Logarithmic or ReverseLogarithmic")
    )

    @model_validator(mode="after")
    def _shape(self) -> TuningRange:
        return run_rules(self, TUNING_RANGE_RULES)


def _bounds_or_values(spec: TuningRange) -> list[Problem]:
    """A range is min and max (in order), or a list of values."""
    problems: list[Problem] = []
    if spec.values is None and (spec.min is None or spec.max is None):
        problems.append(("min" if spec.min is None else "max", None, "min and max, or values"))
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        problems.append(("max", spec.max, f"at least min ({spec.min:g})"))
    return problems


def _logarithmic_above_zero(spec: TuningRange) -> list[Problem]:
    """Logarithmic scaling needs a positive lower bound."""
    if spec.scaling == "Logarithmic" and spec.min is not None and spec.min <= 0:
        return [("min", spec.min, "above 0 with Logarithmic scaling")]
    return []


TUNING_RANGE_RULES: tuple[Rule[TuningRange], ...] = (_bounds_or_values, _logarithmic_above_zero)


class TuningConfig(Strict):
    """Hyperparameter tuning: a tuning step in place of the single training step."""

    strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"] = Field(
        default="Bayesian", **allowed("Bayesian, Random, Grid or Hyperband")
    )
    objective_metric: str = Field(
        default="validation:auc", **allowed("a metric the training script reports: " + ", ".join(TRAINING_METRICS))
    )
    objective: Literal["Maximize", "Minimize"] = Field(default="Maximize", **allowed("Maximize or Minimize"))
    max_jobs: int = Field(default=10, ge=1, le=500, **allowed("1 to 500 training jobs"))
    max_parallel_jobs: int = Field(default=2, ge=1, le=100, **allowed("1 to 100 parallel jobs, at most max_jobs"))
    early_stopping: Literal["Auto", "Off"] = Field(default="Auto", **allowed("Auto or Off"))
    ranges: dict[str, TuningRange] = Field(
        min_length=1, **allowed("ranges of the script's hyperparameters: " + ", ".join(TRAINING_HYPERPARAMETERS))
    )

    @model_validator(mode="after")
    def _combinations(self) -> TuningConfig:
        return run_rules(self, TUNING_RULES)


def _objective_reported(tuning: TuningConfig) -> list[Problem]:
    """The objective is a metric the training script reports."""
    if tuning.objective_metric not in TRAINING_METRICS:
        return [("objective_metric", tuning.objective_metric, "one of " + ", ".join(TRAINING_METRICS))]
    return []


def _parallel_within_jobs(tuning: TuningConfig) -> list[Problem]:
    """No more parallel jobs than jobs."""
    if tuning.max_parallel_jobs > tuning.max_jobs:
        return [("max_parallel_jobs", tuning.max_parallel_jobs, f"at most max_jobs ({tuning.max_jobs})")]
    return []


def _hyperband_stops_itself(tuning: TuningConfig) -> list[Problem]:
    """Hyperband has its own early stopping: SageMaker's must be off."""
    if tuning.strategy == "Hyperband" and tuning.early_stopping != "Off":
        return [("early_stopping", tuning.early_stopping, "Off with Hyperband (it stops jobs itself)")]
    return []


def _ranges_fit_script(tuning: TuningConfig) -> list[Problem]:
    """Each range tunes a hyperparameter of the script; Grid searches categorical values only."""
    problems: list[Problem] = []
    known = ", ".join(TRAINING_HYPERPARAMETERS)
    for name, spec in tuning.ranges.items():
        if name not in TRAINING_HYPERPARAMETERS:
            problems.append((f"ranges.{name}", name, f"a hyperparameter of the training script: {known}"))
        elif tuning.strategy == "Grid" and spec.values is None:
            problems.append((f"ranges.{name}", "min/max", "values (Grid searches categorical values only)"))
    return problems


TUNING_RULES: tuple[Rule[TuningConfig], ...] = (
    _objective_reported,
    _parallel_within_jobs,
    _hyperband_stops_itself,
    _ranges_fit_script,
)


class QualityGate(Strict):
    """The condition a model must meet on the test split to be registered."""

    metric: str = Field(default="auc", **allowed("a metric the evaluation produces: " + ", ".join(EVALUATION_METRICS)))
    threshold: float = Field(default=0.7, ge=0, le=1, **allowed("a number from 0 to 1"))

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in EVALUATION_METRICS:
            raise PydanticCustomError("metric", "not produced by the evaluation")
        return value


DEBUGGER_RULES = ("loss_not_decreasing", "overfit", "low_gpu_utilization", "cpu_bottleneck")


class DebuggerConfig(Strict):
    """SageMaker Debugger built-in rules on the training job, and TensorBoard output."""

    # AWS closed Debugger to new customers: its rules run only where the account already has it.
    account_has_debugger: bool = Field(
        default=False, **allowed("true only if this account can use SageMaker Debugger (it already uses it)")
    )
    rules: list[Literal["loss_not_decreasing", "overfit", "low_gpu_utilization", "cpu_bottleneck"]] = Field(
        default_factory=list, **allowed("built-in rules: " + ", ".join(DEBUGGER_RULES))
    )
    tensorboard: bool = Field(default=False, **allowed("true or false (TensorBoard files to the artifacts bucket)"))

    @model_validator(mode="after")
    def _combinations(self) -> DebuggerConfig:
        return run_rules(self, DEBUGGER_CONFIG_RULES)


def _rules_need_debugger(debugger: DebuggerConfig) -> list[Problem]:
    """Debugger rules only where the config states that the account has SageMaker Debugger."""
    if debugger.rules and not debugger.account_has_debugger:
        return [
            (
                "rules",
                debugger.rules,
                "[] unless account_has_debugger is true (SageMaker Debugger is closed to new customers)",
            )
        ]
    return []


DEBUGGER_CONFIG_RULES: tuple[Rule[DebuggerConfig], ...] = (_rules_need_debugger,)


class FeatureStoreConfig(Strict):
    """A SageMaker feature group of the dataset: online store, and an offline store in the curated zone."""

    event_time_column: str = Field(**allowed("a timestamp or date column of the dataset"))
    online: bool = Field(default=True, **allowed("true or false (low-latency online store)"))


class MlflowConfig(Strict):
    """A SageMaker managed MLflow tracking server, reached through IAM only."""

    size: Literal["Small", "Medium", "Large"] = Field(default="Small", **allowed("Small, Medium or Large"))


class StudioConfig(Strict):
    """A SageMaker Studio domain in VpcOnly mode, with a user profile per configured persona."""

    idle_shutdown_minutes: int = Field(default=60, ge=60, le=525600, **allowed("60 to 525600 minutes"))


class BiasBaseline(Strict):
    """A Clarify pre-training bias baseline: how the label is spread across two groups of one feature."""

    facet: str = Field(**allowed("one of training.features"))
    threshold: float = Field(**allowed("a number: rows above it form the group compared with the rest"))


class Explainability(Strict):
    """SHAP values of the trained model on the first test rows, computed by the evaluate step (decision 21)."""

    rows: int = Field(default=50, ge=10, le=1000, **allowed("10 to 1000 rows of the test split to explain"))


class TrainingConfig(Strict):
    """The SageMaker pipeline: instances, spot, tuning, the quality gate and the model registry."""

    target: str = Field(**allowed("the dataset column the model predicts (int or boolean, 0/1)"))
    features: list[str] = Field(
        min_length=1, max_length=500, **allowed("numeric, non-sensitive columns of the dataset used as model inputs")
    )
    instance_type: TrainingInstance = Field(
        **allowed("an ml.* type SageMaker accepts for training and the catalog knows (CPU, NVIDIA GPU or Trainium)")
    )
    instance_count: int = Field(default=1, ge=1, le=64, **allowed("1 to 64 instances"))
    volume_size_gb: int = Field(default=30, ge=1, le=16384, **allowed("1 to 16384 GB"))
    max_runtime_minutes: int = Field(default=120, ge=1, le=MAX_TRAINING_MINUTES, **allowed("1 to 40320 minutes"))
    processing_instance_type: ProcessingInstance = Field(
        default="ml.m5.xlarge", **allowed("an ml.* type SageMaker accepts for processing and the catalog knows")
    )
    hyperparameters: dict[str, int | float] = Field(
        default_factory=dict,
        **allowed("values of the script's hyperparameters: " + ", ".join(TRAINING_HYPERPARAMETERS)),
    )
    spot: SpotConfig = Field(default_factory=SpotConfig)
    tuning: TuningConfig | None = Field(default=None, **allowed("a tuning section or null (a single training job)"))
    quality_gate: QualityGate = Field(default_factory=QualityGate)
    debugger: DebuggerConfig = Field(default_factory=DebuggerConfig)
    bias_baseline: BiasBaseline | None = Field(
        default=None, **allowed("a bias_baseline section (Clarify, registered with the model) or null")
    )
    explainability: Explainability | None = Field(
        default=None,
        **allowed("an explainability section (SHAP values from the evaluate step, registered with the model) or null"),
    )
    feature_store: FeatureStoreConfig | None = Field(default=None, **allowed("a feature_store section or null"))
    mlflow: MlflowConfig | None = Field(default=None, **allowed("an mlflow section or null (no tracking server)"))
    studio: StudioConfig | None = Field(default=None, **allowed("a studio section or null (no Studio domain)"))
    inference_instance_types: list[RealtimeInstance] = Field(
        default_factory=lambda: ["ml.m5.large"],
        min_length=1,
        max_length=10,
        **allowed("instance types the registered model may be deployed on (real-time)"),
    )
    model_consumers: list[PeerEnvironment] = Field(
        default_factory=list,
        max_length=10,
        **allowed("environments in other accounts that serve this registry's approved versions (at most 10)"),
    )

    @model_validator(mode="after")
    def _combinations(self) -> TrainingConfig:
        return run_rules(self, TRAINING_RULES)

    @property
    def runtime(self) -> str:
        from infra.catalog import instances

        return instances.get(self.instance_type).runtime.value

    @property
    def serves_on_inferentia(self) -> bool:
        return all(name.startswith("ml.inf2.") for name in self.inference_instance_types)


def _hyperparameters_of_script(training: TrainingConfig) -> list[Problem]:
    """Hyperparameters are ones the training script takes."""
    known = ", ".join(TRAINING_HYPERPARAMETERS)
    return [
        (f"hyperparameters.{name}", name, f"a hyperparameter of the training script: {known}")
        for name in training.hyperparameters
        if name not in TRAINING_HYPERPARAMETERS
    ]


def _spot_resumes(training: TrainingConfig) -> list[Problem]:
    """Spot training resumes from checkpoints and waits at least the run time; its wait needs spot."""
    spot = training.spot
    if not spot.enabled:
        if spot.max_wait_minutes is not None:
            return [("spot.max_wait_minutes", spot.max_wait_minutes, "only with spot.enabled")]
        return []
    problems: list[Problem] = []
    if not spot.checkpoints:
        problems.append(
            ("spot.checkpoints", False, "true with spot (an interrupted job resumes only from checkpoints)")
        )
    wait = spot.max_wait_minutes
    if wait is None or wait < training.max_runtime_minutes:
        problems.append(
            ("spot.max_wait_minutes", wait, f"at least max_runtime_minutes ({training.max_runtime_minutes})")
        )
    return problems


def _bias_facet_is_feature(training: TrainingConfig) -> list[Problem]:
    """The bias baseline's facet is one of the model's features."""
    if training.bias_baseline is not None and training.bias_baseline.facet not in training.features:
        facet = training.bias_baseline.facet
        return [("bias_baseline.facet", facet, "one of training.features: " + ", ".join(training.features))]
    return []


def _no_debugger_with_tuning(training: TrainingConfig) -> list[Problem]:
    """Tuning jobs take no Debugger or TensorBoard settings."""
    if training.tuning is not None and (training.debugger.rules or training.debugger.tensorboard):
        return [
            ("debugger", "rules/tensorboard", "none with tuning: tuning jobs take no Debugger or TensorBoard settings")
        ]
    return []


def _inferentia2_all_or_none(training: TrainingConfig) -> list[Problem]:
    """A Neuron-compiled model runs only on Inferentia2: the registered types are all inf2 or none."""
    from infra.catalog import instances  # local import, as in the instance validators

    names = training.inference_instance_types
    inferentia = [instances.get(n).accelerator == instances.Accelerator.INFERENTIA for n in names]
    problems: list[Problem] = []
    for i, name in enumerate(names):
        if inferentia[i] and not name.startswith("ml.inf2."):
            problems.append((f"inference_instance_types[{i}]", name, "ml.inf2.* (the pipeline compiles for Neuron 2)"))
        elif any(inferentia) and not inferentia[i]:
            problems.append(
                (
                    f"inference_instance_types[{i}]",
                    name,
                    "Inferentia2 types only, like the others: the compiled model runs only there",
                )
            )
    return problems


def _one_image_fits_every_type(training: TrainingConfig) -> list[Problem]:
    """The registered types all need the runtime of the first: the package registers one image, built for it.

    Inferentia types are left to _inferentia2_all_or_none (the pipeline compiles the model for Neuron
    and registers the Neuron image when every type is inf2).
    """
    from infra.catalog import instances  # local import, as in the instance validators

    names = training.inference_instance_types
    runtimes = [instances.get(name).runtime for name in names]
    if not names or instances.Runtime.NEURON in runtimes:
        return []
    first = runtimes[0]
    return [
        (
            f"inference_instance_types[{i}]",
            name,
            f"a {first.value} type like {names[0]}: the model package registers one image, built for "
            f"{names[0]}, and {name} needs a {runtime.value} image",
        )
        for i, (name, runtime) in enumerate(zip(names, runtimes, strict=True))
        if runtime != first
    ]


TRAINING_RULES: tuple[Rule[TrainingConfig], ...] = (
    _hyperparameters_of_script,
    _spot_resumes,
    _bias_facet_is_feature,
    _no_debugger_with_tuning,
    _inferentia2_all_or_none,
    _one_image_fits_every_type,
)
