"""The stored pipeline definitions run as SageMaker would run them, offline: both branches, serving, bad input.

The executions run in a background process started when this module is collected
(tests/emulator_runs.py: their time goes to job processes, which overlap the tests before this
module); the tests read what it observed.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from typing import Any

import pytest

from pipelines.emulator import tuning, workload
from tests import emulator_runs
from tests.emulator_runs import DEFECT

# The longest the runs may take: a fail, never a hang.
TIMEOUT_SECONDS = 600


def _start() -> tuple[Any, Any, tempfile.TemporaryDirectory[str]]:
    # spawn: the session runs jsii's Node.js process, which a fork would copy.
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    workdir = tempfile.TemporaryDirectory(prefix="emulator-")
    process = context.Process(target=emulator_runs.in_background, args=(send, workdir.name, os.getpid()), daemon=True)
    process.start()
    send.close()
    return process, receive, workdir


_BACKGROUND = _start()


@pytest.fixture(scope="module")
def runs() -> dict[str, Any]:
    process, receive, workdir = _BACKGROUND
    if not receive.poll(TIMEOUT_SECONDS):
        process.kill()
        pytest.fail(f"the emulated executions did not finish in {TIMEOUT_SECONDS} s")
    status, value = receive.recv()
    process.join(timeout=30)
    workdir.cleanup()
    if status != "ok":
        pytest.fail(f"the emulated executions failed:\n{value}")
    return value


def _statuses(observed: dict) -> list[tuple[str, str]]:
    return [(name, status) for name, _, status, _ in observed["steps"]]


# --- dev, end to end ------------------------------------------------------------------------------


def test_dev_runs_end_to_end_through_the_if_branch(runs):
    dev = runs["dev"]
    assert dev["status"] == "Succeeded"
    assert _statuses(dev) == [
        ("Preprocess", "Succeeded"),
        ("Train", "Succeeded"),
        ("Evaluate", "Succeeded"),
        ("QualityGate", "Succeeded"),
        ("Register-RegisterModel", "Succeeded"),
        ("BelowQualityGate", "Skipped"),
    ]
    # The platform engine's baselines come from the steps' own scripts: no step of dev needs a stand-in.
    assert not any(note.startswith("stand-in") for _, _, _, note in dev["steps"])


def test_the_training_container_sees_what_sagemaker_gives_it(runs):
    dev = runs["dev"]
    view = dev["training"]
    given = dev["properties"]["Train"]["HyperParameters"]
    written = view["config"]["hyperparameters.json"]
    # JSON-encoded strings as SageMaker writes them; only the code archive's container path is mapped
    # to the emulated directory, where the code channel delivered the archive.
    assert {k: v for k, v in written.items() if k != "sagemaker_submit_directory"} == {
        k: v for k, v in given.items() if k != "sagemaker_submit_directory"
    }
    assert written["epochs"] == '"20"' and view["submit_directory_is_a_file"]
    channels = view["config"]["inputdataconfig.json"]
    assert set(channels) == {"train", "validation", "code"} and channels["train"]["ContentType"] == "text/csv"
    assert view["config"]["resourceconfig.json"]["current_instance_type"] == "ml.m5.xlarge"
    assert view["train_channel"] == ["schema.json", "train.csv"]
    assert view["success"], "the toolkit reported success itself"


def test_training_outputs_land_where_sagemaker_puts_them(runs):
    dev = runs["dev"]
    train = dev["properties"]["Train"]
    model = train["ModelArtifacts"]["S3ModelArtifacts"]
    assert model == f"{train['OutputDataConfig']['S3OutputPath']}/{train['TrainingJobName']}/output/model.tar.gz"
    assert dev["training"]["checkpoint"] == f"{train['CheckpointConfig']['S3Uri']}/checkpoint.npz"
    assert "/runs/emulated/checkpoints" in dev["training"]["checkpoint"]
    assert {m["MetricName"] for m in train["FinalMetricDataList"]} == {
        "train:loss",
        "validation:loss",
        "validation:auc",
    }


def test_the_registered_package_points_at_objects_that_exist(runs):
    dev = runs["dev"]
    package, objects = dev["package"], dev["objects"]
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == dev["properties"]["Train"]["ModelArtifacts"]["S3ModelArtifacts"]
    assert dev["archive"]["names"] == ["code", "code/inference.py", "model.json"]
    report = objects[package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]]
    assert report["binary_classification_metrics"]["auc"]["value"] >= 0.7, "the gate let it through"
    constraints = objects[package["DriftCheckBaselines"]["ModelDataQuality"]["Constraints"]["S3Uri"]]
    assert [f["name"] for f in constraints["features"]] == ["amount"]


def test_the_registered_model_serves_what_the_evaluate_step_scored(runs):
    served = runs["dev"]["serving"]
    # The rows include missing values, which the handler scores as the training mean like evaluation.
    assert served["missing_values"] > 0 and served["rows"] > served["missing_values"]
    assert served["max_difference"] <= workload.SERVING_TOLERANCE


def test_dev_takes_the_else_branch_when_the_model_misses_the_gate(runs):
    """New data whose labels no longer follow the feature: a selective execution re-runs everything but
    Train (its model comes from the first execution), and the gate fails the execution."""
    drifted = runs["drifted"]
    assert drifted["status"] == "Failed"
    assert drifted["failure"] == "auc on the test split is below 0.7"
    assert _statuses(drifted) == [
        ("Preprocess", "Succeeded"),
        ("Train", "Reused"),
        ("Evaluate", "Succeeded"),
        ("QualityGate", "Succeeded"),
        ("Register-RegisterModel", "Skipped"),
        ("BelowQualityGate", "Failed"),
    ]
    inputs = drifted["properties"]["Evaluate"]["ProcessingInputs"]
    assert all("/runs/drifted/" in i["S3Input"]["S3Uri"] for i in inputs if i["InputName"] in ("test", "train"))
    assert drifted["package"] is None


# --- prod, end to end ------------------------------------------------------------------------------


def test_prod_runs_end_to_end_with_tuning_bias_and_explainability(runs):
    prod = runs["prod"]
    assert prod["status"] == "Succeeded", prod["failure"]
    assert [name for name, status in _statuses(prod) if status == "Succeeded"] == [
        "Preprocess",
        "Tune",
        "Evaluate",
        "QualityGate",
        "Register-RegisterModel",
    ]
    # The platform engine's baselines come from the steps' own scripts: no step of prod needs a stand-in.
    assert not any(note.startswith("stand-in") for _, _, _, note in prod["steps"])
    metrics, objects = prod["package"]["ModelMetrics"], prod["objects"]
    bias = objects[metrics["Bias"]["PostTrainingReport"]["S3Uri"]]
    assert bias["facet"] == "amount" and {"CI", "DPL"} <= set(bias["metrics"])
    shap = objects[metrics["Explainability"]["Report"]["S3Uri"]]
    assert set(shap["explanations"]["kernel_shap"]["label0"]["global_shap_values"]) == {"amount"}


def test_tuning_passes_tuned_values_and_registers_the_best_job(runs):
    prod = runs["prod"]
    tune = prod["properties"]["Tune"]
    best = tune["BestTrainingJob"]
    assert best == tune["TrainingJobSummaries"][0]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "validation:auc"
    url = prod["package"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert url.endswith(f"/models/{best['TrainingJobName']}/output/model.tar.gz")
    used = prod["archive"]["model.json"]["metadata"]["hyperparameters"]
    # The tuned values reached the script as SageMaker passes them (plain strings), the static ones too.
    assert used["learning_rate"] == pytest.approx(float(best["TunedHyperParameters"]["learning-rate"]))
    assert used["l2"] == pytest.approx(float(best["TunedHyperParameters"]["l2"]))
    assert used["epochs"] == 50


def test_tuning_ranks_its_jobs_by_the_objective_and_spreads_its_candidates():
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


def test_prod_registers_its_cuda_image_for_gpu_types_only(runs):
    spec = runs["prod"]["package"]["InferenceSpecification"]
    assert spec["Containers"][0]["Image"].endswith("/pytorch-inference:2.6.0-gpu-py312")
    assert spec["SupportedRealtimeInferenceInstanceTypes"] == ["ml.g5.xlarge", "ml.g6.xlarge"]
    assert "SupportedTransformInstanceTypes" not in spec


# --- the defect and bad input: one line naming step, argument and path ----------------------------


def test_reverting_the_submit_directory_fix_fails_the_train_step_in_one_line(runs):
    assert runs["broken"]["reverted-fix"] == (
        f"step Train, HyperParameters.sagemaker_submit_directory: {DEFECT}: no such file in the container "
        f"(/opt/ml/input/data/code holds {runs['code_key']}); the training toolkit exited 2"
    )


ARTIFACTS = "s3://mlp-dev-training-artifacts"


BROKEN = [
    (
        "reads-a-path-no-one-writes",
        f"step Evaluate, ProcessingInputs[test].S3Input.S3Uri: {ARTIFACTS}/pipelines/mlp-dev-training/runs/"
        "emulated/tests: no object there: no earlier step writes this path",
    ),
    (
        "entry-not-in-the-container",
        "step Evaluate, AppSpecification.ContainerEntrypoint[1]: /opt/ml/processing/input/code/evaluate.py: "
        "no such file in the container (/opt/ml/processing/input/code holds {EvaluateKey})",
    ),
    (
        "unknown-property",
        "step Register-RegisterModel, InferenceSpecification.Containers[0].ModelDataUrl: "
        "Steps.Train.ModelArtifacts.S3ModelArtifact: step Train produces no such property",
    ),
    (
        "registered-object-missing",
        f"step Register-RegisterModel, ModelMetrics.ModelQuality.Statistics.S3Uri: {ARTIFACTS}/nothing.json: "
        "no such object: the package would point at nothing",
    ),
    (
        "unknown-step",
        "step Evaluate, Arguments: Steps.Training: references a step the pipeline does not have",
    ),
]


@pytest.mark.parametrize(("case", "message"), BROKEN, ids=[case for case, _ in BROKEN])
def test_bad_definitions_fail_in_one_line_naming_step_argument_and_path(runs, case, message):
    keys = {name: key for name, (key, _) in workload.assets().items()}
    assert runs["broken"][case] == message.format(**keys)


# --- a config serving on Inferentia2: the compile stand-in -------------------------------------------


def test_the_neuron_compile_stand_in_packs_what_gets_registered(runs):
    neuron = runs["neuron"]
    assert ("CompileForInferentia", "Processing", "Succeeded", "stand-in: Neuron compiler") in neuron["steps"]
    assert neuron["archive"]["names"] == ["code/inference.py", "model.pt"]
    container = neuron["package"]["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == neuron["compiled"]
    assert "/pytorch-inference-neuronx:" in container["Image"]
    assert neuron["package"]["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"] == ["ml.inf2.xlarge"]
