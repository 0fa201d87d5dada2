"""The model registry end of a pipeline: quality-check baselines and RegisterModel, checked then created (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from infra.catalog import images
from pipelines.emulator import processing
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.world import World

# What a QualityCheck step's analysis writes to its output, by property.
BASELINE_FILES = {
    "CalculatedBaselineStatistics": "statistics.json",
    "CalculatedBaselineConstraints": "constraints.json",
}


def quality_check(step: dict[str, Any], args: dict[str, Any], name: str, world: World) -> processing.Processed:
    """Run the baselining job; its properties name the files it wrote and the baselines used for drift checks."""
    if not step.get("SkipCheck", False):
        raise NotEmulated(step["Name"], "SkipCheck", "false", "checking against a supplied baseline is not emulated")
    job = processing.run(step["Name"], name, args, world)
    (output,) = args["ProcessingOutputConfig"]["Outputs"]
    base = output["S3Output"]["S3Uri"].rstrip("/")
    properties = dict(job.properties)
    for prop, file in BASELINE_FILES.items():
        uri = f"{base}/{file}"
        if world.store.exists(uri):
            properties[prop] = uri
    for kind in ("Statistics", "Constraints"):
        chosen = (
            properties.get(f"CalculatedBaseline{kind}")
            if step.get("RegisterNewBaseline")
            else step.get(f"SuppliedBaseline{kind}")
        )
        if chosen:
            properties[f"BaselineUsedForDriftCheck{kind}"] = chosen
    return processing.Processed(properties, job.log, job.inputs, job.outputs, job.stand_in)


def s3_locations(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(argument, URI) of every S3Uri and ModelDataUrl in a CreateModelPackage request."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in ("S3Uri", "ModelDataUrl") and isinstance(item, str):
                yield path, item
            else:
                yield from s3_locations(item, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from s3_locations(item, f"{where}[{i}]")


def register(step: str, args: dict[str, Any], world: World) -> dict[str, Any]:
    """Check what the package points at exists and its images fit its instance types, then create it."""
    for where, uri in s3_locations(args):
        if not world.store.exists(uri):
            raise EmulationError(step, where, uri, "no such object: the package would point at nothing")
    specification = args.get("InferenceSpecification", {})
    for where, image, instance_type in _registered_types(specification):
        problem = images.misfit(image, instance_type)
        if problem:
            raise EmulationError(step, where, instance_type, problem)
    group = args["ModelPackageGroupName"]
    if not world.sagemaker.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]:
        world.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    request = {key: value for key, value in args.items() if value not in ({}, None)}
    request["ModelMetrics"] = {key: value for key, value in args.get("ModelMetrics", {}).items() if value}
    arn = world.sagemaker.create_model_package(**request)["ModelPackageArn"]
    return {"ModelPackageArn": arn}


def _registered_types(specification: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    for field in ("SupportedRealtimeInferenceInstanceTypes", "SupportedTransformInstanceTypes"):
        for i, instance_type in enumerate(specification.get(field, [])):
            for container in specification.get("Containers", []):
                yield f"InferenceSpecification.{field}[{i}]", container["Image"], instance_type
