"""Every policy of an environment, from its resolved templates: identity, resource, endpoint and key policies.

Identity policies are gathered per role the way IAM attaches them: the role's inline policies,
`AWS::IAM::Policy` and `AWS::IAM::ManagedPolicy` resources naming the role, and managed policies
the role lists (the guardrail among them). Roles the environment does not create but attaches
policies to (the CDK bootstrap's) appear by name. Resource policies are found by the ARN a request
names: a bucket's for its objects, a model package group's for its versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.access.resolver import PARTITION, Environment, Resource

# AWS managed policies the templates attach; the IAM data set has actions, not AWS's managed
# policies, so their documents are copied here from AWS's published versions (a data gap).
AWS_MANAGED = {
    "service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
    "AWSCloudFormationReadOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "cloudformation:Describe*",
                    "cloudformation:EstimateTemplateCost",
                    "cloudformation:Get*",
                    "cloudformation:List*",
                    "cloudformation:ValidateTemplate",
                    "cloudformation:Detect*",
                ],
                "Resource": "*",
            }
        ],
    },
    "AdministratorAccess": {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    },
}


@dataclass
class Policy:
    """A policy document and where it comes from (for messages: the policy that allows or denies)."""

    name: str
    document: dict[str, Any]
    origin: str  # construct path or "AWS managed"


@dataclass
class Principal:
    """A role: its identity policies and its trust policy."""

    arn: str
    name: str
    origin: str
    policies: list[Policy] = field(default_factory=list)
    trust: dict[str, Any] | None = None
    boundary: Policy | None = None


@dataclass
class Endpoint:
    """A VPC endpoint: the service it serves, its kind, policy and where it is reachable."""

    id: str
    service: str  # e.g. "s3", "sagemaker.api", "ecr.dkr"
    kind: str  # Interface or Gateway
    policy: Policy
    vpc: str
    route_tables: list[str]
    subnets: list[str]
    private_dns: bool


@dataclass
class World:
    """The environment's principals, resource policies and network, indexed for look-ups."""

    environment: Environment
    principals: dict[str, Principal]  # by role ARN
    resource_policies: dict[str, Policy]  # by resource ARN (bucket, key, topic, queue, group, bus)
    endpoints: list[Endpoint]
    subnet_route_tables: dict[str, str]  # subnet id -> route table id
    subnet_vpc: dict[str, str]
    egress_route_tables: set[str]  # route tables with a default route to a NAT or internet gateway
    buckets: set[str] = field(default_factory=set)  # names of the buckets this account owns

    @property
    def account(self) -> str:
        return self.environment.account

    @property
    def region(self) -> str:
        return self.environment.region

    def principal(self, arn_or_name: str) -> Principal:
        if arn_or_name in self.principals:
            return self.principals[arn_or_name]
        arn = f"arn:{PARTITION}:iam::{self.account}:role/{arn_or_name}"
        if arn in self.principals:
            return self.principals[arn]
        raise KeyError(f"{self.environment.name}: no role {arn_or_name!r}")

    def resource_policy(self, resource_arn: str) -> Policy | None:
        """The policy of the resource a request names: exact ARN, or the bucket / group / table it belongs to."""
        if resource_arn in self.resource_policies:
            return self.resource_policies[resource_arn]
        if resource_arn.startswith(f"arn:{PARTITION}:s3:::"):
            bucket = resource_arn.split(":::", 1)[1].split("/", 1)[0]
            return self.resource_policies.get(f"arn:{PARTITION}:s3:::{bucket}")
        if ":model-package/" in resource_arn:
            group = resource_arn.replace(":model-package/", ":model-package-group/").rsplit("/", 1)[0]
            return self.resource_policies.get(group)
        return None


def build_world(environment: Environment, extra_principals: list[Principal] | None = None) -> World:
    """Collect the environment's policies; `extra_principals` are roles it does not create (the bootstrap's)."""
    principals: dict[str, Principal] = {}
    managed: dict[str, Policy] = {}
    for resource in environment.resources("AWS::IAM::ManagedPolicy"):
        managed[resource.arn] = Policy(resource.name, resource.properties["PolicyDocument"], resource.path)
    for principal in extra_principals or []:
        principals[principal.arn] = principal
    for resource in environment.resources("AWS::IAM::Role"):
        principals[resource.arn] = _role(environment, resource, managed)
    _attach(environment, principals, managed)
    return World(
        environment=environment,
        principals=principals,
        resource_policies=_resource_policies(environment),
        endpoints=_endpoints(environment),
        subnet_route_tables={
            r.properties["SubnetId"]: r.properties["RouteTableId"]
            for r in environment.resources("AWS::EC2::SubnetRouteTableAssociation")
        },
        subnet_vpc={r.name: r.properties["VpcId"] for r in environment.resources("AWS::EC2::Subnet")},
        egress_route_tables={
            r.properties["RouteTableId"]
            for r in environment.resources("AWS::EC2::Route")
            if r.properties.get("DestinationCidrBlock") == "0.0.0.0/0"
        },
        buckets={r.name for r in environment.resources("AWS::S3::Bucket")},
    )


def _managed(arn: str, managed: dict[str, Policy]) -> Policy:
    if arn in managed:
        return managed[arn]
    prefix = f"arn:{PARTITION}:iam::aws:policy/"
    if arn.startswith(prefix) and arn[len(prefix) :] in AWS_MANAGED:
        name = arn[len(prefix) :]
        return Policy(name, AWS_MANAGED[name], "AWS managed")
    if arn.startswith(prefix):  # judged as granting nothing: a contract that needs it fails visibly
        return Policy(arn[len(prefix) :], {"Version": "2012-10-17", "Statement": []}, "AWS managed, not in AWS_MANAGED")
    raise KeyError(f"managed policy {arn} is neither in the environment nor an AWS managed policy")


def _role(environment: Environment, resource: Resource, managed: dict[str, Policy]) -> Principal:
    properties = resource.properties
    principal = Principal(
        arn=resource.arn, name=resource.name, origin=resource.path, trust=properties.get("AssumeRolePolicyDocument")
    )
    for inline in properties.get("Policies", []):
        principal.policies.append(Policy(inline["PolicyName"], inline["PolicyDocument"], resource.path))
    for arn in properties.get("ManagedPolicyArns", []):
        principal.policies.append(_managed(arn, managed))
    if "PermissionsBoundary" in properties:
        principal.boundary = _managed(properties["PermissionsBoundary"], managed)
    del environment  # the role's own properties are all it needs
    return principal


def _attach(environment: Environment, principals: dict[str, Principal], managed: dict[str, Policy]) -> None:
    """Policies that name their roles: AWS::IAM::Policy and AWS::IAM::ManagedPolicy with `Roles`."""
    by_name = {p.name: p for p in principals.values()}
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for resource in environment.resources(kind):
            properties = resource.properties
            policy = (
                managed[resource.arn]
                if kind == "AWS::IAM::ManagedPolicy"
                else Policy(properties["PolicyName"], properties["PolicyDocument"], resource.path)
            )
            for role in properties.get("Roles", []):
                name = role.rsplit("/", 1)[-1]
                if name not in by_name:  # a role created elsewhere: the bootstrap's, another stack's
                    arn = f"arn:{PARTITION}:iam::{environment.account}:role/{name}"
                    by_name[name] = principals.setdefault(arn, Principal(arn=arn, name=name, origin="(external)"))
                if policy not in by_name[name].policies:
                    by_name[name].policies.append(policy)


def _queue_arn(url: str) -> str:
    region = url.split("//sqs.", 1)[1].split(".", 1)[0]
    account, name = url.rstrip("/").rsplit("/", 2)[-2:]
    return f"arn:{PARTITION}:sqs:{region}:{account}:{name}"


def _resource_policies(environment: Environment) -> dict[str, Policy]:
    found: dict[str, Policy] = {}
    for r in environment.resources("AWS::S3::BucketPolicy"):
        found[f"arn:{PARTITION}:s3:::{r.properties['Bucket']}"] = Policy(
            "bucket policy", r.properties["PolicyDocument"], r.path
        )
    for r in environment.resources("AWS::KMS::Key"):
        found[r.arn] = Policy("key policy", r.properties["KeyPolicy"], r.path)
    for r in environment.resources("AWS::SNS::TopicPolicy"):
        for topic in r.properties["Topics"]:
            found[topic] = Policy("topic policy", r.properties["PolicyDocument"], r.path)
    for r in environment.resources("AWS::SQS::QueuePolicy"):
        for queue in r.properties["Queues"]:
            found[_queue_arn(queue)] = Policy("queue policy", r.properties["PolicyDocument"], r.path)
    for r in environment.resources("AWS::SageMaker::ModelPackageGroup"):
        document = r.properties.get("ModelPackageGroupPolicy")
        if document is not None:
            document = json.loads(document) if isinstance(document, str) else document
            found[r.arn] = Policy("model package group policy", document, r.path)
    buses: dict[str, list[dict[str, Any]]] = {}
    for r in environment.resources("AWS::Events::EventBusPolicy"):
        bus = r.properties.get("EventBusName", "default")
        arn = f"arn:{PARTITION}:events:{environment.region}:{environment.account}:event-bus/{bus}"
        statement = dict(r.properties["Statement"], Sid=r.properties["StatementId"])
        buses.setdefault(arn, []).append(statement)
    for arn, statements in buses.items():
        found[arn] = Policy("event bus policy", {"Version": "2012-10-17", "Statement": statements}, "EventBusPolicy")
    return found


def _endpoints(environment: Environment) -> list[Endpoint]:
    found = []
    for r in environment.resources("AWS::EC2::VPCEndpoint"):
        p = r.properties
        service = p["ServiceName"].split(f".{environment.region}.", 1)[-1]
        document = p.get("PolicyDocument") or {
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]
        }
        found.append(
            Endpoint(
                id=r.name,
                service=service,
                kind=p.get("VpcEndpointType", "Gateway"),
                policy=Policy(f"{service} endpoint policy", document, r.path),
                vpc=p["VpcId"],
                route_tables=p.get("RouteTableIds", []),
                subnets=p.get("SubnetIds", []),
                private_dns=bool(p.get("PrivateDnsEnabled", False)),
            )
        )
    return found
