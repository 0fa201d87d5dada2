"""Reads a synthesized cloud assembly (`cdk.out`): the stacks, their templates and the nag report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stack:
    """One CloudFormation stack of an assembly."""

    name: str
    template: dict[str, Any]
    size: int  # bytes of the template file as CloudFormation receives it

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        return resources


@dataclass(frozen=True)
class Assembly:
    """The stacks of one synthesized app by stack name, and its validation report."""

    stacks: dict[str, Stack] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


def load(outdir: Path) -> Assembly:
    """Read every stack artifact of `outdir/manifest.json`; raise FileNotFoundError without one."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {}
    for artifact_id, artifact in manifest.get("artifacts", {}).items():  # dependency order
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact.get("properties", {})
        path = outdir / properties["templateFile"]
        text = path.read_text()
        name = properties.get("stackName", artifact_id)
        stacks[name] = Stack(name=name, template=json.loads(text), size=len(text.encode()))
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Assembly(stacks=stacks, report=report)
