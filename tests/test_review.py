"""The review's diff engine on pairs of small synthesized assemblies, its report and its exit policy."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.assembly import reader, review
from tests.conftest import cdk_context

Builder = Callable[[cdk.Stack], None]


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory):
    """Synthesize a one-stack app built by `build` (no nag packs: only the diff is under test)."""

    def run(build: Builder) -> reader.Assembly:
        outdir = tmp_path_factory.mktemp("small")
        app = cdk.App(outdir=str(outdir), context=cdk_context(), builtin_cloud_formation_validation=False)
        stack = cdk.Stack(app, "Small", stack_name="small")
        build(stack)
        app.synth()
        return reader.load(outdir)

    return run


def _bucket(**kwargs) -> Builder:
    return lambda stack: s3.Bucket(stack, "Data", removal_policy=cdk.RemovalPolicy.RETAIN, **kwargs) and None


def _changes(result: review.EnvironmentReview) -> dict[str, str]:
    return {c.logical_id: c.action for c in result.changes}


def test_a_changed_bucket_name_is_a_replacement_of_a_stateful_resource(synth_small):
    base = synth_small(_bucket())
    head = synth_small(_bucket(bucket_name="renamed-bucket"))
    result = review.review("dev", base, head)
    (change,) = [c for c in result.changes if c.type == "AWS::S3::Bucket"]
    assert (change.action, change.properties, change.stateful) == ("replaced", ("BucketName",), True)
    assert result.dangerous == [change]
    report = review.render([result], base_ref="main", allow_stateful=False)
    assert "[!CAUTION]" in report and "blocks the merge" in report and "(changes BucketName)" in report
    assert review.exit_code([result], allow_stateful=False) == 1
    assert review.exit_code([result], allow_stateful=True) == 0
    assert "allowed by label" in review.render([result], base_ref="main", allow_stateful=True)


def test_an_in_place_change_is_modified_not_replaced(synth_small):
    result = review.review("dev", synth_small(_bucket()), synth_small(_bucket(versioned=True)))
    (change,) = [c for c in result.changes if c.type == "AWS::S3::Bucket"]
    assert (change.action, change.properties) == ("modified", ("VersioningConfiguration",))
    assert result.dangerous == [] and review.exit_code([result], allow_stateful=False) == 0


def test_a_removed_stateful_resource_is_dangerous(synth_small):
    result = review.review("dev", synth_small(_bucket()), synth_small(lambda _stack: None))
    assert _changes(result)[next(c.logical_id for c in result.changes if c.type == "AWS::S3::Bucket")] == "removed"
    assert [c.type for c in result.dangerous] == ["AWS::S3::Bucket"]


def test_a_new_bucket_is_added_and_not_dangerous(synth_small):
    result = review.review("dev", synth_small(lambda _stack: None), synth_small(_bucket()))
    assert {c.action for c in result.changes} == {"added"} and result.dangerous == []


def _role(actions: list[str], resources: list[str]) -> Builder:
    def build(stack: cdk.Stack) -> None:
        role = iam.Role(stack, "Worker", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))

    return build


def test_new_wildcard_permissions_are_flagged_and_trust_policies_are_not(synth_small):
    base = synth_small(_role(["s3:GetObject"], ["arn:aws:s3:::bucket/key"]))
    head = synth_small(_role(["s3:GetObject", "s3:*"], ["arn:aws:s3:::bucket/key", "*"]))
    result = review.review("dev", base, head)
    added = {(p.action, p.resource) for p in result.permissions_added}
    assert added == {("s3:*", "arn:aws:s3:::bucket/key"), ("s3:*", "*"), ("s3:GetObject", "*")}
    assert {(p.action, p.resource) for p in result.permissions_added if p.wildcard} == added
    assert result.permissions_removed == []
    trust = review.permissions("small", head.stacks["small"].template)
    assume = next(p for p in trust if p.action == "sts:AssumeRole")
    assert assume.principal == "Service: glue.amazonaws.com" and not assume.wildcard
    report = review.render([result], base_ref="main", allow_stateful=False)
    assert "3 new wildcard permission(s)" in report and "`s3:*`" in report


def test_security_group_rules_show_up_as_network_changes(synth_small):
    def network(port: int) -> Builder:
        def build(stack: cdk.Stack) -> None:
            vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0, subnet_configuration=[])
            group = ec2.SecurityGroup(stack, "Group", vpc=vpc)
            group.add_ingress_rule(ec2.Peer.ipv4("10.0.0.0/16"), ec2.Port.tcp(port))

        return build

    result = review.review("dev", synth_small(network(443)), synth_small(network(22)))
    (change,) = [c for c in result.changes if c.type == "AWS::EC2::SecurityGroup"]
    assert change.action == "modified" and change.properties == ("SecurityGroupIngress",)
    assert "### Network and security groups" in review.render([result], base_ref="main", allow_stateful=False)


def test_stacks_near_cloudformation_limits_are_warned_about(synth_small):
    def many(stack: cdk.Stack) -> None:
        for i in range(410):
            cdk.CfnWaitConditionHandle(stack, f"Handle{i}")

    result = review.review("dev", None, synth_small(many))
    assert result.limits == ["small: 410 resources, limit 500"]
    assert "[!WARNING]" in review.render([result], base_ref="main", allow_stateful=False)
    big = reader.Stack("big", {"Resources": {}}, size=900_000)
    assert review.limit_warnings({"big": big}) == ["big: template 900,000 bytes, limit 1,000,000"]


def test_new_acknowledgments_are_listed_with_their_reason():
    def report(*acks):
        findings = [
            {"ruleName": rule, "reason": reason, "violatingConstructs": [{"constructPath": path}]}
            for rule, path, reason in acks
        ]
        return {"pluginReports": [{"pluginName": "AwsSolutions", "suppressedViolations": findings}]}

    old = ("AwsSolutions-S1", "A/Bucket", "it is the log bucket")
    new = ("AwsSolutions-IAM5[Resource::*]", "A/Role", "ENI calls take no resource")
    base = reader.Assembly(report=report(old))
    head = reader.Assembly(report=report(old, new))
    assert review.review("dev", base, head).acknowledgments_added == [new]


def test_the_whole_platform_compared_with_itself_has_no_changes(dev):
    head = reader.load(dev.outdir)
    result = review.review("dev", head, head)
    assert result.changes == [] and result.permissions_added == [] and result.acknowledgments_added == []
    assert review.monthly_delta(result) == 0
    assert "No resource changes." in review.render([result], base_ref="HEAD", allow_stateful=False)


def test_a_base_ref_that_does_not_exist_fails_with_one_line(capsys):
    assert review.main(["--base", "no-such-ref-anywhere", "--env", "dev"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("review: cannot check out BASE 'no-such-ref-anywhere'")
    worktrees = subprocess.run(["git", "worktree", "list"], capture_output=True, text=True, check=True).stdout
    assert "review-" not in worktrees
