"""The CDK entry point: context selects the config, and a bad config exits cleanly with one line each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def _run_app(context: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_bad_config_exits_with_one_line_per_problem_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "project: mlp\nenvironment: prod\ndestroy_data_on_delete: true\ntags: {owner: a@b.io}\n"
        "network: {max_azs: 9, egress: open}\n"
    )
    result = _run_app({"config": str(bad)}, tmp_path / "out")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("config error: ")]
    assert lines == [
        f"config error: {bad}: network.max_azs = 9: allowed: an integer from 1 to 6",
        f"config error: {bad}: network.egress = 'open': allowed: 'isolated' (no internet path) or 'controlled' "
        "(NAT gateway egress)",
        f"config error: {bad}: data_lake: missing; required: a data_lake section with at least a dataset",
    ]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists(), "nothing may be half-synthesized"


@pytest.mark.skipif(
    shutil.which("cdk", path=str(ROOT / "node_modules" / ".bin")) is None,
    reason="the pinned CDK CLI is installed by `make`",
)
def test_cli_passes_env_context_and_fails_cleanly(tmp_path):
    cdk = str(ROOT / "node_modules" / ".bin" / "cdk")
    env = {**os.environ, "CDK_DISABLE_VERSION_CHECK": "true", "CDK_DISABLE_CLI_TELEMETRY": "true"}
    result = subprocess.run(
        [cdk, "synth", "--no-notices", "-o", str(tmp_path), "-c", "env=nope"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert (
        "config error: context: env = 'nope': allowed: one of dev, multi-account, prod (files in config/), "
        "or -c config=PATH" in result.stderr
    )
    assert "Traceback" not in result.stderr
