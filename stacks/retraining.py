"""Retraining stack: the EventBridge rules that start the training pipeline again, through one function.

Four triggers, each switched on by config: a drift alarm of the Monitoring stack going to ALARM,
a schedule, enough new objects in the raw zone, and a manual request (an event with source
`<prefix>.retraining` and detail-type `Retraining Requested`). They all reach `lambdas/retraining`,
which starts the pipeline only when no execution runs and the last start is older than the
cool-down, once per event (its state table), with the trigger as the `TriggerReason` parameter.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import naming
from infra.catalog.naming import export_name
from infra.checks.compliance import acknowledge_wildcards
from infra.config import PlatformConfig, RetrainingConfig
from infra.constructs.functions import FunctionProps, PythonFunction
from infra.constructs.placement import Placement
from infra.constructs.retention import retention
from stacks.base import PlatformStack

REQUEST_DETAIL_TYPE = "Retraining Requested"


class RetrainingStack(PlatformStack):
    """The retraining function, its state table and the rules that call it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        retraining: RetrainingConfig,
        key: kms.IKey,
        alerts_topic: sns.ITopic,
        placement: Placement,
        **kwargs: Any,
    ) -> None:
        """`retraining` is the config's section; the function runs in `placement` with `key` for its data."""
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.retraining = retraining
        self.pipeline = naming.training_pipeline(config)
        self.raw_bucket = cdk.Fn.import_value(export_name(config, "raw-bucket-name"))
        self.table = self._state_table(key)
        self.function = self._function(key, alerts_topic, placement)
        self.rules: dict[str, events.CfnRule] = {}
        self._triggers()

    def _state_table(self, key: kms.IKey) -> cdk.CfnResource:
        """Per-event records (idempotency, 7-day TTL) and the new-data accumulator."""
        table = cdk.CfnResource(
            self,
            "State",
            type="AWS::DynamoDB::Table",
            properties={
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key.key_arn},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": not self.config.destroy_data_on_delete,
            },
        )
        table.apply_removal_policy(retention(self.config))
        return table

    def _function(self, key: kms.IKey, alerts_topic: sns.ITopic, placement: Placement) -> PythonFunction:
        """lambdas/retraining, which may list and start the pipeline's executions and use its state table."""
        new_data = self.retraining.new_data
        function = PythonFunction(
            self,
            "Retraining",
            config=self.config,
            props=FunctionProps(
                source="retraining",
                description=f"starts {self.pipeline} on drift, schedule, new data or request",
                environment={
                    "PIPELINE_NAME": self.pipeline,
                    "STATE_TABLE": self.table.ref,
                    "COOLDOWN_MINUTES": str(self.retraining.cooldown_minutes),
                    "RAW_BUCKET": self.raw_bucket,
                    "RAW_PREFIX": naming.dataset_prefix(self.config),
                    # Without a new-data trigger no such event arrives; the thresholds stay valid anyway.
                    "NEW_DATA_MIN_OBJECTS": str(new_data.min_objects if new_data else 1),
                    "NEW_DATA_MIN_BYTES": str(new_data.min_bytes if new_data else 0),
                    "MANUAL_SOURCE": naming.retraining_request_source(self.config),
                },
                subnet_ids=placement.subnet_ids,
                security_group=placement.security_group,
                key=key,
                alerts_topic_arn=alerts_topic.topic_arn,
                concurrency="It starts the pipeline only while it holds the lock item of its state table (a "
                "DynamoDB lease), so one start at a time still happens.",
                timeout_seconds=60,
            ),
        )
        role = function.role
        pipeline_arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:pipeline/{self.pipeline}"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
                resources=[pipeline_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[self.table.get_att("Arn").to_string()],
            )
        )
        acknowledge_wildcards(
            role, "KMS action families come from CDK's key grant.", actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"]
        )
        return function

    def _triggers(self) -> None:
        """A rule per configured trigger: drift alarms, a schedule, new raw data, manual requests."""
        retraining, raw_prefix = self.retraining, naming.dataset_prefix(self.config)
        if retraining.on_drift:
            self._rule(
                "Drift",
                "A drift alarm of the endpoint went to ALARM",
                event_pattern={
                    "source": ["aws.cloudwatch"],
                    "detail-type": ["CloudWatch Alarm State Change"],
                    "detail": {
                        "alarmName": [{"prefix": naming.drift_alarm_prefix(self.config)}],
                        "state": {"value": ["ALARM"]},
                    },
                },
            )
        if retraining.schedule:
            self._rule("Schedule", f"Retrain on schedule {retraining.schedule}", schedule=retraining.schedule)
        if retraining.new_data is not None:
            self._rule(
                "NewData",
                f"New objects under {raw_prefix} of the raw zone",
                event_pattern={
                    "source": ["aws.s3"],
                    "detail-type": ["Object Created"],
                    "detail": {"bucket": {"name": [self.raw_bucket]}, "object": {"key": [{"prefix": raw_prefix}]}},
                },
            )
        if retraining.manual:
            source = naming.retraining_request_source(self.config)
            self._rule(
                "Manual",
                f"Retraining requested by a person (source {source})",
                event_pattern={"source": [source], "detail-type": [REQUEST_DETAIL_TYPE]},
            )

    def _rule(
        self,
        name: str,
        description: str,
        *,
        event_pattern: dict[str, Any] | None = None,
        schedule: str | None = None,
    ) -> events.CfnRule:
        rule = self.function.invoked_by_rule(
            self, f"{name}Trigger", description, event_pattern=event_pattern, schedule=schedule
        )
        self.rules[name] = rule
        return rule
