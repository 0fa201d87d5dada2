"""Multi-account delivery: the stages from config/multi-account.yaml, the CDK pipeline, bad delivery files."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from infra.catalog.naming import SERVING_ROLE_KINDS
from infra.config import CONFIG_DIR, ConfigError
from infra.config.delivery import is_delivery_file, load_delivery, parse_delivery
from tests.conftest import cdk_context
from tests.delivery_app import delivered_app
from tests.templates import of_type, statement_with_sid

FILE = CONFIG_DIR / "multi-account.yaml"


@pytest.fixture(scope="module")
def delivered(tmp_path_factory) -> dict[str, Any]:
    """The multi-account app, synthesized once per session with every nag pack (tests/delivery_app.py)."""
    return delivered_app(FILE, tmp_path_factory)


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
    (pipeline,) = of_type(delivered["template"], "AWS::CodePipeline::Pipeline").values()
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
    (key,) = of_type(delivered["template"], "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True


def test_synth_step_runs_the_tests_before_anything_deploys(delivered):
    projects = of_type(delivered["template"], "AWS::CodeBuild::Project").values()
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
    # dev trains; staging and prod serve its registry's versions, so they train and retrain nothing.
    dev_stacks = {s.stack_name for s in stacks["dev"].platform.stacks}
    assert {"mlp-dev-Training", "mlp-dev-Serving", "mlp-dev-Retraining"} <= dev_stacks
    for name in ("staging", "prod"):
        names = {s.stack_name for s in stacks[name].platform.stacks}
        assert {f"mlp-{name}-Serving", f"mlp-{name}-Monitoring"} <= names
        assert not names & {f"mlp-{name}-Training", f"mlp-{name}-Retraining"}
    # The stage stacks were validated too: their acknowledged findings are in the report.
    text = json.dumps(delivered["report"])
    assert "Delivery/Prod/Serving" in text and "Delivery/Dev/DataLake" in text
    for plugin in delivered["report"]["pluginReports"]:
        assert plugin.get("violations", []) == [], plugin["pluginName"]


def test_the_artifact_bucket_is_versioned_and_logged(delivered):
    buckets = of_type(delivered["template"], "AWS::S3::Bucket").values()
    (artifacts,) = [b for b in buckets if "LoggingConfiguration" in b["Properties"]]
    assert artifacts["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "KMSMasterKeyID" in json.dumps(artifacts["Properties"]["BucketEncryption"])


# --- Cross-account promotion and data sharing ----------------------------------------------------------

SOURCE, CONSUMERS = "200000000000", {"staging": "300000000000", "prod": "400000000000"}


def _stage_template(delivered, stage: str, component: str) -> dict[str, Any]:
    platform_stage = delivered["stack"].stages[stage]
    stack = getattr(platform_stage.platform, component)
    return platform_stage.synth().get_stack_artifact(stack.artifact_id).template


def _roots(accounts) -> list[str]:
    return sorted(f"arn:aws:iam::{a}:root" for a in accounts)


def _role_names(delivered, stage: str) -> set[str]:
    serving = _stage_template(delivered, stage, "serving")
    # Named roles only: the promotion role is named (and reads the source) only with the explainability monitor.
    return {
        r["Properties"]["RoleName"]
        for k, r in of_type(serving, "AWS::IAM::Role").items()
        if k.startswith(("ModelRole", "MonitorRole", "ExplainabilityRole", "PromotionRole"))
        and "RoleName" in r["Properties"]
    }


def test_stages_wire_the_registry_and_the_share_from_config():
    _, stages = load_delivery(FILE)
    dev, staging, prod = stages["dev"], stages["staging"], stages["prod"]
    assert dev.trains_here and not staging.trains_here and not prod.trains_here
    assert [(c.account, c.environment) for c in dev.training.model_consumers] == [
        ("300000000000", "staging"),
        ("400000000000", "prod"),
    ]
    for consumer in (staging, prod):
        assert (consumer.serving.model_source.account, consumer.serving.model_source.environment) == (SOURCE, "dev")
        # It serves what dev trains: dev's training section (without the consumers), and no retraining.
        assert consumer.training == dev.training.model_copy(update={"model_consumers": []})
        assert consumer.retraining is None
    assert SOURCE not in dev.data_lake.sharing.consumer_accounts
    assert "300000000000" in dev.data_lake.sharing.consumer_accounts
    shared = staging.data_lake.shared_from
    assert (shared.account, shared.environment, shared.database, shared.table) == (
        SOURCE,
        "dev",
        "curated",
        "transactions",
    )
    assert shared.excluded_columns == dev.data_lake.dataset.sensitive_columns
    assert prod.data_lake.shared_from is None


def test_the_registry_lets_exactly_the_serving_accounts_read_its_versions(delivered):
    training = _stage_template(delivered, "dev", "training")
    (group,) = of_type(training, "AWS::SageMaker::ModelPackageGroup").values()
    assert group["Properties"]["ModelPackageGroupName"] == "mlp-dev-models"
    (statement,) = group["Properties"]["ModelPackageGroupPolicy"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Principal"]["AWS"]) == _roots(CONSUMERS.values())
    # Read only: the consumers can neither register, approve nor delete versions.
    assert sorted(statement["Action"]) == [
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
    ]
    assert statement["Resource"] == [
        f"arn:aws:sagemaker:eu-west-1:{SOURCE}:model-package-group/mlp-dev-models",
        f"arn:aws:sagemaker:eu-west-1:{SOURCE}:model-package/mlp-dev-models/*",
    ]


def test_the_artifacts_key_and_bucket_grant_exactly_the_consumers_serving_roles(delivered):
    expected = sorted(
        f"arn:aws:iam::{account}:role/{name}"
        for stage, account in CONSUMERS.items()
        for name in _role_names(delivered, stage)
    )
    # The model and monitor roles of staging and prod (platform engine) read dev's outputs. The grants
    # name every serving role kind (naming.SERVING_ROLE_KINDS): the source does not know which monitors
    # a consumer runs, and a name no role has grants nothing.
    assert len(expected) == 4
    granted = sorted(
        f"arn:aws:iam::{account}:role/mlp-{stage}-serving-{kind}"
        for stage, account in CONSUMERS.items()
        for kind in SERVING_ROLE_KINDS
    )
    assert set(expected) <= set(granted)
    expected = granted
    key = statement_with_sid(
        _stage_template(delivered, "dev", "security"), "AWS::KMS::Key", "ServingAccountsDecryptModels"
    )
    assert key["Action"] == "kms:Decrypt" and key["Effect"] == "Allow"
    assert sorted(key["Principal"]["AWS"]) == _roots(CONSUMERS.values())
    # Contract: the roles named in the grants are the roles the consumers' Serving stacks create.
    assert sorted(key["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == expected
    assert key["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    lake = _stage_template(delivered, "dev", "data_lake")
    bucket = statement_with_sid(lake, "AWS::S3::BucketPolicy", "ServingAccountsReadModels")
    assert bucket["Action"] == "s3:GetObject"
    assert sorted(bucket["Principal"]["AWS"]) == _roots(CONSUMERS.values())
    assert sorted(bucket["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == expected
    # The objects under the pipeline's prefix, of the artifacts bucket (the key above encrypts it).
    (target,) = [
        r for r in of_type(lake, "AWS::S3::BucketPolicy").values()
        if bucket in r["Properties"]["PolicyDocument"]["Statement"]
    ]  # fmt: skip
    bucket_id = target["Properties"]["Bucket"]["Ref"]
    assert bucket_id.startswith("BucketsArtifacts")
    assert bucket["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/pipelines/mlp-dev-training/*"]]
    }
    dev_training = _stage_template(delivered, "dev", "training")
    assert any(
        r["Properties"].get("PipelineName") == "mlp-dev-training"
        for r in of_type(dev_training, "AWS::SageMaker::Pipeline").values()
    )


def test_approvals_reach_each_serving_account_and_only_from_the_source(delivered):
    from moto.events.models import EventPattern

    training = _stage_template(delivered, "dev", "training")
    rule = of_type(training, "AWS::Events::Rule")["ForwardApprovals"]["Properties"]
    buses = {f"arn:aws:events:eu-west-1:{a}:event-bus/default" for a in CONSUMERS.values()}
    assert {t["Arn"] for t in rule["Targets"]} == buses
    for target in rule["Targets"]:
        # Event bus targets take no retry policy; undeliverable events wait in the dead-letter queue.
        assert "RetryPolicy" not in target and target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith(
            "Unforwarded"
        )
        assert target["RoleArn"]["Fn::GetAtt"][0].startswith("ApprovalForwarding")
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in of_type(training, "AWS::IAM::Policy").items()
        if k.startswith("ApprovalForwarding")
    ]
    assert policy == [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": sorted(buses)}]
    approved = {
        "id": "e-1",
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "account": SOURCE,
        "region": "eu-west-1",
        "detail": {
            "ModelPackageGroupName": "mlp-dev-models",
            "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:{SOURCE}:model-package/mlp-dev-models/3",
            "ModelApprovalStatus": "Approved",
        },
    }
    assert EventPattern.load(json.dumps(rule["EventPattern"])).matches_event(approved)
    for stage, account in CONSUMERS.items():
        serving = _stage_template(delivered, stage, "serving")
        (bus_policy,) = of_type(serving, "AWS::Events::EventBusPolicy").values()
        statement = bus_policy["Properties"]["Statement"]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{SOURCE}:root"}
        assert statement["Action"] == "events:PutEvents"
        assert statement["Resource"] == f"arn:aws:events:eu-west-1:{account}:event-bus/default"
        assert statement["Condition"]["ForAllValues:StringEquals"] == {
            "events:source": "aws.sagemaker",
            "events:detail-type": "SageMaker Model Package State Change",
        }
        assert statement["Condition"]["Null"] == {"events:source": "false", "events:detail-type": "false"}
        pattern = EventPattern.load(
            json.dumps(of_type(serving, "AWS::Events::Rule")["ModelApprovals"]["Properties"]["EventPattern"])
        )
        # The forwarded approval reaches the promotion function; the same change in the stage's own account does not.
        assert pattern.matches_event(approved)
        assert not pattern.matches_event({**approved, "account": account})
        (function,) = [
            f for f in of_type(serving, "AWS::Lambda::Function").values()
            if f["Properties"]["FunctionName"].endswith("-promotion")
        ]  # fmt: skip
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["MODEL_PACKAGE_GROUP"] == "mlp-dev-models"
        assert variables["MODEL_PACKAGE_ACCOUNT"] == SOURCE  # the function, too, ignores other registries


def test_consumers_deploy_versions_of_the_source_registry_only(delivered):
    import re

    from lambdas.promotion.handler import PACKAGE_ARN

    for stage in CONSUMERS:
        serving = _stage_template(delivered, stage, "serving")
        lake = _stage_template(delivered, stage, "data_lake")
        (state,) = [
            r["Properties"] for r in of_type(lake, "AWS::SSM::Parameter").values()
            if r["Properties"]["Name"] == serving["Parameters"]["ModelPackageArn"]["Default"]
        ]  # fmt: skip
        pattern = state["AllowedPattern"]
        source_arn = f"arn:aws:sagemaker:eu-west-1:{SOURCE}:model-package/mlp-dev-models/3"
        assert re.fullmatch(pattern, source_arn) and PACKAGE_ARN.fullmatch(source_arn)
        assert not re.fullmatch(pattern, source_arn.replace(SOURCE, CONSUMERS[stage]))
        assert re.fullmatch(pattern, "none")
        packages = f"arn:aws:sagemaker:eu-west-1:{SOURCE}:model-package/mlp-dev-models/*"
        policies = {
            k: r["Properties"]["PolicyDocument"]["Statement"] for k, r in of_type(serving, "AWS::IAM::Policy").items()
        }
        for prefix in ("DeployRole", "PromotionRole"):
            (statements,) = [v for k, v in policies.items() if k.startswith(prefix)]
            assert {"Action": "sagemaker:DescribeModelPackage", "Effect": "Allow", "Resource": packages} in statements
        # The roles that read the source's outputs (the platform engine's monitor, no explainability job).
        for prefix in ("ModelRole", "MonitorRole"):
            (statements,) = [v for k, v in policies.items() if k.startswith(prefix)]
            reads = next(s for s in statements if s.get("Sid") == "SourceModels")
            assert reads["Resource"] == "arn:aws:s3:::*/pipelines/mlp-dev-training/*"
            assert reads["Condition"] == {"StringEquals": {"s3:ResourceAccount": SOURCE}}
            key = next(s for s in statements if s.get("Sid") == "SourceArtifactsKey")
            assert key["Resource"] == f"arn:aws:kms:eu-west-1:{SOURCE}:key/*"
            assert key["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": "alias/mlp-dev-artifacts"}
    # Contract: that alias is the source's artifacts key.
    security = _stage_template(delivered, "dev", "security")
    aliases = {
        r["Properties"]["AliasName"]: r["Properties"]["TargetKeyId"]
        for r in of_type(security, "AWS::KMS::Alias").values()
    }
    key_id = aliases["alias/mlp-dev-artifacts"]["Fn::GetAtt"][0]
    assert (
        statement_with_sid(security, "AWS::KMS::Key", "ServingAccountsDecryptModels")
        in security["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    )


def test_consumers_watch_their_endpoint_not_a_pipeline_they_do_not_run(delivered):
    for stage in CONSUMERS:
        monitoring = _stage_template(delivered, stage, "monitoring")
        names = {r["Properties"]["AlarmName"] for r in of_type(monitoring, "AWS::CloudWatch::Alarm").values()}
        assert f"mlp-{stage}-drift-amount" in names and f"mlp-{stage}-pipeline-failed" not in names
        assert not of_type(monitoring, "AWS::SNS::Topic")  # approvals happen in dev
        assert set(of_type(monitoring, "AWS::Events::Rule")) == set()


def test_the_curated_share_is_granted_in_dev_and_linked_in_staging(delivered):
    dev_lake = _stage_template(delivered, "dev", "data_lake")
    grants = of_type(dev_lake, "AWS::LakeFormation::PrincipalPermissions")
    shared = {k: g["Properties"] for k, g in grants.items() if "300000000000" in k}
    database, tables = (next(v for k, v in shared.items() if part in k) for part in ("Database", "Tables"))
    assert database["Principal"] == tables["Principal"] == {"DataLakePrincipalIdentifier": "300000000000"}
    assert database["Resource"]["Database"]["Name"] == "mlp_dev_curated"
    produced = tables["Resource"]["TableWithColumns"]
    assert (produced["DatabaseName"], produced["Name"]) == ("mlp_dev_curated", "transactions")

    staging_lake = _stage_template(delivered, "staging", "data_lake")
    (link,) = [r for k, r in of_type(staging_lake, "AWS::Glue::Database").items() if k.startswith("AccessSharedLink")]
    assert link["Properties"]["DatabaseInput"]["Name"] == "mlp_staging_curated_from_dev"
    assert link["Properties"]["DatabaseInput"]["TargetDatabase"] == {
        "CatalogId": SOURCE,
        "DatabaseName": "mlp_dev_curated",
    }
    consumer_grants = [
        g["Properties"]
        for k, g in of_type(staging_lake, "AWS::LakeFormation::PrincipalPermissions").items()
        if "Shared" in k
    ]
    principals = {json.dumps(g["Principal"]) for g in consumer_grants}
    assert len(principals) == 2  # the DataEngineer and DataScientist roles of staging
    reads = [g for g in consumer_grants if "TableWithColumns" in g["Resource"]]
    assert len(reads) == 2
    for read in reads:
        # A consumer may pass on no more than it got: the same table, the same withheld columns.
        assert read["Resource"]["TableWithColumns"] == {**produced, "CatalogId": SOURCE}
        assert read["Permissions"] == ["SELECT", "DESCRIBE"] and read["PermissionsWithGrantOption"] == []
    links = [
        g for g in consumer_grants if g["Resource"].get("Database", {}).get("Name") == "mlp_staging_curated_from_dev"
    ]
    assert len(links) == 2 and all(g["Permissions"] == ["DESCRIBE"] for g in links)
    # The personas' IAM policies may read the shared catalog objects (Lake Formation decides the rest).
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in of_type(staging_lake, "AWS::IAM::ManagedPolicy").values()
    ]
    catalog_reads = [s["Resource"] for statements in policies for s in statements if s.get("Sid") == "ReadCatalog"]
    assert catalog_reads and all(
        f"arn:aws:glue:eu-west-1:{SOURCE}:table/mlp_dev_curated/*" in resources for resources in catalog_reads
    )


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
        (
            lambda d: d["deployment"]["stages"][1].update(models_from="prod"),
            "deployment.stages[1].models_from = 'prod': allowed: the name of an earlier stage, or null",
        ),
        (
            lambda d: d["deployment"]["stages"][2].update(models_from="staging"),
            "deployment.stages[2].models_from = 'staging': allowed: a stage that trains ('staging' serves from "
            "another)",
        ),
        (
            lambda d: d["deployment"]["stages"][2].update(region="eu-central-1"),
            "deployment.stages[2].models_from = 'dev': allowed: a stage in this stage's region (eu-central-1), or null",
        ),
        (
            lambda d: d["deployment"]["stages"][1].update(data_from="staging"),
            "deployment.stages[1].data_from = 'staging': allowed: the name of an earlier stage, or null",
        ),
    ],
    ids=[
        "11-digit account",
        "unknown region",
        "duplicate stage",
        "prod without approval",
        "no such config",
        "stage in the tooling account",
        "models from a later stage",
        "models from a stage that trains nothing",
        "models from another region",
        "data from the stage itself",
    ],
)
def test_bad_delivery_gives_one_exact_line(change, message):
    assert _error(change) == [f"x: {message}"]


def test_a_stage_that_may_destroy_data_in_prod_is_refused(monkeypatch, tmp_path):
    import infra.config.delivery

    data = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    data["destroy_data_on_delete"] = True
    (tmp_path / "throwaway.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setattr(infra.config.delivery, "CONFIG_DIR", tmp_path)
    delivery = _data()
    delivery["deployment"]["stages"][2]["config"] = "throwaway"
    delivery["deployment"]["stages"][2].pop("models_from")  # it trains and serves its own model
    (tmp_path / "dev.yaml").write_text((CONFIG_DIR / "dev.yaml").read_text())
    (tmp_path / "prod.yaml").write_text((CONFIG_DIR / "prod.yaml").read_text())
    with pytest.raises(ConfigError) as caught:
        parse_delivery(delivery, "config/multi-account.yaml")
    assert caught.value.problems == [
        "config/multi-account.yaml: deployment.stages[2] (" + str(tmp_path / "throwaway.yaml") + "): "
        "destroy_data_on_delete = true: allowed: false for environment 'prod' (protected: prod, production, staging)"
    ]


def test_models_from_a_stage_without_training_is_refused(monkeypatch, tmp_path):
    import infra.config.delivery

    lake_only = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    for section in ("training", "serving", "monitoring", "retraining"):
        lake_only[section] = None
    (tmp_path / "lake.yaml").write_text(yaml.safe_dump(lake_only))
    (tmp_path / "prod.yaml").write_text((CONFIG_DIR / "prod.yaml").read_text())
    monkeypatch.setattr(infra.config.delivery, "CONFIG_DIR", tmp_path)
    delivery = _data()
    delivery["deployment"]["stages"][0]["config"] = "lake"
    with pytest.raises(ConfigError) as caught:
        parse_delivery(delivery, "config/multi-account.yaml")
    assert caught.value.problems == [
        f"config/multi-account.yaml: deployment.stages[{i}].models_from = 'dev': allowed: a stage whose config has "
        "a training section"
        for i in (1, 2)
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
    projects = of_type(template, "AWS::CodeBuild::Project").values()
    assert projects and all("VpcConfig" in p["Properties"] for p in projects)
    private = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::EC2::Subnet" and "Build" in k}
    for project in projects:
        assert {s["Ref"] for s in project["Properties"]["VpcConfig"]["Subnets"]} <= private
    assert len(of_type(template, "AWS::EC2::NatGateway")) == 1
    assert len(of_type(template, "AWS::EC2::FlowLog")) == 1
