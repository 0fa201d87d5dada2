"""Multi-account delivery: a self-updating CDK pipeline in the tooling account, one wave per stage.

The synth step installs with the README's two commands' make targets and runs `make test` (every
nag pack included) before anything deploys; a person approves the stages that ask for it (prod
must); each stage deploys the platform's stacks into its own account through a CDK `Stage`.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines
from constructs import Construct

from infra.checks.compliance import (
    AWS_SOLUTIONS,
    HIPAA,
    INLINE_POLICY_REASON,
    PCI,
    acknowledge,
    checkov_skip,
    enable_checks,
    in_hipaa_nist_pci,
    nag_text,
)
from infra.config import PlatformConfig
from infra.config.delivery import DeliveryConfig
from infra.constructs.buckets import AccessLogsBucket
from infra.constructs.log_groups import log_retention
from pipelines import definition as pipeline_definition
from stacks.platform import Platform, build_platform


class PlatformStage(cdk.Stage):
    """The platform's stacks of one stage, in the stage's account and region."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, definitions: Path) -> None:
        super().__init__(scope, construct_id, env=cdk.Environment(account=config.account, region=config.region))
        # The delivery app registers every check once, for the stages too (build_delivery).
        self.platform: Platform = build_platform(self, config, definitions=definitions, checks=False)


class DeliveryStack(cdk.Stack):
    """The CDK pipeline that deploys every stage, in order, from the repository's main branch."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        delivery: DeliveryConfig,
        stages: dict[str, PlatformConfig],
        file_stem: str,
    ) -> None:
        tooling = delivery.deployment.tooling
        super().__init__(
            scope,
            construct_id,
            stack_name=f"{delivery.project}-delivery",
            env=cdk.Environment(account=tooling.account, region=tooling.region),
            termination_protection=True,
        )
        source = delivery.deployment.source
        build_defaults = None
        self.build_vpc = None
        if tooling.build_in_vpc:
            self.build_vpc = self._build_vpc(stages[delivery.deployment.stages[-1].name])
            build_defaults = pipelines.CodeBuildOptions(
                vpc=self.build_vpc, subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=f"{delivery.project}-delivery",
            synth=pipelines.ShellStep(
                "Synth",
                input=pipelines.CodePipelineSource.connection(
                    source.repository, source.branch, connection_arn=source.connection_arn
                ),
                # The README's commands: `make test` (every nag pack, offline) before any deployment.
                commands=["make test", f"make synth ENV={file_stem}"],
                primary_output_directory="cdk.out",
            ),
            self_mutation=True,
            cross_account_keys=True,
            enable_key_rotation=True,
            docker_enabled_for_synth=False,
            code_build_defaults=build_defaults,
        )
        self.stages: dict[str, PlatformStage] = {}
        definitions = pipeline_definition.CACHE_DIR / file_stem
        for stage in delivery.deployment.stages:
            platform_stage = PlatformStage(self, stage.name.title(), config=stages[stage.name], definitions=definitions)
            pre = [pipelines.ManualApprovalStep(f"Approve{stage.name.title()}")] if stage.approval else []
            self.pipeline.add_wave(stage.name).add_stage(platform_stage, pre=pre)
            self.stages[stage.name] = platform_stage
        self.pipeline.build_pipeline()
        self._harden_artifacts(stages[delivery.deployment.stages[-1].name])
        self._acknowledge()
        self._skip_asset_role_checks()

    def _build_vpc(self, config: PlatformConfig) -> ec2.Vpc:
        """Private subnets for the CodeBuild steps; they reach PyPI, npm and AWS through one NAT gateway."""
        key = kms.Key(self, "BuildLogsKey", enable_key_rotation=True, description="Build VPC flow logs")
        key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com"))
        flow_logs = logs.LogGroup(
            self,
            "BuildFlowLogs",
            encryption_key=key,
            retention=log_retention(config.network.flow_logs_retention_days),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        vpc = ec2.Vpc(
            self,
            "BuildVpc",
            max_azs=2,
            nat_gateways=1,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, map_public_ip_on_launch=False
                ),
                ec2.SubnetConfiguration(name="Build", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            ],
            flow_logs={"All": ec2.FlowLogOptions(destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))},
        )
        acknowledge(
            vpc,
            "The build VPC's public subnets hold only the NAT gateway; builds run in private subnets "
            "and need PyPI and npm, which is what tooling.build_in_vpc asks for.",
            [
                *in_hipaa_nist_pci("VPCSubnetAutoAssignPublicIpDisabled"),
                *in_hipaa_nist_pci("VPCNoUnrestrictedRouteToIGW"),
            ],
        )
        acknowledge(
            vpc.node.find_child("All"),
            "CDK's policy of the flow-log delivery role, scoped to this one log group; an inline policy "
            "lives and dies with its role.",
            in_hipaa_nist_pci("IAMNoInlinePolicy"),
        )
        return vpc

    def _harden_artifacts(self, config: PlatformConfig) -> None:
        """The pipeline's artifact bucket (CDK's, with its cross-account key): versioned and access-logged."""
        bucket = self.pipeline.pipeline.artifact_bucket
        logs = AccessLogsBucket(self, "ArtifactAccessLogs", config=config)
        # Set on the L1 object itself (cdk-nag does not see property overrides).
        resource = bucket.node.default_child
        assert isinstance(resource, s3.CfnBucket)
        resource.versioning_configuration = s3.CfnBucket.VersioningConfigurationProperty(status="Enabled")
        resource.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=logs.bucket_name, log_file_prefix="artifacts/"
        )
        acknowledge(
            bucket,
            "The pipeline's working artifacts: rebuilt from the repository on every run, so a replica "
            "in another region would hold nothing that cannot be recreated.",
            in_hipaa_nist_pci("S3BucketReplicationEnabled"),
        )

    def _acknowledge(self) -> None:
        """What CDK Pipelines generates and cdk-nag flags, each with the reason it stays."""
        pipeline = self.pipeline
        acknowledge(
            pipeline,
            "The CodeBuild projects read their source from the pipeline's artifacts (CodePipeline source "
            "type), which the CodeConnections connection fills; no repository URL or credential is in them.",
            [f"{HIPAA}::{HIPAA}-CodeBuildProjectSourceRepoUrl", f"{PCI}::{PCI}-CodeBuildProjectSourceRepoUrl"],
        )
        acknowledge(pipeline, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge(
            pipeline,
            "CDK Pipelines' generated grants: S3 and KMS action families on the pipeline's own artifact "
            "bucket and key; CodeBuild log groups and report groups named after its projects; asset "
            "publishing and self-mutation assume the CDK bootstrap roles (cdk-*) of the tooling account, "
            "whose names CDK fixes per qualifier, and describe the stacks they update (no resource ARN).",
            [
                f"{AWS_SOLUTIONS}::AwsSolutions-IAM5[{finding}]"
                for finding in (
                    "Action::kms:GenerateDataKey*",
                    "Action::kms:ReEncrypt*",
                    "Action::s3:Abort*",
                    "Action::s3:DeleteObject*",
                    "Action::s3:GetBucket*",
                    "Action::s3:GetObject*",
                    "Action::s3:List*",
                    "Resource::*",
                    f"Resource::{nag_text(self, self.pipeline.pipeline.artifact_bucket.bucket_arn)}/*",
                    f"Resource::arn:*:iam::{self.account}:role/*",
                    f"Resource::arn:{self.partition}:codebuild:{self.region}:{self.account}:report-group/*",
                    f"Resource::arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/codebuild/*",
                    # Builds in the build VPC: CodeBuild's network interfaces are created per build.
                    *(
                        ["Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*"]
                        if self.build_vpc is not None
                        else []
                    ),
                )
            ]
            + [
                f"{AWS_SOLUTIONS}::AwsSolutions-IAM5[Resource::{pattern}]"
                for project in self._projects()
                for pattern in (
                    f"arn:{self.partition}:codebuild:{self.region}:{self.account}:report-group/<{project}>-*",
                    f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/codebuild/<{project}>:*",
                )
            ],
        )

    def _skip_asset_role_checks(self) -> None:
        """checkov's write-on-`*` check on the asset publishing role's policy, which CDK Pipelines writes."""
        for child in self.pipeline.node.find_all():
            is_policy = isinstance(child, cdk.CfnResource) and child.cfn_resource_type == "AWS::IAM::Policy"
            if is_policy and "/Assets/" in child.node.path:
                checkov_skip(
                    child,
                    "CDK Pipelines' single asset-publishing role: CDK grants it StartBuild, StopBuild and "
                    "BatchGetBuilds on * once rather than per asset project, so its policy does not grow "
                    "with every asset.",
                    "CKV_AWS_111",
                )

    def _projects(self) -> list[str]:
        """Logical ids of the pipeline's CodeBuild projects, as the findings name them."""
        return [
            self.get_logical_id(child)
            for child in self.pipeline.node.find_all()
            if isinstance(child, cdk.CfnResource) and child.cfn_resource_type == "AWS::CodeBuild::Project"
        ]


def build_delivery(
    app: cdk.App, delivery: DeliveryConfig, stages: dict[str, PlatformConfig], *, file_stem: str
) -> DeliveryStack:
    stack = DeliveryStack(app, "Delivery", delivery=delivery, stages=stages, file_stem=file_stem)
    enable_checks(app)
    return stack
