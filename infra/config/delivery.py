"""Multi-account delivery: a `deployment` file names the tooling account, the source and the stages.

Each stage is one of the platform's environment configs (`config/<name>.yaml`) deployed into its
own account and region under the stage's name. A stage with `models_from` serves the approved
versions of an earlier stage's registry (cross-account); one with `data_from` links a database
an earlier stage's lake shares with it through Lake Formation.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.config.base import ConfigError, Problem, Strict, allowed, combination
from infra.config.errors import format_errors
from infra.config.fields import NAME, NAME_ALLOWED, aws_regions
from infra.config.loading import CONFIG_DIR, display_path, parse_config, read_yaml
from infra.config.platform import PlatformConfig, Tags

_ACCOUNT = r"^\d{12}$"
# Stages that only deploy once a person approves.
PRODUCTION = frozenset({"prod", "production"})
_CONNECTION = r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[0-9a-f-]{36}$"


class Place(Strict):
    """An account and region."""

    account: str = Field(pattern=_ACCOUNT, **allowed("12 digits"))
    region: str = Field(**allowed("an AWS region name such as eu-west-1"))

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        if value not in aws_regions():
            raise PydanticCustomError("region", "unknown region")
        return value


class Tooling(Place):
    """Where the delivery pipeline runs."""

    build_in_vpc: bool = Field(default=False, **allowed("true or false (CodeBuild steps in a VPC of their own)"))


class Source(Strict):
    """The repository the pipeline builds, through a CodeConnections (CodeStar) connection."""

    connection_arn: str = Field(pattern=_CONNECTION, **allowed("the ARN of a CodeConnections connection"))
    repository: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", **allowed("owner/name"))
    branch: str = Field(default="main", min_length=1, max_length=255, **allowed("a branch name"))


class Stage(Place):
    """One environment of the platform in its own account."""

    name: str = Field(pattern=NAME, **allowed(NAME_ALLOWED))
    config: str = Field(pattern=r"^[A-Za-z0-9_-]+$", **allowed("the name of a config file in config/, e.g. prod"))
    approval: bool = Field(default=False, **allowed("true or false (a person approves before this stage deploys)"))
    models_from: str | None = Field(
        default=None,
        **allowed("the name of an earlier stage that trains: this stage serves its approved versions, or null"),
    )
    data_from: str | None = Field(
        default=None,
        **allowed("the name of an earlier stage whose lake shares a database with this one (read-only), or null"),
    )


class Deployment(Strict):
    tooling: Tooling
    source: Source
    stages: list[Stage] = Field(min_length=1, max_length=10, **allowed("1 to 10 stages, deployed in this order"))

    @model_validator(mode="after")
    def _combinations(self) -> Deployment:
        problems: list[Problem] = []
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
            # The source's grants must exist before this stage deploys: it is an earlier wave.
            for field in ("models_from", "data_from"):
                other = getattr(stage, field)
                if other is None:
                    continue
                earlier: dict[str, Stage] = {}
                for s in self.stages[:i]:
                    earlier.setdefault(s.name, s)
                if other not in earlier:
                    problems.append((f"stages[{i}].{field}", other, "the name of an earlier stage, or null"))
                elif earlier[other].region != stage.region:
                    problems.append(
                        (f"stages[{i}].{field}", other, f"a stage in this stage's region ({stage.region}), or null")
                    )
                elif field == "models_from" and earlier[other].models_from is not None:
                    problems.append(
                        (f"stages[{i}].models_from", other, f"a stage that trains ('{other}' serves from another)")
                    )
        combination(problems)
        return self


class DeliveryConfig(Strict):
    """A multi-account delivery of the platform (e.g. config/multi-account.yaml)."""

    project: str = Field(pattern=NAME, **allowed(NAME_ALLOWED))
    tags: Tags
    deployment: Deployment

    def stage_configs(self, source: str) -> dict[str, PlatformConfig]:
        """Each stage's platform config: its file, in the stage's account and region, under its name.

        `models_from` and `data_from` wire stages together: the source's config names the stages
        it serves (training.model_consumers) or shares with (data_lake.sharing), and the consuming
        stage's names its source (serving.model_source, data_lake.shared_from). A stage that takes
        models from another serves what that stage trains: its training section becomes the
        source's, and it has no retraining of its own (the pipeline runs in the source account).
        """
        stages = self.deployment.stages
        paths = {stage.name: CONFIG_DIR / f"{stage.config}.yaml" for stage in stages}
        datas = {name: read_yaml(path.read_text(encoding="utf-8")) for name, path in paths.items()}
        problems: list[str] = []
        for i, stage in enumerate(stages):
            data = datas[stage.name]
            data.update(
                project=self.project,
                environment=stage.name,
                account=stage.account,
                region=stage.region,
                tags=self.tags.model_dump(),
            )
            where = f"{source}: deployment.stages[{i}]"
            if stage.models_from is not None:
                problems += _wire_models(data, datas[stage.models_from], stage, where)
            if stage.data_from is not None:
                _wire_data(data, datas[stage.data_from], stage)
        if problems:
            raise ConfigError(problems)
        return {
            stage.name: parse_config(
                datas[stage.name], f"{source}: deployment.stages[{i}] ({display_path(paths[stage.name])})"
            )
            for i, stage in enumerate(stages)
        }


def _mapping(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


def _wire_models(consumer: dict[str, Any], source: dict[str, Any], stage: Stage, where: str) -> list[str]:
    """The consumer stage serves the source stage's registry; the source grants the consumer."""
    training, serving = _mapping(source, "training"), _mapping(consumer, "serving")
    allowed = ": allowed: "
    if training is None:
        return [f"{where}.models_from = {stage.models_from!r}{allowed}a stage whose config has a training section"]
    if serving is None:
        return [f"{where}.models_from = {stage.models_from!r}{allowed}null: this stage's config has no serving section"]
    consumers = training.setdefault("model_consumers", [])
    if not isinstance(consumers, list):
        return []  # the source's own validation reports the bad value
    consumers.append({"account": stage.account, "environment": stage.name})
    consumer["training"] = {k: copy.deepcopy(v) for k, v in training.items() if k != "model_consumers"}
    consumer["retraining"] = None
    serving["model_source"] = {"account": source["account"], "environment": source["environment"]}
    return []


def _wire_data(consumer: dict[str, Any], producer: dict[str, Any], stage: Stage) -> None:
    """The producer's lake shares its database with the consumer stage's account; the consumer links it."""
    lake = _mapping(producer, "data_lake")
    if lake is None:
        return  # the producer's own validation names the missing section
    sharing = _mapping(lake, "sharing") or {"database": "curated"}
    accounts = sharing.setdefault("consumer_accounts", [])
    if isinstance(accounts, list) and stage.account not in accounts:
        accounts.append(stage.account)
    lake["sharing"] = sharing
    consumer_lake = _mapping(consumer, "data_lake")
    if consumer_lake is not None:
        database = sharing.get("database", "curated")
        dataset = _mapping(lake, "dataset") or {}
        listed = dataset.get("columns")
        columns = listed if isinstance(listed, list) else []
        consumer_lake["shared_from"] = {
            "account": producer["account"],
            "environment": producer["environment"],
            "database": database,
            "table": dataset.get("name") if database == "curated" else None,
            "excluded_columns": [
                c.get("name") for c in columns if isinstance(c, dict) and c.get("sensitive") and database == "curated"
            ],
        }


def is_delivery_file(path: Path) -> bool:
    try:
        data = read_yaml(path.read_text(encoding="utf-8"))
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
    data = read_yaml(path.read_text(encoding="utf-8"))
    return parse_delivery(data, display_path(path))
