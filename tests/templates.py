"""Look-ups in a synthesized CloudFormation template (a dict): resources of a type, policy statements, actions."""

from __future__ import annotations

from typing import Any

# JSON as CloudFormation reads it.
Template = dict[str, Any]
Resource = dict[str, Any]
Statement = dict[str, Any]


def of_type(template: Template, resource_type: str) -> dict[str, Resource]:
    """The resources of one type, by logical id, in template order."""
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def properties(template: Template, resource_type: str) -> list[dict[str, Any]]:
    """The properties of each resource of one type, in template order."""
    return [r["Properties"] for r in of_type(template, resource_type).values()]


def named(template: Template, resource_type: str, key: str) -> dict[str, dict[str, Any]]:
    """The properties of the resources of one type by a name property (e.g. AlarmName), where it is a plain string."""
    return {p[key]: p for p in properties(template, resource_type) if isinstance(p.get(key), str)}


def logical_id_of(template: Template, resource_type: str, prefix: str) -> str:
    """The logical id of the one resource of a type whose id starts with `prefix` (CDK adds a hash)."""
    (found,) = [k for k in of_type(template, resource_type) if k.startswith(prefix)]
    return found


def statements_of(resource: Resource) -> list[Statement]:
    """The statements of a policy-bearing resource: an IAM policy's document, a key policy, a bucket policy."""
    properties = resource["Properties"]
    for key in ("PolicyDocument", "KeyPolicy"):
        if key in properties:
            found: list[Statement] = properties[key]["Statement"]
            return found
    raise KeyError(f"{resource['Type']} has neither a PolicyDocument nor a KeyPolicy")


def statement_with_sid(template: Template, resource_type: str, sid: str) -> Statement:
    """The one statement with this Sid among the policies of the resources of a type."""
    (found,) = [s for r in of_type(template, resource_type).values() for s in statements_of(r) if s.get("Sid") == sid]
    return found


def role_statements(template: Template, role: str) -> list[Statement]:
    """The statements of every inline policy (AWS::IAM::Policy) attached to a role.

    `role` is the role's logical id, or the start of exactly one role's logical id.
    """
    role_id = role if role in template["Resources"] else logical_id_of(template, "AWS::IAM::Role", role)
    return [
        s
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for s in statements_of(policy)
    ]


def managed_policy_arns(template: Template, role: str) -> list[Any]:
    """The managed policies attached to a role (ARNs or references), by the start of its logical id."""
    arns: list[Any] = template["Resources"][logical_id_of(template, "AWS::IAM::Role", role)]["Properties"].get(
        "ManagedPolicyArns", []
    )
    return arns


def as_list(value: Any) -> list[Any]:
    """A policy element that may be one value or a list of them (Action, Resource), as a list."""
    return value if isinstance(value, list) else [value]


def actions_of(*found: Statement) -> set[str]:
    """Every action the statements name."""
    return {action for s in found for action in as_list(s["Action"])}
