"""Monitoring stack: alarms on drift, model quality, endpoint health, pipelines and Lambdas; a dashboard.

Everything here names what other stacks create by the names those stacks fix (the endpoint, its
monitoring schedules, the pipeline, the functions), never by a cross-stack reference, so this
stack can be deployed, changed or removed alone; the tests check each name against the
synthesized app. The Model Monitor schedules themselves live in the Serving stack, which switches
their baselines in the same update as the model.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import instances, naming
from infra.config import PlatformConfig
from infra.constructs.functions import function_name
from infra.constructs.queues import DeadLetterQueue
from stacks.base import PlatformStack
from stacks.serving import monitor_schedule_name

# Model Monitor's CloudWatch namespaces for real-time endpoints (dimensions Endpoint, MonitoringSchedule).
DATA_METRICS = "aws/sagemaker/Endpoints/data-metrics"
MODEL_METRICS = "aws/sagemaker/Endpoints/model-metrics"
# The explainability monitor publishes each feature's global SHAP value (feature_<name>) per label.
EXPLAINABILITY_METRICS = "aws/sagemaker/Endpoints/explainability-metrics"
# Endpoint instance metrics (dimensions EndpointName, VariantName) and invocation metrics.
INSTANCE_METRICS = "/aws/sagemaker/Endpoints"
INVOCATION_METRICS = "AWS/SageMaker"
PIPELINE_METRICS = "AWS/Sagemaker/ModelBuildingPipeline"
PERIOD = {"hourly": 3600, "daily": 86400}


def drift_alarm_prefix(config: PlatformConfig) -> str:
    """Every drift alarm's name starts with this; the retraining rule matches on it."""
    return f"{config.prefix}-drift-"


class MonitoringStack(PlatformStack):
    """Alarms to the alert topic, approval notices to reviewers, and one dashboard per environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        alerts_topic: sns.ITopic,
        logs_key: kms.IKey,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        monitoring, serving, training = config.monitoring, config.serving, config.training
        assert monitoring is not None and serving is not None and training is not None
        self.endpoint = naming.endpoint(config)
        self.pipeline = naming.training_pipeline(config)
        self.alerts = alerts_topic.topic_arn
        self.alarms: dict[str, cdk.CfnResource] = {}
        self.dead_letters = DeadLetterQueue(
            self, "UndeliveredNotices", config=config, key=logs_key, source="the alert and approval rules"
        )

        if monitoring.data_quality is not None:
            schedule = monitor_schedule_name(self.endpoint, "DataQuality")
            for feature in training.features:
                self._alarm(
                    f"{drift_alarm_prefix(config)}{feature}",
                    f"Drift of feature {feature} from the promoted version's baseline above "
                    f"{monitoring.data_quality.drift_threshold:g} (starts retraining when configured)",
                    namespace=DATA_METRICS,
                    metric=f"feature_baseline_drift_{feature}",
                    dimensions={"Endpoint": self.endpoint, "MonitoringSchedule": schedule},
                    statistic="Maximum",
                    period=PERIOD[monitoring.data_quality.schedule],
                    threshold=monitoring.data_quality.drift_threshold,
                    comparison="GreaterThanThreshold",
                )
        if monitoring.model_quality is not None:
            quality = monitoring.model_quality
            self._alarm(
                f"{config.prefix}-model-quality-{quality.metric}",
                f"{quality.metric} of the served model on labelled traffic below {quality.min_value:g}",
                namespace=MODEL_METRICS,
                metric=quality.metric,
                dimensions={
                    "Endpoint": self.endpoint,
                    "MonitoringSchedule": monitor_schedule_name(self.endpoint, "ModelQuality"),
                },
                statistic="Minimum",
                period=PERIOD[quality.schedule],
                threshold=quality.min_value,
                comparison="LessThanThreshold",
            )
        self._endpoint_health(config)
        # The pipeline and its approvals are watched where it runs (serving.model_source: another account).
        self.pipeline_failures = None
        if config.trains_here:
            self._pipeline_failures(config)
        for source in ("promotion", *(("retraining",) if config.retraining else ())):
            self._alarm(
                f"{config.prefix}-{source}-errors",
                f"The {source} function failed (its events are retried, then kept in its dead-letter queue)",
                namespace="AWS/Lambda",
                metric="Errors",
                dimensions={"FunctionName": function_name(config, source)},
                statistic="Sum",
                period=300,
                threshold=0,
                comparison="GreaterThanThreshold",
            )
        self.approvals = self._approval_notices(config, logs_key) if config.trains_here else None
        self.dashboard = self._dashboard(config)

    # --- alarms --------------------------------------------------------------------------------------

    def _alarm(
        self,
        name: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        dimensions: dict[str, str],
        statistic: str,
        period: int,
        threshold: float,
        comparison: str,
        missing: str = "notBreaching",
    ) -> cdk.CfnResource:
        alarm = cdk.CfnResource(
            self,
            _logical(name.removeprefix(f"{self.config.prefix}-")),
            type="AWS::CloudWatch::Alarm",
            properties={
                "AlarmName": name,
                "AlarmDescription": description,
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                "Statistic": statistic,
                "Period": period,
                "EvaluationPeriods": 1,
                "Threshold": threshold,
                "ComparisonOperator": comparison,
                "TreatMissingData": missing,
                "AlarmActions": [self.alerts],
                "OKActions": [self.alerts],
            },
        )
        self.alarms[name] = alarm
        return alarm

    def _endpoint_health(self, config: PlatformConfig) -> None:
        """CPU, memory and GPU per variant, and traffic that stops (5XX and latency: Serving's rollback alarms)."""
        assert config.serving is not None and config.monitoring is not None
        limits = config.monitoring.endpoint
        for variant in config.serving.variants:
            spec = instances.get(variant.instance_type)
            dimensions = {"EndpointName": self.endpoint, "VariantName": variant.name}
            # Instance metrics add up per vCPU and per GPU: 100 each.
            self._alarm(
                f"{config.prefix}-{variant.name}-cpu",
                f"CPU of variant {variant.name} above {limits.max_cpu_percent}% of its {spec.vcpus} vCPUs",
                namespace=INSTANCE_METRICS,
                metric="CPUUtilization",
                dimensions=dimensions,
                statistic="Average",
                period=300,
                threshold=limits.max_cpu_percent * spec.vcpus,
                comparison="GreaterThanThreshold",
            )
            self._alarm(
                f"{config.prefix}-{variant.name}-memory",
                f"Memory of variant {variant.name} above {limits.max_memory_percent}%",
                namespace=INSTANCE_METRICS,
                metric="MemoryUtilization",
                dimensions=dimensions,
                statistic="Average",
                period=300,
                threshold=limits.max_memory_percent,
                comparison="GreaterThanThreshold",
            )
            if spec.accelerator == instances.Accelerator.NVIDIA:
                self._alarm(
                    f"{config.prefix}-{variant.name}-gpu",
                    f"GPU of variant {variant.name} above {limits.max_gpu_percent}% of its "
                    f"{spec.accelerator_count} GPU(s)",
                    namespace=INSTANCE_METRICS,
                    metric="GPUUtilization",
                    dimensions=dimensions,
                    statistic="Average",
                    period=300,
                    threshold=limits.max_gpu_percent * spec.accelerator_count,
                    comparison="GreaterThanThreshold",
                )
        if limits.min_invocations_per_hour is not None:
            self._alarm(
                f"{config.prefix}-endpoint-traffic",
                f"Fewer than {limits.min_invocations_per_hour} invocations of {self.endpoint} in an hour",
                namespace=INVOCATION_METRICS,
                metric="Invocations",
                dimensions={"EndpointName": self.endpoint, "VariantName": config.serving.variants[0].name},
                statistic="Sum",
                period=3600,
                threshold=limits.min_invocations_per_hour,
                comparison="LessThanThreshold",
                missing="breaching",
            )

    def _pipeline_failures(self, config: PlatformConfig) -> None:
        """A failed pipeline execution: an alarm for the dashboard, and an event with its details."""
        self._alarm(
            f"{config.prefix}-pipeline-failed",
            f"An execution of {self.pipeline} failed",
            namespace=PIPELINE_METRICS,
            metric="ExecutionFailed",
            dimensions={"PipelineName": self.pipeline},
            statistic="Sum",
            period=300,
            threshold=0,
            comparison="GreaterThanThreshold",
        )
        pipeline_arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:pipeline/{self.pipeline}"
        self.pipeline_failures = self._rule(
            "PipelineFailures",
            f"Failed executions of {self.pipeline}",
            {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
            },
            self.alerts,
            {"execution": "$.detail.pipelineExecutionArn", "status": "$.detail.currentPipelineExecutionStatus"},
            '"Training pipeline execution <execution> is <status>. No model version was registered."',
        )

    def _approval_notices(self, config: PlatformConfig, key: kms.IKey) -> sns.Topic:
        """A new version waits for approval: reviewers hear of it on their own topic."""
        topic = sns.Topic(self, "Approvals", master_key=key, enforce_ssl=True)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgePublishes",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        for i, email in enumerate(config.monitoring.reviewer_emails if config.monitoring else []):
            cdk.CfnResource(
                self,
                f"Reviewer{i}",
                type="AWS::SNS::Subscription",
                properties={"TopicArn": topic.topic_arn, "Protocol": "email", "Endpoint": email},
            )
        group = naming.model_package_group(config)
        self.pending_approvals = self._rule(
            "PendingApprovals",
            f"New versions in {group} waiting for approval",
            naming.model_package_changes(group, "PendingManualApproval"),
            topic.topic_arn,
            {"package": "$.detail.ModelPackageArn", "version": "$.detail.ModelPackageVersion"},
            f'"Model version <version> of {group} is waiting for approval: <package>. Approving it deploys it '
            'to the endpoint."',
        )
        return topic

    def _rule(
        self,
        construct_id: str,
        description: str,
        pattern: dict[str, Any],
        topic_arn: str,
        paths: dict[str, str],
        template: str,
    ) -> events.CfnRule:
        rule = events.CfnRule(
            self,
            construct_id,
            description=description,
            event_pattern=pattern,
            state="ENABLED",
            targets=[
                self.dead_letters.target(
                    "Topic",
                    topic_arn,
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map=paths, input_template=template
                    ),
                )
            ],
        )
        self.dead_letters.receive_from(rule, f"{construct_id}DeadLetters")
        return rule

    # --- dashboard -------------------------------------------------------------------------------------

    def _dashboard(self, config: PlatformConfig) -> cdk.CfnResource:
        assert config.serving is not None and config.training is not None and config.monitoring is not None
        region = self.region
        variants = config.serving.variant_names

        def widget(title: str, metrics: list[list[Any]], y: int, x: int, stat: str = "Sum") -> dict[str, Any]:
            return {
                "type": "metric",
                "x": x,
                "y": y,
                "width": 12,
                "height": 6,
                "properties": {"title": title, "region": region, "stat": stat, "period": 300, "metrics": metrics},
            }

        per_variant = [
            [INVOCATION_METRICS, metric, "EndpointName", self.endpoint, "VariantName", v]
            for metric in ("Invocations", "Invocation5XXErrors", "Invocation4XXErrors")
            for v in variants
        ]
        latency = [
            [INVOCATION_METRICS, "ModelLatency", "EndpointName", self.endpoint, "VariantName", v] for v in variants
        ]
        instance = [
            [INSTANCE_METRICS, metric, "EndpointName", self.endpoint, "VariantName", v]
            for metric in ("CPUUtilization", "MemoryUtilization", "GPUUtilization")
            for v in variants
        ]
        drift = [
            [DATA_METRICS, f"feature_baseline_drift_{f}", "Endpoint", self.endpoint, "MonitoringSchedule",
             monitor_schedule_name(self.endpoint, "DataQuality")]
            for f in config.training.features
        ]  # fmt: skip
        quality = config.monitoring.model_quality
        model_quality = (
            [[MODEL_METRICS, quality.metric, "Endpoint", self.endpoint, "MonitoringSchedule",
              monitor_schedule_name(self.endpoint, "ModelQuality")]]
            if quality else []
        )  # fmt: skip
        attribution = (
            [[EXPLAINABILITY_METRICS, f"feature_{f}", "Endpoint", self.endpoint, "MonitoringSchedule",
              monitor_schedule_name(self.endpoint, "ModelExplainability"), "ExplainabilityMethod", "KernelShap",
              "Label", "label0", "ValueType", "GlobalShapValues"]
             for f in config.training.features]
            if config.monitoring.explainability else []
        )  # fmt: skip
        pipeline = [
            [PIPELINE_METRICS, metric, "PipelineName", self.pipeline]
            for metric in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed")
        ]
        functions = [
            ["AWS/Lambda", metric, "FunctionName", function_name(config, source)]
            for source in ("promotion", *(("retraining",) if config.retraining else ()))
            for metric in ("Invocations", "Errors")
        ]
        widgets = [
            widget(f"{self.endpoint}: invocations and errors", per_variant, 0, 0),
            widget(f"{self.endpoint}: model latency (µs, p99)", latency, 0, 12, stat="p99"),
            widget(f"{self.endpoint}: CPU, memory, GPU", instance, 6, 0, stat="Average"),
            # Monitors that are not configured get no (empty) widget.
            *([widget("Feature drift from the promoted baseline", drift, 6, 12, stat="Maximum")] if drift else []),
            *(
                [widget("Model quality on labelled traffic", model_quality, 12, 0, stat="Minimum")]
                if model_quality
                else []
            ),
            *([widget(f"{self.pipeline} executions", pipeline, 12, 12)] if config.trains_here else []),
            *(
                [widget("Feature attributions (global SHAP) of the served model", attribution, 24, 0, stat="Maximum")]
                if attribution
                else []
            ),
            widget("Retraining triggers and promotions (function invocations)", functions, 18, 0),
            {
                "type": "alarm",
                "x": 12,
                "y": 18,
                "width": 12,
                "height": 6,
                "properties": {
                    "title": "Alarms",
                    "alarms": [
                        f"arn:{self.partition}:cloudwatch:{region}:{self.account}:alarm:{name}" for name in self.alarms
                    ],
                },
            },
        ]
        dashboard = cdk.CfnResource(
            self,
            "Dashboard",
            type="AWS::CloudWatch::Dashboard",
            properties={"DashboardName": config.prefix, "DashboardBody": self.to_json_string({"widgets": widgets})},
        )
        return dashboard


def _logical(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-")) + "Alarm"
