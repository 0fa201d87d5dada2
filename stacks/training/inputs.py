"""What the Training stack takes from the Security, Network and DataLake stacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from infra.checks.guardrails import SageMakerGuardrailPolicy
from infra.constructs.placement import Placement


@dataclass(frozen=True)
class TrainingInputs:
    """The platform keys, where the jobs run, the SageMaker guardrail and the lake personas' policies."""

    artifacts_key: kms.IKey  # pipeline outputs and models, the MLflow and Studio storage
    data_key: kms.IKey  # the curated zone the jobs read and the feature store writes
    logs_key: kms.IKey  # the dead-letter queue of approvals forwarded to other accounts
    placement: Placement  # the isolated subnets and workload security group of every job
    guardrail: SageMakerGuardrailPolicy  # the deny policy every SageMaker role carries
    # The lake personas' managed policies (LakeAccess.policies), attached to their Studio profiles' roles.
    persona_policies: Mapping[str, iam.IManagedPolicy] = field(default_factory=dict)
