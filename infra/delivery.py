"""Multi-account delivery: a `deployment` file names the tooling account, the source and the stages.

Each stage is one of the platform's environment configs (`config/<name>.yaml`) deployed into its
own account and region under the stage's name. The first stage that trains is the training
account; stages without a training section serve versions from its model registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.config import (
    _NAME,
    _NAME_ALLOWED,
    CONFIG_DIR,
    ConfigError,
    PlatformConfig,
    Tags,
    _allowed,
    _combination,
    _display,
    _Strict,
    _UniqueKeyLoader,
    aws_regions,
    format_errors,
    parse_config,
)

_ACCOUNT = r"^\d{12}$"
# Stages that only deploy once a person approves.
PRODUCTION = frozenset({"prod", "production"})
_CONNECTION = r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"


class Place(_Strict):
    """An account and region."""

    account: str = Field(pattern=_ACCOUNT, **_allowed("12 digits"))
    region: str = Field(**_allowed("an AWS region name such as eu-west-1"))

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if value not in aws_regions():
            raise PydanticCustomError("region", "unknown region")
        return value


class Tooling(Place):
    """Where the delivery pipeline runs."""

    build_in_vpc: bool = Field(default=False, **_allowed("true or false (CodeBuild steps in a VPC of their own)"))


class Source(_Strict):
    """The repository the pipeline builds, through a CodeConnections (CodeStar) connection."""

    connection_arn: str = Field(pattern=_CONNECTION, **_allowed("the ARN of a CodeConnections connection"))
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", **_allowed("owner/name"))
    branch: str = Field(default="main", min_length=1, max_length=255, **_allowed("a branch name"))


class Stage(Place):
    """One environment of the platform in its own account."""

    name: str = Field(pattern=_NAME, **_allowed(_NAME_ALLOWED))
    config: str = Field(pattern=r"^[A-Za-z0-9_-]+$", **_allowed("the name of a config file in config/, e.g. prod"))
    approval: bool = Field(default=False, **_allowed("true or false (a person approves before this stage deploys)"))


class Deployment(_Strict):
    tooling: Tooling
    source: Source
    stages: list[Stage] = Field(min_length=1, max_length=10, **_allowed("1 to 10 stages, deployed in this order"))

    @model_validator(mode="after")
    def _combinations(self) -> Deployment:
        problems: list[tuple[str, Any, str]] = []
        names = [s.name for s in self.stages]
        for i, stage in enumerate(self.stages):
            if stage.name in names[:i]:
                problems.append((f"stages[{i}].name", stage.name, "a name no other stage has"))
            if stage.name in PRODUCTION and not stage.approval:
                problems.append((f"stages[{i}].approval", False, f"true for stage '{stage.name}' (a person approves)"))
            if stage.account == self.tooling.account:
                problems.append((f"stages[{i}].account", stage.account, "an account other than the tooling account's"))
            if not (CONFIG_DIR / f"{stage.config}.yaml").is_file():
                problems.append((f"stages[{i}].config", stage.config, "the name of a file in config/"))
        _combination(problems)
        return self


class DeliveryConfig(_Strict):
    """A multi-account delivery of the platform (e.g. config/multi-account.yaml)."""

    project: str = Field(pattern=_NAME, **_allowed(_NAME_ALLOWED))
    tags: Tags
    deployment: Deployment

    def stage_configs(self, source: str) -> dict[str, PlatformConfig]:
        """Each stage's platform config: its file, in the stage's account and region, under its name."""
        configs = {}
        for i, stage in enumerate(self.deployment.stages):
            path = CONFIG_DIR / f"{stage.config}.yaml"
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
            data.update(
                project=self.project,
                environment=stage.name,
                account=stage.account,
                region=stage.region,
                tags=self.tags.model_dump(),
            )
            configs[stage.name] = parse_config(data, f"{source}: deployment.stages[{i}] ({_display(path)})")
        return configs


def is_delivery_file(path: Path) -> bool:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "deployment" in data


def parse_delivery(data: Any, source: str) -> tuple[DeliveryConfig, dict[str, PlatformConfig]]:
    """Validate a delivery file's data and every stage's config; ConfigError with one line per problem."""
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: (top level): allowed: a mapping with a deployment section"])
    try:
        delivery = DeliveryConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{source}: {line}" for line in format_errors(exc, DeliveryConfig)]) from None
    return delivery, delivery.stage_configs(source)


def load_delivery(path: Path) -> tuple[DeliveryConfig, dict[str, PlatformConfig]]:
    """The delivery file and every stage's config."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    return parse_delivery(data, _display(path))
