"""The preventive twin of the ML rule pack: an IAM policy that denies insecure SageMaker requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.catalog import instances, monitors

_JOB_DEFINITIONS = tuple(kind.create_action for kind in monitors.KINDS)
_JOBS = (
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateProcessingJob",
    *_JOB_DEFINITIONS,
)

# Which request carries which condition key, per the SageMaker service authorization reference.
# CreateTransformJob has no VPC or isolation keys: isolation is enforced on the CreateModel it
# runs. CreatePipeline has no SageMaker keys at all: the jobs a pipeline starts are requests of
# its execution role, which carries this policy.
VPC_ACTIONS = (*_JOBS, "sagemaker:CreateModel")
ISOLATION_ACTIONS = (*_JOBS, "sagemaker:CreateModel")
INTER_CONTAINER_ACTIONS = _JOBS
OUTPUT_KMS_ACTIONS = (*_JOBS, "sagemaker:CreateTransformJob")
VOLUME_KMS_ACTIONS = (*_JOBS, "sagemaker:CreateTransformJob", "sagemaker:CreateEndpointConfig")
# A monitoring schedule may reference a job definition instead of inlining one; its network and
# KMS keys are then absent, so only an explicit `false` is denied there (the definition itself
# is covered above).
SCHEDULE_ACTIONS = ("sagemaker:CreateMonitoringSchedule", "sagemaker:UpdateMonitoringSchedule")


def guardrail_statements(
    nvme_patterns: Sequence[str], isolation_exempt: Sequence[str] = ()
) -> list[iam.PolicyStatement]:
    """Deny statements; each stands alone because conditions inside one statement are ANDed.

    `isolation_exempt` leaves actions out of the network-isolation deny only (every other deny
    still applies to them): a stated exception such as the explainability monitor's.
    """

    def deny(sid: str, actions: Sequence[str], conditions: dict[str, Any]) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            sid=sid,
            effect=iam.Effect.DENY,
            actions=sorted(actions),
            resources=["*"],
            conditions=conditions,
        )

    return [
        deny("DenyWithoutVpcSubnets", VPC_ACTIONS, {"Null": {"sagemaker:VpcSubnets": "true"}}),
        deny(
            "DenyWithoutVpcSecurityGroups",
            VPC_ACTIONS,
            {"Null": {"sagemaker:VpcSecurityGroupIds": "true"}},
        ),
        # BoolIfExists: an omitted flag is as bad as `false`.
        deny(
            "DenyWithoutNetworkIsolation",
            [a for a in ISOLATION_ACTIONS if a not in isolation_exempt],
            {"BoolIfExists": {"sagemaker:NetworkIsolation": "false"}},
        ),
        deny(
            "DenyWithoutInterContainerEncryption",
            INTER_CONTAINER_ACTIONS,
            {"BoolIfExists": {"sagemaker:InterContainerTrafficEncryption": "false"}},
        ),
        # KMS keys by their current names (`...KmsKeyArn`) and the deprecated ones the reference no
        # longer lists for these actions: keys within one Null are ANDed, so the deny holds
        # whichever of the two a request carries.
        deny(
            "DenyWithoutOutputKmsKey",
            OUTPUT_KMS_ACTIONS,
            {"Null": {"sagemaker:OutputKmsKeyArn": "true", "sagemaker:OutputKmsKey": "true"}},
        ),
        # SageMaker refuses a volume key on instance types with local NVMe storage (encrypted in
        # hardware), and an endpoint config's one key covers all its variants: a request with any
        # such instance type is exempt (ForAllValues: denied only when none has it), as MLP-SM3 judges.
        deny(
            "DenyWithoutVolumeKmsKey",
            VOLUME_KMS_ACTIONS,
            {
                "Null": {
                    "sagemaker:VolumeKmsKeyArn": "true",
                    "sagemaker:VolumeKmsKey": "true",
                    "sagemaker:InstanceTypes": "false",
                },
                "ForAllValues:StringNotLike": {"sagemaker:InstanceTypes": list(nvme_patterns)},
            },
        ),
        deny(
            "DenyScheduleWithoutIsolation",
            SCHEDULE_ACTIONS,
            {"Bool": {"sagemaker:NetworkIsolation": "false"}},
        ),
        deny(
            "DenyScheduleWithoutInterContainerEncryption",
            SCHEDULE_ACTIONS,
            {"Bool": {"sagemaker:InterContainerTrafficEncryption": "false"}},
        ),
    ]


class SageMakerGuardrailPolicy(Construct):
    """A managed policy, attached to every SageMaker execution role, denying insecure requests."""

    def __init__(self, scope: Construct, construct_id: str, *, isolation_exempt: Sequence[str] = ()) -> None:
        super().__init__(scope, construct_id)
        exempt = f" (network isolation not required for {', '.join(isolation_exempt)})" if isolation_exempt else ""
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=(
                "Denies SageMaker jobs, models and endpoint configs without VPC, network isolation, "
                f"inter-container encryption or KMS keys{exempt}."
            ),
            statements=guardrail_statements(instances.local_nvme_patterns(), isolation_exempt),
        )

    def attach_to(self, role: iam.IRole) -> None:
        role.add_managed_policy(self.policy)
