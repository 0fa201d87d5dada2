"""Reading and writing the engine's JSON documents, with one-line errors naming the file and the field."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

SCHEMA_VERSION = 1
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"


class DocumentError(ValueError):
    """A baseline or report document is missing, unreadable or not of the documented layout."""


def finite(value: float) -> float | None:
    """`value`, or None when it is NaN or infinite (JSON has no NaN)."""
    return float(value) if math.isfinite(value) else None


def write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")


def read(path: Path, kind: str) -> dict[str, Any]:
    """The JSON object in `path`, checked for its `kind` and `schema_version`."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file (the {kind} baseline is missing)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DocumentError(f"{path}: not readable JSON: {error}") from None
    if not isinstance(document, dict):
        raise DocumentError(f"{path}: a JSON object expected, got {type(document).__name__}")
    if document.get("kind") != kind:
        raise DocumentError(f"{path}: kind is {document.get('kind')!r}, expected {kind!r}")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise DocumentError(f"{path}: schema_version is {document.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    return document


class Fields:
    """Typed access to one JSON object of a document; errors name the file and the field's path."""

    def __init__(self, source: object, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise DocumentError(f"{source}: {where or 'the document'} must be an object")
        self.source, self.value, self.where = source, value, where

    def _path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def _get(self, name: str, optional: bool) -> Any:
        if name not in self.value or (optional and self.value[name] is None):
            if optional:
                return None
            raise DocumentError(f"{self.source}: {self._path(name)} is missing")
        return self.value[name]

    def _fail(self, name: str, expected: str) -> DocumentError:
        return DocumentError(f"{self.source}: {self._path(name)} is {self.value.get(name)!r}, expected {expected}")

    def text(self, name: str, choices: tuple[str, ...] = ()) -> str:
        value = self._get(name, False)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            raise self._fail(name, f"one of {list(choices)}" if choices else "a non-empty string")
        return value

    def number(self, name: str, low: float = -math.inf, high: float = math.inf) -> float:
        value = self.optional_number(name, low, high)
        if value is None:
            raise self._fail(name, "a number")
        return value

    def optional_number(self, name: str, low: float = -math.inf, high: float = math.inf) -> float | None:
        value = self._get(name, True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self._fail(name, f"a number in [{low}, {high}]")
        return float(value)

    def count(self, name: str) -> int:
        value = self._get(name, False)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._fail(name, "a whole number >= 0")
        return int(value)

    def numbers(self, name: str) -> list[float]:
        value = self._get(name, False)
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
            raise self._fail(name, "a list of numbers")
        return [float(v) for v in value]

    def counts(self, name: str) -> list[int]:
        value = self._get(name, False)
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in value):
            raise self._fail(name, "a list of whole numbers >= 0")
        return list(value)

    def texts(self, name: str) -> list[str]:
        value = self._get(name, False)
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise self._fail(name, "a list of strings")
        return list(value)

    def objects(self, name: str) -> list[Fields]:
        value = self._get(name, False)
        if not isinstance(value, list):
            raise self._fail(name, "a list of objects")
        return [Fields(self.source, item, f"{self._path(name)}[{i}]") for i, item in enumerate(value)]

    def object(self, name: str) -> Fields:
        return Fields(self.source, self._get(name, False), self._path(name))
