"""Dead-letter queues: where undeliverable messages and events wait, encrypted and retained."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.checks.compliance import AWS_SOLUTIONS, SERVERLESS, acknowledge
from infra.config import PlatformConfig
from infra.constructs.retention import retention


class DeadLetterQueue(sqs.Queue):
    """A KMS-encrypted, TLS-only queue that keeps what `source` could not deliver for 14 days."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, key: kms.IKey, source: str
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            # Undelivered messages are data someone must still look at.
            removal_policy=retention(config),
        )
        acknowledge(
            self,
            f"This queue is itself the dead-letter queue of {source}; a queue behind it would never be read either.",
            [f"{AWS_SOLUTIONS}::AwsSolutions-SQS3", f"{SERVERLESS}::Serverless-SQSRedrivePolicy"],
        )

    def target(self, target_id: str, arn: str, *, bus: bool = False, **options: Any) -> events.CfnRule.TargetProperty:
        """An EventBridge target retried for an hour, whose undeliverable events land here.

        An event bus target (`bus=True`) takes no retry policy: EventBridge applies its own.
        Pair it with `receive_from(rule)` once the rule exists.
        """
        retry = None
        if not bus:
            retry = events.CfnRule.RetryPolicyProperty(maximum_retry_attempts=8, maximum_event_age_in_seconds=3600)
        return events.CfnRule.TargetProperty(
            id=target_id,
            arn=arn,
            retry_policy=retry,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.queue_arn),
            **options,
        )

    def receive_from(self, rule: events.CfnRule, sid: str) -> None:
        """Let EventBridge put the undeliverable events of this one rule here."""
        self.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.attr_arn}},
            )
        )
