"""Retraining trigger: starts the SageMaker training pipeline when a drift alarm, the schedule, enough
new raw data or a person asks for it, and not while it runs or shortly after it last started.

EventBridge rules deliver four kinds of events (TRIGGERS); the pipeline gets the cause as its
`TriggerReason` parameter: `drift:<alarm name>`, `schedule`, `new-data:<n> objects/<b> bytes` or
`manual:<reason>`. Before it starts the pipeline the function refuses to while an execution is
`Executing` or `Stopping`, or while the latest execution started less than COOLDOWN_MINUTES ago.

State lives in one DynamoDB table with a string partition key `pk` and TTL on `expires_at`:

- `event#<EventBridge event id>`: what happened to one event; `status` is `counted` (a new-data
  event added to the accumulator), `claimed` (a start is being attempted) or `started` (with
  `execution_arn`). Kept for RETENTION (7 days) through the TTL.
- `new-data#<RAW_BUCKET>/<RAW_PREFIX>`: the accumulator, numbers `objects` and `bytes` of raw
  data that arrived since the last start that new data caused.

Idempotency, per event id. An event is recorded only once its outcome is final: a start is
claimed (conditional write, status `claimed`) right before `start_pipeline_execution`, marked
`started` with the execution ARN after it, and the claim is withdrawn if the start fails with an
AWS error, which is raised so that Lambda retries the event and the retry can start. A new-data
event is recorded as `counted` in the same transaction that adds it to the accumulator (so a
redelivery never counts an object twice); its claim is the transition `counted -> claimed` in the
same transaction that takes the accumulated batch off the accumulator (a conditional subtraction
of the values read, so an object added meanwhile is kept, and of two concurrent starts for the
same batch only one wins); a failed start puts both back. Refusals are not recorded: a refused
event changed nothing, and the next trigger is evaluated afresh. An event whose record exists is
a `duplicate`, except a `counted` new-data event, which is evaluated again without counting it
again (the retry of a start that failed). Residual gap: if the process dies between the claim and
the end of `start_pipeline_execution` (a Lambda timeout), the claim stays and a retry reports
`duplicate` ("claimed ... never marked started"); the ClientRequestToken, derived from the event
id, makes a repeated start of the same event idempotent on the SageMaker side.

One start at a time, without reserved concurrency (which an account with a concurrency limit of
10 cannot grant): from the "is an execution running?" check to the end of the start, the
invocation holds the `lock#start` item, taken by a conditional write that succeeds only when the
item is absent or its lease has passed, and deleted (by its holder only) when the start is
decided. The lease ends with the invocation (its remaining time), so a holder that dies blocks
starts no longer than it could have run. An event that finds the lock held is refused like one
that finds an execution running.

Every invocation ends in one structured JSON log line on the `retraining` logger and returns a
dict with at least `action` (`ignored`, `duplicate`, `accumulated`, `refused`, `started`) and
`reason`. Malformed or foreign events are ignored without an AWS call; AWS errors are logged
(`action: failed`) and raised, so Lambda retries the event and finally hands it to the on-failure
destination. The accumulator and the table can be inspected and edited by hand; deleting an
`event#` item lets that event be processed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger("retraining")
LOGGER.setLevel(logging.INFO)

DRIFT, SCHEDULE, NEW_DATA, MANUAL = "drift", "schedule", "new-data", "manual"
# (source, detail-type) of each trigger; the manual trigger's source is MANUAL_SOURCE.
TRIGGERS = {
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): DRIFT,
    ("aws.events", "Scheduled Event"): SCHEDULE,
    ("aws.s3", "Object Created"): NEW_DATA,
}
MANUAL_DETAIL_TYPE = "Retraining Requested"
MANUAL_REASON_MAX = 100
TRIGGER_REASON_PARAMETER = "TriggerReason"
TRIGGER_REASON_MAX = 256
DESCRIPTION_MAX = 3072
EVENT_ID_MAX = 256
RUNNING = ("Executing", "Stopping")
# Executions looked at for "running" and "cool-down": one page, newest first.
RECENT_EXECUTIONS = 20
RETENTION = timedelta(days=7)
COUNTED, CLAIMED, STARTED = "counted", "claimed", "started"
REQUEST_PREFIX = "retrain-"
LOCK_KEY = "lock#start"
# The lock's lease when the invocation's remaining time is unknown: Lambda's longest timeout.
DEFAULT_LEASE = timedelta(minutes=15)
ENVIRONMENT = {
    "pipeline_name": "PIPELINE_NAME",
    "state_table": "STATE_TABLE",
    "cooldown_minutes": "COOLDOWN_MINUTES",
    "raw_bucket": "RAW_BUCKET",
    "raw_prefix": "RAW_PREFIX",
    "new_data_min_objects": "NEW_DATA_MIN_OBJECTS",
    "new_data_min_bytes": "NEW_DATA_MIN_BYTES",
    "manual_source": "MANUAL_SOURCE",
}
# Set, but may be empty: an empty RAW_PREFIX counts every object of RAW_BUCKET.
MAY_BE_EMPTY = ("RAW_PREFIX",)
NUMBERS = ("cooldown_minutes", "new_data_min_objects", "new_data_min_bytes")


class RetrainingError(Exception):
    """Retraining cannot go on; the invocation fails."""


class ConfigurationError(RetrainingError):
    """The function is deployed without the settings it needs."""


class MalformedEvent(ValueError):
    """The event does not have the shape of the trigger it claims to be."""


class NotATrigger(ValueError):
    """A well-formed event that asks for no retraining (an alarm back to OK, another bucket...)."""

    def __init__(self, reason: str, kind: str | None = None) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True)
class Settings:
    """What the function starts, and when; see ENVIRONMENT for the variable of each field."""

    pipeline_name: str
    state_table: str
    cooldown_minutes: int
    raw_bucket: str
    raw_prefix: str
    new_data_min_objects: int
    new_data_min_bytes: int
    manual_source: str

    def __post_init__(self) -> None:
        for name in NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{ENVIRONMENT[name]} is {value!r}, not a whole number >= 0")
        if not self.new_data_min_objects and not self.new_data_min_bytes:
            raise ConfigurationError("NEW_DATA_MIN_OBJECTS and NEW_DATA_MIN_BYTES are both 0; set at least one")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        missing = [
            variable
            for variable in ENVIRONMENT.values()
            if variable not in environ or (not environ[variable] and variable not in MAY_BE_EMPTY)
        ]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        values: dict[str, Any] = {name: environ[variable] for name, variable in ENVIRONMENT.items()}
        for name in NUMBERS:
            text = values[name].strip()
            if not re.fullmatch(r"[0-9]+", text):
                raise ConfigurationError(f"{ENVIRONMENT[name]} is {values[name]!r}, not a whole number >= 0")
            values[name] = int(text)
        return cls(**values)

    @property
    def accumulator_key(self) -> str:
        return f"new-data#{self.raw_bucket}/{self.raw_prefix}"

    def enough_data(self, objects: int, size: int) -> bool:
        """Whether the accumulated new data reaches a threshold (a threshold of 0 is not used)."""
        by_count = 0 < self.new_data_min_objects <= objects
        by_size = 0 < self.new_data_min_bytes <= size
        return by_count or by_size

    def thresholds(self) -> str:
        parts = [f"{self.new_data_min_objects} objects"] if self.new_data_min_objects else []
        parts += [f"{self.new_data_min_bytes} bytes"] if self.new_data_min_bytes else []
        return " or ".join(parts)


@dataclass(frozen=True)
class Trigger:
    """One retraining request: its kind, the event it came from, and the fields worth logging."""

    kind: str
    event_id: str
    reason: str = ""  # TriggerReason; for new data, set once the accumulated batch is known
    size: int = 0  # new data: the object's size in bytes
    details: dict[str, Any] = field(default_factory=dict)


def parse_event(event: Any, settings: Settings) -> Trigger:
    """The trigger in an EventBridge event; MalformedEvent or NotATrigger say why there is none."""
    if not isinstance(event, dict):
        raise MalformedEvent(f"event is a {type(event).__name__}, not an object")
    source, detail_type = event.get("source"), event.get("detail-type")
    kind = MANUAL if (source, detail_type) == (settings.manual_source, MANUAL_DETAIL_TYPE) else None
    kind = kind or TRIGGERS.get((str(source), str(detail_type)))
    if kind is None:
        raise NotATrigger(f"not a retraining trigger: source {source!r}, detail-type {detail_type!r}")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent(f"{kind} event has no id")
    if len(event_id) > EVENT_ID_MAX:
        raise MalformedEvent(f"{kind} event id is longer than {EVENT_ID_MAX} characters")
    detail = event.get("detail")
    if kind == SCHEDULE:
        resources = event.get("resources")
        rule = resources[0] if isinstance(resources, list) and resources and isinstance(resources[0], str) else None
        return Trigger(SCHEDULE, event_id, "schedule", details={"rule_arn": rule})
    if not isinstance(detail, dict):
        raise MalformedEvent(f"{kind} event has no detail object")
    if kind == DRIFT:
        return _drift(event_id, detail)
    if kind == NEW_DATA:
        return _new_data(event_id, detail, settings)
    return _manual(event_id, detail)


def _drift(event_id: str, detail: dict[str, Any]) -> Trigger:
    name, state = detail.get("alarmName"), detail.get("state")
    if not isinstance(name, str) or not name:
        raise MalformedEvent("drift event detail has no alarmName")
    if not isinstance(state, dict) or not isinstance(state.get("value"), str):
        raise MalformedEvent(f"drift event for alarm {name!r} has no state.value")
    alarm_reason = state.get("reason") if isinstance(state.get("reason"), str) else None
    details = {"alarm_name": name, "alarm_reason": alarm_reason}
    if state["value"] != "ALARM":
        raise NotATrigger(f"alarm {name!r} changed to {state['value']!r}, not 'ALARM'", DRIFT)
    return Trigger(DRIFT, event_id, f"drift:{name}", details=details)


def _new_data(event_id: str, detail: dict[str, Any], settings: Settings) -> Trigger:
    bucket, item = detail.get("bucket"), detail.get("object")
    name = bucket.get("name") if isinstance(bucket, dict) else None
    if not isinstance(name, str) or not name:
        raise MalformedEvent("new-data event detail has no bucket.name")
    if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
        raise MalformedEvent("new-data event detail has no object.key")
    key, size = item["key"], item.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise MalformedEvent(f"new-data event object.size is {size!r}, not a whole number >= 0")
    if name != settings.raw_bucket:
        raise NotATrigger(f"object s3://{name}/{key} is not in the raw bucket {settings.raw_bucket!r}", NEW_DATA)
    # S3 may deliver the key percent-encoded; either form under the prefix counts.
    if not (key.startswith(settings.raw_prefix) or unquote(key).startswith(settings.raw_prefix)):
        raise NotATrigger(f"object s3://{name}/{key} is not under the raw prefix {settings.raw_prefix!r}", NEW_DATA)
    return Trigger(NEW_DATA, event_id, size=size, details={"object": f"s3://{name}/{key}", "object_size": size})


def _manual(event_id: str, detail: dict[str, Any]) -> Trigger:
    reason = detail.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise MalformedEvent("manual event detail has no reason")
    reason = reason.strip()
    if len(reason) > MANUAL_REASON_MAX:
        raise MalformedEvent(f"manual event reason is {len(reason)} characters, more than {MANUAL_REASON_MAX}")
    return Trigger(MANUAL, event_id, f"manual:{reason}")


def client_request_token(event_id: str) -> str:
    """The ClientRequestToken of the event's start: 32-128 characters of [a-zA-Z0-9-].

    `retrain-<event id>` when that is valid (EventBridge ids are UUIDs), else a digest of the id."""
    token = REQUEST_PREFIX + event_id
    if re.fullmatch(r"[a-zA-Z0-9-]{32,128}", token):
        return token
    return REQUEST_PREFIX + hashlib.sha256(event_id.encode()).hexdigest()


def retrain(
    event: Any,
    *,
    sagemaker: Any,
    dynamodb: Any,
    settings: Settings,
    now: datetime | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> dict[str, Any]:
    """Act on one EventBridge event; see the module docstring for the outcomes."""
    now = datetime.now(UTC) if now is None else now if now.tzinfo else now.replace(tzinfo=UTC)
    try:
        trigger = parse_event(event, settings)
    except (MalformedEvent, NotATrigger) as problem:
        event_id = event.get("id") if isinstance(event, dict) else None
        kind = problem.kind if isinstance(problem, NotATrigger) else None
        reason = f"malformed event: {problem}" if isinstance(problem, MalformedEvent) else str(problem)
        return _outcome("ignored", reason, event_id=event_id, trigger=kind)
    # Filled in as the decision goes on, so that an error line carries everything known.
    fields: dict[str, Any] = {
        "event_id": trigger.event_id,
        "trigger": trigger.kind,
        "pipeline_name": settings.pipeline_name,
        **trigger.details,
    }
    try:
        return _decide(trigger, _State(dynamodb, settings, now, lease), sagemaker, settings, now, fields)
    except (RetrainingError, ClientError, BotoCoreError) as error:
        code = error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None
        _log(logging.ERROR, {"action": "failed", "reason": str(error), "error_code": code, **fields})
        raise


def _decide(
    trigger: Trigger, state: _State, sagemaker: Any, settings: Settings, now: datetime, fields: dict[str, Any]
) -> dict[str, Any]:
    record = state.event(trigger.event_id)
    batch: tuple[int, int] | None = None
    if trigger.kind == NEW_DATA:
        if record is None and not state.count(trigger):
            return _outcome("duplicate", "a concurrent delivery of this event counted it", **fields)
        if record is not None and record.get("status") != COUNTED:
            return _duplicate(record, fields)
        objects, size = state.accumulated()
        fields.update(accumulated_objects=objects, accumulated_bytes=size)
        if not settings.enough_data(objects, size):
            pending = f"{objects} objects/{size} bytes accumulated, below {settings.thresholds()}"
            if record is not None:
                return _outcome("duplicate", f"event already counted; {pending}", **fields)
            return _outcome("accumulated", pending, **fields)
        batch = (objects, size)
        trigger = Trigger(NEW_DATA, trigger.event_id, f"new-data:{objects} objects/{size} bytes", trigger.size)
    elif record is not None:
        return _duplicate(record, fields)
    fields["trigger_reason"] = trigger.reason[:TRIGGER_REASON_MAX]
    if not state.lock():
        return _outcome("refused", "another invocation is deciding a start (the start lock is held)", **fields)
    try:
        return _start(trigger, batch, state, sagemaker, settings, now, fields)
    finally:
        state.unlock()


def _start(
    trigger: Trigger,
    batch: tuple[int, int] | None,
    state: _State,
    sagemaker: Any,
    settings: Settings,
    now: datetime,
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Under the start lock: refuse while an execution runs or the cool-down lasts, else claim and start."""
    refusal = _refusal(sagemaker, settings, now, fields)
    if refusal:
        return _outcome("refused", refusal, **fields)
    lost = state.claim(trigger, batch)
    if lost:
        return _outcome(*lost, **fields)
    try:
        response = sagemaker.start_pipeline_execution(
            PipelineName=settings.pipeline_name,
            PipelineParameters=[{"Name": TRIGGER_REASON_PARAMETER, "Value": fields["trigger_reason"]}],
            PipelineExecutionDescription=f"{trigger.reason} (event {trigger.event_id})"[:DESCRIPTION_MAX],
            ClientRequestToken=client_request_token(trigger.event_id),
        )
    except (ClientError, BotoCoreError):
        try:
            state.release(trigger, batch)
        except (ClientError, BotoCoreError) as release_error:
            fields["release_error"] = str(release_error)
        raise
    fields["execution_arn"] = response["PipelineExecutionArn"]
    state.mark_started(trigger, fields["execution_arn"])
    return _outcome("started", f"pipeline {settings.pipeline_name} started for {trigger.reason}", **fields)


def _duplicate(record: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    if record.get("status") == STARTED:
        fields["execution_arn"] = record.get("execution_arn")
        return _outcome("duplicate", f"event already started execution {record.get('execution_arn')}", **fields)
    when = record.get("updated_at")
    return _outcome("duplicate", f"event claimed at {when}, never marked started (in flight, or stopped)", **fields)


def _refusal(sagemaker: Any, settings: Settings, now: datetime, fields: dict[str, Any]) -> str | None:
    """Why the pipeline must not start now (an execution runs, or the cool-down lasts), or None."""
    summaries = sagemaker.list_pipeline_executions(
        PipelineName=settings.pipeline_name,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=RECENT_EXECUTIONS,
    ).get("PipelineExecutionSummaries", [])
    for summary in summaries:
        if summary.get("PipelineExecutionStatus") in RUNNING:
            fields["running_execution_arn"] = summary.get("PipelineExecutionArn")
            return f"execution {summary.get('PipelineExecutionArn')} is {summary['PipelineExecutionStatus']}"
    started = [s for s in summaries if isinstance(s.get("StartTime"), datetime)]
    if not settings.cooldown_minutes or not started:
        return None
    # The newest start, whatever the order of the page.
    latest = max(started, key=lambda s: s["StartTime"])
    cooldown = timedelta(minutes=settings.cooldown_minutes)
    left = min(latest["StartTime"] + cooldown - now, cooldown)
    if left <= timedelta(0):
        return None
    seconds = int(left.total_seconds() + 0.999)
    fields.update(latest_execution_arn=latest.get("PipelineExecutionArn"), cooldown_seconds_left=seconds)
    return (
        f"cool-down: execution {latest.get('PipelineExecutionArn')} started at {latest['StartTime'].isoformat()}, "
        f"{seconds // 60} min {seconds % 60} s left of {settings.cooldown_minutes} min"
    )


class _State:
    """The items of the state table this function reads and writes (see the module docstring)."""

    def __init__(self, dynamodb: Any, settings: Settings, now: datetime, lease: timedelta = DEFAULT_LEASE) -> None:
        self.dynamodb = dynamodb
        self.table = settings.state_table
        self.accumulator = {"pk": {"S": settings.accumulator_key}}
        self.updated_at = {"S": now.isoformat()}
        self.expires_at = {"N": str(int((now + RETENTION).timestamp()))}
        self.now = {"N": str(int(now.timestamp()))}
        self.lease_until = {"N": str(int((now + lease).timestamp()) + 1)}
        self.token = {"S": uuid.uuid4().hex}  # this invocation, as the lock's holder

    def lock(self) -> bool:
        """Take the start lock until the lease ends; False while another invocation holds it."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": LOCK_KEY},
                    "token": self.token,
                    "lease_until": self.lease_until,
                    "updated_at": self.updated_at,
                    "expires_at": self.expires_at,
                },
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues={":now": self.now},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def unlock(self) -> None:
        """Give the lock up, unless its lease passed and another invocation holds it now."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key={"pk": {"S": LOCK_KEY}},
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": self.token},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    @staticmethod
    def _key(event_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"event#{event_id}"}}

    def event(self, event_id: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(event_id), ConsistentRead=True).get("Item")
        return None if item is None else {name: next(iter(value.values())) for name, value in item.items()}

    def accumulated(self) -> tuple[int, int]:
        item = self.dynamodb.get_item(TableName=self.table, Key=self.accumulator, ConsistentRead=True).get("Item", {})
        return int(item.get("objects", {}).get("N", "0")), int(item.get("bytes", {}).get("N", "0"))

    def count(self, trigger: Trigger) -> bool:
        """Record the new-data event and add it to the accumulator, at once; False if already recorded."""
        record = self._record(trigger, COUNTED, object_size={"N": str(trigger.size)})
        cancelled = self._transact(
            {"Put": {"TableName": self.table, "Item": record, "ConditionExpression": "attribute_not_exists(pk)"}},
            self._add(1, trigger.size),
        )
        return cancelled is None

    def claim(self, trigger: Trigger, batch: tuple[int, int] | None) -> tuple[str, str] | None:
        """Claim the event's start (and take the batch off the accumulator); else (action, reason)."""
        if batch is None:
            item = self._record(trigger, CLAIMED, trigger_reason={"S": trigger.reason})
            try:
                self.dynamodb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                return "duplicate", "a concurrent delivery of this event claimed it"
            return None
        objects, size = batch
        cancelled = self._transact(
            self._set_status(trigger, COUNTED, CLAIMED, trigger.reason),
            self._add(-objects, -size, condition=True),
        )
        if cancelled == 0:
            return "duplicate", "a concurrent delivery of this event claimed it"
        if cancelled == 1:
            return "refused", "a concurrent start took the accumulated data"
        return None

    def release(self, trigger: Trigger, batch: tuple[int, int] | None) -> None:
        """Undo claim() after a failed start, so that a retry of the event can start."""
        if batch is None:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key=self._key(trigger.event_id),
                ConditionExpression="#status = :claimed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":claimed": {"S": CLAIMED}},
            )
            return
        objects, size = batch
        self._transact(self._set_status(trigger, CLAIMED, COUNTED, None), self._add(objects, size))

    def mark_started(self, trigger: Trigger, execution_arn: str) -> None:
        self.dynamodb.update_item(
            TableName=self.table,
            Key=self._key(trigger.event_id),
            UpdateExpression="SET #status = :started, execution_arn = :arn, updated_at = :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":started": {"S": STARTED},
                ":arn": {"S": execution_arn},
                ":now": self.updated_at,
            },
        )

    def _record(self, trigger: Trigger, status: str, **attributes: dict[str, str]) -> dict[str, Any]:
        """A new event item, kept for RETENTION."""
        return {
            **self._key(trigger.event_id),
            "status": {"S": status},
            "trigger": {"S": trigger.kind},
            **attributes,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
        }

    def _set_status(self, trigger: Trigger, before: str, after: str, reason: str | None) -> dict[str, Any]:
        values = {":before": {"S": before}, ":after": {"S": after}, ":now": self.updated_at}
        expression = "SET #status = :after, updated_at = :now"
        if reason is None:
            expression += " REMOVE trigger_reason"
        else:
            expression += ", trigger_reason = :reason"
            values[":reason"] = {"S": reason}
        return {
            "Update": {
                "TableName": self.table,
                "Key": self._key(trigger.event_id),
                "UpdateExpression": expression,
                "ConditionExpression": "#status = :before",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": values,
            }
        }

    def _add(self, objects: int, size: int, *, condition: bool = False) -> dict[str, Any]:
        """ADD to the accumulator; with condition, only if it holds at least what is subtracted."""
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": self.accumulator,
            "UpdateExpression": "ADD #objects :objects, #bytes :bytes SET updated_at = :now",
            "ExpressionAttributeNames": {"#objects": "objects", "#bytes": "bytes"},
            "ExpressionAttributeValues": {
                ":objects": {"N": str(objects)},
                ":bytes": {"N": str(size)},
                ":now": self.updated_at,
            },
        }
        if condition:
            update["ConditionExpression"] = "#objects >= :least_objects AND #bytes >= :least_bytes"
            least = {":least_objects": {"N": str(-objects)}, ":least_bytes": {"N": str(-size)}}
            update["ExpressionAttributeValues"] |= least
        return {"Update": update}

    def _transact(self, *items: dict[str, Any]) -> int | None:
        """Write the items at once; the index of the item whose condition failed, or None."""
        try:
            self.dynamodb.transact_write_items(TransactItems=list(items))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" not in codes:
                raise
            return codes.index("ConditionalCheckFailed")
        return None


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
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return retrain(
        event,
        sagemaker=boto3.client("sagemaker", config=config),
        dynamodb=boto3.client("dynamodb", config=config),
        settings=settings,
        lease=timedelta(milliseconds=remaining()) if callable(remaining) else DEFAULT_LEASE,
    )
