"""Fixtures of the access contracts: the simulator process, the environments, the recorded Lambda calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.config import load_config
from tests.access import bootstrap, recorder
from tests.access.delivery import stage_environments
from tests.access.environments import Deployed, from_synthesized
from tests.access.resolver import FAKE_ACCOUNT, FAKE_REGION
from tests.access.simulator import Simulator
from tests.conftest import _LAST
from tests.helpers import model_monitor_config

# Every botocore client made from here on is watched; the handlers' calls are kept (recorder.py).
recorder.install()

ROOT = Path(__file__).resolve().parents[2]
# The moto tests whose handler calls the contracts replay, and the handlers they exercise.
RECORDED_TESTS = {
    "monitor_metrics": "tests/test_monitor_metrics.py",
    "monitor_start": "tests/test_monitor_start.py",
    "promotion": "tests/test_promotion.py",
    "retraining": "tests/test_retraining.py",
}
# The judge of what the session recorded runs after the handlers' tests, before the modules that
# collect background work (tests/conftest.py's _LAST, cfn-lint last).
JUDGE_OF_THE_SESSION = "tests.access.test_lambda_calls"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    def key(item):
        module = item.module.__name__
        if module in _LAST:
            return _LAST.index(module) + 2
        return 1 if module == JUDGE_OF_THE_SESSION else 0

    items.sort(key=key)


@pytest.fixture(scope="session")
def simulator():
    simulator = Simulator()
    yield simulator
    simulator.close()


class Environments(dict):
    """dev and prod (each with the CDK bootstrap's roles of its account) and the delivery's stages
    ("stage:<name>"), each built on first use: the delivery is synthesized only if a test asks for a stage."""

    def __init__(self, synth, tmp_path_factory) -> None:
        super().__init__()
        self._synth = synth
        self._tmp = tmp_path_factory

    def __missing__(self, name: str) -> Deployed:
        if name.startswith("stage:"):
            for stage, built in stage_environments(self._tmp).items():
                self[f"stage:{stage}"] = built
            return self[name]
        config = model_monitor_config() if name == "model_monitor" else load_config(name)
        roles = bootstrap.roles(config.account or FAKE_ACCOUNT, config.region or FAKE_REGION)
        self[name] = from_synthesized(self._synth(config), config, name=name, extra_principals=roles)
        return self[name]


@pytest.fixture(scope="session")
def environments(synth, tmp_path_factory) -> Environments:
    return Environments(synth, tmp_path_factory)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory) -> dict[str, list[recorder.Recorded]]:
    """Each handler's calls from its moto tests: this session's, or a run of those tests of its own."""
    missing = [path for handler, path in RECORDED_TESTS.items() if not recorder.calls_of(handler)]
    if missing:
        target = tmp_path_factory.mktemp("recording") / "calls.json"
        env = dict(os.environ, ACCESS_RECORDING=str(target))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.access.record_plugin", *missing]
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        recorder.RECORDING.calls += [recorder.Recorded(**c) for c in json.loads(target.read_text())]
    return {handler: recorder.calls_of(handler) for handler in RECORDED_TESTS}
