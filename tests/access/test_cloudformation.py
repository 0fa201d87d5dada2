"""CloudFormation's calls are allowed: `cdk deploy` of every stack by the CDK bootstrap's roles, and the
promotion's UpdateStack by the promotion function (the caller) and the Serving stack's service role.
"""

from __future__ import annotations

import json

import pytest

from tests.access.calls import Call, decide, failures
from tests.access.cloudformation import cdk_deploy_calls, handler_calls, ssm_parameter_calls, stack_arn
from tests.access.environments import NAMES, Deployed
from tests.access.lambda_calls import promotion_function
from tests.access.resolver import Resource

ENVIRONMENTS = list(NAMES)
# Permissions a resource handler declares on another service's resources that the template does
# not name, so no request can be derived; each with why it does not apply here.
NOT_APPLICABLE = {
    "AWS::ApplicationAutoScaling::ScalableTarget": "Lambda provisioned concurrency and the alarms of "
    "scheduled scaling: this target is a SageMaker variant, scaled by target tracking",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "cloudwatch:GetMetricData validates custom metric "
    "specifications; these policies use predefined metrics",
}


def _serving(deployed: Deployed) -> str:
    (name,) = [s for s in deployed.environment.stacks if s.endswith("-Serving")]
    return name


def _check(deployed: Deployed, calls: list[Call], simulator) -> list[str]:
    world = deployed.world
    return failures(decide(calls, world, deployed.worlds, simulator), world)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_cdk_deploy_by_the_bootstrap_deploy_role_can_create_every_stack(env_name, environments, simulator):
    """The open question of issue 17: the default bootstrap's deploy role reads only its version
    parameter, and CreateChangeSet resolves SSM-typed parameters with the caller's credentials."""
    deployed = environments[env_name]
    calls = [call for stack in deployed.environment.stacks for call in cdk_deploy_calls(deployed, stack)]
    problems = _check(deployed, calls, simulator)
    assert problems == [], "\n".join(problems)


def _promoted_parameters(deployed: Deployed) -> set[str]:
    template = deployed.environment.stacks[_serving(deployed)].template
    return {
        name
        for name, p in template["Parameters"].items()
        if p["Type"].startswith("AWS::SSM::Parameter::") and name != "BootstrapVersion"
    }


def driven_resources(deployed: Deployed) -> list[Resource]:
    """The Serving stack's resources a promotion creates, updates or deletes: those whose condition or
    properties depend on a promoted parameter."""
    stack = _serving(deployed)
    template = deployed.environment.stacks[stack].template
    parameters = _promoted_parameters(deployed)

    def depends(value) -> bool:
        text = json.dumps(value)
        return any(f'{{"Ref": "{p}"}}' in text for p in parameters)

    conditions: set[str] = set()
    changed = True
    while changed:  # conditions that depend on a parameter or on such a condition
        changed = False
        for name, expression in template.get("Conditions", {}).items():
            text = json.dumps(expression)
            if name not in conditions and (
                depends(expression) or any(f'"Condition": "{c}"' in text for c in conditions)
            ):
                conditions.add(name)
                changed = True
    return [
        r
        for r in deployed.environment.resources()
        if r.stack == stack and (r.raw.get("Condition") in conditions or depends(r.raw.get("Properties", {})))
    ]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_promotion_function_may_update_the_serving_stack(env_name, environments, simulator):
    """The caller's side of a promotion, derived from the template (the recorded calls check it too)."""
    deployed = environments[env_name]
    stack = _serving(deployed)
    function = promotion_function(deployed)
    role = function.properties["Role"]
    service_role = function.properties["Environment"]["Variables"]["DEPLOY_ROLE_ARN"]
    why = "promotion: UpdateStack with the previous template"
    calls = [
        Call(role, "cloudformation:UpdateStack", stack_arn(deployed, stack), why),
        Call(
            role,
            "iam:PassRole",
            service_role,
            f"{why}: passes the service role",
            context={"iam:PassedToService": "cloudformation.amazonaws.com"},
        ),
        *ssm_parameter_calls(deployed, stack, role, why),
    ]
    problems = _check(deployed, calls, simulator)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_service_role_may_make_every_change_a_promotion_makes(env_name, environments, simulator):
    deployed = environments[env_name]
    function = promotion_function(deployed)
    service_role = function.properties["Environment"]["Variables"]["DEPLOY_ROLE_ARN"]
    resources = driven_resources(deployed)
    assert {r.type for r in resources} >= {"AWS::SageMaker::Model", "AWS::SageMaker::Endpoint"}
    calls, unplaced = [], []
    for resource in resources:
        found, skipped = handler_calls(resource, ("create", "update", "delete"), service_role, "promotion update")
        calls += found
        unplaced += [s for s in skipped if s.split(" ", 1)[0] not in NOT_APPLICABLE]
    assert unplaced == [], "handler permissions the harness cannot place on a resource"
    problems = _check(deployed, calls, simulator)
    assert problems == [], "\n".join(problems)


def test_the_promotion_defect_reintroduced_fails_naming_principal_action_resource_and_policy(environments, simulator):
    """Issue 17's first finding, put back: the promotion role without ssm:GetParameters. The promotion
    contract must fail, and its message must say who was refused what, on which parameter, and which
    policies were consulted (so a reviewer knows what to change)."""
    import copy

    deployed = environments["dev"]
    function = promotion_function(deployed)
    principal = deployed.world.principal(function.properties["Role"])
    originals = [policy.document for policy in principal.policies]
    for policy in principal.policies:
        document = copy.deepcopy(policy.document)
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != "ssm:GetParameters"] or ["ssm:GetParameter"]
        policy.document = document
    try:
        with pytest.raises(AssertionError) as failed:
            test_the_promotion_function_may_update_the_serving_stack("dev", environments, simulator)
    finally:
        for policy, original in zip(principal.policies, originals, strict=True):
            policy.document = original
    message = str(failed.value)
    parameter = f"arn:aws:ssm:{deployed.environment.region}:{deployed.environment.account}:parameter/mlp-dev/serving/"
    assert principal.name in message and "ssm:GetParameters on " + parameter in message
    assert "ImplicitlyDenied: no identity policy allows it (attached: " in message
    assert all(policy.name in message for policy in principal.policies), message
