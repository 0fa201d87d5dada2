"""What the Training stack's parts build with: the stack, its config, the spec and the lake buckets it reads."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from infra.config import DatasetConfig, PlatformConfig, TrainingConfig
from pipelines.definition import PipelineSpec
from stacks.training.inputs import TrainingInputs


@dataclass(frozen=True)
class TrainingContext:
    """The parts build into `stack` itself (no construct level of their own), so logical ids stay put."""

    stack: cdk.Stack
    config: PlatformConfig
    training: TrainingConfig
    dataset: DatasetConfig
    inputs: TrainingInputs
    spec: PipelineSpec
    artifacts: s3.IBucket  # imported from the DataLake stack's exports
    curated: s3.IBucket  # imported from the DataLake stack's exports

    @property
    def prefix(self) -> str:
        """This pipeline's prefix in the artifacts bucket."""
        return f"pipelines/{self.spec.name}"

    def arn(self, service: str, resource: str) -> str:
        """An ARN of this stack's partition, region and account, e.g. arn('sagemaker', 'training-job/*')."""
        stack = self.stack
        return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"
