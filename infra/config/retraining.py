"""The retraining section: what starts the training pipeline again, and how often at most."""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.config.base import Problem, Rule, Strict, allowed, run_rules

# EventBridge schedule expressions: rate(...) or a six-field cron(...).
_SCHEDULE_EXPRESSION = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$"


class NewDataTrigger(Strict):
    """Retrain once this much new data has landed in the raw zone since the last start."""

    min_objects: int = Field(default=100, ge=0, le=1_000_000, **allowed("0 to 1000000 objects (0: not used)"))
    min_bytes: int = Field(default=0, ge=0, **allowed("0 or more bytes (0: not used)"))

    @model_validator(mode="after")
    def _one(self) -> NewDataTrigger:
        return run_rules(self, NEW_DATA_RULES)


def _one_threshold_at_least(trigger: NewDataTrigger) -> list[Problem]:
    """A trigger with both thresholds at zero would never fire."""
    if trigger.min_objects == 0 and trigger.min_bytes == 0:
        return [("min_objects", 0, "above 0, or min_bytes above 0 (one threshold at least)")]
    return []


NEW_DATA_RULES: tuple[Rule[NewDataTrigger], ...] = (_one_threshold_at_least,)


class RetrainingConfig(Strict):
    """What starts the training pipeline again, and how often at most."""

    cooldown_minutes: int = Field(
        default=360, ge=0, le=43200, **allowed("0 to 43200 minutes between two pipeline starts")
    )
    on_drift: bool = Field(default=True, **allowed("true or false (needs monitoring.data_quality)"))
    schedule: str | None = Field(
        default=None,
        pattern=_SCHEDULE_EXPRESSION,
        **allowed("an EventBridge schedule such as cron(0 3 ? * SUN *) or rate(7 days), or null"),
    )
    new_data: NewDataTrigger | None = Field(default=None, **allowed("a new_data section or null"))
    manual: bool = Field(default=True, **allowed("true or false (events with detail-type Retraining Requested)"))
