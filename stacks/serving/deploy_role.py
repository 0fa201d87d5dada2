"""The role CloudFormation assumes when the promotion function sets a new version on this stack."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from infra.catalog import monitors
from infra.catalog.monitors import MonitorKind
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    checkov_skip_policies,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.checks.guardrails import SageMakerGuardrailPolicy
from stacks.serving.context import ServingContext
from stacks.serving.monitors import MonitorJobs

# The autoscaling service-linked role SageMaker variants scale through.
AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"


class DeployRole:
    """Creates the CloudFormation service role `DeployRole`: it may change only what the model parameter drives.

    With the previous template, an update changes the model, endpoint config, endpoint, their
    scaling and alarms, and the monitors' job definitions and schedules; nothing else.
    """

    def __init__(self, ctx: ServingContext, *, model_role: iam.Role, jobs: MonitorJobs | None) -> None:
        """`model_role` and the monitoring jobs' roles (`jobs`, if any) are passed to SageMaker."""
        self.ctx = ctx
        stack = ctx.stack
        self.role = iam.Role(
            stack,
            "DeployRole",
            assumed_by=service_principal("cloudformation.amazonaws.com", stack.account),
            description=f"CloudFormation updating {stack.stack_name} to a newly approved model version",
        )
        self.wildcards = [ctx.arn("sagemaker", "model/*"), ctx.arn("sagemaker", "endpoint-config/*")]
        self._endpoint()
        passed = [model_role]
        if jobs is not None and jobs.schedules:
            passed += self._monitors(jobs)
        self._pass(passed)
        self._alarms_and_scaling()
        # An endpoint config with a KMS key needs a grant on it by the caller.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant", "kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey"],
                resources=[ctx.inputs.artifacts_key.key_arn],
            )
        )
        self._guardrail(list(jobs.schedules) if jobs else [])
        self._acknowledge()

    def _endpoint(self) -> None:
        """The model, endpoint config and endpoint; the versions it may deploy; the promoted state."""
        ctx = self.ctx
        self.role.add_to_policy(
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
                resources=[*self.wildcards, ctx.arn("sagemaker", f"endpoint/{ctx.endpoint_name}")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[ctx.packages])
        )
        # UpdateStack resolves the SSM-typed parameters with the CALLER's credentials (the promotion role and
        # the bootstrap's deploy role carry that grant, decision 22); this one covers operations run as this role.
        self.role.add_to_policy(iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[ctx.state.arn]))

    def _monitors(self, jobs: MonitorJobs) -> list[iam.Role]:
        """The monitors' job definitions are replaced with each version's baselines; schedules updated.

        The kinds the shared monitor role runs are granted together whenever that role exists; a kind
        with a role of its own only when configured. Returns the roles the jobs run as.
        """
        shared = jobs.roles.get(monitors.SHARED_ROLE)
        kinds = [
            k for k in monitors.KINDS if k in jobs.schedules or (shared is not None and k.role == monitors.SHARED_ROLE)
        ]
        resources = [
            *(self.ctx.arn("sagemaker", f"{kind.slug}-job-definition/*") for kind in kinds),
            self.ctx.arn("sagemaker", f"monitoring-schedule/{self.ctx.endpoint_name}-*"),
        ]
        self.wildcards += resources
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    f"sagemaker:{verb}{kind.type}JobDefinition"
                    for verb in ("Create", "Describe", "Delete")
                    for kind in kinds
                ]
                + [f"sagemaker:{verb}MonitoringSchedule" for verb in ("Create", "Describe", "Update", "Delete")]
                + ["sagemaker:AddTags", "sagemaker:ListTags", "sagemaker:DeleteTags"],
                resources=resources,
            )
        )
        own = [role for kind, role in jobs.roles.items() if kind != monitors.SHARED_ROLE]
        return [*own, *([shared] if shared is not None else [])]

    def _pass(self, roles: list[iam.Role]) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[role.role_arn for role in roles],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )

    @property
    def alarms(self) -> str:
        """This endpoint's alarms: their names start with the endpoint's."""
        return self.ctx.arn("cloudwatch", f"alarm:{self.ctx.endpoint_name}-*")

    @property
    def service_linked_role(self) -> str:
        stack = self.ctx.stack
        return f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/{AUTOSCALING_SERVICE}/*"

    def _alarms_and_scaling(self) -> None:
        """The rollback alarms, the variants' scalable targets and policies, and autoscaling's linked role."""
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DeleteAlarms",
                    "cloudwatch:TagResource",
                    # The alarm handler reads an alarm's tags back (its registry schema's permissions).
                    "cloudwatch:ListTagsForResource",
                ],
                resources=[self.alarms],
            )
        )
        # Application Auto Scaling and alarm descriptions take no resource ARN.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:DeregisterScalableTarget",
                    "application-autoscaling:DescribeScalableTargets",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DeleteScalingPolicy",
                    "application-autoscaling:DescribeScalingPolicies",
                    # The scalable target's handler reads its scheduled actions and tags (registry schema).
                    "application-autoscaling:DescribeScheduledActions",
                    "application-autoscaling:ListTagsForResource",
                    "cloudwatch:DescribeAlarms",
                ],
                resources=["*"],
            )
        )
        checkov_skip_policies(
            self.role,
            "CloudFormation registers and deregisters the variants' scalable targets and puts and deletes "
            "their scaling policies with this role; Application Auto Scaling names a target by an id it "
            "generates when it registers it, so the role cannot name the target it is about to create.",
            "CKV_AWS_111",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[self.service_linked_role],
                conditions={"StringEquals": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
            )
        )

    def _guardrail(self, kinds: list[MonitorKind]) -> None:
        """The deny guardrail of every SageMaker role, with the config's stated isolation exceptions."""
        exempt = [kind.create_action for kind in kinds if not kind.isolated]
        if exempt:
            # The same guardrail, but for the stated exception: a job definition without network
            # isolation (config: monitoring.<kind>.isolation_exception).
            SageMakerGuardrailPolicy(self.ctx.stack, "DeployGuardrail", isolation_exempt=exempt).attach_to(self.role)
        elif not self.ctx.serverless:
            # No model outside the VPC or isolation.
            self.ctx.inputs.guardrail.attach_to(self.role)

    def _acknowledge(self) -> None:
        acknowledge(self.role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            self.role,
            "Models, endpoint configs and monitoring job definitions get generated names on every promotion, "
            "so they are matched by type in this account and region (the endpoint by its name, the "
            "monitoring schedules by its prefix); versions of this platform's "
            "model group; this endpoint's alarms; the SSM parameters of the promoted state; Application "
            "Auto Scaling and DescribeAlarms take no resource ARN; the autoscaling service-linked role's path.",
            resources=[
                "*",
                *self.wildcards,
                self.ctx.packages,
                self.alarms,
                self.ctx.state.arn,
                self.service_linked_role,
            ],
        )
