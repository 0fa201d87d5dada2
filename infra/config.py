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
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
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
        _combination(problems)
        return self

    @property
    def prefix(self) -> str:
        """Name prefix of every stack of this environment, e.g. 'mlp-dev'."""
        return f"{self.project}-{self.environment}"

    @property
    def partition(self) -> str | None:
        return aws_regions()[self.region] if self.region else None


# ---------------------------------------------------------------------------------------------
# Loading and error reporting


class _UniqueKeyLoader(yaml.SafeLoader):
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
