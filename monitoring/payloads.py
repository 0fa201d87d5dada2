"""The payloads inside SageMaker capture records: request rows as CSV lines, response scores as numbers.

A capture record holds `data` with its `encoding`: CSV or JSON when the content type was listed in
the endpoint's CaptureContentTypeHeader (plain text), BASE64 otherwise (the payload's bytes, whose
format `observedContentType` tells).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

CSV, JSON = "csv", "json"
# Keys under which JSON requests and responses commonly carry their rows and scores.
ROW_KEYS = ("instances", "inputs", "data")
SCORE_KEYS = ("predictions", "scores", "probabilities", "outputs")
SCORE_FIELDS = ("score", "probability", "prediction", "label")


class MalformedPayload(ValueError):
    """The payload cannot be read; the message says why in a few words."""


def payload_text(capture: Any, name: str) -> tuple[str, str]:
    """(text, CSV or JSON) of captureData[name]: its data decoded according to its encoding."""
    if not isinstance(capture, dict):
        raise MalformedPayload(f"{name} is not an object")
    data, encoding = capture.get("data"), capture.get("encoding")
    if not isinstance(data, str):
        raise MalformedPayload(f"{name}.data is not a string")
    if encoding == "CSV":
        return data, CSV
    if encoding == "JSON":
        return data, JSON
    if encoding != "BASE64":
        raise MalformedPayload(f"{name}.encoding is {encoding!r}, not CSV, JSON or BASE64")
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedPayload(f"{name}.data is not base64 of UTF-8 text") from None
    content_type = str(capture.get("observedContentType") or "").split(";")[0].strip().lower()
    return text, JSON if content_type.endswith("json") or content_type.endswith("jsonlines") else CSV


def csv_rows(text: str) -> list[str]:
    """The non-empty lines of a CSV payload."""
    return [line for line in text.splitlines() if line and not line.isspace()]


def field_count(row: str) -> int:
    """Number of fields of one CSV line; quoted fields may hold commas."""
    if '"' not in row:
        return row.count(",") + 1
    return len(next(csv.reader([row]), []))


def json_rows(text: str, features: Sequence[str]) -> list[str]:
    """The rows of a JSON request as CSV lines in `features` order.

    Accepted: a row (a list of values, or an object keyed by feature name), a list of rows, or an
    object holding them under one of ROW_KEYS (an instance may be {"features": [...]}). JSON Lines
    payloads hold one such value per line.
    """
    try:
        values = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        raise MalformedPayload("JSON request is not valid JSON") from None
    rows: list[list[Any]] = []
    for value in values:
        rows.extend(_rows(value, features))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
    return buffer.getvalue().splitlines()


def _rows(value: Any, features: Sequence[str]) -> list[list[Any]]:
    if isinstance(value, Mapping):
        for key in ROW_KEYS:
            if key in value:
                return _rows(value[key], features)
        if "features" in value:
            return _rows(value["features"], features)
        return [[value.get(name) for name in features]]
    if isinstance(value, list) and value and all(isinstance(v, (list, Mapping)) for v in value):
        return [row for item in value for row in _rows(item, features)]
    if isinstance(value, list):
        return [value]
    raise MalformedPayload(f"JSON request holds a {type(value).__name__}, not rows")


def scores(text: str, kind: str) -> list[float]:
    """The model's score per row of a response: one number per CSV line, or numbers in JSON."""
    if kind == CSV:
        return _csv_scores(text.strip())
    try:
        values = [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError:
        raise MalformedPayload("JSON response is not valid JSON") from None
    found: list[float] = []
    for value in values:
        found.extend(_scores(value))
    return found


def _csv_scores(text: str) -> list[float]:
    try:
        found = [float(text)] if "\n" not in text else [float(line) for line in csv_rows(text)]
    except ValueError:
        raise MalformedPayload("CSV response is not one number per line") from None
    if not all(math.isfinite(value) for value in found):
        raise MalformedPayload("CSV response holds a score that is not a finite number")
    return found


def _scores(value: Any) -> list[float]:
    if isinstance(value, Mapping):
        for key in (*SCORE_KEYS, *SCORE_FIELDS):
            if key in value:
                return _scores(value[key])
        raise MalformedPayload(f"JSON response has none of {[*SCORE_KEYS, *SCORE_FIELDS]}")
    if isinstance(value, list):
        return [score for item in value for score in _scores(item)]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedPayload(f"JSON response holds {value!r} where a score belongs")
    return [float(value)]


def labels(text: str, kind: str) -> list[float]:
    """Ground-truth labels of one record: 0/1 values, one per row of the captured request."""
    found = scores(text.replace(",", "\n"), kind) if kind == CSV else scores(text, kind)
    if any(value not in (0.0, 1.0) for value in found):
        raise MalformedPayload("ground truth holds a label other than 0 or 1")
    if not found:
        raise MalformedPayload("ground truth holds no label")
    return found
