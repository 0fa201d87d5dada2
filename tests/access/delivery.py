"""The multi-account delivery, synthesized once per session for every test that needs it, and its stages.

tests/test_delivery.py and the access contracts share this synthesis (it costs as much as a
single-account app and its nag packs, several times over).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.config import CONFIG_DIR
from infra.config.delivery import load_delivery
from tests.access import bootstrap
from tests.access.environments import Deployed, deployed, stacks_of_assembly

FILE = CONFIG_DIR / "multi-account.yaml"
_DELIVERED: dict[str, Any] = {}


def delivered_app(tmp_path_factory: Any) -> dict[str, Any]:
    """The multi-account app, synthesized once with every nag pack (synth raises on a finding)."""
    if not _DELIVERED:
        import aws_cdk as cdk

        from stacks.delivery import build_delivery
        from tests.conftest import cdk_context

        delivery, stages = load_delivery(FILE)
        outdir = tmp_path_factory.mktemp("cdk-delivery")
        app = cdk.App(outdir=str(outdir), context=cdk_context(), builtin_cloud_formation_validation=False)
        stack = build_delivery(app, delivery, stages, file_stem="multi-account")
        assembly = app.synth()
        _DELIVERED.update(
            stack=stack,
            template=assembly.get_stack_artifact(stack.artifact_id).template,
            assembly=assembly,
            report=json.loads((outdir / "validation-report.json").read_text()),
            outdir=outdir,
        )
    return _DELIVERED


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
