"""The served model: the SageMaker model of the promoted version, the role its containers run as, its topics."""

from __future__ import annotations

import hashlib
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns

from infra.catalog import monitors, naming
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    ML,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import MonitoringConfig, NetworkConfig
from infra.constructs import sagemaker_roles
from stacks.serving.context import ServingContext

# Inference images the registered model versions name (pipelines/definition.py).
INFERENCE_REPOSITORIES = ("pytorch-inference", "pytorch-inference-neuronx")


def predictable_name_prefix(
    endpoint_name: str, network: NetworkConfig, monitoring: MonitoringConfig | None
) -> str | None:
    """The model's name prefix when a monitor starts a shadow endpoint of it (the promotion function names it).

    The model is then named this prefix and the version number. The hash changes with what else
    would replace the model (its network), so a replacement never reuses a name.
    """
    if not any(kind.shadow_endpoint for kind, _ in monitors.configured(monitoring)):
        return None
    digest = hashlib.sha256(network.model_dump_json().encode()).hexdigest()[:6]
    return f"{endpoint_name}-{digest}-"


class ServedModel:
    """Creates the model role, the asynchronous notification topics (if configured) and the conditional model."""

    def __init__(self, ctx: ServingContext, *, name_prefix: str | None) -> None:
        """`name_prefix`: see predictable_name_prefix; None lets CloudFormation name the model."""
        self.ctx = ctx
        self.name_prefix = name_prefix
        self.role = self._role()
        self.async_topics: dict[str, sns.Topic] = {}
        settings = ctx.serving.async_inference
        if settings is not None and settings.notifications:
            for kind in ("Success", "Error"):
                topic = sns.Topic(ctx.stack, f"Async{kind}", master_key=ctx.inputs.logs_key, enforce_ssl=True)
                topic.grant_publish(self.role)
                self.async_topics[kind] = topic
        self.model = self._model()

    def _role(self) -> iam.Role:
        """What the serving containers run as: read the pipeline's model artifacts, write capture and results."""
        ctx, stack = self.ctx, self.ctx.stack
        role = iam.Role(
            stack,
            "ModelRole",
            assumed_by=service_principal("sagemaker.amazonaws.com", stack.account),
            description=f"The model behind {ctx.endpoint_name}: its artifacts, image, logs and captured data",
            role_name=ctx.outputs.role_name("model"),
        )
        models = ctx.outputs.grant_read(role)
        written = [
            ctx.artifacts.arn_for_objects(f"{prefix}/{ctx.endpoint_name}/*")
            for prefix in (naming.CAPTURE_PREFIX, naming.ASYNC_PREFIX)
        ]
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=written))
        ctx.inputs.artifacts_key.grant_encrypt_decrypt(role)
        role.add_to_policy(self._images())
        log_streams = ctx.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{ctx.endpoint_name}:*")
        role.add_to_policy(sagemaker_roles.log_streams(log_streams))
        role.add_to_policy(sagemaker_roles.metrics(["/aws/sagemaker/*", "aws/sagemaker/*"]))
        sagemaker_roles.grant_resourceless(role, vpc=not ctx.serverless)
        ctx.inputs.guardrail.attach_to(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "The training pipeline's artifact prefix (model archives are named per execution), this "
            "endpoint's capture and async-result prefixes and its own log streams; ECR login and "
            "metrics take no resource ARN, and SageMaker names the instances' VPC network interfaces "
            "itself; KMS action families come from CDK's key grant.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=["*", models, *written, log_streams, *ctx.outputs.key_wildcards()],
        )
        return role

    def _images(self) -> iam.PolicyStatement:
        """Pull the PyTorch inference images, from the registry of every region the pipeline knows."""
        from pipelines import definition as pipeline

        stack = self.ctx.stack
        registries = sorted({families["PyTorch"] for families in pipeline.registry_accounts().values()})
        return iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[
                f"arn:{stack.partition}:ecr:{stack.region}:{registry}:repository/{repository}"
                for registry in registries
                for repository in INFERENCE_REPOSITORIES
            ],
        )

    def _model(self) -> cdk.CfnResource:
        ctx = self.ctx
        package = ctx.state.package.value_as_string
        properties: dict[str, Any] = {
            "ExecutionRoleArn": self.role.role_arn,
            "PrimaryContainer": {"ModelPackageName": package},
        }
        if self.name_prefix is not None:
            # <prefix><version>: the version is the last part of the package ARN (.../<group>/<version>).
            version = cdk.Fn.select(2, cdk.Fn.split("/", package))
            properties["ModelName"] = cdk.Fn.join("", [self.name_prefix, version])
        if not ctx.serverless:
            placement = ctx.inputs.placement
            properties["VpcConfig"] = {
                "Subnets": ctx.subnet_ids,
                "SecurityGroupIds": [placement.security_group.security_group_id],
            }
            properties["EnableNetworkIsolation"] = True
        model = ctx.state.when_served("Model", "AWS::SageMaker::Model", properties)
        model.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        if ctx.serving.serverless is not None and ctx.serverless:
            acknowledge(
                model,
                f"Serverless endpoint, by config: {ctx.serving.serverless.isolation_exception}",
                [f"{ML}::MLP-SM1", f"{ML}::MLP-SM2"],
            )
        return model
