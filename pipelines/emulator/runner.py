"""Runs a pipeline definition step by step as SageMaker Pipelines would, against the emulated world."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.emulator import graph, processing, registry, training, tuning
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.expressions import Resolver, Scope, condition
from pipelines.emulator.world import World


@dataclass(frozen=True)
class StepRun:
    """One step of an emulated execution, for the report."""

    name: str
    kind: str
    status: str  # Succeeded, Failed, Skipped (branch not taken) or Reused (selective execution)
    seconds: float = 0.0
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Execution:
    """The outcome: each step's run, properties and logs; a Fail step's message if one was reached."""

    pipeline: str
    execution_id: str
    status: str = "Executing"
    steps: list[StepRun] = field(default_factory=list)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    property_files: dict[tuple[str, str], str] = field(default_factory=dict)
    outcomes: dict[str, bool] = field(default_factory=dict)  # condition step -> its value
    logs: dict[str, str] = field(default_factory=dict)
    failure: str | None = None

    def step(self, name: str) -> StepRun:
        return next(run for run in self.steps if run.name == name)

    @property
    def model_package_arn(self) -> str | None:
        return next((p["ModelPackageArn"] for p in self.properties.values() if "ModelPackageArn" in p), None)


@dataclass(frozen=True)
class Selection:
    """Selective execution: run only `steps`, the others' properties come from the `source` execution."""

    steps: frozenset[str]
    source: Execution


def emulate(
    definition: dict[str, Any],
    world: World,
    *,
    pipeline: str,
    execution_id: str = "emulated",
    parameters: dict[str, Any] | None = None,
    selection: Selection | None = None,
    on_step: Callable[[StepRun], None] | None = None,
) -> Execution:
    """Run `definition` (its placeholders already substituted); EmulationError for what SageMaker would fail on."""
    execution = Execution(pipeline, execution_id)
    scope = Scope(
        parameters=_parameters(definition, parameters or {}),
        execution={
            "PipelineExecutionId": execution_id,
            "PipelineExecutionArn": world.arn("pipeline", f"{pipeline}/execution/{execution_id}"),
            "PipelineName": pipeline,
            "PipelineExperimentName": pipeline,
            "StartDateTime": "1970-01-01T00:00:00Z",
            "CurrentDateTime": "1970-01-01T00:00:00Z",
        },
        read_json=world.store.read_json,
        steps=execution.properties,
        property_files=execution.property_files,
    )
    for node in graph.nodes(definition):
        run = _run_node(node, scope, execution, world, selection)
        execution.steps.append(run)
        if on_step is not None:
            on_step(run)
        if run.status == "Failed":
            execution.status = "Failed"
            return execution
    execution.status = "Succeeded"
    return execution


def _parameters(definition: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise EmulationError(
            "(pipeline)", "Parameters", unknown[0], f"not a parameter of the pipeline ({', '.join(declared)})"
        )
    values = {}
    for name, spec in declared.items():
        if name not in overrides and "DefaultValue" not in spec:
            raise EmulationError("(pipeline)", f"Parameters[{name}]", name, "no default and no value given")
        values[name] = overrides.get(name, spec.get("DefaultValue"))
    return values


def _skipped(node: graph.Node, execution: Execution) -> str | None:
    if node.branch is not None:
        condition_step, wanted = node.branch
        if execution.outcomes.get(condition_step) is not wanted:
            return f"{condition_step} took the other branch"
    ran = {run.name for run in execution.steps if run.status in ("Succeeded", "Reused")}
    waiting = sorted(node.depends - ran)
    return f"depends on {', '.join(waiting)}, which did not run" if waiting else None


def _run_node(
    node: graph.Node, scope: Scope, execution: Execution, world: World, selection: Selection | None
) -> StepRun:
    reason = _skipped(node, execution)
    if reason is not None:
        return StepRun(node.name, node.kind, "Skipped", note=reason)
    if selection is not None and node.name not in selection.steps:
        return _reuse(node, execution, selection.source)
    started = time.monotonic()
    resolver = Resolver(scope, node.name)
    if node.kind == "Condition":
        conditions = node.step["Arguments"]["Conditions"]
        outcome = all(condition(resolver, c, f"Conditions[{i}]") for i, c in enumerate(conditions))
        execution.outcomes[node.name] = outcome
        execution.properties[node.name] = {"Outcome": outcome}
        return StepRun(
            node.name,
            node.kind,
            "Succeeded",
            time.monotonic() - started,
            note=f"{'IfSteps' if outcome else 'ElseSteps'}",
        )
    if node.kind == "Fail":
        message = str(resolver.resolve(node.step["Arguments"].get("ErrorMessage", ""), "ErrorMessage"))
        execution.failure = message
        return StepRun(node.name, node.kind, "Failed", time.monotonic() - started, note=message)
    arguments = resolver.resolve(node.step["Arguments"], "")
    job = world.job_name(f"pipelines-{execution.execution_id}-{node.name}")
    inputs, outputs, note = _job(node, arguments, job, execution, world)
    return StepRun(node.name, node.kind, "Succeeded", time.monotonic() - started, tuple(inputs), tuple(outputs), note)


def _job(
    node: graph.Node, arguments: dict[str, Any], job: str, execution: Execution, world: World
) -> tuple[list[str], list[str], str]:
    """Run one job step; record its properties and log; (inputs read, outputs written, note)."""
    if node.kind == "Processing":
        done = processing.run(node.name, job, arguments, world)
        _property_files(node, done.properties, execution, world)
        execution.properties[node.name], execution.logs[node.name] = done.properties, done.log
        return done.inputs, done.outputs, f"stand-in: {done.stand_in}" if done.stand_in else ""
    if node.kind == "QualityCheck":
        done = registry.quality_check(node.step, arguments, job, world)
        execution.properties[node.name], execution.logs[node.name] = done.properties, done.log
        return done.inputs, done.outputs, f"stand-in: {done.stand_in}" if done.stand_in else ""
    if node.kind == "Training":
        trained = training.run(training.TrainingJob(node.name, job, arguments), world)
        execution.properties[node.name], execution.logs[node.name] = trained.properties, trained.log
        return trained.inputs, trained.outputs, ""
    if node.kind == "Tuning":
        tuned = tuning.run(node.name, job, arguments, world)
        execution.properties[node.name] = tuned.properties
        execution.logs[node.name] = "\n".join(j.log for j in tuned.jobs)
        best = tuned.properties["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]
        return (
            [i for j in tuned.jobs for i in j.inputs],
            [o for j in tuned.jobs for o in j.outputs],
            f"{len(tuned.jobs)} training jobs, best {best['MetricName']} {best['Value']:.4f}",
        )
    if node.kind == "RegisterModel":
        execution.properties[node.name] = registry.register(node.name, arguments, world)
        return [], [execution.properties[node.name]["ModelPackageArn"]], ""
    raise NotEmulated(node.name, "Type", node.kind, "this step type is not emulated")


def _property_files(node: graph.Node, properties: dict[str, Any], execution: Execution, world: World) -> None:
    outputs = {
        o["OutputName"]: o["S3Output"]["S3Uri"] for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])
    }
    for spec in node.step.get("PropertyFiles", []):
        if spec["OutputName"] not in outputs:
            raise EmulationError(
                node.name,
                f"PropertyFiles[{spec['PropertyFileName']}].OutputName",
                spec["OutputName"],
                "the step has no such output",
            )
        uri = f"{outputs[spec['OutputName']].rstrip('/')}/{spec['FilePath']}"
        if not world.store.exists(uri):
            where = f"PropertyFiles[{spec['PropertyFileName']}].FilePath"
            raise EmulationError(node.name, where, uri, "the job wrote no such file: a JsonGet on it fails")
        execution.property_files[(node.name, spec["PropertyFileName"])] = uri


def _reuse(node: graph.Node, execution: Execution, source: Execution) -> StepRun:
    if node.name not in source.properties:
        raise EmulationError(
            node.name,
            "SelectiveExecutionConfig",
            source.execution_id,
            "the source execution has no run of this step to reuse",
        )
    execution.properties[node.name] = source.properties[node.name]
    if node.name in source.outcomes:
        execution.outcomes[node.name] = source.outcomes[node.name]
    for key, uri in source.property_files.items():
        if key[0] == node.name:
            execution.property_files[key] = uri
    return StepRun(node.name, node.kind, "Reused", note=f"from execution {source.execution_id}")
