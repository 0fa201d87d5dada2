"""Statements every SageMaker execution role of the platform needs, whatever it runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_iam as iam

from infra.catalog import naming
from infra.checks.compliance import checkov_skip_policies
from infra.config import PlatformConfig

# What SageMaker does with a role's credentials to place a job or endpoint in the VPC.
VPC_NETWORK_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)


def grant_resourceless(role: iam.Role, *, vpc: bool = True) -> None:
    """ECR login and, in the VPC, the network interfaces: actions SageMaker needs on `*`.

    In the VPC, checkov's checks of write and permissions-management actions on `*` are skipped
    on the role's policy, with the reason.
    """
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecr:GetAuthorizationToken", *(VPC_NETWORK_ACTIONS if vpc else ())], resources=["*"]
        )
    )
    if vpc:
        checkov_skip_policies(
            role,
            "SageMaker creates the network interfaces of this role's jobs or endpoint in the VPC, permits "
            "itself to attach them and deletes them, with this role; they are created per job or instance, "
            "and SageMaker's documentation grants these actions on *.",
            "CKV_AWS_109",
            "CKV_AWS_111",
        )


def log_streams(log_group_arn_pattern: str) -> iam.PolicyStatement:
    """Write the container logs SageMaker sends to CloudWatch Logs under one log group pattern."""
    return iam.PolicyStatement(
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
        resources=[log_group_arn_pattern],
    )


def metrics(namespaces: Sequence[str]) -> iam.PolicyStatement:
    """Publish metrics, only into the given (wildcard) namespaces."""
    return iam.PolicyStatement(
        actions=["cloudwatch:PutMetricData"],
        resources=["*"],
        conditions={"StringLike": {"cloudwatch:namespace": list(namespaces)}},
    )


def consumer_grant(
    config: PlatformConfig,
    partition: str,
    *,
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    kinds: tuple[str, ...] = naming.SERVING_ROLE_KINDS,
    **conditions: Mapping[str, object],
) -> iam.PolicyStatement | None:
    """A resource-policy statement for the serving roles of training.model_consumers, or None without any.

    `kinds` are the serving role kinds granted (all by default); `conditions` are further condition
    blocks by operator, e.g. `StringEquals={"kms:ViaService": ...}`.

    The roles are named by `aws:PrincipalArn` with their accounts as principals, so the policy is
    valid before the roles exist (the consumers deploy after this environment).
    """
    roles = naming.consumer_serving_roles(config, partition, kinds)
    if not roles:
        return None
    assert config.training is not None
    return iam.PolicyStatement(
        sid=sid,
        principals=[iam.AccountPrincipal(c.account) for c in config.training.model_consumers],
        actions=list(actions),
        resources=list(resources),
        conditions={"ArnEquals": {"aws:PrincipalArn": roles}, **conditions},
    )
