"""The promoted version as stack parameters resolved from SSM, and the conditions on what is set."""

from __future__ import annotations

from typing import Any, cast

import aws_cdk as cdk

from infra.catalog import monitors, naming
from infra.config import PlatformConfig
from infra.constructs.serving_state import MODEL_PACKAGE, UNSET


def _is_set(parameter: cdk.CfnParameter) -> cdk.ICfnConditionExpression:
    return cdk.Fn.condition_not(cdk.Fn.condition_equals(parameter.value_as_string, UNSET))


class PromotedState:
    """Creates the `ModelPackageArn` parameter and the `HasModel` condition, and further promoted values on request.

    Each value is a stack parameter of type `AWS::SSM::Parameter::Value<String>` resolved on every
    deployment from the SSM parameter infra/constructs/serving_state.py creates (DataLake stack).
    """

    def __init__(self, stack: cdk.Stack, *, config: PlatformConfig, group: str) -> None:
        """`group` is the model package group the endpoint serves versions of."""
        self.stack = stack
        self.config = config
        # The SSM parameters of this environment's promoted state (created by the DataLake stack).
        prefix = naming.serving_state_prefix(config)
        self.arn = f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{prefix}*"
        self.package = self.parameter(
            MODEL_PACKAGE,
            f"The approved version of {group} the endpoint serves ({UNSET} until the first "
            "approval); written by the promotion function.",
        )
        self.has_model = cdk.CfnCondition(stack, "HasModel", expression=_is_set(self.package))
        self.baselines: dict[str, cdk.CfnParameter] = {}

    def parameter(self, name: str, description: str) -> cdk.CfnParameter:
        """A promoted value: a stack parameter resolved from its SSM parameter on every deployment."""
        return cdk.CfnParameter(
            self.stack,
            name,
            type="AWS::SSM::Parameter::Value<String>",
            default=naming.serving_state_parameter(self.config, name),
            description=description,
        )

    def baseline(self, baseline: monitors.Baseline) -> cdk.CfnParameter:
        """A monitor's baseline of the promoted version, which the promotion function sets with the package."""
        parameter = self.parameter(
            baseline.parameter,
            f"S3 URI of the promoted version's {baseline.path.split('.', 1)[1]} "
            f"({UNSET} without one); written by the promotion function",
        )
        self.baselines[baseline.parameter] = parameter
        return parameter

    def when_served(self, construct_id: str, resource_type: str, properties: dict[str, Any]) -> cdk.CfnResource:
        """A resource that exists only while a version is promoted (the condition `HasModel`)."""
        resource = cdk.CfnResource(self.stack, construct_id, type=resource_type, properties=properties)
        resource.cfn_options.condition = self.has_model
        return resource

    def all_set(self, construct_id: str, parameters: list[cdk.CfnParameter]) -> cdk.CfnCondition:
        """A version is served and each of `parameters` is set."""
        # CfnCondition is a condition expression at run time; its jsii type does not declare the protocol.
        served = cast(cdk.ICfnConditionExpression, self.has_model)
        return cdk.CfnCondition(
            self.stack,
            construct_id,
            expression=cdk.Fn.condition_and(served, *(_is_set(p) for p in parameters)),
        )
