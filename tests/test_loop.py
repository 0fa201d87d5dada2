"""The loop data -> model -> endpoint -> drift -> retraining: alarms, rules, and the contracts between stacks.

Contract tests check that every name one stack uses for another's resource (an alarm's metric
dimensions, a rule's pattern, a dashboard widget, a function's environment) is what the
synthesized app really creates. The end-to-end test walks the loop offline with moto. The
monitors themselves are in the Serving stack (tests/test_serving.py).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.catalog.monitors import BASELINE_PARAMETERS
from infra.config import load_config
from infra.constructs.functions import PythonFunction
from infra.constructs.serving_state import MODEL_PACKAGE as PARAMETER
from lambdas.promotion import handler as promotion
from lambdas.retraining import handler as retraining


def _function(synthesized, stack: str) -> dict[str, Any]:
    """The properties of a stack's one Lambda function (Serving's promotion function, beside the monitor's)."""
    functions = synthesized.properties(stack, "AWS::Lambda::Function")
    if len(functions) > 1:
        (function,) = [f for f in functions if f["FunctionName"].endswith("-promotion")]
        return function
    (function,) = functions
    return function


# --- Drift baselines: what the pipeline registers is what the promotion reads ------------------------


def test_registered_drift_baselines_are_what_the_promotion_reads(prod):
    from infra.checks.rules import pipeline_definition

    (pipeline,) = prod.properties("Training", "AWS::SageMaker::Pipeline")
    definition = pipeline_definition(pipeline)
    steps = {s["Name"]: s for s in definition["Steps"]}
    register = next(s for s in steps["QualityGate"]["Arguments"]["IfSteps"] if s["Type"] == "RegisterModel")
    baselines = register["Arguments"]["DriftCheckBaselines"]
    for path in BASELINE_PARAMETERS.values():
        node: Any = {"DriftCheckBaselines": baselines}
        for part in path.split(".")[:-1]:
            node = node[part]
        assert "S3Uri" in node, path


# --- Alarms, notices and the dashboard (Monitoring stack) -------------------------------------------


def test_drift_alarms_name_the_metrics_the_platform_monitor_publishes(dev):
    alarms = dev.named("Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    (endpoint,) = dev.properties("Serving", "AWS::SageMaker::Endpoint")
    publisher = next(
        f for f in dev.properties("Serving", "AWS::Lambda::Function") if "monitor_metrics" in f["FunctionName"]
    )
    features = load_config("dev").training.features
    drift = {name: a for name, a in alarms.items() if name.startswith("mlp-dev-drift-")}
    assert set(drift) == {f"mlp-dev-drift-{f}" for f in features}
    for feature in features:
        alarm = drift[f"mlp-dev-drift-{feature}"]
        # Contract: the namespace the publisher writes, the dimensions it sets (monitoring/README.md).
        assert (alarm["Namespace"], alarm["MetricName"]) == (
            publisher["Environment"]["Variables"]["METRIC_NAMESPACE"],
            "FeatureDrift",
        )
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions == {"Endpoint": endpoint["EndpointName"], "MonitorKind": "data_quality", "Feature": feature}
        assert alarm["Threshold"] == 0.2 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 3600
        assert alarm["TreatMissingData"] == "notBreaching"


def test_drift_alarms_name_the_metrics_model_monitor_publishes(prod_model_monitor):
    synthesized = prod_model_monitor
    alarms = synthesized.named("Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    schedules = synthesized.named("Serving", "AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName")
    (endpoint,) = synthesized.properties("Serving", "AWS::SageMaker::Endpoint")
    features = load_config("prod").training.features
    drift = {name: a for name, a in alarms.items() if name.startswith("mlp-prodmm-drift-")}
    assert set(drift) == {f"mlp-prodmm-drift-{f}" for f in features}
    for feature in features:
        alarm = drift[f"mlp-prodmm-drift-{feature}"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (
            "aws/sagemaker/Endpoints/data-metrics",
            f"feature_baseline_drift_{feature}",
        )
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        # Contract: the endpoint and the schedule these dimensions name exist in the Serving stack.
        assert dimensions["Endpoint"] == endpoint["EndpointName"]
        assert dimensions["MonitoringSchedule"] in schedules
        assert alarm["Threshold"] == 0.1 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Period"] == 3600


def test_model_quality_and_health_alarms_name_real_resources(prod, dev):
    alarms = prod.named("Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    quality = alarms["mlp-prod-model-quality-auc"]
    assert (quality["Namespace"], quality["MetricName"], quality["Threshold"]) == ("MLPlatform/Monitoring", "auc", 0.8)
    assert quality["Dimensions"] == [
        {"Name": "Endpoint", "Value": "mlp-prod-endpoint"},
        {"Name": "MonitorKind", "Value": "model_quality"},
    ]
    bias = alarms["mlp-prod-bias-MaxBiasShift"]
    assert (bias["MetricName"], bias["Threshold"], bias["ComparisonOperator"]) == (
        "MaxBiasShift",
        0.1,
        "GreaterThanThreshold",
    )
    (config,) = prod.properties("Serving", "AWS::SageMaker::EndpointConfig")
    variants = {v["VariantName"]: v["InstanceType"] for v in config["ProductionVariants"]}
    for alarm in alarms.values():
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        if "VariantName" in dimensions:
            assert dimensions["VariantName"] in variants and dimensions["EndpointName"] == "mlp-prod-endpoint"
    # 80% of ml.g6.xlarge's 4 vCPUs; the GPU alarm only where the variant has a GPU (not dev's ml.m5.large).
    assert alarms["mlp-prod-L4-cpu"]["Threshold"] == 320
    assert {"mlp-prod-Gpu-gpu", "mlp-prod-L4-gpu"} <= set(alarms)
    dev_alarms = dev.named("Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    assert "mlp-dev-AllTraffic-cpu" in dev_alarms and "mlp-dev-AllTraffic-gpu" not in dev_alarms
    traffic = alarms["mlp-prod-endpoint-traffic"]
    assert traffic["TreatMissingData"] == "breaching" and traffic["ComparisonOperator"] == "LessThanThreshold"
    assert all("Alerts" in json.dumps(a["AlarmActions"]) for a in alarms.values())


def test_function_and_pipeline_alarms_name_what_exists(dev):
    alarms = dev.named("Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    functions = {
        f["FunctionName"] for stack in ("Serving", "Retraining") for f in dev.properties(stack, "AWS::Lambda::Function")
    }
    assert functions == {"mlp-dev-promotion", "mlp-dev-retraining", "mlp-dev-monitor_start", "mlp-dev-monitor_metrics"}
    errors = [a for a in alarms.values() if a["MetricName"] == "Errors"]
    assert {a["Dimensions"][0]["Value"] for a in errors} == set(functions)
    (pipeline,) = dev.properties("Training", "AWS::SageMaker::Pipeline")
    failed = alarms["mlp-dev-pipeline-failed"]
    assert failed["Dimensions"] == [{"Name": "PipelineName", "Value": pipeline["PipelineName"]}]


def test_pipeline_failures_and_pending_versions_reach_people(dev):
    rules = {k: r["Properties"] for k, r in dev.resources("Monitoring", "AWS::Events::Rule").items()}
    failures = rules["PipelineFailures"]["EventPattern"]
    assert failures["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert failures["detail"]["currentPipelineExecutionStatus"] == ["Failed"]
    (arn,) = failures["detail"]["pipelineArn"]
    (pipeline,) = dev.properties("Training", "AWS::SageMaker::Pipeline")
    assert json.dumps(arn).endswith(f':pipeline/{pipeline["PipelineName"]}"]]}}')
    pending = rules["PendingApprovals"]["EventPattern"]
    (group,) = dev.properties("Training", "AWS::SageMaker::ModelPackageGroup")
    assert pending["detail"] == {
        "ModelPackageGroupName": [group["ModelPackageGroupName"]],
        "ModelApprovalStatus": ["PendingManualApproval"],
    }
    for rule in rules.values():
        (target,) = rule["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8 and "DeadLetterConfig" in target
    assert "Approvals" in json.dumps(rules["PendingApprovals"]["Targets"][0]["Arn"])


def _dashboard_metrics(synthesized) -> list[list[Any]]:
    (dashboard,) = synthesized.properties("Monitoring", "AWS::CloudWatch::Dashboard")
    body = dashboard["DashboardBody"]
    text = (
        body if isinstance(body, str) else "".join(p if isinstance(p, str) else "REGION" for p in body["Fn::Join"][1])
    )
    widgets = json.loads(text)["widgets"]
    return [m for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]]


def test_dashboard_widgets_show_what_the_app_creates(prod):
    metrics = _dashboard_metrics(prod)
    names = {
        "EndpointName": {"mlp-prod-endpoint"},
        "Endpoint": {"mlp-prod-endpoint"},
        "VariantName": {"Gpu", "L4"},
        # The platform engine's dimensions (lambdas/monitor_metrics).
        "MonitorKind": {"data_quality", "model_quality", "bias"},
        "Feature": set(load_config("prod").training.features),
        "PipelineName": {p["PipelineName"] for p in prod.properties("Training", "AWS::SageMaker::Pipeline")},
        "FunctionName": {
            f["FunctionName"] for s in ("Serving", "Retraining") for f in prod.properties(s, "AWS::Lambda::Function")
        },
    }
    seen = set()
    for metric in metrics:
        dimensions = dict(zip(metric[2::2], metric[3::2], strict=True))
        for name, value in dimensions.items():
            assert value in names[name], (name, value)
            seen.add(name)
    assert seen == set(names)
    drift = [m for m in metrics if m[1] == "FeatureDrift"]
    assert {m[m.index("Feature") + 1] for m in drift} == set(load_config("prod").training.features)


def test_model_monitor_dashboard_shows_its_schedules_and_explainability(prod_model_monitor):
    prod = prod_model_monitor
    metrics = _dashboard_metrics(prod)
    schedules = set(prod.named("Serving", "AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName"))
    for metric in metrics:
        dimensions = dict(zip(metric[2::2], metric[3::2], strict=True))
        assert dimensions.get("MonitoringSchedule", next(iter(schedules))) in schedules
    drift = [m for m in metrics if m[1].startswith("feature_baseline_drift_")]
    assert {m[1] for m in drift} == {"feature_baseline_drift_amount"}
    attributions = [m for m in metrics if m[0] == "aws/sagemaker/Endpoints/explainability-metrics"]
    # One global SHAP value per model feature, under the label the registered SHAP baseline uses.
    assert [m[1] for m in attributions] == ["feature_amount"]
    from pipelines.steps.evaluate import SHAP_LABEL

    assert dict(zip(attributions[0][2::2], attributions[0][3::2], strict=True))["Label"] == SHAP_LABEL


def test_dev_dashboard_has_no_widget_for_a_monitor_it_lacks(dev):
    metrics = _dashboard_metrics(dev)
    assert not any(m[0] == "aws/sagemaker/Endpoints/model-metrics" for m in metrics), "dev has no model-quality monitor"
    assert all(len(m) > 2 for m in metrics), "every metric names its dimensions"


# --- Retraining rules and function (Retraining stack) -----------------------------------------------------


def test_retraining_rules_match_the_events_their_sources_send(prod):
    rules = {k: r["Properties"] for k, r in prod.resources("Retraining", "AWS::Events::Rule").items()}
    assert set(rules) == {"DriftTrigger", "ScheduleTrigger", "NewDataTrigger", "ManualTrigger"}
    drift = rules["DriftTrigger"]["EventPattern"]
    assert drift["source"] == ["aws.cloudwatch"] and drift["detail-type"] == ["CloudWatch Alarm State Change"]
    assert drift["detail"]["state"] == {"value": ["ALARM"]}
    (prefix,) = drift["detail"]["alarmName"]
    # Contract: the prefix matches every drift alarm and no other alarm of the app.
    alarms = [
        a for stack in ("Monitoring", "Serving") for a in prod.named(stack, "AWS::CloudWatch::Alarm", "AlarmName")
    ]
    matched = {a for a in alarms if a.startswith(prefix["prefix"])}
    assert matched == {"mlp-prod-drift-amount"}
    assert rules["ScheduleTrigger"]["ScheduleExpression"] == "cron(0 3 ? * SUN *)"
    new_data = rules["NewDataTrigger"]["EventPattern"]
    assert new_data["source"] == ["aws.s3"] and new_data["detail-type"] == ["Object Created"]
    assert new_data["detail"]["bucket"]["name"] == [{"Fn::ImportValue": "mlp-prod-raw-bucket-name"}]
    assert new_data["detail"]["object"]["key"] == [{"prefix": "transactions/"}]
    # Contract: the export exists, on the raw bucket, and raw objects really reach EventBridge.
    outputs = prod.templates["DataLake"]["Outputs"]
    (raw_name,) = [o for o in outputs.values() if o.get("Export", {}).get("Name") == "mlp-prod-raw-bucket-name"]
    raw_id = raw_name["Value"]["Ref"]
    raw = prod.templates["DataLake"]["Resources"][raw_id]
    assert raw["Properties"]["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    manual = rules["ManualTrigger"]["EventPattern"]
    variables = _function(prod, "Retraining")["Environment"]["Variables"]
    assert manual == {"source": [variables["MANUAL_SOURCE"]], "detail-type": ["Retraining Requested"]}
    for rule in rules.values():
        (target,) = rule["Targets"]
        assert target["Arn"]["Fn::GetAtt"][0].startswith("RetrainingFunction")
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
        assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("RetrainingDeadLetters")
    permissions = prod.properties("Retraining", "AWS::Lambda::Permission")
    assert {json.dumps(p["SourceArn"]) for p in permissions} == {
        json.dumps({"Fn::GetAtt": [name, "Arn"]}) for name in rules
    }


def test_retraining_function_is_configured_as_its_handler_reads(prod):
    function = _function(prod, "Retraining")
    variables = function["Environment"]["Variables"]
    assert set(variables) == set(retraining.ENVIRONMENT.values())
    (pipeline,) = prod.properties("Training", "AWS::SageMaker::Pipeline")
    assert variables["PIPELINE_NAME"] == pipeline["PipelineName"]
    assert variables["COOLDOWN_MINUTES"] == "1440"
    assert (variables["NEW_DATA_MIN_OBJECTS"], variables["NEW_DATA_MIN_BYTES"]) == ("1000", "1073741824")
    assert variables["STATE_TABLE"] == {"Ref": "State"}
    # One start at a time through the state table's lock item, not reserved concurrency (decision 26).
    assert "ReservedConcurrentExecutions" not in function
    retraining.Settings.from_env({k: v if isinstance(v, str) else "table" for k, v in variables.items()})


def test_the_functions_reserve_no_concurrency_and_the_report_says_why(prod):
    suppressed = [
        s for p in prod.report["pluginReports"] for s in p.get("suppressedViolations", [])
        if s["acknowledgedId"] == "MLPlatform::MLP-L2" and s["acknowledgedAt"].endswith("/Function")
    ]  # fmt: skip
    reasons = {s["acknowledgedAt"]: s["reason"] for s in suppressed}
    # Every function of the app, none reserving concurrency, each acknowledged with its own reason.
    functions = {
        f"{construct.node.path}/Function"
        for stack in prod.platform.stacks
        for construct in stack.node.find_all()
        if isinstance(construct, PythonFunction)
    }
    assert set(reasons) == functions
    assert {
        "Retraining/Retraining/Function",
        "Serving/Promotion/Function",
        "Serving/MonitorStart/Function",
    } <= functions
    assert all("(Lambda keeps 10 unreserved there; decision 26)" in reason for reason in reasons.values())
    assert "DynamoDB lease" in reasons["Retraining/Retraining/Function"]
    assert "PromotionLock" in reasons["Serving/Promotion/Function"]
    assert "request token" in reasons["Serving/MonitorStart/Function"]


def test_state_table_is_keyed_as_the_handler_writes_and_kept(prod):
    (table,) = prod.resources("Retraining", "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEType"] == "KMS" and "KeysLogs" in json.dumps(props["SSESpecification"])
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain" and props["DeletionProtectionEnabled"] is True


def test_retraining_may_start_only_its_pipeline_and_use_only_its_table(dev):
    template = dev.templates["Retraining"]
    statements = dev.role_statements("Retraining", "RetrainingRole")
    (start,) = [s for s in statements if "sagemaker:StartPipelineExecution" in s["Action"]]
    assert json.dumps(start["Resource"]).endswith(':pipeline/mlp-dev-training"]]}')
    (table,) = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert table["Resource"] == {"Fn::GetAtt": ["State", "Arn"]}
    assert set(table["Action"]) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert template["Resources"]["State"]["Type"] == "AWS::DynamoDB::Table"


# --- End to end, offline ---------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def _resolve(value: Any, names: dict[str, str]) -> Any:
    """A synthesized event pattern with its imports replaced by concrete names."""
    if isinstance(value, dict):
        if set(value) == {"Fn::ImportValue"}:
            return names[value["Fn::ImportValue"]]
        return {k: _resolve(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, names) for v in value]
    return value


# One story told in order: split up, the hand-offs between its steps would no longer be checked.
def test_the_loop_from_new_raw_data_to_an_endpoint_update(dev, aws):  # noqa: PLR0915
    """Raw object -> new-data rule -> retraining starts the pipeline -> approval -> promotion updates Serving."""
    import boto3

    region, raw = "us-east-1", "mlp-dev-datalake-raw-bucket"
    s3, events, sqs = (boto3.client(n, region_name=region) for n in ("s3", "events", "sqs"))
    sagemaker, dynamodb = (boto3.client(n, region_name=region) for n in ("sagemaker", "dynamodb"))
    cloudformation, sns = (boto3.client(n, region_name=region) for n in ("cloudformation", "sns"))

    # The raw bucket sends its events to EventBridge, as the DataLake stack configures it.
    s3.create_bucket(Bucket=raw)
    s3.put_bucket_notification_configuration(Bucket=raw, NotificationConfiguration={"EventBridgeConfiguration": {}})
    # The synthesized new-data rule, with a queue standing in for the retraining function.
    (rule,) = [
        r["Properties"] for k, r in dev.resources("Retraining", "AWS::Events::Rule").items() if k == "NewDataTrigger"
    ]
    pattern = _resolve(rule["EventPattern"], {"mlp-dev-raw-bucket-name": raw})
    queue = sqs.create_queue(QueueName="retraining")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="NewDataTrigger", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="NewDataTrigger", Targets=[{"Id": "Retraining", "Arn": queue_arn}])

    # The pipeline and the retraining function's state table, as synthesized.
    (pipeline,) = dev.properties("Training", "AWS::SageMaker::Pipeline")
    body = {"Version": "2020-12-01", "Parameters": [{"Name": "TriggerReason", "Type": "String"}], "Steps": []}
    sagemaker.create_pipeline(
        PipelineName=pipeline["PipelineName"],
        PipelineDefinition=json.dumps(body),
        RoleArn="arn:aws:iam::123456789012:role/pipeline",
    )
    (table,) = dev.properties("Retraining", "AWS::DynamoDB::Table")
    dynamodb.create_table(
        TableName="state",
        AttributeDefinitions=table["AttributeDefinitions"],
        KeySchema=table["KeySchema"],
        BillingMode=table["BillingMode"],
    )
    variables = dict(_function(dev, "Retraining")["Environment"]["Variables"])
    variables.update(STATE_TABLE="state", RAW_BUCKET=raw, NEW_DATA_MIN_OBJECTS="1")
    settings = retraining.Settings.from_env(variables)

    # 1. A file lands in the raw zone; the rule's target receives the event.
    s3.put_object(Bucket=raw, Key="transactions/2026/11/25/part-0.csv", Body=b"id,amount\n1,2\n")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    (event,) = [json.loads(m["Body"]) for m in messages]
    # 2. The retraining function starts the pipeline with the trigger as its reason.
    started = retraining.retrain(event, sagemaker=sagemaker, dynamodb=dynamodb, settings=settings)
    assert started["action"] == "started", started
    (execution,) = sagemaker.list_pipeline_executions(PipelineName=pipeline["PipelineName"])[
        "PipelineExecutionSummaries"
    ]
    parameters = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert {"Name": "TriggerReason", "Value": "new-data:1 objects/14 bytes"} in parameters

    # 3. The run registers a version and a reviewer approves it.
    (group,) = dev.properties("Training", "AWS::SageMaker::ModelPackageGroup")
    sagemaker.create_model_package_group(ModelPackageGroupName=group["ModelPackageGroupName"])
    package = sagemaker.create_model_package(
        ModelPackageGroupName=group["ModelPackageGroupName"],
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/model:1"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    approval = {
        "version": "0",
        "id": "approval-1",
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {
            "ModelPackageGroupName": group["ModelPackageGroupName"],
            "ModelPackageArn": package,
            "ModelApprovalStatus": "Approved",
        },
    }
    # The approval rule of the Serving stack takes this event (moto matches the synthesized pattern).
    (approvals,) = [
        r["Properties"]["EventPattern"]
        for k, r in dev.resources("Serving", "AWS::Events::Rule").items()
        if k == "ModelApprovals"
    ]
    inbox = sqs.create_queue(QueueName="promotion")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="ModelApprovals", EventPattern=json.dumps(approvals))
    events.put_targets(Rule="ModelApprovals", Targets=[{"Id": "Promotion", "Arn": inbox_arn}])
    events.put_events(
        Entries=[
            {
                "Source": approval["source"],
                "DetailType": approval["detail-type"],
                "Detail": json.dumps(approval["detail"]),
            }
        ]
    )
    (delivered,) = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=inbox)["Messages"]]
    assert delivered["detail"] == approval["detail"]
    approval = delivered

    # 4. The promotion function writes the promoted state and updates the Serving stack (its
    # parameters, as synthesized, resolved from the SSM parameters the DataLake stack creates).
    ssm = boto3.client("ssm", region_name=region)
    for state in dev.properties("DataLake", "AWS::SSM::Parameter"):
        ssm.put_parameter(Name=state["Name"], Value=state["Value"], Type=state["Type"])
    serving_parameters = dev.templates["Serving"]["Parameters"]
    stand_in = {
        "Parameters": {k: v for k, v in serving_parameters.items() if k != "BootstrapVersion"},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    }
    names = dict(_function(dev, "Serving")["Environment"]["Variables"])
    cloudformation.create_stack(StackName=names["STACK_NAME"], TemplateBody=json.dumps(stand_in))
    sent: list[dict[str, Any]] = []

    def resolve_again(params: dict[str, Any], **_: Any) -> None:
        # moto finds "No updates" for a UsePreviousValue parameter whose SSM value changed; CloudFormation
        # resolves the SSM name again. Left out of what moto sees, it gets its Default, the same name.
        sent.append(copy.deepcopy(params))
        params["Parameters"] = [p for p in params["Parameters"] if not p.get("UsePreviousValue")]

    cloudformation.meta.events.register("before-parameter-build.cloudformation.UpdateStack", resolve_again)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    # Deploy-time values: the deploy role, the alert topic and the account (moto's) the registry is in.
    assert names["MODEL_PACKAGE_ACCOUNT"] == {"Ref": "AWS::AccountId"}
    # The promotion lock's table as synthesized.
    (lock_id,) = dev.resources("Serving", "AWS::DynamoDB::Table")
    assert names["LOCK_TABLE"] == {"Ref": lock_id}
    lock = dev.templates["Serving"]["Resources"][lock_id]["Properties"]
    dynamodb.create_table(
        TableName="promotion-lock", **{k: lock[k] for k in ("KeySchema", "AttributeDefinitions", "BillingMode")}
    )
    names.update(
        DEPLOY_ROLE_ARN="arn:aws:iam::123456789012:role/deploy",
        ALERT_TOPIC_ARN=topic,
        MODEL_PACKAGE_ACCOUNT="123456789012",
        LOCK_TABLE="promotion-lock",
    )
    result = promotion.promote(
        approval,
        cloudformation=cloudformation,
        sagemaker=sagemaker,
        sns=sns,
        ssm=ssm,
        dynamodb=dynamodb,
        settings=promotion.Settings.from_env(names),
    )
    assert result["action"] == "updated", result
    assert ssm.get_parameter(Name=f"{names['STATE_PREFIX']}{PARAMETER}")["Parameter"]["Value"] == package
    # The update carries no value: every parameter is the previous one, which CloudFormation resolves anew.
    (update,) = sent
    assert all(p.get("UsePreviousValue") and "ParameterValue" not in p for p in update["Parameters"])
    stack = cloudformation.describe_stacks(StackName=names["STACK_NAME"])["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}[PARAMETER] == package
