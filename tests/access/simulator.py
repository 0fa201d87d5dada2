"""A thin adapter to `@cloud-copilot/iam-simulate`: one Node.js process for the session, fed batches.

The simulator (AGPL-3.0) is a test-time tool installed by `make` into node_modules; it runs as a
separate process (`simulate.mjs`), so nothing of it is imported by the app or shipped with it.
Each batch is one line of JSON in and one line out, so a whole environment's contracts cost one
round trip. A decision depends only on its input and the pinned simulator, data and script, so
batches already decided are kept by the SHA-256 of all of them (in the system's temporary
directory, or $ACCESS_SIMULATION_CACHE; `off` disables it): a warm run decides only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("simulate.mjs")


def _version(package: Path) -> str:
    """What a decision depends on besides its input: the simulator, its data and this adapter's script."""
    parts = [SCRIPT.read_bytes()]
    for name in ("iam-simulate", "iam-data"):
        parts.append((package.parent / name / "package.json").read_bytes())
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


class SimulatorUnavailable(RuntimeError):
    """The pinned Node.js or the simulator package is not installed (run `make setup`)."""


class Simulator:
    """Decides IAM requests; `run` takes simulations in the package's shape and returns its verdicts."""

    def __init__(self) -> None:
        node = ROOT / "node_modules" / ".bin" / "node"
        executable = str(node) if node.exists() else shutil.which("node")
        package = ROOT / "node_modules" / "@cloud-copilot" / "iam-simulate"
        if executable is None or not package.is_dir():
            raise SimulatorUnavailable(f"needs Node.js and {package.relative_to(ROOT)}: run `make setup`")
        self._command = [executable, str(SCRIPT)]
        self._started: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.simulations = 0  # how many were decided by the simulator (not the cache)
        self._version = _version(package)
        setting = os.environ.get("ACCESS_SIMULATION_CACHE", "")
        self._cache = None if setting == "off" else Path(setting or tempfile.gettempdir()) / "access-simulations"

    def run(self, simulations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not simulations:
            return []
        unique: dict[str, int] = {}
        texts = [json.dumps(s, sort_keys=True) for s in simulations]
        for text in texts:
            unique.setdefault(text, len(unique))
        batch = "[" + ",".join(unique) + "]"
        decided = self._cached(batch)
        if decided is None:
            decided = self._decide(batch, len(unique))
            self._store(batch, decided)
        return [decided[unique[text]] for text in texts]

    @property
    def _process(self) -> subprocess.Popen[str]:
        """The Node.js process, started on the first batch no cache holds."""
        if self._started is None:
            self._started = subprocess.Popen(
                self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
            )
        return self._started

    def _decide(self, batch: str, count: int) -> list[dict[str, Any]]:
        with self._lock:
            process = self._process
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(batch + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        if not line:
            raise SimulatorUnavailable(f"the simulator process ended (exit status {process.poll()})")
        self.simulations += count
        results: list[dict[str, Any]] = json.loads(line)
        return results

    def _path(self, batch: str) -> Path | None:
        if self._cache is None:
            return None
        return self._cache / (hashlib.sha256((self._version + batch).encode()).hexdigest() + ".json")

    def _cached(self, batch: str) -> list[dict[str, Any]] | None:
        path = self._path(batch)
        if path is None or not path.exists():
            return None
        try:
            results: list[dict[str, Any]] = json.loads(path.read_text())
        except ValueError:
            return None
        return results

    def _store(self, batch: str, results: list[dict[str, Any]]) -> None:
        path = self._path(batch)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(results))
        partial.replace(path)

    def close(self) -> None:
        if self._started is not None and self._started.stdin is not None:
            self._started.stdin.close()
            self._started.wait(timeout=10)
