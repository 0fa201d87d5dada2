"""A step script's container contract (READS, WRITES, READ_WITH, WRITTEN_WITH[OUT], COLUMNS), read from its source."""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

NAMES = ("READS", "WRITES", "READ_WITH", "WRITTEN_WITH", "WRITTEN_WITHOUT", "COLUMNS")


@dataclass(frozen=True)
class Declared:
    """Directories under /opt/ml (no prefix) -> file patterns; options enabling inputs and outputs; CSV headers."""

    reads: dict[str, tuple[str, ...]]
    writes: dict[str, tuple[str, ...]]
    written_with: dict[str, str] = field(default_factory=dict)
    written_without: dict[str, str] = field(default_factory=dict)  # written only when the option is absent
    read_with: dict[str, str] = field(default_factory=dict)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def writer_of(self, container_path: str) -> str | None:
        """The declared output directory `container_path` (/opt/ml/...) names, if any."""
        relative = str(PurePosixPath(container_path).relative_to("/opt/ml"))
        return relative if relative in self.writes else None

    def names_file(self, directory: str, relative: str) -> bool:
        """Whether `relative` (a file, or a folder holding files) is among what the step writes to `directory`."""
        patterns = self.writes.get(directory, ())
        return any(fnmatch.fnmatch(relative, p) or p.startswith(relative.rstrip("/") + "/") for p in patterns)


def read(script: Path) -> Declared | None:
    """The declarations of `script`, evaluated from its module-level assignments of literals; None without READS."""
    known: dict[str, Any] = {}
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                known[node.targets[0].id] = _value(node.value, known)
            except ValueError:
                continue
    if "READS" not in known or "WRITES" not in known:
        return None
    return Declared(
        reads={str(k): tuple(v) for k, v in known["READS"].items()},
        writes={str(k): tuple(v) for k, v in known["WRITES"].items()},
        written_with=dict(known.get("WRITTEN_WITH", {})),
        written_without=dict(known.get("WRITTEN_WITHOUT", {})),
        read_with=dict(known.get("READ_WITH", {})),
        columns={str(k): tuple(v) for k, v in known.get("COLUMNS", {}).items()},
    )


def _value(node: ast.expr, known: dict[str, Any]) -> Any:
    """Literals, names of earlier literal constants, and `+` on them."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in known:
        return known[node.id]
    if isinstance(node, ast.Tuple | ast.List):
        return tuple(_value(item, known) for item in node.elts)
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {
            _value(k, known): _value(v, known) for k, v in zip(node.keys, node.values, strict=True) if k is not None
        }
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _value(node.left, known) + _value(node.right, known)
    raise ValueError(ast.dump(node))


def undeclared(declared: Declared, directory: str, written: list[str]) -> tuple[list[str], list[str]]:
    """(files written but not declared, declared files not written) for one output directory."""
    patterns = declared.writes.get(directory, ())
    extra = [name for name in written if not any(fnmatch.fnmatch(name, p) for p in patterns)]
    absent = [p for p in patterns if not any(fnmatch.fnmatch(name, p) for name in written)]
    return extra, absent


def verify_outputs(step: str, script: Path, outputs: list[tuple[str, str, Path]]) -> None:
    """What the script wrote to each collected directory is what it declares: (argument, container path, host dir).

    Raises EmulationError naming the step, the output argument and the path; a script without
    declarations is not checked.
    """
    from pipelines.emulator.errors import EmulationError

    declared = read(script)
    if declared is None:
        return
    for argument, path, host in outputs:
        directory = declared.writer_of(path)
        if directory is None:
            raise EmulationError(
                step, argument, path, f"{script.name} declares no output there (it writes {', '.join(declared.writes)})"
            )
        written = (
            sorted(p.relative_to(host).as_posix() for p in host.rglob("*") if p.is_file()) if host.is_dir() else []
        )
        extra, absent = undeclared(declared, directory, written)
        if extra:
            raise EmulationError(
                step, argument, f"{path}/{extra[0]}", f"written by {script.name}, which does not declare it"
            )
        if absent:
            raise EmulationError(step, argument, f"{path}/{absent[0]}", f"declared by {script.name} but not written")
