"""The model registry: the model package group, and its sharing with the accounts that serve its versions."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam

from infra.catalog import naming
from infra.checks.compliance import INLINE_POLICY_REASON, acknowledge, in_hipaa_nist_pci, service_principal
from infra.constructs.queues import DeadLetterQueue
from infra.constructs.retention import retention
from stacks.training.context import TrainingContext


def model_package_group(ctx: TrainingContext) -> cdk.CfnResource:
    """The group the pipeline registers versions into, kept with its history unless data may be destroyed."""
    # Generic L1 resources: the aws_sagemaker bindings would add 0.4 s to every synth for two types.
    group = cdk.CfnResource(
        ctx.stack,
        "Models",
        type="AWS::SageMaker::ModelPackageGroup",
        properties={
            "ModelPackageGroupName": ctx.spec.model_package_group,
            "ModelPackageGroupDescription": f"Models of {ctx.config.prefix}, registered by the training pipeline",
        },
    )
    # Approved versions and their history are what serving and audits rely on.
    group.apply_removal_policy(retention(ctx.config))
    return group


def share_registry(ctx: TrainingContext, group: cdk.CfnResource) -> events.CfnRule:
    """Environments in other accounts serve this registry's approved versions.

    The group's resource policy lets each consumer account read its versions; approvals and
    rejections are forwarded to each consumer account's default event bus, where its promotion
    function takes them (the consumer's bus policy admits this account's events only).
    """
    name, consumers = ctx.spec.model_package_group, ctx.training.model_consumers
    partition, region, account = ctx.stack.partition, ctx.stack.region, ctx.stack.account
    group.add_property_override(
        "ModelPackageGroupPolicy",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ServingAccountsReadVersions",
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:{partition}:iam::{c.account}:root" for c in consumers]},
                    "Action": [
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:ListModelPackages",
                    ],
                    "Resource": [
                        ctx.arn("sagemaker", f"model-package-group/{name}"),
                        ctx.arn("sagemaker", f"model-package/{name}/*"),
                    ],
                }
            ],
        },
    )
    buses = [f"arn:{partition}:events:{region}:{c.account}:event-bus/default" for c in consumers]
    role = iam.Role(
        ctx.stack,
        "ApprovalForwarding",
        assumed_by=service_principal("events.amazonaws.com", account),
        description=f"EventBridge forwarding {name} approvals to the accounts that serve its versions",
    )
    role.add_to_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=buses))
    acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
    dead_letters = DeadLetterQueue(
        ctx.stack,
        "UnforwardedApprovals",
        config=ctx.config,
        key=ctx.inputs.logs_key,
        source="the approval forwarding rule",
    )
    rule = events.CfnRule(
        ctx.stack,
        "ForwardApprovals",
        description=f"Approvals and rejections in {name} reach the accounts that serve it",
        event_pattern=naming.model_package_changes(name, "Approved", "Rejected"),
        state="ENABLED",
        targets=[
            dead_letters.target(f"{c.environment.title().replace('-', '')}Bus", bus, bus=True, role_arn=role.role_arn)
            for c, bus in zip(consumers, buses, strict=True)
        ],
    )
    dead_letters.receive_from(rule, "ForwardingDeadLetters")
    return rule
