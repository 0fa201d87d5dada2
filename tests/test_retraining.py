"""The retraining trigger Lambda (lambdas/retraining/handler.py) against moto: SageMaker pipelines, DynamoDB."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.retraining.handler import (
    ENVIRONMENT,
    ConfigurationError,
    Settings,
    client_request_token,
    handler,
    retrain,
)

REGION, ACCOUNT = "us-east-1", "123456789012"
PIPELINE = "mlp-dev-training"
TABLE = "mlp-dev-retraining-state"
RAW_BUCKET = "mlp-dev-raw-123456789012"
RAW_PREFIX = "raw/fraud/"
MANUAL_SOURCE = "mlp-dev.retraining"
SETTINGS = Settings(
    pipeline_name=PIPELINE,
    state_table=TABLE,
    cooldown_minutes=60,
    raw_bucket=RAW_BUCKET,
    raw_prefix=RAW_PREFIX,
    new_data_min_objects=3,
    new_data_min_bytes=1000,
    manual_source=MANUAL_SOURCE,
)
EVENT_ID = "7bf73129-1428-4cd3-a780-95db273d1602"
ALARM = "mlp-dev-fraud-feature-drift"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/mlp-dev-retraining-schedule"
# Minimal definition: the TriggerReason parameter the function sets, and one step.
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "TriggerReason", "Type": "String", "DefaultValue": "manual"}],
    "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "test pipeline"}}],
}
# One session for the module: it loads each service model once.
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def _envelope(source: str, detail_type: str, detail: dict[str, Any], event_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": "2026-03-02T08:00:00Z",
        "region": REGION,
        "resources": extra.pop("resources", []),
        "detail": detail,
    }


def drift_event(state: str = "ALARM", *, name: str = ALARM, event_id: str = EVENT_ID) -> dict[str, Any]:
    """A CloudWatch alarm state change as EventBridge delivers it (CloudWatch user guide's example)."""
    detail = {
        "alarmName": name,
        "state": {"value": state, "reason": "Threshold Crossed: 1 datapoint [0.31] was >= 0.2", "timestamp": "now"},
        "previousState": {"value": "OK", "reason": "ok"},
        "configuration": {"metrics": []},
    }
    alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"
    return _envelope("aws.cloudwatch", "CloudWatch Alarm State Change", detail, event_id, resources=[alarm_arn])


def schedule_event(event_id: str = EVENT_ID) -> dict[str, Any]:
    return _envelope("aws.events", "Scheduled Event", {}, event_id, resources=[RULE_ARN])


def s3_event(key: str, size: int, *, bucket: str = RAW_BUCKET, event_id: str = EVENT_ID) -> dict[str, Any]:
    """An S3 Object Created event on EventBridge (S3 user guide's example)."""
    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": {"key": key, "size": size, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "0062E99A88"},
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": ACCOUNT,
        "reason": "PutObject",
    }
    return _envelope("aws.s3", "Object Created", detail, event_id, resources=[f"arn:aws:s3:::{bucket}"])


def manual_event(reason: Any = "labels fixed", *, event_id: str = EVENT_ID) -> dict[str, Any]:
    detail = {} if reason is None else {"reason": reason}
    return _envelope(MANUAL_SOURCE, "Retraining Requested", detail, event_id)


@dataclass
class World:
    """moto state: the training pipeline and the state table."""

    sagemaker: Any
    dynamodb: Any
    settings: Settings = SETTINGS

    def run(self, event: Any, *, sagemaker: Any = None, now: datetime | None = None) -> dict[str, Any]:
        client = self.sagemaker if sagemaker is None else sagemaker
        return retrain(event, sagemaker=client, dynamodb=self.dynamodb, settings=self.settings, now=now)

    def executions(self) -> list[dict[str, Any]]:
        """Every execution, oldest first, with its TriggerReason and the description."""
        summaries = self.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
        result = []
        for summary in sorted(summaries, key=lambda s: s["StartTime"]):
            arn = summary["PipelineExecutionArn"]
            parameters = self.sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
            values = {p["Name"]: p["Value"] for p in parameters["PipelineParameters"]}
            result.append({**summary, "TriggerReason": values.get("TriggerReason")})
        return result

    def item(self, pk: str) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
        return None if item is None else {name: next(iter(value.values())) for name, value in item.items()}

    def accumulated(self) -> tuple[int, int]:
        item = self.item(f"new-data#{RAW_BUCKET}/{RAW_PREFIX}") or {}
        return int(item.get("objects", 0)), int(item.get("bytes", 0))

    def items(self) -> list[dict[str, Any]]:
        return self.dynamodb.scan(TableName=TABLE)["Items"]


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    """Clients shared by the module's tests: moto routes a client's calls while any mock_aws is active."""
    return {name: SESSION.client(name) for name in ("sagemaker", "dynamodb")}


@pytest.fixture
def aws(clients, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sagemaker, dynamodb = clients["sagemaker"], clients["dynamodb"]
        sagemaker.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps(DEFINITION),
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/mlp-dev-pipeline",
        )
        # The key schema and TTL attribute the CDK table must have.
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        yield World(sagemaker, dynamodb)


def log_lines(caplog) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "retraining"]


def stubbed_sagemaker(summaries: list[dict[str, Any]] | None = None) -> tuple[Any, Stubber]:
    """A SageMaker client answering list_pipeline_executions with `summaries`.

    moto marks every new execution Succeeded at once and has no StopPipelineExecution, so it never
    shows an Executing or Stopping execution, nor a throttled start; botocore's Stubber stands in."""
    client = SESSION.client("sagemaker")
    stubber = Stubber(client)
    expected = {
        "PipelineName": PIPELINE,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 20,
    }
    stubber.add_response("list_pipeline_executions", {"PipelineExecutionSummaries": summaries or []}, expected)
    return client, stubber


def expected_start(reason: str, event_id: str = EVENT_ID) -> dict[str, Any]:
    return {
        "PipelineName": PIPELINE,
        "PipelineParameters": [{"Name": "TriggerReason", "Value": reason}],
        "PipelineExecutionDescription": f"{reason} (event {event_id})",
        "ClientRequestToken": client_request_token(event_id),
    }


# --- the four triggers -----------------------------------------------------------------------


def test_a_drift_alarm_starts_the_pipeline(aws, caplog):
    result = aws.run(drift_event())
    assert result["action"] == "started"
    (execution,) = aws.executions()
    assert execution["TriggerReason"] == f"drift:{ALARM}"
    assert execution["PipelineExecutionDescription"] == f"drift:{ALARM} (event {EVENT_ID})"
    assert result["execution_arn"] == execution["PipelineExecutionArn"]
    assert (result["trigger"], result["event_id"], result["alarm_name"]) == ("drift", EVENT_ID, ALARM)
    assert "Threshold Crossed" in result["alarm_reason"]
    assert log_lines(caplog) == [result]
    record = aws.item(f"event#{EVENT_ID}")
    assert (record["status"], record["trigger"]) == ("started", "drift")
    assert record["execution_arn"] == result["execution_arn"]
    expires = int(record["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7)).timestamp()) < 60


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_an_alarm_that_is_not_in_alarm_is_ignored(state, caplog):
    # None for the clients: any AWS call would raise AttributeError.
    result = retrain(drift_event(state), sagemaker=None, dynamodb=None, settings=SETTINGS)
    assert result["action"] == "ignored"
    assert result["reason"] == f"alarm {ALARM!r} changed to {state!r}, not 'ALARM'"
    (line,) = log_lines(caplog)
    assert (line["action"], line["trigger"], line["event_id"]) == ("ignored", "drift", EVENT_ID)


def test_the_schedule_starts_the_pipeline(aws):
    result = aws.run(schedule_event())
    assert (result["action"], result["trigger"], result["rule_arn"]) == ("started", "schedule", RULE_ARN)
    assert [e["TriggerReason"] for e in aws.executions()] == ["schedule"]


def test_a_manual_request_starts_the_pipeline_with_its_reason(aws):
    result = aws.run(manual_event("  labels fixed in batch 2026-03  "))
    assert result["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == ["manual:labels fixed in batch 2026-03"]


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        (None, "manual event detail has no reason"),
        ("", "manual event detail has no reason"),
        ("   ", "manual event detail has no reason"),
        (42, "manual event detail has no reason"),
        ("x" * 101, "manual event reason is 101 characters, more than 100"),
    ],
    ids=["missing", "empty", "blank", "number", "too-long"],
)
def test_a_manual_request_without_a_usable_reason_is_ignored(reason, problem, caplog):
    result = retrain(manual_event(reason), sagemaker=None, dynamodb=None, settings=SETTINGS)
    assert (result["action"], result["reason"]) == ("ignored", f"malformed event: {problem}")
    assert [line["reason"] for line in log_lines(caplog)] == [result["reason"]]


def test_a_manual_reason_of_100_characters_is_accepted(aws):
    assert aws.run(manual_event("y" * 100))["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == ["manual:" + "y" * 100]


def test_the_trigger_reason_is_cut_to_256_characters(aws):
    name = "a" * 255  # the longest alarm name
    result = aws.run(drift_event(name=name))
    assert result["action"] == "started"
    (execution,) = aws.executions()
    assert execution["TriggerReason"] == f"drift:{name}"[:256]
    assert len(execution["TriggerReason"]) == 256


# --- new data ---------------------------------------------------------------------------------


def test_new_data_accumulates_until_a_threshold_and_then_starts(aws, caplog):
    first = aws.run(s3_event(f"{RAW_PREFIX}2026/03/01.csv", 100, event_id="e1"))
    assert (first["action"], first["accumulated_objects"], first["accumulated_bytes"]) == ("accumulated", 1, 100)
    assert first["reason"] == "1 objects/100 bytes accumulated, below 3 objects or 1000 bytes"
    assert aws.run(s3_event(f"{RAW_PREFIX}2026/03/02.csv", 100, event_id="e2"))["action"] == "accumulated"
    assert aws.accumulated() == (2, 200)
    assert aws.executions() == []

    result = aws.run(s3_event(f"{RAW_PREFIX}2026/03/03.csv", 50, event_id="e3"))
    assert result["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == ["new-data:3 objects/250 bytes"]
    assert aws.accumulated() == (0, 0)
    assert result["object"] == f"s3://{RAW_BUCKET}/{RAW_PREFIX}2026/03/03.csv"
    assert [line["action"] for line in log_lines(caplog)] == ["accumulated", "accumulated", "started"]
    assert [aws.item(f"event#{i}")["status"] for i in ("e1", "e2", "e3")] == ["counted", "counted", "started"]


def test_one_large_object_reaches_the_byte_threshold(aws):
    result = aws.run(s3_event(f"{RAW_PREFIX}big.parquet", 4096))
    assert result["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == ["new-data:1 objects/4096 bytes"]
    assert aws.accumulated() == (0, 0)


def test_a_threshold_of_zero_is_not_used(aws):
    aws.settings = replace(SETTINGS, new_data_min_objects=0, new_data_min_bytes=300)
    for index in range(5):  # five objects are not enough when only bytes count
        assert aws.run(s3_event(f"{RAW_PREFIX}{index}", 50, event_id=f"e{index}"))["action"] == "accumulated"
    assert aws.run(s3_event(f"{RAW_PREFIX}5", 50, event_id="e5"))["action"] == "started"


def test_a_redelivered_object_is_counted_once(aws):
    event = s3_event(f"{RAW_PREFIX}a.csv", 100)
    assert aws.run(event)["action"] == "accumulated"
    second = aws.run(event, sagemaker=None)
    assert second["action"] == "duplicate"
    assert second["reason"].startswith("event already counted; 1 objects/100 bytes")
    assert aws.accumulated() == (1, 100)


@pytest.mark.parametrize(
    ("bucket", "key", "reason"),
    [
        ("someone-else", f"{RAW_PREFIX}a.csv", f"is not in the raw bucket {RAW_BUCKET!r}"),
        (RAW_BUCKET, "curated/fraud/a.parquet", f"is not under the raw prefix {RAW_PREFIX!r}"),
        (RAW_BUCKET, "raw/fraudulent/a.csv", f"is not under the raw prefix {RAW_PREFIX!r}"),
    ],
    ids=["other-bucket", "other-prefix", "prefix-of-the-name"],
)
def test_objects_outside_the_raw_prefix_are_ignored(bucket, key, reason, caplog):
    result = retrain(s3_event(key, 10**9, bucket=bucket), sagemaker=None, dynamodb=None, settings=SETTINGS)
    assert result["action"] == "ignored"
    assert result["reason"] == f"object s3://{bucket}/{key} {reason}"
    (line,) = log_lines(caplog)
    assert (line["trigger"], line["event_id"]) == ("new-data", EVENT_ID)


def test_a_percent_encoded_key_under_the_prefix_counts(aws):
    aws.settings = replace(SETTINGS, raw_prefix="raw/fraud data/")
    result = aws.run(s3_event("raw/fraud%20data/a.csv", 10))
    assert (result["action"], result["accumulated_objects"]) == ("accumulated", 1)


class _Racing:
    """A DynamoDB client that plays another invocation: it hides event items from reads (a concurrent
    delivery of the same event writes after this one read), or changes the accumulator just before
    the claim of a new-data batch (`change`: objects, bytes to add)."""

    def __init__(self, client: Any, *, change: tuple[int, int] | None = None, hide_events: bool = False) -> None:
        self.client, self.change, self.hide_events = client, change, hide_events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_item(self, **kwargs: Any) -> Any:
        if self.hide_events and kwargs["Key"]["pk"]["S"].startswith("event#"):
            return {}
        return self.client.get_item(**kwargs)

    def transact_write_items(self, **kwargs: Any) -> Any:
        updates = [item["Update"] for item in kwargs["TransactItems"] if "Update" in item]
        if self.change and any("#objects >=" in update.get("ConditionExpression", "") for update in updates):
            objects, size = self.change
            self.client.update_item(
                TableName=TABLE,
                Key={"pk": {"S": f"new-data#{RAW_BUCKET}/{RAW_PREFIX}"}},
                UpdateExpression="ADD objects :o, #b :b",
                ExpressionAttributeNames={"#b": "bytes"},
                ExpressionAttributeValues={":o": {"N": str(objects)}, ":b": {"N": str(size)}},
            )
        return self.client.transact_write_items(**kwargs)


def test_an_object_counted_during_the_start_stays_accumulated(aws):
    aws.run(s3_event(f"{RAW_PREFIX}a", 100, event_id="e1"))
    aws.run(s3_event(f"{RAW_PREFIX}b", 100, event_id="e2"))
    aws.dynamodb = _Racing(aws.dynamodb, change=(1, 70))  # a fourth object arrives meanwhile
    result = aws.run(s3_event(f"{RAW_PREFIX}c", 100, event_id="e3"))
    assert result["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == ["new-data:3 objects/300 bytes"]
    assert aws.accumulated() == (1, 70)


def test_data_taken_by_a_concurrent_start_is_not_started_twice(aws):
    aws.run(s3_event(f"{RAW_PREFIX}a", 100, event_id="e1"))
    aws.run(s3_event(f"{RAW_PREFIX}b", 100, event_id="e2"))
    aws.dynamodb = _Racing(aws.dynamodb, change=(-3, -300))  # another invocation took the batch
    result = aws.run(s3_event(f"{RAW_PREFIX}c", 100, event_id="e3"))
    assert (result["action"], result["reason"]) == ("refused", "a concurrent start took the accumulated data")
    assert aws.executions() == []
    assert aws.accumulated() == (0, 0)
    assert aws.item("event#e3")["status"] == "counted"


# --- running, cool-down, duplicates ------------------------------------------------------------


@pytest.mark.parametrize("status", ["Executing", "Stopping"])
def test_no_start_while_an_execution_runs(aws, status, caplog):
    running = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/{PIPELINE}/execution/abc123"
    summaries = [
        {"PipelineExecutionArn": running, "PipelineExecutionStatus": status, "StartTime": datetime.now(UTC)},
        {
            "PipelineExecutionArn": running + "0",
            "PipelineExecutionStatus": "Succeeded",
            "StartTime": datetime(2026, 1, 1),
        },
    ]
    sagemaker, stubber = stubbed_sagemaker(summaries)
    with stubber:
        result = aws.run(drift_event(), sagemaker=sagemaker)
    stubber.assert_no_pending_responses()  # and no start: the Stubber would refuse it
    assert (result["action"], result["reason"]) == ("refused", f"execution {running} is {status}")
    assert result["running_execution_arn"] == running
    assert aws.items() == []  # a refusal is not recorded
    (line,) = log_lines(caplog)
    assert line["action"] == "refused"


def test_the_cool_down_refuses_and_then_lets_a_start_through(aws):
    first = aws.run(drift_event(event_id="first"))
    (execution,) = aws.executions()
    started = execution["StartTime"]

    result = aws.run(schedule_event("second"), now=started + timedelta(minutes=10))
    assert result["action"] == "refused"
    assert result["reason"] == (
        f"cool-down: execution {first['execution_arn']} started at {started.isoformat()}, 50 min 0 s left of 60 min"
    )
    assert result["cooldown_seconds_left"] == 3000
    assert aws.item("event#second") is None
    assert len(aws.executions()) == 1

    # The same event again once the cool-down is over: the refusal did not make it a duplicate.
    result = aws.run(schedule_event("second"), now=started + timedelta(minutes=60))
    assert result["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == [f"drift:{ALARM}", "schedule"]


def test_a_cool_down_of_zero_is_not_used(aws):
    aws.settings = replace(SETTINGS, cooldown_minutes=0)
    assert aws.run(drift_event(event_id="first"))["action"] == "started"
    assert aws.run(drift_event(event_id="second"))["action"] == "started"


def test_new_data_refused_by_the_cool_down_stays_accumulated(aws):
    aws.run(drift_event(event_id="drift"))
    result = aws.run(s3_event(f"{RAW_PREFIX}big", 5000))
    assert (result["action"], result["accumulated_bytes"]) == ("refused", 5000)
    assert aws.accumulated() == (1, 5000)
    # The next object, after the cool-down, starts with both.
    later = datetime.now(UTC) + timedelta(hours=2)
    result = aws.run(s3_event(f"{RAW_PREFIX}small", 1, event_id="later"), now=later)
    assert result["action"] == "started"
    assert aws.executions()[-1]["TriggerReason"] == "new-data:2 objects/5001 bytes"


def test_the_same_event_twice_starts_once(aws, caplog):
    first = aws.run(manual_event())
    second = aws.run(manual_event(), sagemaker=None)  # no SageMaker call for a duplicate
    assert (first["action"], second["action"]) == ("started", "duplicate")
    assert second["reason"] == f"event already started execution {first['execution_arn']}"
    assert second["execution_arn"] == first["execution_arn"]
    assert len(aws.executions()) == 1
    assert [line["action"] for line in log_lines(caplog)] == ["started", "duplicate"]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (s3_event(f"{RAW_PREFIX}a", 100), "a concurrent delivery of this event counted it"),
        (drift_event(), "a concurrent delivery of this event claimed it"),
    ],
    ids=["new-data", "drift"],
)
def test_a_concurrent_delivery_of_the_same_event_is_a_duplicate(aws, event, reason):
    aws.settings = replace(SETTINGS, cooldown_minutes=0)
    first = aws.run(event)
    aws.dynamodb = _Racing(aws.dynamodb, hide_events=True)  # the second read misses the first's record
    second = aws.run(event)
    assert (second["action"], second["reason"]) == ("duplicate", reason)
    assert len(aws.executions()) == (1 if first["action"] == "started" else 0)
    assert aws.accumulated() == ((1, 100) if event["source"] == "aws.s3" else (0, 0))


def test_an_event_claimed_but_never_started_is_a_duplicate(aws):
    item = {"pk": {"S": f"event#{EVENT_ID}"}, "status": {"S": "claimed"}, "updated_at": {"S": "2026-03-02T08:00:01"}}
    aws.dynamodb.put_item(TableName=TABLE, Item=item)
    result = aws.run(drift_event(), sagemaker=None)
    assert result["action"] == "duplicate"
    assert "claimed at 2026-03-02T08:00:01, never marked started" in result["reason"]


# --- one start at a time (the start lock, in place of a reserved concurrency of 1) -------------


def _lock(aws: World, lease_until: datetime) -> None:
    item = {
        "pk": {"S": "lock#start"},
        "token": {"S": "another-invocation"},
        "lease_until": {"N": str(int(lease_until.timestamp()))},
    }
    aws.dynamodb.put_item(TableName=TABLE, Item=item)


def test_a_start_lock_held_by_another_invocation_refuses_the_start(aws, caplog):
    now = datetime.now(UTC)
    _lock(aws, now + timedelta(seconds=30))
    result = aws.run(drift_event(), now=now)
    assert (result["action"], result["reason"]) == (
        "refused",
        "another invocation is deciding a start (the start lock is held)",
    )
    assert aws.executions() == [] and aws.item(f"event#{EVENT_ID}") is None  # nothing claimed: a retry may start
    assert aws.item("lock#start")["token"] == "another-invocation"  # the holder's lock is left alone


def test_a_lock_whose_lease_passed_is_taken_over_and_given_up(aws):
    now = datetime.now(UTC)
    _lock(aws, now - timedelta(seconds=1))  # its holder died without giving it up
    assert aws.run(drift_event(), now=now)["action"] == "started"
    assert aws.item("lock#start") is None


class _Interleaving:
    """SageMaker, but while the first invocation checks for running executions a second one runs."""

    def __init__(self, sagemaker: Any, second: Callable[[], dict[str, Any]]) -> None:
        self.sagemaker, self.second, self.seen = sagemaker, second, []

    def list_pipeline_executions(self, **params: Any) -> dict[str, Any]:
        if not self.seen:
            self.seen.append(self.second())
        return self.sagemaker.list_pipeline_executions(**params)

    def start_pipeline_execution(self, **params: Any) -> dict[str, Any]:
        return self.sagemaker.start_pipeline_execution(**params)


def test_two_triggers_at_once_start_one_execution(aws):
    """The check-then-start window is what reserved concurrency used to protect: the lock does now."""
    now = datetime.now(UTC)
    lease = timedelta(seconds=42)

    def second() -> dict[str, Any]:
        lock = aws.item("lock#start")
        assert lock is not None and int(lock["lease_until"]) == int((now + lease).timestamp()) + 1
        return retrain(schedule_event("e2"), sagemaker=aws.sagemaker, dynamodb=aws.dynamodb, settings=SETTINGS, now=now)

    racing = _Interleaving(aws.sagemaker, second)
    first = retrain(drift_event(), sagemaker=racing, dynamodb=aws.dynamodb, settings=SETTINGS, now=now, lease=lease)
    assert first["action"] == "started"
    assert [(r["action"], r["trigger"]) for r in racing.seen] == [("refused", "schedule")]
    assert [e["TriggerReason"] for e in aws.executions()] == [f"drift:{ALARM}"]
    assert aws.item("lock#start") is None


# --- AWS errors --------------------------------------------------------------------------------


def test_a_throttled_start_is_raised_and_the_retry_starts(aws, caplog):
    sagemaker, stubber = stubbed_sagemaker()
    stubber.add_client_error(
        "start_pipeline_execution",
        "ThrottlingException",
        "Rate exceeded",
        400,
        expected_params=expected_start(f"drift:{ALARM}"),
    )
    with stubber, pytest.raises(ClientError, match="Rate exceeded"):
        aws.run(drift_event(), sagemaker=sagemaker)
    stubber.assert_no_pending_responses()
    (line,) = log_lines(caplog)
    assert (line["action"], line["error_code"], line["event_id"]) == ("failed", "ThrottlingException", EVENT_ID)
    assert [r.levelname for r in caplog.records if r.name == "retraining"] == ["ERROR"]
    assert aws.items() == []  # the claim was withdrawn

    retry = aws.run(drift_event())
    assert retry["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == [f"drift:{ALARM}"]


def test_a_throttled_new_data_start_gives_the_batch_back(aws):
    aws.run(s3_event(f"{RAW_PREFIX}a", 100, event_id="e1"))
    aws.run(s3_event(f"{RAW_PREFIX}b", 100, event_id="e2"))
    sagemaker, stubber = stubbed_sagemaker()
    reason = "new-data:3 objects/300 bytes"
    stubber.add_client_error(
        "start_pipeline_execution",
        "ThrottlingException",
        "Rate exceeded",
        400,
        expected_params=expected_start(reason, "e3"),
    )
    with stubber, pytest.raises(ClientError, match="Rate exceeded"):
        aws.run(s3_event(f"{RAW_PREFIX}c", 100, event_id="e3"), sagemaker=sagemaker)
    stubber.assert_no_pending_responses()
    assert aws.accumulated() == (3, 300)
    record = aws.item("event#e3")
    assert record["status"] == "counted" and "trigger_reason" not in record

    retry = aws.run(s3_event(f"{RAW_PREFIX}c", 100, event_id="e3"))  # not counted a second time
    assert retry["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == [reason]
    assert aws.accumulated() == (0, 0)


def test_an_unknown_pipeline_is_raised(aws, caplog):
    aws.settings = replace(SETTINGS, pipeline_name="missing")
    with pytest.raises(ClientError):
        aws.run(schedule_event())
    (line,) = log_lines(caplog)
    assert line["action"] == "failed" and line["pipeline_name"] == "missing"


# --- malformed events ----------------------------------------------------------------------------


def _edit(event: dict[str, Any], path: tuple[str, ...], value: Any = KeyError) -> dict[str, Any]:
    """The event with the value at `path` replaced, or removed when no value is given."""
    target = event
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (None, "malformed event: event is a NoneType, not an object"),
        ([schedule_event()], "malformed event: event is a list, not an object"),
        ("{}", "malformed event: event is a str, not an object"),
        ({}, "not a retraining trigger: source None, detail-type None"),
        (_edit(drift_event(), ("source",), "aws.sagemaker"), "source 'aws.sagemaker', detail-type 'CloudWatch Alarm"),
        (_edit(schedule_event(), ("detail-type",), "Object Created"), "source 'aws.events', detail-type 'Object"),
        (_edit(manual_event(), ("source",), "mlp-prod.retraining"), "source 'mlp-prod.retraining'"),
        (_edit(drift_event(), ("id",)), "malformed event: drift event has no id"),
        (_edit(schedule_event(), ("id",), ""), "malformed event: schedule event has no id"),
        (_edit(schedule_event(), ("id",), "i" * 257), "malformed event: schedule event id is longer than 256"),
        (_edit(drift_event(), ("detail",)), "malformed event: drift event has no detail object"),
        (_edit(drift_event(), ("detail",), "ALARM"), "malformed event: drift event has no detail object"),
        (_edit(drift_event(), ("detail", "alarmName")), "malformed event: drift event detail has no alarmName"),
        (_edit(drift_event(), ("detail", "state")), f"malformed event: drift event for alarm {ALARM!r} has no state"),
        (_edit(drift_event(), ("detail", "state", "value"), 1), "drift event for alarm"),
        (
            _edit(s3_event("raw/fraud/a", 1), ("detail", "bucket")),
            "malformed event: new-data event detail has no bucket",
        ),
        (_edit(s3_event("raw/fraud/a", 1), ("detail", "object", "key")), "new-data event detail has no object.key"),
        (_edit(s3_event("raw/fraud/a", 1), ("detail", "object", "size")), "object.size is None, not a whole number"),
        (_edit(s3_event("raw/fraud/a", 1), ("detail", "object", "size"), "12"), "object.size is '12', not a whole"),
        (_edit(s3_event("raw/fraud/a", 1), ("detail", "object", "size"), -1), "object.size is -1, not a whole"),
        (_edit(s3_event("raw/fraud/a", 1), ("detail", "object", "size"), True), "object.size is True, not a whole"),
        (_edit(manual_event(), ("detail",), None), "malformed event: manual event has no detail object"),
    ],
    ids=[
        "none",
        "list",
        "string",
        "empty",
        "foreign-source",
        "foreign-detail-type",
        "other-manual-source",
        "no-id",
        "empty-id",
        "long-id",
        "no-detail",
        "detail-string",
        "no-alarm-name",
        "no-state",
        "state-not-string",
        "no-bucket",
        "no-key",
        "no-size",
        "size-string",
        "size-negative",
        "size-bool",
        "manual-no-detail",
    ],
)
def test_a_malformed_or_foreign_event_is_ignored_without_an_aws_call(event, reason, caplog):
    # None for the clients: any AWS call would raise AttributeError.
    result = retrain(event, sagemaker=None, dynamodb=None, settings=SETTINGS)
    assert result["action"] == "ignored"
    assert reason in result["reason"]
    (line,) = log_lines(caplog)
    assert line["action"] == "ignored" and reason in line["reason"]


# --- settings and the entry point ---------------------------------------------------------------


def test_client_request_token_is_valid_for_any_event_id():
    assert client_request_token(EVENT_ID) == f"retrain-{EVENT_ID}"
    tokens = {client_request_token(i) for i in ("e1", "a b/c:d_é" * 40, "x" * 256, EVENT_ID + "!")}
    assert len(tokens) == 4
    for token in tokens:
        assert re.fullmatch(r"[a-zA-Z0-9-]{32,128}", token)


def _environment() -> dict[str, str]:
    return {variable: str(getattr(SETTINGS, name)) for name, variable in ENVIRONMENT.items()}


def test_settings_read_the_environment():
    assert Settings.from_env(_environment()) == SETTINGS
    assert Settings.from_env({**_environment(), "RAW_PREFIX": ""}).raw_prefix == ""


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("COOLDOWN_MINUTES", "ten", "COOLDOWN_MINUTES is 'ten', not a whole number >= 0"),
        ("NEW_DATA_MIN_OBJECTS", "-1", "NEW_DATA_MIN_OBJECTS is '-1', not a whole number >= 0"),
        ("NEW_DATA_MIN_BYTES", "1.5", "NEW_DATA_MIN_BYTES is '1.5', not a whole number >= 0"),
        ("NEW_DATA_MIN_BYTES", "\u00b2", "NEW_DATA_MIN_BYTES is '\u00b2', not a whole number >= 0"),
        ("PIPELINE_NAME", "", "missing environment variable(s): PIPELINE_NAME"),
    ],
)
def test_settings_refuse_a_bad_value(variable, value, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        Settings.from_env({**_environment(), variable: value})


def test_settings_need_a_threshold():
    environment = {**_environment(), "NEW_DATA_MIN_OBJECTS": "0", "NEW_DATA_MIN_BYTES": "0"}
    with pytest.raises(ConfigurationError, match="NEW_DATA_MIN_OBJECTS and NEW_DATA_MIN_BYTES are both 0"):
        Settings.from_env(environment)


def test_handler_reads_its_settings_from_the_environment(aws, monkeypatch):
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", SESSION)  # boto3.client() then reuses the loaded models
    for variable, value in _environment().items():
        monkeypatch.setenv(variable, value)
    assert handler(drift_event(), None)["action"] == "started"
    assert [e["TriggerReason"] for e in aws.executions()] == [f"drift:{ALARM}"]


@pytest.mark.parametrize("variable", list(ENVIRONMENT.values()))
def test_handler_names_a_missing_environment_variable(variable, monkeypatch):
    for key, value in _environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigurationError, match=f"missing environment variable\\(s\\): {variable}$"):
        handler(drift_event(), None)
