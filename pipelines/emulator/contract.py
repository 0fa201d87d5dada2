"""The processing contract: each step's inputs, outputs, paths, files and formats against its script's declarations.

Derived from the definition and from READS / WRITES / WRITTEN_WITH / COLUMNS in the step scripts
(pipelines/steps); nothing about the pipeline is restated here. Works on a stored definition
(placeholders left in place) and returns one line per problem.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pipelines.emulator import declarations, workload
from pipelines.emulator.declarations import Declared
from pipelines.emulator.errors import line
from pipelines.emulator.expressions import tokens

CODE_DIR = "/opt/ml/processing/input/code"
# A reference into another step's output, with the file path appended and the ContentType beside it.
Reference = tuple[str, tuple[str, str], str, str | None]


@dataclass(frozen=True)
class Output:
    """A step's output as others read it: the step, the directory its script writes, the script's declarations."""

    step: str
    directory: str  # under /opt/ml, without the prefix
    declared: Declared

    @property
    def files(self) -> tuple[str, ...]:
        return self.declared.writes.get(self.directory, ())


def steps(definition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for step in definition.get("Steps", []):
        yield step
        if step["Type"] == "Condition":
            yield from steps({"Steps": step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]})


def script_of(step: dict[str, Any]) -> tuple[str, Declared] | None:
    """(script file, declarations) of a processing step that runs one of the platform's step scripts."""
    entrypoint = step["Arguments"].get("AppSpecification", {}).get("ContainerEntrypoint") or []
    if len(entrypoint) != 2 or not entrypoint[1].startswith(CODE_DIR + "/${"):
        return None
    file = workload.SCRIPT_ASSETS.get(PurePosixPath(entrypoint[1]).name[2:-1])
    declared = declarations.read(workload.STEPS / file) if file else None
    return (file, declared) if file and declared else None


def check(definition: dict[str, Any]) -> list[str]:
    """Every way the definition and the scripts' declarations disagree, one line each."""
    problems: list[str] = []
    outputs: dict[tuple[str, str], Output] = {}
    for step in steps(definition):
        if step["Type"] == "Processing" and (found := script_of(step)):
            problems += _inputs(step, *found) + _outputs(step, *found)
            for output in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
                directory = str(PurePosixPath(output["S3Output"]["LocalPath"]).relative_to("/opt/ml"))
                outputs[(step["Name"], output["OutputName"])] = Output(step["Name"], directory, found[1])
    train = declarations.read(workload.STEPS / workload.TRAINING_CODE[1][0])
    for step in steps(definition):
        problems += _references(step, outputs)
        if step["Type"] in ("Training", "Tuning") and train is not None:
            problems += _channels(step, train, outputs)
        if step["Type"] == "QualityCheck":
            problems += _quality_check(step, outputs)
    return problems


def _dirs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"/opt/ml/{d}" for d in mapping)


def _inputs(step: dict[str, Any], file: str, declared: Declared) -> list[str]:
    """Each input lands where the script reads, and each directory it reads (with the step's options) is delivered."""
    given = step["Arguments"]["AppSpecification"].get("ContainerArguments", [])
    # Directories read only with an option (READ_WITH) count when the step passes it.
    reads = {d: p for d, p in declared.reads.items() if declared.read_with.get(d) in (None, *given)}
    problems, delivered = [], set()
    for item in step["Arguments"].get("ProcessingInputs", []):
        path = item["S3Input"]["LocalPath"]
        if path == CODE_DIR:
            continue
        relative = str(PurePosixPath(path).relative_to("/opt/ml"))
        delivered.add(relative)
        if relative not in reads:
            where = f"ProcessingInputs[{item['InputName']}].S3Input.LocalPath"
            problems.append(
                line(step["Name"], where, path, f"{file} reads no such directory (it reads {_dirs(reads)})")
            )
    for directory in sorted(set(reads) - delivered):
        problems.append(
            line(step["Name"], "ProcessingInputs", f"/opt/ml/{directory}", f"{file} reads it, and no input delivers it")
        )
    return problems


def _outputs(step: dict[str, Any], file: str, declared: Declared) -> list[str]:
    """Each output collects a directory the script writes; each one it writes (with its options) is collected."""
    args, problems = step["Arguments"], []
    given = args["AppSpecification"].get("ContainerArguments", [])
    collected = set()
    for output in args["ProcessingOutputConfig"]["Outputs"]:
        path = output["S3Output"]["LocalPath"]
        directory = declared.writer_of(path)
        collected.add(directory)
        if directory is None:
            where = f"ProcessingOutputConfig.Outputs[{output['OutputName']}].S3Output.LocalPath"
            problems.append(
                line(step["Name"], where, path, f"{file} writes nothing there (it writes {_dirs(declared.writes)})")
            )
    for directory in declared.writes:
        option = declared.written_with.get(directory)
        path = f"/opt/ml/{directory}"
        absent = declared.written_without.get(directory)
        if absent is not None and absent in given:
            if directory in collected:
                reason = f"{file} writes it only without {absent}, which the step passes"
                problems.append(line(step["Name"], "AppSpecification.ContainerArguments", path, reason))
            continue
        if (option is None or option in given) and directory not in collected:
            reason = f"{file} writes it{f' with {option}' if option else ''}, and no output collects it"
            problems.append(line(step["Name"], "ProcessingOutputConfig.Outputs", path, reason))
        if option is not None and option not in given and directory in collected:
            reason = f"{file} writes it only with {option}, which the step does not pass"
            problems.append(line(step["Name"], "AppSpecification.ContainerArguments", path, reason))
    return problems


def _output_reference(value: Any) -> tuple[str, str] | None:
    """(step, output name) of `{"Get": "Steps.S.ProcessingOutputConfig.Outputs['o'].S3Output.S3Uri"}`."""
    if not (isinstance(value, dict) and isinstance(value.get("Get"), str) and value["Get"].startswith("Steps.")):
        return None
    parts = tokens(value["Get"])
    if parts[2:4] != ["ProcessingOutputConfig", "Outputs"] or not str(parts[4]).startswith("'"):
        return None
    return str(parts[1]), str(parts[4])[1:]


def _joins(value: Any, where: str, content_type: str | None = None) -> Iterator[Reference]:
    """Every Join that appends a path to a step's output URI: (argument, (step, output), path, ContentType)."""
    if isinstance(value, dict):
        join = value.get("Std:Join")
        if isinstance(join, dict) and join.get("Values") and (reference := _output_reference(join["Values"][0])):
            yield where, reference, join["On"].join(str(v) for v in join["Values"][1:]), content_type
            return
        for key, item in value.items():
            yield from _joins(item, f"{where}.{key}" if where else key, value.get("ContentType"))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _joins(item, f"{where}[{i}]")


def _references(step: dict[str, Any], outputs: dict[tuple[str, str], Output]) -> list[str]:
    """Files named under another step's output are files its script declares writing there, in the format named."""
    args = step["Arguments"]
    # A condition's branches are steps of their own: only its conditions are its arguments here.
    scanned = {"Conditions": args.get("Conditions", [])} if step["Type"] == "Condition" else args
    references = list(_joins(scanned, ""))
    for spec in step.get("PropertyFiles", []):
        where = f"PropertyFiles[{spec['PropertyFileName']}].FilePath"
        references.append((where, (step["Name"], spec["OutputName"]), spec["FilePath"], "application/json"))
    problems = []
    for where, key, relative, content_type in references:
        output = outputs.get(key)
        if output is None:
            continue
        path = f"/opt/ml/{output.directory}/{relative}"
        if not output.declared.names_file(output.directory, relative):
            reason = f"step {output.step} writes no such file there (it writes {', '.join(output.files)})"
            problems.append(line(step["Name"], where, path, reason))
        elif content_type == "application/json" and not relative.endswith(".json"):
            problems.append(line(step["Name"], where, path, "ContentType says application/json, the file is not .json"))
    return problems


def _channels(step: dict[str, Any], train: Declared, outputs: dict[tuple[str, str], Output]) -> list[str]:
    """Training channels: each one the script reads, each one it reads given, CSV where the channel says text/csv."""
    args = step["Arguments"].get("TrainingJobDefinition", step["Arguments"])
    problems = []
    channels = {c["ChannelName"]: c for c in args.get("InputDataConfig", []) if c["ChannelName"] != "code"}
    reads = {d.removeprefix("input/data/") for d in train.reads if d.startswith("input/data/")}
    for name in sorted(set(channels) - reads):
        path = f"/opt/ml/input/data/{name}"
        problems.append(line(step["Name"], f"InputDataConfig[{name}]", path, "train.py reads no such channel"))
    for name in sorted(reads - set(channels)):
        path = f"/opt/ml/input/data/{name}"
        problems.append(line(step["Name"], "InputDataConfig", path, "train.py reads it, and no channel delivers it"))
    for name, channel in channels.items():
        output = outputs.get(_output_reference(channel["DataSource"]["S3DataSource"]["S3Uri"]) or ("", ""))
        if output and channel.get("ContentType") == "text/csv" and not any(f.endswith(".csv") for f in output.files):
            reason = f"step {output.step} writes no CSV file to /opt/ml/{output.directory}"
            problems.append(line(step["Name"], f"InputDataConfig[{name}].ContentType", "text/csv", reason))
    return problems


def _quality_check(step: dict[str, Any], outputs: dict[tuple[str, str], Output]) -> list[str]:
    """The baseline dataset is CSV as its dataset_format says, and holds the columns model quality names."""
    args = step["Arguments"]
    (item,) = args["ProcessingInputs"]
    output = outputs.get(_output_reference(item["S3Input"]["S3Uri"]) or ("", ""))
    if output is None:
        return []
    env = args.get("Environment", {})
    files = [f for f in output.files if f.endswith(".csv")]
    if '"csv"' in env.get("dataset_format", "") and not files:
        reason = f"step {output.step} writes no CSV file there"
        return [line(step["Name"], f"ProcessingInputs[{item['InputName']}]", f"/opt/ml/{output.directory}", reason)]
    columns = {c for f in files for c in output.declared.columns.get(f"{output.directory}/{f}", ())}
    problems = []
    for attribute in ("ground_truth_attribute", "inference_attribute", "probability_attribute"):
        if attribute in env and env[attribute] not in columns:
            declared = ", ".join(sorted(columns)) or "none"
            reason = f"not a column step {output.step} declares in /opt/ml/{output.directory} ({declared})"
            problems.append(line(step["Name"], f"Environment.{attribute}", env[attribute], reason))
    return problems
