"""Training stack and pipeline: the definition step by step, its security, determinism and config variants."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from pathlib import Path

import pytest

from infra.checks.rules import check_template, pipeline_definition
from infra.config import (
    EVALUATION_METRICS,
    TRAINING_HYPERPARAMETERS,
    TRAINING_METRIC_REGEXES,
    TRAINING_METRICS,
    load_config,
    parse_config,
)
from pipelines import definition as pipeline
from pipelines.steps import evaluate, train
from stacks.training import pipeline_spec
from tests.helpers import dev_data

STACK = "Training"


def _pipeline(synthesized) -> dict:
    (resource,) = synthesized.resources(STACK, "AWS::SageMaker::Pipeline").values()
    return resource["Properties"]


def _definition(synthesized) -> dict:
    definition = pipeline_definition(_pipeline(synthesized))
    assert definition is not None
    return definition


def _steps(definition: dict) -> dict[str, dict]:
    steps = {s["Name"]: s for s in definition["Steps"]}
    for branch in ("IfSteps", "ElseSteps"):
        steps.update({s["Name"]: s for s in steps["QualityGate"]["Arguments"][branch]})
    return steps


# --- The definition, step by step ---------------------------------------------------------------


def test_steps_run_process_train_evaluate_gate_then_baselines_and_register(dev):
    definition = _definition(dev)
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "QualityGate"]
    assert [s["Type"] for s in definition["Steps"]] == ["Processing", "Training", "Processing", "Condition"]
    gate = definition["Steps"][-1]["Arguments"]
    # The platform engine's baselines come from the preprocess and evaluate steps: no Model Monitor job.
    assert [(s["Name"], s["Type"]) for s in gate["IfSteps"]] == [("Register-RegisterModel", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in gate["ElseSteps"]] == [("BelowQualityGate", "Fail")]
    assert {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]} == {
        "TriggerReason": "manual",
        "ModelApprovalStatus": "PendingManualApproval",
        "InputData": "s3://${CuratedBucket}/transactions/",
    }


def test_instance_types_and_spot_settings_come_from_the_config(dev):
    steps = _steps(_definition(dev))
    training = load_config("dev").training
    train_args = steps["Train"]["Arguments"]
    assert train_args["ResourceConfig"]["InstanceType"] == training.instance_type == "ml.m5.xlarge"
    assert train_args["EnableManagedSpotTraining"] is True
    assert train_args["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    # Checkpoints per execution: a new run never resumes from the previous run's final state.
    checkpoint = train_args["CheckpointConfig"]["S3Uri"]["Std:Join"]["Values"]
    assert {"Get": "Execution.PipelineExecutionId"} in checkpoint and checkpoint[-1] == "checkpoints"
    for name in ("Preprocess", "Evaluate"):
        cluster = steps[name]["Arguments"]["ProcessingResources"]["ClusterConfig"]
        assert cluster["InstanceType"] == training.processing_instance_type


def test_every_job_is_isolated_in_the_vpc_and_encrypted(dev, prod):
    for synthesized in (dev, prod):
        steps = _steps(_definition(synthesized))
        for name, step in steps.items():
            args = step["Arguments"]
            if step["Type"] in ("Processing", "QualityCheck"):
                network = args["NetworkConfig"]
                assert network["EnableNetworkIsolation"] and network["EnableInterContainerTrafficEncryption"], name
                assert network["VpcConfig"]["SecurityGroupIds"] == ["${SecurityGroupId}"], name
                assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${ArtifactsKeyArn}", name
        # The project's rule sees the same: no finding on either environment's pipeline.
        assert [f for f in check_template(synthesized.templates[STACK]) if f.rule.id == "MLP-SM6"] == []


def test_volume_keys_follow_the_instance_catalog(dev, prod):
    # ml.m5 (dev training) has EBS volumes: keyed. ml.g5 (prod training) has local NVMe: no key.
    dev_train = _steps(_definition(dev))["Train"]["Arguments"]["ResourceConfig"]
    assert dev_train["VolumeKmsKeyId"] == "${ArtifactsKeyArn}"
    prod_tune = _steps(_definition(prod))["Tune"]["Arguments"]["TrainingJobDefinition"]
    assert prod_tune["HyperParameterTuningResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert "VolumeKmsKeyId" not in prod_tune["HyperParameterTuningResourceConfig"]


def test_quality_gate_and_registration(dev):
    steps = _steps(_definition(dev))
    (condition,) = steps["QualityGate"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo" and condition["RightValue"] == 0.7
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.auc.value"
    register = steps["Register-RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "mlp-dev-models"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    metrics = register["ModelMetrics"]
    assert metrics["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"
    # The platform engine's baselines, at the paths promotion reads (infra/catalog/monitors.py).
    data = {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['monitoring'].S3Output.S3Uri"}
    model = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['monitoring'].S3Output.S3Uri"}

    def document(output: dict, kind: str, name: str) -> dict:
        return {"ContentType": "application/json", "S3Uri": {"Std:Join": {"On": "/", "Values": [output, kind, name]}}}

    drift = register["DriftCheckBaselines"]
    assert set(drift) == {"ModelDataQuality", "ModelQuality"}
    for registered in (metrics, drift):
        assert registered["ModelDataQuality"] == {
            "Statistics": document(data, "data_quality", "statistics.json"),
            "Constraints": document(data, "data_quality", "constraints.json"),
        }
        assert registered["ModelQuality"]["Constraints"] == document(model, "model_quality", "constraints.json")


def test_prod_tunes_with_the_configured_strategy_and_ranges(prod):
    tuning = load_config("prod").training.tuning
    steps = _steps(_definition(prod))
    assert "Train" not in steps
    config = steps["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == tuning.strategy == "Bayesian"
    assert config["HyperParameterTuningJobObjective"] == {"MetricName": "validation:auc", "Type": "Maximize"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 4}
    ranges = {r["Name"]: r for r in config["ParameterRanges"]["ContinuousParameterRanges"]}
    assert ranges["learning-rate"] == {
        "Name": "learning-rate", "MinValue": "0.001", "MaxValue": "0.5", "ScalingType": "Logarithmic"
    }  # fmt: skip
    # The evaluation reads the best training job's model.
    model = steps["Evaluate"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"]
    assert "Steps.Tune.TrainingJobSummaries" in json.dumps(model)


# --- The stack ---------------------------------------------------------------------------------


def test_every_placeholder_is_substituted_at_deploy_time(dev, prod):
    for synthesized in (dev, prod):
        body, variables = _pipeline(synthesized)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
        names = set(re.findall(r"\$\{([^}]+)\}", body))
        unknown = {n for n in names if not n.startswith("AWS::")} - set(variables)
        assert unknown == set(), unknown
        assert set(pipeline.PLACEHOLDERS) <= set(variables)


def test_environment_agnostic_images_resolve_per_region(dev, prod):
    body, variables = _pipeline(dev)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert "us-east-1" not in body
    assert variables["PyTorchRegistry"] == {"Fn::FindInMap": ["ImageRegistries", {"Ref": "AWS::Region"}, "PyTorch"]}
    mapping = dev.templates[STACK]["Mappings"]["ImageRegistries"]
    assert mapping["us-east-1"]["PyTorch"] == "763104351884" and "eu-west-1" in mapping
    prod_body = _pipeline(prod)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
    assert "dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.6.0-gpu-py312" in prod_body


def test_model_package_group_is_retained(dev):
    (group,) = dev.resources(STACK, "AWS::SageMaker::ModelPackageGroup").values()
    assert group["Properties"]["ModelPackageGroupName"] == "mlp-dev-models"
    assert group["DeletionPolicy"] == "Retain"


def test_roles_are_scoped_and_guarded(dev):
    resources = dev.templates[STACK]["Resources"]
    for role_id, role in resources.items():
        if role["Type"] == "AWS::IAM::Role":
            # The foundation's guardrail denies jobs without VPC, isolation or KMS.
            assert "SageMakerGuardrail" in json.dumps(role["Properties"]["ManagedPolicyArns"]), role_id
    pipeline_statements = dev.role_statements(STACK, "PipelineRole")
    pass_role = next(s for s in pipeline_statements if s["Action"] == "iam:PassRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert len(pass_role["Resource"]) == 2
    processing = json.dumps(dev.role_statements(STACK, "ProcessingRole"))
    training = json.dumps(dev.role_statements(STACK, "TrainingRole"))
    assert "mlp-dev-curated-bucket-arn" in processing and "mlp-dev-curated-bucket-arn" not in training
    assert '"s3:*"' not in processing + training


def test_pipeline_waits_for_its_roles_permissions(dev):
    (resource,) = [r for r in dev.templates[STACK]["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    assert sum("DefaultPolicy" in d for d in resource["DependsOn"]) == 3


# --- Determinism, caching, offline ------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_spec():
    config = load_config("dev")
    return pipeline_spec(config, config.training, config.data_lake.dataset, subnets=1)


def test_stored_definitions_are_current_and_builds_are_byte_identical(dev_spec):
    first = pipeline.build(dev_spec)
    stored = json.loads((pipeline.CACHE_DIR / "mlp-dev-training.json").read_text())
    # The stored file was built in another process: same input, same bytes.
    assert stored["key"] == dev_spec.cache_key()
    assert json.dumps(stored["definition"], sort_keys=True, separators=(",", ":")) == first


def test_a_stale_stored_definition_fails_instead_of_rebuilding(dev_spec, tmp_path):
    (tmp_path / f"{dev_spec.name}.json").write_text(json.dumps({"key": "old", "definition": {}}))
    with pytest.raises(pipeline.StaleDefinition, match="run `make synth`"):
        pipeline.cached(dev_spec, tmp_path)


# --- Config variants -----------------------------------------------------------------------------


def _training_data(change) -> dict:
    """Dev's config with `change` applied to its training section, and nothing served from it.

    What dev serves, monitors and retrains is not under test here, and a changed training section
    (e.g. other inference types) may not fit it.
    """
    data = copy.deepcopy(dev_data())
    for section in ("serving", "monitoring", "retraining"):
        if section in data:
            data[section] = None
    change(data["training"])
    return data


def _variant(change) -> dict:
    config = parse_config(_training_data(change), "variant")
    definition = json.loads(pipeline.build(pipeline_spec(config, config.training, config.data_lake.dataset, subnets=2)))
    resource = {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {"PipelineDefinition": {"PipelineDefinitionBody": json.dumps(definition)}},
    }
    findings = [f.problems for f in check_template({"Resources": {"P": resource}})]
    assert findings == [], findings
    return _steps(definition)


def _gpu_with_inferentia_serving(training: dict) -> None:
    """One variant for several tests (each build costs about a second): GPU training without spot,
    Debugger rules and TensorBoard, MLflow, explainability, and a model compiled for Inferentia2."""
    training.update(
        instance_type="ml.g5.xlarge",
        inference_instance_types=["ml.inf2.xlarge"],
        spot={"enabled": False},
        debugger={
            "rules": ["loss_not_decreasing", "low_gpu_utilization"],
            "tensorboard": True,
            "account_has_debugger": True,
        },
        mlflow={"size": "Small"},
        explainability={"rows": 10},
    )


@functools.cache
def _shared_variant() -> dict:
    return _variant(_gpu_with_inferentia_serving)


def test_variant_gpu_training_on_several_instances_is_distributed():
    steps = _variant(lambda t: t.update(instance_type="ml.g6e.xlarge", instance_count=2))
    args = steps["Train"]["Arguments"]
    assert args["AlgorithmSpecification"]["TrainingImage"].endswith("/pytorch-training:2.6.0-gpu-py312")
    assert json.loads(args["HyperParameters"]["sagemaker_torch_distributed_enabled"]) is True
    assert args["ResourceConfig"]["InstanceCount"] == 2 and "VolumeKmsKeyId" not in args["ResourceConfig"]


def test_variant_trainium_training_uses_the_neuron_image():
    steps = _variant(lambda t: t.update(instance_type="ml.trn1.2xlarge"))
    image = steps["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    assert image.endswith(f"/{pipeline.NEURON_TRAINING_IMAGE}")


def test_variant_without_spot_has_no_wait_or_checkpoints():
    steps = _shared_variant()
    args = steps["Train"]["Arguments"]
    assert "EnableManagedSpotTraining" not in args or args["EnableManagedSpotTraining"] is False
    assert "CheckpointConfig" not in args and "MaxWaitTimeInSeconds" not in args["StoppingCondition"]


def test_variant_hyperband_tuning():
    tuning = {
        "strategy": "Hyperband",
        "early_stopping": "Off",
        "max_jobs": 6,
        "max_parallel_jobs": 3,
        "ranges": {"epochs": {"min": 5, "max": 50}, "batch-size": {"values": [256, 512]}},
    }
    steps = _variant(lambda t: t.update(tuning=tuning))
    config = steps["Tune"]["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Hyperband" and config["TrainingJobEarlyStoppingType"] == "Off"
    ranges = config["ParameterRanges"]
    assert ranges["IntegerParameterRanges"][0]["Name"] == "epochs"
    # Framework estimators pass hyperparameters JSON-encoded; the training toolkit decodes them.
    assert ranges["CategoricalParameterRanges"][0] == {"Name": "batch-size", "Values": ['"256"', '"512"']}


# --- The config and the scripts agree ------------------------------------------------------------


def test_config_constants_match_the_step_scripts():
    assert tuple(evaluate.METRICS) == EVALUATION_METRICS
    assert {m["Name"] for m in train.METRIC_DEFINITIONS} == set(TRAINING_METRICS)
    assert {m["Name"]: m["Regex"] for m in train.METRIC_DEFINITIONS} == TRAINING_METRIC_REGEXES
    source = Path(train.__file__).read_text()
    for name in TRAINING_HYPERPARAMETERS:
        assert f'"--{name}"' in source, name


# --- Debugger, TensorBoard, Feature Store --------------------------------------------------------


def test_debugger_is_off_unless_configured(dev):
    dev_train = _steps(_definition(dev))["Train"]["Arguments"]
    assert "DebugRuleConfigurations" not in dev_train and "TensorBoardOutputConfig" not in dev_train
    assert dev_train["ProfilerConfig"] == {"DisableProfiler": True}


def test_variant_with_debugger_rules_and_tensorboard():
    steps = _shared_variant()
    args = steps["Train"]["Arguments"]
    assert [r["RuleConfigurationName"] for r in args["DebugRuleConfigurations"]] == ["LossNotDecreasing"]
    assert [r["RuleConfigurationName"] for r in args["ProfilerRuleConfigurations"]] == ["LowGPUUtilization"]
    image = args["DebugRuleConfigurations"][0]["RuleEvaluatorImage"]
    assert image == "${DebuggerRegistry}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/sagemaker-debugger-rules:latest"
    assert args["TensorBoardOutputConfig"]["S3OutputPath"].endswith("/tensorboard")
    assert args["ProfilerConfig"]["DisableProfiler"] is False


def test_feature_group_keeps_features_encrypted_in_the_curated_zone(prod, dev):
    assert not dev.resources(STACK, "AWS::SageMaker::FeatureGroup"), "dev has no feature store"
    (group,) = prod.resources(STACK, "AWS::SageMaker::FeatureGroup").values()
    props = group["Properties"]
    assert group["DeletionPolicy"] == "Retain"
    assert props["RecordIdentifierFeatureName"] == "transaction_id" and props["EventTimeFeatureName"] == "event_time"
    assert {f["FeatureName"]: f["FeatureType"] for f in props["FeatureDefinitions"]} == {
        "transaction_id": "String", "event_time": "String", "amount": "Fractional", "is_fraud": "Integral"
    }  # fmt: skip
    assert "KeysData" in json.dumps(props["OnlineStoreConfig"]["SecurityConfig"]["KmsKeyId"])
    offline = props["OfflineStoreConfig"]
    assert "mlp-prod-curated-bucket-name" in json.dumps(offline["S3StorageConfig"]["S3Uri"])
    assert offline["DataCatalogConfig"] == {
        "Catalog": "AwsDataCatalog", "Database": "mlp_prod_curated", "TableName": "transactions_features"
    }  # fmt: skip
    grants = [
        g
        for i, g in prod.resources(STACK, "AWS::LakeFormation::PrincipalPermissions").items()
        if i.startswith("Features")
    ]
    assert sorted(p for g in grants for p in g["Properties"]["Permissions"]) == [
        "CREATE_TABLE", "DATA_LOCATION_ACCESS", "DESCRIBE"
    ]  # fmt: skip
    # Each grant names what it is on (a dict of CloudFormation names handed to a typed L1 once
    # rendered an empty Resource here).
    resources = {next(iter(g["Properties"]["Resource"])) for g in grants}
    assert resources == {"DataLocation", "Database"}
    database = next(g for g in grants if "Database" in g["Properties"]["Resource"])["Properties"]["Resource"]
    assert database["Database"]["Name"] == "mlp_prod_curated"


def test_studio_profiles_get_their_personas_lake_access(prod):
    from tests import lake_access

    resources = prod.templates[STACK]["Resources"]
    (domain,) = prod.resources(STACK, "AWS::SageMaker::Domain").values()
    assert domain["Properties"]["AppNetworkAccessType"] == "VpcOnly" and domain["Properties"]["AuthMode"] == "IAM"
    profiles = {
        p["Properties"]["UserProfileName"] for p in prod.resources(STACK, "AWS::SageMaker::UserProfile").values()
    }
    assert profiles == {"data-engineer", "data-scientist"}
    # Evaluate the Studio roles' tag grants against the lake's tags (tables live in the DataLake stack).
    lake = copy.deepcopy(prod.templates["DataLake"])
    lake["Resources"].update(
        {i: r for i, r in resources.items() if r["Type"] == "AWS::LakeFormation::PrincipalPermissions"}
    )
    role_ids = [
        i for i, r in resources.items() if r["Type"] == "AWS::IAM::Role" and i.startswith("StudioDataScientist")
    ]
    (scientist,) = [i for i in role_ids if "Role" in i]
    visible = lake_access.selectable_columns(lake, {"Fn::GetAtt": [scientist, "Arn"]})
    dataset = load_config("prod").data_lake.dataset
    assert visible == {("mlp_prod_curated", "transactions"): {c.name for c in dataset.columns if not c.sensitive}}


def test_mlflow_server_is_private_to_iam(prod):
    (server,) = prod.resources(STACK, "AWS::SageMaker::MlflowTrackingServer").values()
    assert server["Properties"]["TrackingServerSize"] == "Small"
    assert "mlflow/" in json.dumps(server["Properties"]["ArtifactStoreUri"])
    services = {
        json.dumps(e["Properties"]["ServiceName"]).strip('"').rsplit(".", 1)[-1]
        for e in prod.resources("Network", "AWS::EC2::VPCEndpoint").values()
    }
    # Studio apps and MLflow clients in the VPC reach SageMaker through these endpoints only.
    assert {"studio", "notebook", "experiments"} <= services


def test_variant_gpu_training_with_inferentia_serving_registers_a_neuron_artifact():
    steps = _shared_variant()
    gate = [s["Name"] for s in steps["QualityGate"]["Arguments"]["IfSteps"]]
    assert gate == ["CompileForInferentia", "Register-RegisterModel"]
    compile_args = steps["CompileForInferentia"]["Arguments"]
    image = compile_args["AppSpecification"]["ImageUri"]
    assert image.endswith(f"/{pipeline.NEURON_INFERENCE_IMAGE}")
    # Compiled on a CPU processing instance: the Neuron compiler needs no device.
    assert compile_args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.xlarge"
    container = steps["Register-RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == image
    assert container["ModelDataUrl"]["Std:Join"]["Values"] == [
        {"Get": "Steps.CompileForInferentia.ProcessingOutputConfig.Outputs['compiled'].S3Output.S3Uri"},
        "model.tar.gz",
    ]
    supported = steps["Register-RegisterModel"]["Arguments"]["InferenceSpecification"]
    assert supported["SupportedRealtimeInferenceInstanceTypes"] == ["ml.inf2.xlarge"]


def test_cpu_serving_registers_the_trained_model_without_compiling(dev):
    steps = _steps(_definition(dev))
    assert "CompileForInferentia" not in steps
    container = steps["Register-RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


def test_prod_registers_the_platform_bias_baseline_of_the_evaluate_step(prod, dev):
    steps = _steps(_definition(prod))
    assert "DataBiasBaseline" not in steps, "no Clarify job with the platform engine"
    arguments = steps["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[-6:] == [
        "--monitoring-baseline-dir", pipeline.BASELINE_DIR, "--bias-facet", "amount", "--bias-threshold", "1000.0"
    ]  # fmt: skip
    assert "--bias-facet" not in steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    output = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['monitoring'].S3Output.S3Uri"}
    register = steps["Register-RegisterModel"]["Arguments"]
    # Promotion delivers DriftCheckBaselines.Bias.ConfigFile to the bias monitor (monitors.BASELINE_PARAMETERS).
    assert register["DriftCheckBaselines"]["Bias"]["ConfigFile"]["S3Uri"] == {
        "Std:Join": {"On": "/", "Values": [output, "bias", "constraints.json"]}
    }
    report = register["ModelMetrics"]["Bias"]["PostTrainingReport"]["S3Uri"]
    assert report == {"Std:Join": {"On": "/", "Values": [output, "bias", "statistics.json"]}}


def test_model_monitor_engine_keeps_its_quality_check_and_clarify_baselines():
    config = parse_config(_training_data(lambda t: t.update(bias_baseline={"facet": "amount", "threshold": 1000})), "v")
    spec = pipeline_spec(config, config.training, config.data_lake.dataset, subnets=2)
    spec = dataclasses.replace(spec, monitoring_engine=pipeline.MODEL_MONITOR_ENGINE)
    assert spec.image_families == ("PyTorch", "SKLearn", "ModelMonitor", "Clarify")
    definition = json.loads(pipeline.build(spec))
    resource = {
        "Type": "AWS::SageMaker::Pipeline",
        "Properties": {"PipelineDefinition": {"PipelineDefinitionBody": json.dumps(definition)}},
    }
    assert [f.problems for f in check_template({"Resources": {"P": resource}})] == []
    steps = _steps(definition)
    assert steps["DataQualityBaseline"]["Type"] == steps["ModelQualityBaseline"]["Type"] == "QualityCheck"
    assert "sagemaker-model-monitor-analyzer" in json.dumps(steps["DataQualityBaseline"])
    assert "library" not in [i["InputName"] for i in steps["Preprocess"]["Arguments"]["ProcessingInputs"]]
    register = steps["Register-RegisterModel"]["Arguments"]
    assert register["DriftCheckBaselines"]["ModelDataQuality"]["Constraints"]["S3Uri"] == {
        "Get": "Steps.DataQualityBaseline.BaselineUsedForDriftCheckConstraints"
    }
    _clarify_bias_baseline(steps)


def _clarify_bias_baseline(steps: dict) -> None:
    bias = steps["DataBiasBaseline"]["Arguments"]
    assert bias["AppSpecification"]["ImageUri"].endswith("/sagemaker-clarify-processing:1.0")
    inputs = {i["InputName"]: i["S3Input"]["LocalPath"] for i in bias["ProcessingInputs"]}
    assert inputs == {"analysis_config": "/opt/ml/processing/input/config", "dataset": "/opt/ml/processing/input/data"}
    arguments = steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[-4:] == ["--bias-facet", "amount", "--bias-threshold", "1000.0"]
    report = steps["Register-RegisterModel"]["Arguments"]["ModelMetrics"]["Bias"]["PreTrainingReport"]
    assert report["S3Uri"]["Std:Join"]["Values"][-1] == "analysis.json"


def test_variant_with_mlflow_has_sagemaker_log_the_training_job(dev):
    steps = _shared_variant()
    args = steps["Train"]["Arguments"]
    # The service logs the job's metrics and hyperparameters; the container keeps its isolation.
    assert args["MlflowConfig"] == {
        "MlflowResourceArn": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"
        ":mlflow-tracking-server/mlp-dev-mlflow",
        "MlflowExperimentName": "mlp-dev-training",
    }
    assert args["EnableNetworkIsolation"] is True
    assert "MlflowConfig" not in _steps(_definition(dev))["Train"]["Arguments"], "dev has no tracking server"


def test_training_role_may_log_runs_to_the_tracking_server_only(prod):
    ((server_id, server),) = prod.resources(STACK, "AWS::SageMaker::MlflowTrackingServer").items()
    assert server["Properties"]["TrackingServerName"] == "mlp-prod-mlflow"
    ((_, pipeline_resource),) = prod.resources(STACK, "AWS::SageMaker::Pipeline").items()
    assert server_id in pipeline_resource["DependsOn"]
    statements = prod.role_statements(STACK, "TrainingRole")
    (statement,) = [s for s in statements if "sagemaker:DescribeMlflowTrackingServer" in s["Action"]]
    assert statement["Resource"] == {"Fn::GetAtt": [server_id, "TrackingServerArn"]}
    run_actions = "CreateExperiment GetExperiment GetExperimentByName CreateRun GetRun UpdateRun LogBatch LogMetric"
    assert set(statement["Action"]) - {"sagemaker:DescribeMlflowTrackingServer"} == {
        f"sagemaker-mlflow:{a}" for a in (*run_actions.split(), "LogParam", "SetTag")
    }


# --- Explainability: SHAP values from the evaluate step --------------------------------------------

EXPLAINED = {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['explainability'].S3Output.S3Uri"}
REPORT = {
    "ContentType": "application/json",
    "S3Uri": {"Std:Join": {"On": "/", "Values": [EXPLAINED, evaluate.ANALYSIS_FILE]}},
}


def test_prod_explains_the_model_in_the_evaluate_step_with_no_model_or_clarify_job(prod):
    definition = _definition(prod)
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Tune", "Evaluate", "QualityGate"]
    steps = _steps(definition)
    assert not [name for name, s in steps.items() if s["Type"] == "Model" or "Explainability" in name]
    # No Clarify job at all with the platform engine: nothing needs a shadow endpoint.
    clarify = [n for n, s in steps.items() if "sagemaker-clarify" in json.dumps(s["Arguments"].get("AppSpecification"))]
    assert clarify == []
    args = steps["Evaluate"]["Arguments"]
    assert args["AppSpecification"]["ContainerArguments"][:2] == ["--explainability-rows", "50"]
    assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
    outputs = {o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["explainability"]["LocalPath"] == "/opt/ml/processing/explainability"
    uri = outputs["explainability"]["S3Uri"]["Std:Join"]["Values"]
    assert {"Get": "Execution.PipelineExecutionId"} in uri and uri[-1] == "explainability"


def test_prod_registers_the_shap_report_and_its_drift_baseline(prod):
    register = _steps(_definition(prod))["Register-RegisterModel"]["Arguments"]
    assert register["ModelMetrics"]["Explainability"] == {"Report": REPORT}
    # analysis.json is also the constraints of a feature attribution drift check; the config file is
    # the monitor's template, which the promotion function completes with the model it deploys.
    explained = REPORT["S3Uri"]["Std:Join"]["Values"][:-1]
    assert register["DriftCheckBaselines"]["Explainability"] == {
        "Constraints": REPORT,
        "ConfigFile": {
            "ContentType": "application/json",
            "S3Uri": {"Std:Join": {"On": "/", "Values": [*explained, "monitoring", "analysis_config.json"]}},
        },
    }


def test_dev_configures_no_explainability(dev):
    steps = _steps(_definition(dev))
    args = steps["Evaluate"]["Arguments"]
    assert args["AppSpecification"]["ContainerArguments"] == ["--monitoring-baseline-dir", pipeline.BASELINE_DIR]
    outputs = [o["OutputName"] for o in args["ProcessingOutputConfig"]["Outputs"]]
    assert outputs == ["evaluation", "predictions", "monitoring"]
    register = steps["Register-RegisterModel"]["Arguments"]
    # The SDK writes an empty Explainability section into every ModelMetrics.
    assert register["ModelMetrics"].get("Explainability", {}) == {}
    assert "Explainability" not in register["DriftCheckBaselines"]


def test_explainability_needs_no_endpoint_permissions(prod, dev):
    for synthesized in (prod, dev):
        template = json.dumps(synthesized.templates[STACK])
        assert "sm-clarify" not in template and "model/pipelines-" not in template
        assert '"sagemaker:CreateModel"' not in template and '"sagemaker:CreateEndpoint"' not in template
        assert not re.search(r"repository/pytorch-inference(?!-neuronx)", template)


def test_variant_explainability_rows_and_inferentia_serving_explain_the_trained_model():
    steps = _shared_variant()  # MLP-SM6 and every other project rule pass on it
    evaluate_args = steps["Evaluate"]["Arguments"]
    assert evaluate_args["AppSpecification"]["ContainerArguments"] == [
        "--explainability-rows", "10", "--monitoring-baseline-dir", pipeline.BASELINE_DIR
    ]  # fmt: skip
    # Explained is the trained model (what was evaluated), not the Neuron-compiled one that is registered.
    (model,) = [i for i in evaluate_args["ProcessingInputs"] if i["InputName"] == "model"]
    assert model["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    register = steps["Register-RegisterModel"]["Arguments"]
    assert register["ModelMetrics"]["Explainability"] == {"Report": REPORT}
    assert "CompileForInferentia" in json.dumps(register["InferenceSpecification"])
