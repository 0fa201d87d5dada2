"""Pipeline definitions as one execution runs them: their steps, run-time values and what they register.

`PipelineValues` evaluates a definition's expressions (`Get`, `Std:Join`) for an execution with the
parameters it is started with; `registered` is what the training pipeline's RegisterModel step
registers, which is what a promotion later reads from the registry (the baselines' URIs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from tests.access.resolver import Environment, Resource

EXECUTION_ID = "execution-7"


def steps_of(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from steps_of(step["Arguments"].get("IfSteps", []))
            yield from steps_of(step["Arguments"].get("ElseSteps", []))


class PipelineValues:
    """Evaluates a definition's run-time expressions as one execution would, started with `parameters`
    (the rest at their defaults)."""

    def __init__(self, definition: dict[str, Any], parameters: Mapping[str, str] | None = None) -> None:
        self.parameters = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}
        self.parameters.update(parameters or {})
        self.steps = {s["Name"]: s for s in steps_of(definition["Steps"])}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return join["On"].join(str(self(v)) for v in join["Values"])
        return {k: self(v) for k, v in value.items()}

    def get(self, path: str) -> Any:
        if path.startswith("Parameters."):
            return self(self.parameters.get(path.split(".", 1)[1]))
        if path == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        if path.startswith("Execution."):
            return path.split(".", 1)[1]
        if path.startswith("Steps."):
            return self._step_property(path)
        return None

    def _step_property(self, path: str) -> Any:
        _, name, rest = path.split(".", 2)
        arguments = self(self.steps[name]["Arguments"])
        output = re.match(r"ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri", rest)
        if output:
            outputs = arguments["ProcessingOutputConfig"]["Outputs"]
            return next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == output[1])
        if rest.endswith("S3ModelArtifacts"):
            training = arguments.get("TrainingJobDefinition", arguments)
            return f"{training['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name.lower()}-job/output/model.tar.gz"
        return None


def definition_of(pipeline: Resource) -> dict[str, Any]:
    body = pipeline.properties["PipelineDefinition"]["PipelineDefinitionBody"]
    return json.loads(body) if isinstance(body, str) else body  # type: ignore[no-any-return]


def training_pipeline(env: Environment) -> Resource | None:
    """The environment's pipeline with a RegisterModel step, found without deciding any condition (the
    Serving stack's depend on the promoted state, which is not set yet when this is asked)."""
    for stack in env.stacks.values():
        for logical_id, raw in stack.template.get("Resources", {}).items():
            if raw["Type"] == "AWS::SageMaker::Pipeline" and "RegisterModel" in json.dumps(raw):
                return Resource(env.resolver(stack.name), logical_id)
    return None


def registered(env: Environment) -> dict[str, str]:
    """What the training pipeline registers, by dotted path of DescribeModelPackage's answer
    (e.g. DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri) for the paths that hold a string."""
    pipeline = training_pipeline(env)
    if pipeline is None:
        return {}
    definition = definition_of(pipeline)
    values = PipelineValues(definition)
    (register,) = [s for s in steps_of(definition["Steps"]) if s["Type"] == "RegisterModel"]
    return dict(_paths(values(register["Arguments"])))


def _paths(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _paths(item, f"{prefix}{key}.")
    elif isinstance(value, str):
        yield prefix.rstrip("."), value
