"""The DataLake template replayed against moto: Lake Formation and Glue accept it and end in the intended state."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from infra.config import load_config
from tests.cfn_replay import ACCOUNT, REGION, replay

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def lake(dev, prod):
    """Each environment's DataLake stack replayed into its own moto account state."""
    states = {}
    for env, synthesized in (("dev", dev), ("prod", prod)):
        with mock_aws():
            session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
            clients = {name: session.client(name) for name in ("lakeformation", "glue")}
            created = replay(synthesized.templates["DataLake"], f"mlp-{env}-DataLake", clients.__getitem__)
            lf, glue = clients["lakeformation"], clients["glue"]
            # An environment-bound stack names its own account as the catalog.
            catalog = load_config(env).account or ACCOUNT
            states[env] = {
                "created": created,
                "settings": lf.get_data_lake_settings()["DataLakeSettings"],
                "resources": lf.list_resources()["ResourceInfoList"],
                "tags": lf.list_lf_tags(CatalogId=catalog)["LFTags"],
                "permissions": lf.list_permissions(CatalogId=catalog)["PrincipalResourcePermissions"],
                "column_tags": lf.get_resource_lf_tags(
                    CatalogId=catalog,
                    Resource={
                        "TableWithColumns": {
                            "CatalogId": catalog,
                            "DatabaseName": f"mlp_{env}_curated",
                            "Name": "transactions",
                            "ColumnNames": [c.name for c in load_config(env).data_lake.dataset.columns],
                        }
                    },
                ).get("LFTagsOnColumns", []),
                "database_tags": lf.get_resource_lf_tags(
                    CatalogId=catalog, Resource={"Database": {"CatalogId": catalog, "Name": f"mlp_{env}_curated"}}
                ),
                "table": glue.get_table(CatalogId=catalog, DatabaseName=f"mlp_{env}_curated", Name="transactions")[
                    "Table"
                ],
                "crawlers": glue.get_crawlers()["Crawlers"],
                "jobs": glue.get_jobs()["Jobs"],
                "triggers": [glue.get_trigger(Name=i)["Trigger"] for i in created["AWS::Glue::Trigger"]],
            }
    return states


def test_every_lake_formation_and_glue_resource_is_accepted_by_the_api(lake):
    tags = {t["TagKey"]: t["TagValues"] for t in lake["prod"]["tags"]}
    assert tags == {"mlp-prod:zone": ["raw", "curated", "analytics"], "mlp-prod:sensitivity": ["general", "sensitive"]}
    for env in ("dev", "prod"):
        created = lake[env]["created"]
        assert len(created["AWS::Glue::Database"]) == 3 and len(created["AWS::LakeFormation::Resource"]) == 3
        assert len(created["AWS::Glue::Crawler"]) == 2 and len(created["AWS::Glue::Job"]) == 1


def test_settings_make_the_deployment_role_an_admin_without_iam_only_defaults(lake):
    settings = lake["dev"]["settings"]
    admins = [a["DataLakePrincipalIdentifier"] for a in settings["DataLakeAdmins"]]
    assert admins == [f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-cfn-exec-role-{ACCOUNT}-{REGION}"]
    assert settings["CreateDatabaseDefaultPermissions"] == []
    assert settings["CreateTableDefaultPermissions"] == []
    principals = {p["Principal"]["DataLakePrincipalIdentifier"] for p in lake["dev"]["permissions"]}
    assert "IAM_ALLOWED_PRINCIPALS" not in principals


def test_locations_are_registered_with_the_lake_role(lake):
    resources = lake["dev"]["resources"]
    assert len(resources) == 3
    assert all(r["RoleArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/GovernanceLocationRole") for r in resources)


def test_sensitive_columns_carry_the_sensitive_tag(lake):
    dataset = load_config("dev").data_lake.dataset
    tagged = {c["Name"]: c["LFTags"] for c in lake["dev"]["column_tags"] if c.get("LFTags")}
    assert set(tagged) == set(dataset.sensitive_columns)
    for tags in tagged.values():
        assert [(t["TagKey"], t["TagValues"]) for t in tags] == [("mlp-dev:sensitivity", ["sensitive"])]
    database = lake["dev"]["database_tags"]["LFTagOnDatabase"]
    assert sorted((t["TagKey"], t["TagValues"][0]) for t in database) == [
        ("mlp-dev:sensitivity", "general"),
        ("mlp-dev:zone", "curated"),
    ]


def test_scientist_grants_are_tag_expressions_limited_to_general_columns(lake):
    scientist = f"arn:aws:iam::{ACCOUNT}:role/DataScientist"
    grants = [p for p in lake["dev"]["permissions"] if p["Principal"]["DataLakePrincipalIdentifier"] == scientist]
    tables = [g for g in grants if g["Resource"].get("LFTagPolicy", {}).get("ResourceType") == "TABLE"]
    assert len(tables) == 1
    expression = {e["TagKey"]: e["TagValues"] for e in tables[0]["Resource"]["LFTagPolicy"]["Expression"]}
    assert expression == {"mlp-dev:zone": ["curated", "analytics"], "mlp-dev:sensitivity": ["general"]}
    assert sorted(tables[0]["Permissions"]) == ["DESCRIBE", "SELECT"]


def test_consumer_account_gets_the_curated_table_without_sensitive_columns(lake):
    shares = [p for p in lake["prod"]["permissions"] if p["Principal"]["DataLakePrincipalIdentifier"] == "222222222222"]
    columns = next(s["Resource"]["TableWithColumns"] for s in shares if "TableWithColumns" in s["Resource"])
    assert columns["ColumnWildcard"] == {"ExcludedColumnNames": ["customer_id", "customer_email"]}
    assert lake["prod"]["settings"]["Parameters"] == {"CROSS_ACCOUNT_VERSION": "4"}


def test_glue_catalog_crawlers_and_job_read_back_as_configured(lake):
    table = lake["dev"]["table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]][:2] == ["transaction_id", "customer_id"]
    assert table["PartitionKeys"] == [{"Name": "ingest_date", "Type": "string"}]
    # moto keeps no LakeFormationConfiguration: the template test covers it.
    crawlers = lake["dev"]["crawlers"]
    targets = [t for c in crawlers for t in c["Targets"].get("S3Targets", []) + c["Targets"].get("CatalogTargets", [])]
    assert len(targets) == 2 and {t["ConnectionName"] for t in targets} == {"mlp-dev-lake-vpc"}
    (job,) = lake["dev"]["jobs"]
    assert job["DefaultArguments"]["--job-bookmark-option"] == "job-bookmark-enable"
    assert job["Connections"] == {"Connections": ["mlp-dev-lake-vpc"]}


def test_workflow_runs_the_job_on_new_data_and_then_the_crawler(lake):
    triggers = {t["Type"]: t for t in lake["dev"]["triggers"]}
    assert set(triggers) == {"EVENT", "CONDITIONAL"}
    assert all(t["WorkflowName"] == "mlp-dev-lake-etl" for t in triggers.values())
    (job,) = lake["dev"]["jobs"]
    assert triggers["EVENT"]["Actions"] == [{"JobName": job["Name"]}]
    assert triggers["EVENT"]["EventBatchingCondition"] == {"BatchSize": 100, "BatchWindow": 900}
    (condition,) = triggers["CONDITIONAL"]["Predicate"]["Conditions"]
    assert (condition["JobName"], condition["State"]) == (job["Name"], "SUCCEEDED")
    (crawl,) = triggers["CONDITIONAL"]["Actions"]
    assert "CuratedCrawler" in crawl["CrawlerName"]
