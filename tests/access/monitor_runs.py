"""The parameters a platform monitor run is started with, from the deployed starter itself.

`lambdas/monitor_start` decides a run's parameters (the window's manifest, the promoted baselines'
directories, the monitors) from its environment and the promoted state. Here the real handler runs
with the deployed function's environment against moto, which holds the environment's promoted
state (the SSM parameters the Serving stack resolves) and one hour of captured and labelled
traffic; its start request is what the monitor pipeline's contract evaluates. moto decides no
access here: the starter's own calls are judged from its recordings (tests/access/test_lambda_calls.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.access import recorder
from tests.access.environments import Deployed
from tests.access.resolver import Resource

EVENT_TIME = "2026-01-01T02:00:07Z"  # one hour of traffic, 2026/01/01/00, with the labels' hour of delay
HOUR = "2026/01/01/00"


@dataclass
class MonitorRun:
    """What one run reads: its execution parameters and the objects its manifest lists."""

    parameters: dict[str, str]
    manifest: list[str]  # s3:// URIs of the window's capture and ground-truth files


class _Pipelines:
    """SageMaker for the starter: no execution running; the start request is kept."""

    def __init__(self) -> None:
        self.started: dict[str, Any] | None = None

    def list_pipeline_executions(self, **_: Any) -> dict[str, Any]:
        return {"PipelineExecutionSummaries": []}

    def start_pipeline_execution(self, **request: Any) -> dict[str, Any]:
        self.started = request
        return {"PipelineExecutionArn": f"arn:aws:sagemaker:::pipeline/{request['PipelineName']}/execution/7"}


def starter_of(deployed: Deployed, pipeline: Resource) -> Resource | None:
    """The function that starts `pipeline` (its PIPELINE_NAME), if any."""
    from lambdas.monitor_start import handler

    for function in deployed.environment.resources("AWS::Lambda::Function"):
        variables = function.properties.get("Environment", {}).get("Variables", {})
        if set(handler.ENVIRONMENT.values()) <= set(variables) and variables["PIPELINE_NAME"] == pipeline.name:
            return function
    return None


def monitor_run(deployed: Deployed, starter: Resource) -> MonitorRun:
    """The run the deployed starter starts for an hour of traffic, with every monitor it knows."""
    import boto3
    from moto import mock_aws

    from lambdas.monitor_start import handler

    settings = handler.Settings.from_env(starter.properties["Environment"]["Variables"])
    state = settings.parameter_names()
    values = _promoted_state(deployed, set(state.values()))
    event = {"time": EVENT_TIME, "monitors": [m for m in handler.MONITORS if m in state], "delay_hours": 1}
    with mock_aws(), recorder.paused():
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
        s3, ssm = session.client("s3"), session.client("ssm")
        for name, value in values.items():
            ssm.put_parameter(Name=name, Value=value, Type="String")
        s3.create_bucket(Bucket=settings.bucket)
        keys = [f"{settings.capture_prefix}/AllTraffic/{HOUR}/capture.jsonl"]
        keys.append(f"{settings.ground_truth_prefix}/{HOUR}/labels.jsonl")
        for key in keys:
            s3.put_object(Bucket=settings.bucket, Key=key, Body=b"{}\n")
        pipelines = _Pipelines()
        outcome = handler.start(event, s3=s3, sagemaker=pipelines, ssm=ssm, settings=settings)
    assert pipelines.started is not None, f"{starter.name} started no run: {outcome}"
    parameters = {p["Name"]: p["Value"] for p in pipelines.started["PipelineParameters"]}
    labelled = any(m in handler.LABELLED for m in outcome["monitors"])
    return MonitorRun(parameters, [f"s3://{settings.bucket}/{k}" for k in keys[: 2 if labelled else 1]])


def _promoted_state(deployed: Deployed, names: set[str]) -> dict[str, str]:
    """The value of each SSM parameter the Serving stack resolves for the promoted version."""
    env = deployed.environment
    found = {}
    for stack in env.stacks.values():
        for key, parameter in stack.template.get("Parameters", {}).items():
            if parameter.get("Default") in names and key in env.parameter_values:
                found[parameter["Default"]] = env.parameter_values[key]
    missing = names - set(found)
    assert not missing, f"{env.name}: no promoted value for {sorted(missing)}"
    return found
