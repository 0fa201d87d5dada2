"""Application Auto Scaling of the endpoint's variants: target tracking, and a step out of zero instances."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from infra.catalog import instances
from infra.config import AutoscalingSettings, VariantConfig
from stacks.serving.context import ServingContext
from stacks.serving.deployment import NAMESPACE


def autoscaling(ctx: ServingContext, endpoint: cdk.CfnResource) -> list[cdk.CfnResource]:
    """Creates per variant a scalable target and its target-tracking policies (serving.autoscaling, if set)."""
    scaling = ctx.serving.autoscaling
    if scaling is None:
        return []
    resources = []
    for variant in ctx.serving.variants:
        target = ctx.state.when_served(
            f"{variant.name}ScalableTarget",
            "AWS::ApplicationAutoScaling::ScalableTarget",
            {
                "ServiceNamespace": "sagemaker",
                "ResourceId": f"endpoint/{ctx.endpoint_name}/variant/{variant.name}",
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "MinCapacity": scaling.min_instances,
                "MaxCapacity": scaling.max_instances,
            },
        )
        target.node.add_dependency(endpoint)
        resources.append(target)
        for name, policy in _policies(ctx, variant, scaling).items():
            resources.append(
                ctx.state.when_served(
                    f"{variant.name}{name}Scaling",
                    "AWS::ApplicationAutoScaling::ScalingPolicy",
                    {
                        "PolicyName": f"{ctx.endpoint_name}-{variant.name}-{name.lower()}",
                        "PolicyType": "TargetTrackingScaling",
                        "ScalingTargetId": target.ref,
                        "TargetTrackingScalingPolicyConfiguration": policy,
                    },
                )
            )
        if ctx.serving.mode == "async" and scaling.min_instances == 0:
            resources.extend(_scale_from_zero(ctx, variant.name, target, scaling.scale_out_cooldown_seconds))
    return resources


def _policies(ctx: ServingContext, variant: VariantConfig, scaling: AutoscalingSettings) -> dict[str, dict[str, Any]]:
    """Name -> target-tracking configuration: the queue backlog (async) or invocations, and GPU use if set."""
    cooldowns = {
        "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
        "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
        "DisableScaleIn": scaling.scale_in_protection,
    }
    policies: dict[str, dict[str, Any]] = {}
    if ctx.serving.mode == "async":
        policies["Backlog"] = {
            "TargetValue": scaling.backlog_per_instance,
            "CustomizedMetricSpecification": {
                "Namespace": NAMESPACE,
                "MetricName": "ApproximateBacklogSizePerInstance",
                "Dimensions": [{"Name": "EndpointName", "Value": ctx.endpoint_name}],
                "Statistic": "Average",
            },
            **cooldowns,
        }
    else:
        policies["Invocations"] = {
            "TargetValue": scaling.invocations_per_instance,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            **cooldowns,
        }
    if scaling.gpu_utilization_percent is not None:
        # GPUUtilization adds up the instance's GPUs: 100 per GPU.
        gpus = instances.get(variant.instance_type).accelerator_count
        policies["Gpu"] = {
            "TargetValue": scaling.gpu_utilization_percent * gpus,
            "CustomizedMetricSpecification": {
                "Namespace": "/aws/sagemaker/Endpoints",
                "MetricName": "GPUUtilization",
                "Dimensions": [
                    {"Name": "EndpointName", "Value": ctx.endpoint_name},
                    {"Name": "VariantName", "Value": variant.name},
                ],
                "Statistic": "Average",
            },
            **cooldowns,
        }
    return policies


def _scale_from_zero(
    ctx: ServingContext, variant: str, target: cdk.CfnResource, cooldown: int
) -> list[cdk.CfnResource]:
    """Target tracking cannot leave zero instances: a step policy adds one when requests queue up."""
    step = ctx.state.when_served(
        f"{variant}ScaleFromZero",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyName": f"{ctx.endpoint_name}-{variant}-from-zero",
            "PolicyType": "StepScaling",
            "ScalingTargetId": target.ref,
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ChangeInCapacity",
                "Cooldown": cooldown,
                "MetricAggregationType": "Average",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        },
    )
    alarm = ctx.state.when_served(
        f"{variant}BacklogWithoutCapacity",
        "AWS::CloudWatch::Alarm",
        {
            # Named under the endpoint's prefix: the deploy role may manage only those alarms.
            "AlarmName": f"{ctx.endpoint_name}-{variant}-backlog-without-capacity",
            "AlarmDescription": f"Requests wait for {ctx.endpoint_name} with no instance: scale out from zero",
            "Namespace": NAMESPACE,
            "MetricName": "HasBacklogWithoutCapacity",
            "Dimensions": [{"Name": "EndpointName", "Value": ctx.endpoint_name}],
            "Statistic": "Average",
            "Period": 60,
            "EvaluationPeriods": 2,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [step.ref],
        },
    )
    return [step, alarm]
