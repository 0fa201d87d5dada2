"""What the endpoint's monitoring jobs share: their roles, settings, inputs, images, conditions and schedules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from infra.catalog import instances, monitors, naming
from infra.catalog.monitors import Image, MonitorKind
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import MONITOR_SCHEDULES, MonitoringConfig
from infra.constructs import sagemaker_roles
from stacks.serving.context import ServingContext

# Every job publishes its results as CloudWatch metrics (the Monitoring stack's alarms and dashboard).
PUBLISH_METRICS = {"publish_cloudwatch_metrics": "Enabled"}


class MonitorJobs:
    """Creates the shared monitor role (when a configured kind runs as it); the kinds' parts use the rest.

    Each kind's part (a module beside this one) creates its baselines, its condition, its job
    definition and its schedule through these methods, in the stack's own scope.
    """

    def __init__(self, ctx: ServingContext, *, monitoring: MonitoringConfig, endpoint: cdk.CfnResource) -> None:
        """`endpoint` is the endpoint the schedules watch (they are created after it)."""
        self.ctx = ctx
        self.monitoring = monitoring
        self.endpoint = endpoint
        self.schedules: dict[MonitorKind, cdk.CfnResource] = {}
        # Role kind (naming.serving_role) -> role, in creation order.
        self.roles: dict[str, iam.Role] = {}
        shared = [kind for kind, _ in monitors.configured(monitoring) if kind.role == monitors.SHARED_ROLE]
        if shared:
            self.roles[monitors.SHARED_ROLE] = self._shared_role(shared)

    # --- roles -----------------------------------------------------------------------------------

    def _shared_role(self, kinds: list[MonitorKind]) -> iam.Role:
        """What the Model Monitor and Clarify jobs run as: read capture, baselines and labels; write their reports."""
        ctx = self.ctx
        role, wildcards = self.job_role(
            monitors.SHARED_ROLE,
            description=f"Model Monitor jobs of {ctx.endpoint_name}: captured data, baselines, labels, reports",
            inputs=[naming.CAPTURE_PREFIX, naming.GROUND_TRUTH_PREFIX],
            images=list(dict.fromkeys(kind.image for kind in kinds)),
        )
        ctx.inputs.guardrail.attach_to(role)
        acknowledge_wildcards(
            role,
            "This endpoint's capture, label and report prefixes and the pipeline's baselines (named per "
            "execution); processing-job log streams are named per job; ECR login and metrics take no resource "
            "ARN, and SageMaker names each job's VPC network interfaces itself; KMS action families come from "
            "CDK's key grant.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=wildcards,
        )
        return role

    def job_role(
        self, kind: str, *, description: str, inputs: Sequence[str], images: Sequence[Image]
    ) -> tuple[iam.Role, list[str]]:
        """A monitoring job's role: read `inputs` (prefixes of this endpoint), the pipeline's baselines and
        its own reports, write the reports, pull `images`, log.

        Returns the role and the wildcard resources it was granted, for the caller's acknowledgment.
        """
        ctx, stack = self.ctx, self.ctx.stack
        role = iam.Role(
            stack,
            f"{kind.capitalize()}Role",
            assumed_by=service_principal("sagemaker.amazonaws.com", stack.account),
            description=description,
            role_name=ctx.outputs.role_name(kind),
        )
        self.roles[kind] = role
        # The baselines (and configs) are the training pipeline's outputs, registered with the version.
        baselines = ctx.outputs.grant_read(role)
        prefixes = [f"{prefix}/{ctx.endpoint_name}/*" for prefix in (*inputs, naming.MONITOR_PREFIX)]
        read = [ctx.artifacts.arn_for_objects(prefix) for prefix in prefixes]
        written = read[-1]
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=read))
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[written])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[ctx.artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": prefixes}},
            )
        )
        ctx.inputs.artifacts_key.grant_encrypt_decrypt(role)
        role.add_to_policy(self._pull(images))
        log_streams = ctx.arn("logs", "log-group:/aws/sagemaker/ProcessingJobs:*")
        role.add_to_policy(sagemaker_roles.log_streams(log_streams))
        role.add_to_policy(sagemaker_roles.metrics(["aws/sagemaker/Endpoints/*"]))
        sagemaker_roles.grant_resourceless(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        return role, ["*", *read, baselines, log_streams, *ctx.outputs.key_wildcards()]

    def _pull(self, images: Sequence[Image]) -> iam.PolicyStatement:
        """Pull `images` from their registry in every region the pipeline knows."""
        from pipelines import definition as pipeline

        stack = self.ctx.stack
        return iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[
                f"arn:{stack.partition}:ecr:{stack.region}:{registry}:repository/{image.repository}"
                for image in images
                for registry in sorted({f[image.family] for f in pipeline.registry_accounts().values()})
            ],
        )

    # --- what each kind's part builds with ---------------------------------------------------------

    def baselines(self, kind: MonitorKind) -> list[cdk.CfnParameter]:
        """The kind's baselines of the promoted version, as stack parameters (in the row's order)."""
        return [self.ctx.state.baseline(baseline) for baseline in kind.baselines]

    def condition(self, kind: MonitorKind, *parameters: cdk.CfnParameter) -> cdk.CfnCondition:
        """The kind's job exists while a version is served and `parameters` (its baselines) are set."""
        return self.ctx.state.all_set(f"Monitor{kind.type}", list(parameters))

    def image(self, image: Image) -> str:
        """The image URI in this region: a literal registry if the region is known, else a mapping."""
        from pipelines import definition as pipeline

        stack = self.ctx.stack
        if self.ctx.config.region is not None:
            registry = pipeline.registry_accounts()[self.ctx.config.region][image.family]
        else:
            mapping = stack.node.try_find_child("MonitorRegistries")
            if not isinstance(mapping, cdk.CfnMapping):
                mapping = cdk.CfnMapping(stack, "MonitorRegistries", mapping=pipeline.registry_accounts())
            registry = mapping.find_in_map(cdk.Aws.REGION, image.family)
        return f"{registry}.dkr.ecr.{stack.region}.{stack.url_suffix}/{image.name}"

    @property
    def endpoint_input(self) -> dict[str, Any]:
        """The endpoint's captured requests and responses."""
        return {
            "EndpointName": self.ctx.endpoint_name,
            "LocalPath": "/opt/ml/processing/input/endpoint",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        }

    @property
    def labelled_input(self) -> dict[str, Any]:
        """Captured predictions judged against the labels uploaded as ground truth."""
        return {
            "EndpointInput": {
                **self.endpoint_input,
                # The endpoint answers one probability per row (pipelines/steps/train.py).
                "ProbabilityAttribute": "0",
                "ProbabilityThresholdAttribute": 0.5,
                # Labels arrive later than requests: judge the day before the last hour.
                "StartTimeOffset": "-PT25H",
                "EndTimeOffset": "-PT1H",
            },
            "GroundTruthS3Input": {
                "S3Uri": f"s3://{self.ctx.artifacts.bucket_name}/{naming.GROUND_TRUTH_PREFIX}/{self.ctx.endpoint_name}"
            },
        }

    def settings(self, kind: MonitorKind, role: iam.Role) -> dict[str, Any]:
        """Resources, network, role, time limit and output of the kind's job definition."""
        key = self.ctx.inputs.artifacts_key
        cluster: dict[str, Any] = {
            "InstanceCount": 1,
            "InstanceType": self.monitoring.instance_type,
            "VolumeSizeInGB": 20,
        }
        if not instances.has_local_nvme(self.monitoring.instance_type):
            cluster["VolumeKmsKeyId"] = key.key_arn
        security_group = self.ctx.inputs.placement.security_group
        return {
            "JobResources": {"ClusterConfig": cluster},
            "NetworkConfig": {
                "EnableNetworkIsolation": kind.isolated,
                "EnableInterContainerTrafficEncryption": True,
                "VpcConfig": {"Subnets": self.ctx.subnet_ids, "SecurityGroupIds": [security_group.security_group_id]},
            },
            "RoleArn": role.role_arn,
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            kind.output_config: {
                "KmsKeyId": key.key_arn,
                "MonitoringOutputs": [
                    {
                        "S3Output": {
                            "S3Uri": f"s3://{self.ctx.artifacts.bucket_name}/{naming.MONITOR_PREFIX}/"
                            f"{self.ctx.endpoint_name}/{kind.slug}",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        }
                    }
                ],
            },
        }

    @property
    def shared_role(self) -> iam.Role:
        return self.roles[monitors.SHARED_ROLE]

    def definition(
        self, kind: MonitorKind, condition: cdk.CfnCondition, properties: dict[str, Any], role: iam.Role
    ) -> cdk.CfnResource:
        """The kind's job definition, once `role` may do what the job does."""
        resource = cdk.CfnResource(
            self.ctx.stack, f"{kind.type}JobDefinition", type=kind.resource_type, properties=properties
        )
        resource.cfn_options.condition = condition
        resource.node.add_dependency(role.node.find_child("DefaultPolicy"))
        return resource

    def schedule(
        self, kind: MonitorKind, condition: cdk.CfnCondition, definition: cdk.CfnResource, schedule: str
    ) -> cdk.CfnResource:
        """The kind's monitoring schedule of the endpoint, by its fixed name (the alarms name it)."""
        resource = cdk.CfnResource(
            self.ctx.stack,
            f"{kind.type}Schedule",
            type="AWS::SageMaker::MonitoringSchedule",
            properties={
                "MonitoringScheduleName": naming.monitor_schedule(self.ctx.config, kind),
                "EndpointName": self.ctx.endpoint_name,
                "MonitoringScheduleConfig": {
                    "MonitoringJobDefinitionName": definition.get_att("JobDefinitionName"),
                    "MonitoringType": kind.type,
                    "ScheduleConfig": {"ScheduleExpression": MONITOR_SCHEDULES[schedule]},
                },
            },
        )
        resource.cfn_options.condition = condition
        resource.node.add_dependency(self.endpoint)
        self.schedules[kind] = resource
        return resource
