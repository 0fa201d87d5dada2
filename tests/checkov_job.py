"""checkov over synthesized cloud assemblies: in the background, one at a time, results kept by content.

checkov pins an older boto3 than the project's, so it runs from a virtual environment of its own
(`.venv-checkov`, which `make setup` installs from requirements-checkov.lock). A scan costs 10-25 s
of CPU per assembly, most of it checkov's start and its graph of the templates: one starts as each
scanned assembly is synthesized (tests/conftest.py, tests/delivery_app.py), a worker thread runs
them one after another while the other tests run, and tests/test_checkov.py, run last, collects
them. Each result is kept under .venv-checkov by the SHA-256 of the lock and of the templates, so
a warm run scans nothing. Scans start only in a session that collected tests/test_checkov.py
(collection imports it before any test synthesizes).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.config import PlatformConfig

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-checkov"
CHECKOV = VENV / "bin" / "checkov"
LOCK = ROOT / "requirements-checkov.lock"
CACHE = VENV / "scans"
# CloudFormation only (the assembly also holds asset code), and no download of guidelines (offline).
OPTIONS = ("--framework", "cloudformation", "--output", "json", "--compact", "--skip-download")
COLLECTOR = "tests.test_checkov"


@dataclass(frozen=True)
class Check:
    """One check of checkov on one resource: failed, or skipped with the reason next to the resource."""

    check: str  # checkov's id, such as CKV_AWS_18
    name: str
    file: str  # the template, relative to the assembly
    resource: str  # `<type>.<logical id>`
    reason: str = ""  # a skip's comment

    def __str__(self) -> str:
        return f"{self.file} {self.resource}: {self.check} {self.name}"


@dataclass(frozen=True)
class Scan:
    """checkov's verdict on one assembly."""

    failed: list[Check]
    skipped: list[Check]
    resources: int
    parsing_errors: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scan:
        return cls(
            failed=[Check(**check) for check in data["failed"]],
            skipped=[Check(**check) for check in data["skipped"]],
            resources=data["resources"],
            parsing_errors=data["parsing_errors"],
        )


def content_key(directory: Path) -> str:
    """SHA-256 of the lock (checkov's version and checks) and of every template under `directory`."""
    digest = hashlib.sha256(LOCK.read_bytes())
    for template in sorted(directory.rglob("*.template.json")):
        digest.update(str(template.relative_to(directory)).encode() + b"\0" + template.read_bytes())
    return digest.hexdigest()


def scan(directory: Path) -> Scan:
    """checkov's verdict on the templates under `directory`, kept by their content."""
    kept = CACHE / f"{content_key(directory)}.json"
    if not kept.exists():
        data = _run(directory)
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(data))
        partial.replace(kept)
    return Scan.from_json(json.loads(kept.read_text()))


def _run(directory: Path) -> dict[str, Any]:
    """One checkov process over the whole assembly (its stages' assemblies included); only what the tests read."""
    done = subprocess.run(
        [str(CHECKOV), "--directory", str(directory), *OPTIONS], capture_output=True, text=True, check=False
    )
    reports = _reports(done.stdout)
    if done.returncode not in (0, 1) or not reports:  # 1: findings
        raise RuntimeError(f"checkov failed on {directory} ({done.returncode}): {done.stderr[-2000:]}")
    return {
        "failed": [_check(c) for r in reports for c in r["results"]["failed_checks"]],
        "skipped": [_check(c) for r in reports for c in r["results"]["skipped_checks"]],
        "resources": sum(r["summary"]["resource_count"] for r in reports),
        "parsing_errors": [str(e) for r in reports for e in r["results"]["parsing_errors"]],
    }


def _reports(text: str) -> list[dict[str, Any]]:
    """checkov prints one JSON document, a report or a list of them (one per framework); read them all."""
    decoder, reports, rest = json.JSONDecoder(), [], text.strip()
    while rest:
        document, end = decoder.raw_decode(rest)
        reports += document if isinstance(document, list) else [document]
        rest = rest[end:].strip()
    return reports


def _check(result: dict[str, Any]) -> dict[str, str]:
    return {
        "check": result["check_id"],
        "name": result["check_name"],
        "file": result["file_path"],
        "resource": result["resource"],
        "reason": (result.get("check_result") or {}).get("suppress_comment") or "",
    }


@cache
def scanned_configs() -> dict[str, PlatformConfig]:
    """Every environment of config/ (the delivery files are scanned as their apps), the sandbox and prod on
    the model_monitor engine, by name."""
    from infra.config import CONFIG_DIR, load_config
    from infra.config.delivery import is_delivery_file
    from tests.helpers import model_monitor_config, sandbox_config

    shipped = sorted(path.stem for path in CONFIG_DIR.glob("*.yaml") if not is_delivery_file(path))
    return {
        **{name: load_config(name) for name in shipped},
        "sandbox": sandbox_config(),
        "model_monitor": model_monitor_config(),
    }


@cache
def _scanned_keys() -> frozenset[str]:
    """The scanned configs as the session's synth cache keys them (tests/conftest.py)."""
    return frozenset(config.model_dump_json() for config in scanned_configs().values())


_POOL: dict[str, ThreadPoolExecutor] = {}
_SCANS: dict[Path, Future[Scan]] = {}


def start(directory: Path, config: PlatformConfig | None = None) -> None:
    """Scan a synthesized assembly in the background, once per session: a delivery app's, or a scanned config's.

    Nothing starts when checkov is not installed (tests/test_checkov.py says so) or when the
    session does not run the checkov tests.
    """
    if directory in _SCANS or not CHECKOV.exists() or COLLECTOR not in sys.modules:
        return
    if config is not None and config.model_dump_json() not in _scanned_keys():
        return
    if "pool" not in _POOL:
        # One scan at a time: the main process and cfn-lint's worker share the machine's cores with it.
        _POOL["pool"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkov")
    _SCANS[directory] = _POOL["pool"].submit(scan, directory)


def result(directory: Path) -> Scan:
    """The scan of an assembly, waiting for it (and starting it, if it was not) as need be."""
    if directory not in _SCANS:
        return scan(directory)
    return _SCANS[directory].result()
