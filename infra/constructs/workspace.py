"""Workspace constructs: a VpcOnly SageMaker Studio domain with a profile per persona, and a managed MLflow server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict, Unpack

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.catalog import naming
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    KMS_GRANT_WILDCARDS,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import MlflowConfig, PlatformConfig, StudioConfig
from infra.constructs.retention import retention

# Where the tracking server keeps run artifacts in the ML artifacts bucket.
MLFLOW_PREFIX = "mlflow/"
# Studio user profile of each persona of `data_lake.personas`, in a stable order.
PROFILES = {"data_engineer": "data-engineer", "data_scientist": "data-scientist"}
# Studio apps log here (one group, a stream per app).
STUDIO_LOG_GROUP = "/aws/sagemaker/studio"
# SageMaker's lower bound for an idle timeout: users may shorten theirs down to it, never extend it.
MIN_IDLE_MINUTES = 60


def _sagemaker_service(account: str) -> iam.IPrincipal:
    # Only SageMaker acting for this account may assume the role (confused-deputy guard).
    return service_principal("sagemaker.amazonaws.com", account)


def _idle_shutdown(idle_minutes: int) -> dict[str, object]:
    """App settings that stop an app after `idle_minutes` idle; users may shorten the timeout, never extend it."""
    return {
        "AppLifecycleManagement": {
            "IdleSettings": {
                "LifecycleManagement": "ENABLED",
                "IdleTimeoutInMinutes": idle_minutes,
                "MinIdleTimeoutInMinutes": MIN_IDLE_MINUTES,
                "MaxIdleTimeoutInMinutes": idle_minutes,
            }
        }
    }


class TrackingServer(Construct):
    """A SageMaker managed MLflow tracking server: artifacts under `mlflow/` of the artifacts bucket, IAM access."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        artifacts_bucket_name: str,
        artifacts_bucket_arn: str,
        artifacts_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        assert config.training is not None and config.training.mlflow is not None
        self.name = naming.mlflow_server(config)
        self._bucket_arn = artifacts_bucket_arn
        self._objects = f"{artifacts_bucket_arn}/{MLFLOW_PREFIX}*"
        self.role = self._role(artifacts_key)
        self.server = self._server(config, config.training.mlflow, artifacts_bucket_name)
        self.arn = self.server.get_att("TrackingServerArn").to_string()
        self.access_policy = self._access_policy()
        self.artifacts_policy = self._artifacts_policy(artifacts_key)

    def _role(self, artifacts_key: kms.IKey) -> iam.Role:
        """The role the server itself runs as: it reads and writes run artifacts, nothing else."""
        role = iam.Role(
            self,
            "Role",
            assumed_by=_sagemaker_service(cdk.Stack.of(self).account),
            description=f"MLflow tracking server {self.name}: its artifact prefix only",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[self._objects],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self._bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{MLFLOW_PREFIX}*"]}},
            )
        )
        artifacts_key.grant_encrypt_decrypt(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Objects under the tracking server's own mlflow/ prefix of the artifacts bucket (run ids are "
            "generated); KMS action families come from CDK's key grant on the artifacts key.",
            actions=KMS_GRANT_WILDCARDS,
            resources=[self._objects],
        )
        return role

    def _server(self, config: PlatformConfig, mlflow: MlflowConfig, artifacts_bucket_name: str) -> cdk.CfnResource:
        """The tracking server, storing artifacts under the mlflow/ prefix and retained with the environment's data."""
        # Generic L1 resource: the aws_sagemaker bindings would add 0.4 s to every synth.
        server = cdk.CfnResource(
            self,
            "Server",
            type="AWS::SageMaker::MlflowTrackingServer",
            properties={
                "TrackingServerName": self.name,
                "TrackingServerSize": mlflow.size,
                "ArtifactStoreUri": f"s3://{artifacts_bucket_name}/{MLFLOW_PREFIX}",
                # Models reach the registry only through the training pipeline's quality gate.
                "AutomaticModelRegistration": False,
                "RoleArn": self.role.role_arn,
            },
        )
        # Experiments and runs are data: kept unless the environment is throwaway.
        server.apply_removal_policy(retention(config))
        # SageMaker checks the artifact store with the role while it creates the server.
        server.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        return server

    def _access_policy(self) -> iam.ManagedPolicy:
        """What a client (a Studio profile, a job role) needs to use this server and no other."""
        # There is no public URL sharing: every call is signed with the caller's IAM identity.
        policy = iam.ManagedPolicy(
            self,
            "AccessPolicy",
            description=f"Use the MLflow tracking server {self.name} (experiments, runs, models) through IAM",
            statements=[
                iam.PolicyStatement(sid="UseTrackingServer", actions=["sagemaker-mlflow:*"], resources=[self.arn]),
                iam.PolicyStatement(
                    sid="OpenTrackingServer",
                    actions=[
                        "sagemaker:CreatePresignedMlflowTrackingServerUrl",
                        "sagemaker:DescribeMlflowTrackingServer",
                    ],
                    resources=[self.arn],
                ),
            ],
        )
        acknowledge(
            policy,
            "sagemaker-mlflow:* is the MLflow REST API (experiments, runs, metrics, registered models) on "
            "this one tracking server ARN; its action list follows the MLflow version, not this platform.",
            ["AwsSolutions::AwsSolutions-IAM5[Action::sagemaker-mlflow:*]"],
        )
        return policy

    def _artifacts_policy(self, artifacts_key: kms.IKey) -> iam.ManagedPolicy:
        """Read and write access to the run artifacts (the mlflow/ prefix and its key) for MLflow clients."""
        # MLflow clients upload and download artifacts straight to S3 with their own credentials;
        # the server only hands out the artifact location.
        policy = iam.ManagedPolicy(
            self,
            "ArtifactsPolicy",
            description=f"Read and write the run artifacts of {self.name} (the mlflow/ prefix, its key)",
            statements=[
                iam.PolicyStatement(
                    sid="RunArtifacts",
                    actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[self._objects],
                ),
                iam.PolicyStatement(
                    sid="ListRunArtifacts",
                    actions=["s3:ListBucket"],
                    resources=[self._bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{MLFLOW_PREFIX}*"]}},
                ),
                iam.PolicyStatement(
                    sid="ArtifactsKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[artifacts_key.key_arn],
                ),
            ],
        )
        acknowledge_wildcards(
            policy,
            "Objects under the tracking server's mlflow/ prefix only: MLflow names artifact paths by "
            "experiment and run id at run time.",
            resources=[self._objects],
        )
        return policy


class StudioDomainOptions(TypedDict, total=False):
    """The optional props of a `StudioDomain`."""

    persona_policies: Mapping[str, iam.IManagedPolicy] | None
    """Policies for one persona's profile only (e.g. `LakeAccess.policies`, keyed by persona), so a
    scientist's profile never gets an engineer's writes."""


class StudioDomain(Construct):
    """A VpcOnly, IAM-authenticated Studio domain with one user profile (and execution role) per persona."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        key: kms.IKey,
        extra_policies: list[iam.IManagedPolicy],
        **options: Unpack[StudioDomainOptions],
    ) -> None:
        """The domain's apps run in `subnets` of `vpc` behind `security_group`, its volumes encrypted with
        `key`; `extra_policies` go to every profile's role."""
        super().__init__(scope, construct_id)
        assert config.training is not None and config.training.studio is not None
        persona_policies = options.get("persona_policies") or {}
        unknown = set(persona_policies) - set(PROFILES)
        if unknown:
            raise ValueError(f"persona_policies for unknown personas {sorted(unknown)}; known: {', '.join(PROFILES)}")
        stack = cdk.Stack.of(self)
        partition, region, account = stack.partition, stack.region, stack.account
        self._arn_prefix = f"arn:{partition}:sagemaker:{region}:{account}"
        self._logs = f"arn:{partition}:logs:{region}:{account}:log-group:{STUDIO_LOG_GROUP}:*"
        self._key = key
        self.default_role = self._default_role(config)
        self.domain = self._domain(config, config.training.studio, vpc, subnets, [security_group.security_group_id])
        self.domain_id = self.domain.get_att("DomainId").to_string()
        self.domain_arn = self.domain.get_att("DomainArn").to_string()
        self.roles: dict[str, iam.Role] = {}
        self.profiles: dict[str, cdk.CfnResource] = {}
        self.launch_policies: dict[str, iam.ManagedPolicy] = {}
        self._persona_profiles(config, extra_policies, persona_policies)

    def _default_role(self, config: PlatformConfig) -> iam.Role:
        """The domain-wide execution role: it may write Studio logs, nothing more."""
        # CloudFormation requires a domain-wide role; every profile brings its own, so this one only
        # backs a profile or shared space made outside this stack.
        role = iam.Role(
            self,
            "DefaultExecutionRole",
            assumed_by=_sagemaker_service(cdk.Stack.of(self).account),
            description=f"Default Studio execution role of {config.prefix}: logs only, no data access",
        )
        role.add_to_policy(self._logs_statement())
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Log streams of the Studio log group: Studio names one stream per app at run time.",
            resources=[self._logs],
        )
        return role

    def _domain(
        self,
        config: PlatformConfig,
        studio: StudioConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        groups: list[str],
    ) -> cdk.CfnResource:
        """The VpcOnly, IAM-authenticated domain, its volumes under the domain key, idle apps shut down."""
        lifecycle = _idle_shutdown(studio.idle_shutdown_minutes)
        domain = cdk.CfnResource(
            self,
            "Domain",
            type="AWS::SageMaker::Domain",
            properties={
                "DomainName": f"{config.prefix}-studio",
                "AuthMode": "IAM",
                # Apps reach AWS only through the VPC's endpoints: no direct internet access.
                "AppNetworkAccessType": "VpcOnly",
                "VpcId": vpc.vpc_id,
                "SubnetIds": vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
                # Home EFS volume and the spaces' EBS volumes.
                "KmsKeyId": self._key.key_arn,
                "DefaultUserSettings": {
                    "ExecutionRole": self.default_role.role_arn,
                    "SecurityGroups": groups,
                    "StudioWebPortal": "ENABLED",
                    "DefaultLandingUri": "studio::",
                    # Notebook snapshots with cell output would leave the governed buckets.
                    "SharingSettings": {"NotebookOutputOption": "Disabled"},
                    # Idle IDEs stop instead of billing around the clock.
                    "JupyterLabAppSettings": lifecycle,
                    "CodeEditorAppSettings": lifecycle,
                },
                "DomainSettings": {
                    "SecurityGroupIds": groups,
                    # Docker inside a space could build and push images past the platform's controls.
                    "DockerSettings": {"EnableDockerAccess": "DISABLED"},
                },
                "DefaultSpaceSettings": {
                    "ExecutionRole": self.default_role.role_arn,
                    "SecurityGroups": groups,
                    "JupyterLabAppSettings": lifecycle,
                },
            },
        )
        # Retained (with its home EFS volume) unless the environment is throwaway. The volume's own
        # retention is an argument of DeleteDomain, not a CloudFormation property, so it cannot be set here.
        domain.apply_removal_policy(retention(config))
        return domain

    def _persona_profiles(
        self,
        config: PlatformConfig,
        extra_policies: list[iam.IManagedPolicy],
        persona_policies: Mapping[str, iam.IManagedPolicy],
    ) -> None:
        """A user profile, its execution role and its launch policy for each persona in the config."""
        for persona, profile_name in PROFILES.items():
            settings = getattr(config.data_lake.personas, persona)
            if settings is None:
                continue
            name = "".join(part.capitalize() for part in persona.split("_"))
            profile_arn = f"{self._arn_prefix}:user-profile/{self.domain_id}/{profile_name}"
            role = self._execution_role(name, profile_name, profile_arn)
            policies = [*extra_policies]
            if persona in persona_policies:
                policies.append(persona_policies[persona])
            for policy in policies:
                role.add_managed_policy(policy)
            self.roles[persona] = role
            self.profiles[persona] = self._user_profile(config, name, profile_name, role)
            self.launch_policies[persona] = self._launch_policy(
                name, profile_name, profile_arn, roles=settings.roles if settings.attach_policy else []
            )

    def _user_profile(self, config: PlatformConfig, name: str, profile_name: str, role: iam.Role) -> cdk.CfnResource:
        """One persona's user profile, running as its own execution role."""
        profile = cdk.CfnResource(
            self,
            f"{name}Profile",
            type="AWS::SageMaker::UserProfile",
            properties={
                "DomainId": self.domain_id,
                "UserProfileName": profile_name,
                "UserSettings": {"ExecutionRole": role.role_arn},
            },
        )
        # A profile can only be deleted after its spaces, which hold the user's work.
        profile.apply_removal_policy(retention(config))
        # The role can run Studio before anyone can open the profile.
        profile.node.add_dependency(role.node.find_child("DefaultPolicy"))
        return profile

    def _execution_role(self, name: str, profile_name: str, profile_arn: str) -> iam.Role:
        """What Studio needs to run one profile's private spaces and apps; data access comes from extra_policies."""
        role = iam.Role(
            self,
            f"{name}ExecutionRole",
            assumed_by=_sagemaker_service(cdk.Stack.of(self).account),
            description=f"Studio execution role of the {profile_name} profile",
        )
        spaces = f"{self._arn_prefix}:space/{self.domain_id}/*"
        apps = f"{self._arn_prefix}:app/{self.domain_id}/*"
        for statement in [
            *self._studio_statements(profile_arn, spaces, apps),
            *self._volume_key_statements(),
            self._logs_statement(),
        ]:
            role.add_to_policy(statement)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Studio names spaces, apps and log streams at run time: spaces and apps of this one domain "
            "(create, update and delete only for the profile's own private spaces), streams of the Studio "
            "log group; the List calls of the Studio UI take no resource ARN.",
            resources=["*", spaces, apps, self._logs],
        )
        return role

    def _studio_statements(self, profile_arn: str, spaces: str, apps: str) -> list[iam.PolicyStatement]:
        """Describe this domain and profile, list what the UI shows, run only the profile's own private spaces."""
        # Only private spaces this profile owns: no shared spaces, no other profile's spaces or apps.
        own_private = {
            "ArnEquals": {"sagemaker:OwnerUserProfileArn": profile_arn},
            "StringEquals": {"sagemaker:SpaceSharingType": "Private"},
        }
        return [
            iam.PolicyStatement(
                actions=["sagemaker:DescribeDomain"], resources=[f"{self._arn_prefix}:domain/{self.domain_id}"]
            ),
            iam.PolicyStatement(actions=["sagemaker:DescribeUserProfile"], resources=[profile_arn]),
            iam.PolicyStatement(actions=["sagemaker:DescribeSpace", "sagemaker:DescribeApp"], resources=[spaces, apps]),
            # What the Studio UI lists; these calls take no resource ARN.
            iam.PolicyStatement(
                actions=[
                    "sagemaker:ListDomains",
                    "sagemaker:ListUserProfiles",
                    "sagemaker:ListSpaces",
                    "sagemaker:ListApps",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(
                actions=["sagemaker:CreateSpace", "sagemaker:UpdateSpace", "sagemaker:DeleteSpace"],
                resources=[spaces],
                conditions=own_private,
            ),
            iam.PolicyStatement(
                actions=["sagemaker:CreateApp", "sagemaker:DeleteApp"], resources=[apps], conditions=own_private
            ),
            # Tags only as part of creating a space or app.
            iam.PolicyStatement(
                actions=["sagemaker:AddTags"],
                resources=[spaces, apps],
                conditions={"Null": {"sagemaker:TaggingAction": "false"}},
            ),
        ]

    def _volume_key_statements(self) -> list[iam.PolicyStatement]:
        """Use of the domain key for the spaces' EBS volumes, which are created with this role's calls."""
        return [
            iam.PolicyStatement(
                actions=[
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                ],
                resources=[self._key.key_arn],
            ),
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[self._key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
        ]

    def _logs_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[self._logs],
        )

    def _launch_policy(self, name: str, profile_name: str, profile_arn: str, *, roles: list[str]) -> iam.ManagedPolicy:
        """Lets the persona's people open their own profile, and no other, in Studio."""
        policy = iam.ManagedPolicy(
            self,
            f"{name}LaunchPolicy",
            description=f"Open the {profile_name} profile of the Studio domain (presigned URL)",
            statements=[
                iam.PolicyStatement(
                    actions=["sagemaker:CreatePresignedDomainUrl", "sagemaker:DescribeUserProfile"],
                    resources=[profile_arn],
                ),
                iam.PolicyStatement(
                    actions=["sagemaker:DescribeDomain"], resources=[f"{self._arn_prefix}:domain/{self.domain_id}"]
                ),
            ],
        )
        for role in roles:
            # IAM role names are unique per account whatever their path.
            policy.attach_to_role(
                iam.Role.from_role_name(self, f"{name}{role.split('/')[-1]}Role", role.split("/")[-1])
            )
        return policy
