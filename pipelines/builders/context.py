"""What every step of one build shares: the spec, an offline pipeline session, run locations and the job network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict, cast

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from sagemaker.network import NetworkConfig
from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.sklearn.processing import SKLearnProcessor
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.functions import Join
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import Properties
from sagemaker.workflow.steps import ProcessingStep

from pipelines.definition import (
    ARTIFACTS_BUCKET,
    BASELINE_DIR,
    IMAGE_REGION,
    KMS_KEY,
    LIBRARY_CODE,
    LIBRARY_DIR,
    PROCESSING_ROLE,
    SECURITY_GROUP,
    SKLEARN_VERSION,
    PipelineSpec,
    subnet_placeholder,
)


class ProcessingJob(TypedDict):
    """The processor arguments every processing job of the pipeline shares."""

    role: str
    instance_type: str
    instance_count: int
    volume_kms_key: str | None
    output_kms_key: str
    network_config: NetworkConfig
    max_runtime_in_seconds: int
    base_job_name: str
    sagemaker_session: PipelineSession


@dataclass(frozen=True)
class Build:
    """One build of the definition: `spec`, the region images resolve in, the session and the jobs' network."""

    spec: PipelineSpec
    region: str
    session: PipelineSession
    network: NetworkConfig

    @classmethod
    def start(cls, spec: PipelineSpec) -> Build:
        region = spec.region or IMAGE_REGION
        return cls(spec=spec, region=region, session=_session(region), network=_network(spec))

    @property
    def base(self) -> str:
        """This pipeline's prefix in the artifacts bucket."""
        return f"s3://{ARTIFACTS_BUCKET}/pipelines/{self.spec.name}"

    @property
    def processing_volume_key(self) -> str | None:
        return KMS_KEY if self.spec.processing_volume_kms else None

    def run_path(self, *parts: str) -> Join:
        # Every execution writes under its own id: runs never read each other's outputs.
        return Join(on="/", values=[self.base, "runs", ExecutionVariables.PIPELINE_EXECUTION_ID, *parts])

    def processing(self, job: str) -> ProcessingJob:
        """What every processing job of the pipeline shares: role, instance, keys, network, limits."""
        return {
            "role": PROCESSING_ROLE,
            "instance_type": self.spec.processing_instance_type,
            "instance_count": 1,
            "volume_kms_key": self.processing_volume_key,
            "output_kms_key": KMS_KEY,
            "network_config": self.network,
            "max_runtime_in_seconds": 3600,
            "base_job_name": f"{self.spec.name}-{job}",
            "sagemaker_session": self.session,
        }

    def processor(self, job: str) -> SKLearnProcessor:
        return SKLearnProcessor(framework_version=SKLEARN_VERSION, **self.processing(job))


def library_input(build: Build) -> list[ProcessingInput]:
    """The monitoring library zip for a step that writes the platform engine's baselines (none otherwise)."""
    if not build.spec.platform_baselines:
        return []
    return [ProcessingInput(source=LIBRARY_CODE, destination=LIBRARY_DIR, input_name="library")]


def monitoring_output(build: Build) -> list[ProcessingOutput]:
    """The platform engine's baselines a step writes, as its 'monitoring' output (none with Model Monitor)."""
    if not build.spec.platform_baselines:
        return []
    return [ProcessingOutput(output_name="monitoring", source=BASELINE_DIR, destination=build.run_path("monitoring"))]


def output_uri(step: ProcessingStep, name: str) -> Properties:
    """The S3 URI a processing step's output `name` is written to (a pipeline property, resolved at run time)."""
    return cast(Properties, step.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri)


def _network(spec: PipelineSpec) -> NetworkConfig:
    return NetworkConfig(
        enable_network_isolation=True,
        security_group_ids=[SECURITY_GROUP],
        subnets=[subnet_placeholder(i) for i in range(spec.subnets)],
        encrypt_inter_container_traffic=True,
    )


def _session(region: str) -> PipelineSession:
    boto_session = boto3.Session(region_name=region, aws_access_key_id=None, aws_secret_access_key=None)
    session = PipelineSession(
        boto_session=boto_session,
        sagemaker_client=boto_session.client("sagemaker", config=Config(signature_version=UNSIGNED)),
    )
    # Preset, so default_bucket() never asks S3 or STS for one (a private attribute the SDK declares None).
    session._default_bucket = ARTIFACTS_BUCKET  # type: ignore[assignment]
    return session
