"""The whole environment: identity, tags and every section, with the rules that span sections."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.config.accounts import ACCOUNT_RULES
from infra.config.base import Problem, Rule, Strict, allowed, run_rules
from infra.config.datalake import DataLakeConfig
from infra.config.dataset import NUMERIC_TYPES
from infra.config.fields import EMAIL, NAME, NAME_ALLOWED, aws_regions
from infra.config.monitoring import MonitoringConfig
from infra.config.network import NetworkConfig
from infra.config.retraining import RetrainingConfig
from infra.config.security import SecurityConfig
from infra.config.serving import ServingConfig
from infra.config.training import TrainingConfig

# Environments with these names hold data someone depends on: no config may let it be destroyed.
PROTECTED_ENVIRONMENTS = frozenset({"prod", "production", "staging"})


class Tags(Strict):
    """Cost-allocation tags put on every resource (project and environment are added too)."""

    owner: str = Field(pattern=EMAIL, **allowed("an e-mail address of the owning team"))
    cost_center: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9 _.:/=+@-]{1,128}$",
        **allowed("1-128 characters valid in an AWS tag value"),
    )


class PlatformConfig(Strict):
    """Everything one environment of the platform is built from."""

    project: str = Field(pattern=NAME, **allowed(NAME_ALLOWED))
    environment: str = Field(pattern=NAME, **allowed(NAME_ALLOWED))
    account: str | None = Field(
        default=None, pattern=r"^\d{12}$", **allowed("12 digits, or omit for an environment-agnostic app")
    )
    region: str | None = Field(
        default=None, **allowed("an AWS region name such as eu-west-1, or omit for an environment-agnostic app")
    )
    destroy_data_on_delete: bool = Field(
        default=False,
        **allowed("true or false (true deletes buckets, keys and logs with the stack: throwaway environments only)"),
    )
    tags: Tags
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    data_lake: DataLakeConfig = Field(**allowed("a data_lake section with at least a dataset"))
    training: TrainingConfig | None = Field(default=None, **allowed("a training section, or null (no Training stack)"))
    serving: ServingConfig | None = Field(
        default=None, **allowed("a serving section, or null (no Serving stack: no endpoint)")
    )
    monitoring: MonitoringConfig | None = Field(
        default=None, **allowed("a monitoring section, or null (no Monitoring stack)")
    )
    retraining: RetrainingConfig | None = Field(
        default=None, **allowed("a retraining section, or null (no Retraining stack)")
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value not in aws_regions():
            raise PydanticCustomError("region", "unknown region")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> PlatformConfig:
        return run_rules(self, PLATFORM_RULES)

    @property
    def prefix(self) -> str:
        """Name prefix of every stack of this environment, e.g. 'mlp-dev'."""
        return f"{self.project}-{self.environment}"

    @property
    def trains_here(self) -> bool:
        """Whether this environment runs the training pipeline and owns the model registry it serves from."""
        return self.training is not None and (self.serving is None or self.serving.model_source is None)

    @property
    def partition(self) -> str | None:
        return aws_regions()[self.region] if self.region else None


def _account_with_region(config: PlatformConfig) -> list[Problem]:
    """An environment names its account and region together, or neither."""
    if (config.account is None) != (config.region is None):
        field, value = ("region", None) if config.region is None else ("account", None)
        return [(field, value, "set account and region together, or neither")]
    return []


def _protected_data_kept(config: PlatformConfig) -> list[Problem]:
    """A protected environment never deletes its data with its stacks."""
    if config.destroy_data_on_delete and config.environment in PROTECTED_ENVIRONMENTS:
        return [
            (
                "destroy_data_on_delete",
                True,
                f"false for environment '{config.environment}' "
                f"(protected: {', '.join(sorted(PROTECTED_ENVIRONMENTS))})",
            )
        ]
    return []


def _training_columns(config: PlatformConfig) -> list[Problem]:
    """The model predicts an int or boolean column from numeric, non-sensitive columns of the dataset."""
    training = config.training
    if training is None:
        return []
    problems: list[Problem] = []
    columns = {c.name: c for c in config.data_lake.dataset.columns}
    target = columns.get(training.target)
    if target is None or target.type not in ("int", "bigint", "boolean"):
        problems.append(("training.target", training.target, "an int or boolean column of data_lake.dataset"))
    for i, name in enumerate(training.features):
        column = columns.get(name)
        if column is None or column.type not in NUMERIC_TYPES or column.sensitive or name == training.target:
            problems.append(
                (
                    f"training.features[{i}]",
                    name,
                    "a numeric, non-sensitive column of data_lake.dataset other than the target",
                )
            )
    return problems


def _feature_store_event_time(config: PlatformConfig) -> list[Problem]:
    """The feature group's event time is a timestamp or date column of the dataset."""
    store = config.training.feature_store if config.training else None
    if store is None:
        return []
    column = {c.name: c for c in config.data_lake.dataset.columns}.get(store.event_time_column)
    if column is None or column.type not in ("timestamp", "date"):
        return [
            (
                "training.feature_store.event_time_column",
                store.event_time_column,
                "a timestamp or date column of data_lake.dataset",
            )
        ]
    return []


def _studio_needs_personas(config: PlatformConfig) -> list[Problem]:
    """Studio's user profiles are the lake's personas: at least one must exist."""
    personas = config.data_lake.personas
    studio = config.training.studio if config.training else None
    if studio is not None and not (personas.data_engineer or personas.data_scientist):
        return [("training.studio", "studio", "data_lake.personas with at least one persona (their profiles)")]
    return []


def _serving_fits_registry(config: PlatformConfig) -> list[Problem]:
    """The endpoint serves what the pipeline registers: its instance types and its image."""
    from infra.catalog import instances  # local import, as in the instance validators

    serving = config.serving
    if serving is None:
        return []
    if config.training is None:
        return [("serving", "a section", "only with a training section (its model registry feeds the endpoint)")]
    problems: list[Problem] = []
    registered = config.training.inference_instance_types
    for i, variant in enumerate(serving.variants):
        if variant.instance_type not in registered:
            problems.append(
                (
                    f"serving.variants[{i}].instance_type",
                    variant.instance_type,
                    "one of training.inference_instance_types, which the registered model supports: "
                    + ", ".join(registered),
                )
            )
    # The registered image is built for the first inference type; serverless runs CPU only.
    if serving.mode == "serverless" and instances.get(registered[0]).accelerator != instances.Accelerator.NONE:
        problems.append(
            (
                "serving.mode",
                "serverless",
                f"realtime or async: serverless endpoints run on CPU only, and the registered model is "
                f"built for {registered[0]} (training.inference_instance_types[0])",
            )
        )
    return problems


def _monitoring_watches_endpoint(config: PlatformConfig) -> list[Problem]:
    """Monitoring watches an endpoint that captures data: not a serverless one."""
    monitoring, serving = config.monitoring, config.serving
    if monitoring is None:
        return []
    if serving is None:
        return [("monitoring", "a section", "only with a serving section (it watches the endpoint)")]
    if serving.mode == "serverless":
        return [("monitoring", "a section", "null with serving.mode serverless (no data capture, no Model Monitor)")]
    monitors = monitoring.data_quality or monitoring.model_quality or monitoring.explainability
    if monitors and not serving.data_capture.enabled:
        return [("serving.data_capture.enabled", False, "true with monitoring (Model Monitor reads captured data)")]
    return []


def _bias_monitor_needs_baseline(config: PlatformConfig) -> list[Problem]:
    """The bias monitor compares against the registered pre-training bias baseline."""
    bias = config.monitoring.bias if config.monitoring else None
    if bias is not None and (config.training is None or config.training.bias_baseline is None):
        return [("monitoring.bias", "a section", "null, or a training.bias_baseline (its facet and config)")]
    return []


def _explainability_shadow_endpoint(config: PlatformConfig) -> list[Problem]:
    """Clarify's shadow endpoint: a copy of the real-time model, in two availability zones."""
    explainability = config.monitoring.explainability if config.monitoring else None
    if explainability is None or config.serving is None:
        return []
    field = "monitoring.explainability"
    if config.training is None or config.training.explainability is None:
        return [(field, "a section", "null, or a training.explainability (the registered SHAP baseline)")]
    if config.serving.mode != "realtime":
        return [(field, "a section", f"null with serving.mode {config.serving.mode} (a real-time model only)")]
    problems: list[Problem] = []
    if config.network.max_azs < 2:
        problems.append(
            (
                "network.max_azs",
                config.network.max_azs,
                "2 or more with monitoring.explainability (Clarify's shadow endpoint needs the model's "
                "subnets in two availability zones)",
            )
        )
    registered = config.training.inference_instance_types
    if explainability.instance_type is not None and explainability.instance_type not in registered:
        problems.append(
            (
                f"{field}.instance_type",
                explainability.instance_type,
                "one of training.inference_instance_types: " + ", ".join(registered),
            )
        )
    return problems


def _retraining_restarts_pipeline(config: PlatformConfig) -> list[Problem]:
    """Retraining starts this environment's pipeline; retraining on drift needs the drift alarms."""
    retraining = config.retraining
    if retraining is None:
        return []
    problems: list[Problem] = []
    if config.training is None:
        problems.append(("retraining", "a section", "only with a training section (it starts the pipeline)"))
    data_quality = config.monitoring.data_quality if config.monitoring else None
    if retraining.on_drift and data_quality is None:
        problems.append(("retraining.on_drift", True, "false, or a monitoring.data_quality section (drift alarms)"))
    return problems


PLATFORM_RULES: tuple[Rule[PlatformConfig], ...] = (
    _account_with_region,
    _protected_data_kept,
    _training_columns,
    _feature_store_event_time,
    _studio_needs_personas,
    _serving_fits_registry,
    _monitoring_watches_endpoint,
    _bias_monitor_needs_baseline,
    _explainability_shadow_endpoint,
    _retraining_restarts_pipeline,
    *ACCOUNT_RULES,
)
