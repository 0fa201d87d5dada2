"""The calls behind every SageMaker job: derived from each pipeline definition's steps and each monitoring job
definition, from their own arguments.

The pipeline's role creates each job (with the condition keys its request carries, which the
guardrail judges) and passes the job's role. SageMaker then acts as the job's role: it assumes
it, reads every S3 input (listing the prefix, getting the objects, decrypting with the bucket's
key), writes every output and checkpoint with the output key the request names, pulls the image,
places network interfaces in the job's subnets, and writes logs and metrics. S3 calls go through
the VPC's S3 endpoint when the job has subnets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tests.access.calls import Call, Network
from tests.access.definitions import EXECUTION_ID, PipelineValues, definition_of, steps_of
from tests.access.environments import Deployed
from tests.access.monitor_runs import monitor_run, starter_of
from tests.access.resolver import PARTITION, Resource
from tests.access.sagemaker_context import condition_keys

S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$")
# Ancestors that make an S3 location a job's output (the rest are inputs); checkpoints are both.
OUTPUT_PARENTS = (
    "OutputConfig",
    "OutputDataConfig",
    "Outputs",
    "MonitoringOutputs",
    "ProfilerConfig",
    "DebugHookConfig",
    "TensorBoardOutputConfig",
    "S3OutputPath",
)
BOTH_PARENTS = ("CheckpointConfig",)
JOB_KIND = {
    "Processing": "processing",
    "QualityCheck": "processing",
    "ClarifyCheck": "processing",
    "Training": "training",
    "Tuning": "training",
}
CREATE_ACTION = {
    "Processing": "CreateProcessingJob",
    "QualityCheck": "CreateProcessingJob",
    "ClarifyCheck": "CreateProcessingJob",
    "Training": "CreateTrainingJob",
    "Tuning": "CreateHyperParameterTuningJob",
}
LOG_GROUPS = {"processing": "/aws/sagemaker/ProcessingJobs", "training": "/aws/sagemaker/TrainingJobs"}


@dataclass
class Job:
    """One job as SageMaker runs it: where it comes from, its role, request and network."""

    origin: str  # "<pipeline> step <name>" or "<job definition>"
    kind: str  # processing or training
    role: str
    request: dict[str, Any]
    subnets: tuple[str, ...]

    @property
    def network(self) -> Network | None:
        return Network(self.subnets) if self.subnets else None


# --- pipeline definitions ------------------------------------------------------------------------


def pipeline_jobs(
    deployed: Deployed, pipeline: Resource, parameters: Mapping[str, str] | None = None
) -> tuple[list[Job], list[Call]]:
    """Every job of one pipeline's execution started with `parameters`, and the calls of the pipeline's own role."""
    definition = definition_of(pipeline)
    values = PipelineValues(definition, parameters)
    pipeline_role = pipeline.properties["RoleArn"]
    jobs, calls = [], []
    for step in steps_of(definition["Steps"]):
        origin = f"{pipeline.name} step {step['Name']}"
        arguments = values(step["Arguments"])
        if step["Type"] in CREATE_ACTION:
            job = _pipeline_job(step, arguments, origin)
            jobs.append(job)
            calls += _create_job(deployed, pipeline_role, step, arguments, job)
        elif step["Type"] == "RegisterModel":
            group = arguments["ModelPackageGroupName"]
            env = deployed.environment
            arn = f"arn:{PARTITION}:sagemaker:{env.region}:{env.account}:model-package/{group}/1"
            calls.append(Call(pipeline_role, "sagemaker:CreateModelPackage", arn, f"{origin}: registers the version"))
        elif step["Type"] == "Lambda":
            why = f"{origin}: the pipeline invokes the step's function"
            calls.append(Call(pipeline_role, "lambda:InvokeFunction", step["FunctionArn"], why))
    return jobs, calls


def monitor_pipeline_jobs(deployed: Deployed) -> tuple[list[Job], list[Call]]:
    """The jobs and pipeline calls of each platform monitor run, as the deployed starter starts it;
    the analysis job also reads every object its window manifest lists."""
    jobs, calls = [], []
    for pipeline in deployed.environment.resources("AWS::SageMaker::Pipeline"):
        starter = starter_of(deployed, pipeline)
        if starter is None:
            continue
        run = monitor_run(deployed, starter)
        found, pipeline_calls = pipeline_jobs(deployed, pipeline, run.parameters)
        for job in found:
            if any(
                i.get("S3Input", {}).get("S3DataType") == "ManifestFile"
                for i in job.request.get("ProcessingInputs", [])
            ):
                job.request = {**job.request, "ManifestEntries": run.manifest}
        jobs += found
        calls += pipeline_calls
    return jobs, calls


def _pipeline_job(step: dict[str, Any], arguments: dict[str, Any], origin: str) -> Job:
    training = arguments.get("TrainingJobDefinition", arguments)
    role = training.get("RoleArn") or arguments["RoleArn"]
    vpc = training.get("VpcConfig") or arguments.get("NetworkConfig", {}).get("VpcConfig", {})
    return Job(
        origin,
        JOB_KIND[step["Type"]],
        role,
        training if step["Type"] == "Tuning" else arguments,
        tuple(vpc.get("Subnets", [])),
    )


def _create_job(
    deployed: Deployed, caller: str, step: dict[str, Any], arguments: dict[str, Any], job: Job
) -> list[Call]:
    env = deployed.environment
    action = CREATE_ACTION[step["Type"]]
    kind = {"CreateProcessingJob": "processing-job", "CreateTrainingJob": "training-job"}.get(
        action, "hyper-parameter-tuning-job"
    )
    arn = f"arn:{PARTITION}:sagemaker:{env.region}:{env.account}:{kind}/pipelines-{EXECUTION_ID}-{step['Name'].lower()}"
    why = f"{job.origin}: the pipeline starts the job"
    return [
        Call(caller, f"sagemaker:{action}", arn, why, context=condition_keys(action, arguments), network=None),
        Call(
            caller,
            "iam:PassRole",
            job.role,
            f"{why} with its role",
            context={"iam:PassedToService": "sagemaker.amazonaws.com"},
        ),
    ]


# --- monitoring job definitions ------------------------------------------------------------------

DEFINITIONS = ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability")


def definition_jobs(deployed: Deployed) -> list[Job]:
    jobs = []
    for kind in DEFINITIONS:
        for resource in deployed.environment.resources(f"AWS::SageMaker::{kind}JobDefinition"):
            p = resource.properties
            vpc = p.get("NetworkConfig", {}).get("VpcConfig", {})
            request = dict(p)
            capture = _captured_data(deployed, p)
            if capture:
                request["CapturedData"] = {"S3Uri": capture}  # what SageMaker reads for an EndpointInput
            jobs.append(
                Job(
                    f"{resource.logical_id} ({resource.stack})",
                    "processing",
                    p["RoleArn"],
                    request,
                    tuple(vpc.get("Subnets", [])),
                )
            )
    return jobs


def _captured_data(deployed: Deployed, properties: dict[str, Any]) -> str | None:
    endpoint = json.dumps(properties).split('"EndpointName": "', 1)
    if len(endpoint) < 2:
        return None
    name = endpoint[1].split('"', 1)[0]
    for config in deployed.environment.resources("AWS::SageMaker::EndpointConfig"):
        destination = config.properties.get("DataCaptureConfig", {}).get("DestinationS3Uri")
        if destination:
            return f"{destination.rstrip('/')}/{name}/AllTraffic/2026/01/01/00/"
    return None


# --- what SageMaker does as the job's role -------------------------------------------------------


# Inputs SageMaker lists before it reads them: prefixes (S3DataType S3Prefix) and these fields.
PREFIX_FIELDS = ("GroundTruthS3Input", "CapturedData", "CheckpointConfig")


def _locations(value: Any, ancestors: tuple[str, ...] = (), listed: bool = False) -> Iterator[tuple[str, str, bool]]:
    """(s3 uri, "in" | "out" | "both", listed first) for every S3 location in a request."""
    if isinstance(value, dict):
        listed = listed or value.get("S3DataType") == "S3Prefix"
        for key, item in value.items():
            if key in PARTITIONED and isinstance(item, dict) and "S3Uri" in item:
                item = dict(item, S3Uri=f"{item['S3Uri'].rstrip('/')}/2026/01/01/00/")
            yield from _locations(item, (*ancestors, key), listed or key in PREFIX_FIELDS)
    elif isinstance(value, list):
        for item in value:
            yield from _locations(item, ancestors, listed)
    elif isinstance(value, str) and value.startswith("s3://"):
        if any(a in BOTH_PARENTS for a in ancestors):
            yield value, "both", True
        elif any(a.endswith(OUTPUT_PARENTS) or a in OUTPUT_PARENTS for a in ancestors):
            yield value, "out", False
        else:
            yield value, "in", listed


def _bucket_key(deployed: Deployed, bucket: str) -> str | None:
    for resource in deployed.environment.resources("AWS::S3::Bucket"):
        if resource.name == bucket:
            rules = resource.properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
            return rules[0].get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID") if rules else None
    return None


# Inputs SageMaker reads by hour partitions below the configured prefix.
PARTITIONED = ("GroundTruthS3Input",)


def _object(uri: str) -> tuple[str, str, str]:
    match = S3_URI.match(uri)
    assert match, uri
    bucket, key = match[1], match[2]
    prefix = key
    name = key if "." in key.rsplit("/", 1)[-1] else f"{key.rstrip('/')}/part-00000"
    return bucket, prefix, name


def job_calls(deployed: Deployed, job: Job) -> list[Call]:
    """What SageMaker does with the job's role while the job runs."""
    env = deployed.environment
    found = [
        Call("sagemaker.amazonaws.com", "sts:AssumeRole", job.role, f"{job.origin}: SageMaker assumes the job's role")
    ]
    output_key = condition_keys("job", job.request).get("sagemaker:OutputKmsKey")
    for uri, direction, listed in _locations(job.request):
        found += _s3_calls(deployed, job, uri, direction, output_key, listed)
    found += _image_calls(job)
    found += _runtime_calls(deployed, job)
    del env
    return found


def _s3_calls(
    deployed: Deployed, job: Job, uri: str, direction: str, output_key: str | None, listed: bool
) -> list[Call]:
    env = deployed.environment
    bucket, prefix, key = _object(uri)
    arn = f"arn:{PARTITION}:s3:::{bucket}"
    why = f"{job.origin}: {'reads' if direction == 'in' else 'writes'} {uri}"
    via = {"kms:ViaService": f"s3.{env.region}.amazonaws.com", "kms:CallerAccount": env.account}
    calls = []
    if listed:
        calls.append(Call(job.role, "s3:ListBucket", arn, why, context={"s3:prefix": prefix}, network=job.network))
    if direction in ("in", "both"):
        calls.append(Call(job.role, "s3:GetObject", f"{arn}/{key}", why, network=job.network))
        bucket_key = _bucket_key(deployed, bucket)
        if bucket_key:
            calls.append(Call(job.role, "kms:Decrypt", bucket_key, f"{why} (S3 decrypts as the role)", context=via))
    if direction in ("out", "both"):
        context: dict[str, Any] = {"s3:x-amz-server-side-encryption": "aws:kms"}
        if output_key:
            context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = output_key
        calls.append(Call(job.role, "s3:PutObject", f"{arn}/{key}", why, context=context, network=job.network))
        key_arn = output_key or _bucket_key(deployed, bucket)
        if key_arn:
            calls.append(
                Call(job.role, "kms:GenerateDataKey", key_arn, f"{why} (S3 encrypts as the role)", context=via)
            )
    return calls


def _images(request: dict[str, Any]) -> list[str]:
    return sorted({m for m in re.findall(r'"(\d{12}\.dkr\.ecr\.[^"]+)"', json.dumps(request))})


def _image_calls(job: Job) -> list[Call]:
    calls = [Call(job.role, "ecr:GetAuthorizationToken", "*", f"{job.origin}: ECR login for the image")]
    for image in _images(job.request):
        registry, repository = image.split("/", 1)
        account, _, _, region = registry.split(".")[:4]
        name = repository.split("@", 1)[0].rsplit(":", 1)[0]
        arn = f"arn:{PARTITION}:ecr:{region}:{account}:repository/{name}"
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"):
            calls.append(Call(job.role, action, arn, f"{job.origin}: pulls {image}"))
    return calls


def _runtime_calls(deployed: Deployed, job: Job) -> list[Call]:
    env = deployed.environment
    group = LOG_GROUPS[job.kind]
    logs = f"arn:{PARTITION}:logs:{env.region}:{env.account}:log-group:{group}:log-stream:job-7/algo-1"
    why = f"{job.origin}: SageMaker writes the job's logs"
    calls = [Call(job.role, action, logs, why) for action in ("logs:CreateLogStream", "logs:PutLogEvents")]
    if job.subnets:
        why = f"{job.origin}: network interfaces in its subnets"
        calls.append(Call(job.role, "ec2:DescribeSubnets", "*", why))
        for subnet in job.subnets:
            arn = f"arn:{PARTITION}:ec2:{env.region}:{env.account}:subnet/{subnet}"
            calls.append(Call(job.role, "ec2:CreateNetworkInterface", arn, why))
        eni = f"arn:{PARTITION}:ec2:{env.region}:{env.account}:network-interface/eni-0a1b2c3d4e5f67890"
        calls += [
            Call(job.role, a, eni, why) for a in ("ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface")
        ]
    return calls


def monitoring_metrics(resource: Resource) -> str | None:
    """The CloudWatch namespace a monitoring job definition publishes into, when it publishes."""
    text = json.dumps(resource.properties)
    if '"publish_cloudwatch_metrics": "Enabled"' not in text:
        return None
    return {"DataQuality": "aws/sagemaker/Endpoints/data-metrics"}.get(
        resource.type.split("::")[-1][: -len("JobDefinition")], "aws/sagemaker/Endpoints/model-metrics"
    )
