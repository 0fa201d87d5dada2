"""Serving stack: the endpoint that serves the approved model version, and the path a version takes to it.

CloudFormation is the endpoint's only owner. The approved model package is the stack parameter
`ModelPackageArn`; the model, endpoint config, endpoint, scaling and rollback alarms exist only
while it is set (the first deploy has none). The promotion Lambda reacts to an approval in the
registry by updating that one parameter (UsePreviousTemplate) through a CloudFormation service
role that may change only what the parameter drives. SageMaker's blue/green deployment shifts
traffic and rolls back on this stack's alarms; a failed update rolls the stack back, the previous
version keeps serving, and the alert topic hears of it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.assembly import cost
from infra.catalog import instances, naming
from infra.catalog.naming import export_name
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    ML,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.checks.guardrails import SageMakerGuardrailPolicy
from infra.config import MONITOR_SCHEDULES, PlatformConfig, ServingConfig
from infra.constructs import sagemaker_roles, serving_state
from infra.constructs.functions import PythonFunction
from stacks.base import PlatformStack

PARAMETER = "ModelPackageArn"
# Baselines of the promoted version, set by the promotion function with the package (from its
# DriftCheckBaselines): the monitors switch baselines in the same update as the model.
BASELINE_PARAMETERS = {
    "DataQualityStatistics": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
    "DataQualityConstraints": "DriftCheckBaselines.ModelDataQuality.Constraints.S3Uri",
    "ModelQualityConstraints": "DriftCheckBaselines.ModelQuality.Constraints.S3Uri",
    "BiasConfig": "DriftCheckBaselines.Bias.ConfigFile.S3Uri",
    "ExplainabilityConstraints": "DriftCheckBaselines.Explainability.Constraints.S3Uri",
}
# The explainability monitor's analysis config names the model it explains, which exists only once
# deployed: the promotion function writes it per version (from the registered template at
# DriftCheckBaselines.Explainability.ConfigFile) and sets this parameter to it.
EXPLAINABILITY_PARAMETER = "ExplainabilityConfig"
EXPLAINABILITY_CONFIGS = "explainability-config"
# Clarify names the shadow endpoints it starts (and their configs) with this prefix.
SHADOW_PREFIX = "sm-clarify"
MONITOR_PREFIX = "monitoring"
GROUND_TRUTH_PREFIX = "ground-truth"
MONITOR_IMAGE = "sagemaker-model-monitor-analyzer"
CLARIFY_IMAGE = "sagemaker-clarify-processing"
# Where SageMaker writes captured requests and asynchronous results in the artifacts bucket.
CAPTURE_PREFIX = "data-capture"
ASYNC_PREFIX = "async-inference"
# Inference images the registered model versions name (pipelines/definition.py).
INFERENCE_REPOSITORIES = ("pytorch-inference", "pytorch-inference-neuronx")
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


def monitor_schedule_name(endpoint: str, kind: str) -> str:
    """The monitoring schedule of one kind, e.g. 'mlp-dev-endpoint-data-quality' (alarms name it)."""
    return f"{endpoint}-{_kebab(kind)}"


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def math_ceil(total: int, step: int) -> int:
    return -(-total // step)


def _timeout(seconds: int) -> int:
    # Room for provisioning the new fleet on top of the shifting and baking; SageMaker allows 600-14400.
    return max(600, min(14400, seconds + 3600))


class ServingStack(PlatformStack):
    """The model, endpoint config and endpoint of the approved version; scaling, rollback alarms, promotion."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        artifacts_key: kms.IKey,
        logs_key: kms.IKey,
        alerts_topic: sns.ITopic,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        guardrail: SageMakerGuardrailPolicy,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        serving = config.serving
        assert serving is not None and config.training is not None
        partition, region, account = self.partition, self.region, self.account
        self.endpoint_name = naming.endpoint(config)
        group = naming.model_package_group(config)
        # Versions of this environment's registry, or of the source account's (serving.model_source).
        self.source = serving.model_source
        registry = naming.registry_account(config, account)
        packages = f"arn:{partition}:sagemaker:{region}:{registry}:model-package/{group}/*"
        artifacts = s3.Bucket.from_bucket_attributes(
            self,
            "ArtifactsBucket",
            bucket_arn=cdk.Fn.import_value(export_name(config, "artifacts-bucket-arn")),
            bucket_name=cdk.Fn.import_value(export_name(config, "artifacts-bucket-name")),
        )
        serverless = serving.mode == "serverless"
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        # The promoted state this stack's parameters resolve (created by the DataLake stack).
        self.state_parameters = f"arn:{partition}:ssm:{region}:{account}:parameter{serving_state.prefix(config)}*"

        # Resolved from SSM (infra/constructs/serving_state.py) on every deployment; the SSM parameter allows only
        # versions of this platform's group (in the source account, if any), or none yet.
        self.package = self._state_parameter(
            config,
            PARAMETER,
            f"The approved version of {group} the endpoint serves ({serving_state.UNSET} until the first "
            "approval); written by the promotion function.",
        )
        self.has_model = cdk.CfnCondition(
            self,
            "HasModel",
            expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(self.package.value_as_string, serving_state.UNSET)),
        )

        self.baseline_parameters: dict[str, cdk.CfnParameter] = {}
        explainability = config.monitoring.explainability if config.monitoring else None
        # With an explainability monitor the model gets a name the promotion function can predict:
        # this prefix and the version number. The hash changes with what else would replace the
        # model (its network), so a replacement never reuses a name.
        self.model_name_prefix = None
        if explainability is not None:
            digest = hashlib.sha256(config.network.model_dump_json().encode()).hexdigest()[:6]
            self.model_name_prefix = f"{self.endpoint_name}-{digest}-"
        self.model_role = self._model_role(config, artifacts, artifacts_key, guardrail, serverless)
        self.async_topics: dict[str, sns.Topic] = {}
        if serving.async_inference is not None and serving.async_inference.notifications:
            for kind in ("Success", "Error"):
                topic = sns.Topic(self, f"Async{kind}", master_key=logs_key, enforce_ssl=True)
                topic.grant_publish(self.model_role)
                self.async_topics[kind] = topic

        self.model = self._model(serving, subnet_ids, security_group, serverless)
        self.endpoint_config = self._endpoint_config(config, artifacts, artifacts_key)
        self.alarms = self._rollback_alarms(serving, alerts_topic)
        self.endpoint = self._conditional(
            "Endpoint",
            "AWS::SageMaker::Endpoint",
            {
                "EndpointName": self.endpoint_name,
                "EndpointConfigName": self.endpoint_config.get_att("EndpointConfigName"),
                "DeploymentConfig": deployment_config(serving, [a.name for a in self.alarms]),
            },
        )
        for alarm in self.alarms:
            self.endpoint.node.add_dependency(alarm.resource)
        self.scaling = self._autoscaling(serving, alerts_topic)
        self.monitor_schedules: dict[str, cdk.CfnResource] = {}
        self.explainability_parameter: cdk.CfnParameter | None = None
        if config.monitoring is not None:
            self._monitors(config, artifacts, artifacts_key, guardrail, subnet_ids, security_group)

        self.deploy_role = self._deploy_role(config, artifacts_key, packages, serverless, guardrail)
        self.explainability_settings: dict[str, str] | None = None
        if self.explainability_parameter is not None:
            self.explainability_settings = self._explainability_settings(config, artifacts, artifacts_key)
        self.promotion = self._promotion(config, group, packages, logs_key, alerts_topic, subnet_ids, security_group)
        if self.explainability_settings is not None:
            self._promotion_writes_explainability_config(config, artifacts, artifacts_key)
        self._deployment_alerts(alerts_topic, self.promotion)

        cdk.CfnOutput(self, "EndpointName", value=self.endpoint_name, condition=self.has_model)
        cdk.CfnOutput(
            self,
            "PromotionFunction",
            value=self.promotion.function_name,
            description="Reacts to approvals in the model registry by setting ModelPackageArn",
        )

    # --- the model and its endpoint --------------------------------------------------------------

    def _conditional(self, construct_id: str, resource_type: str, properties: dict[str, Any]) -> cdk.CfnResource:
        resource = cdk.CfnResource(self, construct_id, type=resource_type, properties=properties)
        resource.cfn_options.condition = self.has_model
        return resource

    def _model_role(
        self,
        config: PlatformConfig,
        artifacts: s3.IBucket,
        artifacts_key: kms.IKey,
        guardrail: SageMakerGuardrailPolicy,
        serverless: bool,
    ) -> iam.Role:
        """What the serving containers run as: read the pipeline's model artifacts, write capture and results."""
        partition, region, account = self.partition, self.region, self.account
        role = iam.Role(
            self,
            "ModelRole",
            assumed_by=service_principal("sagemaker.amazonaws.com", account),
            description=f"The model behind {self.endpoint_name}: its artifacts, image, logs and captured data",
            role_name=self._role_name(config, "model"),
        )
        models = self._read_models(config, role, artifacts)
        written = [
            artifacts.arn_for_objects(f"{prefix}/{self.endpoint_name}/*") for prefix in (CAPTURE_PREFIX, ASYNC_PREFIX)
        ]
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=written))
        artifacts_key.grant_encrypt_decrypt(role)
        from pipelines import definition as pipeline

        registries = sorted({families["PyTorch"] for families in pipeline.registry_accounts().values()})
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[
                    f"arn:{partition}:ecr:{region}:{registry}:repository/{repository}"
                    for registry in registries
                    for repository in INFERENCE_REPOSITORIES
                ],
            )
        )
        log_streams = (
            f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{self.endpoint_name}:*"
        )
        role.add_to_policy(sagemaker_roles.log_streams(log_streams))
        role.add_to_policy(sagemaker_roles.metrics(["/aws/sagemaker/*", "aws/sagemaker/*"]))
        role.add_to_policy(sagemaker_roles.resourceless(vpc=not serverless))
        guardrail.attach_to(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "The training pipeline's artifact prefix (model archives are named per execution), this "
            "endpoint's capture and async-result prefixes and its own log streams; ECR login, metrics "
            "and VPC ENI calls take no resource ARN; KMS action families come from CDK's key grant.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=[
                "*",
                models,
                *written,
                log_streams,
                *self._source_key_wildcards(),
            ],
        )
        return role

    def _role_name(self, config: PlatformConfig, kind: str) -> str | None:
        """Roles the source account's bucket and key policies grant by ARN get fixed names; others CDK's."""
        return naming.serving_role(config.project, config.environment, kind) if self.source else None

    def _read_models(self, config: PlatformConfig, role: iam.Role, artifacts: s3.IBucket) -> str:
        """Read the training pipeline's outputs (models, baselines); returns the object ARN pattern granted.

        Serving from another account's registry, the objects are in that account's artifacts bucket,
        whose policy and key policy grant this role by name: here, objects under the pipeline's prefix
        in buckets that account owns, decrypted with its artifacts key through S3.
        """
        pipeline = naming.training_pipeline(config)
        if self.source is None:
            models = artifacts.arn_for_objects(f"pipelines/{pipeline}/*")
            role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[models]))
            return models
        models = f"arn:{self.partition}:s3:::*/pipelines/{pipeline}/*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SourceModels",
                actions=["s3:GetObject"],
                resources=[models],
                conditions={"StringEquals": {"s3:ResourceAccount": self.source.account}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SourceArtifactsKey",
                actions=["kms:Decrypt"],
                resources=self._source_key_wildcards(),
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"},
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": f"alias/{naming.registry_prefix(config)}-artifacts"
                    },
                },
            )
        )
        return models

    def _source_key_wildcards(self) -> list[str]:
        # The source's key id is generated there; its alias (a condition above) and account name it.
        return [f"arn:{self.partition}:kms:{self.region}:{self.source.account}:key/*"] if self.source else []

    def _model(
        self, serving: ServingConfig, subnet_ids: list[str], security_group: ec2.ISecurityGroup, serverless: bool
    ) -> cdk.CfnResource:
        properties: dict[str, Any] = {
            "ExecutionRoleArn": self.model_role.role_arn,
            "PrimaryContainer": {"ModelPackageName": self.package.value_as_string},
        }
        if self.model_name_prefix is not None:
            # <prefix><version>: the version is the last part of the package ARN (.../<group>/<version>).
            version = cdk.Fn.select(2, cdk.Fn.split("/", self.package.value_as_string))
            properties["ModelName"] = cdk.Fn.join("", [self.model_name_prefix, version])
        if not serverless:
            properties["VpcConfig"] = {"Subnets": subnet_ids, "SecurityGroupIds": [security_group.security_group_id]}
            properties["EnableNetworkIsolation"] = True
        model = self._conditional("Model", "AWS::SageMaker::Model", properties)
        model.node.add_dependency(self.model_role.node.find_child("DefaultPolicy"))
        if serverless:
            assert serving.serverless is not None
            acknowledge(
                model,
                f"Serverless endpoint, by config: {serving.serverless.isolation_exception}",
                [f"{ML}::MLP-SM1", f"{ML}::MLP-SM2"],
            )
        return model

    def _endpoint_config(self, config: PlatformConfig, artifacts: s3.IBucket, key: kms.IKey) -> cdk.CfnResource:
        serving = config.serving
        assert serving is not None
        model_name = self.model.get_att("ModelName")
        if serving.mode == "serverless":
            assert serving.serverless is not None
            settings: dict[str, Any] = {
                "MemorySizeInMB": serving.serverless.memory_mb,
                "MaxConcurrency": serving.serverless.max_concurrency,
            }
            if serving.serverless.provisioned_concurrency:
                settings["ProvisionedConcurrency"] = serving.serverless.provisioned_concurrency
            variants = [{"VariantName": "AllTraffic", "ModelName": model_name, "ServerlessConfig": settings}]
        else:
            variants = [
                {
                    "VariantName": v.name,
                    "ModelName": model_name,
                    "InstanceType": v.instance_type,
                    "InitialInstanceCount": v.initial_instance_count,
                    "InitialVariantWeight": v.weight,
                }
                for v in serving.variants
            ]
        properties: dict[str, Any] = {"ProductionVariants": variants}
        nvme = [v.instance_type for v in serving.variants if instances.has_local_nvme(v.instance_type)]
        if serving.mode != "serverless" and not nvme:
            properties["KmsKeyId"] = key.key_arn
        if serving.data_capture.enabled:
            properties["DataCaptureConfig"] = {
                "EnableCapture": True,
                "InitialSamplingPercentage": serving.data_capture.sampling_percentage,
                "DestinationS3Uri": f"s3://{artifacts.bucket_name}/{CAPTURE_PREFIX}/{self.endpoint_name}",
                "KmsKeyId": key.key_arn,
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
            }
        if serving.async_inference is not None:
            output: dict[str, Any] = {
                "S3OutputPath": f"s3://{artifacts.bucket_name}/{ASYNC_PREFIX}/{self.endpoint_name}/output",
                "S3FailurePath": f"s3://{artifacts.bucket_name}/{ASYNC_PREFIX}/{self.endpoint_name}/failure",
                "KmsKeyId": key.key_arn,
            }
            if self.async_topics:
                output["NotificationConfig"] = {
                    "SuccessTopic": self.async_topics["Success"].topic_arn,
                    "ErrorTopic": self.async_topics["Error"].topic_arn,
                }
            properties["AsyncInferenceConfig"] = {
                "OutputConfig": output,
                "ClientConfig": {
                    "MaxConcurrentInvocationsPerInstance": (
                        serving.async_inference.max_concurrent_invocations_per_instance
                    )
                },
            }
        endpoint_config = self._conditional("EndpointConfig", "AWS::SageMaker::EndpointConfig", properties)
        if serving.mode == "serverless":
            # Local-NVMe variants are compliant without a key (MLP-SM3 knows them); serverless is not.
            acknowledge(
                endpoint_config,
                "Serverless endpoints take no endpoint-config KMS key: they keep no instance storage.",
                [f"{ML}::MLP-SM3"],
            )
        return endpoint_config

    # --- rollback alarms and scaling -------------------------------------------------------------

    def _rollback_alarms(self, serving: ServingConfig, alerts_topic: sns.ITopic) -> list[_Alarm]:
        """Per variant: 5XX rate and p99 model latency. A deployment that trips one rolls back."""
        d = serving.deployment
        alarms = []
        for variant in serving.variant_names:
            dimensions = [
                {"Name": "EndpointName", "Value": self.endpoint_name},
                {"Name": "VariantName", "Value": variant},
            ]

            def stat(metric_id: str, metric: str, dimensions=dimensions) -> dict[str, Any]:
                return {
                    "Id": metric_id,
                    "MetricStat": {
                        "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": False,
                }

            errors = _Alarm(
                f"{self.endpoint_name}-{variant}-5xx-rate",
                {
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
                },
            )
            latency = _Alarm(
                f"{self.endpoint_name}-{variant}-latency",
                {
                    "AlarmDescription": f"p99 model latency of variant {variant} above {d.max_latency_ms} ms "
                    "(deployments roll back)",
                    "Namespace": NAMESPACE,
                    "MetricName": "ModelLatency",
                    "Dimensions": dimensions,
                    "ExtendedStatistic": "p99",
                    "Period": 60,
                    # ModelLatency is reported in microseconds.
                    "Threshold": d.max_latency_ms * 1000,
                },
            )
            for alarm in (errors, latency):
                alarm.resource = self._conditional(
                    f"{variant}{'Errors' if alarm is errors else 'Latency'}Alarm",
                    "AWS::CloudWatch::Alarm",
                    {
                        "AlarmName": alarm.name,
                        **alarm.properties,
                        "ComparisonOperator": "GreaterThanThreshold",
                        "EvaluationPeriods": 3,
                        "DatapointsToAlarm": 2,
                        "TreatMissingData": "notBreaching",
                        "AlarmActions": [alerts_topic.topic_arn],
                        "OKActions": [alerts_topic.topic_arn],
                    },
                )
                alarms.append(alarm)
        return alarms

    def _autoscaling(self, serving: ServingConfig, alerts_topic: sns.ITopic) -> list[cdk.CfnResource]:
        scaling = serving.autoscaling
        if scaling is None:
            return []
        resources = []
        for variant in serving.variants:
            target = self._conditional(
                f"{variant.name}ScalableTarget",
                "AWS::ApplicationAutoScaling::ScalableTarget",
                {
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": f"endpoint/{self.endpoint_name}/variant/{variant.name}",
                    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                    "MinCapacity": scaling.min_instances,
                    "MaxCapacity": scaling.max_instances,
                },
            )
            target.node.add_dependency(self.endpoint)
            resources.append(target)
            cooldowns = {
                "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
                "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
                "DisableScaleIn": scaling.scale_in_protection,
            }
            dimensions = [
                {"Name": "EndpointName", "Value": self.endpoint_name},
                {"Name": "VariantName", "Value": variant.name},
            ]
            policies: dict[str, dict[str, Any]] = {}
            if serving.mode == "async":
                policies["Backlog"] = {
                    "TargetValue": scaling.backlog_per_instance,
                    "CustomizedMetricSpecification": {
                        "Namespace": NAMESPACE,
                        "MetricName": "ApproximateBacklogSizePerInstance",
                        "Dimensions": [{"Name": "EndpointName", "Value": self.endpoint_name}],
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
                        "Dimensions": dimensions,
                        "Statistic": "Average",
                    },
                    **cooldowns,
                }
            for name, policy in policies.items():
                resources.append(
                    self._conditional(
                        f"{variant.name}{name}Scaling",
                        "AWS::ApplicationAutoScaling::ScalingPolicy",
                        {
                            "PolicyName": f"{self.endpoint_name}-{variant.name}-{name.lower()}",
                            "PolicyType": "TargetTrackingScaling",
                            "ScalingTargetId": target.ref,
                            "TargetTrackingScalingPolicyConfiguration": policy,
                        },
                    )
                )
            if serving.mode == "async" and scaling.min_instances == 0:
                resources.extend(self._scale_from_zero(variant.name, target, scaling.scale_out_cooldown_seconds))
        return resources

    def _scale_from_zero(self, variant: str, target: cdk.CfnResource, cooldown: int) -> list[cdk.CfnResource]:
        """Target tracking cannot leave zero instances: a step policy adds one when requests queue up."""
        step = self._conditional(
            f"{variant}ScaleFromZero",
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "PolicyName": f"{self.endpoint_name}-{variant}-from-zero",
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
        alarm = self._conditional(
            f"{variant}BacklogWithoutCapacity",
            "AWS::CloudWatch::Alarm",
            {
                # Named under the endpoint's prefix: the deploy role may manage only those alarms.
                "AlarmName": f"{self.endpoint_name}-{variant}-backlog-without-capacity",
                "AlarmDescription": f"Requests wait for {self.endpoint_name} with no instance: scale out from zero",
                "Namespace": NAMESPACE,
                "MetricName": "HasBacklogWithoutCapacity",
                "Dimensions": [{"Name": "EndpointName", "Value": self.endpoint_name}],
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

    # --- Model Monitor -----------------------------------------------------------------------------

    def _state_parameter(self, config: PlatformConfig, name: str, description: str) -> cdk.CfnParameter:
        """A promoted value: a stack parameter resolved from its SSM parameter on every deployment."""
        return cdk.CfnParameter(
            self,
            name,
            type="AWS::SSM::Parameter::Value<String>",
            default=serving_state.ssm_name(config, name),
            description=description,
        )

    def _baseline(self, name: str) -> cdk.CfnParameter:
        parameter = self._state_parameter(
            self.config,
            name,
            f"S3 URI of the promoted version's {BASELINE_PARAMETERS[name].split('.', 1)[1]} "
            f"({serving_state.UNSET} without one); written by the promotion function",
        )
        self.baseline_parameters[name] = parameter
        return parameter

    def _monitors(
        self,
        config: PlatformConfig,
        artifacts: s3.IBucket,
        key: kms.IKey,
        guardrail: SageMakerGuardrailPolicy,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
    ) -> None:
        """Data and model quality schedules on the promoted version's baselines, each when configured."""
        monitoring = config.monitoring
        assert monitoring is not None
        role = self._monitor_role(config, artifacts, key, guardrail)
        nvme = instances.has_local_nvme(monitoring.instance_type)
        output_root = f"s3://{artifacts.bucket_name}/{MONITOR_PREFIX}/{self.endpoint_name}"

        def common(kind: str) -> dict[str, Any]:
            cluster: dict[str, Any] = {
                "InstanceCount": 1,
                "InstanceType": monitoring.instance_type,
                "VolumeSizeInGB": 20,
            }
            if not nvme:
                cluster["VolumeKmsKeyId"] = key.key_arn
            return {
                "JobResources": {"ClusterConfig": cluster},
                "NetworkConfig": {
                    "EnableNetworkIsolation": True,
                    "EnableInterContainerTrafficEncryption": True,
                    "VpcConfig": {"Subnets": subnet_ids, "SecurityGroupIds": [security_group.security_group_id]},
                },
                "RoleArn": role.role_arn,
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                f"{kind}JobOutputConfig": {
                    "KmsKeyId": key.key_arn,
                    "MonitoringOutputs": [
                        {
                            "S3Output": {
                                "S3Uri": f"{output_root}/{_kebab(kind)}",
                                "LocalPath": "/opt/ml/processing/output",
                                "S3UploadMode": "EndOfJob",
                            }
                        }
                    ],
                },
            }

        endpoint_input = {
            "EndpointName": self.endpoint_name,
            "LocalPath": "/opt/ml/processing/input/endpoint",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        }
        # Model quality and bias judge predictions against the labels uploaded as ground truth.
        labelled_input = {
            "EndpointInput": {
                **endpoint_input,
                # The endpoint answers one probability per row (pipelines/steps/train.py).
                "ProbabilityAttribute": "0",
                "ProbabilityThresholdAttribute": 0.5,
                # Labels arrive later than requests: judge the day before the last hour.
                "StartTimeOffset": "-PT25H",
                "EndTimeOffset": "-PT1H",
            },
            "GroundTruthS3Input": {"S3Uri": f"s3://{artifacts.bucket_name}/{GROUND_TRUTH_PREFIX}/{self.endpoint_name}"},
        }
        image = self._monitor_image(config, "ModelMonitor", MONITOR_IMAGE)
        if monitoring.data_quality is not None:
            statistics = self._baseline("DataQualityStatistics")
            constraints = self._baseline("DataQualityConstraints")
            condition = self._monitor_condition("DataQuality", statistics, constraints)
            definition = self._monitor_resource(
                "DataQualityJobDefinition",
                condition,
                {
                    "DataQualityAppSpecification": {
                        "ImageUri": image,
                        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
                    },
                    "DataQualityBaselineConfig": {
                        "ConstraintsResource": {"S3Uri": constraints.value_as_string},
                        "StatisticsResource": {"S3Uri": statistics.value_as_string},
                    },
                    "DataQualityJobInput": {"EndpointInput": endpoint_input},
                    **common("DataQuality"),
                },
            )
            self._schedule("DataQuality", condition, definition, monitoring.data_quality.schedule)
        if monitoring.model_quality is not None:
            constraints = self._baseline("ModelQualityConstraints")
            condition = self._monitor_condition("ModelQuality", constraints)
            definition = self._monitor_resource(
                "ModelQualityJobDefinition",
                condition,
                {
                    "ModelQualityAppSpecification": {
                        "ImageUri": image,
                        "ProblemType": "BinaryClassification",
                        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
                    },
                    "ModelQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": constraints.value_as_string}},
                    "ModelQualityJobInput": labelled_input,
                    **common("ModelQuality"),
                },
            )
            self._schedule("ModelQuality", condition, definition, monitoring.model_quality.schedule)
        if monitoring.bias is not None:
            bias_config = self._baseline("BiasConfig")
            condition = self._monitor_condition("ModelBias", bias_config)
            definition = self._monitor_resource(
                "ModelBiasJobDefinition",
                condition,
                {
                    "ModelBiasAppSpecification": {
                        "ImageUri": self._monitor_image(config, "Clarify", f"{CLARIFY_IMAGE}:1.0"),
                        "ConfigUri": bias_config.value_as_string,
                        "Environment": {"publish_cloudwatch_metrics": "Enabled"},
                    },
                    "ModelBiasJobInput": labelled_input,
                    **common("ModelBias"),
                },
            )
            self._schedule("ModelBias", condition, definition, monitoring.bias.schedule)
        if monitoring.explainability is not None:
            self._explainability_monitor(config, common("ModelExplainability"), endpoint_input, artifacts, key)

    def _explainability_monitor(
        self,
        config: PlatformConfig,
        settings: dict[str, Any],
        endpoint_input: dict[str, Any],
        artifacts: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        """Feature attribution drift: Clarify's Kernel SHAP on a shadow copy of the served model.

        The job calls the SageMaker API to start, invoke and remove the shadow endpoint, so it runs
        without network isolation (in the private subnets, no internet path): the config's stated
        exception, acknowledged on the job definition. It has a role of its own, which may start
        only `sm-clarify-*` endpoints of this model.
        """
        explainability = config.monitoring.explainability
        assert explainability is not None
        constraints = self._baseline("ExplainabilityConstraints")
        analysis = self._state_parameter(
            config,
            EXPLAINABILITY_PARAMETER,
            "S3 URI of the explainability monitor's analysis config for the promoted version (it names the "
            f"model; {serving_state.UNSET} without one); written by the promotion function",
        )
        self.explainability_parameter = analysis
        condition = self._monitor_condition("ModelExplainability", constraints, analysis)
        role = self._explainability_role(config, artifacts, key)
        settings["RoleArn"] = role.role_arn
        settings["NetworkConfig"]["EnableNetworkIsolation"] = False
        definition = cdk.CfnResource(
            self,
            "ModelExplainabilityJobDefinition",
            type="AWS::SageMaker::ModelExplainabilityJobDefinition",
            properties={
                "ModelExplainabilityAppSpecification": {
                    "ImageUri": self._monitor_image(config, "Clarify", f"{CLARIFY_IMAGE}:1.0"),
                    "ConfigUri": analysis.value_as_string,
                    "Environment": {"publish_cloudwatch_metrics": "Enabled"},
                },
                "ModelExplainabilityBaselineConfig": {"ConstraintsResource": {"S3Uri": constraints.value_as_string}},
                "ModelExplainabilityJobInput": {"EndpointInput": endpoint_input},
                **settings,
            },
        )
        definition.cfn_options.condition = condition
        definition.node.add_dependency(role.node.find_child("DefaultPolicy"))
        # For the cost estimate: each run also pays for the shadow endpoint's instance.
        definition.add_metadata(cost.SHADOW_METADATA, {"InstanceType": self._shadow_type(config), "InstanceCount": 1})
        acknowledge(
            definition,
            f"Explainability monitor, by config: {explainability.isolation_exception}",
            [f"{ML}::MLP-SM9"],
        )
        self._schedule("ModelExplainability", condition, definition, explainability.schedule)

    def _monitor_condition(self, kind: str, *baselines: cdk.CfnParameter) -> cdk.CfnCondition:
        return cdk.CfnCondition(
            self,
            f"Monitor{kind}",
            expression=cdk.Fn.condition_and(
                self.has_model,
                *(
                    cdk.Fn.condition_not(cdk.Fn.condition_equals(b.value_as_string, serving_state.UNSET))
                    for b in baselines
                ),
            ),
        )

    def _monitor_resource(
        self, resource: str, condition: cdk.CfnCondition, properties: dict[str, Any]
    ) -> cdk.CfnResource:
        definition = cdk.CfnResource(self, resource, type=f"AWS::SageMaker::{resource}", properties=properties)
        definition.cfn_options.condition = condition
        definition.node.add_dependency(self.monitor_role.node.find_child("DefaultPolicy"))
        return definition

    def _schedule(self, kind: str, condition: cdk.CfnCondition, definition: cdk.CfnResource, schedule: str) -> None:
        name = monitor_schedule_name(self.endpoint_name, kind)
        resource = cdk.CfnResource(
            self,
            f"{kind}Schedule",
            type="AWS::SageMaker::MonitoringSchedule",
            properties={
                "MonitoringScheduleName": name,
                "EndpointName": self.endpoint_name,
                "MonitoringScheduleConfig": {
                    "MonitoringJobDefinitionName": definition.get_att("JobDefinitionName"),
                    "MonitoringType": kind,
                    "ScheduleConfig": {"ScheduleExpression": MONITOR_SCHEDULES[schedule]},
                },
            },
        )
        resource.cfn_options.condition = condition
        resource.node.add_dependency(self.endpoint)
        self.monitor_schedules[kind] = resource

    def _monitor_image(self, config: PlatformConfig, family: str, image: str) -> str:
        """An image of the monitoring jobs in this region: literal registry if known, else mapped."""
        from pipelines import definition as pipeline

        if config.region is not None:
            registry = pipeline.registry_accounts()[config.region][family]
        else:
            mapping = self.node.try_find_child("MonitorRegistries") or cdk.CfnMapping(
                self, "MonitorRegistries", mapping=pipeline.registry_accounts()
            )
            registry = mapping.find_in_map(cdk.Aws.REGION, family)
        return f"{registry}.dkr.ecr.{self.region}.{self.url_suffix}/{image}"

    def _job_role(
        self,
        config: PlatformConfig,
        artifacts: s3.IBucket,
        key: kms.IKey,
        *,
        kind: str,
        description: str,
        inputs: list[str],
        images: list[tuple[str, str]],
    ) -> tuple[iam.Role, list[str]]:
        """A monitoring job's role: read `inputs` (prefixes of this endpoint), the pipeline's baselines and
        its own reports, write the reports, pull `images` ((registry family, repository) pairs), log.

        Returns the role and the wildcard resources it was granted, for the caller's acknowledgment.
        """
        from pipelines import definition as pipeline

        partition, region, account = self.partition, self.region, self.account
        role = iam.Role(
            self,
            f"{kind.capitalize()}Role",
            assumed_by=service_principal("sagemaker.amazonaws.com", account),
            description=description,
            role_name=self._role_name(config, kind),
        )
        # The baselines (and configs) are the training pipeline's outputs, registered with the version.
        baselines = self._read_models(config, role, artifacts)
        prefixes = [f"{prefix}/{self.endpoint_name}/*" for prefix in (*inputs, MONITOR_PREFIX)]
        read = [artifacts.arn_for_objects(prefix) for prefix in prefixes]
        written = read[-1]
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=read))
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[written])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": prefixes}},
            )
        )
        key.grant_encrypt_decrypt(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=[
                    f"arn:{partition}:ecr:{region}:{registry}:repository/{repository}"
                    for family, repository in images
                    for registry in sorted({f[family] for f in pipeline.registry_accounts().values()})
                ],
            )
        )
        log_streams = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/ProcessingJobs:*"
        role.add_to_policy(sagemaker_roles.log_streams(log_streams))
        role.add_to_policy(sagemaker_roles.metrics(["aws/sagemaker/Endpoints/*"]))
        role.add_to_policy(sagemaker_roles.resourceless())
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        return role, ["*", *read, baselines, log_streams, *self._source_key_wildcards()]

    def _explainability_role(self, config: PlatformConfig, artifacts: s3.IBucket, key: kms.IKey) -> iam.Role:
        """The explainability job: captured data, its config and baseline, its report, and the shadow endpoint."""
        role, wildcards = self._job_role(
            config,
            artifacts,
            key,
            kind="explainability",
            description=f"Model explainability monitor of {self.endpoint_name}: Clarify and its shadow endpoint",
            inputs=[CAPTURE_PREFIX],
            images=[("Clarify", CLARIFY_IMAGE)],
        )

        def arn(resource: str) -> str:
            return f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{resource}"

        # Clarify starts a shadow endpoint of the served model, calls it, and removes it.
        shadows = [arn(f"endpoint/{SHADOW_PREFIX}-*"), arn(f"endpoint-config/{SHADOW_PREFIX}-*")]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ShadowEndpoint",
                actions=[
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:InvokeEndpoint",
                    "sagemaker:AddTags",
                ],
                resources=shadows,
            )
        )
        models = arn(f"model/{self.model_name_prefix}*")
        role.add_to_policy(
            iam.PolicyStatement(sid="ServedModel", actions=["sagemaker:DescribeModel"], resources=[models])
        )
        # No guardrail: it would deny the shadow endpoint config, which Clarify creates without a KMS key.
        acknowledge_wildcards(
            role,
            "This endpoint's capture and report prefixes and the pipeline's baselines (named per execution); "
            "Clarify's shadow endpoints and configs are named per run under sm-clarify-, and the served "
            "model per version under its prefix; processing-job log streams are named per job; ECR login, "
            "metrics and VPC ENI calls take no resource ARN; KMS action families come from CDK's key grant.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=[*wildcards, *shadows, models],
        )
        self.explainability_role = role
        return role

    def _monitor_role(
        self, config: PlatformConfig, artifacts: s3.IBucket, key: kms.IKey, guardrail: SageMakerGuardrailPolicy
    ) -> iam.Role:
        """What the monitoring jobs run as: read capture, baselines and labels; write their reports."""
        images = [("ModelMonitor", MONITOR_IMAGE), *((("Clarify", CLARIFY_IMAGE),) if config.monitoring.bias else ())]
        role, wildcards = self._job_role(
            config,
            artifacts,
            key,
            kind="monitor",
            description=f"Model Monitor jobs of {self.endpoint_name}: captured data, baselines, labels, reports",
            inputs=[CAPTURE_PREFIX, GROUND_TRUTH_PREFIX],
            images=images,
        )
        guardrail.attach_to(role)
        acknowledge_wildcards(
            role,
            "This endpoint's capture, label and report prefixes and the pipeline's baselines (named per "
            "execution); processing-job log streams are named per job; ECR login, metrics and VPC ENI calls "
            "take no resource ARN; KMS action families come from CDK's key grant.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=wildcards,
        )
        self.monitor_role = role
        return role

    # --- promotion -------------------------------------------------------------------------------

    def _deploy_role(
        self,
        config: PlatformConfig,
        artifacts_key: kms.IKey,
        packages: str,
        serverless: bool,
        guardrail: SageMakerGuardrailPolicy,
    ) -> iam.Role:
        """The role CloudFormation uses when the promotion function updates the parameter.

        With the previous template, only what the parameter drives changes: the model, endpoint
        config, endpoint, their scaling and alarms.
        """
        partition, region, account = self.partition, self.region, self.account
        role = iam.Role(
            self,
            "DeployRole",
            assumed_by=service_principal("cloudformation.amazonaws.com", account),
            description=f"CloudFormation updating {self.stack_name} to a newly approved model version",
        )

        def arn(resource: str) -> str:
            return f"arn:{partition}:sagemaker:{region}:{account}:{resource}"

        sagemaker_resources = [arn("model/*"), arn("endpoint-config/*"), arn(f"endpoint/{self.endpoint_name}")]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:DeleteModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:DeleteEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DeleteEndpoint",
                    "sagemaker:AddTags",
                    "sagemaker:DeleteTags",
                    "sagemaker:ListTags",
                ],
                resources=sagemaker_resources,
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages]))
        # CloudFormation resolves the promoted state (SSM-typed parameters) with this role.
        role.add_to_policy(iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[self.state_parameters]))
        passed = [self.model_role.role_arn]
        if self.monitor_schedules:
            # The monitors' job definitions are replaced with each version's baselines; schedules updated.
            kinds = ["DataQuality", "ModelQuality", "ModelBias"]
            if "ModelExplainability" in self.monitor_schedules:
                kinds.append("ModelExplainability")
                passed.append(self.explainability_role.role_arn)
            monitor_resources = [
                *(arn(f"{_kebab(kind)}-job-definition/*") for kind in kinds),
                arn(f"monitoring-schedule/{self.endpoint_name}-*"),
            ]
            sagemaker_resources += monitor_resources
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        f"sagemaker:{verb}{kind}JobDefinition"
                        for verb in ("Create", "Describe", "Delete")
                        for kind in kinds
                    ]
                    + [f"sagemaker:{verb}MonitoringSchedule" for verb in ("Create", "Describe", "Update", "Delete")]
                    + ["sagemaker:AddTags", "sagemaker:ListTags", "sagemaker:DeleteTags"],
                    resources=monitor_resources,
                )
            )
            passed.append(self.monitor_role.role_arn)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=passed,
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        alarms = f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{self.endpoint_name}-*"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"],
                resources=[alarms],
            )
        )
        # Application Auto Scaling and alarm descriptions take no resource ARN.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DeleteScalingPolicy",
                    "application-autoscaling:DescribeScalingPolicies",
                    "cloudwatch:DescribeAlarms",
                ],
                resources=["*"],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{partition}:iam::{account}:role/aws-service-role/"
                    "sagemaker.application-autoscaling.amazonaws.com/*"
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
            )
        )
        # An endpoint config with a KMS key needs a grant on it by the caller.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant", "kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"],
                resources=[artifacts_key.key_arn],
            )
        )
        if "ModelExplainability" in self.monitor_schedules:
            # The same guardrail, but for the stated exception: an explainability job definition
            # without network isolation (config: monitoring.explainability.isolation_exception).
            SageMakerGuardrailPolicy(
                self, "DeployGuardrail", isolation_exempt=["sagemaker:CreateModelExplainabilityJobDefinition"]
            ).attach_to(role)
        elif not serverless:
            # The same deny guardrail as every SageMaker role: no model outside the VPC or isolation.
            guardrail.attach_to(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Models, endpoint configs and monitoring job definitions get generated names on every promotion, "
            "so they are matched by type in this account and region (the endpoint by its name, the "
            "monitoring schedules by its prefix); versions of this platform's "
            "model group; this endpoint's alarms; the SSM parameters of the promoted state; Application "
            "Auto Scaling and DescribeAlarms take no resource ARN; the autoscaling service-linked role's path.",
            resources=[
                "*",
                *(r for r in sagemaker_resources if r.endswith("*")),
                packages,
                alarms,
                self.state_parameters,
                f"arn:{partition}:iam::{account}:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/*",
            ],
        )
        return role

    def _promotion(
        self,
        config: PlatformConfig,
        group: str,
        packages: str,
        key: kms.IKey,
        alerts_topic: sns.ITopic,
        subnet_ids: list[str],
        security_group: ec2.ISecurityGroup,
    ) -> PythonFunction:
        """Approved versions of this platform's group reach the endpoint through the promotion function."""
        function = PythonFunction(
            self,
            "Promotion",
            config=config,
            source="promotion",
            description=f"sets the approved model version on {self.stack_name}",
            environment={
                "STACK_NAME": self.stack_name,
                "PARAMETER_NAME": PARAMETER,
                "MODEL_PACKAGE_GROUP": group,
                "MODEL_PACKAGE_ACCOUNT": naming.registry_account(config, self.account),
                "STATE_PREFIX": serving_state.prefix(config),
                "DEPLOY_ROLE_ARN": self.deploy_role.role_arn,
                "ALERT_TOPIC_ARN": alerts_topic.topic_arn,
                "BASELINE_PARAMETERS": json.dumps(
                    {name: BASELINE_PARAMETERS[name] for name in self.baseline_parameters}, sort_keys=True
                ),
                **(
                    {"EXPLAINABILITY": self.to_json_string(self.explainability_settings)}
                    if self.explainability_settings
                    else {}
                ),
            },
            subnet_ids=subnet_ids,
            security_group=security_group,
            key=key,
            alerts_topic_arn=alerts_topic.topic_arn,
            timeout_seconds=60,
            # It reads the explainability config templates among the source account's artifacts.
            role_name=self._role_name(config, "promotion") if self.explainability_settings else None,
        )
        role = function.role
        stack_arn = f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/*"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:UpdateStack"], resources=[stack_arn]
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.deploy_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
            )
        )
        # The promoted state it writes before each update (and restores after a rollback).
        role.add_to_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter", "ssm:PutParameter"], resources=[self.state_parameters])
        )
        acknowledge_wildcards(
            function.role,
            "This stack by name (its id suffix changes if it is recreated); versions of this platform's model "
            "group; the SSM parameters of this environment's promoted state, one per promoted value.",
            resources=[stack_arn, packages, self.state_parameters],
        )
        pattern: dict[str, Any] = naming.model_package_changes(group, "Approved", "Rejected")
        self.approvals_bus_policy = None
        if self.source is not None:
            # The source account forwards its registry's state changes to this account's default bus;
            # only events from that account, of that kind, are let in, and only those reach promotion.
            pattern["account"] = [self.source.account]
            self.approvals_bus_policy = self._admit_source_events(pattern)
        rule = function.invoked_by_rule(
            self,
            "ModelApprovals",
            f"Approvals and rejections in {group} reach the promotion function",
            event_pattern=pattern,
        )
        self.approval_rule = rule
        # After a failed promotion rolls back, the function writes back what the stack serves, so the
        # next deployment (a pipeline run) does not bring the failed version again.
        self.restore_rule = function.invoked_by_rule(
            self,
            "RolledBackPromotions",
            f"{self.stack_name} updates that rolled back: the promoted state is restored to what it serves",
            event_pattern={
                "source": ["aws.cloudformation"],
                "detail-type": ["CloudFormation Stack Status Change"],
                "resources": [self.stack_id],
                "detail": {"status-details": {"status": ["UPDATE_ROLLBACK_COMPLETE"]}},
            },
        )
        return function

    def _admit_source_events(self, pattern: dict[str, Any]) -> cdk.CfnResource:
        assert self.source is not None
        properties = {
            "EventBusName": "default",
            "StatementId": f"{self.stack_name}-source-approvals"[:64],
            # The statement's Sid is StatementId.
            "Statement": {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{self.partition}:iam::{self.source.account}:root"},
                "Action": "events:PutEvents",
                "Resource": f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/default",
                "Condition": {
                    "StringEquals": {
                        "events:source": pattern["source"][0],
                        "events:detail-type": pattern["detail-type"][0],
                    }
                },
            },
        }
        # A plain resource: the L1 class warns of its deprecated `principal` on every synth.
        return cdk.CfnResource(self, "SourceApprovals", type="AWS::Events::EventBusPolicy", properties=properties)

    @staticmethod
    def _shadow_type(config: PlatformConfig) -> str:
        """The explainability job's shadow endpoint instance type: the configured one, or the first variant's."""
        assert config.monitoring is not None and config.monitoring.explainability is not None
        assert config.serving is not None
        return config.monitoring.explainability.instance_type or config.serving.variants[0].instance_type

    def _explainability_settings(
        self, config: PlatformConfig, artifacts: s3.IBucket, artifacts_key: kms.IKey
    ) -> dict[str, str]:
        """What the promotion function needs to write each version's explainability config (EXPLAINABILITY)."""
        assert config.monitoring is not None and config.monitoring.explainability is not None
        assert config.serving is not None and self.model_name_prefix is not None
        return {
            "parameter": EXPLAINABILITY_PARAMETER,
            "bucket": artifacts.bucket_name,
            "prefix": f"{MONITOR_PREFIX}/{self.endpoint_name}/{EXPLAINABILITY_CONFIGS}",
            "model_name_prefix": self.model_name_prefix,
            "instance_type": self._shadow_type(config),
            "kms_key_id": artifacts_key.key_arn,
        }

    def _promotion_writes_explainability_config(
        self, config: PlatformConfig, artifacts: s3.IBucket, artifacts_key: kms.IKey
    ) -> None:
        """The promotion function reads the registered template and writes the config of the version it deploys."""
        assert self.explainability_settings is not None
        function = self.promotion
        templates = self._read_models(config, function.role, artifacts)
        written = artifacts.arn_for_objects(f"{self.explainability_settings['prefix']}/*")
        function.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[written]))
        artifacts_key.grant_encrypt_decrypt(function.role)
        acknowledge_wildcards(
            function.role,
            "The explainability config templates under the pipeline's prefix (named per execution) and the "
            "configs it writes per version; KMS action families come from CDK's key grant.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=[templates, written, *self._source_key_wildcards()],
        )

    def _deployment_alerts(self, alerts_topic: sns.ITopic, promotion: PythonFunction) -> None:
        """A promotion that fails rolls the stack back; the previous version keeps serving, and people hear of it."""
        self.rollback_rule = events.CfnRule(
            self,
            "FailedPromotions",
            description=f"{self.stack_name} updates that failed or rolled back",
            event_pattern={
                "source": ["aws.cloudformation"],
                "detail-type": ["CloudFormation Stack Status Change"],
                "resources": [self.stack_id],
                "detail": {
                    "status-details": {
                        "status": ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"]
                    }
                },
            },
            state="ENABLED",
            targets=[
                promotion.dead_letters.target(
                    "Alerts",
                    alerts_topic.topic_arn,
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map={"status": "$.detail.status-details.status", "stack": "$.detail.stack-id"},
                        input_template=(
                            '"Model promotion failed: <stack> is <status>. The previous model version keeps '
                            "serving; see the stack events and the endpoint's deployment.\""
                        ),
                    ),
                )
            ],
        )
        promotion.dead_letters.receive_from(self.rollback_rule, "RollbackAlertDeadLetters")


class _Alarm:
    """A rollback alarm: its name is fixed so the endpoint can name it."""

    def __init__(self, name: str, properties: dict[str, Any]) -> None:
        self.name = name
        self.properties = properties
        self.resource: cdk.CfnResource | None = None
