"""A training job as SageMaker runs it: channels and config files in /opt/ml, the training toolkit, model.tar.gz."""

from __future__ import annotations

import json
import re
import sys
import tarfile
from dataclasses import dataclass
from typing import Any

from infra.catalog import images
from pipelines.emulator import declarations
from pipelines.emulator.container import Container, Finished
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.storage import NoObjects, tar_directory
from pipelines.emulator.world import World

# The training toolkit's entry (`train` in the DLCs); SAGEMAKER_TRAINING_MODULE is left unset, so the
# toolkit runs the entry point itself, as sagemaker-pytorch-training's main does for one process.
TOOLKIT = [sys.executable, "-m", "sagemaker_training.cli.train"]
# One emulated host, named so that the toolkit's wait for every host's DNS name ends at once.
HOST = "localhost"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"


@dataclass(frozen=True)
class TrainingJob:
    """One CreateTrainingJob request (resolved), the pipeline step it belongs to, and where its arguments sit."""

    step: str
    name: str
    arguments: dict[str, Any]
    where: str = ""  # prefix of argument names in messages, e.g. "TrainingJobDefinition."


@dataclass(frozen=True)
class Trained:
    properties: dict[str, Any]  # what DescribeTrainingJob returns, as far as the pipeline reads it
    log: str
    inputs: list[str]
    outputs: list[str]


def run(job: TrainingJob, world: World) -> Trained:
    """Materialize the container, run the toolkit, upload model, output and checkpoints; the job's properties."""
    args = job.arguments
    _check_settings(job)
    container = Container(world.scratch(job.name))
    inputs = _channels(job, world, container)
    checkpoints = args.get("CheckpointConfig")
    if checkpoints:
        _restore_checkpoints(world, container, checkpoints)
    hyperparameters = {name: str(value) for name, value in (args.get("HyperParameters") or {}).items()}
    _submit_directory(job, container, hyperparameters)
    _write_config(job, container, hyperparameters)
    environment = container.environment(
        {
            **{str(k): str(v) for k, v in (args.get("Environment") or {}).items()},
            "TRAINING_JOB_NAME": job.name,
            "TRAINING_JOB_ARN": world.arn("training-job", job.name),
            "AWS_REGION": world.region,
        }
    )
    stopping = args.get("StoppingCondition") or {}
    finished = container.run(TOOLKIT, environment, int(stopping.get("MaxRuntimeInSeconds", 3600)))
    if finished.returncode != 0:
        exited = f"the training toolkit exited {finished.returncode}"
        diagnosis = _diagnosis(job, container)
        if diagnosis is not None:
            argument, path, problem = diagnosis
            raise EmulationError(job.step, argument, path, f"{problem}; {exited}")
        image = args["AlgorithmSpecification"]["TrainingImage"]
        reason = f"training job {job.name} failed ({exited}): {_failure(container, finished)}"
        raise EmulationError(job.step, f"{job.where}AlgorithmSpecification.TrainingImage", image, reason)
    program = _decoded(hyperparameters.get("sagemaker_program", '""'))
    if program:
        declarations.verify_outputs(
            job.step,
            container.host(f"/opt/ml/code/{program}"),
            [("OutputDataConfig (the model directory)", "/opt/ml/model", container.host("/opt/ml/model"))],
        )
    model_uri = f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job.name}/output/model.tar.gz"
    world.store.write(model_uri, tar_directory(container.host("/opt/ml/model")))
    outputs = [model_uri]
    data = container.host("/opt/ml/output/data")
    if data.is_dir() and any(data.iterdir()):
        outputs.append(model_uri.replace("/model.tar.gz", "/output.tar.gz"))
        world.store.write(outputs[-1], tar_directory(data))
    if checkpoints:
        outputs += world.store.collect(
            container.host(checkpoints.get("LocalPath", "/opt/ml/checkpoints")), checkpoints["S3Uri"]
        )
    properties = {
        **args,
        "TrainingJobName": job.name,
        "TrainingJobArn": world.arn("training-job", job.name),
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": model_uri},
        "FinalMetricDataList": final_metrics(args["AlgorithmSpecification"].get("MetricDefinitions", []), finished.log),
    }
    return Trained(properties, finished.log, inputs, outputs)


def _check_settings(job: TrainingJob) -> None:
    args = job.arguments
    spec, resources = args["AlgorithmSpecification"], args["ResourceConfig"]
    if spec.get("TrainingInputMode", "File") != "File":
        raise NotEmulated(
            job.step,
            f"{job.where}AlgorithmSpecification.TrainingInputMode",
            spec["TrainingInputMode"],
            "only File mode is emulated",
        )
    if resources.get("InstanceCount", 1) != 1:
        raise NotEmulated(
            job.step,
            f"{job.where}ResourceConfig.InstanceCount",
            str(resources["InstanceCount"]),
            "one instance is emulated",
        )
    problem = images.misfit(spec["TrainingImage"], resources["InstanceType"])
    if problem:
        raise EmulationError(
            job.step, f"{job.where}AlgorithmSpecification.TrainingImage", spec["TrainingImage"], problem
        )


def _channels(job: TrainingJob, world: World, container: Container) -> list[str]:
    read = []
    for channel in job.arguments.get("InputDataConfig", []):
        source = channel["DataSource"]["S3DataSource"]
        where = f"{job.where}InputDataConfig[{channel['ChannelName']}].DataSource.S3DataSource.S3Uri"
        target = container.host(f"/opt/ml/input/data/{channel['ChannelName']}")
        try:
            world.store.deliver(source["S3Uri"], source.get("S3DataType", "S3Prefix"), target)
        except NoObjects:
            raise EmulationError(
                job.step, where, source["S3Uri"], "no object there: no earlier step writes this path"
            ) from None
        except (ValueError, FileExistsError) as error:
            raise EmulationError(job.step, where, source["S3Uri"], str(error)) from None
        read.append(source["S3Uri"])
    return read


def _restore_checkpoints(world: World, container: Container, config: dict[str, Any]) -> None:
    """Managed spot training copies the checkpoint URI's objects into LocalPath before the job starts."""
    local = container.host(config.get("LocalPath", "/opt/ml/checkpoints"))
    local.mkdir(parents=True, exist_ok=True)
    prefix = config["S3Uri"].rstrip("/") + "/"
    if world.store.keys(prefix):
        world.store.deliver(prefix, "S3Prefix", local)


def _submit_directory(job: TrainingJob, container: Container, hyperparameters: dict[str, str]) -> None:
    """Map the code archive's container path to the emulated directory, as a mount makes it resolve.

    The toolkit opens sagemaker_submit_directory itself: the one hyperparameter value the emulator
    rewrites. An S3 URI in a network-isolated job is refused here: its container has no way to S3.
    """
    if SUBMIT_DIRECTORY not in hyperparameters:
        return
    path = _decoded(hyperparameters[SUBMIT_DIRECTORY])
    where = f"{job.where}HyperParameters.{SUBMIT_DIRECTORY}"
    if path.startswith("s3://") and job.arguments.get("EnableNetworkIsolation"):
        raise EmulationError(job.step, where, path, "the job is network-isolated: its container cannot read S3")
    if not path.startswith("/opt/ml/"):
        raise NotEmulated(job.step, where, path, "only a path in the container is emulated")
    hyperparameters[SUBMIT_DIRECTORY] = json.dumps(str(container.host(path)))


def _diagnosis(job: TrainingJob, container: Container) -> tuple[str, str, str] | None:
    """(argument, path, problem) when the code the toolkit looks for is not where the job says."""
    hyperparameters = job.arguments.get("HyperParameters") or {}
    path = _decoded(str(hyperparameters.get(SUBMIT_DIRECTORY, '""')))
    if not path.startswith("/opt/ml/"):
        return None
    problem = container.missing(path)
    if problem:
        return f"{job.where}HyperParameters.{SUBMIT_DIRECTORY}", path, problem
    program = _decoded(str(hyperparameters.get("sagemaker_program", '""')))
    with tarfile.open(container.host(path)) as archive:
        names = archive.getnames()
    if program and program not in names:
        return f"{job.where}HyperParameters.sagemaker_program", program, f"not in {path} (it holds {', '.join(names)})"
    return None


def _write_config(job: TrainingJob, container: Container, hyperparameters: dict[str, str]) -> None:
    """/opt/ml/input/config as SageMaker writes it: hyperparameters as given (JSON-encoded strings)."""
    args = job.arguments
    config = container.host("/opt/ml/input/config")
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    resources = args["ResourceConfig"]
    (config / "resourceconfig.json").write_text(
        json.dumps(
            {
                "current_host": HOST,
                "hosts": [HOST],
                "current_instance_type": resources["InstanceType"],
                "current_group_name": "homogeneousCluster",
                "instance_groups": [
                    {
                        "instance_group_name": "homogeneousCluster",
                        "instance_type": resources["InstanceType"],
                        "hosts": [HOST],
                    }
                ],
                "network_interface_name": "eth0",
            }
        )
    )
    channels = {
        channel["ChannelName"]: {
            **({"ContentType": channel["ContentType"]} if "ContentType" in channel else {}),
            "TrainingInputMode": args["AlgorithmSpecification"].get("TrainingInputMode", "File"),
            "S3DistributionType": channel["DataSource"]["S3DataSource"].get(
                "S3DataDistributionType", "FullyReplicated"
            ),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        for channel in args.get("InputDataConfig", [])
    }
    (config / "inputdataconfig.json").write_text(json.dumps(channels))
    container.host("/opt/ml/model").mkdir(parents=True, exist_ok=True)
    container.host("/opt/ml/output/data").mkdir(parents=True, exist_ok=True)


def final_metrics(definitions: list[dict[str, str]], log: str) -> list[dict[str, Any]]:
    """The last value each metric definition's regex finds in the log, as SageMaker scrapes CloudWatch."""
    found = []
    for definition in definitions:
        values = re.findall(definition["Regex"], log)
        if values:
            last = values[-1] if isinstance(values[-1], str) else values[-1][0]
            found.append({"MetricName": definition["Name"], "Value": float(last)})
    return found


def _decoded(value: str) -> str:
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def _failure(container: Container, finished: Finished) -> str:
    """The toolkit's failure file (SageMaker's FailureReason) if it wrote one, else the log's last line."""
    failure = container.host("/opt/ml/output/failure")
    if failure.is_file():
        lines = [line for line in failure.read_text().splitlines() if line.strip()]
        if lines:
            return lines[-1]
    return finished.last_line()
