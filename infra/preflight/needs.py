"""What one environment needs from its account: instances per type and usage, endpoints, concurrency, prerequisites.

Derived from the config and the instance catalog the way the stacks and the pipeline builder use
them; tests/test_preflight.py holds each figure against the synthesized templates and the stored
pipeline definitions, so a change there that is not followed here fails the suite.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from infra.catalog import endpoints, instances
from infra.config import PlatformConfig, ServingConfig, TrainingConfig


class Usage(StrEnum):
    """The usages SageMaker sets an instance quota for; the quota is named '<type> for <usage> usage'."""

    TRAINING = "training job"
    SPOT_TRAINING = "spot training job"
    PROCESSING = "processing job"
    ENDPOINT = "endpoint"
    TRANSFORM = "transform job"


@dataclass(frozen=True)
class InstanceNeed:
    """Instances of one type that may run at once for one usage, and what they are for."""

    instance_type: str
    usage: Usage
    count: int
    reasons: tuple[str, ...]

    @property
    def quota_name(self) -> str:
        return f"{self.instance_type} for {self.usage.value} usage"


# The pipeline runs at most this many steps at once (the Training stack's ParallelismConfiguration).
PIPELINE_PARALLEL_STEPS = 4

# Reserved concurrency of each platform function (lambdas/<name>): none since decision 26 (a DynamoDB
# lock keeps them one at a time), so a new account's concurrency limit of 10 is enough.
RESERVED_CONCURRENCY: Mapping[str, int] = MappingProxyType({"promotion": 0, "retraining": 0})


def instance_needs(config: PlatformConfig) -> list[InstanceNeed]:
    """Peak concurrent instances per (type, usage): pipeline, endpoint (with its updates) and monitors."""
    parts: list[tuple[str, Usage, int, str]] = []
    if config.trains_here and config.training is not None:
        platform = config.monitoring is None or config.monitoring.engine == "platform"
        parts += _pipeline(config.training, model_monitor_baselines=not platform)
    if config.serving is not None and config.serving.mode != "serverless":
        parts += _endpoint(config.serving)
    parts += _monitors(config)
    merged: dict[tuple[str, Usage], tuple[int, list[str]]] = {}
    for instance_type, usage, count, reason in parts:
        total, reasons = merged.get((instance_type, usage), (0, []))
        merged[(instance_type, usage)] = (total + count, [*reasons, reason])
    return [
        InstanceNeed(instance_type, usage, count, tuple(reasons))
        for (instance_type, usage), (count, reasons) in sorted(merged.items())
    ]


def _pipeline(training: TrainingConfig, *, model_monitor_baselines: bool) -> list[tuple[str, Usage, int, str]]:
    """One execution at a time (the retraining function refuses to start a second one)."""
    usage = Usage.SPOT_TRAINING if training.spot.enabled else Usage.TRAINING
    count = training.instance_count
    if training.tuning is not None:
        parallel = training.tuning.max_parallel_jobs
        train = (training.instance_type, usage, parallel * count, f"tuning: {parallel} jobs x {count}")
    else:
        train = (training.instance_type, usage, count, f"training: {count}")
    # After the quality gate the Model Monitor engine's baselines (and the Neuron compile step) run side by
    # side; the platform engine's baselines come from preprocess and evaluate, which run one after the other.
    baselines = 2 + (training.bias_baseline is not None) if model_monitor_baselines else 0
    after_gate = baselines + training.serves_on_inferentia
    processing = max(1, min(after_gate, PIPELINE_PARALLEL_STEPS))
    return [
        train,
        (training.processing_instance_type, Usage.PROCESSING, processing, f"pipeline: {processing} steps at once"),
    ]


def _endpoint(serving: ServingConfig) -> list[tuple[str, Usage, int, str]]:
    """Each variant at its autoscaling maximum, plus the new fleet an update brings up beside it."""
    parts = []
    scaling = serving.autoscaling
    for variant in serving.variants:
        fleet = max(variant.initial_instance_count, scaling.max_instances if scaling else 0)
        if serving.deployment.strategy == "rolling":
            extra = -(-fleet * serving.deployment.rolling_batch_percent // 100)
            how = "rolling batch"
        else:  # blue/green: the green fleet is as large as the blue one until the blue one goes
            extra, how = fleet, "blue/green"
        reason = f"{variant.name}: {fleet} +{extra} {how}"
        parts.append((variant.instance_type, Usage.ENDPOINT, fleet + extra, reason))
    return parts


def _monitors(config: PlatformConfig) -> list[tuple[str, Usage, int, str]]:
    """Model Monitor: every schedule fires on the hour, so all monitors may run at once; the platform: one run."""
    monitoring = config.monitoring
    if monitoring is None or config.serving is None or config.serving.mode == "serverless":
        return []
    kinds = [
        name
        for name, section in (
            ("data quality", monitoring.data_quality),
            ("model quality", monitoring.model_quality),
            ("bias", monitoring.bias),
            ("explainability", monitoring.explainability),
        )
        if section is not None
    ]
    parts: list[tuple[str, Usage, int, str]] = []
    if kinds and monitoring.engine == "platform":
        # One analysis job judges every monitor of a run, and the starter never lets runs overlap.
        parts.append((monitoring.instance_type, Usage.PROCESSING, 1, "monitor run: 1 (runs never overlap)"))
    elif kinds:
        parts.append((monitoring.instance_type, Usage.PROCESSING, len(kinds), f"{len(kinds)} monitors"))
    if monitoring.explainability is not None and config.serving.variants:
        shadow = monitoring.explainability.instance_type or config.serving.variants[0].instance_type
        parts.append((shadow, Usage.ENDPOINT, 1, "explainability shadow: 1"))
    return parts


def interface_endpoints(config: PlatformConfig, region: str) -> list[str]:
    """The endpoint service names of the interface endpoints in the environment's VPC."""
    return [endpoint.service_name(region) for endpoint in endpoints.interface_endpoints(config.training)]


def reserved_concurrency(config: PlatformConfig) -> dict[str, int]:
    """Function name -> reserved concurrency, for the functions this environment deploys."""
    deployed = {"promotion": config.serving is not None, "retraining": config.retraining is not None}
    return {
        f"{config.prefix}-{name}": RESERVED_CONCURRENCY[name]
        for name, present in deployed.items()
        if present and RESERVED_CONCURRENCY[name]
    }


def serverless_concurrency(config: PlatformConfig) -> int:
    """The serverless endpoint's maximum concurrency (0 without one)."""
    serving = config.serving
    if serving is None or serving.serverless is None:
        return 0
    return serving.serverless.max_concurrency


def model_monitor_users(config: PlatformConfig) -> list[str]:
    """What in this environment runs on Model Monitor (the pipeline's baselines and the monitors): nothing
    on the platform engine, whose baselines and monitors run on the scikit-learn image (decision 29)."""
    monitoring = config.monitoring
    if monitoring is None or monitoring.engine == "platform":
        return []
    users = ["pipeline baselines"] if config.trains_here else []
    kinds = {
        "data quality": monitoring.data_quality,
        "model quality": monitoring.model_quality,
        "bias": monitoring.bias,
        "explainability": monitoring.explainability,
    }
    return users + [f"{kind} monitor" for kind, section in kinds.items() if section is not None]


def accelerated(needs: Iterable[InstanceNeed]) -> list[InstanceNeed]:
    """The needs on GPU, Inferentia or Trainium types, whose quotas new accounts often have at 0."""
    return [n for n in needs if instances.get(n.instance_type).accelerator != instances.Accelerator.NONE]
