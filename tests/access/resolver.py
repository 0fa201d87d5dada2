"""Resolves the templates of one deployed environment (its stacks in one account and region) to concrete values.

Intrinsics, cross-stack references (`Fn::ImportValue`, `Fn::GetStackOutput`), conditions and
parameters become the strings a deployment in ACCOUNT/REGION would see: physical names from the
name properties the templates set, or CloudFormation-style generated names, and the ARNs and
attributes AWS derives from them. A resource whose condition is false does not exist.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PARTITION = "aws"
FAKE_ACCOUNT = "111111111111"
FAKE_REGION = "us-east-1"
NO_VALUE = object()  # AWS::NoValue: the key or list item disappears

# The property holding a resource's physical name, where the template may set one.
NAME_PROPERTY: dict[str, tuple[str, ...]] = {
    "AWS::IAM::Role": ("RoleName",),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName",),
    "AWS::IAM::Policy": ("PolicyName",),
    "AWS::S3::Bucket": ("BucketName",),
    "AWS::SQS::Queue": ("QueueName",),
    "AWS::SNS::Topic": ("TopicName",),
    "AWS::Lambda::Function": ("FunctionName",),
    "AWS::Logs::LogGroup": ("LogGroupName",),
    "AWS::DynamoDB::Table": ("TableName",),
    "AWS::SageMaker::Model": ("ModelName",),
    "AWS::SageMaker::EndpointConfig": ("EndpointConfigName",),
    "AWS::SageMaker::Endpoint": ("EndpointName",),
    "AWS::SageMaker::ModelPackageGroup": ("ModelPackageGroupName",),
    "AWS::SageMaker::Pipeline": ("PipelineName",),
    "AWS::SageMaker::MonitoringSchedule": ("MonitoringScheduleName",),
    "AWS::SageMaker::DataQualityJobDefinition": ("JobDefinitionName",),
    "AWS::SageMaker::ModelQualityJobDefinition": ("JobDefinitionName",),
    "AWS::SageMaker::ModelBiasJobDefinition": ("JobDefinitionName",),
    "AWS::SageMaker::ModelExplainabilityJobDefinition": ("JobDefinitionName",),
    "AWS::SageMaker::FeatureGroup": ("FeatureGroupName",),
    "AWS::SageMaker::Domain": ("DomainName",),
    "AWS::SageMaker::UserProfile": ("UserProfileName",),
    "AWS::SageMaker::MlflowTrackingServer": ("TrackingServerName",),
    "AWS::Glue::Job": ("Name",),
    "AWS::Glue::Crawler": ("Name",),
    "AWS::Glue::Workflow": ("Name",),
    "AWS::Glue::Trigger": ("Name",),
    "AWS::Glue::SecurityConfiguration": ("Name",),
    "AWS::Glue::DataQualityRuleset": ("Name",),
    "AWS::Glue::Database": ("DatabaseInput", "Name"),
    "AWS::Glue::Table": ("TableInput", "Name"),
    "AWS::Glue::Connection": ("ConnectionInput", "Name"),
    "AWS::Athena::WorkGroup": ("Name",),
    "AWS::Events::Rule": ("Name",),
    "AWS::Events::EventBus": ("Name",),
    "AWS::CloudWatch::Alarm": ("AlarmName",),
    "AWS::SSM::Parameter": ("Name",),
    "AWS::CloudTrail::Trail": ("TrailName",),
    "AWS::KMS::Alias": ("AliasName",),
    "AWS::CodePipeline::Pipeline": ("Name",),
    "AWS::CodeBuild::Project": ("Name",),
    "AWS::ECR::Repository": ("RepositoryName",),
}

# ARN formats by resource type ({p} partition, {r} region, {a} account, {n} physical name or id).
ARN_FORMAT: dict[str, str] = {
    "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{n}",
    "AWS::IAM::ManagedPolicy": "arn:{p}:iam::{a}:policy/{n}",
    "AWS::S3::Bucket": "arn:{p}:s3:::{n}",
    "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{n}",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{n}",
    "AWS::KMS::Key": "arn:{p}:kms:{r}:{a}:key/{n}",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
    "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{n}:*",
    "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{n}",
    "AWS::SageMaker::Model": "arn:{p}:sagemaker:{r}:{a}:model/{n}",
    "AWS::SageMaker::EndpointConfig": "arn:{p}:sagemaker:{r}:{a}:endpoint-config/{n}",
    "AWS::SageMaker::Endpoint": "arn:{p}:sagemaker:{r}:{a}:endpoint/{n}",
    "AWS::SageMaker::ModelPackageGroup": "arn:{p}:sagemaker:{r}:{a}:model-package-group/{n}",
    "AWS::SageMaker::Pipeline": "arn:{p}:sagemaker:{r}:{a}:pipeline/{n}",
    "AWS::SageMaker::MonitoringSchedule": "arn:{p}:sagemaker:{r}:{a}:monitoring-schedule/{n}",
    "AWS::SageMaker::DataQualityJobDefinition": "arn:{p}:sagemaker:{r}:{a}:data-quality-job-definition/{n}",
    "AWS::SageMaker::ModelQualityJobDefinition": "arn:{p}:sagemaker:{r}:{a}:model-quality-job-definition/{n}",
    "AWS::SageMaker::ModelBiasJobDefinition": "arn:{p}:sagemaker:{r}:{a}:model-bias-job-definition/{n}",
    "AWS::SageMaker::ModelExplainabilityJobDefinition": (
        "arn:{p}:sagemaker:{r}:{a}:model-explainability-job-definition/{n}"
    ),
    "AWS::SageMaker::FeatureGroup": "arn:{p}:sagemaker:{r}:{a}:feature-group/{n}",
    "AWS::SageMaker::Domain": "arn:{p}:sagemaker:{r}:{a}:domain/{n}",
    "AWS::SageMaker::MlflowTrackingServer": "arn:{p}:sagemaker:{r}:{a}:mlflow-tracking-server/{n}",
    "AWS::Glue::Job": "arn:{p}:glue:{r}:{a}:job/{n}",
    "AWS::Glue::Crawler": "arn:{p}:glue:{r}:{a}:crawler/{n}",
    "AWS::Glue::Workflow": "arn:{p}:glue:{r}:{a}:workflow/{n}",
    "AWS::Glue::Trigger": "arn:{p}:glue:{r}:{a}:trigger/{n}",
    "AWS::Glue::Database": "arn:{p}:glue:{r}:{a}:database/{n}",
    "AWS::Glue::Connection": "arn:{p}:glue:{r}:{a}:connection/{n}",
    "AWS::Glue::DataQualityRuleset": "arn:{p}:glue:{r}:{a}:dataQualityRuleset/{n}",
    "AWS::Athena::WorkGroup": "arn:{p}:athena:{r}:{a}:workgroup/{n}",
    "AWS::Events::Rule": "arn:{p}:events:{r}:{a}:rule/{n}",
    "AWS::Events::EventBus": "arn:{p}:events:{r}:{a}:event-bus/{n}",
    "AWS::CloudWatch::Alarm": "arn:{p}:cloudwatch:{r}:{a}:alarm:{n}",
    "AWS::CloudTrail::Trail": "arn:{p}:cloudtrail:{r}:{a}:trail/{n}",
    "AWS::CodePipeline::Pipeline": "arn:{p}:codepipeline:{r}:{a}:{n}",
    "AWS::CodeBuild::Project": "arn:{p}:codebuild:{r}:{a}:project/{n}",
    "AWS::ECR::Repository": "arn:{p}:ecr:{r}:{a}:repository/{n}",
}

# Types whose Ref is their ARN (the rest: the physical name or id).
REF_IS_ARN = {
    "AWS::SNS::Topic",
    "AWS::IAM::ManagedPolicy",
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::ModelPackageGroup",
    "AWS::SageMaker::MonitoringSchedule",
    "AWS::SageMaker::DataQualityJobDefinition",
    "AWS::SageMaker::ModelQualityJobDefinition",
    "AWS::SageMaker::ModelBiasJobDefinition",
    "AWS::SageMaker::ModelExplainabilityJobDefinition",
}

# Resource ids AWS generates, by type: a prefix and a hex id derived from the logical id.
ID_PREFIX = {
    "AWS::EC2::VPC": "vpc-",
    "AWS::EC2::Subnet": "subnet-",
    "AWS::EC2::SecurityGroup": "sg-",
    "AWS::EC2::RouteTable": "rtb-",
    "AWS::EC2::VPCEndpoint": "vpce-",
    "AWS::EC2::InternetGateway": "igw-",
    "AWS::EC2::NatGateway": "nat-",
    "AWS::EC2::EIP": "eipalloc-",
    "AWS::EC2::FlowLog": "fl-",
}

# How long CloudFormation lets a generated name be, by type (S3 and SQS names are short).
NAME_LIMIT = {"AWS::S3::Bucket": 63, "AWS::IAM::Role": 64, "AWS::SQS::Queue": 80, "AWS::Lambda::Function": 64}


@dataclass
class Stack:
    """One stack of the environment: its name and synthesized template."""

    name: str
    template: dict[str, Any]


@dataclass
class Environment:
    """The stacks one deployment creates in one account and region, resolved together."""

    name: str
    account: str
    region: str
    stacks: dict[str, Stack]  # by stack name
    # Values for parameters by name (e.g. the promoted state an SSM-typed parameter resolves to).
    parameter_values: dict[str, str] = field(default_factory=dict)
    _resolvers: dict[str, StackResolver] = field(default_factory=dict, repr=False)

    def resolver(self, stack_name: str) -> StackResolver:
        if stack_name not in self._resolvers:
            self._resolvers[stack_name] = StackResolver(self, self.stacks[stack_name])
        return self._resolvers[stack_name]

    def export(self, export_name: str) -> Any:
        for stack in self.stacks.values():
            for output in stack.template.get("Outputs", {}).values():
                name = output.get("Export", {}).get("Name")
                if name is not None and self.resolver(stack.name).resolve(name) == export_name:
                    return self.resolver(stack.name).resolve(output["Value"])
        raise KeyError(f"{self.name}: no stack exports {export_name!r}")

    def stack_output(self, stack_name: str, output_name: str) -> Any:
        stack = self.stacks.get(stack_name)
        if stack is None:
            raise KeyError(f"{self.name}: no stack {stack_name!r} for its output {output_name!r}")
        return self.resolver(stack_name).resolve(stack.template["Outputs"][output_name]["Value"])

    def resources(self, resource_type: str | None = None) -> list[Resource]:
        """Every resource that exists (its condition holds), resolved lazily, in stack order."""
        found = []
        for stack in self.stacks.values():
            resolver = self.resolver(stack.name)
            for logical_id, resource in stack.template.get("Resources", {}).items():
                if resource_type is not None and resource["Type"] != resource_type:
                    continue
                if resolver.exists(logical_id):
                    found.append(Resource(resolver, logical_id))
        return found


@dataclass
class Resource:
    """A resource of the environment, with its properties and identifiers resolved on demand."""

    resolver: StackResolver
    logical_id: str

    @property
    def type(self) -> str:
        return str(self.raw["Type"])

    @property
    def raw(self) -> dict[str, Any]:
        return self.resolver.resources[self.logical_id]  # type: ignore[no-any-return]

    @property
    def stack(self) -> str:
        return self.resolver.stack.name

    @property
    def properties(self) -> dict[str, Any]:
        return self.resolver.properties(self.logical_id)

    @property
    def name(self) -> str:
        return self.resolver.physical_name(self.logical_id)

    @property
    def arn(self) -> str:
        return self.resolver.arn(self.logical_id)

    @property
    def path(self) -> str:
        """The construct path CDK records, or stack/logical id."""
        metadata = self.raw.get("Metadata", {})
        return str(metadata.get("aws:cdk:path", f"{self.stack}/{self.logical_id}"))


class StackResolver:
    """Resolves one stack's intrinsics in its environment."""

    def __init__(self, environment: Environment, stack: Stack) -> None:
        self.environment = environment
        self.stack = stack
        self.resources: dict[str, Any] = stack.template.get("Resources", {})
        self._conditions: dict[str, bool] = {}
        self._properties: dict[str, dict[str, Any]] = {}

    # --- identity -----------------------------------------------------------------------------

    def pseudo(self, name: str) -> str | None:
        env = self.environment
        return {
            "AWS::AccountId": env.account,
            "AWS::Region": env.region,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack.name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{env.region}:{env.account}:stack/{self.stack.name}/"
            + str(uuid.uuid5(uuid.NAMESPACE_URL, self.stack.name)),
        }.get(name)

    def physical_name(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        kind = resource["Type"]
        value: Any = resource.get("Properties", {})
        for key in NAME_PROPERTY.get(kind, ()):
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and NAME_PROPERTY.get(kind):
            return str(self.resolve(value))
        digest = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack.name}/{logical_id}")
        if kind in ID_PREFIX:
            return ID_PREFIX[kind] + digest.hex[:17]
        if kind == "AWS::KMS::Key":
            return str(digest)
        generated = f"{self.stack.name}-{logical_id[:40]}-{digest.hex[:12].upper()}"
        if kind == "AWS::S3::Bucket":
            generated = generated.lower()
        return generated[: NAME_LIMIT.get(kind, 128)]

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        if kind not in ARN_FORMAT:
            raise KeyError(f"{self.stack.name}/{logical_id}: no ARN format for {kind}")
        env = self.environment
        name = self.physical_name(logical_id)
        if kind == "AWS::SSM::Parameter":
            return f"arn:{PARTITION}:ssm:{env.region}:{env.account}:parameter{name}"
        return ARN_FORMAT[kind].format(p=PARTITION, r=env.region, a=env.account, n=name)

    def ref(self, name: str) -> Any:
        pseudo = self.pseudo(name)
        if pseudo is not None:
            return pseudo
        if name == "AWS::NoValue":
            return NO_VALUE
        parameters = self.stack.template.get("Parameters", {})
        if name in parameters:
            value = self.environment.parameter_values.get(name, parameters[name].get("Default", ""))
            if parameters[name].get("Type") == "CommaDelimitedList" or parameters[name].get("Type", "").startswith(
                "List<"
            ):
                return [item for item in str(value).split(",") if item]
            return value
        kind = self.resources[name]["Type"]
        if kind in REF_IS_ARN:
            return self.arn(name)
        if kind == "AWS::SQS::Queue":
            env = self.environment
            return f"https://sqs.{env.region}.amazonaws.com/{env.account}/{self.physical_name(name)}"
        return self.physical_name(name)

    def attribute(self, name: str, attribute: str) -> Any:
        resource = self.resources[name]
        kind = resource["Type"]
        special = self._special_attribute(name, kind, attribute)
        if special is not None:
            return special
        if attribute.endswith("Arn") or attribute == "Arn":
            return self.arn(name)
        if attribute.endswith("Name"):
            return self.physical_name(name)
        if attribute.endswith("Id"):
            return self.ref(name) if kind not in REF_IS_ARN else self.physical_name(name)
        raise KeyError(f"{self.stack.name}/{name}: no value for attribute {attribute} of {kind}")

    def _special_attribute(self, name: str, kind: str, attribute: str) -> Any:
        properties = self.resources[name].get("Properties", {})
        if kind == "AWS::EC2::VPC" and attribute == "CidrBlock":
            return self.resolve(properties["CidrBlock"])
        if kind == "AWS::EC2::VPC" and attribute == "DefaultSecurityGroup":
            return "sg-default" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:8]
        if kind == "AWS::SQS::Queue" and attribute == "QueueUrl":
            return self.ref(name)
        if kind == "AWS::IAM::Role" and attribute == "RoleId":
            return "AROA" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:17].upper()
        if kind == "AWS::S3::Bucket" and attribute in ("DomainName", "RegionalDomainName"):
            return f"{self.physical_name(name)}.s3.{self.environment.region}.amazonaws.com"
        if kind == "AWS::SageMaker::Domain" and attribute == "DomainId":
            return "d-" + uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:12]
        if kind == "AWS::KMS::Key" and attribute == "KeyId":
            return self.physical_name(name)
        return None

    # --- conditions ---------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.resolve(self.stack.template["Conditions"][name]))
        return self._conditions[name]

    def exists(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        return condition is None or self.condition(condition)

    # --- values -------------------------------------------------------------------------------

    def properties(self, logical_id: str) -> dict[str, Any]:
        if logical_id not in self._properties:
            resolved = self.resolve(self.resources[logical_id].get("Properties", {}))
            self._properties[logical_id] = resolved if isinstance(resolved, dict) else {}
        return self._properties[logical_id]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            handler = INTRINSICS.get(function)
            if handler is not None:
                return handler(self, argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        values = {name: self.resolve(v) for name, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self.attribute(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _get_att(resolver: StackResolver, argument: Any) -> Any:
    name, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
    return resolver.attribute(name, resolver.resolve(attribute))


def _find_in_map(resolver: StackResolver, argument: Any) -> Any:
    table, first, second = (resolver.resolve(part) for part in argument)
    return resolver.stack.template["Mappings"][table][first][second]


def _if(resolver: StackResolver, argument: Any) -> Any:
    condition, then, otherwise = argument
    return resolver.resolve(then if resolver.condition(condition) else otherwise)


def _get_stack_output(resolver: StackResolver, argument: Any) -> Any:
    argument = resolver.resolve(argument)
    return resolver.environment.stack_output(argument["StackName"], argument["OutputName"])


INTRINSICS: Mapping[str, Callable[[StackResolver, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::GetAtt": _get_att,
    "Fn::Join": lambda r, a: str(r.resolve(a[0])).join(str(p) for p in r.resolve(a[1])),
    "Fn::Sub": lambda r, a: r.sub(a),
    "Fn::Select": lambda r, a: r.resolve(a[1])[int(r.resolve(a[0]))],
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(r.resolve(a[0])),
    "Fn::GetAZs": lambda r, _: [f"{r.environment.region}{letter}" for letter in "abc"],
    "Fn::FindInMap": _find_in_map,
    "Fn::ImportValue": lambda r, a: r.environment.export(r.resolve(a)),
    "Fn::GetStackOutput": _get_stack_output,
    "Fn::If": _if,
    "Fn::Equals": lambda r, a: r.resolve(a[0]) == r.resolve(a[1]),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(item) for item in a),
    "Fn::Or": lambda r, a: any(r.resolve(item) for item in a),
    "Fn::Contains": lambda r, a: r.resolve(a[1]) in r.resolve(a[0]),
    "Condition": lambda r, a: r.condition(a),
    "Fn::Base64": lambda r, a: r.resolve(a),
}
