"""Wires the platform's stacks for one environment; app.py and the tests both call it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aws_cdk as cdk

from infra.checks.compliance import enable_checks, skip_provider_checks
from infra.config import PlatformConfig
from infra.constructs.placement import Placement
from pipelines.definition import SHIPPED
from stacks.datalake import DataLakeInputs, DataLakeStack
from stacks.network import NetworkStack
from stacks.security import SecurityStack

if TYPE_CHECKING:  # imported at run time only when a config trains (the pipeline builder is heavy)
    from stacks.monitoring import MonitoringStack
    from stacks.retraining import RetrainingStack
    from stacks.serving import ServingStack
    from stacks.training import TrainingStack


@dataclass(frozen=True)
class Platform:
    """The stacks of one environment, for tests and for later stacks to wire against."""

    security: SecurityStack
    network: NetworkStack
    data_lake: DataLakeStack
    training: TrainingStack | None = None
    serving: ServingStack | None = None
    monitoring: MonitoringStack | None = None
    retraining: RetrainingStack | None = None

    @property
    def stacks(self) -> list[cdk.Stack]:
        stacks = (
            self.security,
            self.network,
            self.data_lake,
            self.training,
            self.serving,
            self.monitoring,
            self.retraining,
        )
        return [s for s in stacks if s is not None]


def build_platform(
    app: cdk.Stage, config: PlatformConfig, definitions: Path | None = SHIPPED, *, checks: bool = True
) -> Platform:
    """Create every stack of the environment (in an app or a delivery stage) and register all static checks.

    `definitions` is where the training pipeline's definition is stored; by default the shipped
    environments' folder (pipelines/definitions), for an environment that has a file in config/.
    `checks=False` leaves the checks to the app around a delivery stage, which registers them once.
    """
    security = SecurityStack(app, "Security", config=config, security=config.security)
    network = NetworkStack(
        app, "Network", config=config, network=config.network, training=config.training, logs_key=security.keys.logs
    )
    # Where the lake's Glue workers, the training and serving jobs and the platform's functions run.
    placement = Placement(vpc=network.vpc, subnets=network.network.subnets, security_group=network.network.workload_sg)
    data_lake = _data_lake(app, config, security, placement)
    training = _training(app, config, security, placement, data_lake, definitions)
    serving = _serving(app, config, security, placement, data_lake, training)
    monitoring = _monitoring(app, config, security)
    retraining = _retraining(app, config, security, placement, data_lake, training)
    _tag(app, config)
    if checks:
        enable_checks(app)
    else:  # a delivery stage: its templates are written before the app around it registers the checks
        skip_provider_checks(app)
    return Platform(
        security=security,
        network=network,
        data_lake=data_lake,
        training=training,
        serving=serving,
        monitoring=monitoring,
        retraining=retraining,
    )


def _data_lake(app: cdk.Stage, config: PlatformConfig, security: SecurityStack, placement: Placement) -> DataLakeStack:
    """The lake: zones, governance, catalog, ETL and the promoted serving state."""
    return DataLakeStack(
        app,
        "DataLake",
        config=config,
        data_lake=config.data_lake,
        serving=config.serving,
        inputs=DataLakeInputs(
            data_key=security.keys.data,
            artifacts_key=security.keys.artifacts,
            logs_key=security.keys.logs,
            placement=placement,
        ),
    )


def _training(
    app: cdk.Stage,
    config: PlatformConfig,
    security: SecurityStack,
    placement: Placement,
    data_lake: DataLakeStack,
    definitions: Path | None,
) -> TrainingStack | None:
    """The registry and the training pipeline, where this environment trains (not when it serves another's)."""
    if not config.trains_here or config.training is None:  # trains_here implies a training section
        return None
    # Imported only here: the pipeline builder pulls in the SageMaker SDK when it has to build.
    from stacks.training import TrainingInputs, TrainingStack

    training = TrainingStack(
        app,
        "Training",
        config=config,
        training=config.training,
        data_lake=config.data_lake,
        inputs=TrainingInputs(
            artifacts_key=security.keys.artifacts,
            data_key=security.keys.data,
            logs_key=security.keys.logs,
            placement=placement,
            guardrail=security.guardrail,
            persona_policies=data_lake.access.policies,
        ),
        definitions=definitions,
    )
    training.add_stack_dependency(data_lake, "imports the lake's bucket exports")
    return training


def _serving(
    app: cdk.Stage,
    config: PlatformConfig,
    security: SecurityStack,
    placement: Placement,
    data_lake: DataLakeStack,
    training: TrainingStack | None,
) -> ServingStack | None:
    """The endpoint of the promoted version, its monitors and the promotion path."""
    if config.serving is None:
        return None
    from stacks.serving import ServingInputs, ServingStack

    serving = ServingStack(
        app,
        "Serving",
        config=config,
        serving=config.serving,
        monitoring=config.monitoring,
        inputs=ServingInputs(
            artifacts_key=security.keys.artifacts,
            logs_key=security.keys.logs,
            alerts_topic=security.alerts.topic,
            placement=placement,
            guardrail=security.guardrail,
        ),
    )
    serving.add_stack_dependency(data_lake, "imports the lake's bucket exports")
    if training is not None:
        serving.add_stack_dependency(training, "serves versions of the training stack's model package group")
    return serving


def _monitoring(app: cdk.Stage, config: PlatformConfig, security: SecurityStack) -> MonitoringStack | None:
    """Alarms, notices and the dashboard; the config allows monitoring only with serving, serving only with training."""
    if config.monitoring is None or config.serving is None or config.training is None:
        return None
    from stacks.monitoring import MonitoringStack

    # Names what Serving and Training create by their fixed names: no stack dependency needed.
    return MonitoringStack(
        app,
        "Monitoring",
        config=config,
        monitoring=config.monitoring,
        serving=config.serving,
        training=config.training,
        alerts_topic=security.alerts.topic,
        logs_key=security.keys.logs,
    )


def _retraining(
    app: cdk.Stage,
    config: PlatformConfig,
    security: SecurityStack,
    placement: Placement,
    data_lake: DataLakeStack,
    training: TrainingStack | None,
) -> RetrainingStack | None:
    """The rules and the function that start the training pipeline again."""
    if config.retraining is None:
        return None
    from stacks.retraining import RetrainingStack

    retraining = RetrainingStack(
        app,
        "Retraining",
        config=config,
        retraining=config.retraining,
        key=security.keys.logs,
        alerts_topic=security.alerts.topic,
        placement=placement,
    )
    retraining.add_stack_dependency(data_lake, "imports the raw bucket's name")
    if training is not None:
        retraining.add_stack_dependency(training, "starts the training stack's pipeline")
    return retraining


def _tag(app: cdk.Stage, config: PlatformConfig) -> None:
    """Every resource carries the project, environment, owner and platform tags (the budget filters on platform)."""
    tags = {
        "project": config.project,
        "environment": config.environment,
        "owner": config.tags.owner,
        "platform": config.prefix,
    }
    if config.tags.cost_center:
        tags["cost-center"] = config.tags.cost_center
    for key, value in tags.items():
        cdk.Tags.of(app).add(key, value)
