"""Studio domain and MLflow tracking server (infra.constructs.workspace), synthesized in a small app of their own."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.config import parse_config
from tests.helpers import dev_data
from tests.templates import actions_of, of_type, role_statements

STACK = "Training"
SAGEMAKER_TRUST = {
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    "Effect": "Allow",
    "Principal": {"Service": "sagemaker.amazonaws.com"},
}
IDLE = {
    "LifecycleManagement": "ENABLED",
    "IdleTimeoutInMinutes": 120,
    "MinIdleTimeoutInMinutes": 60,
    "MaxIdleTimeoutInMinutes": 120,
}
STUDIO_ACTIONS = {
    "sagemaker:DescribeDomain",
    "sagemaker:DescribeUserProfile",
    "sagemaker:DescribeSpace",
    "sagemaker:DescribeApp",
    "sagemaker:ListDomains",
    "sagemaker:ListUserProfiles",
    "sagemaker:ListSpaces",
    "sagemaker:ListApps",
    "sagemaker:CreateSpace",
    "sagemaker:UpdateSpace",
    "sagemaker:DeleteSpace",
    "sagemaker:CreateApp",
    "sagemaker:DeleteApp",
    "sagemaker:AddTags",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:CreateGrant",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
}


def _config(**training: Any):
    data = copy.deepcopy(dev_data())
    data["training"].update(studio={"idle_shutdown_minutes": 120}, mlflow={"size": "Small"}, **training)
    return data


@dataclass
class Built:
    template: dict[str, Any]
    report: dict[str, Any]
    acknowledged: set[tuple[str, str]]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return of_type(self.template, resource_type)

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        ((logical_id, resource),) = self.resources(resource_type).items()
        return logical_id, resource

    def logical_id(self, resource_type: str, contains: str) -> str:
        (logical_id,) = [k for k in self.resources(resource_type) if contains in k]
        return logical_id

    def inline_statements(self, role_id: str) -> list[dict[str, Any]]:
        return role_statements(self.template, role_id)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    """The constructs in a Training-like stack with every nag pack on: synth raises on an unacknowledged finding."""
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms

    from infra.catalog.naming import export_name
    from infra.checks.compliance import enable_checks
    from infra.constructs.workspace import StudioDomain, TrackingServer
    from stacks.base import PlatformStack
    from stacks.network import PlatformNetwork
    from tests.conftest import cdk_context

    config = parse_config(_config(), "test")
    outdir = tmp_path_factory.mktemp("cdk-workspace")
    app = cdk.App(outdir=str(outdir), context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = PlatformStack(app, STACK, config=config)
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    network = PlatformNetwork(
        stack, "Network", config=config, network=config.network, training=config.training, logs_key=key
    )
    # The lake's exports, as the Training stack imports them.
    server = TrackingServer(
        stack,
        "Mlflow",
        config=config,
        artifacts_bucket_name=cdk.Fn.import_value(export_name(config, "artifacts-bucket-name")),
        artifacts_bucket_arn=cdk.Fn.import_value(export_name(config, "artifacts-bucket-arn")),
        artifacts_key=key,
    )
    # Stand in for the lake's persona policies (`LakeAccess.policies`).
    personas = {
        persona: iam.ManagedPolicy(
            stack,
            f"{persona.title().replace('_', '')}LakePolicy",
            statements=[
                iam.PolicyStatement(actions=["athena:GetWorkGroup"], resources=[f"arn:aws:athena:::{persona}"])
            ],
        )
        for persona in ("data_engineer", "data_scientist")
    }
    StudioDomain(
        stack,
        "Studio",
        config=config,
        vpc=network.vpc,
        subnets=network.subnets,
        security_group=network.workload_sg,
        key=key,
        extra_policies=[server.access_policy, server.artifacts_policy],
        persona_policies=personas,
    )
    enable_checks(app)
    assembly = app.synth()
    acknowledged = {
        (construct.node.path, rule_id)
        for construct in app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule_id in entry.data
        if not rule_id.startswith("CloudFormation-Validate::")
    }
    return Built(
        template=assembly.get_stack_artifact(stack.artifact_id).template,
        report=json.loads(Path(outdir, "validation-report.json").read_text()),
        acknowledged=acknowledged,
    )


@pytest.fixture(scope="module")
def throwaway(tmp_path_factory) -> Built:
    """A throwaway environment with one persona, without nag or a real VPC (only retention and profiles differ)."""
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_kms as kms

    from infra.constructs.workspace import StudioDomain
    from stacks.base import PlatformStack

    data = _config()
    data.update(environment="sandbox", destroy_data_on_delete=True)
    data["data_lake"]["personas"]["data_scientist"] = None
    config = parse_config(data, "sandbox")
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("cdk-throwaway")), builtin_cloud_formation_validation=False)
    stack = PlatformStack(app, STACK, config=config)
    vpc = ec2.Vpc.from_vpc_attributes(
        stack, "Vpc", vpc_id="vpc-1", availability_zones=["az-a"], isolated_subnet_ids=["subnet-1"]
    )
    StudioDomain(
        stack,
        "Studio",
        config=config,
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        security_group=ec2.SecurityGroup.from_security_group_id(stack, "Sg", "sg-1"),
        key=kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:us-east-1:111122223333:key/k"),
        extra_policies=[],
    )
    template = app.synth().get_stack_artifact(stack.artifact_id).template
    return Built(template=template, report={}, acknowledged=set())


# --- Studio domain ----------------------------------------------------------------------------------


def test_domain_is_vpc_only_iam_authenticated_and_encrypted(built):
    _, domain = built.one("AWS::SageMaker::Domain")
    props = domain["Properties"]
    assert props["DomainName"] == "mlp-dev-studio"
    assert props["AuthMode"] == "IAM"
    assert props["AppNetworkAccessType"] == "VpcOnly"
    assert props["VpcId"] == {"Ref": built.logical_id("AWS::EC2::VPC", "Vpc")}
    isolated = [{"Ref": k} for k in built.resources("AWS::EC2::Subnet") if "Isolated" in k]
    assert isolated and props["SubnetIds"] == isolated
    assert props["KmsKeyId"] == {"Fn::GetAtt": [built.logical_id("AWS::KMS::Key", "Key"), "Arn"]}
    workload = [{"Fn::GetAtt": [built.logical_id("AWS::EC2::SecurityGroup", "Workload"), "GroupId"]}]
    users, spaces = props["DefaultUserSettings"], props["DefaultSpaceSettings"]
    assert users["SecurityGroups"] == spaces["SecurityGroups"] == workload
    assert props["DomainSettings"] == {
        "SecurityGroupIds": workload,
        "DockerSettings": {"EnableDockerAccess": "DISABLED"},
    }
    assert users["StudioWebPortal"] == "ENABLED" and users["DefaultLandingUri"] == "studio::"
    assert users["SharingSettings"] == {"NotebookOutputOption": "Disabled"}
    default_role = {"Fn::GetAtt": [built.logical_id("AWS::IAM::Role", "DefaultExecutionRole"), "Arn"]}
    assert users["ExecutionRole"] == spaces["ExecutionRole"] == default_role


def test_idle_apps_shut_down_after_the_configured_minutes(built):
    _, domain = built.one("AWS::SageMaker::Domain")
    props = domain["Properties"]
    for settings in (
        props["DefaultUserSettings"]["JupyterLabAppSettings"],
        props["DefaultUserSettings"]["CodeEditorAppSettings"],
        props["DefaultSpaceSettings"]["JupyterLabAppSettings"],
    ):
        assert settings == {"AppLifecycleManagement": {"IdleSettings": IDLE}}


def test_domain_profiles_and_home_volume_are_retained_unless_throwaway(built, throwaway):
    for synthesized, policy in ((built, "Retain"), (throwaway, "Delete")):
        for resource_type in ("AWS::SageMaker::Domain", "AWS::SageMaker::UserProfile"):
            for resource in synthesized.resources(resource_type).values():
                assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == policy
    # CloudFormation has no HomeEfsFileSystem retention property (it is an argument of DeleteDomain):
    # the volume is kept by keeping the domain.
    _, domain = built.one("AWS::SageMaker::Domain")
    assert "RetentionPolicy" not in domain["Properties"]


def test_one_profile_per_persona_each_with_its_own_role_and_the_extra_policies(built):
    profiles = {p["Properties"]["UserProfileName"]: p for p in built.resources("AWS::SageMaker::UserProfile").values()}
    assert set(profiles) == {"data-engineer", "data-scientist"}
    domain_id, _ = built.one("AWS::SageMaker::Domain")
    shared = [
        {"Ref": built.logical_id("AWS::IAM::ManagedPolicy", "MlflowAccessPolicy")},
        {"Ref": built.logical_id("AWS::IAM::ManagedPolicy", "MlflowArtifactsPolicy")},
    ]
    roles = built.resources("AWS::IAM::Role")
    role_ids = set()
    for name, profile in profiles.items():
        own = {"Ref": built.logical_id("AWS::IAM::ManagedPolicy", f"{name.title().replace('-', '')}LakePolicy")}
        assert profile["Properties"]["DomainId"] == {"Fn::GetAtt": [domain_id, "DomainId"]}
        role_id = profile["Properties"]["UserSettings"]["ExecutionRole"]["Fn::GetAtt"][0]
        role_ids.add(role_id)
        role = roles[role_id]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"] == [SAGEMAKER_TRUST]
        # The shared policies, and only this persona's own lake policy.
        assert role["ManagedPolicyArns"] == [*shared, own]
        assert name in role["Description"]
        # The role's permissions exist before anyone can open the profile.
        assert profile["DependsOn"] == [k for k, p in built.resources("AWS::IAM::Policy").items()
                                        if {"Ref": role_id} in p["Properties"]["Roles"]]  # fmt: skip
    assert len(role_ids) == 2 and built.logical_id("AWS::IAM::Role", "DefaultExecutionRole") not in role_ids


def test_persona_policies_must_name_known_personas():
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms

    from infra.constructs.workspace import StudioDomain

    stack = cdk.Stack(cdk.App(), "S")
    policy = iam.ManagedPolicy.from_managed_policy_name(stack, "P", "p")
    with pytest.raises(ValueError, match="unknown personas \\['ml_engineer'\\]"):
        StudioDomain(
            stack,
            "Studio",
            config=parse_config(_config(), "test"),
            vpc=ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id="vpc-1", availability_zones=["az-a"]),
            subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_group=ec2.SecurityGroup.from_security_group_id(stack, "Sg", "sg-1"),
            key=kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:us-east-1:111122223333:key/k"),
            extra_policies=[],
            persona_policies={"ml_engineer": policy},
        )


def test_absent_personas_get_no_profile(throwaway):
    (profile,) = throwaway.resources("AWS::SageMaker::UserProfile").values()
    assert profile["Properties"]["UserProfileName"] == "data-engineer"
    assert len(throwaway.resources("AWS::IAM::ManagedPolicy")) == 1  # its launch policy only


def test_execution_roles_run_only_their_own_private_spaces(built):
    for profile in built.resources("AWS::SageMaker::UserProfile").values():
        name = profile["Properties"]["UserProfileName"]
        role_id = profile["Properties"]["UserSettings"]["ExecutionRole"]["Fn::GetAtt"][0]
        statements = built.inline_statements(role_id)
        # Nothing but running Studio: data access comes only from the extra policies.
        assert actions_of(*statements) == STUDIO_ACTIONS
        assert "sagemaker:CreatePresignedDomainUrl" not in actions_of(*statements)
        for statement in statements:
            actions = set(actions_of(statement))
            if actions & {"sagemaker:CreateSpace", "sagemaker:CreateApp"}:
                owner = statement["Condition"]["ArnEquals"]["sagemaker:OwnerUserProfileArn"]["Fn::Join"][1]
                assert owner[-1] == f"/{name}" and ":user-profile/" in owner
                assert statement["Condition"]["StringEquals"] == {"sagemaker:SpaceSharingType": "Private"}
            if statement["Resource"] == "*":
                assert all(a.startswith("sagemaker:List") for a in actions)
            if "sagemaker:AddTags" in actions:
                assert statement["Condition"] == {"Null": {"sagemaker:TaggingAction": "false"}}
            if "kms:CreateGrant" in actions:
                assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_default_execution_role_may_only_write_studio_logs(built):
    statements = built.inline_statements(built.logical_id("AWS::IAM::Role", "DefaultExecutionRole"))
    assert actions_of(*statements) == {a for a in STUDIO_ACTIONS if a.startswith("logs:")}
    (statement,) = statements
    assert statement["Resource"]["Fn::Join"][1][-1] == ":log-group:/aws/sagemaker/studio:*"


def test_each_persona_may_open_only_its_own_profile(built):
    policies = built.resources("AWS::IAM::ManagedPolicy")
    # The persona roles of config/dev.yaml, which let the stack attach policies.
    for persona, profile, role in (
        ("DataEngineer", "data-engineer", "DataEngineer"),
        ("DataScientist", "data-scientist", "DataScientist"),
    ):
        (policy,) = [p["Properties"] for k, p in policies.items() if f"{persona}LaunchPolicy" in k]
        assert policy["Roles"] == [role]
        statements = policy["PolicyDocument"]["Statement"]
        (launch,) = [s for s in statements if "sagemaker:CreatePresignedDomainUrl" in actions_of(s)]
        assert launch["Resource"]["Fn::Join"][1][-1] == f"/{profile}"


# --- MLflow tracking server ---------------------------------------------------------------------------


def test_tracking_server_properties(built):
    _, server = built.one("AWS::SageMaker::MlflowTrackingServer")
    props = server["Properties"]
    role_id = built.logical_id("AWS::IAM::Role", "MlflowRole")
    assert props == {
        "TrackingServerName": "mlp-dev-mlflow",
        "TrackingServerSize": "Small",
        "ArtifactStoreUri": {
            "Fn::Join": ["", ["s3://", {"Fn::ImportValue": "mlp-dev-artifacts-bucket-name"}, "/mlflow/"]]
        },
        "AutomaticModelRegistration": False,
        "RoleArn": {"Fn::GetAtt": [role_id, "Arn"]},
    }
    # Runs are data; the role's permissions exist before SageMaker checks the artifact store.
    assert server["DeletionPolicy"] == server["UpdateReplacePolicy"] == "Retain"
    assert server["DependsOn"] == [built.logical_id("AWS::IAM::Policy", "MlflowRoleDefaultPolicy")]


def test_tracking_server_role_is_scoped_to_the_mlflow_prefix(built):
    role_id = built.logical_id("AWS::IAM::Role", "MlflowRole")
    assert built.resources("AWS::IAM::Role")[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        SAGEMAKER_TRUST
    ]
    bucket = {"Fn::ImportValue": "mlp-dev-artifacts-bucket-arn"}
    objects = {"Fn::Join": ["", [bucket, "/mlflow/*"]]}
    statements = built.inline_statements(role_id)
    s3 = [s for s in statements if any(a.startswith("s3:") for a in actions_of(s))]
    assert s3 == [
        {
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Effect": "Allow",
            "Resource": objects,
        },
        {
            "Action": "s3:ListBucket",
            "Condition": {"StringLike": {"s3:prefix": ["mlflow/*"]}},
            "Effect": "Allow",
            "Resource": bucket,
        },
    ]
    (kms_statement,) = [s for s in statements if s not in s3]
    assert kms_statement["Resource"] == {"Fn::GetAtt": [built.logical_id("AWS::KMS::Key", "Key"), "Arn"]}
    assert all(a.startswith("kms:") for a in actions_of(kms_statement))


def test_access_policy_names_only_the_tracking_server(built):
    server_id, _ = built.one("AWS::SageMaker::MlflowTrackingServer")
    policy = built.resources("AWS::IAM::ManagedPolicy")[built.logical_id("AWS::IAM::ManagedPolicy", "MlflowAccess")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {json.dumps(s["Resource"]) for s in statements} == {
        json.dumps({"Fn::GetAtt": [server_id, "TrackingServerArn"]})
    }
    assert actions_of(*statements) == {
        "sagemaker-mlflow:*",
        "sagemaker:CreatePresignedMlflowTrackingServerUrl",
        "sagemaker:DescribeMlflowTrackingServer",
    }


def test_artifacts_policy_reaches_only_the_mlflow_prefix(built):
    policy = built.resources("AWS::IAM::ManagedPolicy")[built.logical_id("AWS::IAM::ManagedPolicy", "MlflowArtifacts")]
    resources = [json.dumps(s["Resource"]) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    bucket = {"Fn::ImportValue": "mlp-dev-artifacts-bucket-arn"}
    assert resources == [
        json.dumps({"Fn::Join": ["", [bucket, "/mlflow/*"]]}),
        json.dumps(bucket),
        json.dumps({"Fn::GetAtt": [built.logical_id("AWS::KMS::Key", "Key"), "Arn"]}),
    ]


# --- Static checks ----------------------------------------------------------------------------------


def test_every_pack_ran_with_zero_unacknowledged_findings(built):
    from infra.checks.compliance import PACKS

    # A pack appears in the report once it has a finding, acknowledged or not: the IAM packs do here
    # (tests/test_nag.py shows with a bad stack that every registered pack reports).
    plugins = {p["pluginName"]: p for p in built.report["pluginReports"]}
    assert {"AwsSolutions", "HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321"} <= set(plugins) <= set(PACKS)
    for name, plugin in plugins.items():
        assert plugin["violations"] == [], (name, [v["ruleName"] for v in plugin["violations"]])
        assert plugin["conclusion"] == "success"


def test_every_acknowledgment_has_a_specific_reason_and_is_used(built):
    suppressed = [s for p in built.report["pluginReports"] for s in p.get("suppressedViolations", [])]
    assert suppressed
    for finding in suppressed:
        reason = finding.get("reason", "")
        assert len(reason) >= 40 and "TODO" not in reason, (finding["ruleName"], reason)
    used = {(s["acknowledgedAt"], s["acknowledgedId"]) for s in suppressed}
    assert built.acknowledged - used == set()


# cfn-lint covers these resources in tests/test_cfn_lint.py, where prod wires both constructs.
