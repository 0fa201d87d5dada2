"""Model promotion: an approved model package becomes the one the Serving stack deploys.

EventBridge delivers "SageMaker Model Package State Change" events. The Serving CloudFormation stack
owns the SageMaker endpoint; its promoted values (the model package ARN, the monitors' baselines, the
explainability config) are stack parameters of type `AWS::SSM::Parameter::Value<String>` whose
defaults name SSM parameters under `STATE_PREFIX`. SSM holds the truth: promoting a version writes
its values there (the model package ARN last), then updates the stack with the previous template and
previous values, so CloudFormation resolves the new ones, stays the single owner of the endpoint and
rolls it back by itself if the new model fails to deploy; a pipeline deployment resolves the same
values. SSM refuses empty strings: `UNSET` ("none") means "not set" (no model, monitor off).

Every invocation ends in one structured JSON log line and returns a dict with at least `action`
(`ignored`, `rejected`, `unchanged`, `updated`, `restored`) and `reason`. Events that a retry cannot
fix are ignored; AWS errors and a busy stack raise, so Lambda retries the event and finally sends it
to the dead-letter queue. To roll back by hand, write `previous_model_package_arn` (and the previous
baselines) back into SSM and update the stack with previous values.

The same update sets the monitors' baselines: `BASELINE_PARAMETERS` maps stack parameters to paths
in the package's description (e.g. `DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri`), so
Model Monitor switches to the new version's baselines with the model, never later.

With `EXPLAINABILITY` set (a JSON object, see EXPLAINABILITY_KEYS), the update also carries the
model-explainability monitor's analysis config: the version's template
(`DriftCheckBaselines.Explainability.ConfigFile.S3Uri`) with `predictor` completed for the model the
stack deploys is written, SSE-KMS, to `s3://{bucket}/{prefix}/{version}/analysis_config.json`, and
the state of the stack parameter `parameter` gets that URI; `none` for a version without a template.

One promotion or restore at a time, without reserved concurrency (which an account with a
concurrency limit of 10 cannot grant): from reading the stack to the end of the update call the
invocation holds the `lock#promotion` item of the `LOCK_TABLE` DynamoDB table, taken by a
conditional write that succeeds only when the item is absent or its lease has passed, and deleted by
its holder; the lease ends with the invocation. An invocation that finds the lock held raises
StackBusy, so Lambda retries the event: two approvals never interleave their writes.

"CloudFormation Stack Status Change" events of this stack restore the state after a failed update:
on UPDATE_ROLLBACK_COMPLETE, each SSM-typed parameter's value in SSM is set back to the value the
rolled-back stack resolved (what it serves), so the next deployment does not bring the failed
version again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger("promotion")
LOGGER.setLevel(logging.INFO)

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
STACK_SOURCE = "aws.cloudformation"
STACK_DETAIL_TYPE = "CloudFormation Stack Status Change"
ROLLED_BACK = "UPDATE_ROLLBACK_COMPLETE"
# A stack ID; the group is the stack's name.
STACK_ID = re.compile(r"arn:aws[a-z\-]*:cloudformation:[a-z0-9\-]+:[0-9]{12}:stack/([^/]+)/\S+")
# The SSM value of a promoted parameter that is not set (SSM refuses empty strings).
UNSET = "none"
REQUIRED_DETAIL = ("ModelPackageGroupName", "ModelPackageArn", "ModelApprovalStatus")
# The ModelPackageArn pattern of the SageMaker API reference.
PACKAGE_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/\S{1,2048}")
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
NO_UPDATES = "No updates are to be performed"
ENVIRONMENT = {
    "stack_name": "STACK_NAME",
    "parameter_name": "PARAMETER_NAME",
    "model_package_group": "MODEL_PACKAGE_GROUP",
    "deploy_role_arn": "DEPLOY_ROLE_ARN",
    "alert_topic_arn": "ALERT_TOPIC_ARN",
    "state_prefix": "STATE_PREFIX",
    "lock_table": "LOCK_TABLE",
}
# The keys of the EXPLAINABILITY object, each a non-empty string.
EXPLAINABILITY_KEYS = ("parameter", "bucket", "prefix", "model_name_prefix", "instance_type", "kms_key_id")
EXPLAINABILITY_TEMPLATE = "DriftCheckBaselines.Explainability.ConfigFile.S3Uri"
S3_URI = re.compile(r"s3://([^/]+)/(.+)")
LOCK_KEY = "lock#promotion"
# The lock's lease when the invocation's remaining time is unknown: Lambda's longest timeout.
DEFAULT_LEASE = timedelta(minutes=15)


class PromotionError(Exception):
    """The promotion cannot go on; the invocation fails."""


class ConfigurationError(PromotionError):
    """The function is deployed without the settings it needs."""


class StackBusy(PromotionError):
    """The Serving stack is being changed; raised so that Lambda retries the event later."""


class MalformedEvent(ValueError):
    """The event is not a model package or stack state change this function can act on."""


@dataclass(frozen=True)
class Settings:
    """What the function promotes, and where; see ENVIRONMENT for the variable of each field."""

    stack_name: str
    parameter_name: str
    model_package_group: str
    deploy_role_arn: str
    alert_topic_arn: str
    # The SSM parameter of each promoted stack parameter is this prefix + its name, e.g. /mlp-dev/serving/.
    state_prefix: str
    # Stack parameter -> dotted path in DescribeModelPackage's answer (optional, BASELINE_PARAMETERS).
    baseline_parameters: Mapping[str, str] = field(default_factory=dict)
    # EXPLAINABILITY_KEYS -> value (optional, EXPLAINABILITY); None: no explainability config is written.
    explainability: Mapping[str, str] | None = None
    # The account of the promoted registry (optional, MODEL_PACKAGE_ACCOUNT); packages of others are ignored.
    model_package_account: str = ""
    # The DynamoDB table holding the promotion lock (LOCK_TABLE); needed to promote or restore.
    lock_table: str = ""
    # How long the lock may be held: the invocation's remaining time (the handler sets it).
    lock_lease: timedelta = DEFAULT_LEASE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        missing = [variable for variable in ENVIRONMENT.values() if not environ.get(variable)]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        try:
            baselines = json.loads(environ.get("BASELINE_PARAMETERS") or "{}")
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"BASELINE_PARAMETERS is not JSON: {error}") from None
        if not isinstance(baselines, dict) or not all(isinstance(v, str) for v in baselines.values()):
            raise ConfigurationError("BASELINE_PARAMETERS must map parameter names to dotted paths")
        return cls(
            **{field: environ[variable] for field, variable in ENVIRONMENT.items()},
            baseline_parameters=baselines,
            explainability=_explainability(environ.get("EXPLAINABILITY") or ""),
            model_package_account=environ.get("MODEL_PACKAGE_ACCOUNT") or "",
            lock_lease=DEFAULT_LEASE,
        )


def _explainability(text: str) -> dict[str, str] | None:
    """The EXPLAINABILITY variable's settings, or None when it is unset or empty."""
    if not text.strip():
        return None
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"EXPLAINABILITY is not JSON: {error}") from None
    if not isinstance(settings, dict):
        raise ConfigurationError(f"EXPLAINABILITY must be a JSON object with the keys {', '.join(EXPLAINABILITY_KEYS)}")
    missing = [key for key in EXPLAINABILITY_KEYS if key not in settings]
    if missing:
        raise ConfigurationError(f"EXPLAINABILITY is missing {', '.join(missing)}")
    invalid = [key for key in EXPLAINABILITY_KEYS if not isinstance(settings[key], str) or not settings[key]]
    if invalid:
        raise ConfigurationError(f"EXPLAINABILITY values must be non-empty strings: {', '.join(invalid)}")
    return {key: settings[key] for key in EXPLAINABILITY_KEYS}


def value_at(package: Mapping[str, Any], path: str) -> str:
    """The string at a dotted path in the package description, or "" where it has none."""
    value: Any = package
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else ""


def baseline_values(package: Mapping[str, Any], paths: Mapping[str, str]) -> dict[str, str]:
    """Each parameter's value at its dotted path in the package description, or UNSET where it has none."""
    return {parameter: value_at(package, path) or UNSET for parameter, path in paths.items()}


@dataclass(frozen=True)
class PackageChange:
    """The fields of a model package state change that promotion uses."""

    event_id: str
    group: str
    arn: str
    status: str
    version: str


@dataclass(frozen=True)
class StackChange:
    """The fields of a CloudFormation stack status change that the restore uses."""

    event_id: str
    stack_id: str
    stack_name: str
    status: str


def _detail(event: Any, source: str, detail_type: str) -> dict[str, Any]:
    """The detail of an EventBridge event of `source` and `detail_type`; MalformedEvent names what is wrong."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"event is a {type(event).__name__}, not an object")
    for key, expected in (("source", source), ("detail-type", detail_type)):
        if event.get(key) != expected:
            raise MalformedEvent(f"{key} is {event.get(key)!r}, expected {expected!r}")
    if not isinstance(event.get("id"), str) or not event["id"]:
        raise MalformedEvent("event has no id")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedEvent("event has no detail object")
    return detail


def parse_event(event: Any) -> PackageChange:
    """The model package state change in an EventBridge event; MalformedEvent names what is wrong."""
    detail = _detail(event, SOURCE, DETAIL_TYPE)
    missing = [key for key in REQUIRED_DETAIL if not isinstance(detail.get(key), str) or not detail[key]]
    if missing:
        raise MalformedEvent(f"detail is missing {', '.join(missing)}")
    arn = detail["ModelPackageArn"]
    if not PACKAGE_ARN.fullmatch(arn):
        raise MalformedEvent(f"ModelPackageArn {arn!r} is not a SageMaker model package ARN")
    version = str(detail.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1])
    return PackageChange(event["id"], detail["ModelPackageGroupName"], arn, detail["ModelApprovalStatus"], version)


def parse_stack_event(event: Any) -> StackChange:
    """The CloudFormation stack status change in an EventBridge event; MalformedEvent names what is wrong."""
    detail = _detail(event, STACK_SOURCE, STACK_DETAIL_TYPE)
    stack_id = detail.get("stack-id")
    if not isinstance(stack_id, str) or not stack_id:
        raise MalformedEvent("detail is missing stack-id")
    match = STACK_ID.fullmatch(stack_id)
    if not match:
        raise MalformedEvent(f"stack-id {stack_id!r} is not a CloudFormation stack ID")
    details = detail.get("status-details")
    status = details.get("status") if isinstance(details, dict) else None
    if not isinstance(status, str) or not status:
        raise MalformedEvent("detail is missing status-details.status")
    return StackChange(event["id"], stack_id, match[1], status)


def client_request_token(event_id: str) -> str:
    """An idempotency token for update_stack: [a-zA-Z0-9][-a-zA-Z0-9]*, at most 128 characters."""
    return ("promote-" + re.sub(r"[^a-zA-Z0-9-]", "-", event_id))[:128]


def explainability_config(template: Mapping[str, Any], model_name: str, instance_type: str) -> dict[str, Any]:
    """The monitor's analysis config: the template with `predictor` naming the model it explains."""
    predictor = template.get("predictor", {})
    if not isinstance(predictor, Mapping):
        raise ValueError(f"predictor is a {type(predictor).__name__}, not an object")
    predictor = {**predictor, "model_name": model_name, "instance_type": instance_type, "initial_instance_count": 1}
    return {**template, "predictor": predictor}


def write_explainability_config(s3: Any, template_uri: str, version: str, explainability: Mapping[str, str]) -> str:
    """Write the analysis config of `version` made from the template at `template_uri`; returns its URI."""
    match = S3_URI.fullmatch(template_uri)
    if not match:
        raise PromotionError(f"the package's explainability config {template_uri!r} is not an s3://bucket/key URI")
    body = s3.get_object(Bucket=match[1], Key=match[2])["Body"].read()
    try:
        template = json.loads(body)
        if not isinstance(template, dict):
            raise ValueError(f"it is a JSON {type(template).__name__}, not an object")
        model_name = explainability["model_name_prefix"] + version
        config = explainability_config(template, model_name, explainability["instance_type"])
    except ValueError as problem:  # JSONDecodeError and UnicodeDecodeError too
        raise PromotionError(f"explainability config template {template_uri} is unusable: {problem}") from None
    key = f"{explainability['prefix'].rstrip('/')}/{version}/analysis_config.json"
    s3.put_object(
        Bucket=explainability["bucket"],
        Key=key,
        Body=json.dumps(config, indent=2, sort_keys=True).encode(),
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=explainability["kms_key_id"],
    )
    return f"s3://{explainability['bucket']}/{key}"


def promote(
    event: Any,
    *,
    cloudformation: Any,
    sagemaker: Any,
    sns: Any,
    settings: Settings,
    s3: Any = None,
    ssm: Any = None,
    dynamodb: Any = None,
) -> dict[str, Any]:
    """Act on one model package or stack state change; see the module docstring for the outcomes.

    Events of `aws.cloudformation` are stack status changes (the restore); any other is taken for a
    model package state change, so an unknown source is ignored as a malformed one."""
    if settings.explainability is not None and s3 is None:
        raise ConfigurationError("EXPLAINABILITY is set but promote() has no S3 client to write the config with")
    lock = _Lock(dynamodb, settings)
    if isinstance(event, dict) and event.get("source") == STACK_SOURCE:
        return _on_stack_change(event, cloudformation, ssm, settings, lock)
    try:
        change = parse_event(event)
    except MalformedEvent as problem:
        detail = event.get("detail") if isinstance(event, dict) else None
        arn = detail.get("ModelPackageArn") if isinstance(detail, dict) else None
        event_id = event.get("id") if isinstance(event, dict) else None
        return _outcome("ignored", f"malformed event: {problem}", event_id=event_id, model_package_arn=arn)
    # Filled in as the promotion learns more, so that an error line carries everything known.
    fields: dict[str, Any] = {
        "event_id": change.event_id,
        "model_package_arn": change.arn,
        "model_package_version": change.version,
        "stack_name": settings.stack_name,
    }
    if change.group != settings.model_package_group:
        reason = f"model package group {change.group!r} is not {settings.model_package_group!r}, the promoted group"
        return _outcome("ignored", reason, **fields)
    account = change.arn.split(":")[4]
    if settings.model_package_account and account != settings.model_package_account:
        # A group of the same name in another account (e.g. this one, when versions come from a source).
        reason = f"model package account {account} is not {settings.model_package_account}, the promoted registry's"
        return _outcome("ignored", reason, **fields)
    with _failures_logged(fields):
        if change.status == "Rejected":
            return _alert_rejection(change, cloudformation, sns, settings, fields)
        if change.status != "Approved":
            return _outcome("ignored", f"approval status {change.status!r} is neither Approved nor Rejected", **fields)
        with lock:
            return _promote_approved(change, cloudformation, sagemaker, s3, ssm, sns, settings, fields)


class _Lock:
    """The promotion lock (see the module docstring), held in a `with` block."""

    def __init__(self, dynamodb: Any, settings: Settings) -> None:
        self.dynamodb, self.table, self.stack = dynamodb, settings.lock_table, settings.stack_name
        self.lease = settings.lock_lease
        self.key = {"pk": {"S": LOCK_KEY}}
        self.token = {"S": uuid.uuid4().hex}  # this invocation, as the lock's holder

    def __enter__(self) -> None:
        if self.dynamodb is None or not self.table:
            raise ConfigurationError("promote() needs LOCK_TABLE and a DynamoDB client to hold the promotion lock")
        now = datetime.now(UTC)
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    **self.key,
                    "token": self.token,
                    "lease_until": {"N": str(int((now + self.lease).timestamp()) + 1)},
                    "updated_at": {"S": now.isoformat()},
                },
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise StackBusy(f"another promotion or restore of {self.stack} holds the lock; retry later") from None

    def __exit__(self, *_: object) -> None:
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key=self.key,
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": self.token},
            )
        except ClientError as error:  # the lease passed and another invocation holds it now
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise


@contextmanager
def _failures_logged(fields: dict[str, Any]) -> Iterator[None]:
    """A busy stack and errors are logged with `fields`, then raised for a retry."""
    try:
        yield
    except StackBusy as busy:
        _log(logging.WARNING, {"action": "busy", "reason": str(busy), **fields})
        raise
    except (PromotionError, ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        _log(logging.ERROR, {"action": "failed", "reason": str(error), "error_code": code, **fields})
        raise


def _promote_approved(
    change: PackageChange,
    cloudformation: Any,
    sagemaker: Any,
    s3: Any,
    ssm: Any,
    sns: Any,
    settings: Settings,
    fields: dict[str, Any],
) -> dict[str, Any]:
    _require_ssm(ssm)
    package = sagemaker.describe_model_package(ModelPackageName=change.arn)
    status = package["ModelApprovalStatus"]
    if status != "Approved":
        return _outcome("ignored", f"model package is {status} now; its approval was reverted", **fields)
    stack, current = _serving_stack(cloudformation, settings)
    fields["previous_model_package_arn"] = current
    package_state = settings.state_prefix + settings.parameter_name
    # Both: SSM alone may hold it after a failed update, the stack alone after SSM was changed by hand.
    if current == change.arn and state_value(ssm, package_state) == change.arn:
        return _outcome("unchanged", "the stack already serves this model package (duplicate event)", **fields)
    if stack["StackStatus"].endswith("_IN_PROGRESS"):
        raise StackBusy(f"stack {settings.stack_name} is {stack['StackStatus']}; retry later")
    existing = {p["ParameterKey"] for p in stack.get("Parameters", [])}
    values = {settings.parameter_name: change.arn}
    baselines = baseline_values(package, settings.baseline_parameters)
    values.update({name: value for name, value in baselines.items() if name in existing})
    fields["baselines"] = baselines
    explainability = settings.explainability
    if explainability is not None and explainability["parameter"] in existing:
        template_uri = fields["explainability_template"] = value_at(package, EXPLAINABILITY_TEMPLATE)
        # Without a template the config is unset, so the monitor is off for this version, not stale.
        uri = write_explainability_config(s3, template_uri, change.version, explainability) if template_uri else UNSET
        values[explainability["parameter"]] = fields["explainability_config"] = uri
    state = {settings.state_prefix + name: value for name, value in values.items()}
    fields["state_parameters"] = state
    write_state(ssm, state, last=package_state)
    try:
        cloudformation.update_stack(
            StackName=settings.stack_name,
            UsePreviousTemplate=True,
            # CloudFormation re-resolves an SSM-typed parameter's previous value (the SSM name) on update.
            Parameters=[{"ParameterKey": name, "UsePreviousValue": True} for name in sorted(existing)],
            Capabilities=CAPABILITIES,
            RoleARN=settings.deploy_role_arn,
            ClientRequestToken=client_request_token(change.event_id),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError" and NO_UPDATES in str(error):
            return _outcome("unchanged", f"CloudFormation: {NO_UPDATES}", **fields)
        raise
    _alert_missing_baselines(change, sns, settings, [name for name in sorted(existing) if values.get(name) == UNSET])
    reason = f"stack change started; write {package_state}={current!r} back and update the stack to roll back"
    return _outcome("updated", reason, **fields)


def _alert_missing_baselines(change: PackageChange, sns: Any, settings: Settings, missing: list[str]) -> None:
    """A version registered without a monitor's baseline switches that monitor off: the alert topic hears of it once,
    when the version is promoted (a duplicate event returns before this point)."""
    if not missing:
        return
    lines = [
        f"Model package {change.arn} (group {change.group}, version {change.version}) is being promoted "
        f"without these baselines: {', '.join(missing)}.",
        "The monitors that judge against them are off while this version serves.",
        f"Event: {change.event_id}.",
    ]
    subject = f"Model package {change.group} version {change.version}: monitors off without baselines"[:100]
    sns.publish(TopicArn=settings.alert_topic_arn, Subject=subject, Message="\n".join(lines))


def _alert_rejection(
    change: PackageChange, cloudformation: Any, sns: Any, settings: Settings, fields: dict[str, Any]
) -> dict[str, Any]:
    _, current = _serving_stack(cloudformation, settings)
    fields["previous_model_package_arn"] = current
    serving = current if current and current != UNSET else "no model yet"
    lines = [
        f"Model package {change.arn} (group {change.group}, version {change.version}) was rejected.",
        f"Stack {settings.stack_name} keeps serving: {serving}.",
        f"Event: {change.event_id}.",
    ]
    if current == change.arn:
        lines.append("WARNING: the rejected package is the one serving now; approve another version to replace it.")
    subject = f"Model package {change.group} version {change.version} rejected"[:100]
    sns.publish(TopicArn=settings.alert_topic_arn, Subject=subject, Message="\n".join(lines))
    return _outcome("rejected", f"version {change.version} rejected; still serving {serving}", **fields)


def _on_stack_change(
    event: dict[str, Any], cloudformation: Any, ssm: Any, settings: Settings, lock: _Lock
) -> dict[str, Any]:
    try:
        change = parse_stack_event(event)
    except MalformedEvent as problem:
        detail = event.get("detail")
        stack_id = detail.get("stack-id") if isinstance(detail, dict) else None
        return _outcome("ignored", f"malformed event: {problem}", event_id=event.get("id"), stack_id=stack_id)
    fields: dict[str, Any] = {
        "event_id": change.event_id,
        "stack_id": change.stack_id,
        "stack_status": change.status,
        "stack_name": settings.stack_name,
    }
    if change.stack_name != settings.stack_name:
        return _outcome("ignored", f"stack {change.stack_name!r} is not {settings.stack_name!r}", **fields)
    if change.status != ROLLED_BACK:
        return _outcome("ignored", f"stack status {change.status} is not {ROLLED_BACK}", **fields)
    with _failures_logged(fields), lock:
        return _restore_state(change, cloudformation, ssm, settings, fields)


def _restore_state(
    change: StackChange, cloudformation: Any, ssm: Any, settings: Settings, fields: dict[str, Any]
) -> dict[str, Any]:
    """Write back into SSM what the rolled-back stack resolved, where SSM holds something else.

    The stack need not be at rest: an operation started since the rollback resolved SSM as it is (the
    promotion writes nothing while the stack is busy), so writing back what it resolved changes nothing."""
    _require_ssm(ssm)
    stack = cloudformation.describe_stacks(StackName=settings.stack_name)["Stacks"][0]
    if stack.get("StackId") != change.stack_id:
        reason = f"stack {change.stack_id} is not the current {settings.stack_name} ({stack.get('StackId')})"
        return _outcome("ignored", reason, **fields)
    served = {
        p["ParameterValue"]: p["ResolvedValue"]
        for p in stack.get("Parameters", [])
        if p.get("ParameterValue", "").startswith(settings.state_prefix) and "ResolvedValue" in p
    }
    state = {name: value for name, value in served.items() if state_value(ssm, name) != value}
    fields["state_parameters"] = state
    if not state:
        return _outcome("unchanged", "SSM already holds what the rolled-back stack serves", **fields)
    write_state(ssm, state, last=settings.state_prefix + settings.parameter_name)
    return _outcome("restored", "SSM holds what the rolled-back stack serves again", **fields)


def state_value(ssm: Any, name: str) -> str | None:
    """The value of the SSM parameter `name`, or None when there is none."""
    try:
        value: str = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise
    return value


def write_state(ssm: Any, state: Mapping[str, str], *, last: str) -> None:
    """Write SSM name -> value by name, `last` (the model package ARN) last: a write that stops halfway
    never points the endpoint at a version whose other values are not written yet."""
    for name in sorted(state, key=lambda name: (name == last, name)):
        ssm.put_parameter(Name=name, Value=state[name], Type="String", Overwrite=True)


def _require_ssm(ssm: Any) -> None:
    if ssm is None:
        raise ConfigurationError("promote() has no SSM client to read and write the promoted state with")


def _serving_stack(cloudformation: Any, settings: Settings) -> tuple[dict[str, Any], str]:
    """The Serving stack's description and the current value of the promoted parameter.

    The current value is what the stack resolved (ResolvedValue) for an SSM-typed parameter."""
    stack = cloudformation.describe_stacks(StackName=settings.stack_name)["Stacks"][0]
    for parameter in stack.get("Parameters", []):
        if parameter["ParameterKey"] == settings.parameter_name:
            return stack, parameter.get("ResolvedValue", parameter.get("ParameterValue", ""))
    raise PromotionError(f"stack {settings.stack_name} has no parameter {settings.parameter_name}")


def _outcome(action: str, reason: str, **fields: Any) -> dict[str, Any]:
    result = {"action": action, "reason": reason, **fields}
    _log(logging.INFO, result)
    return result


def _log(level: int, record: dict[str, Any]) -> None:
    LOGGER.log(level, json.dumps(record, default=str, sort_keys=True))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: settings from the environment, clients from the execution role."""
    settings = Settings.from_env()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        settings = dataclasses.replace(settings, lock_lease=timedelta(milliseconds=remaining()))
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return promote(
        event,
        cloudformation=boto3.client("cloudformation", config=config),
        sagemaker=boto3.client("sagemaker", config=config),
        sns=boto3.client("sns", config=config),
        s3=boto3.client("s3", config=config),
        ssm=boto3.client("ssm", config=config),
        dynamodb=boto3.client("dynamodb", config=config),
        settings=settings,
    )
