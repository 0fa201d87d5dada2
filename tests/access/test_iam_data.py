"""Every policy of every environment against the pinned IAM data set: actions exist, resources fit the
resource types the actions accept (`*` for those that take none), condition keys are valid for their
actions, and ARNs name the action's service. Data gaps are listed in tests/access/GAPS.md.
"""

from __future__ import annotations

import pytest

from tests.access import iam_data
from tests.access.environments import NAMES, Deployed
from tests.access.world import Policy

ENVIRONMENTS = list(NAMES)
# Findings accepted on purpose: (where, problem) substrings, and why.
ACCEPTED = {
    ("AllowCloudWatchLogs", "kms:EncryptionContext:aws:logs:arn (ArnLike) is not valid for kms:Describe*"): (
        "AWS's documented key policy for CloudWatch Logs puts kms:Describe* under the encryption-context "
        "condition; DescribeKey carries no context, so that action is never granted by it, and Logs works "
        "without it (the statement is kept as AWS publishes it)"
    ),
}


def _accepted(finding: str) -> bool:
    return any(where in finding and problem in finding for where, problem in ACCEPTED)


def every_policy(deployed: Deployed) -> list[tuple[str, Policy]]:
    """(where, policy) for each policy the environment creates (identity, trust, resource, endpoint)."""
    world = deployed.world
    seen: set[int] = set()
    found: list[tuple[str, Policy]] = []

    def add(where: str, policy: Policy | None) -> None:
        if policy is not None and id(policy.document) not in seen and policy.origin != "AWS managed":
            seen.add(id(policy.document))
            found.append((where, policy))

    for principal in world.principals.values():
        if principal.origin.startswith("CDKToolkit"):
            continue  # the CDK bootstrap's roles are not the platform's
        for policy in principal.policies:
            add(f"{policy.origin} ({policy.name}, on {principal.name})", policy)
        if principal.trust:
            add(f"{principal.origin} trust policy", Policy("trust policy", principal.trust, principal.origin))
    for arn, policy in world.resource_policies.items():
        add(f"{policy.origin} ({policy.name} of {arn})", policy)
    for endpoint in world.endpoints:
        add(f"{endpoint.policy.origin} ({endpoint.policy.name})", endpoint.policy)
    return found


def test_the_data_set_is_the_pinned_one():
    """The checks are only as current as the data: its version and date are part of every report."""
    assert "0.21.202609261" in iam_data.version() and "2026-09-26" in iam_data.version()


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_policy_fits_the_iam_data(env_name, environments):
    deployed = environments[env_name]
    policies = every_policy(deployed)
    assert len(policies) > 20
    findings = [str(f) for where, policy in policies for f in iam_data.check_document(policy.document, where)]
    findings = [f for f in findings if not _accepted(f)]
    assert findings == [], f"against {iam_data.version()}:\n" + "\n".join(findings)


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Effect": "Allow", "Action": "s3:GetObjects", "Resource": "*"}, "does not exist"),
        (
            {"Effect": "Allow", "Action": "glue:GetSecurityConfiguration", "Resource": "arn:aws:glue:r:1:catalog"},
            "* only",
        ),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket"}, "granted on none"),
        ({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:s3:::bucket/*"}, "a s3 ARN"),
        (
            {
                "Effect": "Deny",
                "Action": "sagemaker:CreateEndpointConfig",
                "Resource": "*",
                "Condition": {"Null": {"sagemaker:VolumeKmsKey": "true"}},
            },
            "not valid for sagemaker:CreateEndpointConfig",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": "*",
                "Condition": {"StringEquals": {"s3:prefix": "x"}},
            },
            "s3:prefix",
        ),
        (
            {
                "Effect": "Allow",
                "Action": "events:PutEvents",
                "Resource": "*",
                "Condition": {"StringEquals": {"events:source": "aws.sagemaker"}},
            },
            "never matches",
        ),
    ],
    ids=[
        "no-such-action",
        "resourceless-on-arn",
        "object-action-on-bucket",
        "wrong-service",
        "deprecated-key",
        "foreign-key",
        "multivalued-key",
    ],
)
def test_each_check_can_fail(statement, problem):
    findings = [str(f) for f in iam_data.check_document({"Statement": [statement]}, "fixture")]
    assert any(problem in f for f in findings), findings


def test_a_deprecated_key_beside_its_replacement_is_accepted():
    statement = {
        "Effect": "Deny",
        "Action": "sagemaker:CreateEndpointConfig",
        "Resource": "*",
        "Condition": {"Null": {"sagemaker:VolumeKmsKeyArn": "true", "sagemaker:VolumeKmsKey": "true"}},
    }
    assert iam_data.check_document({"Statement": [statement]}, "fixture") == []
