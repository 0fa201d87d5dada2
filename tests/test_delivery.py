"""Multi-account delivery: the stages from config/multi-account.yaml, the CDK pipeline, bad delivery files."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from infra.config import CONFIG_DIR, ConfigError
from infra.delivery import is_delivery_file, load_delivery, parse_delivery
from tests.conftest import cdk_context

FILE = CONFIG_DIR / "multi-account.yaml"


@pytest.fixture(scope="module")
def delivered(tmp_path_factory) -> dict[str, Any]:
    """The multi-account app, synthesized once with every nag pack (synth raises on a finding)."""
    import aws_cdk as cdk

    from stacks.delivery import build_delivery

    delivery, stages = load_delivery(FILE)
    outdir = tmp_path_factory.mktemp("cdk-delivery")
    app = cdk.App(outdir=str(outdir), context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = build_delivery(app, delivery, stages, file_stem="multi-account")
    assembly = app.synth()
    return {
        "stack": stack,
        "template": assembly.get_stack_artifact(stack.artifact_id).template,
        "assembly": assembly,
        "report": json.loads((outdir / "validation-report.json").read_text()),
    }


def _resources(template: dict, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == resource_type]


def test_the_shipped_file_is_a_delivery_with_three_stages():
    assert is_delivery_file(FILE) and not is_delivery_file(CONFIG_DIR / "dev.yaml")
    delivery, stages = load_delivery(FILE)
    assert [s.name for s in delivery.deployment.stages] == ["dev", "staging", "prod"]
    # Each stage is its config file, in the stage's account and region, under the stage's name.
    assert {name: (c.environment, c.account, c.region) for name, c in stages.items()} == {
        "dev": ("dev", "200000000000", "eu-west-1"),
        "staging": ("staging", "300000000000", "eu-west-1"),
        "prod": ("prod", "400000000000", "eu-west-1"),
    }
    assert stages["staging"].prefix == "mlp-staging" and stages["staging"].destroy_data_on_delete is False


def test_pipeline_deploys_the_stages_in_order_with_an_approval_before_prod(delivered):
    (pipeline,) = _resources(delivered["template"], "AWS::CodePipeline::Pipeline")
    stages = [s["Name"] for s in pipeline["Properties"]["Stages"]]
    assert stages == ["Source", "Build", "UpdatePipeline", "Assets", "Dev", "Staging", "Prod"]
    prod = next(s for s in pipeline["Properties"]["Stages"] if s["Name"] == "Prod")
    first = min(prod["Actions"], key=lambda a: a["RunOrder"])
    assert first["ActionTypeId"]["Category"] == "Approval" and first["Name"] == "ApproveProd"
    for name in ("Dev", "Staging"):
        actions = next(s for s in pipeline["Properties"]["Stages"] if s["Name"] == name)["Actions"]
        assert all(a["ActionTypeId"]["Category"] != "Approval" for a in actions)
    # Cross-account deployments: the artifact store is encrypted with the pipeline's own KMS key.
    store = pipeline["Properties"]["ArtifactStore"]
    assert store["EncryptionKey"]["Type"] == "KMS"
    (key,) = _resources(delivered["template"], "AWS::KMS::Key")
    assert key["Properties"]["EnableKeyRotation"] is True


def test_synth_step_runs_the_tests_before_anything_deploys(delivered):
    projects = _resources(delivered["template"], "AWS::CodeBuild::Project")
    synth = [p for p in projects if "make test" in json.dumps(p["Properties"]["Source"])]
    (project,) = synth
    spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["build"]["commands"] == ["make test", "make synth ENV=multi-account"]
    # Self-mutation: the pipeline updates itself from the repository before deploying stages.
    assert any("cdk -a . deploy" in json.dumps(p["Properties"]["Source"]) for p in projects)


def test_every_stage_deploys_into_its_own_account_with_every_check(delivered):
    stacks = delivered["stack"].stages
    assert set(stacks) == {"dev", "staging", "prod"}
    accounts = {name: stage.account for name, stage in stacks.items()}
    assert accounts == {"dev": "200000000000", "staging": "300000000000", "prod": "400000000000"}
    prod_stacks = {s.stack_name for s in stacks["prod"].platform.stacks}
    assert {"mlp-prod-Training", "mlp-prod-Serving", "mlp-prod-Retraining"} <= prod_stacks
    # The stage stacks were validated too: their acknowledged findings are in the report.
    text = json.dumps(delivered["report"])
    assert "Delivery/Prod/Serving" in text and "Delivery/Dev/DataLake" in text
    for plugin in delivered["report"]["pluginReports"]:
        assert plugin.get("violations", []) == [], plugin["pluginName"]


def test_the_artifact_bucket_is_versioned_and_logged(delivered):
    buckets = _resources(delivered["template"], "AWS::S3::Bucket")
    (artifacts,) = [b for b in buckets if "LoggingConfiguration" in b["Properties"]]
    assert artifacts["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "KMSMasterKeyID" in json.dumps(artifacts["Properties"]["BucketEncryption"])


# --- Bad delivery files -------------------------------------------------------------------------------


def _data() -> dict:
    return yaml.safe_load(FILE.read_text())


def _error(change) -> list[str]:
    data = copy.deepcopy(_data())
    change(data)
    with pytest.raises(ConfigError) as caught:
        parse_delivery(data, "x")
    return caught.value.problems


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["deployment"]["stages"][0].update(account="20000000000"),
            "deployment.stages[0].account = '20000000000': allowed: 12 digits",
        ),
        (
            lambda d: d["deployment"]["stages"][1].update(region="eu-middle-9"),
            "deployment.stages[1].region = 'eu-middle-9': allowed: an AWS region name such as eu-west-1",
        ),
        (
            lambda d: d["deployment"]["stages"][1].update(name="dev"),
            "deployment.stages[1].name = 'dev': allowed: a name no other stage has",
        ),
        (
            lambda d: d["deployment"]["stages"][2].update(approval=False),
            "deployment.stages[2].approval = false: allowed: true for stage 'prod' (a person approves)",
        ),
        (
            lambda d: d["deployment"]["stages"][0].update(config="qa"),
            "deployment.stages[0].config = 'qa': allowed: the name of a file in config/",
        ),
        (
            lambda d: d["deployment"]["stages"][0].update(account="100000000000"),
            "deployment.stages[0].account = '100000000000': allowed: an account other than the tooling account's",
        ),
    ],
    ids=[
        "11-digit account",
        "unknown region",
        "duplicate stage",
        "prod without approval",
        "no such config",
        "stage in the tooling account",
    ],
)
def test_bad_delivery_gives_one_exact_line(change, message):
    assert _error(change) == [f"x: {message}"]


def test_a_stage_that_may_destroy_data_in_prod_is_refused(monkeypatch, tmp_path):
    import infra.delivery

    data = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    data["destroy_data_on_delete"] = True
    (tmp_path / "throwaway.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(infra.delivery, "CONFIG_DIR", tmp_path)
    delivery = _data()
    delivery["deployment"]["stages"][2]["config"] = "throwaway"
    (tmp_path / "dev.yaml").write_text((CONFIG_DIR / "dev.yaml").read_text())
    (tmp_path / "prod.yaml").write_text((CONFIG_DIR / "prod.yaml").read_text())
    with pytest.raises(ConfigError) as caught:
        parse_delivery(delivery, "config/multi-account.yaml")
    assert caught.value.problems == [
        "config/multi-account.yaml: deployment.stages[2] (" + str(tmp_path / "throwaway.yaml") + "): "
        "destroy_data_on_delete = true: allowed: false for environment 'prod' (protected: prod, production, staging)"
    ]


def test_build_steps_can_run_in_a_vpc_of_their_own(tmp_path):
    """tooling.build_in_vpc: each CodeBuild project in private subnets behind one NAT gateway (one stage: quick)."""
    import aws_cdk as cdk

    from stacks.delivery import build_delivery

    data = _data()
    data["deployment"]["tooling"]["build_in_vpc"] = True
    data["deployment"]["stages"] = data["deployment"]["stages"][:1]
    delivery, stages = parse_delivery(data, "x")
    app = cdk.App(outdir=str(tmp_path), context=cdk_context(), builtin_cloud_formation_validation=False)
    stack = build_delivery(app, delivery, stages, file_stem="multi-account")
    template = app.synth().get_stack_artifact(stack.artifact_id).template  # every nag pack passes
    projects = _resources(template, "AWS::CodeBuild::Project")
    assert projects and all("VpcConfig" in p["Properties"] for p in projects)
    private = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::Subnet" and "Build" in k}
    for project in projects:
        assert {s["Ref"] for s in project["Properties"]["VpcConfig"]["Subnets"]} <= private
    assert len(_resources(template, "AWS::EC2::NatGateway")) == 1
    assert len(_resources(template, "AWS::EC2::FlowLog")) == 1
