"""Every AWS call a Lambda handler makes in its moto tests is allowed to its deployed role, along its path.

The calls are recorded (tests/access/recorder.py) while each handler's moto tests run
(tests/access/conftest.py RECORDED_TESTS); here they are replayed as IAM requests in each environment's names
through the role's policies, the resource's policy and the VPC endpoint the function reaches the
service through. moto evaluates no IAM; this is what says the recorded calls would pass in AWS.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.access.calls import decide, failures
from tests.access.conftest import RECORDED_TESTS
from tests.access.environments import NAMES
from tests.access.lambda_calls import deployed_calls, function_for
from tests.access.recorder import ROOT

# Every deployed handler: lambdas/<name>/handler.py (the README of lambdas/ is not one).
HANDLERS = tuple(sorted(path.parent.name for path in (ROOT / "lambdas").glob("*/handler.py")))
CLIENTS = "cloudformation|cloudwatch|sagemaker|sns|s3|ssm|dynamodb"
CLIENT_CALL = re.compile(rf"\b(?:self\.)?({CLIENTS})\.([a-z_0-9]+)\(")
# A paginator makes the calls of the operation it names.
PAGINATOR = re.compile(rf"\b(?:self\.)?({CLIENTS})\.get_paginator\(\s*\"([a-z_0-9]+)\"\s*\)")


def test_every_handler_has_recorded_tests():
    """A handler no moto test records would have no contract at all."""
    assert set(HANDLERS) == set(RECORDED_TESTS), "lambdas/*/handler.py and tests/access/conftest.py RECORDED_TESTS"


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


@pytest.mark.parametrize("handler", HANDLERS)
def test_the_recordings_cover_every_call_in_the_handler(handler, recorded):
    """A call the moto tests never make would escape the contracts: each one in the source is recorded."""
    source = (ROOT / "lambdas" / handler / "handler.py").read_text()
    in_source = {f"{service}.{method}" for service, method in CLIENT_CALL.findall(source) if method != "get_paginator"}
    in_source |= {f"{service}.{operation}" for service, operation in PAGINATOR.findall(source)}
    seen = {f"{call.service}.{_snake(call.operation)}" for call in recorded[handler]}
    assert in_source - seen == set(), f"{handler}: calls in {Path('lambdas', handler, 'handler.py')} no test records"


@pytest.mark.parametrize("env_name", NAMES)
@pytest.mark.parametrize("handler", HANDLERS)
def test_every_recorded_call_is_allowed_in_the_environment(handler, env_name, environments, recorded, simulator):
    deployed = environments[env_name]
    if function_for(handler, deployed) is None:
        pytest.skip(f"{env_name} has no {handler} function")
    calls, unmapped = deployed_calls(recorded[handler], handler, deployed)
    assert unmapped == [], "recorded operations without an IAM mapping (tests/access/lambda_calls.py OPERATIONS)"
    assert calls, f"no calls of {handler} were recorded"
    world = deployed.world
    verdicts = decide(calls, world, deployed.worlds, simulator)
    problems = failures(verdicts, world)
    assert problems == [], "\n".join(problems)
