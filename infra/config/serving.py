"""The serving section: the endpoint's variants, capture, scaling and deployment, with their cross-field rules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.config.base import Problem, Rule, Strict, allowed, run_rules
from infra.config.fields import PeerEnvironment, RealtimeInstance

_VARIANT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class VariantConfig(Strict):
    """One production variant; every variant serves the promoted model version (A/B of hardware or weight)."""

    name: str = Field(default="AllTraffic", pattern=_VARIANT_NAME, **allowed("1-63 letters, digits and '-'"))
    instance_type: RealtimeInstance = Field(
        **allowed("an ml.* type SageMaker accepts for real-time inference and the catalog knows")
    )
    initial_instance_count: int = Field(default=1, ge=1, le=100, **allowed("1 to 100 instances"))
    weight: float = Field(default=1.0, gt=0, le=1, **allowed("a traffic weight above 0, at most 1"))


class DataCaptureSettings(Strict):
    """Request and response capture to the artifacts bucket (KMS), which Model Monitor reads."""

    enabled: bool = Field(default=True, **allowed("true or false"))
    sampling_percentage: int = Field(default=20, ge=1, le=100, **allowed("1 to 100 (percent of requests)"))


class AutoscalingSettings(Strict):
    """Target tracking per variant; async endpoints scale on their queue and may scale to zero."""

    min_instances: int = Field(default=1, ge=0, le=100, **allowed("0 to 100 (0 only for async endpoints)"))
    max_instances: int = Field(default=2, ge=1, le=100, **allowed("1 to 100, at least min_instances"))
    invocations_per_instance: int = Field(
        default=100, ge=1, le=100000, **allowed("1 to 100000 invocations per instance per minute")
    )
    gpu_utilization_percent: int | None = Field(
        default=None, ge=1, le=100, **allowed("1 to 100, or null; only when every variant runs on NVIDIA GPUs")
    )
    backlog_per_instance: int = Field(default=5, ge=1, le=1000, **allowed("1 to 1000 queued requests (async)"))
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600, **allowed("0 to 3600 seconds"))
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600, **allowed("0 to 3600 seconds"))
    scale_in_protection: bool = Field(
        default=False, **allowed("true or false (true: the policy only scales out; scale in by hand)")
    )


class DeploymentSettings(Strict):
    """How a new model version replaces the old: SageMaker deployment guardrails with alarm rollback."""

    strategy: Literal["canary", "linear", "all_at_once", "rolling"] = Field(
        default="canary", **allowed("canary, linear, all_at_once (blue/green) or rolling")
    )
    canary_percent: int = Field(default=10, ge=1, le=50, **allowed("1 to 50 percent of capacity"))
    linear_step_percent: int = Field(default=25, ge=5, le=50, **allowed("5 to 50 percent of capacity per step"))
    rolling_batch_percent: int = Field(default=25, ge=5, le=50, **allowed("5 to 50 percent of capacity per batch"))
    wait_minutes: int = Field(default=5, ge=0, le=60, **allowed("0 to 60 minutes between traffic steps"))
    baking_minutes: int = Field(default=10, ge=0, le=60, **allowed("0 to 60 minutes before the old fleet goes"))
    max_error_rate_percent: float = Field(
        default=1.0, gt=0, le=100, **allowed("a 5XX rate above 0, at most 100 percent")
    )
    max_latency_ms: int = Field(default=1000, ge=1, le=3600000, **allowed("1 to 3600000 milliseconds"))


SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)


class ServerlessSettings(Strict):
    """A serverless endpoint: CPU only, and outside the VPC (the exception must be stated)."""

    memory_mb: int = Field(default=2048, **allowed("1024, 2048, 3072, 4096, 5120 or 6144"))
    max_concurrency: int = Field(default=20, ge=1, le=200, **allowed("1 to 200"))
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200, **allowed("1 to max_concurrency, or null"))
    isolation_exception: str = Field(
        min_length=20,
        max_length=500,
        **allowed(
            "why this endpoint may run without VPC, network isolation, data capture and Model Monitor "
            "(at least 20 characters; serverless endpoints support none of them)"
        ),
    )

    @field_validator("memory_mb")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value not in SERVERLESS_MEMORY_MB:
            raise PydanticCustomError("memory", "not a serverless memory size")
        return value


class AsyncSettings(Strict):
    """Asynchronous inference: requests queue, results land in the artifacts bucket (KMS)."""

    max_concurrent_invocations_per_instance: int = Field(default=4, ge=1, le=1000, **allowed("1 to 1000"))
    notifications: bool = Field(default=True, **allowed("true or false (SNS topics for success and error)"))


class ServingConfig(Strict):
    """The endpoint that serves the approved model version, and how new versions reach it."""

    mode: Literal["realtime", "serverless", "async"] = Field(
        default="realtime", **allowed("realtime, serverless or async")
    )
    variants: list[VariantConfig] = Field(
        default_factory=list, max_length=10, **allowed("1 to 10 variants (none for serverless)")
    )
    data_capture: DataCaptureSettings = Field(default_factory=DataCaptureSettings)
    autoscaling: AutoscalingSettings | None = Field(
        default=None, **allowed("an autoscaling section or null (fixed instance counts)")
    )
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    serverless: ServerlessSettings | None = Field(
        default=None, **allowed("a serverless section with mode serverless, else null")
    )
    async_inference: AsyncSettings | None = Field(
        default=None, **allowed("an async_inference section with mode async, else null")
    )
    model_source: PeerEnvironment | None = Field(
        default=None,
        **allowed(
            "the account and environment whose model registry this endpoint serves from (training runs there; "
            "the training section describes that model), or null (this environment's own registry)"
        ),
    )

    @model_validator(mode="after")
    def _combinations(self) -> ServingConfig:
        return run_rules(self, SERVING_RULES)

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants] or ["AllTraffic"]


def _serverless_shape(serving: ServingConfig) -> list[Problem]:
    """A serverless endpoint has its section and one implicit variant, captures nothing and scales itself."""
    if serving.mode != "serverless":
        return []
    problems: list[Problem] = []
    if serving.serverless is None:
        problems.append(("serverless", None, "a serverless section with mode serverless"))
    if serving.variants:
        problems.append(
            ("variants", f"{len(serving.variants)} variant(s)", "none with mode serverless (one implicit variant)")
        )
    if serving.data_capture.enabled:
        problems.append(
            ("data_capture.enabled", True, "false with mode serverless (serverless endpoints capture no data)")
        )
    if serving.autoscaling is not None:
        problems.append(("autoscaling", "a section", "null with mode serverless (SageMaker scales it)"))
    return problems


def _serverless_all_at_once(serving: ServingConfig) -> list[Problem]:
    """A serverless endpoint has no instances to shift traffic by: it deploys all at once."""
    if serving.mode == "serverless" and serving.deployment.strategy != "all_at_once":
        return [
            (
                "deployment.strategy",
                serving.deployment.strategy,
                "all_at_once with mode serverless: no rolling deployments for serverless endpoints, and "
                "canary and linear shifting are sized in instances, which a serverless endpoint has none of",
            )
        ]
    return []


def _provisioned_within_concurrency(serving: ServingConfig) -> list[Problem]:
    """Provisioned concurrency is at most the serverless endpoint's maximum concurrency."""
    if serving.mode != "serverless" or serving.serverless is None:
        return []
    limit = serving.serverless.max_concurrency
    provisioned = serving.serverless.provisioned_concurrency
    if provisioned is not None and provisioned > limit:
        return [("serverless.provisioned_concurrency", provisioned, f"at most max_concurrency ({limit})")]
    return []


def _instance_endpoint_shape(serving: ServingConfig) -> list[Problem]:
    """A real-time or async endpoint has variants and no serverless section."""
    if serving.mode == "serverless":
        return []
    problems: list[Problem] = []
    if not serving.variants:
        problems.append(("variants", [], f"at least one variant with mode {serving.mode}"))
    if serving.serverless is not None:
        problems.append(("serverless", "a section", f"null with mode {serving.mode}"))
    return problems


def _async_section_with_async_mode(serving: ServingConfig) -> list[Problem]:
    """The async_inference section exists exactly when the mode is async."""
    if serving.mode == "async" and serving.async_inference is None:
        return [("async_inference", None, "an async_inference section with mode async")]
    if serving.mode != "async" and serving.async_inference is not None:
        return [("async_inference", "a section", f"null with mode {serving.mode}")]
    return []


def _variant_names_unique(serving: ServingConfig) -> list[Problem]:
    """Each variant has a name of its own."""
    names = [v.name for v in serving.variants]
    return [
        (f"variants[{i}].name", name, "a name no other variant has")
        for i, name in enumerate(names)
        if name in names[:i]
    ]


def _rolling_single_variant(serving: ServingConfig) -> list[Problem]:
    """SageMaker rolls out one variant only."""
    if len(serving.variants) > 1 and serving.deployment.strategy == "rolling":
        return [
            (
                "deployment.strategy",
                "rolling",
                "canary, linear or all_at_once: no rolling deployments for multi-variant endpoints",
            )
        ]
    return []


def _traffic_shifting_fits_variants(serving: ServingConfig) -> list[Problem]:
    """Canary and linear shifting need two instances per variant, and no inf1 variant."""
    strategy = serving.deployment.strategy
    if strategy not in ("canary", "linear"):
        return []
    problems: list[Problem] = []
    for i, variant in enumerate(serving.variants):
        if variant.initial_instance_count < 2:
            problems.append(
                (
                    "deployment.strategy",
                    strategy,
                    f"all_at_once, or 2+ instances in variants[{i}]: a canary or linear step is at most half "
                    "of the new fleet, which one instance cannot split",
                )
            )
        if variant.instance_type.startswith("ml.inf1."):
            problems.append(
                (
                    "deployment.strategy",
                    strategy,
                    f"all_at_once: variants[{i}] runs on {variant.instance_type}, and inf1 endpoints fall "
                    "back to all-at-once traffic shifting",
                )
            )
    return problems


def _autoscaling_bounds(serving: ServingConfig) -> list[Problem]:
    """The minimum is at most the maximum, and zero only for async endpoints."""
    scaling = serving.autoscaling
    if scaling is None:
        return []
    problems: list[Problem] = []
    if scaling.min_instances > scaling.max_instances:
        problems.append(
            ("autoscaling.min_instances", scaling.min_instances, f"at most max_instances ({scaling.max_instances})")
        )
    if scaling.min_instances == 0 and serving.mode != "async":
        problems.append(("autoscaling.min_instances", 0, "at least 1 (only async endpoints scale to zero)"))
    return problems


def _gpu_scaling_on_gpus(serving: ServingConfig) -> list[Problem]:
    """Scaling on GPU utilization needs every variant on an NVIDIA GPU type."""
    from infra.catalog import instances  # local import, as in the instance validators

    target = serving.autoscaling.gpu_utilization_percent if serving.autoscaling else None
    if target is None:
        return []
    gpu = [instances.get(v.instance_type).accelerator == instances.Accelerator.NVIDIA for v in serving.variants]
    if not (gpu and all(gpu)):
        return [("autoscaling.gpu_utilization_percent", target, "null unless every variant runs on an NVIDIA GPU type")]
    return []


SERVING_RULES: tuple[Rule[ServingConfig], ...] = (
    _serverless_shape,
    _serverless_all_at_once,
    _provisioned_within_concurrency,
    _instance_endpoint_shape,
    _async_section_with_async_mode,
    _variant_names_unique,
    _rolling_single_variant,
    _traffic_shifting_fits_variants,
    _autoscaling_bounds,
    _gpu_scaling_on_gpus,
)
