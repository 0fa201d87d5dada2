"""CloudFormation's calls: `cdk deploy` by the bootstrap's roles, and the promotion's update by its service role.

What a stack operation needs is derived, not listed: the caller creates and executes the change
set, passes the service role and resolves the stack's SSM-typed parameters; the service role
needs, for each resource it creates, updates or deletes, the permissions CloudFormation's
resource handler declares (the registry schemas cfn-lint bundles: `handlers.<op>.permissions`),
each on the resource it acts on: the resource itself, the roles it passes, the keys it names.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

from tests.access import bootstrap
from tests.access.calls import Call
from tests.access.environments import Deployed
from tests.access.resolver import ARN_FORMAT, PARTITION, Resource
from tests.access.sagemaker_context import condition_keys

# cfn-lint's bundled registry schemas, found without importing cfn-lint (which costs about 1.5 s).
SCHEMAS = Path(str(importlib.util.find_spec("cfnlint").origin)).parent / "data" / "schemas"


def stack_arn(deployed: Deployed, stack: str) -> str:
    env = deployed.environment
    return f"arn:{PARTITION}:cloudformation:{env.region}:{env.account}:stack/{stack}/*"


def ssm_parameter_calls(deployed: Deployed, stack: str, caller: str, why: str) -> list[Call]:
    """The stack's SSM-typed parameters, which CloudFormation resolves with the caller's credentials."""
    env = deployed.environment
    found = []
    for key, parameter in env.stacks[stack].template.get("Parameters", {}).items():
        if parameter["Type"].startswith("AWS::SSM::Parameter::"):
            name = parameter["Default"]
            arn = f"arn:{PARTITION}:ssm:{env.region}:{env.account}:parameter{name}"
            found.append(Call(caller, "ssm:GetParameters", arn, f"{why}: resolves the parameter {key}"))
    return found


def cdk_deploy_calls(deployed: Deployed, stack: str) -> list[Call]:
    """`cdk deploy` of one stack: the CLI as the bootstrap's deploy role, passing its execution role."""
    env = deployed.environment
    deploy = bootstrap.deploy_role_name(env.account, env.region)
    execution = f"arn:{PARTITION}:iam::{env.account}:role/{bootstrap.execution_role_name(env.account, env.region)}"
    why = f"cdk deploy {stack}"
    arn = stack_arn(deployed, stack)
    calls = [
        Call(deploy, f"cloudformation:{action}", arn, why)
        for action in ("DescribeStacks", "CreateChangeSet", "DescribeChangeSet", "ExecuteChangeSet", "DeleteChangeSet")
    ]
    calls.append(
        Call(
            deploy,
            "iam:PassRole",
            execution,
            f"{why}: passes the CloudFormation execution role",
            context={"iam:PassedToService": "cloudformation.amazonaws.com"},
        )
    )
    return calls + ssm_parameter_calls(deployed, stack, deploy, why)


# --- resource handlers ---------------------------------------------------------------------------


@cache
def handler_permissions(resource_type: str) -> dict[str, list[str]]:
    """`handlers.<operation>.permissions` of a resource type's registry schema ({} for a type without one)."""
    index = json.loads((SCHEMAS / "providers" / "us-east-1.json").read_text())
    if resource_type not in index:
        return {}
    schema = json.loads((SCHEMAS / "resources" / f"{index[resource_type]}.json").read_text())
    return {operation: list(h.get("permissions", [])) for operation, h in schema.get("handlers", {}).items()}


ROLE_PROPERTIES = ("ExecutionRoleArn", "RoleArn", "RoleARN")
# Permissions a handler uses only for a property the resource sets: tag writes for Tags, scheduled
# actions for ScheduledActions (tag and schedule reads are part of every read, so always needed).
GATED = {
    "TagResource": "Tags",
    "UntagResource": "Tags",
    "AddTags": "Tags",
    "DeleteTags": "Tags",
    "PutScheduledAction": "ScheduledActions",
    "DeleteScheduledAction": "ScheduledActions",
}
SERVICE_OF_PASSED_ROLE = {
    "sagemaker": "sagemaker.amazonaws.com",
    "application-autoscaling": "application-autoscaling.amazonaws.com",
}


def _values(properties: Any, keys: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    if isinstance(properties, dict):
        for key, value in properties.items():
            if key in keys and isinstance(value, str):
                found.append(value)
            else:
                found += _values(value, keys)
    elif isinstance(properties, list):
        for item in properties:
            found += _values(item, keys)
    return found


def handler_calls(
    resource: Resource, operations: tuple[str, ...], caller: str, why: str
) -> tuple[list[Call], list[str]]:
    """The calls CloudFormation's handler makes for `operations` on `resource`, as `caller`, and what it
    cannot place (a permission on another service's resource the template does not name)."""
    service = resource.type.split("::")[1].lower().replace("applicationautoscaling", "application-autoscaling")
    own = resource.arn if resource.type in ARN_FORMAT else "*"
    context = condition_keys(resource.type, resource.properties)
    calls: dict[tuple[str, str], Call] = {}
    unplaced: list[str] = []
    permissions = handler_permissions(resource.type)
    for operation in operations:
        for permission in permissions.get(operation, []):
            prefix, action = permission.split(":", 1)
            if action in GATED and GATED[action] not in resource.properties:
                continue
            label = f"{why}: {operation} {resource.type} {resource.logical_id}"
            if permission == "iam:PassRole":
                for role in _values(resource.properties, ROLE_PROPERTIES):
                    passed = {"iam:PassedToService": SERVICE_OF_PASSED_ROLE.get(service, f"{service}.amazonaws.com")}
                    calls.setdefault((permission, role), Call(caller, permission, role, label, context=passed))
            elif prefix == "kms":
                for key in _values(resource.properties, ("KmsKeyId", "VolumeKmsKeyId", "KmsKey")):
                    calls.setdefault((permission, key), Call(caller, permission, key, label))
            elif prefix == service:
                action_context = context if action.startswith(("Create", "Update")) else {}
                calls.setdefault((permission, own), Call(caller, permission, own, label, context=dict(action_context)))
            else:
                unplaced.append(f"{resource.type} {operation}: {permission}")
    return list(calls.values()), unplaced
