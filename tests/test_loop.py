"""The loop data -> model -> endpoint -> drift -> retraining: monitors, alarms, rules, and their contracts.

Contract tests check that every name one stack uses for another's resource (an alarm's metric
dimensions, a rule's pattern, a dashboard widget, a function's environment) is what the
synthesized app really creates. The end-to-end test walks the loop offline with moto.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.catalog.monitors import BASELINE_PARAMETERS
from infra.catalog.naming import GROUND_TRUTH_PREFIX
from infra.checks.rules import check_template
from infra.config import MONITOR_SCHEDULES, load_config
from infra.constructs.serving_state import MODEL_PACKAGE as PARAMETER
from lambdas.promotion import handler as promotion
from lambdas.retraining import handler as retraining


def _resources(synthesized, stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
    return synthesized.resources(stack, resource_type)


def _props(synthesized, stack: str, resource_type: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in _resources(synthesized, stack, resource_type).values()]


def _named(synthesized, stack: str, resource_type: str, key: str) -> dict[str, dict[str, Any]]:
    return {p[key]: p for p in _props(synthesized, stack, resource_type) if isinstance(p.get(key), str)}


def _function(synthesized, stack: str) -> dict[str, Any]:
    (function,) = _props(synthesized, stack, "AWS::Lambda::Function")
    return function


# --- Model Monitor (in the Serving stack: baselines switch with the model) -------------------------------


def test_monitors_run_on_the_promoted_baselines_in_the_vpc_with_kms(prod):
    template = prod.templates["Serving"]
    (data,) = _props(prod, "Serving", "AWS::SageMaker::DataQualityJobDefinition")
    assert data["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": {"Ref": "DataQualityConstraints"}},
        "StatisticsResource": {"S3Uri": {"Ref": "DataQualityStatistics"}},
    }
    assert data["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlp-prod-endpoint"
    assert "/sagemaker-model-monitor-analyzer" in json.dumps(data["DataQualityAppSpecification"]["ImageUri"])
    (quality,) = _props(prod, "Serving", "AWS::SageMaker::ModelQualityJobDefinition")
    assert quality["ModelQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": {"Ref": "ModelQualityConstraints"}}
    }
    assert quality["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    endpoint_input = quality["ModelQualityJobInput"]["EndpointInput"]
    assert (endpoint_input["ProbabilityAttribute"], endpoint_input["ProbabilityThresholdAttribute"]) == ("0", 0.5)
    ground_truth = json.dumps(quality["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"])
    assert f"/{GROUND_TRUTH_PREFIX}/mlp-prod-endpoint" in ground_truth
    for definition, kind in ((data, "DataQuality"), (quality, "ModelQuality")):
        network = definition["NetworkConfig"]
        assert network["EnableNetworkIsolation"] is True and network["EnableInterContainerTrafficEncryption"] is True
        assert network["VpcConfig"]["Subnets"] and network["VpcConfig"]["SecurityGroupIds"]
        assert "VolumeKmsKeyId" in definition["JobResources"]["ClusterConfig"]
        assert "KeysArtifacts" in json.dumps(definition[f"{kind}JobOutputConfig"]["KmsKeyId"])
    # The one finding is the explainability job's isolation, acknowledged with the config's reason.
    assert [(f.rule.id, f.logical_id) for f in check_template(template)] == [
        ("MLP-SM9", "ModelExplainabilityJobDefinition")
    ]
    # Each monitor exists only with a model and its baselines.
    conditions = template["Conditions"]
    assert conditions["MonitorModelQuality"] == {
        "Fn::And": [
            {"Condition": "HasModel"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelQualityConstraints"}, "none"]}]},
        ]
    }
    for resource in _resources(prod, "Serving", "AWS::SageMaker::MonitoringSchedule").values():
        assert resource["Condition"] in conditions and resource["DependsOn"] == ["Endpoint"]


def test_bias_monitor_reads_the_promoted_versions_config_and_labels(prod):
    (bias,) = _props(prod, "Serving", "AWS::SageMaker::ModelBiasJobDefinition")
    app = bias["ModelBiasAppSpecification"]
    assert app["ConfigUri"] == {"Ref": "BiasConfig"}
    assert "/sagemaker-clarify-processing:1.0" in json.dumps(app["ImageUri"])
    job_input = bias["ModelBiasJobInput"]
    assert job_input["EndpointInput"]["EndpointName"] == "mlp-prod-endpoint"
    assert f"/{GROUND_TRUTH_PREFIX}/mlp-prod-endpoint" in json.dumps(job_input["GroundTruthS3Input"]["S3Uri"])
    network = bias["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True and network["EnableInterContainerTrafficEncryption"] is True
    assert "KmsKeyId" in bias["ModelBiasJobOutputConfig"]
    assert prod.templates["Serving"]["Conditions"]["MonitorModelBias"] == {
        "Fn::And": [{"Condition": "HasModel"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "BiasConfig"}, "none"]}]}]
    }
    # The monitor role may pull the Clarify image; dev, without a bias monitor, gets no such grant.
    text = json.dumps(prod.templates["Serving"])
    assert "repository/sagemaker-clarify-processing" in text


def test_schedules_are_named_for_the_alarms_and_run_as_configured(prod):
    schedules = _named(prod, "Serving", "AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName")
    kinds = ("data-quality", "model-quality", "model-bias", "model-explainability")
    assert set(schedules) == {f"mlp-prod-endpoint-{kind}" for kind in kinds}
    assert schedules["mlp-prod-endpoint-model-bias"]["MonitoringScheduleConfig"]["MonitoringType"] == "ModelBias"
    explainability = schedules["mlp-prod-endpoint-model-explainability"]["MonitoringScheduleConfig"]
    assert explainability["MonitoringType"] == "ModelExplainability"
    assert explainability["ScheduleConfig"]["ScheduleExpression"] == MONITOR_SCHEDULES["daily"]
    data = schedules["mlp-prod-endpoint-data-quality"]["MonitoringScheduleConfig"]
    assert data["MonitoringType"] == "DataQuality"
    assert data["ScheduleConfig"]["ScheduleExpression"] == MONITOR_SCHEDULES["hourly"]
    assert data["MonitoringJobDefinitionName"] == {"Fn::GetAtt": ["DataQualityJobDefinition", "JobDefinitionName"]}


def test_promotion_sets_exactly_the_serving_stacks_baseline_parameters(prod, dev):
    for synthesized, expected in (
        (prod, set(BASELINE_PARAMETERS)),
        (dev, {"DataQualityStatistics", "DataQualityConstraints"}),
    ):
        parameters = synthesized.templates["Serving"]["Parameters"]
        variables = _function(synthesized, "Serving")["Environment"]["Variables"]
        mapping = json.loads(variables["BASELINE_PARAMETERS"])
        assert set(mapping) == expected and expected <= set(parameters)
        assert variables["PARAMETER_NAME"] == PARAMETER in parameters
        # A single-account environment promotes versions of its own account's registry only.
        assert variables["MODEL_PACKAGE_ACCOUNT"] == (
            {"Ref": "AWS::AccountId"} if synthesized is dev else "111111111111"
        )
        # The paths name what the pipeline registers (the Register step's DriftCheckBaselines).
        assert all(path.startswith("DriftCheckBaselines.") and path.endswith(".S3Uri") for path in mapping.values())


def test_registered_drift_baselines_are_what_the_promotion_reads(prod):
    from infra.checks.rules import pipeline_definition

    (pipeline,) = _props(prod, "Training", "AWS::SageMaker::Pipeline")
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


def test_drift_alarms_name_the_metrics_model_monitor_publishes(dev):
    alarms = _named(dev, "Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    schedules = _named(dev, "Serving", "AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName")
    (endpoint,) = _props(dev, "Serving", "AWS::SageMaker::Endpoint")
    features = load_config("dev").training.features
    drift = {name: a for name, a in alarms.items() if name.startswith("mlp-dev-drift-")}
    assert set(drift) == {f"mlp-dev-drift-{f}" for f in features}
    for feature in features:
        alarm = drift[f"mlp-dev-drift-{feature}"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (
            "aws/sagemaker/Endpoints/data-metrics",
            f"feature_baseline_drift_{feature}",
        )
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        # Contract: the endpoint and the schedule these dimensions name exist in the Serving stack.
        assert dimensions["Endpoint"] == endpoint["EndpointName"]
        assert dimensions["MonitoringSchedule"] in schedules
        assert alarm["Threshold"] == 0.2 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Period"] == 3600


def test_model_quality_and_health_alarms_name_real_resources(prod):
    alarms = _named(prod, "Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    quality = alarms["mlp-prod-model-quality-auc"]
    assert (quality["Namespace"], quality["MetricName"], quality["Threshold"]) == (
        "aws/sagemaker/Endpoints/model-metrics",
        "auc",
        0.8,
    )
    schedules = _named(prod, "Serving", "AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName")
    assert {d["Value"] for d in quality["Dimensions"]} <= {"mlp-prod-endpoint", *schedules}
    (config,) = _props(prod, "Serving", "AWS::SageMaker::EndpointConfig")
    variants = {v["VariantName"]: v["InstanceType"] for v in config["ProductionVariants"]}
    for alarm in alarms.values():
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        if "VariantName" in dimensions:
            assert dimensions["VariantName"] in variants and dimensions["EndpointName"] == "mlp-prod-endpoint"
    # 80% of ml.m5.xlarge's 4 vCPUs; the GPU alarm only where the variant has a GPU.
    assert alarms["mlp-prod-Cpu-cpu"]["Threshold"] == 320
    assert "mlp-prod-Gpu-gpu" in alarms and "mlp-prod-Cpu-gpu" not in alarms
    traffic = alarms["mlp-prod-endpoint-traffic"]
    assert traffic["TreatMissingData"] == "breaching" and traffic["ComparisonOperator"] == "LessThanThreshold"
    assert all("Alerts" in json.dumps(a["AlarmActions"]) for a in alarms.values())


def test_function_and_pipeline_alarms_name_what_exists(dev):
    alarms = _named(dev, "Monitoring", "AWS::CloudWatch::Alarm", "AlarmName")
    functions = {_function(dev, stack)["FunctionName"]: stack for stack in ("Serving", "Retraining")}
    assert set(functions) == {"mlp-dev-promotion", "mlp-dev-retraining"}
    errors = [a for a in alarms.values() if a["MetricName"] == "Errors"]
    assert {a["Dimensions"][0]["Value"] for a in errors} == set(functions)
    (pipeline,) = _props(dev, "Training", "AWS::SageMaker::Pipeline")
    failed = alarms["mlp-dev-pipeline-failed"]
    assert failed["Dimensions"] == [{"Name": "PipelineName", "Value": pipeline["PipelineName"]}]


def test_pipeline_failures_and_pending_versions_reach_people(dev):
    rules = {k: r["Properties"] for k, r in _resources(dev, "Monitoring", "AWS::Events::Rule").items()}
    failures = rules["PipelineFailures"]["EventPattern"]
    assert failures["detail-type"] == ["SageMaker Model Building Pipeline Execution Status Change"]
    assert failures["detail"]["currentPipelineExecutionStatus"] == ["Failed"]
    (arn,) = failures["detail"]["pipelineArn"]
    (pipeline,) = _props(dev, "Training", "AWS::SageMaker::Pipeline")
    assert json.dumps(arn).endswith(f':pipeline/{pipeline["PipelineName"]}"]]}}')
    pending = rules["PendingApprovals"]["EventPattern"]
    (group,) = _props(dev, "Training", "AWS::SageMaker::ModelPackageGroup")
    assert pending["detail"] == {
        "ModelPackageGroupName": [group["ModelPackageGroupName"]],
        "ModelApprovalStatus": ["PendingManualApproval"],
    }
    for rule in rules.values():
        (target,) = rule["Targets"]
        assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8 and "DeadLetterConfig" in target
    assert "Approvals" in json.dumps(rules["PendingApprovals"]["Targets"][0]["Arn"])


def _dashboard_metrics(synthesized) -> list[list[Any]]:
    (dashboard,) = _props(synthesized, "Monitoring", "AWS::CloudWatch::Dashboard")
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
        "VariantName": {"Gpu", "Cpu"},
        "MonitoringSchedule": set(
            _named(prod, "Serving", "AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName")
        ),
        "PipelineName": {p["PipelineName"] for p in _props(prod, "Training", "AWS::SageMaker::Pipeline")},
        "FunctionName": {_function(prod, s)["FunctionName"] for s in ("Serving", "Retraining")},
        # The explainability monitor's own dimensions (Clarify's Kernel SHAP of the one output).
        "ExplainabilityMethod": {"KernelShap"},
        "Label": {"label0"},
        "ValueType": {"GlobalShapValues"},
    }
    seen = set()
    for metric in metrics:
        dimensions = dict(zip(metric[2::2], metric[3::2], strict=True))
        for name, value in dimensions.items():
            assert value in names[name], (name, value)
            seen.add(name)
    assert seen == set(names)
    drift = [m for m in metrics if m[1].startswith("feature_baseline_drift_")]
    assert {m[1] for m in drift} == {"feature_baseline_drift_amount"}
    attributions = [m for m in metrics if m[0] == "aws/sagemaker/Endpoints/explainability-metrics"]
    # One global SHAP value per model feature, under the label the registered SHAP baseline uses.
    assert [m[1] for m in attributions] == ["feature_amount"]
    from pipelines.steps.evaluate import SHAP_LABEL

    assert dict(zip(attributions[0][2::2], attributions[0][3::2], strict=True))["Label"] == SHAP_LABEL


# --- Retraining rules and function (Retraining stack) -----------------------------------------------------


def test_retraining_rules_match_the_events_their_sources_send(prod):
    rules = {k: r["Properties"] for k, r in _resources(prod, "Retraining", "AWS::Events::Rule").items()}
    assert set(rules) == {"DriftTrigger", "ScheduleTrigger", "NewDataTrigger", "ManualTrigger"}
    drift = rules["DriftTrigger"]["EventPattern"]
    assert drift["source"] == ["aws.cloudwatch"] and drift["detail-type"] == ["CloudWatch Alarm State Change"]
    assert drift["detail"]["state"] == {"value": ["ALARM"]}
    (prefix,) = drift["detail"]["alarmName"]
    # Contract: the prefix matches every drift alarm and no other alarm of the app.
    alarms = [
        a for stack in ("Monitoring", "Serving") for a in _named(prod, stack, "AWS::CloudWatch::Alarm", "AlarmName")
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
    permissions = _props(prod, "Retraining", "AWS::Lambda::Permission")
    assert {json.dumps(p["SourceArn"]) for p in permissions} == {
        json.dumps({"Fn::GetAtt": [name, "Arn"]}) for name in rules
    }


def test_retraining_function_is_configured_as_its_handler_reads(prod):
    function = _function(prod, "Retraining")
    variables = function["Environment"]["Variables"]
    assert set(variables) == set(retraining.ENVIRONMENT.values())
    (pipeline,) = _props(prod, "Training", "AWS::SageMaker::Pipeline")
    assert variables["PIPELINE_NAME"] == pipeline["PipelineName"]
    assert variables["COOLDOWN_MINUTES"] == "1440"
    assert (variables["NEW_DATA_MIN_OBJECTS"], variables["NEW_DATA_MIN_BYTES"]) == ("1000", "1073741824")
    assert variables["STATE_TABLE"] == {"Ref": "State"}
    assert function["ReservedConcurrentExecutions"] == 1
    retraining.Settings.from_env({k: v if isinstance(v, str) else "table" for k, v in variables.items()})


def test_state_table_is_keyed_as_the_handler_writes_and_kept(prod):
    (table,) = _resources(prod, "Retraining", "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEType"] == "KMS" and "KeysLogs" in json.dumps(props["SSESpecification"])
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["DeletionPolicy"] == "Retain" and props["DeletionProtectionEnabled"] is True


def test_retraining_may_start_only_its_pipeline_and_use_only_its_table(dev):
    template = dev.templates["Retraining"]
    (role_id,) = [k for k in _resources(dev, "Retraining", "AWS::IAM::Role") if k.startswith("RetrainingRole")]
    statements = [
        s
        for p in _props(dev, "Retraining", "AWS::IAM::Policy")
        if {"Ref": role_id} in p["Roles"]
        for s in p["PolicyDocument"]["Statement"]
    ]
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


def test_the_loop_from_new_raw_data_to_an_endpoint_update(dev, aws):
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
        r["Properties"] for k, r in _resources(dev, "Retraining", "AWS::Events::Rule").items() if k == "NewDataTrigger"
    ]
    pattern = _resolve(rule["EventPattern"], {"mlp-dev-raw-bucket-name": raw})
    queue = sqs.create_queue(QueueName="retraining")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="NewDataTrigger", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="NewDataTrigger", Targets=[{"Id": "Retraining", "Arn": queue_arn}])

    # The pipeline and the retraining function's state table, as synthesized.
    (pipeline,) = _props(dev, "Training", "AWS::SageMaker::Pipeline")
    body = {"Version": "2020-12-01", "Parameters": [{"Name": "TriggerReason", "Type": "String"}], "Steps": []}
    sagemaker.create_pipeline(
        PipelineName=pipeline["PipelineName"],
        PipelineDefinition=json.dumps(body),
        RoleArn="arn:aws:iam::123456789012:role/pipeline",
    )
    (table,) = _props(dev, "Retraining", "AWS::DynamoDB::Table")
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
    (group,) = _props(dev, "Training", "AWS::SageMaker::ModelPackageGroup")
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
        for k, r in _resources(dev, "Serving", "AWS::Events::Rule").items()
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
    for state in _props(dev, "DataLake", "AWS::SSM::Parameter"):
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
    names.update(
        DEPLOY_ROLE_ARN="arn:aws:iam::123456789012:role/deploy",
        ALERT_TOPIC_ARN=topic,
        MODEL_PACKAGE_ACCOUNT="123456789012",
    )
    result = promotion.promote(
        approval,
        cloudformation=cloudformation,
        sagemaker=sagemaker,
        sns=sns,
        ssm=ssm,
        settings=promotion.Settings.from_env(names),
    )
    assert result["action"] == "updated", result
    assert ssm.get_parameter(Name=f"{names['STATE_PREFIX']}{PARAMETER}")["Parameter"]["Value"] == package
    # The update carries no value: every parameter is the previous one, which CloudFormation resolves anew.
    (update,) = sent
    assert all(p.get("UsePreviousValue") and "ParameterValue" not in p for p in update["Parameters"])
    stack = cloudformation.describe_stacks(StackName=names["STACK_NAME"])["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}[PARAMETER] == package


def test_dev_has_no_bias_monitor(dev):
    assert _props(dev, "Serving", "AWS::SageMaker::ModelBiasJobDefinition") == []
    assert "repository/sagemaker-clarify-processing" not in json.dumps(dev.templates["Serving"])


def test_dev_dashboard_has_no_widget_for_a_monitor_it_lacks(dev):
    metrics = _dashboard_metrics(dev)
    assert not any(m[0] == "aws/sagemaker/Endpoints/model-metrics" for m in metrics), "dev has no model-quality monitor"
    assert all(len(m) > 2 for m in metrics), "every metric names its dimensions"


# --- The explainability monitor (prod: a stated exception to network isolation) -------------------------


def _statements(synthesized, stack: str, role_prefix: str) -> list[dict[str, Any]]:
    (statements,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in _resources(synthesized, stack, "AWS::IAM::Policy").items()
        if k.startswith(role_prefix)
    ]
    return statements


def _managed(synthesized, stack: str, role_prefix: str) -> list[Any]:
    (role,) = [r for k, r in _resources(synthesized, stack, "AWS::IAM::Role").items() if k.startswith(role_prefix)]
    return role["Properties"].get("ManagedPolicyArns", [])


def test_explainability_monitor_keeps_everything_but_isolation_and_says_why(prod):
    from infra.config import load_config

    (job,) = _props(prod, "Serving", "AWS::SageMaker::ModelExplainabilityJobDefinition")
    network = job["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is False
    assert network["EnableInterContainerTrafficEncryption"] is True
    assert network["VpcConfig"]["Subnets"] and network["VpcConfig"]["SecurityGroupIds"]
    assert "KeysArtifacts" in json.dumps(job["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"])
    assert "KeysArtifacts" in json.dumps(job["ModelExplainabilityJobOutputConfig"]["KmsKeyId"])
    app = job["ModelExplainabilityAppSpecification"]
    assert app["ConfigUri"] == {"Ref": "ExplainabilityConfig"}
    assert "/sagemaker-clarify-processing:1.0" in json.dumps(app["ImageUri"])
    assert job["ModelExplainabilityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": {"Ref": "ExplainabilityConstraints"}}
    }
    assert job["ModelExplainabilityJobInput"]["EndpointInput"]["EndpointName"] == "mlp-prod-endpoint"
    assert job["RoleArn"]["Fn::GetAtt"][0].startswith("ExplainabilityRole")
    # It exists only with a model, its SHAP baseline and the config written for that model.
    template = prod.templates["Serving"]
    assert template["Conditions"]["MonitorModelExplainability"] == {
        "Fn::And": [
            {"Condition": "HasModel"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExplainabilityConstraints"}, "none"]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExplainabilityConfig"}, "none"]}]},
        ]
    }
    # The acknowledgment is the config's stated reason, recorded in the validation report.
    reason = load_config("prod").monitoring.explainability.isolation_exception
    suppressed = [
        s for p in prod.report["pluginReports"] for s in p.get("suppressedViolations", [])
        if s["acknowledgedId"] == "MLPlatform::MLP-SM9"
    ]  # fmt: skip
    assert [s["acknowledgedAt"].rsplit("/", 1)[-1] for s in suppressed] == ["ModelExplainabilityJobDefinition"]
    assert suppressed[0]["reason"] == f"Explainability monitor, by config: {reason}"


def test_explainability_role_may_start_only_clarify_shadows_of_the_served_model(prod):
    statements = _statements(prod, "Serving", "ExplainabilityRole")
    shadow = next(s for s in statements if s.get("Sid") == "ShadowEndpoint")
    assert sorted(r.split(":", 5)[5] for r in shadow["Resource"]) == [
        "endpoint-config/sm-clarify-*",
        "endpoint/sm-clarify-*",
    ]
    assert "sagemaker:CreateModel" not in json.dumps(statements) and "iam:PassRole" not in json.dumps(statements)
    served = next(s for s in statements if s.get("Sid") == "ServedModel")
    (model,) = _props(prod, "Serving", "AWS::SageMaker::Model")
    prefix = model["ModelName"]["Fn::Join"][1][0]
    # Contract: the model's name is <prefix><version>, and the function writes configs naming it so.
    selected = model["ModelName"]["Fn::Join"][1][1]
    assert selected == {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": PARAMETER}]}]}
    assert served["Resource"].endswith(f":model/{prefix}*")
    # What CloudFormation selects from a package ARN is the version the promotion function names the model by.
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-prod-models/7"
    event = {
        "id": "e-1",
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {
            "ModelPackageGroupName": "mlp-prod-models",
            "ModelPackageArn": arn,
            "ModelApprovalStatus": "Approved",
        },
    }
    assert arn.split("/")[selected["Fn::Select"][0]] == promotion.parse_event(event).version == "7"
    # No guardrail on this role (it would deny the shadow endpoint config Clarify creates without a key);
    # every other SageMaker role of the stack keeps it.
    assert _managed(prod, "Serving", "ExplainabilityRole") == []
    for role in ("ModelRole", "MonitorRole"):
        assert any("SageMakerGuardrail" in json.dumps(arn) for arn in _managed(prod, "Serving", role)), role


def test_deploy_role_guardrail_exempts_only_the_explainability_job_from_isolation(prod):
    (deploy_guardrail,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in _resources(prod, "Serving", "AWS::IAM::ManagedPolicy").items()
        if k.startswith("DeployGuardrail")
    ]
    denies = {s["Sid"]: s for s in deploy_guardrail}
    isolation = denies["DenyWithoutNetworkIsolation"]["Action"]
    assert "sagemaker:CreateModelExplainabilityJobDefinition" not in isolation
    assert {"sagemaker:CreateModel", "sagemaker:CreateModelBiasJobDefinition", "sagemaker:CreateProcessingJob"} <= set(
        isolation
    )
    # Every other deny still covers the explainability job definition.
    for sid in ("DenyWithoutVpcSubnets", "DenyWithoutInterContainerEncryption", "DenyWithoutOutputKmsKey"):
        assert "sagemaker:CreateModelExplainabilityJobDefinition" in denies[sid]["Action"], sid
    managed = json.dumps(_managed(prod, "Serving", "DeployRole"))
    assert "DeployGuardrail" in managed and "SageMakerGuardrail" not in managed


def test_promotion_writes_explainability_configs_where_the_monitor_reads_them(prod):
    from infra.config import load_config

    variables = _function(prod, "Serving")["Environment"]["Variables"]
    parts = variables["EXPLAINABILITY"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else json.dumps(json.dumps(p))[1:-1] for p in parts)
    settings = json.loads(text)
    assert tuple(settings) == promotion.EXPLAINABILITY_KEYS
    assert settings["parameter"] in prod.templates["Serving"]["Parameters"]
    (model,) = _props(prod, "Serving", "AWS::SageMaker::Model")
    assert settings["model_name_prefix"] == model["ModelName"]["Fn::Join"][1][0]
    config = load_config("prod")
    assert settings["instance_type"] in config.training.inference_instance_types
    assert settings["prefix"].startswith("monitoring/mlp-prod-endpoint/")
    # Contract: the function may write there and read the registered templates; the job may read them.
    promotion_statements = json.dumps(_statements(prod, "Serving", "PromotionRole"))
    assert (
        f"/{settings['prefix']}/*" in promotion_statements and "/pipelines/mlp-prod-training/*" in promotion_statements
    )
    job_reads = [s for s in _statements(prod, "Serving", "ExplainabilityRole") if s["Action"] == "s3:GetObject"]
    assert any("/monitoring/mlp-prod-endpoint/*" in json.dumps(s["Resource"]) for s in job_reads)
