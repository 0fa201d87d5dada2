"""A call the platform makes (or must never be able to make), and AWS's decision on it along its path.

A call is allowed only when the caller's identity policies, the resource's own policy (in its
account, which may be another), and the policy of the VPC endpoint the call goes through all allow
it; across accounts both sides must. The decision is the simulator's; this module only assembles
the request (policies, context keys such as aws:SourceVpce) and words the verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.access.resolver import PARTITION
from tests.access.simulator import Simulator
from tests.access.world import Endpoint, Policy, Principal, World

# The VPC endpoint a service's API calls take, by IAM service prefix (the rest: not an API on the path).
ENDPOINT_SERVICE = {
    "s3": "s3",
    "dynamodb": "dynamodb",
    "sagemaker": "sagemaker.api",
    "cloudformation": "cloudformation",
    "ssm": "ssm",
    "sns": "sns",
    "sqs": "sqs",
    "kms": "kms",
    "logs": "logs",
    "cloudwatch": "monitoring",
    "sts": "sts",
    "glue": "glue",
    "lakeformation": "lakeformation",
    "athena": "athena",
    "events": "events",
    "ecr": "ecr.api",
    "ec2": "ec2",
}
# Actions served by another endpoint of the same service.
ENDPOINT_BY_ACTION = {
    "sagemaker:InvokeEndpoint": "sagemaker.runtime",
    "sagemaker:InvokeEndpointAsync": "sagemaker.runtime",
    "ecr:BatchGetImage": "ecr.dkr",
    "ecr:GetDownloadUrlForLayer": "ecr.dkr",
    "ecr:BatchCheckLayerAvailability": "ecr.dkr",
}
GATEWAY_SERVICES = {"s3", "dynamodb"}


@dataclass(frozen=True)
class Network:
    """Where a call starts: the subnets of a VPC workload, or None for AWS's own network (a service itself)."""

    subnets: tuple[str, ...]


@dataclass
class Call:
    """One request: who, what, on which resource, with which context keys, from where, and why."""

    principal: str  # role ARN
    action: str
    resource: str  # ARN, or "*" for actions that take none
    why: str
    context: dict[str, str | list[str]] = field(default_factory=dict)
    network: Network | None = None
    resource_account: str | None = None  # when the ARN does not say (S3)
    expect: str = "Allowed"  # or "Denied"
    denied_by: str | None = None  # for expect="Denied": what the explanation must name (a policy, a Sid)

    def key(self) -> tuple[str, str, str]:
        return (self.principal, self.action, self.resource)


@dataclass
class Verdict:
    call: Call
    result: str  # Allowed, ImplicitlyDenied, ExplicitlyDenied, Unreachable, Error
    explanation: str

    @property
    def as_expected(self) -> bool:
        if self.call.expect == "Allowed":
            return self.result == "Allowed"
        denied = self.result in ("ImplicitlyDenied", "ExplicitlyDenied", "Unreachable")
        return denied and (self.call.denied_by is None or self.call.denied_by in self.explanation)


@dataclass
class _Prepared:
    call: Call
    simulation: dict[str, Any] | None
    names: dict[str, Policy]  # policy identifier sent -> policy
    resource_policy: Policy | None
    endpoint: Endpoint | None
    unreachable: str | None


def account_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def _owner(call: Call, worlds: Mapping[str, World], caller: World) -> World | None:
    account = call.resource_account or account_of(call.resource)
    if account is None and call.resource.startswith(f"arn:{PARTITION}:s3:::"):
        bucket = call.resource.split(":::", 1)[1].split("/", 1)[0]
        owners = [w.account for w in worlds.values() if bucket in w.buckets]
        account = owners[0] if owners else caller.account  # else a bucket of the caller's (the CDK assets')
    return worlds.get(account) if account else caller


def _endpoint(call: Call, caller: World) -> tuple[Endpoint | None, str | None]:
    """The VPC endpoint on the call's path, or why the call cannot leave the subnets at all."""
    if call.network is None:
        return None, None
    service = call.action.split(":", 1)[0]
    wanted = ENDPOINT_BY_ACTION.get(call.action, ENDPOINT_SERVICE.get(service))
    if wanted is None:
        return None, None  # not a call over the network (iam:PassRole is checked by the called service)
    for subnet in call.network.subnets:
        route_table = caller.subnet_route_tables.get(subnet)
        for endpoint in caller.endpoints:
            if endpoint.service != wanted:
                continue
            if endpoint.kind == "Gateway" and route_table in endpoint.route_tables:
                return endpoint, None
            if endpoint.kind == "Interface" and endpoint.private_dns and endpoint.vpc == caller.subnet_vpc.get(subnet):
                return endpoint, None
        if route_table in caller.egress_route_tables:
            return None, None  # through a NAT gateway to the public endpoint: no endpoint policy
    return None, f"no {wanted} VPC endpoint and no egress route from subnets {', '.join(call.network.subnets)}"


def _base_context(call: Call, principal: Principal, caller: World, endpoint: Endpoint | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "aws:PrincipalArn": principal.arn,
        "aws:PrincipalAccount": caller.account,
        "aws:PrincipalType": "AssumedRole",
        "aws:SecureTransport": "true",
        "aws:RequestedRegion": caller.region,
    }
    if endpoint is not None:
        context["aws:SourceVpce"] = endpoint.id
        context["aws:SourceVpc"] = endpoint.vpc
    context.update(call.context)
    return context


# AWS's image registries (the deep learning containers, Model Monitor, Clarify) let every account
# pull; their policies are not published, so this stands in for them (a data gap, tests/access/GAPS.md).
AWS_REGISTRY_POLICY = Policy(
    "AWS image registry policy (assumed)",
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                "Resource": "*",
            }
        ],
    },
    "AWS",
)


def _service_assumes(call: Call, caller: World) -> _Prepared:
    """A service (sagemaker.amazonaws.com ...) assuming a role: judged by the role's trust policy alone."""
    role = caller.principal(call.resource)
    trust = Policy("trust policy", role.trust or {"Statement": []}, role.origin)
    simulation = {
        "request": {
            "principal": call.principal,
            "action": call.action,
            "resource": {"resource": role.arn, "accountId": caller.account},
            "contextVariables": {"aws:SourceAccount": caller.account, **call.context},
        },
        "identityPolicies": [],
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
        "resourcePolicy": trust.document,
    }
    return _Prepared(call, simulation, {}, trust, None, None)


def _prepare(call: Call, worlds: Mapping[str, World], caller: World) -> _Prepared:
    if not call.principal.startswith("arn:") and call.principal.endswith(".amazonaws.com"):
        return _service_assumes(call, caller)
    principal = caller.principal(call.principal)
    endpoint, unreachable = _endpoint(call, caller)
    owner = _owner(call, worlds, caller)
    resource_policy = owner.resource_policy(call.resource) if owner is not None else None
    if owner is None and call.action.startswith("ecr:"):
        resource_policy = AWS_REGISTRY_POLICY
    if unreachable is not None:
        return _Prepared(call, None, {}, resource_policy, None, unreachable)
    names = {f"{i}:{p.name}": p for i, p in enumerate(principal.policies)}
    resource_account = (
        call.resource_account or account_of(call.resource) or (owner.account if owner else caller.account)
    )
    context = _base_context(call, principal, caller, endpoint)
    context.setdefault("aws:ResourceAccount", resource_account)
    if call.action.startswith("s3:"):
        context.setdefault("s3:ResourceAccount", resource_account)
    simulation: dict[str, Any] = {
        "request": {
            "principal": principal.arn,
            "action": call.action,
            "resource": {"resource": call.resource, "accountId": resource_account},
            "contextVariables": context,
        },
        "identityPolicies": [{"name": name, "policy": p.document} for name, p in names.items()],
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
    }
    if resource_policy is not None:
        simulation["resourcePolicy"] = resource_policy.document
    if endpoint is not None:
        document = _any_principal(endpoint.policy.document)
        simulation["vpcEndpointPolicies"] = [{"name": endpoint.id, "policy": document}]
    if principal.boundary is not None:
        simulation["permissionBoundaryPolicies"] = [{"name": "boundary", "policy": principal.boundary.document}]
    return _Prepared(call, simulation, names, resource_policy, endpoint, None)


def _any_principal(document: dict[str, Any]) -> dict[str, Any]:
    """`{"AWS": "*"}` as `"*"`: the simulator accepts only the latter in an endpoint policy, AWS both (and
    for the signed requests judged here, both match every principal)."""
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    return dict(
        document,
        Statement=[dict(s, Principal="*") if s.get("Principal") == {"AWS": "*"} else s for s in statements],
    )


def _explain(prepared: _Prepared, outcome: dict[str, Any], caller: World) -> str:
    call = prepared.call
    reasons = []
    if not call.principal.startswith("arn:"):
        return (
            f"the trust policy of {call.resource} does not let {call.principal} assume it"
            if outcome.get("result") != "Allowed"
            else "Allowed"
        )
    principal = caller.principal(call.principal)
    for denial in outcome.get("denials", []):
        kind = denial["policyType"]
        if kind == "identity" and denial["denialType"] == "Implicit":
            attached = ", ".join(f"{p.name} ({p.origin})" for p in principal.policies) or "none"
            reasons.append(f"no identity policy allows it (attached: {attached})")
        elif kind == "identity":
            policy = prepared.names.get(denial.get("policyIdentifier", ""))
            where = f"{policy.name} ({policy.origin})" if policy else denial.get("policyIdentifier")
            reasons.append(f"explicit deny in identity policy {where}, statement {_statement(denial)}")
        elif kind == "resource":
            policy = prepared.resource_policy
            where = f"{policy.name} ({policy.origin})" if policy else "its resource policy"
            verb = "explicit deny in" if denial["denialType"] == "Explicit" else "not allowed by"
            reasons.append(f"{verb} the {where}" + (f", statement {_statement(denial)}" if verb[0] == "e" else ""))
        elif kind == "vpce":
            endpoint = prepared.endpoint
            where = f"{endpoint.policy.name} ({endpoint.policy.origin})" if endpoint else "the endpoint policy"
            reasons.append(f"{'explicit deny in' if denial['denialType'] == 'Explicit' else 'not allowed by'} {where}")
        else:
            reasons.append(f"{kind} {denial['denialType'].lower()} deny")
    if outcome.get("result") == "Error":
        reasons.append(f"simulator refused the request: {outcome.get('errors')}")
    return "; ".join(reasons) or str(outcome.get("result"))


def _statement(denial: Mapping[str, Any]) -> str:
    sid = denial.get("statementId")
    return f"{sid!r}" if sid else f"#{denial.get('statementIndex')}"


def decide(calls: Iterable[Call], caller: World, worlds: Mapping[str, World], simulator: Simulator) -> list[Verdict]:
    """The simulator's verdict on each call, made from `caller`'s account (`worlds`: every account by id)."""
    prepared = [_prepare(call, worlds, caller) for call in calls]
    outcomes = simulator.run([p.simulation for p in prepared if p.simulation is not None])
    verdicts, answers = [], iter(outcomes)
    for p in prepared:
        if p.unreachable is not None:
            verdicts.append(Verdict(p.call, "Unreachable", p.unreachable))
            continue
        outcome = next(answers)
        verdicts.append(Verdict(p.call, outcome["result"], _explain(p, outcome, caller)))
    return verdicts


def describe(verdict: Verdict, caller: World) -> str:
    """One line naming principal, action, resource, why the call is made, and what decided it."""
    call = verdict.call
    try:
        principal = caller.principal(call.principal)
        who = f"{principal.name} ({principal.origin})"
    except KeyError:
        who = call.principal
    expected = (
        "be allowed" if call.expect == "Allowed" else "be denied" + (f" by {call.denied_by}" if call.denied_by else "")
    )
    return (
        f"[{caller.environment.name}] {who} should {expected} {call.action} on {call.resource} "
        f"({call.why}), but it is {verdict.result}: {verdict.explanation}"
    )


def failures(verdicts: Iterable[Verdict], caller: World) -> list[str]:
    return [describe(v, caller) for v in verdicts if not v.as_expected]
