"""The platform engine's loop offline: captured traffic -> analysis -> published metrics -> alarm -> retraining.

Synthetic capture files (SageMaker's layout and record format) with injected drift go through the
analysis job's code (`monitoring.analyze`), the publisher (`lambdas/monitor_metrics`, against moto's
CloudWatch and S3), an evaluation of the dev app's synthesized drift alarm over the published
datapoints, and the retraining function (`lambdas/retraining`, against moto's SageMaker and
DynamoDB), which starts the training pipeline. Sockets are refused throughout (pytest-socket).

What the alarm evaluation does NOT prove: `evaluate_alarm` below applies the alarm's own
properties (namespace, metric, dimensions, statistic, period, threshold, comparison, missing-data
treatment, one evaluation period) to moto's GetMetricStatistics answer; it is not CloudWatch's
evaluator (no evaluation delay, no M-of-N, no state history), and EventBridge's delivery of the
state change is represented by the rule pattern check, not by a delivered event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.catalog import naming
from infra.config import load_config
from lambdas.monitor_metrics import handler as publisher
from lambdas.retraining import handler as retraining
from monitoring import analyze
from tests import monitoring_data as data

REGION, ACCOUNT = "us-east-1", "123456789012"
BUCKET = "mlp-dev-artifacts"
ENDPOINT = "mlp-dev-endpoint"
REPORTS = f"monitoring/{ENDPOINT}/reports/"
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
COMPARE = {
    "GreaterThanThreshold": lambda value, limit: value > limit,
    "GreaterThanOrEqualToThreshold": lambda value, limit: value >= limit,
    "LessThanThreshold": lambda value, limit: value < limit,
    "LessThanOrEqualToThreshold": lambda value, limit: value <= limit,
}


def evaluate_alarm(cloudwatch: Any, alarm: dict[str, Any], now: datetime) -> str:
    """The alarm's state over its last period, from its own properties (see the module docstring)."""
    answer = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm["Dimensions"],
        StartTime=now - timedelta(seconds=alarm["Period"]),
        EndTime=now + timedelta(minutes=1),
        Period=alarm["Period"],
        Statistics=[alarm["Statistic"]],
    )
    points = [p[alarm["Statistic"]] for p in answer["Datapoints"]]
    if not points:
        return {"notBreaching": "OK", "breaching": "ALARM"}.get(alarm["TreatMissingData"], "INSUFFICIENT_DATA")
    breached = COMPARE[alarm["ComparisonOperator"]](
        max(points) if "Greater" in alarm["ComparisonOperator"] else min(points), alarm["Threshold"]
    )
    return "ALARM" if breached else "OK"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        clients = {name: SESSION.client(name) for name in ("s3", "cloudwatch", "sagemaker", "dynamodb")}
        clients["s3"].create_bucket(Bucket=BUCKET)
        yield clients


def _monitored(tmp_path: Path, *, amount_shift: float) -> dict[str, Any]:
    """The analysis job's report of one window of 3,000 captured requests (drifted by `amount_shift`)."""
    baselines = data.write_baselines(tmp_path / "baselines")
    frame = data.rows(3000, seed=7, amount_shift=amount_shift)
    labels, scores = data.scores_for(frame, seed=8)
    capture, truth = data.write_traffic(tmp_path / "window", frame, labels, scores)
    arguments = data.analysis_arguments(baselines, capture, truth, tmp_path / "out")
    arguments[arguments.index("--endpoint") + 1] = ENDPOINT
    assert analyze.main(arguments) == 0
    return json.loads((tmp_path / "out" / "report.json").read_text())


def _publish(aws: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    key = f"{REPORTS}run-1/report.json"
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=json.dumps(report).encode())
    settings = publisher.Settings(namespace="MLPlatform/Monitoring", bucket=BUCKET, prefix=REPORTS)
    return publisher.publish(
        {"report_uri": f"s3://{BUCKET}/{key}"}, s3=aws["s3"], cloudwatch=aws["cloudwatch"], settings=settings
    )


def _drift_alarm(synthesized: Any, feature: str) -> dict[str, Any]:
    alarms = synthesized.named("Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    return alarms[f"{naming.drift_alarm_prefix(load_config('dev'))}{feature}"]


def _alarm_for(alarm: dict[str, Any], feature: str) -> dict[str, Any]:
    """Dev's drift alarm, pointed at a feature of the synthetic traffic (dev's model has one feature, 'amount')."""
    dimensions = [d if d["Name"] != "Feature" else {"Name": "Feature", "Value": feature} for d in alarm["Dimensions"]]
    return {**alarm, "Dimensions": dimensions}


def test_injected_drift_raises_the_drift_alarm_and_the_alarm_starts_retraining(dev, aws, tmp_path):
    report = _monitored(tmp_path, amount_shift=300.0)
    amount = next(f for f in report["monitors"]["data_quality"]["features"] if f["name"] == "amount")
    alarm = _drift_alarm(dev, "amount")
    assert amount["js_distance"] > alarm["Threshold"] == load_config("dev").monitoring.data_quality.drift_threshold
    assert _publish(aws, report)["action"] == "published"
    now = datetime.now(UTC)
    assert evaluate_alarm(aws["cloudwatch"], alarm, now) == "ALARM"

    # The retraining rule matches this alarm's name, and the function starts the pipeline.
    (rule,) = [
        r
        for r in dev.properties("Retraining", "AWS::Events::Rule")
        if "aws.cloudwatch" in json.dumps(r["EventPattern"])
    ]
    (prefix,) = rule["EventPattern"]["detail"]["alarmName"]
    assert alarm["AlarmName"].startswith(prefix["prefix"])
    pipeline = naming.training_pipeline(load_config("dev"))
    aws["sagemaker"].create_pipeline(
        PipelineName=pipeline,
        PipelineDefinition=json.dumps(
            {
                "Version": "2020-12-01",
                "Parameters": [{"Name": "TriggerReason", "Type": "String", "DefaultValue": "manual"}],
                "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "test pipeline"}}],
            }
        ),
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline",
    )
    table = "mlp-dev-retraining-state"
    aws["dynamodb"].create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    settings = retraining.Settings(
        pipeline_name=pipeline,
        state_table=table,
        cooldown_minutes=60,
        raw_bucket="raw",
        raw_prefix="transactions/",
        new_data_min_objects=100,
        new_data_min_bytes=0,
        manual_source="mlp-dev.retraining",
    )
    event = {
        "version": "0",
        "id": "5c2f1a3e-0000-4000-8000-000000000001",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm['AlarmName']}"],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": "ALARM", "reason": "evaluated above", "timestamp": "now"},
            "previousState": {"value": "OK"},
        },
    }
    outcome = retraining.retrain(event, sagemaker=aws["sagemaker"], dynamodb=aws["dynamodb"], settings=settings)
    assert outcome["action"] == "started", outcome
    (execution,) = aws["sagemaker"].list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
    parameters = aws["sagemaker"].list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert "drift" in {p["Name"]: p["Value"] for p in parameters}["TriggerReason"]


def test_traffic_without_drift_stays_below_the_threshold(dev, aws, tmp_path):
    report = _monitored(tmp_path, amount_shift=0.0)
    assert _publish(aws, report)["action"] == "published"
    alarm = _drift_alarm(dev, "amount")
    now = datetime.now(UTC)
    for feature in data.FEATURES:
        assert evaluate_alarm(aws["cloudwatch"], _alarm_for(alarm, feature), now) == "OK", feature
    worst = report["monitors"]["data_quality"]["max_js_distance"]
    assert worst < alarm["Threshold"]


# --- Each alarm's state in three situations ----------------------------------------------------------
#
# no model served yet: no run starts (monitor_start: "ignored"), nothing is published -> missing data
# a model without traffic: the window is empty (monitor_start: "no_data"), nothing is published -> missing data
# a model with traffic: the run publishes the window's values -> OK below the threshold, ALARM above it


def _platform_alarms(synthesized: Any) -> dict[str, dict[str, Any]]:
    alarms = synthesized.named("Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    return {name: a for name, a in alarms.items() if a["Namespace"] == "MLPlatform/Monitoring"}


def test_no_platform_alarm_fires_without_a_model_or_without_traffic(dev, prod, aws):
    now = datetime.now(UTC)
    for synthesized in (dev, prod):
        alarms = _platform_alarms(synthesized)
        assert alarms, "the platform engine's alarms exist"
        for name, alarm in alarms.items():
            assert alarm["TreatMissingData"] == "notBreaching", name
            # Nothing published (no model, or no traffic): missing data, the alarm stays OK.
            assert evaluate_alarm(aws["cloudwatch"], alarm, now) == "OK", name


def test_prod_quality_and_bias_alarms_fire_on_a_degraded_window_with_traffic(prod, aws, tmp_path):
    baselines = data.write_baselines(tmp_path / "baselines")
    frame = data.rows(3000, seed=11)
    labels, scores = data.scores_for(frame, seed=12)
    # A model gone bad: its scores no longer rank the labels, and favour old accounts.
    rng = __import__("numpy").random.default_rng(13)
    scores = rng.random(len(frame)) * 0.6 + 0.4 * (frame["account_age_days"].to_numpy() > 500)
    capture, truth = data.write_traffic(tmp_path / "window", frame, labels, scores)
    arguments = data.analysis_arguments(baselines, capture, truth, tmp_path / "out")
    arguments[arguments.index("--endpoint") + 1] = "mlp-prod-endpoint"
    assert analyze.main(arguments) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert _publish(aws, report)["action"] == "published"
    alarms = _platform_alarms(prod)
    now = datetime.now(UTC)
    assert evaluate_alarm(aws["cloudwatch"], alarms["mlp-prod-model-quality-auc"], now) == "ALARM"
    assert evaluate_alarm(aws["cloudwatch"], alarms["mlp-prod-bias-MaxBiasShift"], now) == "ALARM"
