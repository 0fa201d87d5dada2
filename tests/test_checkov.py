"""checkov over every environment's templates and the delivery app's: no finding without its reason.

A finding the platform keeps is skipped next to its resource (`Metadata.checkov.skip` with a
comment, written by `checkov_skip` in infra/checks/compliance.py), as the nag acknowledgments
are. The scans run in the background from each synth (tests/checkov_job.py); this module runs
last and collects them.
"""

from __future__ import annotations

import pytest

from infra.config import CONFIG_DIR
from infra.config.delivery import is_delivery_file
from tests import checkov_job
from tests.delivery_app import delivered_app

DELIVERIES = sorted(path for path in CONFIG_DIR.glob("*.yaml") if is_delivery_file(path))
ASSEMBLIES = [*checkov_job.scanned_configs(), *(f"delivery:{path.stem}" for path in DELIVERIES)]
# As the nag acknowledgments' reasons must be (tests/test_nag.py).
MIN_REASON = 40


def problems(scan: checkov_job.Scan) -> list[str]:
    """Each finding that is not skipped, and each skip without a reason of its own."""
    unexplained = [f"{c} (skipped with {c.reason!r})" for c in scan.skipped if not _specific(c.reason)]
    return [str(check) for check in scan.failed] + unexplained


def _specific(reason: str) -> bool:
    return len(reason) >= MIN_REASON and "TODO" not in reason


@pytest.fixture(scope="module")
def scans(synth, tmp_path_factory) -> dict[str, checkov_job.Scan]:
    """Each assembly's checkov verdict, scanning since its synth."""
    if not checkov_job.CHECKOV.exists():
        pytest.fail("checkov is not installed: `make setup` creates .venv-checkov from requirements-checkov.lock")
    directories = {name: synth(config).outdir for name, config in checkov_job.scanned_configs().items()}
    for path in DELIVERIES:
        directories[f"delivery:{path.stem}"] = delivered_app(path, tmp_path_factory)["outdir"]
    return {name: checkov_job.result(directory) for name, directory in directories.items()}


@pytest.mark.parametrize("assembly", ASSEMBLIES)
def test_every_finding_is_skipped_with_its_reason_next_to_its_resource(scans, assembly):
    scan = scans[assembly]
    assert scan.resources > 0 and scan.parsing_errors == [], (scan.resources, scan.parsing_errors)
    assert problems(scan) == [], "\n".join(problems(scan))


def test_the_shipped_environments_and_the_delivery_are_scanned():
    assert {"dev", "prod", "sandbox", "model_monitor", "delivery:multi-account"} <= set(ASSEMBLIES)


def test_checkov_reports_a_finding_and_a_skip_without_a_reason(tmp_path):
    """Negative control: an unlogged bucket fails, a bare skip is reported, a skip with its reason is honoured."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from infra.checks.compliance import checkov_skip

    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Fragment")
    s3.CfnBucket(stack, "Unlogged")
    s3.CfnBucket(stack, "SkippedBare").add_metadata("checkov", {"skip": [{"id": "CKV_AWS_18"}]})
    reason = "A reason of the length the platform's skips have, saying why the check does not apply."
    checkov_skip(s3.CfnBucket(stack, "SkippedWithReason"), reason, "CKV_AWS_18")
    app.synth()
    scan = checkov_job.result(tmp_path)
    logging = sorted(line for line in problems(scan) if "CKV_AWS_18" in line)
    assert len(logging) == 2, logging
    assert "AWS::S3::Bucket.Unlogged" in logging[1] and "skipped" not in logging[1]
    assert "AWS::S3::Bucket.SkippedBare" in logging[0] and "skipped" in logging[0]
    honoured = [c for c in scan.skipped if c.resource == "AWS::S3::Bucket.SkippedWithReason"]
    assert [(c.check, c.reason) for c in honoured] == [("CKV_AWS_18", reason)]


def test_a_skip_needs_a_reason():
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3

    from infra.checks.compliance import checkov_skip

    bucket = s3.CfnBucket(cdk.Stack(cdk.App(), "Fragment"), "Bucket")
    with pytest.raises(ValueError, match="needs its reason"):
        checkov_skip(bucket, " ", "CKV_AWS_18")
