"""The explainability monitor: feature attribution drift, Clarify's Kernel SHAP on a shadow copy of the served model."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_iam as iam

from infra.catalog import monitors, naming
from infra.catalog.monitors import EXPLAINABILITY
from infra.checks.compliance import ML, acknowledge, acknowledge_wildcards
from infra.config import ExplainabilityMonitor
from infra.constructs.functions import PythonFunction
from infra.constructs.serving_state import UNSET
from stacks.serving.context import ServingContext
from stacks.serving.monitors.jobs import PUBLISH_METRICS, MonitorJobs

# Clarify names the shadow endpoints it starts (and their configs) with this prefix.
SHADOW_PREFIX = "sm-clarify"
# Where the promotion function writes each version's analysis config, under the monitoring prefix.
CONFIGS = "explainability-config"


@dataclass(frozen=True)
class ExplainabilityJob:
    """What the promotion path needs of the monitor: the job's role, and the settings of its per-version config."""

    role: iam.Role
    settings: dict[str, str]  # the promotion function's EXPLAINABILITY variable


def explainability(
    jobs: MonitorJobs, section: ExplainabilityMonitor, *, model_name_prefix: str | None
) -> ExplainabilityJob:
    """Creates the job's own role, its Clarify job definition and schedule.

    The job calls the SageMaker API to start, invoke and remove the shadow endpoint, so it runs
    without network isolation (in the private subnets, no internet path): the config's stated
    exception, acknowledged on the job definition. Its role may start only `sm-clarify-*`
    endpoints of this model (`model_name_prefix`: the model's predictable name).
    """
    kind, ctx = EXPLAINABILITY, jobs.ctx
    if model_name_prefix is None or kind.per_version_parameter is None:
        raise ValueError(
            "the explainability monitor needs the served model's predictable name (its catalog row sets "
            "shadow_endpoint) and a per-version parameter for its analysis config"
        )
    (constraints,) = jobs.baselines(kind)
    analysis = ctx.state.parameter(
        kind.per_version_parameter,
        "S3 URI of the explainability monitor's analysis config for the promoted version (it names the "
        f"model; {UNSET} without one); written by the promotion function",
    )
    condition = jobs.condition(kind, constraints, analysis)
    role = _role(jobs, model_name_prefix)
    definition = jobs.definition(
        kind,
        condition,
        {
            "ModelExplainabilityAppSpecification": {
                "ImageUri": jobs.image(kind.image),
                "ConfigUri": analysis.value_as_string,
                "Environment": PUBLISH_METRICS,
            },
            "ModelExplainabilityBaselineConfig": {"ConstraintsResource": {"S3Uri": constraints.value_as_string}},
            "ModelExplainabilityJobInput": {"EndpointInput": jobs.endpoint_input},
            **jobs.settings(kind, role),
        },
        role,
    )
    shadow_type = section.instance_type or ctx.serving.variants[0].instance_type
    # For the cost estimate: each run also pays for the shadow endpoint's instance.
    definition.add_metadata(monitors.SHADOW_METADATA, {"InstanceType": shadow_type, "InstanceCount": 1})
    acknowledge(definition, f"Explainability monitor, by config: {section.isolation_exception}", [f"{ML}::MLP-SM9"])
    jobs.schedule(kind, condition, definition, section.schedule)
    settings = {
        "parameter": kind.per_version_parameter,
        "bucket": ctx.artifacts.bucket_name,
        "prefix": f"{naming.MONITOR_PREFIX}/{ctx.endpoint_name}/{CONFIGS}",
        "model_name_prefix": model_name_prefix,
        "instance_type": shadow_type,
        "kms_key_id": ctx.inputs.artifacts_key.key_arn,
    }
    return ExplainabilityJob(role=role, settings=settings)


def _role(jobs: MonitorJobs, model_name_prefix: str) -> iam.Role:
    """The explainability job: captured data, its config and baseline, its report, and the shadow endpoint."""
    ctx = jobs.ctx
    role, wildcards = jobs.job_role(
        EXPLAINABILITY.role,
        description=f"Model explainability monitor of {ctx.endpoint_name}: Clarify and its shadow endpoint",
        inputs=[naming.CAPTURE_PREFIX],
        images=[EXPLAINABILITY.image],
    )
    # Clarify starts a shadow endpoint of the served model, calls it, and removes it.
    shadows = [
        ctx.arn("sagemaker", f"endpoint/{SHADOW_PREFIX}-*"),
        ctx.arn("sagemaker", f"endpoint-config/{SHADOW_PREFIX}-*"),
    ]
    role.add_to_policy(
        iam.PolicyStatement(
            sid="ShadowEndpoint",
            actions=[
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:CreateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:InvokeEndpoint",
                "sagemaker:AddTags",
            ],
            resources=shadows,
        )
    )
    models = ctx.arn("sagemaker", f"model/{model_name_prefix}*")
    role.add_to_policy(iam.PolicyStatement(sid="ServedModel", actions=["sagemaker:DescribeModel"], resources=[models]))
    # No guardrail: it would deny the shadow endpoint config, which Clarify creates without a KMS key.
    acknowledge_wildcards(
        role,
        "This endpoint's capture and report prefixes and the pipeline's baselines (named per execution); "
        "Clarify's shadow endpoints and configs are named per run under sm-clarify-, and the served "
        "model per version under its prefix; processing-job log streams are named per job; ECR login, "
        "metrics take no resource ARN, and SageMaker names each job's VPC network interfaces itself; KMS "
        "action families come from CDK's key grant.",
        actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
        resources=[*wildcards, *shadows, models],
    )
    return role


def grant_promotion(ctx: ServingContext, promotion: PythonFunction, job: ExplainabilityJob) -> None:
    """The promotion function reads the registered template and writes the config of the version it deploys."""
    role = promotion.role
    templates = ctx.outputs.grant_read(role)
    written = ctx.artifacts.arn_for_objects(f"{job.settings['prefix']}/*")
    role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[written]))
    ctx.inputs.artifacts_key.grant_encrypt_decrypt(role)
    acknowledge_wildcards(
        role,
        "The explainability config templates under the pipeline's prefix (named per execution) and the "
        "configs it writes per version; KMS action families come from CDK's key grant.",
        actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
        resources=[templates, written, *ctx.outputs.key_wildcards()],
    )
