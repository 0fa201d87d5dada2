"""The security section: keys, the audit trail, alert addresses, the budget and detective controls."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from infra.config.base import Strict, allowed
from infra.config.fields import RETENTION_ALLOWED, RetentionDays, emails


class KmsConfig(Strict):
    """Customer-managed keys (data lake, ML artifacts, logs)."""

    pending_window_days: int = Field(default=30, ge=7, le=30, **allowed("an integer from 7 to 30"))


class CloudTrailConfig(Strict):
    """The platform's audit trail."""

    enabled: bool = Field(default=True, **allowed("true or false"))
    multi_region: bool = Field(default=True, **allowed("true or false"))
    lake_data_events: bool = Field(default=True, **allowed("true or false (S3 data events on the data lake buckets)"))
    log_retention_days: RetentionDays = Field(default=365, **allowed(RETENTION_ALLOWED))


class BudgetConfig(Strict):
    """A monthly cost budget with e-mail/SNS alerts at thresholds of actual spend."""

    monthly_limit_usd: float = Field(gt=0, le=10_000_000, **allowed("a number of US dollars above 0"))
    alert_thresholds_percent: list[int] = Field(
        default_factory=lambda: [50, 80, 100],
        min_length=1,
        max_length=5,
        **allowed("1 to 5 distinct integers from 1 to 1000 (percent of the limit)"),
    )

    @field_validator("alert_thresholds_percent")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value) or any(not 1 <= v <= 1000 for v in value):
            raise PydanticCustomError("thresholds", "bad thresholds")
        return sorted(value)


class SecurityConfig(Strict):
    """Keys, audit trail, alerts, budget and detective controls."""

    kms: KmsConfig = Field(default_factory=KmsConfig)
    cloudtrail: CloudTrailConfig = Field(default_factory=CloudTrailConfig)
    alert_emails: list[str] = Field(
        default_factory=list, **allowed("a list of e-mail addresses subscribed to the alert topic")
    )
    function_log_retention_days: RetentionDays = Field(
        default=365, **allowed("the platform Lambdas' log retention: " + RETENTION_ALLOWED)
    )
    budget: BudgetConfig | None = Field(default=None, **allowed("a budget section or null"))
    config_rules: bool = Field(
        default=False,
        **allowed("true or false (AWS Config managed rules for SageMaker; needs a recorder)"),
    )

    @field_validator("alert_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        return emails(value)
