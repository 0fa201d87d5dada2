"""Emulated executions observed for tests/test_emulator.py, run in a background process while other tests run.

The emulator spends its time in job processes (the training toolkit, the step scripts), so the
runs overlap the rest of the suite instead of adding to it. `observe` returns plain values: step
runs, properties, the registered packages and the objects they point at, and the one-line
errors of the broken definitions in BROKEN.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tarfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pipelines import definition as builder
from pipelines.emulator import registry, workload
from pipelines.emulator.errors import EmulationError
from pipelines.emulator.runner import Execution
from pipelines.emulator.workload import Deployed

DEV = builder.CACHE_DIR / "mlp-dev-training.json"
PROD = builder.CACHE_DIR / "mlp-prod-training.json"
DEFECT = "/opt/ml/input/data/code/sourcedir.tar.gz"  # what the SDK wrote before the fix


def steps(definition: dict) -> dict[str, dict]:
    """Every step of a definition by name, the Condition's branches included."""
    found = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        if step["Type"] == "Condition":
            found.update(steps({"Steps": step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]}))
    return found


def _input(step: dict, name: str) -> dict:
    return next(i["S3Input"] for i in step["Arguments"]["ProcessingInputs"] if i["InputName"] == name)


def _revert_the_fix(s: dict) -> None:
    s["Train"]["Arguments"]["HyperParameters"]["sagemaker_submit_directory"] = json.dumps(DEFECT)


def _read_a_path_no_one_writes(s: dict) -> None:
    test = _input(s["Evaluate"], "test")
    test["S3Uri"] = {"Std:Join": {"On": "", "Values": [test["S3Uri"], "s"]}}


def _entry_not_in_the_container(s: dict) -> None:
    app = s["Evaluate"]["Arguments"]["AppSpecification"]
    app["ContainerEntrypoint"] = ["python3", "/opt/ml/processing/input/code/evaluate.py"]


def _unknown_property(s: dict) -> None:
    container = s["Register-RegisterModel"]["Arguments"]["InferenceSpecification"]["Containers"][0]
    container["ModelDataUrl"] = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifact"}


def _registered_object_missing(s: dict) -> None:
    metrics = s["Register-RegisterModel"]["Arguments"]["ModelMetrics"]
    metrics["ModelQuality"]["Statistics"]["S3Uri"] = "s3://mlp-dev-training-artifacts/nothing.json"


def _unknown_step(s: dict) -> None:
    _input(s["Evaluate"], "model")["S3Uri"] = {"Get": "Steps.Training.ModelArtifacts.S3ModelArtifacts"}


# Broken variants of the dev definition: name -> (the steps a selective execution runs, the change).
BROKEN: dict[str, tuple[set[str], Callable[[dict], None]]] = {
    "reverted-fix": ({"Train"}, _revert_the_fix),
    "reads-a-path-no-one-writes": ({"Evaluate"}, _read_a_path_no_one_writes),
    "entry-not-in-the-container": ({"Evaluate"}, _entry_not_in_the_container),
    "unknown-property": ({"Register-RegisterModel"}, _unknown_property),
    "registered-object-missing": ({"Register-RegisterModel"}, _registered_object_missing),
    "unknown-step": ({"Evaluate"}, _unknown_step),
}


def _deployed(path: Path, workdir: Path, tuning_jobs: int = 2) -> Iterator[Deployed]:
    stored = workload.Stored.load(path)
    with workload.emulated_account(workdir, stored.region, tuning_jobs) as world:
        yield workload.deploy(world, stored)


def _archive(deployed: Deployed, uri: str) -> dict[str, Any]:
    """Member names of a model.tar.gz, and its model.json if it has one."""
    with tarfile.open(fileobj=io.BytesIO(deployed.world.store.read(uri))) as archive:
        names = sorted(archive.getnames())
        member = archive.extractfile("model.json") if "model.json" in names else None
        return {"names": names, "model.json": json.loads(member.read()) if member else None}


def _execution(deployed: Deployed, execution: Execution) -> dict[str, Any]:
    """What the tests read of an execution: its steps, properties, and the package with its objects."""
    observed: dict[str, Any] = {
        "status": execution.status,
        "failure": execution.failure,
        "steps": [(s.name, s.kind, s.status, s.note) for s in execution.steps],
        "properties": execution.properties,
        "package": None,
    }
    arn = execution.model_package_arn
    if arn is not None:
        package = deployed.world.sagemaker.describe_model_package(ModelPackageName=arn)
        observed["package"] = {
            k: v
            for k, v in package.items()
            if k in ("ModelApprovalStatus", "InferenceSpecification", "ModelMetrics", "DriftCheckBaselines")
        }
        store = deployed.world.store
        locations = [uri for _, uri in registry.s3_locations(package) if uri.endswith(".json")]
        observed["objects"] = {uri: store.read_json(uri) for uri in locations}
        observed["archive"] = _archive(deployed, package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    return observed


def _training_view(deployed: Deployed, execution: Execution) -> dict[str, Any]:
    """The training job's container as the job left it, and what it uploaded."""
    properties = execution.properties["Train"]
    job = deployed.world.workdir / properties["TrainingJobName"]
    config = job / "input" / "config"
    checkpoint = f"{properties['CheckpointConfig']['S3Uri']}/checkpoint.npz"
    return {
        "config": {f.name: json.loads(f.read_text()) for f in config.glob("*.json")},
        "train_channel": sorted(p.name for p in (job / "input" / "data" / "train").iterdir()),
        "submit_directory_is_a_file": Path(
            json.loads(json.loads((config / "hyperparameters.json").read_text())["sagemaker_submit_directory"])
        ).is_file(),
        "success": (job / "output" / "success").is_file(),
        "checkpoint": checkpoint if deployed.world.store.exists(checkpoint) else None,
    }


def _broken(deployed: Deployed, first: Execution, selected: set[str], change: Callable[[dict], None]) -> str:
    definition = copy.deepcopy(deployed.definition)
    change(steps(definition))
    variant = Deployed(deployed.world, deployed.stored, definition, deployed.variables)
    try:
        variant.run_selected(selected, first, execution_id="broken")
    except EmulationError as error:
        return str(error)
    return "(no error)"


def _drifted(deployed: Deployed, first: Execution) -> Execution:
    """New data whose labels no longer follow the feature, through everything but Train (its model is reused)."""
    drifted = deployed.definition["Parameters"][2]["DefaultValue"].rstrip("/") + "-drifted/"
    deployed.upload_data(drifted, signal=False)
    selected = {s.name for s in first.steps} - {"Train"}
    return deployed.run_selected(selected, first, execution_id="drifted", parameters={"InputData": drifted})


def _neuron(deployed: Deployed, first: Execution) -> dict[str, Any]:
    """A config serving on Inferentia2: its compile step and registration, run on dev's trained model."""
    from infra.config import parse_config
    from stacks.training import pipeline_spec
    from tests.helpers import dev_data

    data = copy.deepcopy(dev_data())
    data.update(serving=None, monitoring=None, retraining=None)
    data["training"]["inference_instance_types"] = ["ml.inf2.xlarge"]
    config = parse_config(data, "neuron")
    spec = pipeline_spec(config, config.training, config.data_lake.dataset, subnets=1)
    variant = deployed.other(json.loads(builder.build(spec)))
    run = variant.run_selected({"CompileForInferentia", "Register-RegisterModel"}, first, execution_id="neuron")
    compiled = run.properties["CompileForInferentia"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    return {**_execution(deployed, run), "compiled": f"{compiled}/model.tar.gz"}


def observe(workdir: str) -> dict[str, Any]:
    """Run dev (with its serving check, drifted data, broken variants, an Inferentia2 variant) and prod."""
    root = Path(workdir)
    observed: dict[str, Any] = {}
    for deployed in _deployed(DEV, root / "dev"):
        first = deployed.run()
        observed["dev"] = {**_execution(deployed, first), "training": _training_view(deployed, first)}
        observed["dev"]["serving"] = asdict(workload.check_serving(deployed, first))
        observed["drifted"] = _execution(deployed, _drifted(deployed, first))
        observed["broken"] = {name: _broken(deployed, first, *case) for name, case in BROKEN.items()}
        observed["code_key"] = deployed.variables["TrainingCodeKey"]
        observed["neuron"] = _neuron(deployed, first)
    # One training job for prod's tuning step keeps the run short; `make dry-run` runs two.
    for deployed in _deployed(PROD, root / "prod", tuning_jobs=1):
        observed["prod"] = _execution(deployed, deployed.run())
    return observed


def _exit_with(parent: int) -> None:
    """End this process when its parent has gone (a session that collected but did not run the tests)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def in_background(connection: Connection, workdir: str, parent: int) -> None:
    """Process target: send ("ok", observations) or ("error", traceback) back."""
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    try:
        connection.send(("ok", observe(workdir)))
    except BaseException:
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()
