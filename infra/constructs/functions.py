"""A Python Lambda function from `lambdas/`, on CloudFormation resources, with the platform's defaults.

The `aws_lambda` bindings would add about 0.3 s to every synth; the function, its invoke config
and its permission are three plain resources. Defaults: in the VPC's isolated subnets, active
tracing, JSON logs in a KMS-encrypted log group that is kept, failed asynchronous invocations
retried and then kept in an encrypted dead-letter queue, and an alarm when anything lands there.
No reserved concurrency (decision 26): an account with a concurrency limit of 10 can reserve none;
the handlers serialize their work with a DynamoDB lock instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as assets
from constructs import Construct

from infra.catalog import naming
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    ML,
    acknowledge,
    acknowledge_wildcards,
    checkov_skip,
    checkov_skip_policies,
    in_hipaa_nist_pci,
)
from infra.config import PlatformConfig
from infra.constructs.log_groups import log_retention
from infra.constructs.queues import DeadLetterQueue
from infra.constructs.retention import retention

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
RUNTIME = "python3.13"


@dataclass(frozen=True)
class FunctionProps:
    """What one platform function is: its code, purpose and settings, and where it runs."""

    source: str  # the folder under lambdas/ holding handler.py; also names the function
    description: str  # what it does, for the function and its role
    environment: Mapping[str, str]
    subnet_ids: Sequence[str]  # the VPC subnets its network interfaces live in
    security_group: ec2.ISecurityGroup
    key: kms.IKey  # encrypts its logs, dead letters and environment
    alerts_topic_arn: str  # told when an invocation fails for good
    # Why concurrent invocations are safe without a reserved concurrency (part of the MLP-L2 acknowledgment).
    concurrency: str
    timeout_seconds: int = 60
    retry_attempts: int = 2  # asynchronous invocations: retries before the dead-letter queue
    max_event_age_seconds: int = 3600
    role_name: str | None = None  # named only where another account's policy grants it by ARN


class PythonFunction(Construct):
    """`lambdas/<source>/handler.py` as a function; `role` is its execution role, to be granted more."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, props: FunctionProps) -> None:
        super().__init__(scope, construct_id)
        self.stack = cdk.Stack.of(self)
        self.props = props
        code = assets.Asset(self, "Code", path=str(LAMBDAS / props.source), exclude=["__pycache__", "*.pyc"])
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=props.key,
            retention=log_retention(config.security.function_log_retention_days),
            removal_policy=retention(config),
        )
        self.dead_letters = DeadLetterQueue(
            self,
            "DeadLetters",
            config=config,
            key=props.key,
            source=f"the {props.source} function's failed invocations",
        )
        self.role = self._role()
        self.function = self._function(config, code)
        self.function_arn = self.function.get_att("Arn").to_string()
        self.function_name = self.function.ref
        self._failures()

    def _role(self) -> iam.Role:
        """The execution role: its own logs, dead letters, alerts and key, and VPC networking."""
        props = self.props
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"The {props.source} function: {props.description}",
            role_name=props.role_name,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=[props.alerts_topic_arn]))
        props.key.grant_encrypt_decrypt(role)
        # Resource-less actions: the function's network interfaces in the VPC, and trace segments.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                ],
                resources=["*"],
            )
        )
        checkov_skip_policies(
            role,
            "Lambda creates the function's network interfaces in the VPC, assigns their addresses and deletes "
            "them with this role; it picks their ids as it creates them, and AWS's managed policy for it "
            "(AWSLambdaVPCAccessExecutionRole) grants these actions on * too.",
            "CKV_AWS_111",
        )
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Lambda creates and names the function's VPC network interfaces itself (no id to grant on), and "
            "X-Ray segments take no resource ARN; the KMS action "
            "families come from CDK's key grant.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=["*"],
        )
        return role

    def _function(self, config: PlatformConfig, code: assets.Asset) -> cdk.CfnResource:
        """The function itself, named from the config, in the VPC, with no reserved concurrency."""
        props = self.props
        function = cdk.CfnResource(
            self,
            "Function",
            type="AWS::Lambda::Function",
            properties={
                # Named, so alarms, dashboards and tests can name it without a cross-stack reference.
                "FunctionName": naming.function_name(config, props.source),
                "Description": props.description,
                "Runtime": RUNTIME,
                "Handler": "handler.handler",
                "Code": {"S3Bucket": code.s3_bucket_name, "S3Key": code.s3_object_key},
                "Role": self.role.role_arn,
                "Timeout": props.timeout_seconds,
                "MemorySize": 256,
                "DeadLetterConfig": {"TargetArn": self.dead_letters.queue_arn},
                "TracingConfig": {"Mode": "Active"},
                "VpcConfig": {
                    "SubnetIds": list(props.subnet_ids),
                    "SecurityGroupIds": [props.security_group.security_group_id],
                },
                "Environment": {"Variables": dict(props.environment)},
                "KmsKeyArn": props.key.key_arn,
                "LoggingConfig": {
                    "LogFormat": "JSON",
                    "LogGroup": self.log_group.log_group_name,
                    "ApplicationLogLevel": "INFO",
                    "SystemLogLevel": "WARN",
                },
            },
        )
        function.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        no_reserved_concurrency = (
            "No reserved concurrency: accounts that start with a concurrency limit of 10 cannot reserve any "
            f"(Lambda keeps 10 unreserved there; decision 26). {props.concurrency}"
        )
        acknowledge(function, no_reserved_concurrency, [f"{ML}::MLP-L2"])
        checkov_skip(function, no_reserved_concurrency, "CKV_AWS_115")
        return function

    def _failures(self) -> None:
        """Failed asynchronous invocations: retried, then kept (DLQ) and announced; an alarm on the DLQ."""
        props = self.props
        cdk.CfnResource(
            self,
            "InvokeConfig",
            type="AWS::Lambda::EventInvokeConfig",
            properties={
                "FunctionName": self.function.ref,
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": props.retry_attempts,
                "MaximumEventAgeInSeconds": props.max_event_age_seconds,
                "DestinationConfig": {"OnFailure": {"Destination": props.alerts_topic_arn}},
            },
        )
        self.dead_letter_alarm = cdk.CfnResource(
            self,
            "DeadLettersAlarm",
            type="AWS::CloudWatch::Alarm",
            properties={
                "AlarmDescription": f"Invocations of the {props.source} function failed after every retry",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": self.dead_letters.queue_name}],
                "Statistic": "Maximum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [props.alerts_topic_arn],
            },
        )

    def invoked_by_rule(
        self,
        scope: Construct,
        rule_id: str,
        description: str,
        *,
        event_pattern: dict[str, Any] | None = None,
        schedule: str | None = None,
        input_transformer: events.CfnRule.InputTransformerProperty | None = None,
    ) -> events.CfnRule:
        """An EventBridge rule in `scope` that invokes the function: retried, undelivered events kept.

        `input_transformer`, if given, shapes the event the function receives.
        """
        rule = events.CfnRule(
            scope,
            rule_id,
            description=description,
            event_pattern=event_pattern,
            schedule_expression=schedule,
            state="ENABLED",
            targets=[self.dead_letters.target(self.node.id, self.function_arn, input_transformer=input_transformer)],
        )
        cdk.CfnResource(
            self,
            f"{rule_id}Invoke",
            type="AWS::Lambda::Permission",
            properties={
                "Action": "lambda:InvokeFunction",
                "FunctionName": self.function_arn,
                "Principal": "events.amazonaws.com",
                "SourceArn": rule.attr_arn,
                "SourceAccount": self.stack.account,
            },
        )
        self.dead_letters.receive_from(rule, f"{rule_id}DeadLetters")
        return rule
