"""What the Serving stack's parts build with: the stack, its config and the resources they share."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from infra.checks.guardrails import SageMakerGuardrailPolicy
from infra.config import PlatformConfig, ServingConfig
from infra.constructs.placement import Placement
from stacks.serving.pipeline_outputs import PipelineOutputs
from stacks.serving.promoted import PromotedState


@dataclass(frozen=True)
class ServingInputs:
    """What the Serving stack takes from the Security and Network stacks."""

    artifacts_key: kms.IKey  # models, captured data, asynchronous results, monitoring reports
    logs_key: kms.IKey  # the asynchronous notification topics and the promotion function
    alerts_topic: sns.ITopic  # rollback alarms and failed promotions
    placement: Placement  # where the model, the monitoring jobs and the promotion function run
    guardrail: SageMakerGuardrailPolicy  # the deny policy every SageMaker role carries


@dataclass(frozen=True)
class ServingContext:
    """The parts build into `stack` itself (no construct level of their own), so logical ids stay put."""

    stack: cdk.Stack  # the Serving stack: the scope of every part
    config: PlatformConfig  # platform identity (prefix, account, region): what naming uses
    serving: ServingConfig  # the config's serving section
    inputs: ServingInputs
    endpoint_name: str  # the endpoint's fixed name (naming.endpoint)
    packages: str  # ARN pattern of the model group's versions in the registry the endpoint serves from
    artifacts: s3.IBucket  # this environment's artifacts bucket (imported from the DataLake stack)
    outputs: PipelineOutputs
    state: PromotedState
    subnet_ids: list[str]

    @property
    def serverless(self) -> bool:
        return self.serving.mode == "serverless"

    def arn(self, service: str, resource: str) -> str:
        """An ARN of this stack's partition, region and account, e.g. arn('sagemaker', 'model/*')."""
        stack = self.stack
        return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"
