"""The delivery apps of config/ (files with a `deployment` section), each synthesized once per session.

tests/test_delivery.py reads the multi-account app and tests/test_checkov.py scans it: one synth
for both, which also starts the app's checkov scan in the background (tests/checkov_job.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests import checkov_job
from tests.conftest import cdk_context

_APPS: dict[Path, dict[str, Any]] = {}


def delivered_app(file: Path, tmp_path_factory) -> dict[str, Any]:
    """The app of a delivery file, synthesized with every nag pack (synth raises on a finding)."""
    if file not in _APPS:
        _APPS[file] = _synthesize(file, tmp_path_factory.mktemp(f"cdk-delivery-{file.stem}"))
        checkov_job.start(_APPS[file]["outdir"])
    return _APPS[file]


def _synthesize(file: Path, outdir: Path) -> dict[str, Any]:
    import aws_cdk as cdk

    from infra.config.delivery import load_delivery
    from stacks.delivery import build_delivery

    delivery, stages = load_delivery(file)
    app = cdk.App(outdir=str(outdir), context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = build_delivery(app, delivery, stages, file_stem=file.stem)
    assembly = app.synth()
    return {
        "stack": stack,
        "template": assembly.get_stack_artifact(stack.artifact_id).template,
        "assembly": assembly,
        "report": json.loads((outdir / "validation-report.json").read_text()),
        "outdir": outdir,
    }
