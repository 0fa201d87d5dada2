"""The data lake section: zone lifecycles, personas, cross-account shares, Athena and the ETL job."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.config.base import Problem, Rule, Strict, allowed, run_rules
from infra.config.dataset import DatasetConfig
from infra.config.fields import ROLE_ALLOWED, AccountId, PeerEnvironment, RoleName, unique


class LifecycleConfig(Strict):
    """S3 lifecycle of one zone: storage-class transitions and expirations, in days."""

    infrequent_access_after_days: int | None = Field(
        default=None, ge=30, le=36500, **allowed("30 to 36500 days (S3 Standard-IA needs 30 at least), or null")
    )
    glacier_after_days: int | None = Field(
        default=None, ge=1, le=36500, **allowed("1 to 36500 days, or null (no Glacier transition)")
    )
    expire_after_days: int | None = Field(
        default=None, ge=1, le=36500, **allowed("1 to 36500 days, or null (objects are kept)")
    )
    noncurrent_expire_after_days: int = Field(
        default=90, ge=1, le=36500, **allowed("1 to 36500 days (old object versions are deleted after this)")
    )

    @model_validator(mode="after")
    def _order(self) -> LifecycleConfig:
        return run_rules(self, LIFECYCLE_RULES)


def _glacier_after_infrequent_access(lifecycle: LifecycleConfig) -> list[Problem]:
    """S3 rejects a Glacier transition less than 30 days after the Standard-IA one."""
    ia, glacier = lifecycle.infrequent_access_after_days, lifecycle.glacier_after_days
    if ia is not None and glacier is not None and glacier < ia + 30:
        return [("glacier_after_days", glacier, f"at least infrequent_access_after_days + 30 ({ia + 30})")]
    return []


def _expire_after_transitions(lifecycle: LifecycleConfig) -> list[Problem]:
    """Objects expire after their last storage-class transition."""
    transitions = (lifecycle.infrequent_access_after_days, lifecycle.glacier_after_days)
    last = max((d for d in transitions if d is not None), default=None)
    expire = lifecycle.expire_after_days
    if expire is not None and last is not None and expire <= last:
        return [("expire_after_days", expire, f"more than the last transition ({last} days)")]
    return []


LIFECYCLE_RULES: tuple[Rule[LifecycleConfig], ...] = (_glacier_after_infrequent_access, _expire_after_transitions)


class ZonesConfig(Strict):
    """Lifecycle of each data lake zone."""

    raw: LifecycleConfig = Field(
        default_factory=lambda: LifecycleConfig(infrequent_access_after_days=30, glacier_after_days=90)
    )
    curated: LifecycleConfig = Field(default_factory=lambda: LifecycleConfig(infrequent_access_after_days=90))
    analytics: LifecycleConfig = Field(default_factory=LifecycleConfig)
    artifacts: LifecycleConfig = Field(
        default_factory=lambda: LifecycleConfig(noncurrent_expire_after_days=30),
        **allowed("the lifecycle of the ML artifacts bucket (pipeline outputs, models, baselines)"),
    )


class PersonaConfig(Strict):
    """IAM roles of one persona; Lake Formation grants come from the persona's kind."""

    roles: list[RoleName] = Field(min_length=1, max_length=20, **allowed(ROLE_ALLOWED))
    attach_policy: bool = Field(
        default=True,
        **allowed(
            "true or false (false for roles the stack must not modify, e.g. IAM Identity Center roles: "
            "attach the exported managed policy yourself)"
        ),
    )

    @field_validator("roles")
    @classmethod
    def _unique_roles(cls, value: list[str]) -> list[str]:
        return unique(value)


class PersonasConfig(Strict):
    """Who may use the lake: engineers write raw and curated; scientists read curated and analytics."""

    data_engineer: PersonaConfig | None = Field(default=None, **allowed("a persona section or null"))
    data_scientist: PersonaConfig | None = Field(default=None, **allowed("a persona section or null"))


class SharingConfig(Strict):
    """Lake Formation cross-account share of one database (read-only, sensitive columns excluded)."""

    consumer_accounts: list[AccountId] = Field(
        min_length=1, max_length=20, **allowed("1 to 20 distinct AWS account ids of 12 digits each")
    )
    database: Literal["curated", "analytics"] = Field(default="curated", **allowed("curated or analytics"))

    @field_validator("consumer_accounts")
    @classmethod
    def _unique_accounts(cls, value: list[str]) -> list[str]:
        return unique(value)


class SharedFrom(PeerEnvironment):
    """A database another environment shares with this one through Lake Formation (read-only).

    For the curated zone the share is the dataset's table without its sensitive columns, so the
    grants here name that table and those columns (a grant may pass on no more than was shared).
    """

    database: Literal["curated", "analytics"] = Field(default="curated", **allowed("curated or analytics"))
    table: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{1,255}$",
        **allowed("the shared dataset's table name (with database curated), else null"),
    )
    excluded_columns: list[str] = Field(
        default_factory=list,
        max_length=100,
        **allowed("the columns the producer withholds (its sensitive columns)"),
    )

    @model_validator(mode="after")
    def _table(self) -> SharedFrom:
        return run_rules(self, SHARED_FROM_RULES)


def _table_with_curated_only(shared: SharedFrom) -> list[Problem]:
    """A curated share is one table, named here; an analytics share is the whole database."""
    if (shared.database == "curated") != (shared.table is not None):
        expected = "the shared dataset's table name" if shared.database == "curated" else "null with analytics"
        return [("table", shared.table, expected)]
    return []


SHARED_FROM_RULES: tuple[Rule[SharedFrom], ...] = (_table_with_curated_only,)


class AthenaConfig(Strict):
    """The lake's Athena workgroup."""

    bytes_scanned_cutoff_mb: int = Field(
        default=10_240,
        ge=10,
        le=100_000_000,
        **allowed("10 to 100000000 MB scanned per query (Athena's minimum is 10)"),
    )
    results_retention_days: int = Field(
        default=30, ge=1, le=3650, **allowed("1 to 3650 days (query results are deleted after this)")
    )


class EtlConfig(Strict):
    """The Glue Spark job that turns raw files into the curated table."""

    glue_version: Literal["4.0", "5.0"] = Field(default="5.0", **allowed("'4.0' or '5.0'"))
    worker_type: Literal["G.1X", "G.2X", "G.4X", "G.8X"] = Field(default="G.1X", **allowed("G.1X, G.2X, G.4X or G.8X"))
    workers: int = Field(default=2, ge=2, le=299, **allowed("2 to 299 workers"))
    timeout_minutes: int = Field(default=60, ge=1, le=2880, **allowed("1 to 2880 minutes"))
    new_data_batch_size: int | None = Field(
        default=100,
        ge=1,
        le=100,
        **allowed("1 to 100 new raw objects that start a run (batched), or null: runs only by schedule or by hand"),
    )
    new_data_batch_window_seconds: int = Field(
        default=900, ge=1, le=900, **allowed("1 to 900 seconds a batch of new objects waits to fill up")
    )
    schedule: str | None = Field(
        default=None,
        pattern=r"^cron\([^()]+\)$",
        **allowed("a Glue cron expression such as 'cron(0 2 * * ? *)', or null (run on demand/by events)"),
    )


class DataLakeConfig(Strict):
    """Zones, catalog, governance, quality and query settings of the data lake."""

    admins: list[RoleName] = Field(
        default_factory=list,
        max_length=20,
        **allowed(ROLE_ALLOWED + "; the CDK deployment role is always added"),
    )
    zones: ZonesConfig = Field(default_factory=ZonesConfig)
    dataset: DatasetConfig
    personas: PersonasConfig = Field(default_factory=PersonasConfig)
    sharing: SharingConfig | None = Field(default=None, **allowed("a sharing section or null"))
    shared_from: SharedFrom | None = Field(
        default=None,
        **allowed("the account and environment whose shared database this lake links to (read-only), or null"),
    )
    athena: AthenaConfig = Field(default_factory=AthenaConfig)
    etl: EtlConfig = Field(default_factory=EtlConfig)

    @field_validator("admins")
    @classmethod
    def _unique_admins(cls, value: list[str]) -> list[str]:
        return unique(value)
