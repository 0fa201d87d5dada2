"""The endpoint config and endpoint of the promoted version, both conditional on one being promoted."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from infra.catalog import instances, naming
from infra.checks.compliance import ML, acknowledge
from stacks.serving.context import ServingContext
from stacks.serving.deployment import RollbackAlarm, deployment_config
from stacks.serving.model import ServedModel


def endpoint_config(ctx: ServingContext, model: ServedModel) -> cdk.CfnResource:
    """Creates the conditional endpoint config: its variants, storage key, data capture and asynchronous output."""
    serving, key = ctx.serving, ctx.inputs.artifacts_key
    properties: dict[str, Any] = {"ProductionVariants": _variants(ctx, model.model.get_att("ModelName"))}
    nvme = [v.instance_type for v in serving.variants if instances.has_local_nvme(v.instance_type)]
    if not ctx.serverless and not nvme:
        properties["KmsKeyId"] = key.key_arn
    if serving.data_capture.enabled:
        properties["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": serving.data_capture.sampling_percentage,
            "DestinationS3Uri": f"s3://{ctx.artifacts.bucket_name}/{naming.CAPTURE_PREFIX}/{ctx.endpoint_name}",
            "KmsKeyId": key.key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]},
        }
    if serving.async_inference is not None:
        properties["AsyncInferenceConfig"] = {
            "OutputConfig": _async_output(ctx, model),
            "ClientConfig": {
                "MaxConcurrentInvocationsPerInstance": serving.async_inference.max_concurrent_invocations_per_instance
            },
        }
    resource = ctx.state.when_served("EndpointConfig", "AWS::SageMaker::EndpointConfig", properties)
    if ctx.serverless:
        # Local-NVMe variants are compliant without a key (MLP-SM3 knows them); serverless is not.
        acknowledge(
            resource,
            "Serverless endpoints take no endpoint-config KMS key: they keep no instance storage.",
            [f"{ML}::MLP-SM3"],
        )
    return resource


def _variants(ctx: ServingContext, model_name: cdk.Reference) -> list[dict[str, Any]]:
    serving = ctx.serving
    if serving.serverless is not None and ctx.serverless:
        settings: dict[str, Any] = {
            "MemorySizeInMB": serving.serverless.memory_mb,
            "MaxConcurrency": serving.serverless.max_concurrency,
        }
        if serving.serverless.provisioned_concurrency:
            settings["ProvisionedConcurrency"] = serving.serverless.provisioned_concurrency
        return [{"VariantName": "AllTraffic", "ModelName": model_name, "ServerlessConfig": settings}]
    return [
        {
            "VariantName": v.name,
            "ModelName": model_name,
            "InstanceType": v.instance_type,
            "InitialInstanceCount": v.initial_instance_count,
            "InitialVariantWeight": v.weight,
        }
        for v in serving.variants
    ]


def _async_output(ctx: ServingContext, model: ServedModel) -> dict[str, Any]:
    root = f"s3://{ctx.artifacts.bucket_name}/{naming.ASYNC_PREFIX}/{ctx.endpoint_name}"
    output: dict[str, Any] = {
        "S3OutputPath": f"{root}/output",
        "S3FailurePath": f"{root}/failure",
        "KmsKeyId": ctx.inputs.artifacts_key.key_arn,
    }
    if model.async_topics:
        output["NotificationConfig"] = {
            "SuccessTopic": model.async_topics["Success"].topic_arn,
            "ErrorTopic": model.async_topics["Error"].topic_arn,
        }
    return output


def endpoint(ctx: ServingContext, config: cdk.CfnResource, alarms: list[RollbackAlarm]) -> cdk.CfnResource:
    """Creates the conditional endpoint, by its fixed name, after the rollback alarms its deployments name."""
    resource = ctx.state.when_served(
        "Endpoint",
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": ctx.endpoint_name,
            "EndpointConfigName": config.get_att("EndpointConfigName"),
            "DeploymentConfig": deployment_config(ctx.serving, [a.name for a in alarms]),
        },
    )
    for alarm in alarms:
        resource.node.add_dependency(alarm.resource)
    return resource
