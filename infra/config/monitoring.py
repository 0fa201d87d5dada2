"""The monitoring section: the engine and its monitors, endpoint alarms and who reviews new model versions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.config.base import Problem, Rule, Strict, allowed, run_rules
from infra.config.fields import ProcessingInstance, RealtimeInstance, emails

# Monitors run hourly or daily; these are the cron forms Model Monitor and EventBridge accept for each.
MONITOR_SCHEDULES = {"hourly": "cron(0 * ? * * *)", "daily": "cron(0 0 ? * * *)"}
# The engines that run the monitors: the platform's own (monitoring/, any account) and SageMaker Model
# Monitor with Clarify (only accounts that already use Model Monitor; AWS closed it to new customers).
ENGINES = ("platform", "model_monitor")
# The monitor kinds each engine provides (monitoring.<kind>).
ENGINE_KINDS = {
    "platform": ("data_quality", "model_quality", "bias"),
    "model_monitor": ("data_quality", "model_quality", "bias", "explainability"),
}


class DataQualityMonitor(Strict):
    """Feature drift of captured requests against the promoted version's data baseline."""

    schedule: Literal["hourly", "daily"] = Field(default="hourly", **allowed("hourly or daily"))
    drift_threshold: float = Field(
        default=0.2, gt=0, le=1, **allowed("a baseline drift distance above 0, at most 1, per feature")
    )


class ModelQualityMonitor(Strict):
    """Model quality of captured predictions against ground truth labels, which someone must upload."""

    schedule: Literal["hourly", "daily"] = Field(default="daily", **allowed("hourly or daily"))
    metric: Literal["auc", "accuracy", "f1", "precision", "recall"] = Field(
        default="auc", **allowed("auc, accuracy, f1, precision or recall")
    )
    min_value: float = Field(default=0.7, gt=0, le=1, **allowed("a value above 0, at most 1"))


class BiasMonitor(Strict):
    """Post-training bias of the served model across training.bias_baseline's facet, on labelled traffic."""

    schedule: Literal["hourly", "daily"] = Field(default="daily", **allowed("hourly or daily"))


class ExplainabilityMonitor(Strict):
    """Feature attribution drift (Clarify SHAP) of the served model against its registered SHAP baseline.

    Clarify computes SHAP values on a shadow endpoint it starts from the served model, through the
    SageMaker API: that job cannot run with network isolation (it stays in the private subnets, with
    no internet path), so the config must say why that is accepted.
    """

    schedule: Literal["hourly", "daily"] = Field(default="daily", **allowed("hourly or daily"))
    isolation_exception: str = Field(
        min_length=20,
        max_length=500,
        **allowed("why the explainability job may run without network isolation (20 to 500 characters)"),
    )
    instance_type: RealtimeInstance | None = Field(
        default=None,
        **allowed("the shadow endpoint's instance type (one of training.inference_instance_types), or null "
                  "(the first variant's)"),
    )  # fmt: skip


class EndpointAlarms(Strict):
    """Endpoint health alarms, on top of the rollback alarms of the deployment."""

    max_cpu_percent: int = Field(default=90, ge=1, le=100, **allowed("1 to 100 (percent per vCPU, averaged)"))
    max_memory_percent: int = Field(default=90, ge=1, le=100, **allowed("1 to 100"))
    max_gpu_percent: int = Field(default=95, ge=1, le=100, **allowed("1 to 100 (percent per GPU)"))
    min_invocations_per_hour: int | None = Field(
        default=None, ge=1, **allowed("a positive number, or null (no alarm on missing traffic)")
    )


class MonitoringConfig(Strict):
    """The monitors of the endpoint (on its engine), alarms and a dashboard."""

    engine: Literal["platform", "model_monitor"] = Field(
        default="platform",
        **allowed("platform (the platform's own monitor jobs, any account) or model_monitor (SageMaker Model "
                  "Monitor and Clarify, for accounts that have Model Monitor)"),
    )  # fmt: skip
    instance_type: ProcessingInstance = Field(
        default="ml.m5.xlarge", **allowed("an ml.* type SageMaker accepts for processing and the catalog knows")
    )
    data_quality: DataQualityMonitor | None = Field(
        default_factory=DataQualityMonitor, **allowed("a data_quality section or null")
    )
    model_quality: ModelQualityMonitor | None = Field(default=None, **allowed("a model_quality section or null"))
    bias: BiasMonitor | None = Field(
        default=None, **allowed("a bias section (needs training.bias_baseline and ground truth) or null")
    )
    explainability: ExplainabilityMonitor | None = Field(
        default=None,
        **allowed("an explainability section (needs training.explainability and a stated isolation_exception) "
                  "or null"),
    )  # fmt: skip
    endpoint: EndpointAlarms = Field(default_factory=EndpointAlarms)
    reviewer_emails: list[str] = Field(
        default_factory=list, **allowed("e-mail addresses told when a model version waits for approval")
    )

    @field_validator("reviewer_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return emails(value)

    @model_validator(mode="after")
    def _combinations(self) -> MonitoringConfig:
        return run_rules(self, MONITORING_RULES)


def _engine_provides_kinds(monitoring: MonitoringConfig) -> list[Problem]:
    """Each configured monitor kind is one the chosen engine provides."""
    provided = ENGINE_KINDS[monitoring.engine]
    return [
        (kind, "a section", f"null with engine {monitoring.engine} (it provides {', '.join(provided)})")
        for kind in ENGINE_KINDS["model_monitor"]
        if getattr(monitoring, kind) is not None and kind not in provided
    ]


MONITORING_RULES: tuple[Rule[MonitoringConfig], ...] = (_engine_provides_kinds,)
