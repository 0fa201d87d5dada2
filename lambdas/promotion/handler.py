"""Model promotion: an approved model package becomes the one the Serving stack deploys.

EventBridge delivers "SageMaker Model Package State Change" events. The Serving CloudFormation stack
owns the SageMaker endpoint and takes the model package ARN as a stack parameter; promoting a model
means updating that one parameter with the previous template, so CloudFormation stays the single
owner of the endpoint (and rolls it back by itself if the new model fails to deploy).

Every invocation ends in one structured JSON log line and returns a dict with at least `action`
(`ignored`, `rejected`, `unchanged`, `updated`) and `reason`. Events that a retry cannot fix are
ignored; AWS errors and a busy stack raise, so Lambda retries the event and finally sends it to
the dead-letter queue. To roll back by hand, set the parameter to `previous_model_package_arn`.

The same update sets the monitors' baselines: `BASELINE_PARAMETERS` maps stack parameters to paths
in the package's description (e.g. `DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri`), so
Model Monitor switches to the new version's baselines with the model, never later.

With `EXPLAINABILITY` set (a JSON object, see EXPLAINABILITY_KEYS), the update also carries the
model-explainability monitor's analysis config: the version's template
(`DriftCheckBaselines.Explainability.ConfigFile.S3Uri`) with `predictor` completed for the model the
stack deploys is written, SSE-KMS, to `s3://{bucket}/{prefix}/{version}/analysis_config.json`, and
the stack parameter `parameter` gets that URI; "" for a version without a template (monitor off).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger("promotion")
LOGGER.setLevel(logging.INFO)

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
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
}
# The keys of the EXPLAINABILITY object, each a non-empty string.
EXPLAINABILITY_KEYS = ("parameter", "bucket", "prefix", "model_name_prefix", "instance_type", "kms_key_id")
EXPLAINABILITY_TEMPLATE = "DriftCheckBaselines.Explainability.ConfigFile.S3Uri"
S3_URI = re.compile(r"s3://([^/]+)/(.+)")


class PromotionError(Exception):
    """The promotion cannot go on; the invocation fails."""


class ConfigurationError(PromotionError):
    """The function is deployed without the settings it needs."""


class StackBusy(PromotionError):
    """The Serving stack is being changed; raised so that Lambda retries the event later."""


class MalformedEvent(ValueError):
    """The event is not a model package state change this function can act on."""


@dataclass(frozen=True)
class Settings:
    """What the function promotes, and where; see ENVIRONMENT for the variable of each field."""

    stack_name: str
    parameter_name: str
    model_package_group: str
    deploy_role_arn: str
    alert_topic_arn: str
    # Stack parameter -> dotted path in DescribeModelPackage's answer (optional, BASELINE_PARAMETERS).
    baseline_parameters: Mapping[str, str] = field(default_factory=dict)
    # EXPLAINABILITY_KEYS -> value (optional, EXPLAINABILITY); None: no explainability config is written.
    explainability: Mapping[str, str] | None = None
    # The account of the promoted registry (optional, MODEL_PACKAGE_ACCOUNT); packages of others are ignored.
    model_package_account: str = ""

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
    """Each parameter's value at its dotted path in the package description, or "" where it has none."""
    return {parameter: value_at(package, path) for parameter, path in paths.items()}


@dataclass(frozen=True)
class PackageChange:
    """The fields of a model package state change that promotion uses."""

    event_id: str
    group: str
    arn: str
    status: str
    version: str


def parse_event(event: Any) -> PackageChange:
    """The model package state change in an EventBridge event; MalformedEvent names what is wrong."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"event is a {type(event).__name__}, not an object")
    for key, expected in (("source", SOURCE), ("detail-type", DETAIL_TYPE)):
        if event.get(key) != expected:
            raise MalformedEvent(f"{key} is {event.get(key)!r}, expected {expected!r}")
    if not isinstance(event.get("id"), str) or not event["id"]:
        raise MalformedEvent("event has no id")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedEvent("event has no detail object")
    missing = [key for key in REQUIRED_DETAIL if not isinstance(detail.get(key), str) or not detail[key]]
    if missing:
        raise MalformedEvent(f"detail is missing {', '.join(missing)}")
    arn = detail["ModelPackageArn"]
    if not PACKAGE_ARN.fullmatch(arn):
        raise MalformedEvent(f"ModelPackageArn {arn!r} is not a SageMaker model package ARN")
    version = str(detail.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1])
    return PackageChange(event["id"], detail["ModelPackageGroupName"], arn, detail["ModelApprovalStatus"], version)


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
    event: Any, *, cloudformation: Any, sagemaker: Any, sns: Any, settings: Settings, s3: Any = None
) -> dict[str, Any]:
    """Act on one model package state change; see the module docstring for the outcomes."""
    if settings.explainability is not None and s3 is None:
        raise ConfigurationError("EXPLAINABILITY is set but promote() has no S3 client to write the config with")
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
    try:
        if change.status == "Rejected":
            return _alert_rejection(change, cloudformation, sns, settings, fields)
        if change.status != "Approved":
            return _outcome("ignored", f"approval status {change.status!r} is neither Approved nor Rejected", **fields)
        return _promote_approved(change, cloudformation, sagemaker, s3, settings, fields)
    except StackBusy as busy:
        _log(logging.WARNING, {"action": "busy", "reason": str(busy), **fields})
        raise
    except (PromotionError, ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        _log(logging.ERROR, {"action": "failed", "reason": str(error), "error_code": code, **fields})
        raise


def _promote_approved(
    change: PackageChange, cloudformation: Any, sagemaker: Any, s3: Any, settings: Settings, fields: dict[str, Any]
) -> dict[str, Any]:
    package = sagemaker.describe_model_package(ModelPackageName=change.arn)
    status = package["ModelApprovalStatus"]
    if status != "Approved":
        return _outcome("ignored", f"model package is {status} now; its approval was reverted", **fields)
    stack, current = _serving_stack(cloudformation, settings)
    fields["previous_model_package_arn"] = current
    if current == change.arn:
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
        # Without a template the parameter is cleared, so the monitor is off for this version, not stale.
        uri = write_explainability_config(s3, template_uri, change.version, explainability) if template_uri else ""
        values[explainability["parameter"]] = fields["explainability_config"] = uri
    parameters = [{"ParameterKey": name, "ParameterValue": value} for name, value in values.items()] + [
        {"ParameterKey": name, "UsePreviousValue": True} for name in sorted(existing) if name not in values
    ]
    try:
        cloudformation.update_stack(
            StackName=settings.stack_name,
            UsePreviousTemplate=True,
            Parameters=parameters,
            Capabilities=CAPABILITIES,
            RoleARN=settings.deploy_role_arn,
            ClientRequestToken=client_request_token(change.event_id),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError" and NO_UPDATES in str(error):
            return _outcome("unchanged", f"CloudFormation: {NO_UPDATES}", **fields)
        raise
    reason = f"stack change started; restore {settings.parameter_name}={current!r} to roll back"
    return _outcome("updated", reason, **fields)


def _alert_rejection(
    change: PackageChange, cloudformation: Any, sns: Any, settings: Settings, fields: dict[str, Any]
) -> dict[str, Any]:
    _, current = _serving_stack(cloudformation, settings)
    fields["previous_model_package_arn"] = current
    serving = current or "no model yet"
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


def _serving_stack(cloudformation: Any, settings: Settings) -> tuple[dict[str, Any], str]:
    """The Serving stack's description and the current value of the promoted parameter."""
    stack = cloudformation.describe_stacks(StackName=settings.stack_name)["Stacks"][0]
    for parameter in stack.get("Parameters", []):
        if parameter["ParameterKey"] == settings.parameter_name:
            return stack, parameter.get("ParameterValue", "")
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
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return promote(
        event,
        cloudformation=boto3.client("cloudformation", config=config),
        sagemaker=boto3.client("sagemaker", config=config),
        sns=boto3.client("sns", config=config),
        s3=boto3.client("s3", config=config),
        settings=settings,
    )
