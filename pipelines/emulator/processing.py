"""A processing job as SageMaker runs it: inputs at their LocalPath, the entrypoint, outputs uploaded at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipelines.emulator import declarations, standins
from pipelines.emulator.container import Container, interpreter
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.storage import NoObjects
from pipelines.emulator.world import World


@dataclass(frozen=True)
class Processed:
    properties: dict[str, Any]  # what DescribeProcessingJob returns, as far as the pipeline reads it
    log: str
    inputs: list[str]
    outputs: list[str]
    stand_in: str | None  # the stand-in that ran instead of the image, if any


def run(step: str, name: str, args: dict[str, Any], world: World) -> Processed:
    """Deliver the inputs, run the container's entry (or its stand-in), upload the outputs."""
    cluster = args["ProcessingResources"]["ClusterConfig"]
    image = args["AppSpecification"]["ImageUri"]
    if cluster.get("InstanceCount", 1) != 1:
        raise NotEmulated(
            step,
            "ProcessingResources.ClusterConfig.InstanceCount",
            str(cluster["InstanceCount"]),
            "one instance is emulated",
        )
    container = Container(world.scratch(name))
    inputs = _deliver(step, args, world, container)
    _write_config(name, args, container)
    stand_in = standins.for_image(image)
    log = stand_in.run(step, args, container) if stand_in is not None else _entry(step, name, args, world, container)
    collected = [
        (
            f"ProcessingOutputConfig.Outputs[{o['OutputName']}].S3Output.LocalPath",
            o["S3Output"]["LocalPath"],
            o["S3Output"]["S3Uri"],
        )
        for o in args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    ]
    if stand_in is None:
        script = container.host(args["AppSpecification"]["ContainerEntrypoint"][1])
        declarations.verify_outputs(step, script, [(where, path, container.host(path)) for where, path, _ in collected])
    outputs = []
    for _, path, uri in collected:
        if container.host(path).is_dir():
            outputs += world.store.collect(container.host(path), uri)
    properties = {
        **args,
        "ProcessingJobName": name,
        "ProcessingJobArn": world.arn("processing-job", name),
        "ProcessingJobStatus": "Completed",
    }
    return Processed(properties, log, inputs, outputs, stand_in.name if stand_in else None)


def _deliver(step: str, args: dict[str, Any], world: World, container: Container) -> list[str]:
    read = []
    for item in args.get("ProcessingInputs", []):
        s3 = item.get("S3Input")
        where = f"ProcessingInputs[{item['InputName']}].S3Input"
        if s3 is None:
            raise NotEmulated(
                step, f"ProcessingInputs[{item['InputName']}]", "DatasetDefinition", "only S3 inputs are emulated"
            )
        if s3.get("S3InputMode", "File") != "File":
            raise NotEmulated(step, f"{where}.S3InputMode", s3["S3InputMode"], "only File mode is emulated")
        try:
            world.store.deliver(s3["S3Uri"], s3.get("S3DataType", "S3Prefix"), container.host(s3["LocalPath"]))
        except NoObjects:
            raise EmulationError(
                step, f"{where}.S3Uri", s3["S3Uri"], "no object there: no earlier step writes this path"
            ) from None
        except (ValueError, FileExistsError) as error:
            raise EmulationError(step, f"{where}.S3Uri", s3["S3Uri"], str(error)) from None
        read.append(s3["S3Uri"])
    return read


def _write_config(name: str, args: dict[str, Any], container: Container) -> None:
    """/opt/ml/config as SageMaker writes it for processing containers: the job's request and its host."""
    config = container.host("/opt/ml/config")
    config.mkdir(parents=True, exist_ok=True)
    (config / "processingjobconfig.json").write_text(json.dumps({"ProcessingJobName": name, **args}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))


def _entry(step: str, name: str, args: dict[str, Any], world: World, container: Container) -> str:
    """Run ContainerEntrypoint + ContainerArguments; every path the entrypoint names must be in the container."""
    app = args["AppSpecification"]
    entrypoint = list(app.get("ContainerEntrypoint") or [])
    if not entrypoint:
        raise NotEmulated(
            step, "AppSpecification.ContainerEntrypoint", app["ImageUri"], "an image's own entrypoint is not emulated"
        )
    for i, part in enumerate(entrypoint):
        problem = container.missing(part) if part.startswith("/opt/ml/") else None
        if problem:
            raise EmulationError(step, f"AppSpecification.ContainerEntrypoint[{i}]", part, problem)
    command = [
        interpreter(entrypoint[0]),
        *(container.translate(a) for a in [*entrypoint[1:], *app.get("ContainerArguments", [])]),
    ]
    environment = container.environment(
        {**{str(k): str(v) for k, v in (args.get("Environment") or {}).items()}, "AWS_REGION": world.region}
    )
    finished = container.run(
        command, environment, int(args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 3600))
    )
    if finished.returncode != 0:
        raise EmulationError(
            step,
            "AppSpecification.ContainerEntrypoint",
            " ".join(entrypoint),
            f"processing job {name} failed (exit {finished.returncode}): {finished.last_line()}",
        )
    return finished.log
