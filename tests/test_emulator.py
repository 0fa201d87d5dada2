"""The stored pipeline definitions run as SageMaker would run them, offline: both branches, serving, bad input."""

from __future__ import annotations

import copy
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines import definition as builder
from pipelines.emulator import tuning, workload
from pipelines.emulator.errors import EmulationError
from pipelines.emulator.runner import Execution
from pipelines.emulator.workload import Deployed

DEV = builder.CACHE_DIR / "mlp-dev-training.json"
PROD = builder.CACHE_DIR / "mlp-prod-training.json"
DEFECT = "/opt/ml/input/data/code/sourcedir.tar.gz"  # what the SDK wrote before the fix


def _deployed(path: Path, tmp: Path, signal: bool = True, tuning_jobs: int = 2) -> Iterator[Deployed]:
    stored = workload.Stored.load(path)
    with workload.emulated_account(tmp, stored.region, tuning_jobs) as world:
        yield workload.deploy(world, stored, signal=signal)


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Iterator[tuple[Deployed, Execution]]:
    for deployed in _deployed(DEV, tmp_path_factory.mktemp("dev")):
        yield deployed, deployed.run()


@pytest.fixture(scope="module")
def prod(tmp_path_factory) -> Iterator[tuple[Deployed, Execution]]:
    # One training job for the tuning step keeps the suite fast; `make dry-run` runs two.
    for deployed in _deployed(PROD, tmp_path_factory.mktemp("prod"), tuning_jobs=1):
        yield deployed, deployed.run()


def _steps(definition: dict) -> dict[str, dict]:
    found = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            found.update(_steps({"Steps": step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]}))
    return found


def _job_dir(deployed: Deployed, execution: Execution, step: str) -> Path:
    name = execution.properties[step]["TrainingJobName"]
    return deployed.world.workdir / name


# --- dev and prod, end to end --------------------------------------------------------------------


def test_dev_runs_end_to_end_through_the_if_branch(dev):
    _, execution = dev
    assert execution.status == "Succeeded"
    assert [(s.name, s.status) for s in execution.steps] == [
        ("Preprocess", "Succeeded"),
        ("Train", "Succeeded"),
        ("Evaluate", "Succeeded"),
        ("QualityGate", "Succeeded"),
        ("DataQualityBaseline", "Succeeded"),
        ("ModelQualityBaseline", "Succeeded"),
        ("Register-RegisterModel", "Succeeded"),
        ("BelowQualityGate", "Skipped"),
    ]


def test_the_training_container_sees_what_sagemaker_gives_it(dev):
    deployed, execution = dev
    job = _job_dir(deployed, execution, "Train")
    config = job / "input" / "config"
    given = _steps(deployed.definition)["Train"]["Arguments"]["HyperParameters"]
    written = json.loads((config / "hyperparameters.json").read_text())
    # JSON-encoded strings as SageMaker writes them; only the code archive's path is mapped to the
    # emulated directory, and it names the file the code channel delivered.
    assert {k: v for k, v in written.items() if k != "sagemaker_submit_directory"} == {
        k: v for k, v in given.items() if k != "sagemaker_submit_directory"
    }
    assert json.loads(written["epochs"]) == "20"
    assert Path(json.loads(written["sagemaker_submit_directory"])).is_file()
    channels = json.loads((config / "inputdataconfig.json").read_text())
    assert channels["train"]["ContentType"] == "text/csv" and set(channels) == {"train", "validation", "code"}
    assert json.loads((config / "resourceconfig.json").read_text())["current_instance_type"] == "ml.m5.xlarge"
    assert sorted(p.name for p in (job / "input" / "data" / "train").iterdir()) == ["schema.json", "train.csv"]
    assert (job / "output" / "success").is_file(), "the toolkit reports success itself"


def test_training_outputs_land_where_sagemaker_puts_them(dev):
    deployed, execution = dev
    train = execution.properties["Train"]
    model = train["ModelArtifacts"]["S3ModelArtifacts"]
    assert model == f"{train['OutputDataConfig']['S3OutputPath']}/{train['TrainingJobName']}/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(deployed.world.store.read(model))) as archive:
        assert sorted(archive.getnames()) == ["code", "code/inference.py", "model.json"]
    checkpoint = f"{train['CheckpointConfig']['S3Uri']}/checkpoint.npz"
    assert "/runs/emulated/checkpoints/" in checkpoint and deployed.world.store.exists(checkpoint)
    assert {m["MetricName"] for m in train["FinalMetricDataList"]} == {
        "train:loss",
        "validation:loss",
        "validation:auc",
    }


def test_the_registered_package_points_at_objects_that_exist(dev):
    deployed, execution = dev
    package = deployed.world.sagemaker.describe_model_package(ModelPackageName=execution.model_package_arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == execution.properties["Train"]["ModelArtifacts"]["S3ModelArtifacts"]
    report = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    auc = deployed.world.store.read_json(report)["binary_classification_metrics"]["auc"]["value"]
    assert auc >= 0.7, "the gate let it through"
    constraints = package["DriftCheckBaselines"]["ModelDataQuality"]["Constraints"]["S3Uri"]
    assert deployed.world.store.read_json(constraints)["features"][0]["name"] == "amount"


def test_the_registered_model_serves_what_the_evaluate_step_scored(dev):
    deployed, execution = dev
    served = workload.check_serving(deployed, execution)
    # The rows include missing values, which the handler scores as the training mean like evaluation.
    assert served.missing_values > 0 and served.rows > served.missing_values
    assert served.max_difference <= workload.SERVING_TOLERANCE


def test_dev_takes_the_else_branch_when_the_model_misses_the_gate(dev):
    """New data whose labels no longer follow the feature: a selective execution re-runs everything but
    Train (its model comes from the first execution), and the gate fails the execution."""
    deployed, first = dev
    drifted = deployed.definition["Parameters"][2]["DefaultValue"].rstrip("/") + "-drifted/"
    deployed.upload_data(drifted, signal=False)
    selected = {s.name for s in first.steps} - {"Train"}
    execution = deployed.run_selected(selected, first, execution_id="drifted", parameters={"InputData": drifted})
    assert execution.status == "Failed"
    assert execution.failure == "auc on the test split is below 0.7"
    assert {s.name: s.status for s in execution.steps} == {
        "Preprocess": "Succeeded",
        "Train": "Reused",
        "Evaluate": "Succeeded",
        "QualityGate": "Succeeded",
        "DataQualityBaseline": "Skipped",
        "ModelQualityBaseline": "Skipped",
        "Register-RegisterModel": "Skipped",
        "BelowQualityGate": "Failed",
    }
    evaluated = execution.properties["Evaluate"]["ProcessingInputs"]
    assert all("/runs/drifted/" in i["S3Input"]["S3Uri"] for i in evaluated if i["InputName"] in ("test", "train"))
    assert execution.model_package_arn is None


def test_prod_runs_end_to_end_with_tuning_bias_and_explainability(prod):
    deployed, execution = prod
    assert execution.status == "Succeeded", execution.failure
    assert [s.name for s in execution.steps if s.status == "Succeeded"] == [
        "Preprocess",
        "Tune",
        "Evaluate",
        "QualityGate",
        "DataQualityBaseline",
        "ModelQualityBaseline",
        "DataBiasBaseline",
        "Register-RegisterModel",
    ]
    notes = {s.name: s.note for s in execution.steps}
    assert notes["DataBiasBaseline"] == "stand-in: Clarify"
    package = deployed.world.sagemaker.describe_model_package(ModelPackageName=execution.model_package_arn)
    bias = deployed.world.store.read_json(package["ModelMetrics"]["Bias"]["PreTrainingReport"]["S3Uri"])
    assert {m["name"] for m in bias["pre_training_bias_metrics"]["facets"]["amount"][0]["metrics"]} == {"CI", "DPL"}
    shap = deployed.world.store.read_json(package["ModelMetrics"]["Explainability"]["Report"]["S3Uri"])
    assert set(shap["explanations"]["kernel_shap"]["label0"]["global_shap_values"]) == {"amount"}


def test_tuning_ranks_its_jobs_by_the_objective():
    jobs = [
        {"TrainingJobName": n, "FinalHyperParameterTuningJobObjectiveMetric": {"Value": v}}
        for n, v in (("a", 1), ("b", 3), ("c", 2))
    ]
    assert [j["TrainingJobName"] for j in tuning.ranked(jobs, "Maximize")] == ["b", "c", "a"]
    assert [j["TrainingJobName"] for j in tuning.ranked(jobs, "Minimize")] == ["a", "c", "b"]
    # Job k of n takes each range at quantile (k + 0.5) / n, on a log scale where the range says so.
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "l2", "MinValue": "1e-06", "MaxValue": "0.01", "ScalingType": "Logarithmic"}
        ]
    }
    assert float(tuning.candidate(ranges, 0, 1)["l2"]) == pytest.approx(1e-4)


def test_tuning_passes_tuned_values_and_registers_the_best_job(prod):
    deployed, execution = prod
    tune = execution.properties["Tune"]
    summaries = tune["TrainingJobSummaries"]
    assert summaries[0]["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:auc"
    best = tune["BestTrainingJob"]
    assert best == summaries[0]
    model = execution.properties["Register-RegisterModel"]
    package = deployed.world.sagemaker.describe_model_package(ModelPackageName=model["ModelPackageArn"])
    url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert f"/models/{best['TrainingJobName']}/output/model.tar.gz" in url
    with tarfile.open(fileobj=io.BytesIO(deployed.world.store.read(url))) as archive:
        member = archive.extractfile("model.json")
        assert member is not None
        used = json.loads(member.read())["metadata"]["hyperparameters"]
    # The tuned values reached the script as SageMaker passes them (plain strings), the static ones too.
    assert used["learning_rate"] == pytest.approx(float(best["TunedHyperParameters"]["learning-rate"]))
    assert used["l2"] == pytest.approx(float(best["TunedHyperParameters"]["l2"]))
    assert used["epochs"] == 50


def test_prod_registers_its_cuda_image_for_gpu_types_only(prod):
    deployed, execution = prod
    package = deployed.world.sagemaker.describe_model_package(ModelPackageName=execution.model_package_arn)
    spec = package["InferenceSpecification"]
    assert spec["Containers"][0]["Image"].endswith("/pytorch-inference:2.6.0-gpu-py312")
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.g5.xlarge", "ml.g6.xlarge"]
    assert "SupportedTransformInstanceTypes" not in spec


# --- the defect and bad input: one line naming step, argument and path ----------------------------


def _variant(deployed: Deployed, change) -> Deployed:
    """The deployed definition with `change` applied to its steps (a dict by name), in the same account."""
    definition = copy.deepcopy(deployed.definition)
    change(_steps(definition))
    return Deployed(deployed.world, deployed.stored, definition, deployed.variables)


def test_reverting_the_submit_directory_fix_fails_the_train_step_in_one_line(dev):
    deployed, execution = dev

    def revert(steps):
        steps["Train"]["Arguments"]["HyperParameters"]["sagemaker_submit_directory"] = json.dumps(DEFECT)

    with pytest.raises(EmulationError) as caught:
        _variant(deployed, revert).run_selected({"Train"}, execution, execution_id="reverted")
    (code_key,) = [key for name, (key, _) in workload.assets().items() if name == "TrainingCodeKey"]
    assert str(caught.value) == (
        f"step Train, HyperParameters.sagemaker_submit_directory: {DEFECT}: no such file in the container "
        f"(/opt/ml/input/data/code holds {code_key}); the training toolkit exited 2"
    )


@pytest.mark.parametrize(
    ("selected", "change", "message"),
    [
        (
            "Evaluate",
            lambda s: s["Evaluate"]["Arguments"]["ProcessingInputs"][1]["S3Input"].update(
                S3Uri={
                    "Std:Join": {
                        "On": "",
                        "Values": [s["Evaluate"]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"], "s"],
                    }
                }
            ),
            r"step Evaluate, ProcessingInputs\[test\]\.S3Input\.S3Uri: s3://mlp-dev-training-artifacts/pipelines/"
            r"mlp-dev-training/runs/emulated/tests: no object there: no earlier step writes this path",
        ),
        (
            "Evaluate",
            lambda s: s["Evaluate"]["Arguments"]["AppSpecification"].update(
                ContainerEntrypoint=["python3", "/opt/ml/processing/input/code/evaluate.py"]
            ),
            r"step Evaluate, AppSpecification\.ContainerEntrypoint\[1\]: /opt/ml/processing/input/code/evaluate\.py: "
            r"no such file in the container \(/opt/ml/processing/input/code holds [0-9a-f]{64}\.py\)",
        ),
        (
            "Register-RegisterModel",
            lambda s: s["Register-RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0].update(
                ModelDataUrl={"Get": "Steps.Train.ModelArtifacts.S3ModelArtifact"}
            ),
            r"step Register-RegisterModel, InferenceSpecification\.Containers\[0\]\.ModelDataUrl: "
            r"Steps\.Train\.ModelArtifacts\.S3ModelArtifact: step Train produces no such property",
        ),
        (
            "Evaluate",
            lambda s: s["Evaluate"]["PropertyFiles"][0].update(FilePath="eval.json"),
            r"step Evaluate, PropertyFiles\[Evaluation\]\.FilePath: s3://\S+/runs/bad/evaluation/eval\.json: "
            r"the job wrote no such file: a JsonGet on it fails",
        ),
        (
            "Register-RegisterModel",
            lambda s: s["Register-RegisterModel"]["Arguments"]["ModelMetrics"]["ModelQuality"]["Statistics"].update(
                S3Uri="s3://mlp-dev-training-artifacts/nothing.json"
            ),
            r"step Register-RegisterModel, ModelMetrics\.ModelQuality\.Statistics\.S3Uri: "
            r"s3://mlp-dev-training-artifacts/nothing\.json: no such object: the package would point at nothing",
        ),
    ],
    ids=["reads-a-path-no-one-writes", "entry-not-in-the-container", "unknown-property", "property-file", "no-object"],
)
def test_bad_definitions_fail_in_one_line_naming_step_argument_and_path(dev, selected, change, message):
    deployed, execution = dev
    with pytest.raises(EmulationError) as caught:
        _variant(deployed, change).run_selected({selected}, execution, execution_id="bad")
    assert re.fullmatch(message, str(caught.value)), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_reference_to_a_step_the_pipeline_lacks_fails_before_anything_runs(dev):
    deployed, execution = dev

    def change(steps):
        steps["Evaluate"]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = {
            "Get": "Steps.Training.ModelArtifacts.S3ModelArtifacts"
        }

    with pytest.raises(EmulationError, match=r"^step Evaluate, Arguments: Steps\.Training: references a step"):
        _variant(deployed, change).run_selected({"Evaluate"}, execution)


def test_a_placeholder_the_stack_does_not_substitute_is_refused(dev):
    deployed, _ = dev
    with pytest.raises(
        EmulationError, match=r"^step \(deployment\), PipelineDefinitionBody: \$\{Unknown\}: no Fn::Sub"
    ):
        deployed.other({"Steps": [{"Name": "X", "Type": "Fail", "Arguments": {"ErrorMessage": "${Unknown}"}}]})


# --- stand-ins ---------------------------------------------------------------------------------------


def test_neuron_compile_stand_in_packs_the_deployed_scripts_archive(dev):
    """A config that serves on Inferentia2: its compile step and registration, on dev's trained model."""
    from infra.config import parse_config
    from stacks.training import pipeline_spec
    from tests.helpers import dev_data

    data = copy.deepcopy(dev_data())
    data.update(serving=None, monitoring=None, retraining=None)
    data["training"]["inference_instance_types"] = ["ml.inf2.xlarge"]
    spec = pipeline_spec(parse_config(data, "neuron"), subnets=1)
    deployed, execution = dev
    variant = deployed.other(json.loads(builder.build(spec)))
    run = variant.run_selected({"CompileForInferentia", "Register-RegisterModel"}, execution, execution_id="neuron")
    assert run.step("CompileForInferentia").note == "stand-in: Neuron compiler"
    compiled = run.properties["CompileForInferentia"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    with tarfile.open(fileobj=io.BytesIO(deployed.world.store.read(f"{compiled}/model.tar.gz"))) as archive:
        assert sorted(archive.getnames()) == ["code/inference.py", "model.pt"]
    package = deployed.world.sagemaker.describe_model_package(ModelPackageName=run.model_package_arn)
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == f"{compiled}/model.tar.gz"
