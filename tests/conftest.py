"""Shared fixtures: an offline environment, and each distinct config synthesized once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import checkov_job
from tests import templates as lookups

# urllib3 probes IPv6 support with a socket at import time; import it before sockets are blocked.
import botocore.session  # noqa: F401  isort: skip

ROOT = Path(__file__).resolve().parent.parent

# Nothing may find credentials, a profile or the instance-metadata service: a call to AWS must
# fail at once (sockets are also refused by pytest-socket, see pyproject.toml).
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
# Stored pipeline definitions must be current: a stale one fails the suite instead of being rebuilt.
os.environ["PIPELINE_DEFINITIONS"] = "check"
# jsii must run on the pinned Node.js from node_modules, as `make` does.
_node_bin = ROOT / "node_modules" / ".bin"
if _node_bin.is_dir():
    os.environ["PATH"] = f"{_node_bin}{os.pathsep}{os.environ['PATH']}"


def cdk_context() -> dict[str, Any]:
    """The feature flags and context of cdk.json, so tests synthesize exactly what the CLI does."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    """One synthesized app: its stacks by id, their templates as dicts, and the validation report."""

    platform: Any
    outdir: Path
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    _assertions: dict[str, Any] = field(default_factory=dict)
    lint_jobs: dict[str, Any] = field(default_factory=dict)  # stack id -> Future of its cfn-lint errors

    def template(self, stack_id: str):
        """`aws_cdk.assertions.Template` of one stack, built once from the written template."""
        from aws_cdk import assertions

        if stack_id not in self._assertions:
            self._assertions[stack_id] = assertions.Template.from_json(self.templates[stack_id])
        return self._assertions[stack_id]

    # Look-ups in one stack's template (tests/templates.py).
    def resources(self, stack_id: str, resource_type: str) -> dict[str, dict[str, Any]]:
        """The stack's resources of one type, by logical id."""
        return lookups.of_type(self.templates[stack_id], resource_type)

    def one(self, stack_id: str, resource_type: str) -> dict[str, Any]:
        """The stack's one resource of a type."""
        (resource,) = self.resources(stack_id, resource_type).values()
        return resource

    def properties(self, stack_id: str, resource_type: str) -> list[dict[str, Any]]:
        """The properties of each of the stack's resources of one type."""
        return lookups.properties(self.templates[stack_id], resource_type)

    def named(self, stack_id: str, resource_type: str, key: str) -> dict[str, dict[str, Any]]:
        """The properties of the stack's resources of one type, by a name property such as AlarmName."""
        return lookups.named(self.templates[stack_id], resource_type, key)

    def role_statements(self, stack_id: str, role: str) -> list[dict[str, Any]]:
        """The inline policy statements of a role of the stack, by (the start of) its logical id."""
        return lookups.role_statements(self.templates[stack_id], role)

    def managed_policy_arns(self, stack_id: str, role: str) -> list[Any]:
        """The managed policies of a role of the stack, by the start of its logical id."""
        return lookups.managed_policy_arns(self.templates[stack_id], role)

    @property
    def report(self) -> dict[str, Any]:
        path = self.outdir / "validation-report.json"
        return json.loads(path.read_text()) if path.exists() else {"pluginReports": []}


def synthesize(config, outdir: Path) -> Synthesized:
    """Build and synthesize the platform for one config, the way app.py does."""
    import aws_cdk as cdk

    from stacks.platform import build_platform

    app = cdk.App(outdir=str(outdir), context=cdk_context(), builtin_cloud_formation_validation=False)
    platform = build_platform(app, config)
    assembly = app.synth()
    result = Synthesized(platform=platform, outdir=outdir)
    for stack in platform.stacks:
        artifact = assembly.get_stack_artifact(stack.artifact_id)
        result.templates[stack.node.id] = artifact.template
    return result


_CACHE: dict[str, Synthesized] = {}


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """`synth("dev")` / `synth("prod")` / `synth(config)`: each distinct config once per session."""
    from infra.config import PlatformConfig, load_config

    def get(env_or_config: str | PlatformConfig) -> Synthesized:
        config = load_config(env_or_config) if isinstance(env_or_config, str) else env_or_config
        key = config.model_dump_json()
        if key not in _CACHE:
            _CACHE[key] = synthesize(config, tmp_path_factory.mktemp(f"cdk-{config.environment}"))
            _lint_in_background(_CACHE[key], config.region)
            checkov_job.start(_CACHE[key].outdir, config)  # in the background too (tests/checkov_job.py)
        return _CACHE[key]

    yield get
    if _LINT["pool"] is not None:
        _LINT["pool"].shutdown(cancel_futures=True)


# cfn-lint is the slowest check; each synthesized app's templates are linted in one background
# process while the other tests run on the main core, and tests/test_cfn_lint.py (run last, see
# pytest_collection_modifyitems) collects the results.
DEFAULT_LINT_REGION = "us-east-1"
_LINT: dict[str, Any] = {"pool": None}


def _lint_in_background(synthesized: Synthesized, region: str | None) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tests import cfn_lint_job

    if _LINT["pool"] is None:
        # spawn: the parent runs jsii's Node.js process, which a fork would copy.
        _LINT["pool"] = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    for stack_id, template in synthesized.templates.items():
        job = _LINT["pool"].submit(cfn_lint_job.errors, json.dumps(template), region or DEFAULT_LINT_REGION)
        synthesized.lint_jobs[stack_id] = job


def lint_results(synthesized: Synthesized) -> dict[str, list[str]]:
    """The cfn-lint errors of each template of a synthesized app, waiting for the linter if need be."""
    return {stack_id: job.result() for stack_id, job in synthesized.lint_jobs.items()}


# mypy strict (tests/test_types.py) takes about a second with its incremental cache (.mypy_cache) and
# minutes without one: it runs in its own process from the end of collection, and its test, run near
# the end, collects the result.
_MYPY: dict[str, subprocess.Popen[str]] = {}


def start_mypy() -> subprocess.Popen[str]:
    """mypy over the files pyproject.toml configures, started once per session."""
    if "process" not in _MYPY:
        _MYPY["process"] = subprocess.Popen(
            [sys.executable, "-m", "mypy"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    return _MYPY["process"]


# The modules whose tests collect what works in the background run last, in this order.
_LAST = ("tests.test_types", "tests.test_cfn_lint", "tests.test_checkov")


def _run_order(item) -> int:
    module = item.module.__name__
    return _LAST.index(module) + 1 if module in _LAST else 0


def pytest_collection_modifyitems(config, items):
    items.sort(key=_run_order)
    if any(item.module.__name__ == "tests.test_types" for item in items):
        start_mypy()


@pytest.fixture(scope="session")
def dev(synth) -> Synthesized:
    return synth("dev")


@pytest.fixture(scope="session")
def prod(synth) -> Synthesized:
    return synth("prod")


@pytest.fixture(scope="session")
def prod_model_monitor(synth) -> Synthesized:
    """prod on the model_monitor engine (tests/helpers.py model_monitor_config)."""
    from tests.helpers import model_monitor_config

    return synth(model_monitor_config())


# The session leaves large object graphs behind (synthesized apps, moto's backends, the SDK, jsii's
# kernel); freeing them at interpreter exit takes 3-5 s after the results are out. The last hook
# of the session flushes the output and leaves with pytest's exit status instead (jsii's Node.js
# process ends when its input closes; the linter's pool is shut down by the synth fixture).
_EXIT: dict[str, int] = {}


def pytest_sessionfinish(session, exitstatus):
    _EXIT["status"] = int(exitstatus)
    if "process" in _MYPY and _MYPY["process"].poll() is None:  # a session stopped before its test
        _MYPY["process"].kill()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "status" in _EXIT and not os.environ.get("PYTEST_NORMAL_EXIT"):
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT["status"])
