"""The promotion path: approved versions reach the endpoint through the promotion function; failures are announced."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam

from infra.catalog import monitors, naming
from infra.checks.compliance import acknowledge_wildcards
from infra.constructs.functions import FunctionProps, PythonFunction
from infra.constructs.serving_state import MODEL_PACKAGE
from stacks.serving.admission import admit_source_events
from stacks.serving.context import ServingContext
from stacks.serving.monitors import ExplainabilityJob

# CloudFormation's events about this stack.
_STACK_STATUS = {"source": ["aws.cloudformation"], "detail-type": ["CloudFormation Stack Status Change"]}


class Promotion:
    """Creates the promotion function with its lock table, the rules that call it (approvals, rolled-back
    updates) and, serving from another account, the bus policy that admits that account's approvals.
    """

    def __init__(
        self, ctx: ServingContext, *, group: str, deploy_role: iam.Role, explainability: ExplainabilityJob | None
    ) -> None:
        """`group`: the model package group; `deploy_role`: the CloudFormation role updates run as;
        `explainability`: the explainability monitor, whose per-version config the function writes.
        """
        self.ctx = ctx
        stack = ctx.stack
        self.lock = self._lock()
        self.function = PythonFunction(
            stack,
            "Promotion",
            config=ctx.config,
            props=FunctionProps(
                source="promotion",
                description=f"sets the approved model version on {stack.stack_name}",
                environment=self._environment(group, deploy_role, explainability),
                subnet_ids=ctx.subnet_ids,
                security_group=ctx.inputs.placement.security_group,
                key=ctx.inputs.logs_key,
                alerts_topic_arn=ctx.inputs.alerts_topic.topic_arn,
                concurrency="It updates the stack only while it holds the PromotionLock item (a DynamoDB lease), "
                "so one promotion at a time still happens.",
                timeout_seconds=60,
                # It reads the explainability config templates among the source account's artifacts.
                role_name=ctx.outputs.role_name("promotion") if explainability else None,
            ),
        )
        self._grant(deploy_role)
        pattern: dict[str, Any] = naming.model_package_changes(group, "Approved", "Rejected")
        self.bus_policy = None
        if ctx.outputs.source is not None:
            # The source account forwards its registry's state changes to this account's default bus;
            # only events from that account, of that kind, are let in, and only those reach promotion.
            pattern["account"] = [ctx.outputs.source.account]
            self.bus_policy = admit_source_events(stack, ctx.outputs.source, pattern)
        self.approval_rule = self.function.invoked_by_rule(
            stack,
            "ModelApprovals",
            f"Approvals and rejections in {group} reach the promotion function",
            event_pattern=pattern,
        )
        # After a failed promotion rolls back, the function writes back what the stack serves, so the
        # next deployment (a pipeline run) does not bring the failed version again.
        self.restore_rule = self.function.invoked_by_rule(
            stack,
            "RolledBackPromotions",
            f"{stack.stack_name} updates that rolled back: the promoted state is restored to what it serves",
            event_pattern={
                **_STACK_STATUS,
                "resources": [stack.stack_id],
                "detail": {"status-details": {"status": ["UPDATE_ROLLBACK_COMPLETE"]}},
            },
        )

    def _lock(self) -> cdk.CfnResource:
        """Creates the table `PromotionLock`: one promotion or restore at a time (decision 26), without
        reserved concurrency; the lock item lives there only while held.
        """
        lock = cdk.CfnResource(
            self.ctx.stack,
            "PromotionLock",
            type="AWS::DynamoDB::Table",
            properties={
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "SSESpecification": {
                    "SSEEnabled": True,
                    "SSEType": "KMS",
                    "KMSMasterKeyId": self.ctx.inputs.logs_key.key_arn,
                },
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        )
        # It holds no data: a lock outlives no stack.
        lock.apply_removal_policy(cdk.RemovalPolicy.DESTROY)
        return lock

    def _environment(
        self, group: str, deploy_role: iam.Role, explainability: ExplainabilityJob | None
    ) -> dict[str, str]:
        """The function's settings (lambdas/promotion/handler.py, ENVIRONMENT)."""
        ctx, stack = self.ctx, self.ctx.stack
        baselines = {name: monitors.BASELINE_PARAMETERS[name] for name in ctx.state.baselines}
        return {
            "STACK_NAME": stack.stack_name,
            "PARAMETER_NAME": MODEL_PACKAGE,
            "MODEL_PACKAGE_GROUP": group,
            "MODEL_PACKAGE_ACCOUNT": naming.registry_account(ctx.config, stack.account),
            "STATE_PREFIX": naming.serving_state_prefix(ctx.config),
            "DEPLOY_ROLE_ARN": deploy_role.role_arn,
            "ALERT_TOPIC_ARN": ctx.inputs.alerts_topic.topic_arn,
            "LOCK_TABLE": self.lock.ref,
            # The monitors' baselines it sets with the package: stack parameter -> DescribeModelPackage path.
            "BASELINE_PARAMETERS": json.dumps(baselines, sort_keys=True),
            **({"EXPLAINABILITY": stack.to_json_string(explainability.settings)} if explainability else {}),
        }

    def _grant(self, deploy_role: iam.Role) -> None:
        """Take the lock, update this stack through the deploy role, read the versions, write the promoted state."""
        ctx, role = self.ctx, self.function.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem"], resources=[self.lock.get_att("Arn").to_string()]
            )
        )
        stack_arn = ctx.arn("cloudformation", f"stack/{ctx.stack.stack_name}/*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks", "cloudformation:UpdateStack"], resources=[stack_arn]
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[ctx.packages]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[deploy_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}},
            )
        )
        # The promoted state it writes before each update (and restores after a rollback).
        role.add_to_policy(
            iam.PolicyStatement(actions=["ssm:GetParameter", "ssm:PutParameter"], resources=[ctx.state.arn])
        )
        # UpdateStack resolves the stack's SSM-typed parameters (the promoted state, CDK's BootstrapVersion)
        # with the caller's credentials, as the CDK bootstrap's deploy role is granted for CreateChangeSet.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameters"], resources=[ctx.state.arn, _bootstrap_version_arn(ctx.stack)]
            )
        )
        acknowledge_wildcards(
            role,
            "This stack by name (its id suffix changes if it is recreated); versions of this platform's model "
            "group; the SSM parameters of this environment's promoted state, one per promoted value.",
            resources=[stack_arn, ctx.packages, ctx.state.arn],
        )


def _bootstrap_version_arn(stack: cdk.Stack) -> str:
    """The SSM parameter holding the CDK bootstrap version the stack's `BootstrapVersion` parameter reads."""
    qualifier = cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER
    if isinstance(stack.synthesizer, cdk.DefaultStackSynthesizer) and stack.synthesizer.bootstrap_qualifier:
        qualifier = stack.synthesizer.bootstrap_qualifier
    version = cdk.DefaultStackSynthesizer.DEFAULT_BOOTSTRAP_STACK_VERSION_SSM_PARAMETER.replace(
        "${Qualifier}", qualifier
    )
    return f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{version}"


def failed_promotion_alerts(ctx: ServingContext, promotion: PythonFunction) -> events.CfnRule:
    """Creates the rule `FailedPromotions`: a failed update rolls back, the previous version keeps serving,
    and the alert topic hears of it.
    """
    stack = ctx.stack
    rule = events.CfnRule(
        stack,
        "FailedPromotions",
        description=f"{stack.stack_name} updates that failed or rolled back",
        event_pattern={
            **_STACK_STATUS,
            "resources": [stack.stack_id],
            "detail": {
                "status-details": {"status": ["UPDATE_ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED"]}
            },
        },
        state="ENABLED",
        targets=[
            promotion.dead_letters.target(
                "Alerts",
                ctx.inputs.alerts_topic.topic_arn,
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
    promotion.dead_letters.receive_from(rule, "RollbackAlertDeadLetters")
    return rule
