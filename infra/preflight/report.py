"""The preflight report: one row per check (needed, found, status, fix), a table, and the exit code."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    BLOCKER = "BLOCKER"
    UNCHECKED = "not checked"


@dataclass(frozen=True)
class Row:
    """One finding: what was checked, what the environment needs, what the account has, and the fix."""

    check: str
    needed: str
    found: str
    status: Status
    fix: str = ""


@dataclass(frozen=True)
class Section:
    """The rows of one target: an environment, a delivery stage or the delivery's tooling account."""

    title: str
    rows: tuple[Row, ...]


# Exit codes: 0 nothing blocks (warnings and unchecked rows may remain), 1 a blocker, 2 unusable
# input (config, arguments) before any check ran.
EXIT_OK, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2
HEADERS = ("status", "check", "needed", "found", "fix")
# Columns are padded to their longest cell up to this width; a longer cell pushes its line's rest right.
MAX_WIDTH = 44


def exit_code(sections: Iterable[Section], *, strict: bool = False) -> int:
    """1 on a blocker; with `strict`, also when a check could not be made."""
    statuses = {row.status for section in sections for row in section.rows}
    failing = {Status.BLOCKER, Status.UNCHECKED} if strict else {Status.BLOCKER}
    return EXIT_BLOCKED if statuses & failing else EXIT_OK


def render(sections: Sequence[Section]) -> str:
    """Each section as an aligned text table, then a summary line."""
    out: list[str] = []
    for section in sections:
        out += [section.title, *_table(section.rows), ""]
    out.append(summary(sections))
    return "\n".join(out)


def _table(rows: Sequence[Row]) -> list[str]:
    cells = [HEADERS, *((r.status.value, r.check, r.needed, r.found, r.fix or "-") for r in rows)]
    # The fix column is last and left ragged: commands are copied whole, never wrapped.
    widths = [min(max(len(line[i]) for line in cells), MAX_WIDTH) for i in range(len(HEADERS) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(line, widths, strict=False)), line[-1]]).rstrip() for line in cells]


def summary(sections: Iterable[Section]) -> str:
    rows = [row for section in sections for row in section.rows]
    counts = {status: sum(row.status == status for row in rows) for status in Status}
    parts = [f"{counts[s]} {s.value}" for s in (Status.BLOCKER, Status.WARN, Status.UNCHECKED, Status.OK)]
    verdict = "deploy would fail: fix the BLOCKER rows first" if counts[Status.BLOCKER] else "nothing blocks a deploy"
    if counts[Status.UNCHECKED] and not counts[Status.BLOCKER]:
        verdict += " that preflight could see (some checks were not made)"
    return f"preflight: {', '.join(parts)}: {verdict}"
