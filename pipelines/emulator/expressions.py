"""Pipeline expressions as SageMaker Pipelines evaluates them: Get, Std:Join, Std:JsonGet and conditions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelines.emulator.errors import EmulationError

# A step property path: `Name`, `.Name`, `[0]` or `['key']` (a list element picked by its name field).
_TOKEN = re.compile(r"\.?([A-Za-z0-9_:-]+)|\[(\d+)\]|\['([^']*)'\]")
# The field that names an element of a list property, as Pipelines indexes them with ['name'].
NAME_FIELDS = ("OutputName", "InputName", "ChannelName", "MetricName", "Name")


@dataclass
class Scope:
    """What expressions of a running execution can see."""

    parameters: dict[str, Any]
    execution: dict[str, str]
    read_json: Callable[[str], Any]  # S3 URI -> parsed JSON (property files)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)  # step name -> its properties
    property_files: dict[tuple[str, str], str] = field(default_factory=dict)  # (step, file name) -> S3 URI


def tokens(path: str) -> list[str | int]:
    """`Steps.A.Outputs['x'].S3Uri` -> ["Steps", "A", "Outputs", "'x", "S3Uri"] (quoted keys keep a quote)."""
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot parse property path {path!r} at {path[position:]!r}")
        name, index, key = match.groups()
        parts.append(name if name is not None else int(index) if index is not None else "'" + key)
        position = match.end()
    return parts


def _child(value: Any, part: str | int) -> Any:
    if isinstance(part, int):
        return value[part] if isinstance(value, list) and part < len(value) else None
    if part.startswith("'") and isinstance(value, list):
        key = part[1:]
        return next((v for v in value if isinstance(v, dict) and key in (v.get(n) for n in NAME_FIELDS)), None)
    if isinstance(value, dict):
        return value.get(part.lstrip("'"))
    return None


def referenced_steps(value: Any) -> set[str]:
    """Names of the steps whose properties `value` reads (through Get, also inside Join and JsonGet)."""
    found: set[str] = set()
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            found.add(str(tokens(get)[1]))
        for item in value.values():
            found |= referenced_steps(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_steps(item)
    return found


class Resolver:
    """Evaluates the expressions in one step's arguments; errors name the step and the argument."""

    def __init__(self, scope: Scope, step: str) -> None:
        self.scope, self.step = scope, step

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Get"}:
                return self.get(value["Get"], where)
            if set(value) == {"Std:Join"}:
                join = value["Std:Join"]
                return str(join["On"]).join(
                    _text(self.resolve(v, f"{where}.Std:Join[{i}]")) for i, v in enumerate(join["Values"])
                )
            if set(value) == {"Std:JsonGet"}:
                return self.json_get(value["Std:JsonGet"], where)
            return {k: self.resolve(v, _join(where, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{where}[{_label(v, i)}]") for i, v in enumerate(value)]
        return value

    def get(self, path: str, where: str) -> Any:
        parts = tokens(path)
        root = parts[0]
        if root == "Parameters" and len(parts) == 2:
            if parts[1] not in self.scope.parameters:
                raise EmulationError(self.step, where, path, "the pipeline declares no such parameter")
            return self.scope.parameters[str(parts[1])]
        if root == "Execution" and len(parts) == 2:
            if parts[1] not in self.scope.execution:
                raise EmulationError(self.step, where, path, "no such execution variable")
            return self.scope.execution[str(parts[1])]
        if root != "Steps" or len(parts) < 3:
            raise EmulationError(self.step, where, path, "not a Parameters, Execution or Steps reference")
        name = str(parts[1])
        if name not in self.scope.steps:
            raise EmulationError(self.step, where, path, f"no earlier step named {name} produced properties")
        value: Any = self.scope.steps[name]
        for part in parts[2:]:
            value = _child(value, part)
            if value is None:
                raise EmulationError(self.step, where, path, f"step {name} produces no such property")
        return value

    def json_get(self, spec: Mapping[str, Any], where: str) -> Any:
        """Std:JsonGet: a value of a step's property file, by a JsonPath of names and [index]es."""
        reference = spec["PropertyFile"]
        get = reference.get("Get", "") if isinstance(reference, dict) else ""
        parts = tokens(get) if get else []
        if len(parts) != 4 or parts[0] != "Steps" or parts[2] != "PropertyFiles":
            raise EmulationError(
                self.step, where, str(reference), "PropertyFile must be Steps.<step>.PropertyFiles.<name>"
            )
        key = (str(parts[1]), str(parts[3]))
        if key not in self.scope.property_files:
            raise EmulationError(self.step, where, get, f"step {key[0]} declares no property file {key[1]}")
        uri = self.scope.property_files[key]
        try:
            document = self.scope.read_json(uri)
        except (KeyError, ValueError) as error:
            raise EmulationError(self.step, where, uri, f"property file {key[1]} unreadable: {error}") from None
        value = document
        for part in tokens(str(spec["Path"])):
            value = _child(value, part)
            if value is None:
                raise EmulationError(self.step, where, f"{uri}#{spec['Path']}", "no such value in the property file")
        return value


def _text(value: Any) -> str:
    # Join renders numbers and booleans as JSON does (Pipelines is a JVM service: true, not True).
    return value if isinstance(value, str) else json.dumps(value)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _label(value: Any, index: int) -> str:
    """A list element's name in messages: its name field (ProcessingInputs[model]), else its index."""
    if isinstance(value, dict):
        for name in NAME_FIELDS:
            if isinstance(value.get(name), str):
                return str(value[name])
    return str(index)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "GreaterThan": lambda a, b: bool(a > b),
    "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
    "LessThan": lambda a, b: bool(a < b),
    "LessThanOrEqualTo": lambda a, b: bool(a <= b),
}


def condition(resolver: Resolver, spec: Mapping[str, Any], where: str) -> bool:
    """One entry of a ConditionStep's Conditions (all of them must hold)."""
    kind = spec.get("Type")
    if kind in COMPARISONS:
        left = resolver.resolve(spec["LeftValue"], f"{where}.LeftValue")
        right = resolver.resolve(spec["RightValue"], f"{where}.RightValue")
        try:
            return COMPARISONS[kind](left, right)
        except TypeError:
            raise EmulationError(
                resolver.step, where, f"{left!r} {kind} {right!r}", "values of incomparable types"
            ) from None
    if kind == "In":
        left = resolver.resolve(spec["QueryValue"], f"{where}.QueryValue")
        return left in resolver.resolve(spec["Values"], f"{where}.Values")
    if kind == "Not":
        return not condition(resolver, spec["Expression"], f"{where}.Expression")
    if kind == "Or":
        return any(condition(resolver, c, f"{where}.Conditions[{i}]") for i, c in enumerate(spec["Conditions"]))
    raise EmulationError(resolver.step, where, str(kind), "unknown condition type")
