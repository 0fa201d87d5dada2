"""Starts one run of the endpoint's platform monitor: the window's files, the promoted baselines, never two at once.

An EventBridge schedule rule invokes the function (asynchronously: retried, then the dead-letter
queue) with `{"time": <the event's time>, "monitors": ["data_quality"], "period_hours": 1,
"delay_hours": 0}`. The window is the `period_hours` hours that end `delay_hours` before the event's
hour (labelled monitors wait for ground truth). The function

- reads the promoted state from SSM (the parameters the promotion function writes, named in
  `STATE_PARAMETERS`): it does nothing while no model version is served (the package is "none"),
  and leaves out a monitor whose baseline the served version did not register ("none");
- does not start a run while one is executing or stopping: runs never overlap;
- lists the window's capture files (`<capture prefix>/<variant>/yyyy/mm/dd/hh/`) and, for labelled
  monitors, ground-truth files (`<ground-truth prefix>/yyyy/mm/dd/hh/`), writes them as a SageMaker
  manifest, and starts the monitor pipeline with the manifest, the window, the monitors and each
  baseline's directory. An empty window starts nothing: no run, no metric ("no data").

Every invocation ends in one structured JSON log line and returns a dict with `action` (`ignored`,
`skipped`, `no_data`, `started`) and `reason`. AWS errors raise, so the invocation is retried.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

LOGGER = logging.getLogger("monitor_start")
LOGGER.setLevel(logging.INFO)

UNSET = "none"  # the promoted state's "not set" (lambdas/promotion)
MONITORS = ("data_quality", "model_quality", "bias")
LABELLED = ("model_quality", "bias")
RUNNING = ("Executing", "Stopping")
ENVIRONMENT = {
    "pipeline_name": "PIPELINE_NAME",
    "bucket": "BUCKET",
    "capture_prefix": "CAPTURE_PREFIX",  # e.g. data-capture/mlp-dev-endpoint
    "ground_truth_prefix": "GROUND_TRUTH_PREFIX",  # e.g. ground-truth/mlp-dev-endpoint
    "manifest_prefix": "MANIFEST_PREFIX",  # e.g. monitoring/mlp-dev-endpoint/manifests
    # The bucket's KMS key ARN: its policy refuses an upload that does not name it.
    "kms_key_id": "KMS_KEY_ID",
    # JSON: "model_package" and each monitor -> the SSM parameter of its promoted value (a baseline
    # document's URI), which is "none" when not set.
    "state_parameters": "STATE_PARAMETERS",
}


class StartError(ValueError):
    """An event or setting the function cannot act on (one line naming it)."""


@dataclass(frozen=True)
class Settings:
    pipeline_name: str
    bucket: str
    capture_prefix: str
    ground_truth_prefix: str
    manifest_prefix: str
    kms_key_id: str
    state_parameters: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        missing = [variable for variable in ENVIRONMENT.values() if not environ.get(variable)]
        if missing:
            raise StartError(f"missing environment variable(s): {', '.join(missing)}")
        return cls(**{name: environ[variable] for name, variable in ENVIRONMENT.items()})

    def parameter_names(self) -> dict[str, str]:
        try:
            value = json.loads(self.state_parameters)
        except json.JSONDecodeError as error:
            raise StartError(f"STATE_PARAMETERS is not JSON: {error}") from None
        if not isinstance(value, dict) or "model_package" not in value:
            raise StartError("STATE_PARAMETERS must map model_package and monitors to SSM parameter names")
        return {str(k): str(v) for k, v in value.items()}


def promoted(ssm: Any, settings: Settings) -> dict[str, str]:
    """The served version's values by key of STATE_PARAMETERS ("none" where a parameter is missing)."""
    names = settings.parameter_names()
    answer = ssm.get_parameters(Names=sorted(set(names.values())))
    values = {p["Name"]: p["Value"] for p in answer.get("Parameters", [])}
    return {key: values.get(name, UNSET) for key, name in names.items()}


@dataclass(frozen=True)
class Request:
    """What one scheduled invocation asks for."""

    start: datetime
    end: datetime
    monitors: tuple[str, ...]

    @classmethod
    def parse(cls, event: Any) -> Request:
        if not isinstance(event, dict):
            raise StartError(f"event must be an object, got {type(event).__name__}")
        try:
            time = datetime.strptime(str(event.get("time")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise StartError(
                f"event.time = {event.get('time')!r}: allowed: a UTC time like 2026-05-09T14:00:07Z"
            ) from None
        monitors = event.get("monitors")
        if not isinstance(monitors, list) or not monitors or any(m not in MONITORS for m in monitors):
            raise StartError(f"event.monitors = {monitors!r}: allowed: a non-empty list of {', '.join(MONITORS)}")
        period, delay = event.get("period_hours", 1), event.get("delay_hours", 0)
        if not isinstance(period, int) or not isinstance(delay, int) or period < 1 or delay < 0:
            raise StartError(f"event.period_hours/delay_hours = {period!r}/{delay!r}: allowed: integers, 1+ and 0+")
        end = time.replace(minute=0, second=0, microsecond=0) - timedelta(hours=delay)
        return cls(start=end - timedelta(hours=period), end=end, monitors=tuple(monitors))

    @property
    def hours(self) -> list[datetime]:
        count = int((self.end - self.start) / timedelta(hours=1))
        return [self.start + timedelta(hours=i) for i in range(count)]


def _iso(time: datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ")


def _directory(uri: str) -> str:
    """The baseline's directory (the analysis job reads statistics.json and constraints.json there)."""
    return uri.rsplit("/", 1)[0] + "/"


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def window_keys(s3: Any, settings: Settings, request: Request, *, labelled: bool) -> tuple[list[str], list[str]]:
    """The capture files of the window's hours (every variant), and the ground-truth files if `labelled`."""
    variants = [
        common["Prefix"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=settings.bucket, Prefix=f"{settings.capture_prefix}/", Delimiter="/"
        )
        for common in page.get("CommonPrefixes", [])
    ]
    hours = [hour.strftime("%Y/%m/%d/%H/") for hour in request.hours]
    capture = [key for variant in variants for hour in hours for key in _keys(s3, settings.bucket, variant + hour)]
    truth = (
        [key for hour in hours for key in _keys(s3, settings.bucket, f"{settings.ground_truth_prefix}/{hour}")]
        if labelled
        else []
    )
    return capture, truth


def running(sagemaker: Any, pipeline: str) -> str | None:
    """The ARN of an execution of `pipeline` that is executing or stopping, if any."""
    answer = sagemaker.list_pipeline_executions(
        PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=20
    )
    for summary in answer.get("PipelineExecutionSummaries", []):
        if summary.get("PipelineExecutionStatus") in RUNNING:
            return str(summary.get("PipelineExecutionArn"))
    return None


def start(event: Any, *, s3: Any, sagemaker: Any, ssm: Any, settings: Settings) -> dict[str, Any]:
    """Start the run the event asks for, or say why not."""
    request = Request.parse(event)
    window = {"window_start": _iso(request.start), "window_end": _iso(request.end)}
    baselines = promoted(ssm, settings)
    if baselines["model_package"] == UNSET:
        return _outcome("ignored", "no model version is served yet", **window)
    data = baselines.get("data_quality", UNSET)
    if data == UNSET:
        return _outcome("skipped", "the served version registered no data baseline (the schema every monitor needs)")
    monitors = [m for m in request.monitors if baselines.get(m, UNSET) != UNSET]
    off = [m for m in request.monitors if m not in monitors]
    if not monitors:
        return _outcome("skipped", f"the served version registered no baseline of {', '.join(off)}", **window)
    busy = running(sagemaker, settings.pipeline_name)
    if busy:
        return _outcome("skipped", f"a monitor run is still executing ({busy}); runs never overlap", **window)
    capture, truth = window_keys(s3, settings, request, labelled=any(m in LABELLED for m in monitors))
    if not capture:
        return _outcome("no_data", "no captured requests in the window", **window)
    manifest = f"{settings.manifest_prefix}/{request.start:%Y%m%dT%H}-{'-'.join(monitors)}.manifest"
    body = json.dumps([{"prefix": f"s3://{settings.bucket}/"}, *capture, *truth]).encode()
    s3.put_object(
        Bucket=settings.bucket,
        Key=manifest,
        Body=body,
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=settings.kms_key_id,
    )
    parameters = {
        "Manifest": f"s3://{settings.bucket}/{manifest}",
        "WindowStart": window["window_start"],
        "WindowEnd": window["window_end"],
        "Monitors": ",".join(monitors),
        "DataBaseline": _directory(data),
        # An input the run does not read (its monitor is off) still needs a location: the data baseline's.
        "QualityBaseline": _directory(baselines.get("model_quality", UNSET) if "model_quality" in monitors else data),
        "BiasBaseline": _directory(baselines.get("bias", UNSET) if "bias" in monitors else data),
    }
    answer = sagemaker.start_pipeline_execution(
        PipelineName=settings.pipeline_name,
        PipelineExecutionDisplayName=f"{request.start:%Y%m%dT%H}-{len(request.hours)}h",
        PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        ClientRequestToken=_token(settings.pipeline_name, parameters),
    )
    return _outcome(
        "started",
        f"{len(capture)} capture and {len(truth)} ground-truth files",
        execution=answer.get("PipelineExecutionArn"),
        monitors=monitors,
        monitors_off=off,
        **window,
    )


def _token(pipeline: str, parameters: Mapping[str, str]) -> str:
    """The same window and monitors give the same token: a retried invocation does not start a second run."""
    digest = hashlib.sha256(json.dumps([pipeline, sorted(parameters.items())]).encode()).hexdigest()
    return digest[:64]


def _outcome(action: str, reason: str, **fields: Any) -> dict[str, Any]:
    return {"action": action, "reason": reason, **fields}


def _log(record: Mapping[str, Any]) -> None:
    LOGGER.info(json.dumps(record, default=str, sort_keys=True))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: settings from the environment, clients from the execution role."""
    clients = {name: boto3.client(name) for name in ("s3", "sagemaker", "ssm")}
    outcome = start(event, **clients, settings=Settings.from_env())
    _log(outcome)
    return outcome
