"""The data scientists' workspace: the optional MLflow tracking server and Studio domain, with Studio's lake grants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from infra.constructs import lake_permissions
from infra.constructs.workspace import StudioDomain, TrackingServer
from stacks.training.context import TrainingContext

# The MLflow REST calls that create and fill a run (no deletes, no registry, no UI).
MLFLOW_RUN_ACTIONS = (
    "CreateExperiment",
    "GetExperiment",
    "GetExperimentByName",
    "CreateRun",
    "GetRun",
    "UpdateRun",
    "LogBatch",
    "LogMetric",
    "LogParam",
    "SetTag",
)


@dataclass(frozen=True)
class Workspace:
    """What the training config asks for; None where it asks for nothing."""

    tracking_server: TrackingServer | None
    studio: StudioDomain | None


def workspace(ctx: TrainingContext, training_role: iam.Role, pipeline: cdk.CfnResource) -> Workspace:
    """The tracking server the training jobs log to, and the Studio domain whose profiles may use it."""
    server = tracking_server(ctx, training_role, pipeline) if ctx.training.mlflow is not None else None
    if ctx.training.studio is None:
        return Workspace(server, None)
    extra: list[iam.IManagedPolicy] = [server.access_policy, server.artifacts_policy] if server is not None else []
    return Workspace(server, studio(ctx, extra))


def tracking_server(ctx: TrainingContext, training_role: iam.Role, pipeline: cdk.CfnResource) -> TrackingServer:
    """The MLflow tracking server; SageMaker logs each training job's metrics and hyperparameters to it."""
    artifacts = ctx.artifacts
    server = TrackingServer(
        ctx.stack,
        "Mlflow",
        config=ctx.config,
        artifacts_bucket_name=artifacts.bucket_name,
        artifacts_bucket_arn=artifacts.bucket_arn,
        artifacts_key=ctx.inputs.artifacts_key,
    )
    # SageMaker logs the training job's metrics and hyperparameters to the server as the
    # job's role (the job's MlflowConfig); the isolated container never calls it.
    training_role.add_to_policy(
        iam.PolicyStatement(
            actions=[f"sagemaker-mlflow:{action}" for action in MLFLOW_RUN_ACTIONS]
            + ["sagemaker:DescribeMlflowTrackingServer"],
            resources=[server.arn],
        )
    )
    # The server exists before a pipeline that names it is created.
    pipeline.node.add_dependency(server)
    return server


def studio(ctx: TrainingContext, extra_policies: list[iam.IManagedPolicy]) -> StudioDomain:
    """The Studio domain; its profiles' roles get the same tag-based lake grants as their personas."""
    stack, placement = ctx.stack, ctx.inputs.placement
    domain = StudioDomain(
        stack,
        "Studio",
        config=ctx.config,
        vpc=placement.vpc,
        subnets=placement.subnets,
        security_group=placement.security_group,
        key=ctx.inputs.artifacts_key,
        extra_policies=extra_policies,
        persona_policies=ctx.inputs.persona_policies,
    )
    # Studio sessions run as the profiles' execution roles: the same tag-based Lake Formation
    # grants as the persona they belong to (writers: raw and curated; readers: general columns).
    for persona, role in domain.roles.items():
        for kind, expression, permissions in lake_permissions.persona_tag_grants(ctx.config, persona):
            tags: dict[str, Sequence[str]] = dict(expression)
            lake_permissions.grant(
                stack,
                f"Studio{persona.title().replace('_', '')}{kind.title()}Grant",
                catalog_id=stack.account,
                principal=role.role_arn,
                resource=lake_permissions.tag_policy(stack.account, kind, tags),
                permissions=permissions,
            )
    return domain
