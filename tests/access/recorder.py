"""Records every AWS call the Lambda handlers make in their moto tests, with a botocore event hook.

Each client the session creates gets a `provide-client-params` handler; a call is kept when a
frame of `lambdas/<function>/handler.py` is on the stack (the test's own set-up calls are not the
function's), with the function's `settings` as the handler saw them, so the contracts can map the
test's names (stack, group, topic ...) to the deployed function's environment.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = ROOT / "lambdas"


@dataclass
class Recorded:
    """One API call of a handler: the service's client name, the operation, its parameters."""

    function: str  # lambdas/<function>/
    service: (
        str  # the client's name, also the IAM prefix of these services (cloudwatch; its signing name is monitoring)
    )
    operation: str
    params: dict[str, Any]
    settings: dict[str, Any]
    test: str
    region: str


@dataclass
class Recording:
    calls: list[Recorded] = field(default_factory=list)
    tests: set[str] = field(default_factory=set)  # node ids of the tests that ran while recording
    installed: bool = False
    paused: bool = False  # while the harness itself runs a handler (tests/access/monitor_runs.py)


RECORDING = Recording()


def _handler_frame() -> tuple[str, dict[str, Any]] | None:
    """The innermost handler frame's function name, and the `settings` it works with."""
    frame = sys._getframe(2)
    function: str | None = None
    settings: dict[str, Any] = {}
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.name == "handler.py" and path.parent.parent == LAMBDAS:
            function = function or path.parent.name
            candidate = frame.f_locals.get("settings")
            if not settings and dataclasses.is_dataclass(candidate) and not isinstance(candidate, type):
                settings = dataclasses.asdict(candidate)
        frame = frame.f_back  # type: ignore[assignment]
    return (function, settings) if function else None


def _record(params: dict[str, Any], model: Any, region: str) -> None:
    if RECORDING.paused:
        return
    found = _handler_frame()
    if found is None:
        return
    function, settings = found
    service = model.service_model
    RECORDING.calls.append(
        Recorded(
            function=function,
            service=service.service_name,
            operation=model.name,
            params=copy.deepcopy(params),
            settings=settings,
            test=os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0],
            region=region,
        )
    )


def _attach(client: Any) -> Any:
    region = client.meta.region_name

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        _record(params, model, region)

    client.meta.events.register("provide-client-params", hook)
    return client


def install() -> None:
    """Hook every botocore client created from now on (idempotent)."""
    if RECORDING.installed:
        return
    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _attach(original(self, *args, **kwargs))

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    RECORDING.installed = True


@contextmanager
def paused() -> Iterator[None]:
    """No call is recorded inside: the harness's own runs of a handler are not its tests' calls."""
    RECORDING.paused = True
    try:
        yield
    finally:
        RECORDING.paused = False


def calls_of(function: str) -> list[Recorded]:
    return [call for call in RECORDING.calls if call.function == function]
