"""pytest plugin for a run of the moto tests alone: records the handlers' calls into $ACCESS_RECORDING."""

from __future__ import annotations

import dataclasses
import json
import os

from tests.access import recorder


def pytest_configure(config):
    recorder.install()


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("ACCESS_RECORDING")
    if target:
        calls = [dataclasses.asdict(call) for call in recorder.RECORDING.calls]
        with open(target, "w") as handle:
            json.dump(calls, handle, default=str)
