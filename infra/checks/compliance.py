"""Static checks on every synth: the public cdk-nag packs, the project's ML pack, and acknowledgments."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

import aws_cdk as cdk
import cdk_nag
from constructs import IConstruct

from infra.checks.rules import PACK_NAME, ml_platform_checks

if TYPE_CHECKING:
    from aws_cdk import aws_iam as iam

# Namespaces of the packs as they appear in acknowledgment ids (`<namespace>::<rule id>`).
AWS_SOLUTIONS = "AwsSolutions"
HIPAA = "HIPAA.Security"
NIST = "NIST.800.53.R5"
PCI = "PCI.DSS.321"
SERVERLESS = "Serverless"
ML = PACK_NAME
PACKS = (AWS_SOLUTIONS, HIPAA, NIST, PCI, SERVERLESS, ML)


# `key.grant_encrypt_decrypt` grants these action families; cdk-nag reports each wildcard.
KMS_GRANT_WILDCARDS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")
INLINE_POLICY_REASON = (
    "CDK's default policy of a role this stack creates for one service: it lives and dies with the role, "
    "which is what an inline policy is for."
)


def service_principal(service: str, account: str) -> iam.PrincipalBase:
    """`service` acting for this account only: the confused-deputy guard of every service role here."""
    from aws_cdk import aws_iam as iam

    return iam.ServicePrincipal(service).with_conditions({"StringEquals": {"aws:SourceAccount": account}})


PROVIDER_REASON = (
    "A provider CDK itself adds for a deploy-time custom resource: it calls one AWS API "
    "while CloudFormation deploys, holds no data and needs no VPC, queue, tracing or "
    "reserved concurrency."
)
# checkov's checks of a function's reserved concurrency, dead-letter queue and VPC.
PROVIDER_CHECKS = ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117")


def _providers(scope: IConstruct) -> list[IConstruct]:
    """CDK's own custom-resource providers under `scope` (emptying the default security group, deleting objects)."""
    return [
        construct
        for construct in scope.node.find_all()
        if construct.node.id.startswith("Custom::") and construct.node.id.endswith("CustomResourceProvider")
    ]


def skip_provider_checks(scope: IConstruct) -> None:
    """Skip checkov's concurrency, queue and VPC checks on the functions of CDK's providers under `scope`.

    A delivery stage's templates are written when the pipeline adds the stage, before the app
    registers its checks: build_platform calls this itself, so the skips are in those templates too.
    """
    for provider in _providers(scope):
        for child in provider.node.find_all():
            if isinstance(child, cdk.CfnResource) and child.cfn_resource_type == "AWS::Lambda::Function":
                checkov_skip(child, PROVIDER_REASON, *PROVIDER_CHECKS)


def enable_checks(app: cdk.Stage) -> None:
    """Register every pack as a validation plugin on an app or a stage: a finding not acknowledged fails synth.

    Call it once every construct exists: it also acknowledges MLP-L1 and MLP-L2 on CDK's own
    custom-resource providers (emptying the default security group, auto-deleting objects of
    throwaway buckets), and skips checkov's checks of the same on them.
    """
    for provider in _providers(app):
        acknowledge(provider, PROVIDER_REASON, [f"{ML}::MLP-L1", f"{ML}::MLP-L2"])
    skip_provider_checks(app)
    cdk.Validations.of(app).add_plugins(
        cdk_nag.AwsSolutionsChecks(),
        cdk_nag.HIPAASecurityChecks(),
        cdk_nag.NIST80053R5Checks(),
        cdk_nag.PCIDSS321Checks(),
        cdk_nag.ServerlessChecks(),
        ml_platform_checks(),
    )


def in_hipaa_nist_pci(rule: str) -> list[str]:
    """The namespaced ids of a rule the HIPAA, NIST 800-53 R5 and PCI DSS packs share by name."""
    return [f"{HIPAA}::{HIPAA}-{rule}", f"{NIST}::{NIST}-{rule}", f"{PCI}::{PCI}-{rule}"]


def acknowledge(scope: IConstruct, reason: str, rules: Iterable[str]) -> None:
    """Acknowledge findings on `scope` and its children, with the reason recorded in the report.

    `rules` are namespaced ids such as "AwsSolutions::AwsSolutions-S1": a plain id would be
    dropped silently by CDK, which is why this helper insists on the namespace.
    """
    acks = []
    for rule in rules:
        if "::" not in rule:
            raise ValueError(f"acknowledgment id {rule!r} needs its pack namespace ('<pack>::<rule>')")
        acks.append(cdk.Acknowledgment(id=rule, reason=reason))
    cdk.Validations.of(scope).acknowledge(*acks)


def nag_text(scope: IConstruct, value: str) -> str:
    """A string as cdk-nag names it in findings: `Ref X` -> `<X>`, `GetAtt X.Arn` -> `<X.Arn>`."""
    return _render(cdk.Stack.of(scope).resolve(value))


def _render(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{'.'.join(argument)}>"
        if function == "Fn::Join":
            separator: str
            parts: list[object]
            separator, parts = argument
            return separator.join(_render(part) for part in parts)
        if function == "Fn::ImportValue" and isinstance(argument, str):
            return argument  # the export's name
        if function == "Fn::GetStackOutput":
            return json.dumps(value, separators=(",", ":"))
    raise ValueError(f"cannot name {value!r} the way cdk-nag does")


def acknowledge_wildcards(
    scope: IConstruct, reason: str, *, actions: Iterable[str] = (), resources: Iterable[str] = ()
) -> None:
    """Acknowledge AwsSolutions-IAM5 findings one wildcard at a time (cdk-nag 3 has no rule-wide ack).

    `resources` may hold tokens such as `bucket.arn_for_objects("*")`; they are named the way
    the finding names them, so a renamed resource makes a stale acknowledgment visible.
    """
    ids = [f"{AWS_SOLUTIONS}::AwsSolutions-IAM5[Action::{action}]" for action in actions]
    ids += [f"{AWS_SOLUTIONS}::AwsSolutions-IAM5[Resource::{nag_text(scope, r)}]" for r in resources]
    acknowledge(scope, reason, ids)


def checkov_skip(resource: IConstruct, reason: str, *checks: str) -> None:
    """Record why checkov's `checks` do not apply to a resource, in the `Metadata.checkov.skip` checkov reads.

    The counterpart of `acknowledge` for checkov (the tests run it over every template,
    tests/test_checkov.py). `resource` is a CloudFormation resource or a construct whose default
    child is one. A check skipped again for another reason keeps both reasons.
    """
    if not reason.strip():
        raise ValueError(f"a checkov skip on {resource.node.path} needs its reason")
    cfn = resource if isinstance(resource, cdk.CfnResource) else resource.node.default_child
    if not isinstance(cfn, cdk.CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to carry a checkov skip")
    skips = {skip["id"]: skip["comment"] for skip in (cfn.get_metadata("checkov") or {}).get("skip", [])}
    for check in checks:
        skips[check] = reason if skips.get(check, reason) == reason else f"{skips[check]} {reason}"
    cfn.add_metadata("checkov", {"skip": [{"id": check, "comment": skips[check]} for check in sorted(skips)]})


def checkov_skip_policies(role: IConstruct, reason: str, *checks: str) -> None:
    """`checkov_skip` on the inline policies of `role`, where checkov finds what a role's statements allow.

    Call it after the statement the skip explains is added (a role's default policy exists from
    its first statement on).
    """
    policies = [
        child
        for child in role.node.find_all()
        if isinstance(child, cdk.CfnResource) and child.cfn_resource_type == "AWS::IAM::Policy"
    ]
    if not policies:
        raise ValueError(f"{role.node.path} has no inline policy to carry a checkov skip")
    for policy in policies:
        checkov_skip(policy, reason, *checks)
