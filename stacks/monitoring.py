"""Monitoring stack: alarms on drift, model quality, endpoint health, pipelines and Lambdas; a dashboard.

Everything here names what other stacks create by the names those stacks fix (the endpoint, its
monitoring schedules, the pipeline, the functions), never by a cross-stack reference, so this
stack can be deployed, changed or removed alone; the tests check each name against the
synthesized app. The Model Monitor schedules themselves live in the Serving stack, which switches
their baselines in the same update as the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.catalog import instances, monitors, naming
from infra.config import MonitoringConfig, PlatformConfig, ServingConfig, TrainingConfig
from infra.constructs.queues import DeadLetterQueue
from stacks.base import PlatformStack

# Endpoint instance metrics (dimensions EndpointName, VariantName) and invocation metrics; the
# Model Monitor kinds' namespaces are in infra/catalog/monitors.py.
INSTANCE_METRICS = "/aws/sagemaker/Endpoints"
INVOCATION_METRICS = "AWS/SageMaker"
PIPELINE_METRICS = "AWS/Sagemaker/ModelBuildingPipeline"
PERIOD = {"hourly": 3600, "daily": 86400}


@dataclass(frozen=True)
class Metric:
    """The CloudWatch metric an alarm watches, and how."""

    namespace: str
    name: str
    dimensions: dict[str, str]
    statistic: str
    period: int


class MonitoringStack(PlatformStack):
    """Alarms to the alert topic, approval notices to reviewers, and one dashboard per environment."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        monitoring: MonitoringConfig,
        serving: ServingConfig,
        training: TrainingConfig,
        alerts_topic: sns.ITopic,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        """`monitoring`, `serving` and `training` are the config's sections (the endpoint, the features)."""
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.monitoring, self.serving, self.features = monitoring, serving, training.features
        self.endpoint = naming.endpoint(config)
        self.pipeline = naming.training_pipeline(config)
        self.alerts = alerts_topic.topic_arn
        self.alarms: dict[str, cdk.CfnResource] = {}
        self.dead_letters = DeadLetterQueue(
            self, "UndeliveredNotices", config=config, key=logs_key, source="the alert and approval rules"
        )

        self._monitor_alarms()
        self._endpoint_health()
        # The pipeline and its approvals are watched where it runs (serving.model_source: another account).
        self.pipeline_failures: events.CfnRule | None = None
        if config.trains_here:
            self.pipeline_failures = self._pipeline_failures()
        for source in naming.functions(config):
            self._alarm(
                f"{config.prefix}-{source}-errors",
                f"The {source} function failed (its events are retried, then kept in its dead-letter queue)",
                Metric("AWS/Lambda", "Errors", {"FunctionName": naming.function_name(config, source)}, "Sum", 300),
                threshold=0,
                comparison="GreaterThanThreshold",
            )
        self.approvals = self._approval_notices(logs_key) if config.trains_here else None
        self.dashboard = self._dashboard()

    # --- alarms --------------------------------------------------------------------------------------

    def _alarm(
        self,
        name: str,
        description: str,
        metric: Metric,
        *,
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
                "Namespace": metric.namespace,
                "MetricName": metric.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions.items()],
                "Statistic": metric.statistic,
                "Period": metric.period,
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

    def _monitor_alarms(self) -> None:
        """An alarm per metric of each configured kind that has alarms on the engine (infra/catalog/monitors.py).

        Missing data is not breaching: before a model is served, and while it has no traffic, no run
        publishes anything (an empty window is "no data"), and the alarm stays OK.
        """
        engine = self.monitoring.engine
        for kind, section in monitors.configured(self.monitoring):
            alarm, metrics = kind.alarm_of(engine), kind.metrics_of(engine)
            if alarm is None or metrics is None:
                continue
            for metric, values in metrics.published(section, self.features):
                # Per-feature metrics are named for their feature, others for themselves.
                self._alarm(
                    f"{naming.monitor_alarm_prefix(self.config, kind)}{values.get('feature', metric)}",
                    alarm.description.format(**values),
                    Metric(
                        metrics.namespace,
                        metric,
                        self._monitor_dimensions(kind, metrics, values),
                        alarm.statistic,
                        PERIOD[section.schedule],
                    ),
                    threshold=alarm.limit(values),
                    comparison=alarm.comparison,
                )

    def _monitor_dimensions(
        self, kind: monitors.MonitorKind, metrics: monitors.Metrics, values: dict[str, Any]
    ) -> dict[str, str]:
        """Model Monitor's: the endpoint and the schedule; the platform's: the endpoint, the kind (and feature)."""
        if self.monitoring.engine != "platform":
            return {"Endpoint": self.endpoint, "MonitoringSchedule": naming.monitor_schedule(self.config, kind)}
        feature = {"Feature": values["feature"]} if metrics.per_feature else {}
        return {"Endpoint": self.endpoint, **dict(metrics.dimensions), **feature}

    def _endpoint_health(self) -> None:
        """CPU, memory and GPU per variant, and traffic that stops (5XX and latency: Serving's rollback alarms)."""
        prefix, limits = self.config.prefix, self.monitoring.endpoint
        for variant in self.serving.variants:
            spec = instances.get(variant.instance_type)
            dimensions = {"EndpointName": self.endpoint, "VariantName": variant.name}

            def usage(name: str, dimensions: dict[str, str] = dimensions) -> Metric:
                return Metric(INSTANCE_METRICS, name, dimensions, "Average", 300)

            # Instance metrics add up per vCPU and per GPU: 100 each.
            self._alarm(
                f"{prefix}-{variant.name}-cpu",
                f"CPU of variant {variant.name} above {limits.max_cpu_percent}% of its {spec.vcpus} vCPUs",
                usage("CPUUtilization"),
                threshold=limits.max_cpu_percent * spec.vcpus,
                comparison="GreaterThanThreshold",
            )
            self._alarm(
                f"{prefix}-{variant.name}-memory",
                f"Memory of variant {variant.name} above {limits.max_memory_percent}%",
                usage("MemoryUtilization"),
                threshold=limits.max_memory_percent,
                comparison="GreaterThanThreshold",
            )
            if spec.accelerator == instances.Accelerator.NVIDIA:
                self._alarm(
                    f"{prefix}-{variant.name}-gpu",
                    f"GPU of variant {variant.name} above {limits.max_gpu_percent}% of its "
                    f"{spec.accelerator_count} GPU(s)",
                    usage("GPUUtilization"),
                    threshold=limits.max_gpu_percent * spec.accelerator_count,
                    comparison="GreaterThanThreshold",
                )
        if limits.min_invocations_per_hour is not None:
            first = {"EndpointName": self.endpoint, "VariantName": self.serving.variants[0].name}
            self._alarm(
                f"{prefix}-endpoint-traffic",
                f"Fewer than {limits.min_invocations_per_hour} invocations of {self.endpoint} in an hour",
                Metric(INVOCATION_METRICS, "Invocations", first, "Sum", 3600),
                threshold=limits.min_invocations_per_hour,
                comparison="LessThanThreshold",
                missing="breaching",
            )

    def _pipeline_failures(self) -> events.CfnRule:
        """A failed pipeline execution: an alarm for the dashboard, and an event with its details."""
        self._alarm(
            f"{self.config.prefix}-pipeline-failed",
            f"An execution of {self.pipeline} failed",
            Metric(PIPELINE_METRICS, "ExecutionFailed", {"PipelineName": self.pipeline}, "Sum", 300),
            threshold=0,
            comparison="GreaterThanThreshold",
        )
        pipeline_arn = f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:pipeline/{self.pipeline}"
        return self._rule(
            "PipelineFailures",
            f"Failed executions of {self.pipeline}",
            {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
            },
            self.alerts,
            events.CfnRule.InputTransformerProperty(
                input_paths_map={
                    "execution": "$.detail.pipelineExecutionArn",
                    "status": "$.detail.currentPipelineExecutionStatus",
                },
                input_template='"Training pipeline execution <execution> is <status>. '
                'No model version was registered."',
            ),
        )

    def _approval_notices(self, key: kms.IKey) -> sns.Topic:
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
        for i, email in enumerate(self.monitoring.reviewer_emails):
            cdk.CfnResource(
                self,
                f"Reviewer{i}",
                type="AWS::SNS::Subscription",
                properties={"TopicArn": topic.topic_arn, "Protocol": "email", "Endpoint": email},
            )
        group = naming.model_package_group(self.config)
        self.pending_approvals = self._rule(
            "PendingApprovals",
            f"New versions in {group} waiting for approval",
            naming.model_package_changes(group, "PendingManualApproval"),
            topic.topic_arn,
            events.CfnRule.InputTransformerProperty(
                input_paths_map={"package": "$.detail.ModelPackageArn", "version": "$.detail.ModelPackageVersion"},
                input_template=f'"Model version <version> of {group} is waiting for approval: <package>. Approving '
                'it deploys it to the endpoint."',
            ),
        )
        return topic

    def _rule(
        self,
        construct_id: str,
        description: str,
        pattern: dict[str, Any],
        topic_arn: str,
        message: events.CfnRule.InputTransformerProperty,
    ) -> events.CfnRule:
        rule = events.CfnRule(
            self,
            construct_id,
            description=description,
            event_pattern=pattern,
            state="ENABLED",
            targets=[self.dead_letters.target("Topic", topic_arn, input_transformer=message)],
        )
        self.dead_letters.receive_from(rule, f"{construct_id}DeadLetters")
        return rule

    # --- dashboard -------------------------------------------------------------------------------------

    def _widget(self, title: str, metrics: list[list[Any]], y: int, x: int, stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": self.region, "stat": stat, "period": 300, "metrics": metrics},
        }

    def _endpoint_widgets(self) -> list[dict[str, Any]]:
        """Invocations and errors, model latency, and instance use of every variant."""
        variants = self.serving.variant_names

        def per_variant(namespace: str, metrics: tuple[str, ...]) -> list[list[Any]]:
            return [
                [namespace, metric, "EndpointName", self.endpoint, "VariantName", v]
                for metric in metrics
                for v in variants
            ]

        return [
            self._widget(
                f"{self.endpoint}: invocations and errors",
                per_variant(INVOCATION_METRICS, ("Invocations", "Invocation5XXErrors", "Invocation4XXErrors")),
                0,
                0,
            ),
            self._widget(
                f"{self.endpoint}: model latency (µs, p99)",
                per_variant(INVOCATION_METRICS, ("ModelLatency",)),
                0,
                12,
                stat="p99",
            ),
            self._widget(
                f"{self.endpoint}: CPU, memory, GPU",
                per_variant(INSTANCE_METRICS, ("CPUUtilization", "MemoryUtilization", "GPUUtilization")),
                6,
                0,
                stat="Average",
            ),
        ]

    def _monitor_widgets(self) -> list[dict[str, Any]]:
        """A widget per configured monitor kind that publishes metrics; none for kinds not configured."""
        widgets = []
        for kind, section in monitors.configured(self.monitoring):
            m = kind.metrics_of(self.monitoring.engine)
            if m is None:
                continue
            lines: list[list[Any]] = [
                [
                    m.namespace,
                    name,
                    *(part for item in self._monitor_dimensions(kind, m, values).items() for part in item),
                    *(part for dimension in m.dimensions for part in dimension if self.monitoring.engine != "platform"),
                ]
                for name, values in m.published(section, self.features)
            ]
            if lines:
                widgets.append(self._widget(m.title, lines, m.y, m.x, stat=m.stat))
        return widgets

    def _dashboard(self) -> cdk.CfnResource:
        pipeline = [
            [PIPELINE_METRICS, metric, "PipelineName", self.pipeline]
            for metric in ("ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed")
        ]
        functions = [
            ["AWS/Lambda", metric, "FunctionName", naming.function_name(self.config, source)]
            for source in naming.functions(self.config)
            for metric in ("Invocations", "Errors")
        ]
        graphs = [
            *self._endpoint_widgets(),
            *self._monitor_widgets(),
            *([self._widget(f"{self.pipeline} executions", pipeline, 12, 12)] if self.config.trains_here else []),
        ]
        alarms = [f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:{name}" for name in self.alarms]
        widgets = [
            # The graphs in reading order (row, then column), then the operations row at its fixed place.
            *sorted(graphs, key=lambda w: (w["y"], w["x"])),
            self._widget("Retraining triggers and promotions (function invocations)", functions, 18, 0),
            {
                "type": "alarm",
                "x": 12,
                "y": 18,
                "width": 12,
                "height": 6,
                "properties": {"title": "Alarms", "alarms": alarms},
            },
        ]
        return cdk.CfnResource(
            self,
            "Dashboard",
            type="AWS::CloudWatch::Dashboard",
            properties={
                "DashboardName": self.config.prefix,
                "DashboardBody": self.to_json_string({"widgets": widgets}),
            },
        )


def _logical(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-")) + "Alarm"
