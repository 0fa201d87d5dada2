"""A container's file system and process, emulated: /opt/ml under a directory of its own, the entry as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

OPT_ML = PurePosixPath("/opt/ml")
# The longest any emulated container may run, whatever its StoppingCondition allows: fail, never hang.
MAX_SECONDS = 600
# What the emulated process inherits from this one: the interpreter's search path and locale, no credentials.
INHERITED = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class OutsideOptMl(ValueError):
    """A container path the emulator cannot place: only /opt/ml/... is mapped."""


@dataclass(frozen=True)
class Finished:
    returncode: int
    log: str  # stdout and stderr, interleaved as CloudWatch receives them

    def last_line(self) -> str:
        lines = [line for line in self.log.splitlines() if line.strip()]
        return lines[-1] if lines else "(no output)"


class Container:
    """One job's container: `host('/opt/ml/x')` is where the emulator keeps what the job sees as /opt/ml/x.

    The toolkits and the step scripts read the base directory from SAGEMAKER_BASE_DIR (default /opt/ml),
    so the processes see the same layout SageMaker gives them, under `root`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def host(self, path: str) -> Path:
        pure = PurePosixPath(path)
        if ".." in pure.parts or (pure != OPT_ML and OPT_ML not in pure.parents):
            raise OutsideOptMl(f"{path} is not under {OPT_ML}")
        return self.root.joinpath(*pure.relative_to(OPT_ML).parts)

    def inside(self, path: Path) -> str:
        """The container's name of a host path under `root`."""
        return str(OPT_ML.joinpath(*path.relative_to(self.root).parts))

    def translate(self, value: str) -> str:
        """A path in the container as the emulated process must open it (other values unchanged)."""
        return str(self.host(value)) if value.startswith(f"{OPT_ML}/") else value

    def missing(self, path: str) -> str | None:
        """Why `path` (in the container) does not exist, naming what its directory holds; None if it does."""
        host = self.host(path)
        if host.exists():
            return None
        parent = host.parent
        while not parent.exists() and parent != self.root:
            parent = parent.parent
        present = ", ".join(sorted(p.name for p in parent.iterdir())) or "nothing"
        return f"no such file in the container ({self.inside(parent)} holds {present})"

    def environment(self, job: dict[str, str]) -> dict[str, str]:
        inherited = {name: os.environ[name] for name in INHERITED if name in os.environ}
        return {**inherited, "HOME": str(self.root), **job, "SAGEMAKER_BASE_DIR": str(self.root)}

    def run(self, command: list[str], environment: dict[str, str], seconds: int) -> Finished:
        """Run the container's entry; a run past `seconds` (or MAX_SECONDS) is killed and reported."""
        limit = min(seconds, MAX_SECONDS)
        try:
            result = subprocess.run(
                command,
                cwd=self.root,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            output = expired.stdout if isinstance(expired.stdout, str) else ""
            return Finished(-9, output + f"\nstopped after {limit} s (MaxRuntimeInSeconds or the emulator's limit)")
        return Finished(result.returncode, result.stdout)


def interpreter(program: str) -> str:
    """The Python the emulator runs for a container's `python3`: this one, with the repo's pinned packages."""
    return sys.executable if program in ("python", "python3") else program
