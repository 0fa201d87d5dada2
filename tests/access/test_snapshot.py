"""The security surface of every environment is pinned: a widened permission cannot pass unseen.

A change to any policy, endpoint, security group, route or Lake Formation grant changes the
environment's snapshot; the test fails until `make snapshot` rewrites it, so the change shows in
the commit (and in `make review`). ACCESS_SNAPSHOT=write is what `make snapshot` sets.
"""

from __future__ import annotations

import difflib
import os

import pytest

from tests.access.environments import NAMES
from tests.access.lambda_calls import promotion_function
from tests.access.snapshot import file_for, render


@pytest.mark.parametrize("env_name", NAMES)
def test_the_security_surface_matches_its_snapshot(env_name, environments):
    rendered = render(environments[env_name])
    path = file_for(env_name)
    if os.environ.get("ACCESS_SNAPSHOT") == "write":
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered)
    committed = path.read_text() if path.exists() else ""
    if rendered != committed:
        diff = difflib.unified_diff(
            committed.splitlines(), rendered.splitlines(), str(path), "synthesized", lineterm=""
        )
        shown = list(diff)[:60]
        pytest.fail(
            f"the security surface of {env_name} changed; review it and run `make snapshot`:\n" + "\n".join(shown)
        )


def test_a_widened_permission_changes_the_snapshot(environments):
    """The snapshot is sensitive to one widened action: proof that it pins what it claims."""
    import copy

    deployed = environments["dev"]
    before = render(deployed)
    function = promotion_function(deployed)
    principal = deployed.world.principal(function.properties["Role"])
    policy = principal.policies[0]
    original = policy.document
    widened = copy.deepcopy(original)
    widened["Statement"][0] = dict(widened["Statement"][0], Action="ssm:*")
    policy.document = widened
    try:
        assert render(deployed) != before
    finally:
        policy.document = original
