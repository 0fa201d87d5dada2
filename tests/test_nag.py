"""Static checks over the whole app: every pack runs, nothing is left unacknowledged, every ack has a reason."""

from __future__ import annotations

import json

import pytest

from infra.checks.compliance import PACKS, acknowledge, enable_checks

# cdk-nag rule ids start with the pack name, the project's own with MLP-.
RULE_PREFIX = {
    "AwsSolutions": "AwsSolutions-",
    "HIPAA.Security": "HIPAA.Security-",
    "NIST.800.53.R5": "NIST.800.53.R5-",
    "PCI.DSS.321": "PCI.DSS.321-",
    "Serverless": "Serverless-",
    "MLPlatform": "MLP-",
}


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize("pack", PACKS)
def test_zero_unacknowledged_findings_per_pack(synth, env, pack):
    # Synth itself raises on any unacknowledged finding; the report must agree, pack by pack.
    report = synth(env).report
    for plugin in report["pluginReports"]:
        if plugin["pluginName"] == pack:
            assert plugin["violations"] == [], [v["ruleName"] for v in plugin["violations"]]
            assert plugin["conclusion"] == "success"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_acknowledgment_has_a_specific_reason(synth, env):
    suppressed = [s for p in synth(env).report["pluginReports"] for s in p.get("suppressedViolations", [])]
    assert suppressed, "the app acknowledges some findings; the report must record them"
    for finding in suppressed:
        reason = finding.get("reason", "")
        assert len(reason) >= 40 and "TODO" not in reason, (finding["ruleName"], reason)


def test_every_pack_is_active(tmp_path):
    """Negative control: a deliberately bad stack makes every registered pack report findings."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sagemaker as sagemaker

    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Bad")
    s3.Bucket(stack, "Bucket")
    lambda_.Function(
        stack, "Fn", runtime=lambda_.Runtime.PYTHON_3_12, handler="i.h", code=lambda_.Code.from_inline("x")
    )
    sagemaker.CfnModel(stack, "Model", execution_role_arn="arn:aws:iam::123456789012:role/r")
    enable_checks(app)
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    failing = {p["pluginName"] for p in report["pluginReports"] if p["violations"]}
    assert failing == set(PACKS)
    for plugin in report["pluginReports"]:
        assert all(v["ruleName"].startswith(RULE_PREFIX[plugin["pluginName"]]) for v in plugin["violations"])


def test_acknowledgment_needs_a_namespace():
    with pytest.raises(ValueError, match="needs its pack namespace"):
        acknowledge(None, "reason", ["AwsSolutions-S1"])  # type: ignore[arg-type]


@pytest.mark.parametrize("env", ["dev", "prod", "sandbox"])
def test_every_acknowledgment_is_used(synth, env):
    """An acknowledgment that matches nothing is a stale exception: remove it or fix its id."""
    import aws_cdk as cdk

    from tests.helpers import sandbox_config

    synthesized = synth(sandbox_config() if env == "sandbox" else env)
    root = synthesized.platform.security.node.root
    declared = {
        (construct.node.path, rule_id)
        for construct in root.node.find_all()
        for entry in construct.node.metadata
        if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule_id in entry.data
        # CDK acknowledges findings of its own (disabled) CloudFormation validation plugin.
        if not rule_id.startswith("CloudFormation-Validate::")
    }
    used = {
        (s["acknowledgedAt"], s["acknowledgedId"])
        for plugin in synthesized.report["pluginReports"]
        for s in plugin.get("suppressedViolations", [])
    }
    assert declared - used == set()
