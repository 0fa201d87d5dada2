"""The pipeline's roles: the processing and training job roles, and the role SageMaker Pipelines runs as."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as assets

from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    KMS_GRANT_WILDCARDS,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.constructs import sagemaker_roles
from pipelines import definition as pipeline
from stacks.training.context import TrainingContext

# What the pipeline role does with the jobs it creates.
JOB_ACTIONS = (
    "sagemaker:CreateProcessingJob",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:StopProcessingJob",
    "sagemaker:CreateTrainingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:AddTags",
)


def processing_role(ctx: TrainingContext, scripts: dict[str, assets.Asset], registries: Sequence[str]) -> iam.Role:
    """The preprocess, evaluate, compile and baseline jobs' role; it also reads the curated dataset."""
    role = _job_role(
        ctx,
        "ProcessingRole",
        "Preprocess, evaluate, baseline jobs",
        logs="ProcessingJobs",
        scripts=[
            scripts[k] for k in ("PreprocessKey", "EvaluateKey", "CompileKey", "MonitoringLibraryKey") if k in scripts
        ],
        registries=registries,
    )
    dataset = ctx.dataset.name
    curated_objects = ctx.curated.arn_for_objects(f"{dataset}/*")
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[curated_objects]))
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[ctx.curated.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{dataset}/*", dataset]}},
        )
    )
    ctx.inputs.data_key.grant_decrypt(role)
    acknowledge_wildcards(
        role,
        "The curated dataset's own prefix: the preprocess job reads every file of the table.",
        resources=[curated_objects],
    )
    return role


def training_role(ctx: TrainingContext, scripts: dict[str, assets.Asset], registries: Sequence[str]) -> iam.Role:
    """The training and tuning jobs' role."""
    return _job_role(
        ctx,
        "TrainingRole",
        "Training and tuning jobs",
        logs="TrainingJobs",
        scripts=[scripts["TrainingCodeKey"]],
        registries=registries,
    )


def _job_role(
    ctx: TrainingContext,
    name: str,
    description: str,
    *,
    logs: str,  # the jobs' log group under /aws/sagemaker/
    scripts: Sequence[assets.Asset],  # the code objects the jobs run
    registries: Sequence[str],  # the ECR registry account of each image family, in IMAGE_FAMILIES order
) -> iam.Role:
    """A SageMaker job role: this pipeline's artifacts, its scripts and images, its logs and metrics."""
    stack, artifacts, artifacts_key = ctx.stack, ctx.artifacts, ctx.inputs.artifacts_key
    partition = stack.partition
    role = iam.Role(
        stack,
        name,
        assumed_by=service_principal("sagemaker.amazonaws.com", stack.account),
        description=description,
    )
    artifacts_objects = artifacts.arn_for_objects(f"{ctx.prefix}/*")
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            resources=[artifacts_objects],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[artifacts.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{ctx.prefix}/*"]}},
        )
    )
    artifacts_key.grant_encrypt_decrypt(role)
    # Exactly the script objects this job runs.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[f"arn:{partition}:s3:::{script.s3_bucket_name}/{script.s3_object_key}" for script in scripts],
        )
    )
    # Code inputs are S3Prefix channels: SageMaker lists each key as a prefix before it downloads it.
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[f"arn:{partition}:s3:::{scripts[0].s3_bucket_name}"],
            conditions={"StringEquals": {"s3:prefix": [script.s3_object_key for script in scripts]}},
        )
    )
    role.add_to_policy(_image_pulls(ctx, registries))
    log_streams = ctx.arn("logs", f"log-group:/aws/sagemaker/{logs}:*")
    role.add_to_policy(sagemaker_roles.log_streams(log_streams))
    # Resource-less actions: ECR login, metrics, and the ENIs of a job in the VPC.
    sagemaker_roles.grant_resourceless(role)
    role.add_to_policy(sagemaker_roles.metrics(["/aws/sagemaker/*", "aws/sagemaker/*"]))
    ctx.inputs.guardrail.attach_to(role)
    acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
    acknowledge_wildcards(
        role,
        "Only where nothing narrower exists: this pipeline's artifact prefix and its jobs' log "
        "streams; ECR login and metrics take no resource ARN, and SageMaker names each job's VPC network "
        "interfaces itself; KMS action "
        "families come from CDK's key grant.",
        actions=KMS_GRANT_WILDCARDS,
        resources=["*", artifacts_objects, log_streams],
    )
    return role


def _image_pulls(ctx: TrainingContext, registries: Sequence[str]) -> iam.PolicyStatement:
    """Pulls of exactly the ECR repositories the pipeline's jobs run images from."""
    stack = ctx.stack
    return iam.PolicyStatement(
        actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
        resources=[
            f"arn:{stack.partition}:ecr:{stack.region}:{registry}:repository/{repository}"
            for family, registry in zip(pipeline.IMAGE_FAMILIES, registries, strict=True)
            if family in ctx.spec.image_families
            for repository in pipeline.JOB_REPOSITORIES[family]
        ],
    )


def pipeline_role(ctx: TrainingContext, group: cdk.CfnResource, job_roles: Sequence[iam.Role]) -> iam.Role:
    """The role SageMaker Pipelines runs as: it creates the jobs, passes them `job_roles`, registers the model."""
    role = iam.Role(
        ctx.stack,
        "PipelineRole",
        assumed_by=service_principal("sagemaker.amazonaws.com", ctx.stack.account),
        description=f"SageMaker Pipelines execution of {ctx.spec.name}",
    )
    jobs = [
        ctx.arn("sagemaker", f"{kind}/*") for kind in ("processing-job", "training-job", "hyper-parameter-tuning-job")
    ]
    role.add_to_policy(iam.PolicyStatement(actions=list(JOB_ACTIONS), resources=jobs))
    packages = ctx.arn("sagemaker", f"model-package/{ctx.spec.model_package_group}/*")
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags"],
            resources=[group.get_att("ModelPackageGroupArn").to_string(), packages],
        )
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[job_role.role_arn for job_role in job_roles],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
    )
    # The condition step reads evaluation.json from this pipeline's prefix.
    role.add_to_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[ctx.artifacts.arn_for_objects(f"{ctx.prefix}/*")])
    )
    ctx.inputs.artifacts_key.grant_decrypt(role)
    ctx.inputs.guardrail.attach_to(role)
    acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
    acknowledge_wildcards(
        role,
        "Job names are generated per pipeline execution, so jobs are matched by type in this "
        "account and region; model versions of this one group; this pipeline's artifact prefix.",
        resources=[*jobs, packages, ctx.artifacts.arn_for_objects(f"{ctx.prefix}/*")],
    )
    return role
