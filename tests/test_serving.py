"""Serving stack: the conditional endpoint, its security, scaling and guardrails, its monitors and promotion path."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from infra.catalog.monitors import BASELINE_PARAMETERS
from infra.catalog.naming import ASYNC_PREFIX, CAPTURE_PREFIX, GROUND_TRUTH_PREFIX
from infra.checks.rules import check_template
from infra.config import MONITOR_SCHEDULES, parse_config
from infra.constructs.serving_state import MODEL_PACKAGE as PARAMETER
from lambdas.promotion import handler as promotion
from tests.helpers import dev_data, model_monitor_config
from tests.templates import actions_of, of_type, role_statements

STACK = "Serving"
MODEL_TYPES = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
)


# --- First deploy: nothing serves until a version is approved -----------------------------------


def test_the_endpoint_exists_only_once_a_model_package_is_set(dev):
    template = dev.templates[STACK]
    parameter = template["Parameters"][PARAMETER]
    # Resolved from the promoted state on every deployment, pipeline runs included (infra/constructs/serving_state.py).
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert parameter["Default"] == "/mlp-dev/serving/ModelPackageArn"
    assert template["Conditions"]["HasModel"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": PARAMETER}, "none"]}]}
    conditional = [r for r in template["Resources"].values() if r["Type"] in MODEL_TYPES]
    assert len(conditional) == 5
    assert all(r.get("Condition") == "HasModel" for r in conditional)
    alarms = [r for r in of_type(template, "AWS::CloudWatch::Alarm").values() if "AlarmName" in r["Properties"]]
    assert alarms and all(r.get("Condition") == "HasModel" for r in alarms)
    # The promotion path itself deploys unconditionally.
    for resource_type in ("AWS::Lambda::Function", "AWS::Events::Rule", "AWS::IAM::Role"):
        assert all("Condition" not in r for r in of_type(template, resource_type).values())
    assert template["Outputs"]["EndpointName"]["Condition"] == "HasModel"


# --- Model and endpoint config -------------------------------------------------------------------


def test_model_serves_the_parameter_in_the_vpc_with_network_isolation(dev):
    model = dev.one(STACK, "AWS::SageMaker::Model")["Properties"]
    assert model["PrimaryContainer"] == {"ModelPackageName": {"Ref": PARAMETER}}
    assert model["EnableNetworkIsolation"] is True
    isolated = len(dev.platform.network.vpc.isolated_subnets)
    assert isolated >= 1 and len(model["VpcConfig"]["Subnets"]) == isolated
    assert len(model["VpcConfig"]["SecurityGroupIds"]) == 1
    role_id = model["ExecutionRoleArn"]["Fn::GetAtt"][0]
    role = dev.templates[STACK]["Resources"][role_id]
    managed = json.dumps(role["Properties"]["ManagedPolicyArns"])
    assert "Guardrail" in managed, "the SageMaker guardrail is attached to the model's role"


def test_endpoint_config_on_cpu_has_the_kms_key_and_captures_data(dev):
    config = dev.one(STACK, "AWS::SageMaker::EndpointConfig")["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.large" and variant["InitialInstanceCount"] == 1
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ModelName"] == {"Fn::GetAtt": ["Model", "ModelName"]}
    assert "KeysArtifacts" in json.dumps(config["KmsKeyId"])
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] is True and capture["InitialSamplingPercentage"] == 100
    assert capture["KmsKeyId"] == config["KmsKeyId"]
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"]
    destination = json.dumps(capture["DestinationS3Uri"])
    assert "mlp-dev-artifacts-bucket-name" in destination and f"/{CAPTURE_PREFIX}/mlp-dev-endpoint" in destination


def test_endpoint_config_on_local_nvme_types_leaves_the_key_out(prod):
    """SageMaker refuses an endpoint-config key when a variant has local NVMe (ml.g5): none is set."""
    config = prod.one(STACK, "AWS::SageMaker::EndpointConfig")["Properties"]
    assert "KmsKeyId" not in config
    assert [(v["VariantName"], v["InstanceType"], v["InitialVariantWeight"]) for v in config["ProductionVariants"]] == [
        ("Gpu", "ml.g5.xlarge", 0.9),
        ("L4", "ml.g6.xlarge", 0.1),
    ]
    # Captured data is still encrypted with the key: the NVMe exception covers storage only.
    assert "KmsKeyId" in config["DataCaptureConfig"] and config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    # No MLP-SM3 finding: the only findings are the functions' acknowledged lack of reserved concurrency
    # (decision 26); the platform engine's monitor job keeps its isolation.
    findings = check_template(prod.templates[STACK])
    functions = prod.resources(STACK, "AWS::Lambda::Function")
    assert sorted((f.rule.id, f.logical_id) for f in findings) == sorted(("MLP-L2", f) for f in functions)


# --- Safe deployments ------------------------------------------------------------------------------


def test_prod_deploys_by_canary_and_rolls_back_on_this_stacks_alarms(prod):
    endpoint = prod.one(STACK, "AWS::SageMaker::Endpoint")
    deployment = endpoint["Properties"]["DeploymentConfig"]
    policy = deployment["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 600,
    }
    assert policy["TerminationWaitInSeconds"] == 900
    assert 600 <= policy["MaximumExecutionTimeoutInSeconds"] <= 14400
    # Contract: every rollback alarm is an alarm this stack creates, and every variant has two.
    alarms = of_type(prod.templates[STACK], "AWS::CloudWatch::Alarm").values()
    named = {r["Properties"]["AlarmName"]: r for r in alarms if "AlarmName" in r["Properties"]}
    rollback = [a["AlarmName"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]]
    assert sorted(rollback) == sorted(named) and len(rollback) == 4
    assert set(endpoint["DependsOn"]) == {
        k for k, r in prod.templates[STACK]["Resources"].items() if r["Properties"].get("AlarmName") in rollback
    }
    assert endpoint["Properties"]["EndpointName"] == "mlp-prod-endpoint"


def test_rollback_alarms_watch_each_variants_error_rate_and_latency(prod):
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in of_type(prod.templates[STACK], "AWS::CloudWatch::Alarm").values()
        if "AlarmName" in r["Properties"]
    }
    errors = alarms["mlp-prod-endpoint-Gpu-5xx-rate"]
    metrics = {m["Id"]: m for m in errors["Metrics"]}
    assert metrics["rate"]["Expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
    stat = metrics["errors"]["MetricStat"]["Metric"]
    assert (stat["Namespace"], stat["MetricName"]) == ("AWS/SageMaker", "Invocation5XXErrors")
    assert stat["Dimensions"] == [
        {"Name": "EndpointName", "Value": "mlp-prod-endpoint"},
        {"Name": "VariantName", "Value": "Gpu"},
    ]
    assert errors["Threshold"] == 1
    latency = alarms["mlp-prod-endpoint-L4-latency"]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("ModelLatency", "p99")
    assert latency["Threshold"] == 500 * 1000, "ModelLatency is in microseconds"
    topic = json.dumps(errors["AlarmActions"])
    assert "Alerts" in topic


def test_dev_deploys_all_at_once_because_one_instance_cannot_hold_a_canary(dev):
    deployment = dev.one(STACK, "AWS::SageMaker::Endpoint")["Properties"]["DeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
    assert len(deployment["AutoRollbackConfiguration"]["Alarms"]) == 2


# --- Autoscaling -----------------------------------------------------------------------------------


def test_each_variant_scales_on_invocations_per_instance(prod):
    targets = prod.resources(STACK, "AWS::ApplicationAutoScaling::ScalableTarget")
    by_resource = {t["Properties"]["ResourceId"]: (k, t) for k, t in targets.items()}
    assert set(by_resource) == {"endpoint/mlp-prod-endpoint/variant/Gpu", "endpoint/mlp-prod-endpoint/variant/L4"}
    logical_id, target = by_resource["endpoint/mlp-prod-endpoint/variant/Gpu"]
    assert target["Properties"]["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["Properties"]["MinCapacity"], target["Properties"]["MaxCapacity"]) == (2, 6)
    assert target["DependsOn"] == ["Endpoint"]
    policies = [
        p["Properties"]
        for p in prod.resources(STACK, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"]["ScalingTargetId"] == {"Ref": logical_id}
    ]
    (policy,) = policies
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    predefined = tracking["PredefinedMetricSpecification"]
    assert predefined == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}
    assert (tracking["TargetValue"], tracking["ScaleInCooldown"], tracking["ScaleOutCooldown"]) == (200, 600, 60)
    assert tracking["DisableScaleIn"] is False


def _promotion(synthesized) -> dict:
    """The Serving stack's promotion function (beside it: the platform monitor's starter and publisher)."""
    functions = synthesized.resources(STACK, "AWS::Lambda::Function").values()
    (function,) = [f for f in functions if f["Properties"]["FunctionName"].endswith("-promotion")]
    return function


# --- Model Monitor: the monitors run on the promoted version's baselines -------------------------------


def test_monitors_run_on_the_promoted_baselines_in_the_vpc_with_kms(prod_model_monitor):
    template = prod_model_monitor.templates[STACK]
    (data,) = prod_model_monitor.properties(STACK, "AWS::SageMaker::DataQualityJobDefinition")
    assert data["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": {"Ref": "DataQualityConstraints"}},
        "StatisticsResource": {"S3Uri": {"Ref": "DataQualityStatistics"}},
    }
    assert data["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "mlp-prodmm-endpoint"
    assert "/sagemaker-model-monitor-analyzer" in json.dumps(data["DataQualityAppSpecification"]["ImageUri"])
    (quality,) = prod_model_monitor.properties(STACK, "AWS::SageMaker::ModelQualityJobDefinition")
    assert quality["ModelQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": {"Ref": "ModelQualityConstraints"}}
    }
    assert quality["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    endpoint_input = quality["ModelQualityJobInput"]["EndpointInput"]
    assert (endpoint_input["ProbabilityAttribute"], endpoint_input["ProbabilityThresholdAttribute"]) == ("0", 0.5)
    ground_truth = json.dumps(quality["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"])
    assert f"/{GROUND_TRUTH_PREFIX}/mlp-prodmm-endpoint" in ground_truth
    for definition, kind in ((data, "DataQuality"), (quality, "ModelQuality")):
        network = definition["NetworkConfig"]
        assert network["EnableNetworkIsolation"] is True and network["EnableInterContainerTrafficEncryption"] is True
        assert network["VpcConfig"]["Subnets"] and network["VpcConfig"]["SecurityGroupIds"]
        assert "VolumeKmsKeyId" in definition["JobResources"]["ClusterConfig"]
        assert "KeysArtifacts" in json.dumps(definition[f"{kind}JobOutputConfig"]["KmsKeyId"])
    # The findings are the explainability job's isolation, acknowledged with the config's reason, and
    # the promotion function's lack of reserved concurrency, acknowledged (decision 26).
    assert [(f.rule.id, f.logical_id) for f in check_template(template)] == [
        ("MLP-SM9", "ModelExplainabilityJobDefinition"),
        ("MLP-L2", "PromotionFunction39927905"),
    ]
    # Each monitor exists only with a model and its baselines.
    conditions = template["Conditions"]
    assert conditions["MonitorModelQuality"] == {
        "Fn::And": [
            {"Condition": "HasModel"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelQualityConstraints"}, "none"]}]},
        ]
    }
    for resource in prod_model_monitor.resources(STACK, "AWS::SageMaker::MonitoringSchedule").values():
        assert resource["Condition"] in conditions and resource["DependsOn"] == ["Endpoint"]


def test_bias_monitor_reads_the_promoted_versions_config_and_labels(prod_model_monitor):
    (bias,) = prod_model_monitor.properties(STACK, "AWS::SageMaker::ModelBiasJobDefinition")
    app = bias["ModelBiasAppSpecification"]
    assert app["ConfigUri"] == {"Ref": "BiasConfig"}
    assert "/sagemaker-clarify-processing:1.0" in json.dumps(app["ImageUri"])
    job_input = bias["ModelBiasJobInput"]
    assert job_input["EndpointInput"]["EndpointName"] == "mlp-prodmm-endpoint"
    assert f"/{GROUND_TRUTH_PREFIX}/mlp-prodmm-endpoint" in json.dumps(job_input["GroundTruthS3Input"]["S3Uri"])
    network = bias["NetworkConfig"]
    assert network["EnableNetworkIsolation"] is True and network["EnableInterContainerTrafficEncryption"] is True
    assert "KmsKeyId" in bias["ModelBiasJobOutputConfig"]
    assert prod_model_monitor.templates[STACK]["Conditions"]["MonitorModelBias"] == {
        "Fn::And": [{"Condition": "HasModel"}, {"Fn::Not": [{"Fn::Equals": [{"Ref": "BiasConfig"}, "none"]}]}]
    }
    # The monitor role may pull the Clarify image; dev, without a bias monitor, gets no such grant.
    text = json.dumps(prod_model_monitor.templates[STACK])
    assert "repository/sagemaker-clarify-processing" in text


def test_dev_has_no_bias_monitor(dev):
    assert dev.properties(STACK, "AWS::SageMaker::ModelBiasJobDefinition") == []
    assert "repository/sagemaker-clarify-processing" not in json.dumps(dev.templates[STACK])


def test_schedules_are_named_for_the_alarms_and_run_as_configured(prod_model_monitor):
    schedules = prod_model_monitor.named(STACK, "AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName")
    kinds = ("data-quality", "model-quality", "model-bias", "model-explainability")
    assert set(schedules) == {f"mlp-prodmm-endpoint-{kind}" for kind in kinds}
    assert schedules["mlp-prodmm-endpoint-model-bias"]["MonitoringScheduleConfig"]["MonitoringType"] == "ModelBias"
    explainability = schedules["mlp-prodmm-endpoint-model-explainability"]["MonitoringScheduleConfig"]
    assert explainability["MonitoringType"] == "ModelExplainability"
    assert explainability["ScheduleConfig"]["ScheduleExpression"] == MONITOR_SCHEDULES["daily"]
    data = schedules["mlp-prodmm-endpoint-data-quality"]["MonitoringScheduleConfig"]
    assert data["MonitoringType"] == "DataQuality"
    assert data["ScheduleConfig"]["ScheduleExpression"] == MONITOR_SCHEDULES["hourly"]
    assert data["MonitoringJobDefinitionName"] == {"Fn::GetAtt": ["DataQualityJobDefinition", "JobDefinitionName"]}


def test_promotion_sets_exactly_the_serving_stacks_baseline_parameters(prod_model_monitor, dev):
    for synthesized, expected in (
        (prod_model_monitor, set(BASELINE_PARAMETERS)),
        (dev, {"DataQualityStatistics", "DataQualityConstraints"}),
    ):
        parameters = synthesized.templates[STACK]["Parameters"]
        variables = _promotion(synthesized)["Properties"]["Environment"]["Variables"]
        mapping = json.loads(variables["BASELINE_PARAMETERS"])
        assert set(mapping) == expected and expected <= set(parameters)
        assert variables["PARAMETER_NAME"] == PARAMETER in parameters
        # A single-account environment promotes versions of its own account's registry only.
        assert variables["MODEL_PACKAGE_ACCOUNT"] == (
            {"Ref": "AWS::AccountId"} if synthesized is dev else "111111111111"
        )
        # The paths name what the pipeline registers (the Register step's DriftCheckBaselines).
        assert all(path.startswith("DriftCheckBaselines.") and path.endswith(".S3Uri") for path in mapping.values())


# --- The explainability monitor (prod: a stated exception to network isolation) -------------------------


def test_explainability_monitor_keeps_everything_but_isolation_and_says_why(prod_model_monitor):

    (job,) = prod_model_monitor.properties(STACK, "AWS::SageMaker::ModelExplainabilityJobDefinition")
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
    assert job["ModelExplainabilityJobInput"]["EndpointInput"]["EndpointName"] == "mlp-prodmm-endpoint"
    assert job["RoleArn"]["Fn::GetAtt"][0].startswith("ExplainabilityRole")
    # It exists only with a model, its SHAP baseline and the config written for that model.
    template = prod_model_monitor.templates[STACK]
    assert template["Conditions"]["MonitorModelExplainability"] == {
        "Fn::And": [
            {"Condition": "HasModel"},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExplainabilityConstraints"}, "none"]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExplainabilityConfig"}, "none"]}]},
        ]
    }
    # The acknowledgment is the config's stated reason, recorded in the validation report.
    reason = model_monitor_config().monitoring.explainability.isolation_exception
    suppressed = [
        s for p in prod_model_monitor.report["pluginReports"] for s in p.get("suppressedViolations", [])
        if s["acknowledgedId"] == "MLPlatform::MLP-SM9"
    ]  # fmt: skip
    assert [s["acknowledgedAt"].rsplit("/", 1)[-1] for s in suppressed] == ["ModelExplainabilityJobDefinition"]
    assert suppressed[0]["reason"] == f"Explainability monitor, by config: {reason}"


def test_explainability_role_may_start_only_clarify_shadows_of_the_served_model(prod_model_monitor):
    statements = prod_model_monitor.role_statements(STACK, "ExplainabilityRole")
    shadow = next(s for s in statements if s.get("Sid") == "ShadowEndpoint")
    assert sorted(r.split(":", 5)[5] for r in shadow["Resource"]) == [
        "endpoint-config/sm-clarify-*",
        "endpoint/sm-clarify-*",
    ]
    assert "sagemaker:CreateModel" not in json.dumps(statements) and "iam:PassRole" not in json.dumps(statements)
    served = next(s for s in statements if s.get("Sid") == "ServedModel")
    (model,) = prod_model_monitor.properties(STACK, "AWS::SageMaker::Model")
    prefix = model["ModelName"]["Fn::Join"][1][0]
    # Contract: the model's name is <prefix><version>, and the function writes configs naming it so.
    selected = model["ModelName"]["Fn::Join"][1][1]
    assert selected == {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": PARAMETER}]}]}
    assert served["Resource"].endswith(f":model/{prefix}*")
    # What CloudFormation selects from a package ARN is the version the promotion function names the model by.
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-prodmm-models/7"
    event = {
        "id": "e-1",
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "detail": {
            "ModelPackageGroupName": "mlp-prodmm-models",
            "ModelPackageArn": arn,
            "ModelApprovalStatus": "Approved",
        },
    }
    assert arn.split("/")[selected["Fn::Select"][0]] == promotion.parse_event(event).version == "7"
    # No guardrail on this role (it would deny the shadow endpoint config Clarify creates without a key);
    # every other SageMaker role of the stack keeps it.
    assert prod_model_monitor.managed_policy_arns(STACK, "ExplainabilityRole") == []
    for role in ("ModelRole", "MonitorRole"):
        assert any(
            "SageMakerGuardrail" in json.dumps(arn) for arn in prod_model_monitor.managed_policy_arns(STACK, role)
        ), role


def test_deploy_role_guardrail_exempts_only_the_explainability_job_from_isolation(prod_model_monitor):
    (deploy_guardrail,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in prod_model_monitor.resources(STACK, "AWS::IAM::ManagedPolicy").items()
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
    managed = json.dumps(prod_model_monitor.managed_policy_arns(STACK, "DeployRole"))
    assert "DeployGuardrail" in managed and "SageMakerGuardrail" not in managed


def test_promotion_writes_explainability_configs_where_the_monitor_reads_them(prod_model_monitor):
    from infra.config import load_config

    variables = _promotion(prod_model_monitor)["Properties"]["Environment"]["Variables"]
    parts = variables["EXPLAINABILITY"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else json.dumps(json.dumps(p))[1:-1] for p in parts)
    settings = json.loads(text)
    assert tuple(settings) == promotion.EXPLAINABILITY_KEYS
    assert settings["parameter"] in prod_model_monitor.templates[STACK]["Parameters"]
    (model,) = prod_model_monitor.properties(STACK, "AWS::SageMaker::Model")
    assert settings["model_name_prefix"] == model["ModelName"]["Fn::Join"][1][0]
    config = load_config("prod")
    assert settings["instance_type"] in config.training.inference_instance_types
    assert settings["prefix"].startswith("monitoring/mlp-prodmm-endpoint/")
    # Contract: the function may write there and read the registered templates; the job may read them.
    promotion_statements = json.dumps(prod_model_monitor.role_statements(STACK, "PromotionRole"))
    assert (
        f"/{settings['prefix']}/*" in promotion_statements
        and "/pipelines/mlp-prodmm-training/*" in promotion_statements
    )
    job_reads = [
        s for s in prod_model_monitor.role_statements(STACK, "ExplainabilityRole") if s["Action"] == "s3:GetObject"
    ]
    assert any("/monitoring/mlp-prodmm-endpoint/*" in json.dumps(s["Resource"]) for s in job_reads)


# --- Promotion -------------------------------------------------------------------------------------


def test_approvals_of_this_group_only_reach_the_promotion_function(dev):
    resources = dev.templates[STACK]["Resources"]
    rule = resources["ModelApprovals"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["mlp-dev-models"], "ModelApprovalStatus": ["Approved", "Rejected"]},
    }
    # Contract: the group the rule names is the group the Training stack creates.
    (group,) = dev.resources("Training", "AWS::SageMaker::ModelPackageGroup").values()
    assert group["Properties"]["ModelPackageGroupName"] == "mlp-dev-models"
    (target,) = rule["Targets"]
    function_id = target["Arn"]["Fn::GetAtt"][0]
    assert resources[function_id]["Type"] == "AWS::Lambda::Function"
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert resources[queue_id]["Type"] == "AWS::SQS::Queue"
    permissions = {
        p["Properties"]["SourceArn"]["Fn::GetAtt"][0]: p
        for p in dev.resources(STACK, "AWS::Lambda::Permission").values()
    }
    # Beside the promotion's rules: the platform monitor's hourly start.
    assert set(permissions) == {"ModelApprovals", "RolledBackPromotions", "MonitorHourly"}
    assert permissions["ModelApprovals"]["Properties"]["Principal"] == "events.amazonaws.com"


def test_a_rolled_back_promotion_reaches_the_function_that_restores_the_state(dev):
    """After UPDATE_ROLLBACK_COMPLETE of this stack, the function writes back what the stack serves."""
    rule = dev.resources(STACK, "AWS::Events::Rule")["RolledBackPromotions"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.cloudformation"],
        "detail-type": ["CloudFormation Stack Status Change"],
        "resources": [{"Ref": "AWS::StackId"}],
        "detail": {"status-details": {"status": ["UPDATE_ROLLBACK_COMPLETE"]}},
    }
    (target,) = rule["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0].startswith("PromotionFunction") and "DeadLetterConfig" in target


def test_every_promoted_value_lives_in_an_ssm_parameter_of_the_lake_stack(synth):
    """Contract: each SSM-typed Serving parameter names a parameter the DataLake stack creates as `none`."""
    for env in ("dev", "prod"):
        synthesized = synth(env)
        serving = synthesized.templates[STACK]["Parameters"]
        resolved = {k: p["Default"] for k, p in serving.items() if p["Type"] == "AWS::SSM::Parameter::Value<String>"}
        resolved.pop("BootstrapVersion", None)
        state = {r["Properties"]["Name"]: r for r in synthesized.resources("DataLake", "AWS::SSM::Parameter").values()}
        assert sorted(resolved.values()) == sorted(state), env
        assert all(r["Properties"]["Value"] == "none" and r["DeletionPolicy"] == "Retain" for r in state.values())
        function = _promotion(synthesized)
        prefix = function["Properties"]["Environment"]["Variables"]["STATE_PREFIX"]
        assert prefix == f"/mlp-{env}/serving/" and all(name.startswith(prefix) for name in state)
        # The SSM parameter refuses what the stack would: only versions of the platform's own group.
        pattern = state[f"{prefix}ModelPackageArn"]["Properties"]["AllowedPattern"]
        assert re.fullmatch(pattern, "none")
        assert re.fullmatch(pattern, f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlp-{env}-models/3")
        assert not re.fullmatch(pattern, "arn:aws:sagemaker:eu-west-1:111111111111:model-package/other-models/3")
        baselines = [n for n in state if not n.endswith("ModelPackageArn")]
        assert baselines and all(
            state[n]["Properties"]["AllowedPattern"].startswith("^none$|^s3://") for n in baselines
        )


def test_promotion_function_is_configured_as_its_handler_reads(dev):
    function = _promotion(dev)
    function_id = next(k for k, f in dev.resources(STACK, "AWS::Lambda::Function").items() if f is function)
    props = function["Properties"]
    variables = props["Environment"]["Variables"]
    assert set(variables) == {*promotion.ENVIRONMENT.values(), "BASELINE_PARAMETERS", "MODEL_PACKAGE_ACCOUNT"}
    assert variables["STATE_PREFIX"] == "/mlp-dev/serving/"
    assert variables["STACK_NAME"] == "mlp-dev-Serving" == dev.platform.serving.stack_name
    assert variables["PARAMETER_NAME"] == PARAMETER
    assert variables["MODEL_PACKAGE_GROUP"] == "mlp-dev-models"
    assert variables["DEPLOY_ROLE_ARN"]["Fn::GetAtt"][0].startswith("DeployRole")
    assert props["Handler"] == "handler.handler" and props["Runtime"].startswith("python3.")
    # No reserved concurrency (decision 26): promotions take turns through the lock table.
    assert "ReservedConcurrentExecutions" not in props and props["TracingConfig"] == {"Mode": "Active"}
    (lock_id,) = dev.resources(STACK, "AWS::DynamoDB::Table")
    lock = dev.templates[STACK]["Resources"][lock_id]
    assert variables["LOCK_TABLE"] == {"Ref": lock_id} and lock["DeletionPolicy"] == "Delete"
    # Keyed as the handler writes its lock item.
    assert lock["Properties"]["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert lock["Properties"]["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    assert len(props["VpcConfig"]["SubnetIds"]) == len(dev.platform.network.vpc.isolated_subnets)
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    (invoke,) = [
        i
        for i in dev.resources(STACK, "AWS::Lambda::EventInvokeConfig").values()
        if i["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert invoke["Properties"]["MaximumRetryAttempts"] == 2
    assert "Alerts" in json.dumps(invoke["Properties"]["DestinationConfig"]["OnFailure"])


def test_promotion_may_update_only_its_stack_through_the_deploy_role(dev):
    template = dev.templates[STACK]
    roles = of_type(template, "AWS::IAM::Role")
    (promotion_role,) = [k for k in roles if k.startswith("PromotionRole")]
    (deploy_role,) = [k for k in roles if k.startswith("DeployRole")]
    statements = role_statements(template, promotion_role)
    (stack_statement,) = [s for s in statements if any(a.startswith("cloudformation:") for a in actions_of(s))]
    assert actions_of(stack_statement) == {"cloudformation:DescribeStacks", "cloudformation:UpdateStack"}
    assert ":stack/mlp-dev-Serving/*" in json.dumps(stack_statement["Resource"])
    (pass_role,) = [s for s in statements if "iam:PassRole" in actions_of(s)]
    assert pass_role["Resource"] == {"Fn::GetAtt": [deploy_role, "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    trust = roles[deploy_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    deploy_actions = actions_of(*role_statements(template, deploy_role))
    assert "sagemaker:UpdateEndpoint" in deploy_actions and "iam:PassRole" in deploy_actions
    assert not any(a.endswith(":*") or a == "*" for a in deploy_actions)


def test_failed_promotions_alert_and_keep_the_previous_version(dev):
    rule = dev.templates[STACK]["Resources"]["FailedPromotions"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.cloudformation"]
    assert rule["EventPattern"]["resources"] == [{"Ref": "AWS::StackId"}]
    assert rule["EventPattern"]["detail"]["status-details"]["status"] == [
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "UPDATE_FAILED",
    ]
    (target,) = rule["Targets"]
    assert "Alerts" in json.dumps(target["Arn"]) and "DeadLetterConfig" in target


# --- Serverless and async variants, in a small app of their own ----------------------------------------


@dataclass
class Variants:
    templates: dict[str, dict[str, Any]]
    report: dict[str, Any]


def _variant(environment: str, change) -> dict:
    data = copy.deepcopy(dev_data())
    data["environment"] = environment
    change(data)
    return data


def _serverless(data: dict) -> None:
    data.update(monitoring=None, retraining=None)  # no data capture, so no Model Monitor
    data["serving"] = {
        "mode": "serverless",
        "variants": [],
        "data_capture": {"enabled": False},
        "autoscaling": None,
        "deployment": {"strategy": "all_at_once"},
        "serverless": {
            "memory_mb": 3072,
            "max_concurrency": 10,
            "provisioned_concurrency": 2,
            "isolation_exception": "A public demo model scoring synthetic data only",
        },
    }


def _async(data: dict) -> None:
    data["training"]["inference_instance_types"] = ["ml.g5.12xlarge"]
    data["serving"] = {
        "mode": "async",
        "variants": [{"name": "Batchy", "instance_type": "ml.g5.12xlarge"}],
        "autoscaling": {"min_instances": 0, "max_instances": 3, "gpu_utilization_percent": 70},
        "deployment": {"strategy": "all_at_once"},
        "async_inference": {"max_concurrent_invocations_per_instance": 2},
    }


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> Variants:
    """Two Serving stacks (serverless, async) beside one Security and Network stack, every nag pack on."""
    import aws_cdk as cdk

    from infra.checks.compliance import enable_checks
    from infra.constructs.placement import Placement
    from stacks.network import NetworkStack
    from stacks.security import SecurityStack
    from stacks.serving import ServingInputs, ServingStack
    from tests.conftest import cdk_context

    outdir = tmp_path_factory.mktemp("cdk-serving")
    app = cdk.App(outdir=str(outdir), context=cdk_context(), builtin_cloud_formation_validation=False)
    base = parse_config(dev_data(), "dev")
    security = SecurityStack(app, "Security", config=base, security=base.security)
    network = NetworkStack(
        app, "Network", config=base, network=base.network, training=base.training, logs_key=security.keys.logs
    )
    stacks = {}
    for name, change in (("Serverless", _serverless), ("Async", _async)):
        config = parse_config(_variant(name.lower(), change), name)
        stacks[name] = ServingStack(
            app,
            f"{STACK}{name}",
            config=config,
            serving=config.serving,
            monitoring=config.monitoring,
            inputs=ServingInputs(
                artifacts_key=security.keys.artifacts,
                logs_key=security.keys.logs,
                alerts_topic=security.alerts.topic,
                placement=Placement(network.vpc, network.network.subnets, network.network.workload_sg),
                guardrail=security.guardrail,
            ),
        )
    enable_checks(app)
    assembly = app.synth()  # raises on any unacknowledged finding of any pack
    templates = {name: assembly.get_stack_artifact(stack.artifact_id).template for name, stack in stacks.items()}
    report = json.loads((outdir / "validation-report.json").read_text())
    return Variants(templates=templates, report=report)


def test_serverless_runs_outside_the_vpc_only_with_the_stated_exception(variants):
    template = variants.templates["Serverless"]
    (model,) = of_type(template, "AWS::SageMaker::Model").values()
    assert "VpcConfig" not in model["Properties"] and "EnableNetworkIsolation" not in model["Properties"]
    (config,) = of_type(template, "AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 10, "ProvisionedConcurrency": 2}
    assert "InstanceType" not in variant and "KmsKeyId" not in config["Properties"]
    assert "DataCaptureConfig" not in config["Properties"]
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    # The project's rules see the hole; the stack acknowledges it with the configured reason.
    findings = {(f.rule.id, f.logical_id) for f in check_template(template)}
    assert {("MLP-SM1", "Model"), ("MLP-SM2", "Model"), ("MLP-SM3", "EndpointConfig")} <= findings
    text = json.dumps(variants.report)
    assert "Serverless endpoint, by config: A public demo model scoring synthetic data only" in text
    # No guardrail on the deploy role: it would deny the model CloudFormation must create.
    roles = of_type(template, "AWS::IAM::Role")
    (deploy,) = [r for k, r in roles.items() if k.startswith("DeployRole")]
    assert "Guardrail" not in json.dumps(deploy["Properties"].get("ManagedPolicyArns", []))


def test_async_endpoint_writes_encrypted_results_and_scales_from_zero_on_its_queue(variants):
    template = variants.templates["Async"]
    (config,) = of_type(template, "AWS::SageMaker::EndpointConfig").values()
    settings = config["Properties"]["AsyncInferenceConfig"]
    output = settings["OutputConfig"]
    assert f"/{ASYNC_PREFIX}/mlp-async-endpoint/output" in json.dumps(output["S3OutputPath"])
    assert f"/{ASYNC_PREFIX}/mlp-async-endpoint/failure" in json.dumps(output["S3FailurePath"])
    assert "KmsKeyId" in output
    topics = of_type(template, "AWS::SNS::Topic")
    assert {output["NotificationConfig"][k]["Ref"] for k in ("SuccessTopic", "ErrorTopic")} == set(topics)
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    assert settings["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 2}
    # ml.g5.12xlarge has local NVMe: no endpoint-config key.
    assert "KmsKeyId" not in config["Properties"]
    (target,) = of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert target["Properties"]["MinCapacity"] == 0
    policies = {p["Properties"]["PolicyName"]: p["Properties"] for p in
                of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()}  # fmt: skip
    backlog = policies["mlp-async-endpoint-Batchy-backlog"]["TargetTrackingScalingPolicyConfiguration"]
    assert backlog["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"
    gpu = policies["mlp-async-endpoint-Batchy-gpu"]["TargetTrackingScalingPolicyConfiguration"]
    assert gpu["TargetValue"] == 280, "70% of each of the instance's 4 GPUs"
    assert gpu["CustomizedMetricSpecification"]["Namespace"] == "/aws/sagemaker/Endpoints"
    step = policies["mlp-async-endpoint-Batchy-from-zero"]
    assert step["PolicyType"] == "StepScaling"
    (step_id,) = [k for k, p in of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
                  if p["Properties"]["PolicyType"] == "StepScaling"]  # fmt: skip
    (wake,) = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("MetricName") == "HasBacklogWithoutCapacity"]  # fmt: skip
    assert wake["AlarmActions"] == [{"Ref": step_id}]
    # Every alarm the promotion creates is one the deploy role may create: named under the endpoint.
    names = [a["Properties"].get("AlarmName") for a in of_type(template, "AWS::CloudWatch::Alarm").values()
             if a.get("Condition") == "HasModel"]  # fmt: skip
    assert names and all(n.startswith("mlp-async-endpoint-") for n in names)
