"""The platform monitoring engine as shipped: no Model Monitor or Debugger anywhere, and how its run is connected."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.catalog import monitors, naming
from infra.checks.rules import check_template, pipeline_definition
from infra.config import load_config
from lambdas.monitor_metrics import handler as publisher
from lambdas.monitor_start import handler as starter
from pipelines import definition as pipeline

# What a template, a pipeline definition or an allowed IAM action of Model Monitor or Debugger looks like.
MODEL_MONITOR_MARKERS = (
    "sagemaker-model-monitor-analyzer",
    "AWS::SageMaker::MonitoringSchedule",
    *(kind.resource_type for kind in monitors.KINDS),
    "MonitoringScheduleName",
    "QualityCheck",
    "ClarifyCheck",
)
DEBUGGER_MARKERS = (
    "sagemaker-debugger-rules",
    "DebugRuleConfigurations",
    "DebugHookConfig",
    "ProfilerRuleConfigurations",
)
FORBIDDEN_ACTIONS = (
    "sagemaker:CreateMonitoringSchedule",
    "sagemaker:UpdateMonitoringSchedule",
    "sagemaker:StartMonitoringSchedule",
    *(kind.create_action for kind in monitors.KINDS),
    "ecr:*",
)
STACK = "Serving"


def _without_denies(node: Any) -> Any:
    """The template with every Deny statement left out: the guardrail names Model Monitor's actions to deny them."""
    if isinstance(node, dict):
        if node.get("Effect") == "Deny":
            return None
        return {k: _without_denies(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_denies(v) for v in node]
    return node


def _allowed_actions(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("Effect") == "Allow":
            actions = node.get("Action", [])
            found += [actions] if isinstance(actions, str) else list(actions)
        for value in node.values():
            found += _allowed_actions(value)
    elif isinstance(node, list):
        for value in node:
            found += _allowed_actions(value)
    return found


def test_dev_has_no_model_monitor_or_debugger_resource_image_or_api(dev):
    assert load_config("dev").monitoring.engine == "platform"
    stored = json.loads((pipeline.CACHE_DIR / "mlp-dev-training.json").read_text())
    texts = {"stored pipeline definition": json.dumps(stored)}
    for stack, template in dev.templates.items():
        texts[stack] = json.dumps(_without_denies(template))
        for action in _allowed_actions(template):
            assert action not in FORBIDDEN_ACTIONS, (stack, action)
            assert not action.startswith("sagemaker:") or "Monitoring" not in action, (stack, action)
    for where, text in texts.items():
        for marker in (*MODEL_MONITOR_MARKERS, *DEBUGGER_MARKERS):
            assert marker not in text, (where, marker)


def test_the_scan_finds_model_monitor_where_it_is_used(prod_model_monitor):
    """Negative control: the same scan on the model_monitor engine finds its schedules, images and actions."""
    text = json.dumps(_without_denies(prod_model_monitor.templates[STACK]))
    assert "AWS::SageMaker::MonitoringSchedule" in text and "sagemaker-model-monitor-analyzer" in text


def _pipeline(synthesized) -> tuple[str, dict[str, Any]]:
    resources = synthesized.resources(STACK, "AWS::SageMaker::Pipeline")
    ((logical_id, resource),) = resources.items()
    return logical_id, resource


def test_the_run_is_an_isolated_encrypted_analysis_then_a_lambda_step_that_publishes(dev):
    _, resource = _pipeline(dev)
    definition = pipeline_definition(resource["Properties"])
    analyze, publish = definition["Steps"]
    args = analyze["Arguments"]
    assert (analyze["Type"], publish["Type"]) == ("Processing", "Lambda")
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert args["NetworkConfig"]["EnableInterContainerTrafficEncryption"] is True
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${ArtifactsKeyArn}"
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${ArtifactsKeyArn}"
    assert args["AppSpecification"]["ContainerEntrypoint"] == ["python3", "-m", "monitoring.analyze"]
    assert args["Environment"]["PYTHONPATH"] == "/opt/ml/processing/input/library/${LibraryKey}"
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs["window"]["S3DataType"] == "ManifestFile" and inputs["window"]["S3Uri"] == {
        "Get": "Parameters.Manifest"
    }
    # The pipeline's parameters are exactly those the starter sets.
    assert {p["Name"] for p in definition["Parameters"]} == {
        "Manifest",
        "WindowStart",
        "WindowEnd",
        "Monitors",
        "DataBaseline",
        "QualityBaseline",
        "BiasBaseline",
    }
    assert publish["Arguments"]["report_uri"]["Std:Join"]["Values"][-1] == "report.json"
    # MLP-SM6 parses this definition: no finding.
    assert [f for f in check_template(dev.templates[STACK]) if f.rule.id == "MLP-SM6"] == []
    variables = resource["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][1]
    assert "sagemaker-scikit-learn:1.2-1-cpu-py3" in json.dumps(variables["SKLearnImage"])


def _function(synthesized, source: str) -> dict[str, Any]:
    name = naming.function_name(load_config("dev"), source)
    (function,) = [f for f in synthesized.properties(STACK, "AWS::Lambda::Function") if f["FunctionName"] == name]
    return function


def test_starter_and_publisher_are_configured_as_their_handlers_read(dev):
    start = _function(dev, "monitor_start")["Environment"]["Variables"]
    assert set(start) == set(starter.ENVIRONMENT.values())
    assert start["PIPELINE_NAME"] == _pipeline(dev)[1]["Properties"]["PipelineName"]
    assert start["CAPTURE_PREFIX"] == f"{naming.CAPTURE_PREFIX}/mlp-dev-endpoint"
    state = json.loads(start["STATE_PARAMETERS"])
    assert state == {
        "model_package": "/mlp-dev/serving/ModelPackageArn",
        "data_quality": "/mlp-dev/serving/DataQualityStatistics",
    }
    # Every SSM parameter the starter reads is one the lake stack creates and promotion writes.
    created = {p["Name"] for p in dev.properties("DataLake", "AWS::SSM::Parameter")}
    assert set(state.values()) <= created
    metrics = _function(dev, "monitor_metrics")["Environment"]["Variables"]
    assert set(metrics) == set(publisher.ENVIRONMENT.values())
    assert metrics["METRIC_NAMESPACE"] == monitors.PLATFORM_NAMESPACE
    assert metrics["REPORT_PREFIX"] == "monitoring/mlp-dev-endpoint/reports/"


def test_starts_are_scheduled_retried_and_failed_runs_alert(dev):
    rules = {k: r["Properties"] for k, r in dev.resources(STACK, "AWS::Events::Rule").items()}
    hourly = rules["MonitorHourly"]
    assert hourly["ScheduleExpression"] == "cron(5 * ? * * *)"
    (target,) = hourly["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8 and "DeadLetterConfig" in target
    template = json.loads(target["InputTransformer"]["InputTemplate"].replace("<time>", '"2026-05-09T14:05:00Z"'))
    request = starter.Request.parse(template)
    assert (request.monitors, request.start.hour, request.end.hour) == (("data_quality",), 13, 14)
    failures = rules["MonitorRunFailures"]["EventPattern"]
    assert failures["detail"]["currentPipelineExecutionStatus"] == ["Failed"]
    assert "Alerts" in json.dumps(rules["MonitorRunFailures"]["Targets"][0]["Arn"])


def test_the_job_role_reads_only_this_endpoints_prefixes_and_carries_the_guardrail(dev):
    statements = dev.role_statements(STACK, "MonitorRole")
    reads = json.dumps([s["Resource"] for s in statements if s["Action"] == "s3:GetObject"])
    for prefix in (naming.CAPTURE_PREFIX, naming.GROUND_TRUTH_PREFIX, naming.MONITOR_PREFIX):
        assert f"/{prefix}/mlp-dev-endpoint/*" in reads
    (write,) = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert "/monitoring/mlp-dev-endpoint/reports/*" in json.dumps(write["Resource"])
    for role in ("MonitorRole", "MonitorPipelineRole"):
        assert any("Guardrail" in json.dumps(arn) for arn in dev.managed_policy_arns(STACK, role)), role


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_a_shipped_config_works_in_a_new_account(env):
    config = load_config(env)
    assert config.monitoring is not None and config.monitoring.engine == "platform"
    assert config.monitoring.explainability is None
    assert config.training is not None and not config.training.debugger.rules
