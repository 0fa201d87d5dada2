"""Reading one window of SageMaker data-capture files, and Model Monitor ground-truth files, chunk by chunk.

Capture files are JSON Lines as SageMaker writes them under
`<capture prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, one record per invocation:

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "1.5,3,20\\n", "encoding": "CSV"},
                     "endpointOutput": {"observedContentType": "text/csv", "mode": "OUTPUT",
                                        "data": "0.12", "encoding": "CSV"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2026-05-09T13:05:11Z"},
     "eventVersion": "0"}

Ground-truth files hold one record per labelled invocation, joined by event id (the capture's
inferenceId when the caller set one, else its eventId, as Model Monitor does):

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "..."}, "eventVersion": "0"}

A line that is not such a record is malformed: counted, skipped, and reported with its file and line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitoring import payloads
from monitoring.payloads import MalformedPayload

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

CHUNK_BYTES = 8 << 20
MAX_EXAMPLES = 10
SUFFIX = ".jsonl"
# The hour directories SageMaker writes capture files under.
HOUR_PATH = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")


class CaptureError(ValueError):
    """The window cannot be analysed at all; the message is one line naming the file."""


@dataclass
class Tally:
    """What reading found: lines, well-formed records, rows, and the malformed lines with a few examples."""

    root: Path | None = None  # files are named relative to it (the input directory: an S3 key's tail)
    files: int = 0
    lines: int = 0
    records: int = 0
    malformed: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def bad(self, path: Path, line: int, reason: str) -> None:
        self.malformed += 1
        if len(self.examples) < MAX_EXAMPLES:
            name = path.relative_to(self.root) if self.root is not None and self.root in path.parents else path
            self.examples.append({"file": str(name), "line": line, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "records": self.records,
            "malformed_lines": self.malformed,
            "malformed_examples": list(self.examples),
        }

    def check_not_all_malformed(self, what: str) -> None:
        """CaptureError when lines were read and every one was malformed."""
        if self.lines and self.malformed == self.lines:
            first = self.examples[0]
            raise CaptureError(
                f"every one of the {self.lines} lines of {self.files} {what} file(s) is malformed; "
                f"first: {first['file']} line {first['line']}: {first['reason']}"
            )


def window_files(root: Path, start: datetime | None = None, end: datetime | None = None) -> list[Path]:
    """The .jsonl files under `root` in path order; with start/end, only those of hours in [start, end).

    A file outside any yyyy/mm/dd/hh directory is kept: the window is then the whole input.
    """
    found = []
    for path in sorted(p for p in root.rglob(f"*{SUFFIX}") if p.is_file()):
        match = HOUR_PATH.search(path.relative_to(root).as_posix())
        if match and (start is not None or end is not None):
            year, month, day, hour_of_day = (int(part) for part in match.groups())
            hour = datetime(year, month, day, hour_of_day)
            if (start is not None and hour + timedelta(hours=1) <= start) or (end is not None and hour >= end):
                continue
        found.append(path)
    return found


@dataclass
class Chunk:
    """Parsed JSON values of consecutive lines of one file; `numbers` are their line numbers (1-based)."""

    path: Path
    values: list[Any]
    numbers: list[int]


def json_lines(paths: Iterable[Path], tally: Tally, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Chunks of the parsed non-blank lines of each file; lines that are not JSON are tallied as malformed."""
    for path in paths:
        tally.files += 1
        number = 0
        with path.open("rb") as handle:
            while True:
                lines = handle.readlines(chunk_bytes)
                if not lines:
                    break
                yield _parse(lines, path, number, tally)
                number += len(lines)


def _parse(lines: list[bytes], path: Path, before: int, tally: Tally) -> Chunk:
    try:
        # One parse for the whole chunk is several times faster than one per line; any problem
        # (a malformed or blank line) falls back to line by line.
        values = json.loads(b"[" + b",".join(lines) + b"]")
        if isinstance(values, list) and len(values) == len(lines):
            tally.lines += len(lines)
            return Chunk(path, values, list(range(before + 1, before + len(lines) + 1)))
    except ValueError:
        pass
    chunk = Chunk(path, [], [])
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        tally.lines += 1
        try:
            chunk.values.append(json.loads(line))
            chunk.numbers.append(before + i + 1)
        except ValueError:
            tally.bad(path, before + i + 1, "not a JSON object")
    return chunk


def event_key(record: dict[str, Any]) -> str | None:
    """The id ground truth is joined on: inferenceId when the caller set one, else eventId."""
    metadata = record.get("eventMetadata")
    if not isinstance(metadata, dict):
        return None
    key = metadata.get("inferenceId") or metadata.get("eventId")
    return key if isinstance(key, str) and key else None


def read_ground_truth(paths: Sequence[Path], tally: Tally) -> dict[str, list[float]]:
    """Labels by event id from Model Monitor ground-truth files; a later record of the same id wins."""
    found: dict[str, list[float]] = {}
    for chunk in json_lines(paths, tally):
        for record, line in zip(chunk.values, chunk.numbers):  # noqa: B905  Python 3.8
            try:
                if not isinstance(record, dict):
                    raise MalformedPayload("not a JSON object")
                key = event_key(record)
                if key is None:
                    raise MalformedPayload("eventMetadata.eventId is missing")
                text, kind = payloads.payload_text(record.get("groundTruthData"), "groundTruthData")
                found[key] = payloads.labels(text, kind)
            except MalformedPayload as problem:
                tally.bad(chunk.path, line, str(problem))
                continue
            tally.records += 1
    tally.check_not_all_malformed("ground-truth")
    return found


@dataclass
class Batch:
    """Captured rows of one chunk: CSV lines with the baseline's columns, and per row its score and label."""

    rows: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # NaN where the response gave none
    labels: list[float] = field(default_factory=list)  # NaN where no ground truth joined


@dataclass
class CaptureTally(Tally):
    """A Tally of capture files, with what the rows showed."""

    rows: int = 0
    schema_errors: int = 0
    without_scores: int = 0
    labelled_rows: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "rows": self.rows,
            "schema_errors": self.schema_errors,
            "rows_without_scores": self.without_scores,
            "labelled_rows": self.labelled_rows,
        }


class CaptureReader:
    """Reads capture files into Batches of rows that have the baseline's `features` columns."""

    def __init__(
        self, features: Sequence[str], ground_truth: Mapping[str, list[float]] | None = None, root: Path | None = None
    ) -> None:
        self.features = list(features)
        self.commas = len(self.features) - 1
        self.ground_truth = ground_truth or {}
        self.tally = CaptureTally(root=root)

    def batches(self, paths: Sequence[Path], chunk_bytes: int = CHUNK_BYTES) -> Iterator[Batch]:
        for chunk in json_lines(paths, self.tally, chunk_bytes):
            batch = Batch()
            malformed = self.tally.malformed
            for i, record in enumerate(chunk.values):
                try:
                    if not self._add_simple(record, batch):
                        self._add(record, batch)
                except MalformedPayload as problem:
                    self.tally.bad(chunk.path, chunk.numbers[i], str(problem))
            self.tally.records += len(chunk.values) - (self.tally.malformed - malformed)
            yield batch
        self.tally.check_not_all_malformed("capture")

    def _add_simple(self, record: Any, batch: Batch) -> bool:
        """Add a record of one CSV row in and one CSV score out, the common case, or return False.

        The job's hot path, once per captured invocation: anything unusual (another encoding,
        several rows, quotes, another width, a shape that raises) is left to `_add`.
        """
        try:
            capture = record["captureData"]
            request = capture["endpointInput"]
            if request["encoding"] != "CSV":
                return False
            row = request["data"].rstrip("\r\n")
            output = capture.get("endpointOutput")
        except (KeyError, TypeError, AttributeError):
            return False
        if row.count(",") != self.commas or "\n" in row or "\r" in row or '"' in row or not row:
            return False
        if output is not None and not (isinstance(output, dict) and output.get("encoding") == "CSV"):
            return False  # a JSON or base64 response: the general path reads it
        try:
            score = float(output["data"]) if output is not None else math.nan
        except (KeyError, TypeError, ValueError):
            score = math.nan
        if not math.isfinite(score):
            score = math.nan
            self.tally.without_scores += 1
        labels = self._labels(record, 1) if self.ground_truth else None
        batch.rows.append(row)
        batch.scores.append(score)
        batch.labels.append(labels[0] if labels else math.nan)
        self.tally.rows += 1
        self.tally.labelled_rows += 1 if labels else 0
        return True

    def _add(self, record: Any, batch: Batch) -> None:
        """Add a record of any supported shape, row by row; MalformedPayload when it is none."""
        try:
            capture = record["captureData"]
            request = capture["endpointInput"]
        except (KeyError, TypeError, IndexError):
            raise MalformedPayload("captureData.endpointInput is missing") from None
        text, kind = payloads.payload_text(request, "endpointInput")
        rows = payloads.csv_rows(text) if kind == payloads.CSV else payloads.json_rows(text, self.features)
        count = len(rows)
        scores = self._scores(capture.get("endpointOutput") if isinstance(capture, dict) else None, count)
        labels = self._labels(record, count) if self.ground_truth else None
        self.tally.rows += count
        if '"' not in text and all(row.count(",") == self.commas for row in rows):
            batch.rows.extend(rows)
            batch.scores.extend(scores or [math.nan] * count)
            batch.labels.extend(labels or [math.nan] * count)
            self.tally.labelled_rows += count if labels else 0
            return
        width = len(self.features)
        for i, row in enumerate(rows):
            if payloads.field_count(row) != width:
                self.tally.schema_errors += 1
                continue
            batch.rows.append(row)
            batch.scores.append(scores[i] if scores else math.nan)
            batch.labels.append(labels[i] if labels else math.nan)
            self.tally.labelled_rows += 1 if labels else 0

    def _scores(self, output: Any, rows: int) -> list[float] | None:
        """The response's score per row, or None (counted) when it gave none, or not one per row."""
        try:
            if output is None:
                raise MalformedPayload("no response captured")
            found = payloads.scores(*payloads.payload_text(output, "endpointOutput"))
        except MalformedPayload:
            found = []
        if len(found) != rows:
            self.tally.without_scores += rows
            return None
        return found

    def _labels(self, record: dict[str, Any], rows: int) -> list[float] | None:
        key = event_key(record)
        found = self.ground_truth.get(key) if key is not None else None
        return found if found is not None and len(found) == rows else None
