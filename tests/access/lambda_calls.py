"""From a handler's recorded API calls to the IAM requests they are, in a deployed environment's names.

A recorded call (service, operation, parameters) becomes the action and resource IAM checks, with
the context keys its parameters set (an upload's encryption). The test's names are mapped to the
deployed function's: each field of the handler's settings to the environment variable it comes
from (the handler's ENVIRONMENT), then the test environment's prefix to the deployed one's. What
AWS does on the caller's behalf is added: passing a stack's service role, resolving the stack's
SSM-typed parameters, the KMS calls behind an encrypted upload, topic or queue.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from infra.catalog import naming
from tests.access.calls import Call, Network
from tests.access.environments import Deployed
from tests.access.recorder import Recorded
from tests.access.resolver import PARTITION, Resource

TEST_ACCOUNT, TEST_REGION, TEST_PREFIX = "123456789012", "us-east-1", "mlp-dev"


@dataclass
class Raw:
    """An IAM request in the test's names."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # the API call's, for derived requests


def _arn(service: str, region: str, account: str, resource: str) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


def _parameter(name: str) -> str:
    return name if name.startswith("/") else "/" + name


def _s3(r: Recorded, account: str) -> list[Raw]:
    p, op = r.params, r.operation
    del account
    bucket = f"arn:{PARTITION}:s3:::{p['Bucket']}"
    if op in ("GetObject", "HeadObject"):
        return [Raw("s3:GetObject", f"{bucket}/{p['Key']}", params=p)]
    if op == "PutObject":
        context = {}
        if "ServerSideEncryption" in p:
            context["s3:x-amz-server-side-encryption"] = p["ServerSideEncryption"]
        if "SSEKMSKeyId" in p:
            context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = p["SSEKMSKeyId"]
        return [Raw("s3:PutObject", f"{bucket}/{p['Key']}", context, params=p)]
    if op in ("ListObjectsV2", "ListObjects"):
        return [Raw("s3:ListBucket", bucket, {"s3:prefix": p.get("Prefix", "")})]
    raise KeyError(op)


def _ssm(r: Recorded, account: str) -> list[Raw]:
    p, op = r.params, r.operation
    if op == "GetParameters":
        return [
            Raw("ssm:GetParameters", _arn("ssm", r.region, account, "parameter" + _parameter(n))) for n in p["Names"]
        ]
    if op == "GetParametersByPath":
        return [Raw("ssm:GetParametersByPath", _arn("ssm", r.region, account, "parameter" + _parameter(p["Path"])))]
    return [Raw(f"ssm:{op}", _arn("ssm", r.region, account, "parameter" + _parameter(p["Name"])), params=p)]


def _cloudformation(r: Recorded, account: str) -> list[Raw]:
    name = r.params["StackName"]
    stack = name if name.startswith("arn:") else _arn("cloudformation", r.region, account, f"stack/{name}/*")
    return [Raw(f"cloudformation:{r.operation}", stack, params=r.params)]


def _sagemaker(r: Recorded, account: str) -> list[Raw]:
    p = r.params
    if "ModelPackageName" in p:
        return [Raw(f"sagemaker:{r.operation}", p["ModelPackageName"])]
    if "PipelineName" in p:
        return [Raw(f"sagemaker:{r.operation}", _arn("sagemaker", r.region, account, f"pipeline/{p['PipelineName']}"))]
    if "PipelineExecutionArn" in p:
        return [Raw(f"sagemaker:{r.operation}", p["PipelineExecutionArn"])]
    raise KeyError(r.operation)


def _dynamodb(r: Recorded, account: str) -> list[Raw]:
    def table(name: str) -> str:
        return _arn("dynamodb", r.region, account, f"table/{name}")

    if r.operation in ("TransactWriteItems", "TransactGetItems"):
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        kinds["Get"] = "GetItem"
        found = []
        for item in r.params["TransactItems"]:
            ((kind, body),) = item.items()
            found.append(Raw(f"dynamodb:{kinds[kind]}", table(body["TableName"])))
        return found
    return [Raw(f"dynamodb:{r.operation}", table(r.params["TableName"]))]


def _sns(r: Recorded, account: str) -> list[Raw]:
    del account
    return [Raw(f"sns:{r.operation}", r.params["TopicArn"], params=r.params)]


def _cloudwatch(r: Recorded, account: str) -> list[Raw]:
    del account
    if r.operation == "PutMetricData":  # takes no resource; the namespace is its condition key
        return [Raw("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": r.params["Namespace"]})]
    raise KeyError(r.operation)


OPERATIONS: dict[str, Callable[[Recorded, str], list[Raw]]] = {
    "s3": _s3,
    "ssm": _ssm,
    "cloudformation": _cloudformation,
    "sagemaker": _sagemaker,
    "dynamodb": _dynamodb,
    "sns": _sns,
    "cloudwatch": _cloudwatch,
}


def requests_of(recorded: Recorded) -> list[Raw]:
    """The IAM requests of one recorded call, in the test's names; KeyError for an unmapped operation."""
    mapper = OPERATIONS.get(recorded.service)
    if mapper is None:
        raise KeyError(f"{recorded.service}:{recorded.operation}")
    return mapper(recorded, TEST_ACCOUNT)


# --- the test's names to the deployed function's --------------------------------------------------


def function_for(handler: str, deployed: Deployed) -> Resource | None:
    """The deployed Lambda function running lambdas/<handler>/, known by the variables its settings read."""
    variables = set(importlib.import_module(f"lambdas.{handler}.handler").ENVIRONMENT.values())
    for function in deployed.environment.resources("AWS::Lambda::Function"):
        environment = function.properties.get("Environment", {}).get("Variables", {})
        if variables <= set(environment):
            return function
    return None


def promotion_function(deployed: Deployed) -> Resource:
    """The deployed promotion function (the Serving stack's function that updates the stack)."""
    function = function_for("promotion", deployed)
    assert function is not None, f"{deployed.name} has no promotion function"
    return function


def substitutions(
    handler: str, settings: dict[str, Any], function: Resource, deployed: Deployed
) -> list[tuple[str, str]]:
    """(test value, deployed value) pairs, longest first: settings fields, account, region, prefix."""
    mapping = importlib.import_module(f"lambdas.{handler}.handler").ENVIRONMENT
    variables = function.properties["Environment"]["Variables"]
    pairs: dict[str, str] = {}
    for name, value in settings.items():
        deployed_value = variables.get(mapping.get(name, name.upper()))
        if deployed_value is None or value in (None, "", {}):
            continue
        value = _object_of(value)
        if isinstance(value, dict):
            decoded = json.loads(deployed_value) if isinstance(deployed_value, str) else deployed_value
            pairs.update({str(v): str(decoded[k]) for k, v in value.items() if k in decoded and isinstance(v, str)})
        elif isinstance(value, str):
            pairs[value] = str(deployed_value)
    env = deployed.environment
    pairs.update({TEST_ACCOUNT: env.account, TEST_REGION: env.region, TEST_PREFIX: deployed.config.prefix})
    return sorted(((k, v) for k, v in pairs.items() if k), key=lambda kv: -len(kv[0]))


def _object_of(value: Any) -> Any:
    """A setting holding a JSON object (a name per key, as STATE_PARAMETERS) as that object; others as they are."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _translate(value: Any, pairs: list[tuple[str, str]]) -> Any:
    """Each test name replaced by its deployed one in one pass (a replaced name is never replaced again)."""
    if isinstance(value, str):
        if not pairs:
            return value
        table = dict(pairs)
        pattern = re.compile("|".join(re.escape(old) for old, _ in pairs))
        return pattern.sub(lambda match: table[match.group(0)], value)
    if isinstance(value, list):
        return [_translate(v, pairs) for v in value]
    if isinstance(value, dict):
        return {k: _translate(v, pairs) for k, v in value.items()}
    return value


def deployed_calls(recorded: list[Recorded], handler: str, deployed: Deployed) -> tuple[list[Call], list[str]]:
    """The deployed function's calls for every recorded one (deduplicated), and the operations not mapped."""
    function = function_for(handler, deployed)
    if function is None:
        return [], []
    role = function.properties["Role"]
    subnets = tuple(function.properties.get("VpcConfig", {}).get("SubnetIds", []))
    network = Network(subnets) if subnets else None
    calls: dict[tuple[str, str, str, str], Call] = {}
    unmapped = []
    for record in recorded:
        if not _applies(record, handler, function):
            continue
        try:
            raws = requests_of(record)
        except KeyError as missing:
            unmapped.append(f"{record.function}: {missing} (in {record.test})")
            continue
        pairs = substitutions(handler, record.settings, function, deployed)
        registry = function.properties["Environment"]["Variables"].get("MODEL_PACKAGE_ACCOUNT")
        for raw in raws:
            if registry and ":model-package/" in raw.resource:  # the registry's account, not the test's
                raw.resource = raw.resource.replace(f":{TEST_ACCOUNT}:", f":{registry}:")
            translated = Raw(
                raw.action,
                _translate(raw.resource, pairs),
                _translate(raw.context, pairs),
                _translate(raw.params, pairs),
            )
            if registry and registry != deployed.environment.account:
                translated.resource = _registered_artifact(translated, registry, deployed)
            why = f"{handler} handler: {record.operation} (recorded in {record.test.split('::')[-1]})"
            for call in [_call(role, translated, why, network), *derived(translated, role, why, network, deployed)]:
                calls.setdefault((*call.key(), json.dumps(call.context, sort_keys=True)), call)
    return list(calls.values()), unmapped


def _registered_artifact(raw: Raw, registry: str, deployed: Deployed) -> str:
    """What the registry's pipeline registered (templates, baselines) lives in the registry's artifacts
    bucket under its pipeline's prefix: a read of it, serving another stage's registry, goes there."""
    key = raw.resource.split(":::", 1)[-1].split("/", 1)[-1]
    source = deployed.peers.get(registry)
    if raw.action != "s3:GetObject" or not key.startswith("pipelines/") or source is None:
        return raw.resource
    bucket = next(b for b in source.environment.resources("AWS::S3::Bucket") if "Artifacts" in b.logical_id)
    pipeline = naming.training_pipeline(deployed.config)  # the source's: a serving stage trains with its section
    rest = key.split("/", 2)[2] if key.count("/") >= 2 else ""
    return f"{bucket.arn}/pipelines/{pipeline}/{rest}"


# Settings a handler derives at run time, not from its environment (the lock's lease from the
# invocation's remaining time).
RUNTIME_SETTINGS = frozenset({"lock_lease"})


def _applies(record: Recorded, handler: str, function: Resource) -> bool:
    """A recording applies where the deployed function has every setting the test used (explainability...)."""
    mapping = importlib.import_module(f"lambdas.{handler}.handler").ENVIRONMENT
    variables = function.properties["Environment"]["Variables"]
    used = [
        name
        for name, value in record.settings.items()
        if value not in (None, "", {}, []) and name not in RUNTIME_SETTINGS
    ]
    return all(mapping.get(name, name.upper()) in variables for name in used)


def _call(role: str, raw: Raw, why: str, network: Network | None) -> Call:
    return Call(role, raw.action, raw.resource, why, context=dict(raw.context), network=network)


# --- what AWS does on the caller's behalf --------------------------------------------------------


def derived(raw: Raw, role: str, why: str, network: Network | None, deployed: Deployed) -> list[Call]:
    """Requests AWS makes with the caller's credentials while serving `raw`."""
    found: list[Call] = []
    if raw.action in ("cloudformation:UpdateStack", "cloudformation:CreateStack", "cloudformation:CreateChangeSet"):
        found += stack_operation_calls(raw, role, why, network, deployed)
    elif raw.action in ("s3:PutObject", "s3:GetObject"):
        found += _bucket_key_calls(raw, role, why, network, deployed)
    elif raw.action == "sns:Publish":
        found += _encrypted_target_calls(raw, role, why, network, deployed, "AWS::SNS::Topic", "sns")
    return found


def stack_operation_calls(raw: Raw, role: str, why: str, network: Network | None, deployed: Deployed) -> list[Call]:
    """CloudFormation passes the stack's service role and resolves its SSM-typed parameters as the caller."""
    found = []
    role_arn = raw.params.get("RoleARN")
    if role_arn:
        found.append(
            Call(
                role,
                "iam:PassRole",
                role_arn,
                f"{why}: passes the stack's service role",
                context={"iam:PassedToService": "cloudformation.amazonaws.com"},
                network=network,
            )
        )
    name = raw.resource.split(":stack/", 1)[1].split("/", 1)[0]
    stack = deployed.environment.stacks.get(name)
    if stack is None:
        return found
    given = {p["ParameterKey"]: p for p in raw.params.get("Parameters", [])}
    env = deployed.environment
    for key, parameter in stack.template.get("Parameters", {}).items():
        if not parameter["Type"].startswith("AWS::SSM::Parameter::"):
            continue
        ssm_name = given.get(key, {}).get("ParameterValue") or parameter.get("Default")
        arn = _arn("ssm", env.region, env.account, "parameter" + _parameter(ssm_name))
        found.append(
            Call(role, "ssm:GetParameters", arn, f"{why}: CloudFormation resolves {key} as the caller", network=network)
        )
    return found


def _bucket_key_calls(raw: Raw, role: str, why: str, network: Network | None, deployed: Deployed) -> list[Call]:
    bucket = raw.resource.split(":::", 1)[1].split("/", 1)[0]
    key = raw.context.get("s3:x-amz-server-side-encryption-aws-kms-key-id")
    if key is None:
        for resource in deployed.environment.resources("AWS::S3::Bucket"):
            if resource.name == bucket:
                rules = resource.properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
                default = rules[0].get("ServerSideEncryptionByDefault", {}) if rules else {}
                key = default.get("KMSMasterKeyID")
    if not key:
        return []
    action = "kms:GenerateDataKey" if raw.action == "s3:PutObject" else "kms:Decrypt"
    return [_via(role, action, _key_arn(key, deployed), "s3", why, network, deployed)]


def _encrypted_target_calls(
    raw: Raw, role: str, why: str, network: Network | None, deployed: Deployed, kind: str, service: str
) -> list[Call]:
    for resource in deployed.environment.resources(kind):
        if resource.arn == raw.resource and resource.properties.get("KmsMasterKeyId"):
            key = _key_arn(resource.properties["KmsMasterKeyId"], deployed)
            return [
                _via(role, action, key, service, why, network, deployed)
                for action in ("kms:GenerateDataKey", "kms:Decrypt")
            ]
    return []


def _via(role: str, action: str, key: str, service: str, why: str, network: Network | None, deployed: Deployed) -> Call:
    env = deployed.environment
    context = {"kms:ViaService": f"{service}.{env.region}.amazonaws.com", "kms:CallerAccount": env.account}
    del network  # the service calls KMS on the caller's behalf: no VPC endpoint on that path
    return Call(role, action, key, f"{why}: {service} uses the key on the caller's behalf", context=context)


def _key_arn(key: str, deployed: Deployed) -> str:
    if key.startswith("arn:"):
        return key
    env = deployed.environment
    return _arn("kms", env.region, env.account, f"key/{key}")
