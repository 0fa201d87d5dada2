"""The project's ML rule pack: each rule on a compliant and a non-compliant fixture, and in a synth."""

from __future__ import annotations

import copy
import json

import pytest

from infra.checks.rules import RULES, check_template

VPC = {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
NETWORK = {"VpcConfig": VPC, "EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True}
KEY = {"Ref": "Key"}


def _model(**props):
    return {"Type": "AWS::SageMaker::Model", "Properties": {"ExecutionRoleArn": "arn", **props}}


def _endpoint_config(instance_type=None, **props):
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1}
    if instance_type:
        variant["InstanceType"] = instance_type
    else:
        variant["ServerlessConfig"] = {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    return {"Type": "AWS::SageMaker::EndpointConfig", "Properties": {"ProductionVariants": [variant], **props}}


def _data_quality(instance_type="ml.m5.xlarge", volume_key=KEY, output_key=KEY, network=NETWORK):
    cluster = {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": 20}
    if volume_key is not None:
        cluster["VolumeKmsKeyId"] = volume_key
    output = {"MonitoringOutputs": []}
    if output_key is not None:
        output["KmsKeyId"] = output_key
    props = {"JobResources": {"ClusterConfig": cluster}, "DataQualityJobOutputConfig": output}
    if network is not None:
        props["NetworkConfig"] = network
    return {"Type": "AWS::SageMaker::DataQualityJobDefinition", "Properties": props}


def _schedule(definition):
    return {
        "Type": "AWS::SageMaker::MonitoringSchedule",
        "Properties": {"MonitoringScheduleConfig": definition},
    }


def _findings(resource) -> dict[str, list[str]]:
    return {f.rule.id: list(f.problems) for f in check_template({"Resources": {"R": resource}})}


COMPLIANT = {
    "model": _model(VpcConfig=VPC, EnableNetworkIsolation=True),
    "endpoint config with key (CPU)": _endpoint_config("ml.m5.xlarge", KmsKeyId=KEY),
    "endpoint config with key (Inferentia2)": _endpoint_config("ml.inf2.xlarge", KmsKeyId=KEY),
    "endpoint config without key on local NVMe (g5)": _endpoint_config("ml.g5.xlarge"),
    "data quality job definition": _data_quality(),
    "job definition on local NVMe without volume key": _data_quality("ml.g5.xlarge", volume_key=None),
    "schedule referencing a job definition": _schedule({"MonitoringJobDefinitionName": "def"}),
    "schedule with a compliant inline definition": _schedule(
        {
            "MonitoringJobDefinition": {
                "NetworkConfig": NETWORK,
                "MonitoringResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "VolumeKmsKeyId": KEY}},
                "MonitoringOutputConfig": {"KmsKeyId": KEY},
            }
        }
    ),
}


@pytest.mark.parametrize("resource", COMPLIANT.values(), ids=COMPLIANT.keys())
def test_compliant_fixture_has_no_findings(resource):
    assert _findings(resource) == {}


NON_COMPLIANT = {
    "model outside the VPC": (
        _model(EnableNetworkIsolation=True),
        {"MLP-SM1": ["VpcConfig is missing"]},
    ),
    "model with empty security groups": (
        _model(VpcConfig={"Subnets": ["s"], "SecurityGroupIds": []}, EnableNetworkIsolation=True),
        {"MLP-SM1": ["VpcConfig.SecurityGroupIds is empty"]},
    ),
    "model without isolation": (
        _model(VpcConfig=VPC, EnableNetworkIsolation=False),
        {"MLP-SM2": ["EnableNetworkIsolation is not true"]},
    ),
    "endpoint config without key on CPU": (
        _endpoint_config("ml.m5.xlarge"),
        {"MLP-SM3": ["KmsKeyId is missing"]},
    ),
    "endpoint config without key on Inferentia2": (
        _endpoint_config("ml.inf2.xlarge"),
        {"MLP-SM3": ["KmsKeyId is missing"]},
    ),
    "endpoint config with key on local NVMe (deploy would fail)": (
        _endpoint_config("ml.g5.xlarge", KmsKeyId=KEY),
        {"MLP-SM3": ["KmsKeyId is set but ml.g5.xlarge has local NVMe storage, where SageMaker refuses it"]},
    ),
    "serverless endpoint config without key (an exception to acknowledge)": (
        _endpoint_config(None),
        {"MLP-SM3": ["KmsKeyId is missing"]},
    ),
    "job definition without network config": (
        _data_quality(network=None),
        {"MLP-SM4": ["NetworkConfig is missing"], "MLP-SM9": ["NetworkConfig is missing"]},
    ),
    "job definition without isolation and encryption": (
        _data_quality(network={"VpcConfig": VPC}),
        {
            "MLP-SM4": ["NetworkConfig.EnableInterContainerTrafficEncryption is not true"],
            "MLP-SM9": ["NetworkConfig.EnableNetworkIsolation is not true"],
        },
    ),
    "job definition without isolation only (the explainability monitor's exception)": (
        _data_quality(network={"VpcConfig": VPC, "EnableInterContainerTrafficEncryption": True}),
        {"MLP-SM9": ["NetworkConfig.EnableNetworkIsolation is not true"]},
    ),
    "job definition without keys": (
        _data_quality(volume_key=None, output_key=None),
        {
            "MLP-SM5": [
                "JobResources.ClusterConfig.VolumeKmsKeyId is missing",
                "JobResources.output KmsKeyId is missing",
            ]
        },
    ),
    "job definition with a volume key on local NVMe": (
        _data_quality("ml.g6.xlarge"),
        {"MLP-SM5": ["JobResources.ClusterConfig.VolumeKmsKeyId is set on ml.g6.xlarge, which has local NVMe storage"]},
    ),
    "schedule with an insecure inline definition": (
        _schedule(
            {"MonitoringJobDefinition": {"MonitoringResources": {"ClusterConfig": {"InstanceType": "ml.m5.large"}}}}
        ),
        {
            "MLP-SM4": ["MonitoringJobDefinition.NetworkConfig is missing"],
            "MLP-SM9": ["MonitoringJobDefinition.NetworkConfig is missing"],
            "MLP-SM5": [
                "MonitoringJobDefinition.ClusterConfig.VolumeKmsKeyId is missing",
                "MonitoringJobDefinition.output KmsKeyId is missing",
            ],
        },
    ),
}


@pytest.mark.parametrize(("resource", "expected"), NON_COMPLIANT.values(), ids=NON_COMPLIANT.keys())
def test_non_compliant_fixture_is_reported(resource, expected):
    assert _findings(resource) == expected


def test_intrinsics_count_as_set():
    model = _model(
        VpcConfig={"Subnets": {"Ref": "Subnets"}, "SecurityGroupIds": [{"Ref": "Sg"}]},
        EnableNetworkIsolation={"Fn::If": ["c", True, True]},
    )
    assert _findings(model) == {}


def test_every_job_definition_type_is_checked():
    for resource_type in (
        "AWS::SageMaker::DataQualityJobDefinition",
        "AWS::SageMaker::ModelQualityJobDefinition",
        "AWS::SageMaker::ModelBiasJobDefinition",
        "AWS::SageMaker::ModelExplainabilityJobDefinition",
    ):
        resource = copy.deepcopy(_data_quality(network=None))
        resource["Type"] = resource_type
        assert "MLP-SM4" in _findings(resource), resource_type
    assert sorted(rule.id for rule in RULES) == ["MLP-D1", "MLP-L1", "MLP-L2", *(f"MLP-SM{i}" for i in range(1, 10))]


def test_plugin_fails_synth_and_acknowledgment_records_reason(tmp_path):
    """The pack runs as a CDK validation plugin: a finding fails synth, a namespaced ack clears it."""
    import aws_cdk as cdk
    from aws_cdk import aws_sagemaker as sagemaker

    from infra.checks.compliance import acknowledge
    from infra.checks.rules import ml_platform_checks

    def build(outdir, ack: bool):
        app = cdk.App(outdir=str(outdir), builtin_cloud_formation_validation=False)
        stack = cdk.Stack(app, "Fixture")
        model = sagemaker.CfnModel(
            stack,
            "Model",
            execution_role_arn="arn:aws:iam::123456789012:role/r",
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(image="img"),
        )
        if ack:
            acknowledge(model, "fixture: a documented exception", ["MLPlatform::MLP-SM1", "MLPlatform::MLP-SM2"])
        cdk.Validations.of(app).add_plugins(ml_platform_checks())
        return app.synth()

    with pytest.raises(Exception, match="ValidationFailed") as caught:
        build(tmp_path / "fails", ack=False)
    assert "MLP-SM1" in str(caught.value) and "MLP-SM2" in str(caught.value)

    build(tmp_path / "acked", ack=True)
    import json

    report = json.loads((tmp_path / "acked" / "validation-report.json").read_text())
    (ml,) = [r for r in report["pluginReports"] if r["pluginName"] == "MLPlatform"]
    assert ml["violations"] == []
    reasons = {s["ruleName"]: s.get("reason") for s in ml["suppressedViolations"]}
    assert reasons == {"MLP-SM1": "fixture: a documented exception", "MLP-SM2": "fixture: a documented exception"}


# MLP-SM6: jobs inside pipeline definitions ------------------------------------------------------

_VPC = {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}


def _processing(instance: str = "ml.m5.xlarge", **overrides) -> dict:
    args = {
        "ProcessingResources": {
            "ClusterConfig": {"InstanceType": instance, "InstanceCount": 1, "VolumeKmsKeyId": "key"}
        },
        "ProcessingOutputConfig": {"KmsKeyId": "key", "Outputs": []},
        "NetworkConfig": {
            "VpcConfig": _VPC,
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
        },
    }
    args.update(overrides)
    return {"Name": "Preprocess", "Type": "Processing", "Arguments": args}


def _training(instance: str = "ml.g5.xlarge", **overrides) -> dict:
    args = {
        "ResourceConfig": {"InstanceType": instance, "InstanceCount": 1, "VolumeSizeInGB": 30},
        "OutputDataConfig": {"KmsKeyId": "key", "S3OutputPath": "s3://b/m"},
        "VpcConfig": _VPC,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": True,
    }
    args.update(overrides)
    return {"Name": "Train", "Type": "Training", "Arguments": args}


def _pipeline(*steps: dict, substituted: bool = True) -> dict:
    body = json.dumps({"Version": "2020-12-01", "Steps": list(steps)})
    definition = {"PipelineDefinitionBody": {"Fn::Sub": [body, {}]} if substituted else body}
    return {"Type": "AWS::SageMaker::Pipeline", "Properties": {"PipelineDefinition": definition}}


def _pipeline_problems(resource: dict) -> list[str]:
    return [p for f in check_template({"Resources": {"P": resource}}) if f.rule.id == "MLP-SM6" for p in f.problems]


def test_compliant_pipeline_jobs_pass():
    gate = {"Name": "Gate", "Type": "Condition", "Arguments": {"IfSteps": [_training()], "ElseSteps": []}}
    assert _pipeline_problems(_pipeline(_processing(), gate)) == []
    assert _pipeline_problems(_pipeline(_processing(), substituted=False)) == []


def test_non_compliant_pipeline_jobs_are_named_step_by_step():
    gate = {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {"IfSteps": [_training(EnableNetworkIsolation=False, VpcConfig=None)], "ElseSteps": []},
    }
    no_key = _processing(ProcessingOutputConfig={"Outputs": []})
    problems = _pipeline_problems(_pipeline(no_key, gate))
    assert problems == [
        "step Preprocess: ProcessingResources.output KmsKeyId is missing",
        "step Train: VpcConfig is missing",
        "step Train: EnableNetworkIsolation is not true",
    ]


def test_pipeline_volume_keys_follow_the_instance_catalog():
    # ml.m5 has EBS volumes: the key is required. ml.g5 has local NVMe: SageMaker refuses one.
    cpu = _training("ml.m5.xlarge")
    assert _pipeline_problems(_pipeline(cpu)) == ["step Train: ResourceConfig.VolumeKmsKeyId is missing"]
    gpu = _training()
    gpu["Arguments"]["ResourceConfig"]["VolumeKmsKeyId"] = "key"
    assert _pipeline_problems(_pipeline(gpu)) == [
        "step Train: ResourceConfig.VolumeKmsKeyId is set on ml.g5.xlarge, which has local NVMe storage"
    ]


def test_tuning_jobs_are_checked_through_their_training_definition():
    definition = _training("ml.m5.xlarge")["Arguments"]
    resources = definition.pop("ResourceConfig")
    definition["HyperParameterTuningResourceConfig"] = {**resources, "VolumeKmsKeyId": "key"}
    definition["EnableInterContainerTrafficEncryption"] = False
    tuning = {"Name": "Tune", "Type": "Tuning", "Arguments": {"TrainingJobDefinition": definition}}
    assert _pipeline_problems(_pipeline(tuning)) == [
        "step Tune: TrainingJobDefinition.EnableInterContainerTrafficEncryption is not true"
    ]


def _model_step(**overrides) -> dict:
    args = {
        "ExecutionRoleArn": "arn:aws:iam::111111111111:role/training",
        "PrimaryContainer": {"Image": "image", "ModelDataUrl": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}},
        "VpcConfig": _VPC,
        "EnableNetworkIsolation": True,
    }
    args.update(overrides)
    return {"Name": "ExplainabilityModel-CreateModel", "Type": "Model", "Arguments": args}


def test_model_steps_in_the_vpc_with_network_isolation_pass():
    assert _pipeline_problems(_pipeline(_processing(), _model_step())) == []


def test_model_steps_without_vpc_or_isolation_are_reported():
    gate = {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {"IfSteps": [_model_step(VpcConfig=None)], "ElseSteps": []},
    }
    no_isolation = _model_step(EnableNetworkIsolation=False)
    no_isolation["Arguments"]["VpcConfig"] = {"Subnets": [], "SecurityGroupIds": ["sg-1"]}
    assert _pipeline_problems(_pipeline(no_isolation, gate)) == [
        "step ExplainabilityModel-CreateModel: VpcConfig.Subnets is empty",
        "step ExplainabilityModel-CreateModel: EnableNetworkIsolation is not true",
        "step ExplainabilityModel-CreateModel: VpcConfig is missing",
    ]


def test_an_unreadable_definition_is_a_finding():
    resource = {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {"PipelineDefinition": {"PipelineDefinitionBody": "{"}},
    }
    assert _pipeline_problems(resource) == ["PipelineDefinitionBody is not a readable pipeline definition"]


# --- Endpoint configs' captured data, endpoints' deployments, Lambda functions ---------------------

FUNCTION = {
    "Runtime": "python3.13",
    "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]},
    "DeadLetterConfig": {"TargetArn": "arn:dlq"},
    "ReservedConcurrentExecutions": 1,
    "TracingConfig": {"Mode": "Active"},
    "KmsKeyArn": KEY,
    "LoggingConfig": {"LogGroup": "group"},
}
ROLLBACK = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}]}}


def _problems(rule_id: str, resource: dict) -> list[str]:
    findings = [f for f in check_template({"Resources": {"R": resource}}) if f.rule.id == rule_id]
    return [p for f in findings for p in f.problems]


def test_captured_data_and_async_results_need_a_key():
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 10, "DestinationS3Uri": "s3://b/c"}
    asynchronous = {"OutputConfig": {"S3OutputPath": "s3://b/o"}}
    bad = _endpoint_config("ml.m5.large", KmsKeyId=KEY, DataCaptureConfig=capture, AsyncInferenceConfig=asynchronous)
    assert _problems("MLP-SM7", bad) == [
        "DataCaptureConfig.KmsKeyId is missing",
        "AsyncInferenceConfig.OutputConfig.KmsKeyId is missing",
    ]
    good = _endpoint_config(
        "ml.m5.large",
        KmsKeyId=KEY,
        DataCaptureConfig={**capture, "KmsKeyId": KEY},
        AsyncInferenceConfig={"OutputConfig": {**asynchronous["OutputConfig"], "KmsKeyId": KEY}},
    )
    assert _problems("MLP-SM7", good) == []


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (None, ["DeploymentConfig is missing"]),
        (ROLLBACK, ["DeploymentConfig has neither BlueGreenUpdatePolicy nor RollingUpdatePolicy"]),
        ({"BlueGreenUpdatePolicy": {}}, ["DeploymentConfig.AutoRollbackConfiguration.Alarms is empty"]),
        ({"BlueGreenUpdatePolicy": {}, **ROLLBACK}, []),
        ({"RollingUpdatePolicy": {}, **ROLLBACK}, []),
    ],
)
def test_endpoints_deploy_with_alarm_rollback(deployment, expected):
    props = {"EndpointConfigName": "c", **({"DeploymentConfig": deployment} if deployment else {})}
    assert _problems("MLP-SM8", {"Type": "AWS::SageMaker::Endpoint", "Properties": props}) == expected


def test_plain_lambda_functions_are_checked_like_the_public_packs_would():
    assert _problems("MLP-L1", {"Type": "AWS::Lambda::Function", "Properties": FUNCTION}) == []
    bare = {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.13"}}
    assert _problems("MLP-L1", bare) == [
        "VpcConfig is missing",
        "DeadLetterConfig.TargetArn is missing",
        "TracingConfig.Mode is not Active",
        "KmsKeyArn is missing (environment variables encrypted with the default key)",
        "LoggingConfig.LogGroup is missing (logs in an unencrypted, never-expiring default group)",
    ]
    assert _problems("MLP-L2", bare) == ["ReservedConcurrentExecutions is missing"]
    assert _problems("MLP-L2", {"Type": "AWS::Lambda::Function", "Properties": FUNCTION}) == []


def test_plain_dynamodb_tables_need_a_customer_key_and_point_in_time_recovery():
    good = {
        "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    assert _problems("MLP-D1", {"Type": "AWS::DynamoDB::Table", "Properties": good}) == []
    aws_owned = {"SSESpecification": {"SSEEnabled": True}}
    assert _problems("MLP-D1", {"Type": "AWS::DynamoDB::Table", "Properties": aws_owned}) == [
        "SSESpecification does not name a customer-managed KMS key",
        "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled is not true",
    ]
