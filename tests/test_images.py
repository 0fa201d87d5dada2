"""Registered and job images fit the hardware they run on: per stored definition, per image tag, per config."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from infra.catalog import images
from infra.catalog.instances import Runtime
from infra.config import ConfigError, parse_config
from pipelines import definition as builder
from tests.helpers import dev_data

STORED = sorted(builder.CACHE_DIR.rglob("*.json"))


def _steps(steps: list[dict]) -> list[dict]:
    found = []
    for step in steps:
        found.append(step)
        if step["Type"] == "Condition":
            found += _steps(step["Arguments"]["IfSteps"]) + _steps(step["Arguments"]["ElseSteps"])
    return found


def _placed(step: dict) -> list[tuple[str, str, str]]:
    """(argument, image, instance type) of every image a step runs or registers, with its instance types."""
    args = step["Arguments"]
    if step["Type"] == "RegisterModel":
        spec = args["InferenceSpecification"]
        types = spec.get("SupportedRealtimeInferenceInstanceTypes", []) + spec.get(
            "SupportedTransformInstanceTypes", []
        )
        return [("InferenceSpecification", c["Image"], t) for c in spec["Containers"] for t in types]
    if step["Type"] == "Training":
        return [
            ("TrainingImage", args["AlgorithmSpecification"]["TrainingImage"], args["ResourceConfig"]["InstanceType"])
        ]
    if step["Type"] == "Tuning":
        job = args["TrainingJobDefinition"]
        resources = job.get("ResourceConfig") or job["HyperParameterTuningResourceConfig"]
        return [("TrainingImage", job["AlgorithmSpecification"]["TrainingImage"], resources["InstanceType"])]
    if step["Type"] in ("Processing", "QualityCheck"):
        cluster = args["ProcessingResources"]["ClusterConfig"]
        return [("ImageUri", args["AppSpecification"]["ImageUri"], cluster["InstanceType"])]
    return []


@pytest.mark.parametrize("path", STORED, ids=[str(p.relative_to(builder.CACHE_DIR)) for p in STORED])
def test_every_image_of_every_stored_definition_fits_its_instance_types(path: Path):
    steps = _steps(json.loads(path.read_text())["definition"]["Steps"])
    placed = [(s["Name"], *p) for s in steps for p in _placed(s)]
    assert any(where == "InferenceSpecification" for _, where, _, _ in placed)
    misfits = [
        f"{name} {where}: {images.misfit(image, kind)}"
        for name, where, image, kind in placed
        if images.misfit(image, kind)
    ]
    assert misfits == []


@pytest.mark.parametrize(
    ("image", "runtime"),
    [
        ("1.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312", Runtime.CPU),
        ("1.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312", Runtime.CUDA),
        (
            "${PyTorchRegistry}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/pytorch-training:2.6.0-gpu-py312-cu124-ubuntu22.04",
            Runtime.CUDA,
        ),
        (f"x/{builder.NEURON_INFERENCE_IMAGE}", Runtime.NEURON),
        (f"x/{builder.NEURON_TRAINING_IMAGE}", Runtime.NEURON),
        ("x/sagemaker-scikit-learn:1.2-1-cpu-py3", Runtime.CPU),
        ("x/sagemaker-model-monitor-analyzer", Runtime.CPU),
        ("x/sagemaker-clarify-processing:1.0", Runtime.CPU),
        ("x/my-own-image:latest", None),
    ],
)
def test_an_image_tag_says_which_hardware_it_is_built_for(image, runtime):
    assert images.image_runtime(image) == runtime


def test_a_misfit_names_the_type_the_runtime_it_needs_and_the_image():
    gpu = "1.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312"
    assert images.misfit(gpu, "ml.g5.xlarge") is None
    assert (
        images.misfit(gpu, "ml.m5.xlarge")
        == "ml.m5.xlarge needs a cpu image; pytorch-inference:2.6.0-gpu-py312 is built for cuda"
    )
    assert "names no processor" in images.misfit("x/mine:1", "ml.m5.xlarge")


@pytest.mark.parametrize(
    ("types", "message"),
    [
        (
            ["ml.g5.xlarge", "ml.m5.xlarge"],
            "training.inference_instance_types[1] = 'ml.m5.xlarge': allowed: a cuda type like ml.g5.xlarge: the model "
            "package registers one image, built for ml.g5.xlarge, and ml.m5.xlarge needs a cpu image",
        ),
        (
            ["ml.m5.large", "ml.g4dn.xlarge"],
            "training.inference_instance_types[1] = 'ml.g4dn.xlarge': allowed: a cpu type like ml.m5.large: the model "
            "package registers one image, built for ml.m5.large, and ml.g4dn.xlarge needs a cuda image",
        ),
    ],
)
def test_a_config_registering_one_image_for_mixed_hardware_is_refused_in_one_line(types, message):
    data = copy.deepcopy(dev_data())
    data.update(serving=None, monitoring=None, retraining=None)
    data["training"]["inference_instance_types"] = types
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "t.yaml")
    assert caught.value.problems == [f"t.yaml: {message}"]


def test_configs_of_one_hardware_kind_pass():
    data = copy.deepcopy(dev_data())
    data.update(serving=None, monitoring=None, retraining=None)
    for types in (["ml.m5.large", "ml.c5.xlarge"], ["ml.g5.xlarge", "ml.g6.xlarge"], ["ml.inf2.xlarge"]):
        data["training"]["inference_instance_types"] = types
        assert parse_config(data, "t.yaml").training.inference_instance_types == types
