"""Typed platform configuration: one YAML file per environment, validated before any construct exists."""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_ENV = "dev"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy); 0 means "never expire".
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_NAME = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
_NAME_ALLOWED = "2-20 characters: lowercase letters, digits and '-', starting with a letter"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Environments with these names hold data someone depends on: no config may let it be destroyed.
PROTECTED_ENVIRONMENTS = frozenset({"prod", "production", "staging"})


def _check_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise PydanticCustomError("retention", "not a CloudWatch Logs retention period")
    return value


# A log retention in days, limited to the periods CloudWatch Logs offers.
RetentionDays = Annotated[int, AfterValidator(_check_retention)]
_RETENTION_ALLOWED = "a CloudWatch Logs retention period: " + ", ".join(map(str, LOG_RETENTION_DAYS))


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one printable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _allowed(text: str) -> dict[str, Any]:
    """Attach the human description of the allowed values to a field, used in error lines."""
    return {"json_schema_extra": {"allowed": text}}


@functools.lru_cache(maxsize=1)
def aws_regions() -> Mapping[str, str]:
    """Region name -> partition, read offline from botocore's bundled endpoint data."""
    import botocore.loaders  # local import: only region validation needs botocore

    data = botocore.loaders.create_loader().load_data("endpoints")
    return {region: partition["partition"] for partition in data["partitions"] for region in partition["regions"]}


class _Strict(BaseModel):
    """Base model: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _combination(problems: list[tuple[str, Any, str]]) -> None:
    """Raise one error carrying every cross-field problem found (field, value, allowed)."""
    if problems:
        raise PydanticCustomError(
            "combination",
            "impossible combination",
            {"problems": [list(p) for p in problems]},
        )


class Tags(_Strict):
    """Cost-allocation tags put on every resource (project and environment are added too)."""

    owner: str = Field(pattern=_EMAIL, **_allowed("an e-mail address of the owning team"))
    cost_center: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9 _.:/=+@-]{1,128}$",
        **_allowed("1-128 characters valid in an AWS tag value"),
    )


class NetworkConfig(_Strict):
    """The VPC every workload runs in."""

    cidr: str = Field(
        default="10.40.0.0/16",
        **_allowed("a private (RFC 1918) IPv4 network in CIDR notation with a prefix from /16 to /24"),
    )
    max_azs: int = Field(default=2, ge=1, le=6, **_allowed("an integer from 1 to 6"))
    egress: Literal["isolated", "controlled"] = Field(
        default="isolated",
        **_allowed("'isolated' (no internet path) or 'controlled' (NAT gateway egress)"),
    )
    nat_gateways: int | None = Field(
        default=None, ge=1, le=6, **_allowed("an integer from 1 to 6, only with egress 'controlled'")
    )
    flow_logs_retention_days: RetentionDays = Field(default=365, **_allowed(_RETENTION_ALLOWED))

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise PydanticCustomError("cidr", "not an IPv4 network") from exc
        if not 16 <= network.prefixlen <= 24:
            raise PydanticCustomError("cidr", "prefix out of range")
        if not network.is_private:
            raise PydanticCustomError("cidr", "not a private range")
        return str(network)

    @model_validator(mode="after")
    def _combinations(self) -> NetworkConfig:
        problems: list[tuple[str, Any, str]] = []
        if self.egress == "isolated" and self.nat_gateways is not None:
            problems.append(
                ("nat_gateways", self.nat_gateways, "only with egress 'controlled'; remove it for 'isolated'")
            )
        if self.nat_gateways is not None and self.nat_gateways > self.max_azs:
            problems.append(("nat_gateways", self.nat_gateways, f"at most max_azs ({self.max_azs}), one per AZ"))
        # One isolated subnet per AZ (plus a public one per AZ for controlled egress) must fit
        # into the VPC at /26 or larger: enough addresses for endpoint ENIs and job instances.
        subnets = self.max_azs * (2 if self.egress == "controlled" else 1)
        prefix = ipaddress.IPv4Network(self.cidr).prefixlen + math.ceil(math.log2(max(subnets, 1)))
        if prefix > 26:
            problems.append(("cidr", self.cidr, f"a network large enough for {subnets} subnets of /26 or larger"))
        _combination(problems)
        return self

    @property
    def nat_gateway_count(self) -> int:
        """NAT gateways to build: none when isolated, one per AZ unless configured."""
        if self.egress == "isolated":
            return 0
        return self.nat_gateways or self.max_azs


class KmsConfig(_Strict):
    """Customer-managed keys (data lake, ML artifacts, logs)."""

    pending_window_days: int = Field(default=30, ge=7, le=30, **_allowed("an integer from 7 to 30"))


class CloudTrailConfig(_Strict):
    """The platform's audit trail."""

    enabled: bool = Field(default=True, **_allowed("true or false"))
    multi_region: bool = Field(default=True, **_allowed("true or false"))
    lake_data_events: bool = Field(default=True, **_allowed("true or false (S3 data events on the data lake buckets)"))
    log_retention_days: RetentionDays = Field(default=365, **_allowed(_RETENTION_ALLOWED))


class BudgetConfig(_Strict):
    """A monthly cost budget with e-mail/SNS alerts at thresholds of actual spend."""

    monthly_limit_usd: float = Field(gt=0, le=10_000_000, **_allowed("a number of US dollars above 0"))
    alert_thresholds_percent: list[int] = Field(
        default_factory=lambda: [50, 80, 100],
        min_length=1,
        max_length=5,
        **_allowed("1 to 5 distinct integers from 1 to 1000 (percent of the limit)"),
    )

    @field_validator("alert_thresholds_percent")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value) or any(not 1 <= v <= 1000 for v in value):
            raise PydanticCustomError("thresholds", "bad thresholds")
        return sorted(value)


class SecurityConfig(_Strict):
    """Keys, audit trail, alerts, budget and detective controls."""

    kms: KmsConfig = Field(default_factory=KmsConfig)
    cloudtrail: CloudTrailConfig = Field(default_factory=CloudTrailConfig)
    alert_emails: list[str] = Field(
        default_factory=list, **_allowed("a list of e-mail addresses subscribed to the alert topic")
    )
    function_log_retention_days: RetentionDays = Field(
        default=365, **_allowed("the platform Lambdas' log retention: " + _RETENTION_ALLOWED)
    )
    budget: BudgetConfig | None = Field(default=None, **_allowed("a budget section or null"))
    config_rules: bool = Field(
        default=False,
        **_allowed("true or false (AWS Config managed rules for SageMaker; needs a recorder)"),
    )

    @field_validator("alert_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not re.match(_EMAIL, email):
                raise PydanticCustomError("email", "not an e-mail address")
        return value


# ---------------------------------------------------------------------------------------------
# Data lake

ZONES = ("raw", "curated", "analytics")
COLUMN_TYPES = ("string", "int", "bigint", "double", "float", "boolean", "date", "timestamp")
NUMERIC_TYPES = frozenset({"int", "bigint", "double", "float"})
# The ETL job adds this partition column to the curated table; no dataset column may take it.
PARTITION_COLUMN = "ingest_date"
_COLUMN = r"^[a-z_][a-z0-9_]{0,127}$"
_ROLE = r"^(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
_ROLE_ALLOWED = "IAM role names of this account, with their path if any (e.g. 'DataScientist')"


def _check_role(value: str) -> str:
    # A name, not an ARN: the stack builds the ARN with the deploy-time partition and account.
    if not re.match(_ROLE, value) or value.startswith("arn:"):
        raise PydanticCustomError("role", "not a role name")
    return value


def _unique(cls: type, value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise PydanticCustomError("unique", "duplicate entries")
    return value


RoleName = Annotated[str, AfterValidator(_check_role)]
AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]


class LifecycleConfig(_Strict):
    """S3 lifecycle of one zone: storage-class transitions and expirations, in days."""

    infrequent_access_after_days: int | None = Field(
        default=None, ge=30, le=36500, **_allowed("30 to 36500 days (S3 Standard-IA needs 30 at least), or null")
    )
    glacier_after_days: int | None = Field(
        default=None, ge=1, le=36500, **_allowed("1 to 36500 days, or null (no Glacier transition)")
    )
    expire_after_days: int | None = Field(
        default=None, ge=1, le=36500, **_allowed("1 to 36500 days, or null (objects are kept)")
    )
    noncurrent_expire_after_days: int = Field(
        default=90, ge=1, le=36500, **_allowed("1 to 36500 days (old object versions are deleted after this)")
    )

    @model_validator(mode="after")
    def _order(self) -> LifecycleConfig:
        problems: list[tuple[str, Any, str]] = []
        ia, glacier, expire = self.infrequent_access_after_days, self.glacier_after_days, self.expire_after_days
        # S3 rejects a Glacier transition less than 30 days after the Standard-IA one.
        if ia is not None and glacier is not None and glacier < ia + 30:
            problems.append(("glacier_after_days", glacier, f"at least infrequent_access_after_days + 30 ({ia + 30})"))
        last = max((d for d in (ia, glacier) if d is not None), default=None)
        if expire is not None and last is not None and expire <= last:
            problems.append(("expire_after_days", expire, f"more than the last transition ({last} days)"))
        _combination(problems)
        return self


class ZonesConfig(_Strict):
    """Lifecycle of each data lake zone."""

    raw: LifecycleConfig = Field(
        default_factory=lambda: LifecycleConfig(infrequent_access_after_days=30, glacier_after_days=90)
    )
    curated: LifecycleConfig = Field(default_factory=lambda: LifecycleConfig(infrequent_access_after_days=90))
    analytics: LifecycleConfig = Field(default_factory=LifecycleConfig)
    artifacts: LifecycleConfig = Field(
        default_factory=lambda: LifecycleConfig(noncurrent_expire_after_days=30),
        **_allowed("the lifecycle of the ML artifacts bucket (pipeline outputs, models, baselines)"),
    )


class ColumnConfig(_Strict):
    """A column of the dataset's curated table."""

    name: str = Field(pattern=_COLUMN, **_allowed("lowercase letters, digits and '_', starting with a letter or '_'"))
    type: Literal["string", "int", "bigint", "double", "float", "boolean", "date", "timestamp"] = Field(
        **_allowed("one of " + ", ".join(COLUMN_TYPES))
    )
    sensitive: bool = Field(
        default=False, **_allowed("true or false (true tags the column sensitive: hidden from data scientists)")
    )
    description: str | None = Field(default=None, max_length=255, **_allowed("up to 255 characters"))


class QualityRule(_Strict):
    """One data quality check on a curated column, turned into DQDL at synth time."""

    check: Literal["completeness", "uniqueness", "range", "allowed_values"] = Field(
        **_allowed("one of completeness, uniqueness, range, allowed_values")
    )
    column: str = Field(**_allowed("a column of the dataset"))
    min: float | None = Field(
        default=None,
        **_allowed("a ratio from 0 to 1 for completeness/uniqueness, the lowest value for range"),
    )
    max: float | None = Field(default=None, **_allowed("the highest value, for range only"))
    values: list[str | int | float] | None = Field(
        default=None, min_length=1, max_length=100, **_allowed("1 to 100 allowed values, for allowed_values only")
    )

    @model_validator(mode="after")
    def _shape(self) -> QualityRule:
        problems: list[tuple[str, Any, str]] = []
        if self.check in ("completeness", "uniqueness"):
            if self.min is None or not 0 < self.min <= 1:
                problems.append(("min", self.min, f"a ratio above 0 and at most 1 for {self.check}"))
            if self.max is not None or self.values is not None:
                field = "max" if self.max is not None else "values"
                problems.append((field, getattr(self, field), f"nothing for {self.check}; use min"))
        elif self.check == "range":
            if self.min is None and self.max is None:
                problems.append(("min", None, "min, max or both for range"))
            elif self.min is not None and self.max is not None and self.min > self.max:
                problems.append(("max", self.max, f"at least min ({self.min:g})"))
            if self.values is not None:
                problems.append(("values", self.values, "nothing for range; use min and max"))
        else:
            if self.values is None:
                problems.append(("values", None, "a list of allowed values for allowed_values"))
            elif any(isinstance(v, str) and not re.fullmatch(r"[^\x00-\x1f\"\\]{1,256}", v) for v in self.values):
                problems.append(("values", self.values, "texts of 1-256 characters without quotes, '\\' or newlines"))
            if self.min is not None or self.max is not None:
                field = "min" if self.min is not None else "max"
                problems.append((field, getattr(self, field), "nothing for allowed_values; use values"))
        _combination(problems)
        return self


class DatasetConfig(_Strict):
    """The dataset the lake ingests: raw files in, a typed and checked curated table out."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        **_allowed("1-63 lowercase letters, digits and '_', starting with a letter (a Glue table name)"),
    )
    raw_format: Literal["csv", "json", "parquet"] = Field(default="csv", **_allowed("csv, json or parquet"))
    columns: list[ColumnConfig] = Field(min_length=1, max_length=500, **_allowed("1 to 500 columns"))
    key_columns: list[str] = Field(
        min_length=1, max_length=10, **_allowed("1 to 10 columns of the dataset that identify a record")
    )
    quality_rules: list[QualityRule] = Field(
        default_factory=list, max_length=100, **_allowed("up to 100 data quality rules")
    )
    min_row_count: int = Field(default=1, ge=0, **_allowed("an integer of 0 or more (rows expected per run)"))

    @model_validator(mode="after")
    def _references(self) -> DatasetConfig:
        problems: list[tuple[str, Any, str]] = []
        types = {c.name: c.type for c in self.columns}
        names = [c.name for c in self.columns]
        known = ", ".join(names)
        for i, column in enumerate(self.columns):
            if names.count(column.name) > 1 and names.index(column.name) != i:
                problems.append((f"columns[{i}].name", column.name, "a name not used by another column"))
            if column.name == PARTITION_COLUMN:
                problems.append((f"columns[{i}].name", column.name, f"any name but '{PARTITION_COLUMN}' (reserved)"))
        for i, key in enumerate(self.key_columns):
            if key not in types:
                problems.append((f"key_columns[{i}]", key, f"a column of the dataset: {known}"))
        for i, rule in enumerate(self.quality_rules):
            where = f"quality_rules[{i}]"
            if rule.column not in types:
                problems.append((f"{where}.column", rule.column, f"a column of the dataset: {known}"))
                continue
            kind = types[rule.column]
            if rule.check == "range" and kind not in NUMERIC_TYPES:
                problems.append((f"{where}.column", rule.column, f"a numeric column for range (it is {kind})"))
            if rule.check == "allowed_values" and rule.values is not None:
                numeric = kind in NUMERIC_TYPES
                bad = [v for v in rule.values if isinstance(v, str) == numeric]
                if kind not in (*NUMERIC_TYPES, "string"):
                    problems.append((f"{where}.column", rule.column, f"a string or numeric column (it is {kind})"))
                elif bad:
                    what = "numbers" if numeric else "strings"
                    problems.append((f"{where}.values", rule.values, f"{what} only, for {kind} column {rule.column}"))
        _combination(problems)
        return self

    @property
    def sensitive_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.sensitive]


class PersonaConfig(_Strict):
    """IAM roles of one persona; Lake Formation grants come from the persona's kind."""

    roles: list[RoleName] = Field(min_length=1, max_length=20, **_allowed(_ROLE_ALLOWED))
    attach_policy: bool = Field(
        default=True,
        **_allowed(
            "true or false (false for roles the stack must not modify, e.g. IAM Identity Center roles: "
            "attach the exported managed policy yourself)"
        ),
    )

    _unique_roles = field_validator("roles")(_unique)


class PersonasConfig(_Strict):
    """Who may use the lake: engineers write raw and curated; scientists read curated and analytics."""

    data_engineer: PersonaConfig | None = Field(default=None, **_allowed("a persona section or null"))
    data_scientist: PersonaConfig | None = Field(default=None, **_allowed("a persona section or null"))


class SharingConfig(_Strict):
    """Lake Formation cross-account share of one database (read-only, sensitive columns excluded)."""

    consumer_accounts: list[AccountId] = Field(
        min_length=1, max_length=20, **_allowed("1 to 20 distinct AWS account ids of 12 digits each")
    )
    database: Literal["curated", "analytics"] = Field(default="curated", **_allowed("curated or analytics"))

    _unique_accounts = field_validator("consumer_accounts")(_unique)


class PeerEnvironment(_Strict):
    """Another environment of the same project, in another account of the same region."""

    account: AccountId = Field(**_allowed("12 digits"))
    environment: str = Field(
        pattern=_NAME, **_allowed("the other environment's name (its resources are named <project>-<environment>-*)")
    )


class SharedFrom(PeerEnvironment):
    """A database another environment shares with this one through Lake Formation (read-only).

    For the curated zone the share is the dataset's table without its sensitive columns, so the
    grants here name that table and those columns (a grant may pass on no more than was shared).
    """

    database: Literal["curated", "analytics"] = Field(default="curated", **_allowed("curated or analytics"))
    table: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{1,255}$",
        **_allowed("the shared dataset's table name (with database curated), else null"),
    )
    excluded_columns: list[str] = Field(
        default_factory=list,
        max_length=100,
        **_allowed("the columns the producer withholds (its sensitive columns)"),
    )

    @model_validator(mode="after")
    def _table(self) -> SharedFrom:
        if (self.database == "curated") != (self.table is not None):
            expected = "the shared dataset's table name" if self.database == "curated" else "null with analytics"
            _combination([("table", self.table, expected)])
        return self


class AthenaConfig(_Strict):
    """The lake's Athena workgroup."""

    bytes_scanned_cutoff_mb: int = Field(
        default=10_240,
        ge=10,
        le=100_000_000,
        **_allowed("10 to 100000000 MB scanned per query (Athena's minimum is 10)"),
    )
    results_retention_days: int = Field(
        default=30, ge=1, le=3650, **_allowed("1 to 3650 days (query results are deleted after this)")
    )


class EtlConfig(_Strict):
    """The Glue Spark job that turns raw files into the curated table."""

    glue_version: Literal["4.0", "5.0"] = Field(default="5.0", **_allowed("'4.0' or '5.0'"))
    worker_type: Literal["G.1X", "G.2X", "G.4X", "G.8X"] = Field(default="G.1X", **_allowed("G.1X, G.2X, G.4X or G.8X"))
    workers: int = Field(default=2, ge=2, le=299, **_allowed("2 to 299 workers"))
    timeout_minutes: int = Field(default=60, ge=1, le=2880, **_allowed("1 to 2880 minutes"))
    new_data_batch_size: int | None = Field(
        default=100,
        ge=1,
        le=100,
        **_allowed("1 to 100 new raw objects that start a run (batched), or null: runs only by schedule or by hand"),
    )
    new_data_batch_window_seconds: int = Field(
        default=900, ge=1, le=900, **_allowed("1 to 900 seconds a batch of new objects waits to fill up")
    )
    schedule: str | None = Field(
        default=None,
        pattern=r"^cron\([^()]+\)$",
        **_allowed("a Glue cron expression such as 'cron(0 2 * * ? *)', or null (run on demand/by events)"),
    )


class DataLakeConfig(_Strict):
    """Zones, catalog, governance, quality and query settings of the data lake."""

    admins: list[RoleName] = Field(
        default_factory=list,
        max_length=20,
        **_allowed(_ROLE_ALLOWED + "; the CDK deployment role is always added"),
    )
    zones: ZonesConfig = Field(default_factory=ZonesConfig)
    dataset: DatasetConfig
    personas: PersonasConfig = Field(default_factory=PersonasConfig)
    sharing: SharingConfig | None = Field(default=None, **_allowed("a sharing section or null"))
    shared_from: SharedFrom | None = Field(
        default=None,
        **_allowed("the account and environment whose shared database this lake links to (read-only), or null"),
    )
    athena: AthenaConfig = Field(default_factory=AthenaConfig)
    etl: EtlConfig = Field(default_factory=EtlConfig)

    _unique_admins = field_validator("admins")(_unique)


# ---------------------------------------------------------------------------------------------
# Training

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


def _instance(role: str) -> Any:
    """Validator: an instance type SageMaker accepts for `role` and the catalog knows."""

    def check(value: str) -> str:
        from infra.catalog import instances  # local import: reads botocore's SageMaker model on first use

        try:
            instances.validate(value, instances.Role(role))
        except instances.InstanceTypeError as exc:
            raise PydanticCustomError("instance", "{reason}", {"reason": str(exc)}) from None
        return value

    return AfterValidator(check)


TrainingInstance = Annotated[str, _instance("training")]
ProcessingInstance = Annotated[str, _instance("processing")]
RealtimeInstance = Annotated[str, _instance("realtime")]


class SpotConfig(_Strict):
    """Managed spot training: cheaper, interruptible, resumed from checkpoints."""

    enabled: bool = Field(default=False, **_allowed("true or false"))
    max_wait_minutes: int | None = Field(
        default=None, ge=1, le=MAX_TRAINING_MINUTES, **_allowed("minutes to wait for spot capacity plus run time")
    )
    checkpoints: bool = Field(
        default=True, **_allowed("true or false (checkpoints in the artifacts bucket, resumed after an interruption)")
    )


class TuningRange(_Strict):
    """The search range of one hyperparameter."""

    min: float | None = Field(default=None, **_allowed("a number (continuous/integer parameters)"))
    max: float | None = Field(default=None, **_allowed("a number at least min"))
    values: list[str | int | float] | None = Field(
        default=None, min_length=1, max_length=30, **_allowed("1 to 30 values (categorical)")
    )
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = Field(
        default="Auto", **_allowed("Auto, Linear, Logarithmic or ReverseLogarithmic")
    )

    @model_validator(mode="after")
    def _shape(self) -> TuningRange:
        problems: list[tuple[str, Any, str]] = []
        if self.values is None and (self.min is None or self.max is None):
            problems.append(("min" if self.min is None else "max", None, "min and max, or values"))
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append(("max", self.max, f"at least min ({self.min:g})"))
        if self.scaling == "Logarithmic" and self.min is not None and self.min <= 0:
            problems.append(("min", self.min, "above 0 with Logarithmic scaling"))
        _combination(problems)
        return self


class TuningConfig(_Strict):
    """Hyperparameter tuning: a tuning step in place of the single training step."""

    strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"] = Field(
        default="Bayesian", **_allowed("Bayesian, Random, Grid or Hyperband")
    )
    objective_metric: str = Field(
        default="validation:auc", **_allowed("a metric the training script reports: " + ", ".join(TRAINING_METRICS))
    )
    objective: Literal["Maximize", "Minimize"] = Field(default="Maximize", **_allowed("Maximize or Minimize"))
    max_jobs: int = Field(default=10, ge=1, le=500, **_allowed("1 to 500 training jobs"))
    max_parallel_jobs: int = Field(default=2, ge=1, le=100, **_allowed("1 to 100 parallel jobs, at most max_jobs"))
    early_stopping: Literal["Auto", "Off"] = Field(default="Auto", **_allowed("Auto or Off"))
    ranges: dict[str, TuningRange] = Field(
        min_length=1, **_allowed("ranges of the script's hyperparameters: " + ", ".join(TRAINING_HYPERPARAMETERS))
    )

    @model_validator(mode="after")
    def _combinations(self) -> TuningConfig:
        problems: list[tuple[str, Any, str]] = []
        if self.objective_metric not in TRAINING_METRICS:
            problems.append(("objective_metric", self.objective_metric, "one of " + ", ".join(TRAINING_METRICS)))
        if self.max_parallel_jobs > self.max_jobs:
            problems.append(("max_parallel_jobs", self.max_parallel_jobs, f"at most max_jobs ({self.max_jobs})"))
        if self.strategy == "Hyperband" and self.early_stopping != "Off":
            problems.append(("early_stopping", self.early_stopping, "Off with Hyperband (it stops jobs itself)"))
        for name, spec in self.ranges.items():
            if name not in TRAINING_HYPERPARAMETERS:
                allowed = ", ".join(TRAINING_HYPERPARAMETERS)
                problems.append((f"ranges.{name}", name, f"a hyperparameter of the training script: {allowed}"))
            elif self.strategy == "Grid" and spec.values is None:
                problems.append((f"ranges.{name}", "min/max", "values (Grid searches categorical values only)"))
        _combination(problems)
        return self


class QualityGate(_Strict):
    """The condition a model must meet on the test split to be registered."""

    metric: str = Field(default="auc", **_allowed("a metric the evaluation produces: " + ", ".join(EVALUATION_METRICS)))
    threshold: float = Field(default=0.7, ge=0, le=1, **_allowed("a number from 0 to 1"))

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in EVALUATION_METRICS:
            raise PydanticCustomError("metric", "not produced by the evaluation")
        return value


DEBUGGER_RULES = ("loss_not_decreasing", "overfit", "low_gpu_utilization", "cpu_bottleneck")


class DebuggerConfig(_Strict):
    """SageMaker Debugger built-in rules on the training job, and TensorBoard output."""

    rules: list[Literal["loss_not_decreasing", "overfit", "low_gpu_utilization", "cpu_bottleneck"]] = Field(
        default_factory=list, **_allowed("built-in rules: " + ", ".join(DEBUGGER_RULES))
    )
    tensorboard: bool = Field(default=False, **_allowed("true or false (TensorBoard files to the artifacts bucket)"))


class FeatureStoreConfig(_Strict):
    """A SageMaker feature group of the dataset: online store, and an offline store in the curated zone."""

    event_time_column: str = Field(**_allowed("a timestamp or date column of the dataset"))
    online: bool = Field(default=True, **_allowed("true or false (low-latency online store)"))


class MlflowConfig(_Strict):
    """A SageMaker managed MLflow tracking server, reached through IAM only."""

    size: Literal["Small", "Medium", "Large"] = Field(default="Small", **_allowed("Small, Medium or Large"))


class StudioConfig(_Strict):
    """A SageMaker Studio domain in VpcOnly mode, with a user profile per configured persona."""

    idle_shutdown_minutes: int = Field(default=60, ge=60, le=525600, **_allowed("60 to 525600 minutes"))


class BiasBaseline(_Strict):
    """A Clarify pre-training bias baseline: how the label is spread across two groups of one feature."""

    facet: str = Field(**_allowed("one of training.features"))
    threshold: float = Field(**_allowed("a number: rows above it form the group compared with the rest"))


class Explainability(_Strict):
    """SHAP values of the trained model on the first test rows, computed by the evaluate step (decision 21)."""

    rows: int = Field(default=50, ge=10, le=1000, **_allowed("10 to 1000 rows of the test split to explain"))


class TrainingConfig(_Strict):
    """The SageMaker pipeline: instances, spot, tuning, the quality gate and the model registry."""

    target: str = Field(**_allowed("the dataset column the model predicts (int or boolean, 0/1)"))
    features: list[str] = Field(
        min_length=1, max_length=500, **_allowed("numeric, non-sensitive columns of the dataset used as model inputs")
    )
    instance_type: TrainingInstance = Field(
        **_allowed("an ml.* type SageMaker accepts for training and the catalog knows (CPU, NVIDIA GPU or Trainium)")
    )
    instance_count: int = Field(default=1, ge=1, le=64, **_allowed("1 to 64 instances"))
    volume_size_gb: int = Field(default=30, ge=1, le=16384, **_allowed("1 to 16384 GB"))
    max_runtime_minutes: int = Field(default=120, ge=1, le=MAX_TRAINING_MINUTES, **_allowed("1 to 40320 minutes"))
    processing_instance_type: ProcessingInstance = Field(
        default="ml.m5.xlarge", **_allowed("an ml.* type SageMaker accepts for processing and the catalog knows")
    )
    hyperparameters: dict[str, int | float] = Field(
        default_factory=dict,
        **_allowed("values of the script's hyperparameters: " + ", ".join(TRAINING_HYPERPARAMETERS)),
    )
    spot: SpotConfig = Field(default_factory=SpotConfig)
    tuning: TuningConfig | None = Field(default=None, **_allowed("a tuning section or null (a single training job)"))
    quality_gate: QualityGate = Field(default_factory=QualityGate)
    debugger: DebuggerConfig = Field(default_factory=DebuggerConfig)
    bias_baseline: BiasBaseline | None = Field(
        default=None, **_allowed("a bias_baseline section (Clarify, registered with the model) or null")
    )
    explainability: Explainability | None = Field(
        default=None,
        **_allowed("an explainability section (SHAP values from the evaluate step, registered with the model) or null"),
    )
    feature_store: FeatureStoreConfig | None = Field(default=None, **_allowed("a feature_store section or null"))
    mlflow: MlflowConfig | None = Field(default=None, **_allowed("an mlflow section or null (no tracking server)"))
    studio: StudioConfig | None = Field(default=None, **_allowed("a studio section or null (no Studio domain)"))
    inference_instance_types: list[RealtimeInstance] = Field(
        default_factory=lambda: ["ml.m5.large"],
        min_length=1,
        max_length=10,
        **_allowed("instance types the registered model may be deployed on (real-time)"),
    )
    model_consumers: list[PeerEnvironment] = Field(
        default_factory=list,
        max_length=10,
        **_allowed("environments in other accounts that serve this registry's approved versions (at most 10)"),
    )

    @model_validator(mode="after")
    def _combinations(self) -> TrainingConfig:
        from infra.catalog import instances  # local import, as in the instance validators

        problems: list[tuple[str, Any, str]] = []
        for name in self.hyperparameters:
            if name not in TRAINING_HYPERPARAMETERS:
                allowed = ", ".join(TRAINING_HYPERPARAMETERS)
                problems.append(
                    (f"hyperparameters.{name}", name, f"a hyperparameter of the training script: {allowed}")
                )
        if self.spot.enabled:
            if not self.spot.checkpoints:
                problems.append(
                    ("spot.checkpoints", False, "true with spot (an interrupted job resumes only from checkpoints)")
                )
            wait = self.spot.max_wait_minutes
            if wait is None or wait < self.max_runtime_minutes:
                problems.append(
                    ("spot.max_wait_minutes", wait, f"at least max_runtime_minutes ({self.max_runtime_minutes})")
                )
        elif self.spot.max_wait_minutes is not None:
            problems.append(("spot.max_wait_minutes", self.spot.max_wait_minutes, "only with spot.enabled"))
        if self.bias_baseline is not None and self.bias_baseline.facet not in self.features:
            facet = self.bias_baseline.facet
            problems.append(("bias_baseline.facet", facet, "one of training.features: " + ", ".join(self.features)))
        if self.tuning is not None and (self.debugger.rules or self.debugger.tensorboard):
            problems.append(
                (
                    "debugger",
                    "rules/tensorboard",
                    "none with tuning: tuning jobs take no Debugger or TensorBoard settings",
                )
            )
        # A Neuron-compiled model runs only on Inferentia2: the registered types are all inf2 or none.
        inferentia = [
            instances.get(n).accelerator == instances.Accelerator.INFERENTIA for n in self.inference_instance_types
        ]
        for i, name in enumerate(self.inference_instance_types):
            if inferentia[i] and not name.startswith("ml.inf2."):
                problems.append(
                    (f"inference_instance_types[{i}]", name, "ml.inf2.* (the pipeline compiles for Neuron 2)")
                )
            elif any(inferentia) and not inferentia[i]:
                problems.append(
                    (
                        f"inference_instance_types[{i}]",
                        name,
                        "Inferentia2 types only, like the others: the compiled model runs only there",
                    )
                )
        _combination(problems)
        return self

    @property
    def runtime(self) -> str:
        from infra.catalog import instances

        return instances.get(self.instance_type).runtime.value

    @property
    def serves_on_inferentia(self) -> bool:
        return all(name.startswith("ml.inf2.") for name in self.inference_instance_types)


_VARIANT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class VariantConfig(_Strict):
    """One production variant; every variant serves the promoted model version (A/B of hardware or weight)."""

    name: str = Field(default="AllTraffic", pattern=_VARIANT_NAME, **_allowed("1-63 letters, digits and '-'"))
    instance_type: RealtimeInstance = Field(
        **_allowed("an ml.* type SageMaker accepts for real-time inference and the catalog knows")
    )
    initial_instance_count: int = Field(default=1, ge=1, le=100, **_allowed("1 to 100 instances"))
    weight: float = Field(default=1.0, gt=0, le=1, **_allowed("a traffic weight above 0, at most 1"))


class DataCaptureSettings(_Strict):
    """Request and response capture to the artifacts bucket (KMS), which Model Monitor reads."""

    enabled: bool = Field(default=True, **_allowed("true or false"))
    sampling_percentage: int = Field(default=20, ge=1, le=100, **_allowed("1 to 100 (percent of requests)"))


class AutoscalingSettings(_Strict):
    """Target tracking per variant; async endpoints scale on their queue and may scale to zero."""

    min_instances: int = Field(default=1, ge=0, le=100, **_allowed("0 to 100 (0 only for async endpoints)"))
    max_instances: int = Field(default=2, ge=1, le=100, **_allowed("1 to 100, at least min_instances"))
    invocations_per_instance: int = Field(
        default=100, ge=1, le=100000, **_allowed("1 to 100000 invocations per instance per minute")
    )
    gpu_utilization_percent: int | None = Field(
        default=None, ge=1, le=100, **_allowed("1 to 100, or null; only when every variant runs on NVIDIA GPUs")
    )
    backlog_per_instance: int = Field(default=5, ge=1, le=1000, **_allowed("1 to 1000 queued requests (async)"))
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600, **_allowed("0 to 3600 seconds"))
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600, **_allowed("0 to 3600 seconds"))
    scale_in_protection: bool = Field(
        default=False, **_allowed("true or false (true: the policy only scales out; scale in by hand)")
    )


class DeploymentSettings(_Strict):
    """How a new model version replaces the old: SageMaker deployment guardrails with alarm rollback."""

    strategy: Literal["canary", "linear", "all_at_once", "rolling"] = Field(
        default="canary", **_allowed("canary, linear, all_at_once (blue/green) or rolling")
    )
    canary_percent: int = Field(default=10, ge=1, le=50, **_allowed("1 to 50 percent of capacity"))
    linear_step_percent: int = Field(default=25, ge=5, le=50, **_allowed("5 to 50 percent of capacity per step"))
    rolling_batch_percent: int = Field(default=25, ge=5, le=50, **_allowed("5 to 50 percent of capacity per batch"))
    wait_minutes: int = Field(default=5, ge=0, le=60, **_allowed("0 to 60 minutes between traffic steps"))
    baking_minutes: int = Field(default=10, ge=0, le=60, **_allowed("0 to 60 minutes before the old fleet goes"))
    max_error_rate_percent: float = Field(
        default=1.0, gt=0, le=100, **_allowed("a 5XX rate above 0, at most 100 percent")
    )
    max_latency_ms: int = Field(default=1000, ge=1, le=3600000, **_allowed("1 to 3600000 milliseconds"))


class ServerlessSettings(_Strict):
    """A serverless endpoint: CPU only, and outside the VPC (the exception must be stated)."""

    memory_mb: int = Field(default=2048, **_allowed("1024, 2048, 3072, 4096, 5120 or 6144"))
    max_concurrency: int = Field(default=20, ge=1, le=200, **_allowed("1 to 200"))
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200, **_allowed("1 to max_concurrency, or null"))
    isolation_exception: str = Field(
        min_length=20,
        max_length=500,
        **_allowed(
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


SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)


class AsyncSettings(_Strict):
    """Asynchronous inference: requests queue, results land in the artifacts bucket (KMS)."""

    max_concurrent_invocations_per_instance: int = Field(default=4, ge=1, le=1000, **_allowed("1 to 1000"))
    notifications: bool = Field(default=True, **_allowed("true or false (SNS topics for success and error)"))


class ServingConfig(_Strict):
    """The endpoint that serves the approved model version, and how new versions reach it."""

    mode: Literal["realtime", "serverless", "async"] = Field(
        default="realtime", **_allowed("realtime, serverless or async")
    )
    variants: list[VariantConfig] = Field(
        default_factory=list, max_length=10, **_allowed("1 to 10 variants (none for serverless)")
    )
    data_capture: DataCaptureSettings = Field(default_factory=DataCaptureSettings)
    autoscaling: AutoscalingSettings | None = Field(
        default=None, **_allowed("an autoscaling section or null (fixed instance counts)")
    )
    deployment: DeploymentSettings = Field(default_factory=DeploymentSettings)
    serverless: ServerlessSettings | None = Field(
        default=None, **_allowed("a serverless section with mode serverless, else null")
    )
    async_inference: AsyncSettings | None = Field(
        default=None, **_allowed("an async_inference section with mode async, else null")
    )
    model_source: PeerEnvironment | None = Field(
        default=None,
        **_allowed(
            "the account and environment whose model registry this endpoint serves from (training runs there; "
            "the training section describes that model), or null (this environment's own registry)"
        ),
    )

    @model_validator(mode="after")
    def _combinations(self) -> ServingConfig:
        from infra.catalog import instances

        problems: list[tuple[str, Any, str]] = []
        if self.mode == "serverless":
            if self.serverless is None:
                problems.append(("serverless", None, "a serverless section with mode serverless"))
            if self.variants:
                problems.append(
                    ("variants", f"{len(self.variants)} variant(s)", "none with mode serverless (one implicit variant)")
                )
            if self.data_capture.enabled:
                problems.append(
                    ("data_capture.enabled", True, "false with mode serverless (serverless endpoints capture no data)")
                )
            if self.autoscaling is not None:
                problems.append(("autoscaling", "a section", "null with mode serverless (SageMaker scales it)"))
            if self.deployment.strategy != "all_at_once":
                problems.append(
                    (
                        "deployment.strategy",
                        self.deployment.strategy,
                        "all_at_once with mode serverless: no rolling deployments for serverless endpoints, and "
                        "canary and linear shifting are sized in instances, which a serverless endpoint has none of",
                    )
                )
            limit = self.serverless.max_concurrency if self.serverless else 200
            provisioned = self.serverless.provisioned_concurrency if self.serverless else None
            if provisioned is not None and provisioned > limit:
                problems.append(
                    ("serverless.provisioned_concurrency", provisioned, f"at most max_concurrency ({limit})")
                )
        else:
            if not self.variants:
                problems.append(("variants", [], f"at least one variant with mode {self.mode}"))
            if self.serverless is not None:
                problems.append(("serverless", "a section", f"null with mode {self.mode}"))
        if self.mode == "async" and self.async_inference is None:
            problems.append(("async_inference", None, "an async_inference section with mode async"))
        if self.mode != "async" and self.async_inference is not None:
            problems.append(("async_inference", "a section", f"null with mode {self.mode}"))
        names = [v.name for v in self.variants]
        for i, name in enumerate(names):
            if name in names[:i]:
                problems.append((f"variants[{i}].name", name, "a name no other variant has"))
        if len(self.variants) > 1 and self.deployment.strategy == "rolling":
            problems.append(
                (
                    "deployment.strategy",
                    "rolling",
                    "canary, linear or all_at_once: no rolling deployments for multi-variant endpoints",
                )
            )
        for i, variant in enumerate(self.variants):
            if self.deployment.strategy in ("canary", "linear") and variant.initial_instance_count < 2:
                problems.append(
                    (
                        "deployment.strategy",
                        self.deployment.strategy,
                        f"all_at_once, or 2+ instances in variants[{i}]: a canary or linear step is at most half "
                        "of the new fleet, which one instance cannot split",
                    )
                )
            if variant.instance_type.startswith("ml.inf1.") and self.deployment.strategy in ("canary", "linear"):
                problems.append(
                    (
                        "deployment.strategy",
                        self.deployment.strategy,
                        f"all_at_once: variants[{i}] runs on {variant.instance_type}, and inf1 endpoints fall "
                        "back to all-at-once traffic shifting",
                    )
                )
        scaling = self.autoscaling
        if scaling is not None:
            if scaling.min_instances > scaling.max_instances:
                problems.append(
                    (
                        "autoscaling.min_instances",
                        scaling.min_instances,
                        f"at most max_instances ({scaling.max_instances})",
                    )
                )
            if scaling.min_instances == 0 and self.mode != "async":
                problems.append(("autoscaling.min_instances", 0, "at least 1 (only async endpoints scale to zero)"))
            gpu = [instances.get(v.instance_type).accelerator == instances.Accelerator.NVIDIA for v in self.variants]
            if scaling.gpu_utilization_percent is not None and not (gpu and all(gpu)):
                problems.append(
                    (
                        "autoscaling.gpu_utilization_percent",
                        scaling.gpu_utilization_percent,
                        "null unless every variant runs on an NVIDIA GPU type",
                    )
                )
        _combination(problems)
        return self

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants] or ["AllTraffic"]


# Model Monitor runs hourly or daily; these are the cron forms it accepts for each.
MONITOR_SCHEDULES = {"hourly": "cron(0 * ? * * *)", "daily": "cron(0 0 ? * * *)"}
# EventBridge schedule expressions: rate(...) or a six-field cron(...).
_SCHEDULE_EXPRESSION = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$"


class DataQualityMonitor(_Strict):
    """Feature drift of captured requests against the promoted version's data baseline."""

    schedule: Literal["hourly", "daily"] = Field(default="hourly", **_allowed("hourly or daily"))
    drift_threshold: float = Field(
        default=0.2, gt=0, le=1, **_allowed("a baseline drift distance above 0, at most 1, per feature")
    )


class ModelQualityMonitor(_Strict):
    """Model quality of captured predictions against ground truth labels, which someone must upload."""

    schedule: Literal["hourly", "daily"] = Field(default="daily", **_allowed("hourly or daily"))
    metric: Literal["auc", "accuracy", "f1", "precision", "recall"] = Field(
        default="auc", **_allowed("auc, accuracy, f1, precision or recall")
    )
    min_value: float = Field(default=0.7, gt=0, le=1, **_allowed("a value above 0, at most 1"))


class BiasMonitor(_Strict):
    """Post-training bias of the served model across training.bias_baseline's facet, on labelled traffic."""

    schedule: Literal["hourly", "daily"] = Field(default="daily", **_allowed("hourly or daily"))


class ExplainabilityMonitor(_Strict):
    """Feature attribution drift (Clarify SHAP) of the served model against its registered SHAP baseline.

    Clarify computes SHAP values on a shadow endpoint it starts from the served model, through the
    SageMaker API: that job cannot run with network isolation (it stays in the private subnets, with
    no internet path), so the config must say why that is accepted.
    """

    schedule: Literal["hourly", "daily"] = Field(default="daily", **_allowed("hourly or daily"))
    isolation_exception: str = Field(
        min_length=20,
        max_length=500,
        **_allowed("why the explainability job may run without network isolation (20 to 500 characters)"),
    )
    instance_type: RealtimeInstance | None = Field(
        default=None,
        **_allowed("the shadow endpoint's instance type (one of training.inference_instance_types), or null "
                   "(the first variant's)"),
    )  # fmt: skip


class EndpointAlarms(_Strict):
    """Endpoint health alarms, on top of the rollback alarms of the deployment."""

    max_cpu_percent: int = Field(default=90, ge=1, le=100, **_allowed("1 to 100 (percent per vCPU, averaged)"))
    max_memory_percent: int = Field(default=90, ge=1, le=100, **_allowed("1 to 100"))
    max_gpu_percent: int = Field(default=95, ge=1, le=100, **_allowed("1 to 100 (percent per GPU)"))
    min_invocations_per_hour: int | None = Field(
        default=None, ge=1, **_allowed("a positive number, or null (no alarm on missing traffic)")
    )


class MonitoringConfig(_Strict):
    """Model Monitor schedules, alarms and a dashboard for the endpoint."""

    instance_type: ProcessingInstance = Field(
        default="ml.m5.xlarge", **_allowed("an ml.* type SageMaker accepts for processing and the catalog knows")
    )
    data_quality: DataQualityMonitor | None = Field(
        default_factory=DataQualityMonitor, **_allowed("a data_quality section or null")
    )
    model_quality: ModelQualityMonitor | None = Field(default=None, **_allowed("a model_quality section or null"))
    bias: BiasMonitor | None = Field(
        default=None, **_allowed("a bias section (needs training.bias_baseline and ground truth) or null")
    )
    explainability: ExplainabilityMonitor | None = Field(
        default=None,
        **_allowed("an explainability section (needs training.explainability and a stated isolation_exception) "
                   "or null"),
    )  # fmt: skip
    endpoint: EndpointAlarms = Field(default_factory=EndpointAlarms)
    reviewer_emails: list[str] = Field(
        default_factory=list, **_allowed("e-mail addresses told when a model version waits for approval")
    )

    @field_validator("reviewer_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        if any(not re.match(_EMAIL, email) for email in value):
            raise PydanticCustomError("email", "not an e-mail address")
        return value


class NewDataTrigger(_Strict):
    """Retrain once this much new data has landed in the raw zone since the last start."""

    min_objects: int = Field(default=100, ge=0, le=1_000_000, **_allowed("0 to 1000000 objects (0: not used)"))
    min_bytes: int = Field(default=0, ge=0, **_allowed("0 or more bytes (0: not used)"))

    @model_validator(mode="after")
    def _one(self) -> NewDataTrigger:
        if self.min_objects == 0 and self.min_bytes == 0:
            _combination([("min_objects", 0, "above 0, or min_bytes above 0 (one threshold at least)")])
        return self


class RetrainingConfig(_Strict):
    """What starts the training pipeline again, and how often at most."""

    cooldown_minutes: int = Field(
        default=360, ge=0, le=43200, **_allowed("0 to 43200 minutes between two pipeline starts")
    )
    on_drift: bool = Field(default=True, **_allowed("true or false (needs monitoring.data_quality)"))
    schedule: str | None = Field(
        default=None,
        pattern=_SCHEDULE_EXPRESSION,
        **_allowed("an EventBridge schedule such as cron(0 3 ? * SUN *) or rate(7 days), or null"),
    )
    new_data: NewDataTrigger | None = Field(default=None, **_allowed("a new_data section or null"))
    manual: bool = Field(default=True, **_allowed("true or false (events with detail-type Retraining Requested)"))


class PlatformConfig(_Strict):
    """Everything one environment of the platform is built from."""

    project: str = Field(pattern=_NAME, **_allowed(_NAME_ALLOWED))
    environment: str = Field(pattern=_NAME, **_allowed(_NAME_ALLOWED))
    account: str | None = Field(
        default=None, pattern=r"^\d{12}$", **_allowed("12 digits, or omit for an environment-agnostic app")
    )
    region: str | None = Field(
        default=None, **_allowed("an AWS region name such as eu-west-1, or omit for an environment-agnostic app")
    )
    destroy_data_on_delete: bool = Field(
        default=False,
        **_allowed("true or false (true deletes buckets, keys and logs with the stack: throwaway environments only)"),
    )
    tags: Tags
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    data_lake: DataLakeConfig = Field(**_allowed("a data_lake section with at least a dataset"))
    training: TrainingConfig | None = Field(default=None, **_allowed("a training section, or null (no Training stack)"))
    serving: ServingConfig | None = Field(
        default=None, **_allowed("a serving section, or null (no Serving stack: no endpoint)")
    )
    monitoring: MonitoringConfig | None = Field(
        default=None, **_allowed("a monitoring section, or null (no Monitoring stack)")
    )
    retraining: RetrainingConfig | None = Field(
        default=None, **_allowed("a retraining section, or null (no Retraining stack)")
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value not in aws_regions():
            raise PydanticCustomError("region", "unknown region")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> PlatformConfig:
        problems: list[tuple[str, Any, str]] = []
        if (self.account is None) != (self.region is None):
            field, value = ("region", None) if self.region is None else ("account", None)
            problems.append((field, value, "set account and region together, or neither"))
        if self.destroy_data_on_delete and self.environment in PROTECTED_ENVIRONMENTS:
            problems.append(
                (
                    "destroy_data_on_delete",
                    True,
                    f"false for environment '{self.environment}' "
                    f"(protected: {', '.join(sorted(PROTECTED_ENVIRONMENTS))})",
                )
            )
        if self.training is not None:
            columns = {c.name: c for c in self.data_lake.dataset.columns}
            target = columns.get(self.training.target)
            if target is None or target.type not in ("int", "bigint", "boolean"):
                problems.append(
                    ("training.target", self.training.target, "an int or boolean column of data_lake.dataset")
                )
            for i, name in enumerate(self.training.features):
                column = columns.get(name)
                if (
                    column is None
                    or column.type not in NUMERIC_TYPES
                    or column.sensitive
                    or name == self.training.target
                ):
                    problems.append(
                        (
                            f"training.features[{i}]",
                            name,
                            "a numeric, non-sensitive column of data_lake.dataset other than the target",
                        )
                    )
        if self.training is not None and self.training.feature_store is not None:
            event = self.training.feature_store.event_time_column
            column = {c.name: c for c in self.data_lake.dataset.columns}.get(event)
            if column is None or column.type not in ("timestamp", "date"):
                problems.append(
                    (
                        "training.feature_store.event_time_column",
                        event,
                        "a timestamp or date column of data_lake.dataset",
                    )
                )
        if (
            self.training is not None
            and self.training.studio is not None
            and not (self.data_lake.personas.data_engineer or self.data_lake.personas.data_scientist)
        ):
            problems.append(
                ("training.studio", "studio", "data_lake.personas with at least one persona (their profiles)")
            )
        if self.serving is not None:
            problems.extend(self._serving_problems())
        problems.extend(self._loop_problems())
        if self.data_lake.sharing and self.account in self.data_lake.sharing.consumer_accounts:
            problems.append(
                ("data_lake.sharing.consumer_accounts", self.account, "accounts other than this environment's own")
            )
        problems.extend(self._cross_account_problems())
        _combination(problems)
        return self

    def _explainability_problems(self) -> list[tuple[str, Any, str]]:
        """Clarify's shadow endpoint: a copy of the real-time model, in two availability zones."""
        explainability = self.monitoring.explainability if self.monitoring else None
        if explainability is None or self.serving is None:
            return []
        field = "monitoring.explainability"
        if self.training is None or self.training.explainability is None:
            return [(field, "a section", "null, or a training.explainability (the registered SHAP baseline)")]
        if self.serving.mode != "realtime":
            return [(field, "a section", f"null with serving.mode {self.serving.mode} (a real-time model only)")]
        problems: list[tuple[str, Any, str]] = []
        if self.network.max_azs < 2:
            problems.append(
                (
                    "network.max_azs",
                    self.network.max_azs,
                    "2 or more with monitoring.explainability (Clarify's shadow endpoint needs the model's "
                    "subnets in two availability zones)",
                )
            )
        registered = self.training.inference_instance_types
        if explainability.instance_type is not None and explainability.instance_type not in registered:
            problems.append(
                (
                    f"{field}.instance_type",
                    explainability.instance_type,
                    "one of training.inference_instance_types: " + ", ".join(registered),
                )
            )
        return problems

    def _cross_account_problems(self) -> list[tuple[str, Any, str]]:
        """Other accounts are named by account id: this environment needs one, and a different one."""
        problems: list[tuple[str, Any, str]] = []
        peers: list[tuple[str, PeerEnvironment]] = []
        source = self.serving.model_source if self.serving else None
        if source is not None:
            peers.append(("serving.model_source", source))
            if self.retraining is not None:
                problems.append(
                    (
                        "retraining",
                        "a section",
                        f"null with serving.model_source (the pipeline runs in account {source.account})",
                    )
                )
            if self.training is not None and self.training.model_consumers:
                problems.append(
                    (
                        "training.model_consumers",
                        [c.account for c in self.training.model_consumers],
                        f"empty with serving.model_source (versions are registered in account {source.account})",
                    )
                )
            if self.monitoring is not None and self.monitoring.reviewer_emails:
                problems.append(
                    (
                        "monitoring.reviewer_emails",
                        self.monitoring.reviewer_emails,
                        f"empty with serving.model_source (versions wait for approval in account {source.account})",
                    )
                )
        consumers = self.training.model_consumers if self.training else []
        accounts = [c.account for c in consumers]
        for i, consumer in enumerate(consumers):
            peers.append((f"training.model_consumers[{i}]", consumer))
            if consumer.account in accounts[:i]:
                problems.append((f"training.model_consumers[{i}].account", consumer.account, "an account listed once"))
        if self.data_lake.shared_from is not None:
            peers.append(("data_lake.shared_from", self.data_lake.shared_from))
        for field, peer in peers:
            if self.account is None:
                problems.append(
                    (field, peer.account, "null unless account and region are set (other accounts are granted by id)")
                )
            elif peer.account == self.account:
                problems.append((f"{field}.account", peer.account, "an account other than this environment's own"))
        return problems

    def _serving_problems(self) -> list[tuple[str, Any, str]]:
        """The endpoint serves what the pipeline registers: its instance types and its image."""
        from infra.catalog import instances

        serving = self.serving
        assert serving is not None
        if self.training is None:
            return [("serving", "a section", "only with a training section (its model registry feeds the endpoint)")]
        problems: list[tuple[str, Any, str]] = []
        registered = self.training.inference_instance_types
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
        if serving.mode == "serverless":
            # The registered image is built for the first inference type; serverless runs CPU only.
            first = instances.get(registered[0])
            if first.accelerator != instances.Accelerator.NONE:
                problems.append(
                    (
                        "serving.mode",
                        "serverless",
                        f"realtime or async: serverless endpoints run on CPU only, and the registered model is "
                        f"built for {registered[0]} (training.inference_instance_types[0])",
                    )
                )
        return problems

    def _loop_problems(self) -> list[tuple[str, Any, str]]:
        """Monitoring watches the endpoint's captured data; retraining restarts the pipeline."""
        problems: list[tuple[str, Any, str]] = []
        if self.monitoring is not None:
            if self.serving is None:
                problems.append(("monitoring", "a section", "only with a serving section (it watches the endpoint)"))
            elif self.serving.mode == "serverless":
                problems.append(
                    ("monitoring", "a section", "null with serving.mode serverless (no data capture, no Model Monitor)")
                )
            elif (
                self.monitoring.data_quality or self.monitoring.model_quality or self.monitoring.explainability
            ) and not self.serving.data_capture.enabled:
                problems.append(
                    ("serving.data_capture.enabled", False, "true with monitoring (Model Monitor reads captured data)")
                )
        bias = self.monitoring.bias if self.monitoring else None
        if bias is not None and (self.training is None or self.training.bias_baseline is None):
            problems.append(
                ("monitoring.bias", "a section", "null, or a training.bias_baseline (its facet and config)")
            )
        problems.extend(self._explainability_problems())
        if self.retraining is not None:
            if self.training is None:
                problems.append(("retraining", "a section", "only with a training section (it starts the pipeline)"))
            data_quality = self.monitoring.data_quality if self.monitoring else None
            if self.retraining.on_drift and data_quality is None:
                problems.append(
                    ("retraining.on_drift", True, "false, or a monitoring.data_quality section (drift alarms)")
                )
        return problems

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


# ---------------------------------------------------------------------------------------------
# Loading and error reporting


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser: ~10x faster
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen[key] = True
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _field_info(model: type[BaseModel], loc: Iterable[Any]) -> tuple[type[BaseModel] | None, Any]:
    """Walk a pydantic location to (the model holding the last key, that key's FieldInfo)."""
    current: type[BaseModel] | None = model
    info = None
    for part in loc:
        if current is None or not isinstance(part, str):
            continue
        holder = current
        info = holder.model_fields.get(part)
        if info is None:
            return holder, None
        current = _model_in(info.annotation)
    return current, info


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as `BudgetConfig | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _holder_model(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    holder: type[BaseModel] | None = model
    for part in loc:
        if holder is None:
            return None
        if isinstance(part, int):
            continue
        info = holder.model_fields.get(part)
        holder = _model_in(info.annotation) if info else None
    return holder


def format_errors(error: ValidationError, model: type[BaseModel] = PlatformConfig) -> list[str]:
    """One line per problem: `<field path> = <bad value>: allowed: <what is allowed>`."""
    lines: list[str] = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == "combination":
            for field, value, allowed in err["ctx"]["problems"]:
                lines.append(f"{_path((*loc, field))} = {_show(value)}: allowed: {allowed}")
            continue
        if err["type"] == "extra_forbidden":
            holder = _holder_model(model, loc[:-1])
            keys = ", ".join(holder.model_fields) if holder else "(none)"
            lines.append(f"{_path(loc)} = {_show(err['input'])}: unknown key; allowed keys: {keys}")
            continue
        _, info = _field_info(model, loc)
        extra = (info.json_schema_extra or {}) if info is not None else {}
        allowed = extra.get("allowed") if isinstance(extra, dict) else None
        if err["type"] == "missing":
            lines.append(f"{_path(loc)}: missing; required: {allowed or 'a value'}")
            continue
        if err["type"] == "instance":  # the catalog's own explanation names the API and examples
            allowed = err["msg"]
        if err["type"] in ("model_type", "dict_type") and allowed is None:
            holder = _holder_model(model, loc)
            keys = ", ".join(holder.model_fields) if holder else "keys"
            allowed = f"a mapping with keys: {keys}"
        lines.append(f"{_path(loc)} = {_show(err['input'])}: allowed: {allowed or err['msg']}")
    return lines


def parse_config(data: Any, source: str) -> PlatformConfig:
    """Validate already-parsed YAML data; raise ConfigError with one line per problem."""
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: (top level) = {_show(data)}: allowed: a mapping of settings"])
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{source}: {line}" for line in format_errors(exc)]) from None


def load_config_file(path: Path) -> PlatformConfig:
    """Read and validate one YAML config file."""
    source = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read the file ({exc.strerror or exc})"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
        raise ConfigError([f"{source}: invalid YAML{where}: {problem}"]) from None
    return parse_config(data, source)


def available_environments() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(env: str | None, config: str | None) -> Path:
    """Turn the `env` / `config` context values into the file to load."""
    if env is not None and config is not None:
        raise ConfigError(
            [f"context: env = {_show(env)} and config = {_show(config)}: allowed: one of -c env=NAME or -c config=PATH"]
        )
    if config is not None:
        return Path(config)
    name = env or DEFAULT_ENV
    path = CONFIG_DIR / f"{name}.yaml"
    if not re.match(r"^[A-Za-z0-9_-]+$", name) or not path.is_file():
        raise ConfigError(
            [
                f"context: env = {_show(name)}: allowed: one of {', '.join(available_environments())} "
                "(files in config/), or -c config=PATH"
            ]
        )
    return path


def load_config(env: str | None = None, config: str | None = None) -> PlatformConfig:
    """Load the configuration the CDK context asks for (`-c env=NAME` or `-c config=PATH`)."""
    return load_config_file(resolve_config_path(env, config))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
