"""The security surface of an environment as readable Markdown: who may do what, where, and through what.

Each principal's statements (its own policies; shared managed policies once, by name), resource,
key and endpoint policies, security-group rules, routes and Lake Formation grants and admins.
The account and region read `<account>` and `<region>`, so a snapshot changes only when the
surface does. tests/access/snapshots/<environment>.md are committed; `make snapshot` rewrites
them and `make review` shows how they changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.access.environments import Deployed
from tests.access.world import Policy

DIRECTORY = Path(__file__).with_name("snapshots")


def file_for(name: str) -> Path:
    return DIRECTORY / f"{name.replace(':', '-')}.md"


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statement(statement: dict[str, Any]) -> str:
    actions = _listed(statement.get("Action")) or [f"NOT {a}" for a in _listed(statement.get("NotAction"))]
    resources = _listed(statement.get("Resource")) or [f"NOT {r}" for r in _listed(statement.get("NotResource"))]
    scope = ", ".join(sorted(map(str, resources))) or "-"
    line = f"{statement.get('Effect', 'Allow')} {', '.join(sorted(actions))} on {scope}"
    principal = statement.get("Principal")
    if principal is not None:
        line += f" for {json.dumps(principal, sort_keys=True)}"
    if statement.get("Condition"):
        line += f" when {json.dumps(statement['Condition'], sort_keys=True)}"
    sid = statement.get("Sid")
    return f"{line}" + (f" [{sid}]" if sid else "")


def _statements(document: dict[str, Any]) -> list[str]:
    statements = document.get("Statement", [])
    return [_statement(s) for s in ([statements] if isinstance(statements, dict) else statements)]


def _section(title: str, lines: Iterable[str]) -> list[str]:
    body = list(lines)
    return [f"## {title}", "", *(body or ["(none)"]), ""]


def _principals(deployed: Deployed) -> list[str]:
    world = deployed.world
    shared: dict[str, Policy] = {}
    lines: list[str] = []
    for principal in sorted(world.principals.values(), key=lambda p: p.name):
        if principal.origin.startswith("CDKToolkit") and not any(
            not p.origin.startswith(("AWS managed", "CDKToolkit")) for p in principal.policies
        ):
            continue  # the CDK bootstrap's roles, unless the platform attaches something to them
        trust = sorted(
            {json.dumps(s.get("Principal"), sort_keys=True) for s in _listed((principal.trust or {}).get("Statement"))}
        )
        lines += [
            f"### {principal.name}",
            "",
            f"- from: {principal.origin}",
            f"- assumed by: {', '.join(trust) or '-'}",
        ]
        for policy in principal.policies:
            if (
                policy.origin == "AWS managed"
                or len([p for p in world.principals.values() if policy in p.policies]) > 1
            ):
                shared[policy.name] = policy
                lines.append(f"- managed policy: {policy.name}")
                continue
            lines += [f"- {line}" for line in _statements(policy.document)]
        lines.append("")
    for name in sorted(shared):
        lines += [f"### managed policy {name}", "", f"- from: {shared[name].origin}"]
        lines += [f"- {line}" for line in _statements(shared[name].document)] + [""]
    return lines


def _resource_policies(deployed: Deployed) -> list[str]:
    lines: list[str] = []
    for arn, policy in sorted(deployed.world.resource_policies.items()):
        lines += [f"### {policy.name} of {arn}", ""] + [f"- {line}" for line in _statements(policy.document)] + [""]
    return lines


def _endpoints(deployed: Deployed) -> list[str]:
    lines: list[str] = []
    for endpoint in sorted(deployed.world.endpoints, key=lambda e: e.service):
        where = (
            f"route tables {', '.join(endpoint.route_tables)}"
            if endpoint.kind == "Gateway"
            else (f"subnets {', '.join(endpoint.subnets)}, private DNS {endpoint.private_dns}")
        )
        lines += [f"### {endpoint.service} ({endpoint.kind}, {where})", ""]
        lines += [f"- {line}" for line in _statements(endpoint.policy.document)] + [""]
    return lines


def _security_groups(deployed: Deployed) -> list[str]:
    env = deployed.environment
    lines = []
    for group in env.resources("AWS::EC2::SecurityGroup"):
        p = group.properties
        lines.append(f"- {group.name} ({group.path}): {p.get('GroupDescription', '')}")
        for direction in ("SecurityGroupIngress", "SecurityGroupEgress"):
            for rule in p.get(direction, []):
                lines.append(
                    f"  - {direction.removeprefix('SecurityGroup').lower()} {json.dumps(rule, sort_keys=True)}"
                )
    for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        for rule in env.resources(kind):
            lines.append(f"- {kind.rsplit('::', 1)[1]} {json.dumps(rule.properties, sort_keys=True)}")
    return lines


def _routes(deployed: Deployed) -> list[str]:
    env = deployed.environment
    lines = [f"- subnet {s} -> route table {t}" for s, t in sorted(deployed.world.subnet_route_tables.items())]
    lines += [f"- route {json.dumps(r.properties, sort_keys=True)}" for r in env.resources("AWS::EC2::Route")]
    return lines


def _lake(deployed: Deployed) -> list[str]:
    env = deployed.environment
    lines = []
    for settings in env.resources("AWS::LakeFormation::DataLakeSettings"):
        admins = [a["DataLakePrincipalIdentifier"] for a in settings.properties.get("Admins", [])]
        lines.append(f"- data lake administrators: {', '.join(admins)}")
    grants = []
    for grant in env.resources("AWS::LakeFormation::PrincipalPermissions"):
        p = grant.properties
        grantable = (
            f" (grantable: {', '.join(p['PermissionsWithGrantOption'])})" if p.get("PermissionsWithGrantOption") else ""
        )
        grants.append(
            f"- {p['Principal']['DataLakePrincipalIdentifier']}: {', '.join(sorted(p['Permissions']))}"
            f"{grantable} on {json.dumps(p['Resource'], sort_keys=True)}"
        )
    for kind in ("AWS::LakeFormation::Permissions", "AWS::LakeFormation::TagAssociation"):
        grants += [
            f"- {kind.rsplit('::', 1)[1]} {json.dumps(r.properties, sort_keys=True)}" for r in env.resources(kind)
        ]
    return lines + sorted(grants)


def render(deployed: Deployed) -> str:
    env = deployed.environment
    lines = [
        f"# Security surface: {deployed.name}",
        "",
        "Generated by `make snapshot` from the synthesized templates (tests/access/snapshot.py); do not edit.",
        "",
    ]
    lines += _section("Principals and their statements", _principals(deployed))
    lines += _section("Resource and key policies", _resource_policies(deployed))
    lines += _section("VPC endpoint policies", _endpoints(deployed))
    lines += _section("Security groups", _security_groups(deployed))
    lines += _section("Routes", _routes(deployed))
    lines += _section("Lake Formation", _lake(deployed))
    text = "\n".join(lines).rstrip() + "\n"
    for peer in deployed.peers.values():
        text = text.replace(peer.account, f"<{peer.environment.name.split()[0]} account>")
    return text.replace(env.account, "<account>").replace(env.region, "<region>")
