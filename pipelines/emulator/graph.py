"""The steps of a pipeline definition as Pipelines schedules them: condition branches and data dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.emulator.errors import EmulationError
from pipelines.emulator.expressions import referenced_steps


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    step: dict[str, Any]
    branch: tuple[str, bool] | None  # (condition step, True for IfSteps) for a step inside a branch
    depends: frozenset[str]


def nodes(definition: dict[str, Any]) -> list[Node]:
    """Every step, branches included, in an order where each step follows the steps it depends on.

    A step depends on the steps whose properties it reads, the steps in its DependsOn, and the
    condition step whose branch holds it. Ties keep the definition's order.
    """
    found: list[Node] = []
    _collect(definition.get("Steps", []), None, found)
    names = [node.name for node in found]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise EmulationError(duplicates[0], "Name", duplicates[0], "two steps have this name")
    for node in found:
        unknown = sorted(node.depends - set(names))
        if unknown:
            raise EmulationError(
                node.name, "Arguments", f"Steps.{unknown[0]}", "references a step the pipeline does not have"
            )
    return _ordered(found)


def _collect(steps: list[dict[str, Any]], branch: tuple[str, bool] | None, found: list[Node]) -> None:
    for step in steps:
        arguments = step.get("Arguments", {})
        depends = referenced_steps(arguments) | set(step.get("DependsOn", []))
        if branch is not None:
            depends.add(branch[0])
        name, kind = step["Name"], step["Type"]
        if kind == "Condition":
            # The condition's own dependencies are what its conditions read, not its branches.
            depends = referenced_steps(arguments.get("Conditions", [])) | set(step.get("DependsOn", []))
            if branch is not None:
                depends.add(branch[0])
        found.append(Node(name, kind, step, branch, frozenset(depends - {name})))
        if kind == "Condition":
            _collect(arguments.get("IfSteps", []), (name, True), found)
            _collect(arguments.get("ElseSteps", []), (name, False), found)


def _ordered(found: list[Node]) -> list[Node]:
    done: set[str] = set()
    ordered: list[Node] = []
    pending = list(found)
    while pending:
        ready = next((node for node in pending if node.depends <= done), None)
        if ready is None:
            node = pending[0]
            raise EmulationError(
                node.name,
                "Arguments",
                ", ".join(sorted(node.depends - done)),
                "steps that depend on each other in a cycle",
            )
        ordered.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return ordered
