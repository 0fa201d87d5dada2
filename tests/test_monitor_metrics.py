"""The monitor-metrics Lambda (lambdas/monitor_metrics/handler.py) against moto: S3 reports to CloudWatch metrics."""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from lambdas.monitor_metrics.handler import ReportError, Settings, handler, metric_data, publish
from monitoring import analyze
from monitoring.baseline import write_data_quality_baseline
from tests import monitoring_data as data

REGION = "us-east-1"
BUCKET = "mlp-dev-artifacts-123456789012"
PREFIX = "monitoring/fraud-endpoint/"
NAMESPACE = "MLPlatform/Monitoring"
SETTINGS = Settings(namespace=NAMESPACE, bucket=BUCKET, prefix=PREFIX)
ENDPOINT = "fraud-endpoint"
DRIFT_THRESHOLD = 0.2  # monitoring.data_quality.drift_threshold's default
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture
def aws():
    with mock_aws():
        s3, cloudwatch = SESSION.client("s3"), SESSION.client("cloudwatch")
        s3.create_bucket(Bucket=BUCKET)
        yield s3, cloudwatch


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def store(s3: Any, report: dict[str, Any], key: str = f"{PREFIX}2026-05-09T13/report.json") -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(report).encode())
    return f"s3://{BUCKET}/{key}"


def statistic(cloudwatch: Any, name: str, **dimensions: str) -> list[float]:
    """The Maximum of each datapoint of one metric over the last hour."""
    pairs = [{"Name": "Endpoint", "Value": ENDPOINT}, *({"Name": k, "Value": v} for k, v in dimensions.items())]
    end = datetime.now(UTC) + timedelta(minutes=5)
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=pairs,
        StartTime=end - timedelta(hours=1),
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return [point["Maximum"] for point in points]


def analysed(tmp_path: Path, amount_shift: float) -> dict[str, Any]:
    """The analysis job's report of synthetic traffic, with `amount` shifted by `amount_shift`."""
    write_data_quality_baseline(tmp_path / "baseline", data.rows(20_000, seed=0), list(data.FEATURES))
    data.write_capture(tmp_path / "capture", data.capture_lines(data.rows(3000, seed=1, amount_shift=amount_shift)))
    argv = ["--capture-dir", str(tmp_path / "capture"), "--data-baseline", str(tmp_path / "baseline")]
    with contextlib.redirect_stdout(io.StringIO()):
        assert analyze.main([*argv, "--output-dir", str(tmp_path / "out"), "--endpoint", ENDPOINT]) == 0
    return json.loads((tmp_path / "out" / analyze.REPORT_FILE).read_text())


@pytest.mark.parametrize(("shift", "crosses"), [(0.0, False), (60.0, True)])
def test_injected_drift_is_published_above_the_drift_threshold_and_no_drift_below(aws, tmp_path, shift, crosses):
    s3, cloudwatch = aws
    report = analysed(tmp_path, shift)
    result = publish({"report_uri": store(s3, report)}, s3=s3, cloudwatch=cloudwatch, settings=SETTINGS)
    assert result["action"] == "published"
    [worst] = statistic(cloudwatch, "MaxFeatureDrift", MonitorKind="data_quality")
    [amount] = statistic(cloudwatch, "FeatureDrift", MonitorKind="data_quality", Feature="amount")
    [violations] = statistic(cloudwatch, "ViolationCount", MonitorKind="data_quality")
    assert (worst > DRIFT_THRESHOLD) is crosses and (amount > DRIFT_THRESHOLD) is crosses
    assert (violations > 0) is crosses


@pytest.mark.parametrize("injected", [False, True])
def test_each_monitor_publishes_a_number_across_its_threshold_only_when_injected(aws, tmp_path, injected):
    """Drift in `amount`, a model that turned to noise and bias against young accounts, or none of them."""
    s3, cloudwatch = aws
    baselines = data.write_baselines(tmp_path / "baselines")
    frame = data.rows(3000, seed=20, amount_shift=60.0 if injected else 0.0)
    labels, scores = data.scores_for(data.rows(3000, seed=20), seed=21)
    if injected:
        young = frame["account_age_days"].to_numpy() <= 500
        scores = np.where(young, np.random.default_rng(22).uniform(0.6, 1.0, 3000), 0.0)
    capture, truth = data.write_traffic(tmp_path, frame, labels, scores)
    with contextlib.redirect_stdout(io.StringIO()):
        assert analyze.main(data.analysis_arguments(baselines, capture, truth, tmp_path / "out")) == 0
    report = json.loads((tmp_path / "out" / analyze.REPORT_FILE).read_text())
    publish({"report_uri": store(s3, report)}, s3=s3, cloudwatch=cloudwatch, settings=SETTINGS)
    floor = json.loads((baselines / "model_quality" / "constraints.json").read_text())["min_metrics"]["auc"]
    [drift] = statistic(cloudwatch, "MaxFeatureDrift", MonitorKind="data_quality")
    [auc] = statistic(cloudwatch, "auc", MonitorKind="model_quality")
    [shift] = statistic(cloudwatch, "MaxBiasShift", MonitorKind="bias")
    assert (drift > DRIFT_THRESHOLD, auc < floor, shift > 0.1) == (injected, injected, injected)
    counts = [statistic(cloudwatch, "ViolationCount", MonitorKind=kind)[0] for kind in analyze.MONITORS]
    assert all(count > 0 for count in counts) if injected else counts == [0, 0, 0]


def test_every_metric_and_its_dimensions(aws):
    s3, cloudwatch = aws
    report = {
        "kind": "monitoring_report",
        "endpoint": ENDPOINT,
        "generated_at": now(),
        "input": {"malformed_lines": 3},
        "monitors": {
            "data_quality": {
                "status": "ok",
                "rows": 5000,
                "features": [{"name": "amount", "js_distance": 0.3, "psi": 0.4}, {"name": "age", "js_distance": None}],
                "max_js_distance": 0.3,
                "max_psi": 0.4,
                "violations": [{"check": "drift"}, {"check": "psi"}],
            },
            "model_quality": {
                "status": "ok",
                "rows": 800,
                "metrics": {"auc": 0.81, "accuracy": 0.9, "precision": 0.5, "recall": 0.4, "f1": 0.44},
                "violations": [],
            },
            "bias": {
                "status": "ok",
                "rows": 800,
                "metrics": {"CI": 0.2, "DPL": None, "DPPL": -0.05},
                "shifts": {"CI": 0.01, "DPL": None, "DPPL": 0.15},
                "violations": [{"check": "shift"}],
            },
        },
    }
    result = publish({"report_uri": store(s3, report)}, s3=s3, cloudwatch=cloudwatch, settings=SETTINGS)
    listed = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    found = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in listed}
    endpoint = ("Endpoint", ENDPOINT)
    kind = {k: ("MonitorKind", k) for k in ("data_quality", "model_quality", "bias")}
    expected = {
        ("FeatureDrift", (endpoint, ("Feature", "amount"), kind["data_quality"])),
        ("FeaturePSI", (endpoint, ("Feature", "amount"), kind["data_quality"])),
        *((name, (endpoint, kind["data_quality"])) for name in ("MaxFeatureDrift", "MaxFeaturePSI")),
        *((name, (endpoint, kind["model_quality"])) for name in ("auc", "accuracy", "precision", "recall", "f1")),
        *((name, (endpoint, kind["bias"])) for name in ("CI", "DPPL", "CIShift", "DPPLShift", "MaxBiasShift")),
        *((name, (endpoint, kind[k])) for name in ("Rows", "ViolationCount") for k in kind),
        ("MalformedLines", (endpoint,)),
    }
    assert found == expected
    assert result["metrics"] == len(expected)
    assert statistic(cloudwatch, "auc", MonitorKind="model_quality") == [0.81]
    assert statistic(cloudwatch, "MaxBiasShift", MonitorKind="bias") == [0.15]
    assert statistic(cloudwatch, "ViolationCount", MonitorKind="data_quality") == [2.0]


def test_no_data_publishes_no_datapoint(aws, tmp_path):
    s3, cloudwatch = aws
    (tmp_path / "capture").mkdir()
    write_data_quality_baseline(tmp_path / "baseline", data.rows(500, seed=0), list(data.FEATURES))
    argv = ["--capture-dir", str(tmp_path / "capture"), "--data-baseline", str(tmp_path / "baseline")]
    with contextlib.redirect_stdout(io.StringIO()):
        analyze.main([*argv, "--output-dir", str(tmp_path), "--endpoint", ENDPOINT])
    report = json.loads((tmp_path / analyze.REPORT_FILE).read_text())
    result = publish({"report_uri": store(s3, report)}, s3=s3, cloudwatch=cloudwatch, settings=SETTINGS)
    assert result["action"] == "no_data"
    assert cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"] == []


def test_a_section_with_too_few_rows_publishes_nothing_for_its_monitor():
    report = {"endpoint": ENDPOINT, "generated_at": now(), "input": {"malformed_lines": 0}, "monitors": {}}
    report["monitors"]["data_quality"] = {"status": "insufficient_data", "rows": 12, "violations": []}
    report["monitors"]["model_quality"] = {"status": "ok", "rows": 500, "metrics": {"auc": None}, "violations": []}
    items = metric_data(report)
    assert {item["MetricName"] for item in items} == {"Rows", "ViolationCount", "MalformedLines"}  # no auc (one class)
    kinds = {d["Value"] for item in items for d in item["Dimensions"] if d["Name"] == "MonitorKind"}
    assert kinds == {"model_quality"}


def test_the_s3_event_of_the_report_object_publishes_it(aws, tmp_path):
    s3, cloudwatch = aws
    key = f"{PREFIX}run-1/report.json"
    store(s3, analysed(tmp_path, 0.0), key)
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 10}},
    }
    assert publish(event, s3=s3, cloudwatch=cloudwatch, settings=SETTINGS)["action"] == "published"


@pytest.mark.parametrize(
    "event",
    [
        {"report_uri": f"s3://other-bucket/{PREFIX}report.json"},
        {"report_uri": f"s3://{BUCKET}/elsewhere/report.json"},
        {"report_uri": "not-a-uri"},
        {"source": "aws.s3", "detail": {}},
        ["not", "an", "object"],
    ],
)
def test_events_that_name_no_report_of_ours_are_ignored_without_a_call(event):
    result = publish(event, s3=None, cloudwatch=None, settings=SETTINGS)
    assert result["action"] == "ignored"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "is not JSON"),
        (json.dumps({"kind": "data_quality"}).encode(), "is not a monitoring report"),
        (json.dumps({"kind": "monitoring_report", "endpoint": "", "monitors": {}}).encode(), "is not an endpoint name"),
    ],
)
def test_an_unreadable_report_fails_the_invocation(aws, body, message):
    s3, cloudwatch = aws
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}bad.json", Body=body)
    with pytest.raises(ReportError, match=message):
        publish({"report_uri": f"s3://{BUCKET}/{PREFIX}bad.json"}, s3=s3, cloudwatch=cloudwatch, settings=SETTINGS)


def test_large_reports_go_out_in_batches_of_1000():
    class Recorder:
        calls: list[int] = []

        def put_metric_data(self, **request: Any) -> None:
            assert request["Namespace"] == NAMESPACE
            self.calls.append(len(request["MetricData"]))

    class Reports:
        def get_object(self, **request: Any) -> dict[str, Any]:
            assert request == {"Bucket": BUCKET, "Key": f"{PREFIX}r.json"}
            features = [{"name": f"f{i}", "js_distance": 0.1, "psi": 0.1} for i in range(700)]
            section = {"status": "ok", "rows": 1, "features": features, "violations": []}
            report = {"kind": "monitoring_report", "endpoint": ENDPOINT, "generated_at": now(), "monitors": {}}
            report["monitors"]["data_quality"] = section
            return {"Body": io.BytesIO(json.dumps(report).encode())}

    recorder = Recorder()
    publish({"report_uri": f"s3://{BUCKET}/{PREFIX}r.json"}, s3=Reports(), cloudwatch=recorder, settings=SETTINGS)
    assert recorder.calls == [1000, 402]


def test_the_handler_reads_its_settings_from_the_environment(aws, monkeypatch, tmp_path):
    s3, _ = aws
    uri = store(s3, analysed(tmp_path, 0.0))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name, value in (("METRIC_NAMESPACE", NAMESPACE), ("REPORT_BUCKET", BUCKET), ("REPORT_PREFIX", PREFIX)):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert handler({"report_uri": uri}, None)["action"] == "published"
    monkeypatch.delenv("METRIC_NAMESPACE")
    with pytest.raises(ReportError, match="missing environment variable"):
        handler({"report_uri": uri}, None)
