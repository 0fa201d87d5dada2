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

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import instances, naming
from infra.compliance import (
    INLINE_POLICY_REASON,
    ML,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import PlatformConfig, ServingConfig
from infra.functions import PythonFunction
from infra.guardrails import SageMakerGuardrailPolicy
from infra.naming import export_name
from stacks.base import PlatformStack

PARAMETER = "ModelPackageArn"
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
        packages = f"arn:{partition}:sagemaker:{region}:{account}:model-package/{group}/*"
        artifacts = s3.Bucket.from_bucket_attributes(
            self,
            "ArtifactsBucket",
            bucket_arn=cdk.Fn.import_value(export_name(config, "artifacts-bucket-arn")),
            bucket_name=cdk.Fn.import_value(export_name(config, "artifacts-bucket-name")),
        )
        serverless = serving.mode == "serverless"
        subnet_ids = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids

        self.package = cdk.CfnParameter(
            self,
            PARAMETER,
            type="String",
            default="",
            # Only versions of this platform's group; empty until the first approval.
            allowed_pattern=rf"^$|^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{{12}}:model-package/{group}/[0-9]+$",
            constraint_description=f"empty, or the ARN of a version of the model package group {group}",
            description="The approved model package version the endpoint serves; set by the promotion function.",
        )
        self.has_model = cdk.CfnCondition(
            self,
            "HasModel",
            expression=cdk.Fn.condition_not(cdk.Fn.condition_equals(self.package.value_as_string, "")),
        )

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

        self.deploy_role = self._deploy_role(config, artifacts_key, packages, serverless, guardrail)
        self.promotion = self._promotion(config, group, packages, logs_key, alerts_topic, subnet_ids, security_group)
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
        )
        models = artifacts.arn_for_objects(f"pipelines/{naming.training_pipeline(config)}/*")
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[models]))
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
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[log_streams],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            )
        )
        resourceless = ["ecr:GetAuthorizationToken"]
        if not serverless:
            resourceless += [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ]
        role.add_to_policy(iam.PolicyStatement(actions=resourceless, resources=["*"]))
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
            ],
        )
        return role

    def _model(
        self, serving: ServingConfig, subnet_ids: list[str], security_group: ec2.ISecurityGroup, serverless: bool
    ) -> cdk.CfnResource:
        properties: dict[str, Any] = {
            "ExecutionRoleArn": self.model_role.role_arn,
            "PrimaryContainer": {"ModelPackageName": self.package.value_as_string},
        }
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
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.model_role.role_arn],
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
        if not serverless:
            # The same deny guardrail as every SageMaker role: no model outside the VPC or isolation.
            guardrail.attach_to(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Models and endpoint configs get generated names on every promotion, so they are matched by "
            "type in this account and region (the endpoint by its name); versions of this platform's "
            "model group; this endpoint's alarms; Application Auto Scaling and DescribeAlarms take no "
            "resource ARN; the autoscaling service-linked role's path.",
            resources=[
                "*",
                *sagemaker_resources[:2],
                packages,
                alarms,
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
                "DEPLOY_ROLE_ARN": self.deploy_role.role_arn,
                "ALERT_TOPIC_ARN": alerts_topic.topic_arn,
            },
            subnet_ids=subnet_ids,
            security_group=security_group,
            key=key,
            alerts_topic_arn=alerts_topic.topic_arn,
            timeout_seconds=60,
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
        acknowledge_wildcards(
            function.role,
            "This stack by name (its id suffix changes if it is recreated); versions of this platform's model group.",
            resources=[stack_arn, packages],
        )
        rule = events.CfnRule(
            self,
            "ModelApprovals",
            description=f"Approvals and rejections in {group} reach the promotion function",
            event_pattern={
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Package State Change"],
                "detail": {
                    "ModelPackageGroupName": [group],
                    "ModelApprovalStatus": ["Approved", "Rejected"],
                },
            },
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="Promotion",
                    arn=function.function_arn,
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=8, maximum_event_age_in_seconds=3600
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=function.dead_letters.queue_arn),
                )
            ],
        )
        function.allow_events_from("EventsInvoke", rule.attr_arn)
        function.dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RuleDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[function.dead_letters.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": rule.attr_arn}},
            )
        )
        self.approval_rule = rule
        return function

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
                events.CfnRule.TargetProperty(
                    id="Alerts",
                    arn=alerts_topic.topic_arn,
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map={"status": "$.detail.status-details.status", "stack": "$.detail.stack-id"},
                        input_template=(
                            '"Model promotion failed: <stack> is <status>. The previous model version keeps '
                            "serving; see the stack events and the endpoint's deployment.\""
                        ),
                    ),
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_retry_attempts=8, maximum_event_age_in_seconds=3600
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=promotion.dead_letters.queue_arn),
                )
            ],
        )
        promotion.dead_letters.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RollbackAlertDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[promotion.dead_letters.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.rollback_rule.attr_arn}},
            )
        )


class _Alarm:
    """A rollback alarm: its name is fixed so the endpoint can name it."""

    def __init__(self, name: str, properties: dict[str, Any]) -> None:
        self.name = name
        self.properties = properties
        self.resource: cdk.CfnResource | None = None
