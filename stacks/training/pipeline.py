"""The SageMaker pipeline resource: the stored or built definition, with its deploy-time values substituted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as assets

from infra.config import available_environments
from pipelines import definition as pipeline
from stacks.training.context import TrainingContext

# SageMaker's limit for an inline definition body; larger ones would have to go through S3.
MAX_DEFINITION_BYTES = 1_000_000


@dataclass(frozen=True)
class PipelineRoles:
    """The role the pipeline runs as and the roles of its jobs."""

    pipeline: iam.Role
    processing: iam.Role
    training: iam.Role


def image_registries(ctx: TrainingContext) -> tuple[list[str], cdk.CfnMapping | None]:
    """ECR registry accounts of the images the jobs run: literal for a known region, else mapped.

    Returns the account of each family in IMAGE_FAMILIES order, and the mapping they are read from (if any).
    """
    if ctx.spec.region is not None:
        accounts = pipeline.registry_accounts()[ctx.spec.region]
        return [accounts[family] for family in pipeline.IMAGE_FAMILIES], None
    mapping = cdk.CfnMapping(ctx.stack, "ImageRegistries", mapping=pipeline.registry_accounts())
    return [mapping.find_in_map(cdk.Aws.REGION, family) for family in pipeline.IMAGE_FAMILIES], mapping


def definition_body(ctx: TrainingContext, definitions: Path | None) -> str:
    """The definition from the store (`pipeline.SHIPPED`: the shipped environments' folder), or built."""
    store = definitions
    if definitions == pipeline.SHIPPED:
        store = pipeline.CACHE_DIR if ctx.config.environment in available_environments() else None
    body = pipeline.cached(ctx.spec, store)
    size = len(body.encode())
    if size > MAX_DEFINITION_BYTES:
        raise ValueError(
            f"the pipeline definition of {ctx.spec.name} is {size:,} bytes; the inline limit is "
            f"{MAX_DEFINITION_BYTES:,}: split the pipeline or store it in S3"
        )
    return body


def training_pipeline(
    ctx: TrainingContext,
    body: str,
    *,
    roles: PipelineRoles,
    scripts: dict[str, assets.Asset],
    registries: Sequence[str],
) -> cdk.CfnResource:
    """The AWS::SageMaker::Pipeline, created after its roles' permissions exist."""
    spec, inputs = ctx.spec, ctx.inputs
    registry_variables = {
        f"{family}Registry": registry for family, registry in zip(pipeline.IMAGE_FAMILIES, registries, strict=True)
    }
    variables = {
        "ProcessingRoleName": roles.processing.role_name,
        "TrainingRoleName": roles.training.role_name,
        "ArtifactsBucket": ctx.artifacts.bucket_name,
        "CuratedBucket": ctx.curated.bucket_name,
        "ArtifactsKeyArn": inputs.artifacts_key.key_arn,
        "SecurityGroupId": inputs.placement.security_group.security_group_id,
        "AssetsBucket": scripts["PreprocessKey"].s3_bucket_name,
        **{name: asset.s3_object_key for name, asset in scripts.items()},
        **{f"Subnet{i}": subnet for i, subnet in enumerate(inputs.placement.subnet_ids)},
        # Per-region image registries, only when the definition leaves the region open.
        **(registry_variables if spec.region is None else {}),
    }
    resource = cdk.CfnResource(
        ctx.stack,
        "Pipeline",
        type="AWS::SageMaker::Pipeline",
        properties={
            "PipelineName": spec.name,
            "PipelineDisplayName": spec.name,
            "PipelineDescription": "preprocess -> train -> evaluate -> quality gate -> baselines -> register",
            "RoleArn": roles.pipeline.role_arn,
            "PipelineDefinition": {"PipelineDefinitionBody": cdk.Fn.sub(body, variables)},
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": 4},
        },
    )
    # The roles' permissions exist before SageMaker validates the pipeline against them.
    for role in (roles.pipeline, roles.processing, roles.training):
        resource.node.add_dependency(role.node.find_child("DefaultPolicy"))
    return resource
