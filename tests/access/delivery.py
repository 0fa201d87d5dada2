"""The stages of the multi-account delivery as environments of the access contracts.

The delivery app is the session's one synthesis of it (tests/delivery_app.py), which
tests/test_delivery.py and the checkov scan share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.config import CONFIG_DIR
from infra.config.delivery import load_delivery
from tests.access import bootstrap
from tests.access.environments import Deployed, deployed, stacks_of_assembly

FILE = CONFIG_DIR / "multi-account.yaml"


def delivered_app(tmp_path_factory: Any) -> dict[str, Any]:
    """The multi-account app, synthesized once per session (tests/delivery_app.py)."""
    from tests.delivery_app import delivered_app as synthesized

    return synthesized(FILE, tmp_path_factory)


def stage_environments(tmp_path_factory: Any) -> dict[str, Deployed]:
    """Each stage as an environment in its account, with the bootstrap's roles trusting the tooling account."""
    app = delivered_app(tmp_path_factory)
    delivery, configs = load_delivery(FILE)
    tooling = delivery.deployment.tooling.account
    outdir: Path = app["outdir"]
    found: dict[str, Deployed] = {}
    for stage in delivery.deployment.stages:  # in order: a source stage comes before its consumers
        config = configs[stage.name]
        directory = next(outdir.glob(f"assembly-*-{stage.name.title()}"))
        roles = bootstrap.roles(config.account or "", config.region or "", trusted=(tooling,))
        source = found[stage.models_from].environment if stage.models_from else None
        found[stage.name] = deployed(
            f"{stage.name} stage", config, stacks_of_assembly(directory), extra_principals=roles, source=source
        )
    for stage in found.values():
        stage.peers = {other.world.account: other.world for other in found.values() if other is not stage}
    return found
