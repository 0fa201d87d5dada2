"""How a new version replaces the served one: blue/green or rolling, rolled back on per-variant alarms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk

from infra.config import ServingConfig
from stacks.serving.context import ServingContext

# CloudWatch's SageMaker endpoint metrics.
NAMESPACE = "AWS/SageMaker"


def deployment_config(serving: ServingConfig, alarm_names: list[str]) -> dict[str, Any]:
    """The endpoint's DeploymentConfig: blue/green (canary, linear, all at once) or rolling, with alarm rollback."""
    d = serving.deployment
    wait, baking = d.wait_minutes * 60, d.baking_minutes * 60
    rollback = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    if d.strategy == "rolling":
        steps = math_ceil(100, d.rolling_batch_percent)
        return {
            "RollingUpdatePolicy": {
                "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": d.rolling_batch_percent},
                "WaitIntervalInSeconds": wait,
                "MaximumExecutionTimeoutInSeconds": _timeout(steps * wait + baking),
                "RollbackMaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 100},
            },
            "AutoRollbackConfiguration": rollback,
        }
    routing: dict[str, Any]
    if d.strategy == "canary":
        routing = {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": d.canary_percent},
            "WaitIntervalInSeconds": wait,
        }
        steps = 1
    elif d.strategy == "linear":
        routing = {
            "Type": "LINEAR",
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": d.linear_step_percent},
            "WaitIntervalInSeconds": wait,
        }
        steps = math_ceil(100, d.linear_step_percent)
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait}
        steps = 1
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": baking,
            "MaximumExecutionTimeoutInSeconds": _timeout(steps * wait + baking),
        },
        "AutoRollbackConfiguration": rollback,
    }


def math_ceil(total: int, step: int) -> int:
    return -(-total // step)


def _timeout(seconds: int) -> int:
    # Room for provisioning the new fleet on top of the shifting and baking; SageMaker allows 600-14400.
    return max(600, min(14400, seconds + 3600))


@dataclass(frozen=True)
class RollbackAlarm:
    """A rollback alarm: its name is fixed so the endpoint's deployment config can name it."""

    name: str
    resource: cdk.CfnResource


def rollback_alarms(ctx: ServingContext) -> list[RollbackAlarm]:
    """Creates per variant a 5XX-rate and a p99-latency alarm; a deployment that trips one rolls back."""
    alarms = []
    for variant in ctx.serving.variant_names:
        for suffix, (name, properties) in _variant_alarms(ctx, variant).items():
            resource = ctx.state.when_served(
                f"{variant}{suffix}Alarm",
                "AWS::CloudWatch::Alarm",
                {
                    "AlarmName": name,
                    **properties,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "EvaluationPeriods": 3,
                    "DatapointsToAlarm": 2,
                    "TreatMissingData": "notBreaching",
                    "AlarmActions": [ctx.inputs.alerts_topic.topic_arn],
                    "OKActions": [ctx.inputs.alerts_topic.topic_arn],
                },
            )
            alarms.append(RollbackAlarm(name, resource))
    return alarms


def _variant_alarms(ctx: ServingContext, variant: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Construct id suffix -> (alarm name, what it watches) of one variant's rollback alarms."""
    d = ctx.serving.deployment
    dimensions = [{"Name": "EndpointName", "Value": ctx.endpoint_name}, {"Name": "VariantName", "Value": variant}]

    def stat(metric_id: str, metric: str) -> dict[str, Any]:
        return {
            "Id": metric_id,
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }

    errors = {
        "AlarmDescription": f"5XX responses of variant {variant} above {d.max_error_rate_percent:g}% "
        "(deployments roll back)",
        "Metrics": [
            stat("errors", "Invocation5XXErrors"),
            stat("invocations", "Invocations"),
            {
                "Id": "rate",
                "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)",
                "Label": "5XX rate (%)",
                "ReturnData": True,
            },
        ],
        "Threshold": d.max_error_rate_percent,
    }
    latency = {
        "AlarmDescription": f"p99 model latency of variant {variant} above {d.max_latency_ms} ms "
        "(deployments roll back)",
        "Namespace": NAMESPACE,
        "MetricName": "ModelLatency",
        "Dimensions": dimensions,
        "ExtendedStatistic": "p99",
        "Period": 60,
        # ModelLatency is reported in microseconds.
        "Threshold": d.max_latency_ms * 1000,
    }
    return {
        "Errors": (f"{ctx.endpoint_name}-{variant}-5xx-rate", errors),
        "Latency": (f"{ctx.endpoint_name}-{variant}-latency", latency),
    }
