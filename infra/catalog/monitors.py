"""The Model Monitor kinds, one row each: what serving, monitoring, the checks and the assembly tools know of a kind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the config imports nothing from here, so it may read this table in turn
    from infra.config import MonitoringConfig

# Resource metadata of a monitoring job definition whose job starts a shadow endpoint (Clarify):
# the Serving stack writes it, the cost estimate prices the endpoint from it.
SHADOW_METADATA = "ShadowEndpoint"
# The role of the Model Monitor and Clarify jobs that need nothing else (Serving stack, 'monitor').
SHARED_ROLE = "monitor"
# The platform engine's CloudWatch namespace (lambdas/monitor_metrics, METRIC_NAMESPACE) and the image its
# analysis job runs on (the scikit-learn processing image: numpy and pandas, no Model Monitor).
PLATFORM_NAMESPACE = "MLPlatform/Monitoring"
# Resource metadata of the platform monitor's pipeline: the cron expressions that start it (the cost estimate).
RUN_SCHEDULES = "RunSchedules"


class MonitorSection(Protocol):
    """A kind's section of the config (monitoring.<field>): every kind has a schedule."""

    @property
    def schedule(self) -> str: ...

    def model_dump(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Baseline:
    """A baseline of the promoted version: its stack (and SSM) parameter, and where the registered version keeps it."""

    parameter: str  # Serving stack parameter and SSM parameter name, e.g. 'DataQualityConstraints'
    path: str  # dotted path in DescribeModelPackage's answer (the Register step's DriftCheckBaselines)


@dataclass(frozen=True)
class Image:
    """A SageMaker-owned image a kind's job runs."""

    family: str  # key of pipelines.definition.registry_accounts()[region]
    repository: str
    tag: str | None = None  # None: the repository's default (latest)

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else self.repository


@dataclass(frozen=True)
class Metrics:
    """What a kind's job publishes to CloudWatch, and the dashboard widget that shows it."""

    namespace: str
    # Metric name: a format string over the kind's config fields, and {feature} for one metric per training feature.
    name: str
    title: str  # of the dashboard widget
    x: int  # the widget's position on the dashboard grid (24 wide)
    y: int
    stat: str
    dimensions: tuple[tuple[str, str], ...] = ()  # beyond Endpoint and MonitoringSchedule (or MonitorKind)
    per_feature: bool = False  # one metric per training feature through a Feature dimension (the platform's)

    def published(self, section: MonitorSection, features: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """(metric name, the values its alarm's description may name) for each metric the section publishes."""
        fields = section.model_dump()
        if self.per_feature:
            return [(self.name.format(**fields), {**fields, "feature": f}) for f in features]
        if "{feature}" not in self.name:
            return [(self.name.format(**fields), fields)]
        return [(self.name.format(feature=f, **fields), {**fields, "feature": f}) for f in features]


@dataclass(frozen=True)
class Alarm:
    """An alarm per published metric, named <prefix>-<stem>-<feature or metric name>."""

    stem: str
    description: str  # a format string over the kind's config fields (and {feature})
    statistic: str
    threshold: str | float  # the config field that holds the threshold, or the threshold itself
    comparison: str

    def limit(self, values: dict[str, Any]) -> float:
        return float(values[self.threshold]) if isinstance(self.threshold, str) else self.threshold


@dataclass(frozen=True)
class MonitorKind:
    """One kind of Model Monitor job: its config section, names, promoted baselines, images, role and metrics."""

    field: str  # monitoring.<field> in the config
    type: str  # MonitoringType; the job definition is AWS::SageMaker::<type>JobDefinition
    title: str  # in words, e.g. 'data quality'
    baselines: tuple[Baseline, ...]
    image: Image
    role: str = SHARED_ROLE  # the Serving stack role its job runs as (naming.serving_role kind)
    # A parameter the promotion function writes for each version (not registered with it), if any.
    per_version_parameter: str | None = None
    # The job runs without network isolation (a stated exception in the config section).
    isolated: bool = True
    # The job starts a shadow endpoint of the served model, so the model gets a predictable name.
    shadow_endpoint: bool = False
    metrics: Metrics | None = None
    alarm: Alarm | None = None
    # What the platform engine publishes for the kind (monitoring/README.md), and its alarm; a kind the
    # platform engine does not provide has neither.
    platform_metrics: Metrics | None = None
    platform_alarm: Alarm | None = None

    def metrics_of(self, engine: str) -> Metrics | None:
        return self.platform_metrics if engine == "platform" else self.metrics

    def alarm_of(self, engine: str) -> Alarm | None:
        return self.platform_alarm if engine == "platform" else self.alarm

    @property
    def slug(self) -> str:
        """'DataQuality' -> 'data-quality': in schedule names, S3 prefixes and job definition ARNs."""
        return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(self.type))

    @property
    def resource_type(self) -> str:
        return f"AWS::SageMaker::{self.type}JobDefinition"

    @property
    def create_action(self) -> str:
        return f"sagemaker:Create{self.type}JobDefinition"

    @property
    def output_config(self) -> str:
        """The job definition's output property."""
        return f"{self.type}JobOutputConfig"

    @property
    def state_parameters(self) -> tuple[str, ...]:
        """The promoted-state parameters the kind's schedule waits for, in the order the stack creates them."""
        written = (self.per_version_parameter,) if self.per_version_parameter else ()
        return (*(b.parameter for b in self.baselines), *written)


MODEL_MONITOR = Image("ModelMonitor", "sagemaker-model-monitor-analyzer")
CLARIFY = Image("Clarify", "sagemaker-clarify-processing", "1.0")

DRIFT_ALARM = Alarm(
    stem="drift",
    description="Drift of feature {feature} from the promoted version's baseline above {drift_threshold:g} "
    "(starts retraining when configured)",
    statistic="Maximum",
    threshold="drift_threshold",
    comparison="GreaterThanThreshold",
)
QUALITY_ALARM = Alarm(
    stem="model-quality",
    description="{metric} of the served model on labelled traffic below {min_value:g}",
    statistic="Minimum",
    threshold="min_value",
    comparison="LessThanThreshold",
)

DATA_QUALITY = MonitorKind(
    field="data_quality",
    type="DataQuality",
    title="data quality",
    baselines=(
        Baseline("DataQualityStatistics", "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri"),
        Baseline("DataQualityConstraints", "DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri"),
    ),
    image=MODEL_MONITOR,
    metrics=Metrics(
        namespace="aws/sagemaker/Endpoints/data-metrics",
        name="feature_baseline_drift_{feature}",
        title="Feature drift from the promoted baseline",
        x=12,
        y=6,
        stat="Maximum",
    ),
    alarm=DRIFT_ALARM,
    platform_metrics=Metrics(
        namespace=PLATFORM_NAMESPACE,
        # Jensen-Shannon distance of each feature to its baseline (one metric, a Feature dimension each).
        name="FeatureDrift",
        title="Feature drift from the promoted baseline (Jensen-Shannon distance)",
        x=12,
        y=6,
        stat="Maximum",
        dimensions=(("MonitorKind", "data_quality"),),
        per_feature=True,
    ),
    platform_alarm=DRIFT_ALARM,
)
MODEL_QUALITY = MonitorKind(
    field="model_quality",
    type="ModelQuality",
    title="model quality",
    baselines=(Baseline("ModelQualityConstraints", "DriftCheckBaselines.ModelQuality.Constraints.S3Uri"),),
    image=MODEL_MONITOR,
    metrics=Metrics(
        namespace="aws/sagemaker/Endpoints/model-metrics",
        name="{metric}",
        title="Model quality on labelled traffic",
        x=0,
        y=12,
        stat="Minimum",
    ),
    alarm=QUALITY_ALARM,
    platform_metrics=Metrics(
        namespace=PLATFORM_NAMESPACE,
        name="{metric}",
        title="Model quality on labelled traffic",
        x=0,
        y=12,
        stat="Minimum",
        dimensions=(("MonitorKind", "model_quality"),),
    ),
    platform_alarm=QUALITY_ALARM,
)
BIAS = MonitorKind(
    field="bias",
    type="ModelBias",
    title="bias",
    baselines=(Baseline("BiasConfig", "DriftCheckBaselines.Bias.ConfigFile.S3Uri"),),
    image=CLARIFY,
    platform_metrics=Metrics(
        namespace=PLATFORM_NAMESPACE,
        # The largest move of CI, DPL or DPPL from its baseline value; the run's limit is 0.1 (monitoring/bias.py).
        name="MaxBiasShift",
        title="Bias drift: largest facet metric shift from the baseline",
        x=12,
        y=12,
        stat="Maximum",
        dimensions=(("MonitorKind", "bias"),),
    ),
    platform_alarm=Alarm(
        stem="bias",
        description="A facet metric (CI, DPL or DPPL) of the served model moved more than 0.1 from its baseline",
        statistic="Maximum",
        threshold=0.1,
        comparison="GreaterThanThreshold",
    ),
)
EXPLAINABILITY = MonitorKind(
    field="explainability",
    type="ModelExplainability",
    title="explainability",
    baselines=(Baseline("ExplainabilityConstraints", "DriftCheckBaselines.Explainability.Constraints.S3Uri"),),
    image=CLARIFY,
    role="explainability",
    # Its analysis config names the model it explains, which exists only once deployed: the promotion
    # function writes it per version (from the registered template) and sets this parameter to it.
    per_version_parameter="ExplainabilityConfig",
    isolated=False,
    shadow_endpoint=True,
    metrics=Metrics(
        namespace="aws/sagemaker/Endpoints/explainability-metrics",
        # Each feature's global SHAP value, per label.
        name="feature_{feature}",
        title="Feature attributions (global SHAP) of the served model",
        x=0,
        y=24,
        stat="Maximum",
        dimensions=(("ExplainabilityMethod", "KernelShap"), ("Label", "label0"), ("ValueType", "GlobalShapValues")),
    ),
)

KINDS: tuple[MonitorKind, ...] = (DATA_QUALITY, MODEL_QUALITY, BIAS, EXPLAINABILITY)

# Stack parameter -> dotted path of every baseline (the promotion function's BASELINE_PARAMETERS).
BASELINE_PARAMETERS = {b.parameter: b.path for kind in KINDS for b in kind.baselines}
# The Serving stack roles the monitoring jobs run as, in table order.
ROLES = tuple(dict.fromkeys(kind.role for kind in KINDS))


def configured(monitoring: MonitoringConfig | None) -> list[tuple[MonitorKind, MonitorSection]]:
    """Each kind the config's monitoring section sets, with its section, in table order."""
    if monitoring is None:
        return []
    sections = ((kind, getattr(monitoring, kind.field)) for kind in KINDS)
    return [(kind, section) for kind, section in sections if section is not None]


def by_resource_type(resource_type: str) -> MonitorKind | None:
    """The kind whose job definition has this CloudFormation type, if any."""
    return next((kind for kind in KINDS if kind.resource_type == resource_type), None)
