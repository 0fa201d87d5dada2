"""Monitor metrics: publishes the numbers of a monitor run's report as CloudWatch metrics.

The analysis job runs with network isolation and cannot reach CloudWatch; it writes report.json
(monitoring/README.md, "Report") to S3, and this function reads it and puts its metrics in
METRIC_NAMESPACE with the dimensions Endpoint (the report's endpoint) and MonitorKind
(`data_quality`, `model_quality`, `bias`), timestamped with the report's `generated_at`:

- data_quality: FeatureDrift and FeaturePSI per feature (dimension Feature: the Jensen-Shannon
  distance and the population stability index), MaxFeatureDrift and MaxFeaturePSI (the worst
  feature), Rows, ViolationCount;
- model_quality: auc, accuracy, precision, recall, f1 (the names Model Monitor uses), Rows,
  ViolationCount;
- bias: CI, DPL, DPPL, their absolute shifts from the baseline CIShift, DPLShift, DPPLShift,
  MaxBiasShift, Rows, ViolationCount;
- MalformedLines with the Endpoint dimension alone.

A monitor whose section is not "ok" (no data, too few rows) gets no datapoint at all, so the
alarms' treat-missing-data setting decides; a metric that is undefined (AUC with one class) too.

Events: `{"report_uri": "s3://bucket/key"}` (a pipeline's Lambda step, or by hand), or EventBridge's
S3 "Object Created" for the report. Only objects in REPORT_BUCKET under REPORT_PREFIX are read.
Returns a dict with `action` (`published`, `no_data`, `ignored`) and `reason`; an unreadable report
or an AWS error raises, so the step fails or Lambda retries the event.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

LOGGER = logging.getLogger("monitor_metrics")
LOGGER.setLevel(logging.INFO)

ENVIRONMENT = {"namespace": "METRIC_NAMESPACE", "bucket": "REPORT_BUCKET", "prefix": "REPORT_PREFIX"}
MAY_BE_EMPTY = ("REPORT_PREFIX",)
REPORT_KIND = "monitoring_report"
S3_URI = re.compile(r"s3://([^/]+)/(.+)")
ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
BATCH = 1000  # PutMetricData takes up to 1000 metrics per request
QUALITY_METRICS = ("auc", "accuracy", "precision", "recall", "f1")
BIAS_METRICS = ("CI", "DPL", "DPPL")
COUNT, NONE = "Count", "None"


class ReportError(ValueError):
    """The report cannot be published: unreadable, or not of the documented layout."""


@dataclass(frozen=True)
class Settings:
    """Where metrics go and which reports may be read; see ENVIRONMENT for the variables."""

    namespace: str
    bucket: str
    prefix: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        missing = [
            variable
            for variable in ENVIRONMENT.values()
            if variable not in environ or (not environ[variable] and variable not in MAY_BE_EMPTY)
        ]
        if missing:
            raise ReportError(f"missing environment variable(s): {', '.join(missing)}")
        return cls(**{name: environ[variable] for name, variable in ENVIRONMENT.items()})


def report_location(event: Any) -> tuple[str, str] | None:
    """(bucket, key) of the report an event names, or None when it names none."""
    if not isinstance(event, dict):
        return None
    uri = event.get("report_uri")
    if isinstance(uri, str):
        match = S3_URI.fullmatch(uri)
        return (match.group(1), match.group(2)) if match else None
    detail = event.get("detail")
    if event.get("source") == "aws.s3" and isinstance(detail, dict):
        bucket, item = detail.get("bucket"), detail.get("object")
        name = bucket.get("name") if isinstance(bucket, dict) else None
        key = item.get("key") if isinstance(item, dict) else None
        if isinstance(name, str) and isinstance(key, str) and name and key:
            return name, key
    return None


def read_report(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        report = json.loads(body)
    except ValueError as error:
        raise ReportError(f"s3://{bucket}/{key} is not JSON: {error}") from None
    if not isinstance(report, dict) or report.get("kind") != REPORT_KIND:
        kind = report.get("kind") if isinstance(report, dict) else type(report).__name__
        raise ReportError(f"s3://{bucket}/{key} is not a monitoring report (kind {kind!r})")
    endpoint = report.get("endpoint")
    if not isinstance(endpoint, str) or not ENDPOINT_NAME.fullmatch(endpoint):
        raise ReportError(f"s3://{bucket}/{key}: endpoint {endpoint!r} is not an endpoint name")
    if not isinstance(report.get("monitors"), dict):
        raise ReportError(f"s3://{bucket}/{key}: monitors is not an object")
    return report


def _timestamp(report: Mapping[str, Any]) -> datetime:
    try:
        return datetime.strptime(str(report.get("generated_at")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ReportError(f"generated_at {report.get('generated_at')!r} is not a UTC time") from None


class _Data:
    """The MetricData of one report, built metric by metric."""

    def __init__(self, endpoint: str, timestamp: datetime) -> None:
        self.endpoint, self.timestamp = endpoint, timestamp
        self.items: list[dict[str, Any]] = []

    def put(self, name: str, value: Any, unit: str = NONE, **dimensions: str) -> None:
        """Add a datapoint unless `value` is not a finite number (undefined metrics get none)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        pairs = [("Endpoint", self.endpoint), *dimensions.items()]
        self.items.append(
            {
                "MetricName": name,
                "Dimensions": [{"Name": key, "Value": text} for key, text in pairs],
                "Timestamp": self.timestamp,
                "Value": float(value),
                "Unit": unit,
            }
        )


def metric_data(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The datapoints of a report (see the module docstring); none for a monitor without data."""
    data = _Data(report["endpoint"], _timestamp(report))
    published = False
    for kind, section in sorted(report["monitors"].items()):
        if not isinstance(section, dict) or section.get("status") != "ok":
            continue
        published = True
        data.put("Rows", section.get("rows"), COUNT, MonitorKind=kind)
        data.put("ViolationCount", len(section.get("violations") or []), COUNT, MonitorKind=kind)
        if kind == "data_quality":
            _data_quality(data, section)
        elif kind == "model_quality":
            for name in QUALITY_METRICS:
                data.put(name, (section.get("metrics") or {}).get(name), MonitorKind=kind)
        elif kind == "bias":
            _bias(data, section)
    if published:
        data.put("MalformedLines", (report.get("input") or {}).get("malformed_lines"), COUNT)
    return data.items


def _data_quality(data: _Data, section: Mapping[str, Any]) -> None:
    kind = "data_quality"
    for feature in section.get("features") or []:
        name = feature.get("name") if isinstance(feature, dict) else None
        if isinstance(name, str) and name:
            data.put("FeatureDrift", feature.get("js_distance"), MonitorKind=kind, Feature=name)
            data.put("FeaturePSI", feature.get("psi"), MonitorKind=kind, Feature=name)
    data.put("MaxFeatureDrift", section.get("max_js_distance"), MonitorKind=kind)
    data.put("MaxFeaturePSI", section.get("max_psi"), MonitorKind=kind)


def _bias(data: _Data, section: Mapping[str, Any]) -> None:
    metrics, shifts = section.get("metrics") or {}, section.get("shifts") or {}
    for name in BIAS_METRICS:
        data.put(name, metrics.get(name), MonitorKind="bias")
        data.put(f"{name}Shift", shifts.get(name), MonitorKind="bias")
    known = [value for value in shifts.values() if isinstance(value, (int, float)) and math.isfinite(value)]
    data.put("MaxBiasShift", max(known) if known else None, MonitorKind="bias")


def publish(event: Any, *, s3: Any, cloudwatch: Any, settings: Settings) -> dict[str, Any]:
    """Publish the metrics of the report an event names; see the module docstring for the outcomes."""
    location = report_location(event)
    if location is None:
        return _outcome("ignored", "the event names no report (report_uri, or an S3 Object Created event)")
    bucket, key = location
    uri = f"s3://{bucket}/{key}"
    if bucket != settings.bucket or not key.startswith(settings.prefix):
        return _outcome("ignored", f"{uri} is not under s3://{settings.bucket}/{settings.prefix}", report=uri)
    report = read_report(s3, bucket, key)
    items = metric_data(report)
    fields = {"report": uri, "endpoint": report["endpoint"], "violation_count": report.get("violation_count")}
    if not items:
        return _outcome("no_data", "no monitor of the report has data: nothing published", **fields)
    for start in range(0, len(items), BATCH):
        cloudwatch.put_metric_data(Namespace=settings.namespace, MetricData=items[start : start + BATCH])
    return _outcome("published", f"{len(items)} datapoints in {settings.namespace}", metrics=len(items), **fields)


def _outcome(action: str, reason: str, **fields: Any) -> dict[str, Any]:
    result = {"action": action, "reason": reason, **fields}
    LOGGER.info(json.dumps(result, default=str, sort_keys=True))
    return result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: settings from the environment, clients from the execution role."""
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return publish(
        event,
        s3=boto3.client("s3", config=config),
        cloudwatch=boto3.client("cloudwatch", config=config),
        settings=Settings.from_env(),
    )
