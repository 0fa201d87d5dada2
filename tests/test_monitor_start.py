"""The platform monitor's starter (lambdas/monitor_start) against moto: S3, SSM and SageMaker pipelines."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.monitor_start import handler as starter

REGION, ACCOUNT = "us-east-1", "123456789012"
BUCKET = "mlp-dev-artifacts"
PIPELINE = "mlp-dev-endpoint-monitor"
STATE = {
    "model_package": "/mlp-dev/serving/ModelPackageArn",
    "data_quality": "/mlp-dev/serving/DataQualityStatistics",
    "model_quality": "/mlp-dev/serving/ModelQualityConstraints",
}
KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
SETTINGS = starter.Settings(
    pipeline_name=PIPELINE,
    bucket=BUCKET,
    capture_prefix="data-capture/mlp-dev-endpoint",
    ground_truth_prefix="ground-truth/mlp-dev-endpoint",
    manifest_prefix="monitoring/mlp-dev-endpoint/manifests",
    kms_key_id=KEY,
    state_parameters=json.dumps(STATE),
)
DATA = "s3://mlp-dev-artifacts/pipelines/mlp-dev-training/runs/x/monitoring/data_quality/statistics.json"
QUALITY = "s3://mlp-dev-artifacts/pipelines/mlp-dev-training/runs/x/monitoring/model_quality/constraints.json"
HOURLY = {"time": "2026-05-09T14:05:00Z", "monitors": ["data_quality"], "period_hours": 1, "delay_hours": 0}
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        clients = {name: SESSION.client(name) for name in ("s3", "ssm", "sagemaker")}
        clients["s3"].create_bucket(Bucket=BUCKET)
        definition = {
            "Version": "2020-12-01",
            "Parameters": [{"Name": n, "Type": "String", "DefaultValue": "none"} for n in ("Manifest", "Monitors")],
            "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "test pipeline"}}],
        }
        clients["sagemaker"].create_pipeline(
            PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition), RoleArn=f"arn:aws:iam::{ACCOUNT}:role/p"
        )
        for name in STATE.values():
            clients["ssm"].put_parameter(Name=name, Value="none", Type="String")
        yield clients


def _promote(aws: dict[str, Any], **values: str) -> None:
    for key, value in values.items():
        aws["ssm"].put_parameter(Name=STATE[key], Value=value, Type="String", Overwrite=True)


def _capture(aws: dict[str, Any], hour: str, variant: str = "AllTraffic") -> str:
    key = f"data-capture/mlp-dev-endpoint/{variant}/{hour}/part.jsonl"
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=b"{}\n")
    return key


def _start(aws: dict[str, Any], event: dict[str, Any] = HOURLY, sagemaker: Any = None) -> dict[str, Any]:
    return starter.start(
        event, s3=aws["s3"], ssm=aws["ssm"], sagemaker=sagemaker or aws["sagemaker"], settings=SETTINGS
    )


def _executions(aws: dict[str, Any]) -> list[dict[str, str]]:
    summaries = aws["sagemaker"].list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    return [
        {
            p["Name"]: p["Value"]
            for p in aws["sagemaker"].list_pipeline_parameters_for_execution(
                PipelineExecutionArn=s["PipelineExecutionArn"]
            )["PipelineParameters"]
        }
        for s in summaries
    ]


def test_no_model_served_starts_nothing(aws):
    _capture(aws, "2026/05/09/13")
    assert _start(aws)["action"] == "ignored"
    assert _executions(aws) == []


def test_a_model_without_traffic_is_no_data_and_starts_nothing(aws):
    _promote(aws, model_package="arn:model-package/1", data_quality=DATA)
    _capture(aws, "2026/05/09/12")  # outside the window
    outcome = _start(aws)
    assert (outcome["action"], outcome["window_start"], outcome["window_end"]) == (
        "no_data",
        "2026-05-09T13:00:00Z",
        "2026-05-09T14:00:00Z",
    )
    assert _executions(aws) == []


def test_a_window_with_traffic_starts_a_run_on_its_files_and_the_promoted_baselines(aws):
    _promote(aws, model_package="arn:model-package/1", data_quality=DATA, model_quality=QUALITY)
    inside = [_capture(aws, "2026/05/09/13"), _capture(aws, "2026/05/09/13", variant="Cpu")]
    _capture(aws, "2026/05/09/14")  # the next window
    outcome = _start(aws)
    assert outcome["action"] == "started" and outcome["monitors"] == ["data_quality"]
    (parameters,) = _executions(aws)
    assert parameters["DataBaseline"] == DATA.rsplit("/", 1)[0] + "/"
    assert parameters["Monitors"] == "data_quality"
    assert (parameters["WindowStart"], parameters["WindowEnd"]) == ("2026-05-09T13:00:00Z", "2026-05-09T14:00:00Z")
    bucket, key = parameters["Manifest"].removeprefix("s3://").split("/", 1)
    stored = aws["s3"].get_object(Bucket=bucket, Key=key)
    manifest = json.loads(stored["Body"].read())
    assert manifest[0] == {"prefix": f"s3://{BUCKET}/"} and sorted(manifest[1:]) == sorted(inside)
    # The artifacts bucket's policy refuses an upload that does not name its key (tests/access finds it).
    assert (stored["ServerSideEncryption"], stored["SSEKMSKeyId"]) == ("aws:kms", KEY)


def test_a_labelled_run_waits_an_hour_and_lists_ground_truth(aws):
    _promote(aws, model_package="arn:model-package/1", data_quality=DATA, model_quality=QUALITY)
    _capture(aws, "2026/05/08/20")
    truth = "ground-truth/mlp-dev-endpoint/2026/05/08/21/labels.jsonl"
    aws["s3"].put_object(Bucket=BUCKET, Key=truth, Body=b"{}\n")
    daily = {"time": "2026-05-09T00:35:00Z", "monitors": ["model_quality"], "period_hours": 24, "delay_hours": 1}
    outcome = _start(aws, daily)
    assert (outcome["action"], outcome["window_start"], outcome["window_end"]) == (
        "started",
        "2026-05-07T23:00:00Z",
        "2026-05-08T23:00:00Z",
    )
    (parameters,) = _executions(aws)
    assert parameters["QualityBaseline"] == QUALITY.rsplit("/", 1)[0] + "/"


def test_a_monitor_the_version_has_no_baseline_for_is_left_out(aws):
    _promote(aws, model_package="arn:model-package/1", data_quality=DATA)
    _capture(aws, "2026/05/09/13")
    event = {**HOURLY, "monitors": ["data_quality", "model_quality"]}
    outcome = _start(aws, event)
    assert (outcome["monitors"], outcome["monitors_off"]) == (["data_quality"], ["model_quality"])


class _Busy:
    """A SageMaker client with one executing run (moto marks every execution Succeeded at once)."""

    def __init__(self) -> None:
        self.started = 0

    def list_pipeline_executions(self, **_: Any) -> dict[str, Any]:
        return {
            "PipelineExecutionSummaries": [
                {"PipelineExecutionArn": "arn:run/1", "PipelineExecutionStatus": "Executing"}
            ]
        }

    def start_pipeline_execution(self, **_: Any) -> dict[str, Any]:
        self.started += 1
        return {"PipelineExecutionArn": "arn:run/2"}


def test_runs_never_overlap(aws):
    _promote(aws, model_package="arn:model-package/1", data_quality=DATA)
    _capture(aws, "2026/05/09/13")
    busy = _Busy()
    outcome = _start(aws, sagemaker=busy)
    assert outcome["action"] == "skipped" and "arn:run/1" in outcome["reason"] and busy.started == 0


class _Recording(_Busy):
    """A SageMaker client with no run executing that records each start request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []

    def list_pipeline_executions(self, **_: Any) -> dict[str, Any]:
        return {"PipelineExecutionSummaries": []}

    def start_pipeline_execution(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return super().start_pipeline_execution()


def test_a_retried_invocation_asks_for_the_same_run(aws):
    """SageMaker starts one execution per ClientRequestToken; a retry sends the same token (not run by moto)."""
    _promote(aws, model_package="arn:model-package/1", data_quality=DATA)
    _capture(aws, "2026/05/09/13")
    recording = _Recording()
    _start(aws, sagemaker=recording)
    _start(aws, sagemaker=recording)
    _start(aws, {**HOURLY, "time": "2026-05-09T15:05:00Z"}, sagemaker=recording)
    tokens = [r["ClientRequestToken"] for r in recording.requests[:2]]
    assert tokens[0] == tokens[1] and len(tokens[0]) <= 64
    assert len(recording.requests) == 2 or recording.requests[2]["ClientRequestToken"] != tokens[0]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({**HOURLY, "time": "yesterday"}, "event.time = 'yesterday': allowed: a UTC time"),
        ({**HOURLY, "monitors": ["explainability"]}, "event.monitors = ['explainability']: allowed: a non-empty list"),
        ({**HOURLY, "period_hours": 0}, "event.period_hours/delay_hours = 0/0: allowed: integers, 1+ and 0+"),
    ],
)
def test_a_bad_event_is_one_line_naming_the_field(aws, event, message):
    with pytest.raises(starter.StartError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
        _start(aws, event)
