"""DataLake stack: zones, Lake Formation governance and ordering, catalog, Glue, data quality, access, Athena."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from infra.config import load_config
from infra.constructs.quality import ruleset
from tests import lake_access
from tests.helpers import ROOT, sandbox_config
from tests.templates import actions_of, statements_of

STACK = "DataLake"
# What an environment-agnostic stack's role ARNs look like: partition and account are tokens.
CFN_EXEC_ROLE = {
    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/"
    "cdk-hnb659fds-cfn-exec-role-${AWS::AccountId}-${AWS::Region}"
}


def _role(name: str) -> dict:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, f":role/{name}"]]}


def _one(synthesized, kind: str, contains: str = "") -> tuple[str, dict]:
    found = [(i, r) for i, r in synthesized.resources(STACK, kind).items() if contains in i]
    assert len(found) == 1, (kind, contains, [i for i, _ in found])
    return found[0]


def _zone_buckets(synthesized) -> dict[str, tuple[str, dict]]:
    buckets = synthesized.resources(STACK, "AWS::S3::Bucket")
    return {zone: next((i, b) for i, b in buckets.items() if i.startswith(f"Buckets{zone}")) for zone in
            ("Raw", "Curated", "Analytics", "AccessLogs")}  # fmt: skip


# --- Buckets -------------------------------------------------------------------------------------


def test_zone_buckets_use_the_data_key_with_bucket_keys_and_log_to_the_access_log_bucket(dev):
    zones = _zone_buckets(dev)
    logs_id = zones["AccessLogs"][0]
    for zone in ("Raw", "Curated", "Analytics"):
        props = zones[zone][1]["Properties"]
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["BucketKeyEnabled"] is True
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        key = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
        assert "KeysData" in json.dumps(key), "the Security stack's data key"
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": logs_id},
            "LogFilePrefix": f"{zone.lower()}/",
        }
    # Log delivery writes SSE-S3 only.
    logs = zones["AccessLogs"][1]["Properties"]
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }


def test_bucket_policies_refuse_plain_http_and_any_encryption_but_the_data_key(dev):
    zones = _zone_buckets(dev)
    policies = dev.resources(STACK, "AWS::S3::BucketPolicy")
    for zone in ("Raw", "Curated", "Analytics"):
        bucket_id = zones[zone][0]
        (policy,) = [p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": bucket_id}]
        statements = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        tls = next(s for s in statements.values() if "aws:SecureTransport" in json.dumps(s))
        assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        other = statements["DenyOtherEncryption"]
        assert other["Effect"] == "Deny" and other["Action"] == "s3:PutObject"
        assert other["Condition"] == {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}
        pinned = statements["DenyOtherKmsKeys"]["Condition"]["StringNotEqualsIfExists"]
        assert "KeysData" in json.dumps(pinned["s3:x-amz-server-side-encryption-aws-kms-key-id"])


def test_lifecycle_rules_follow_the_config(dev, prod):
    for synthesized, env in ((dev, "dev"), (prod, "prod")):
        zones_config = load_config(env).data_lake.zones
        for zone, (_, bucket) in _zone_buckets(synthesized).items():
            if zone == "AccessLogs":
                continue
            expected = getattr(zones_config, zone.lower())
            rule = next(r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"] if r["Id"] == "Zone")
            transitions = {t["StorageClass"]: t["TransitionInDays"] for t in rule.get("Transitions", [])}
            wanted = {}
            if expected.infrequent_access_after_days:
                wanted["STANDARD_IA"] = expected.infrequent_access_after_days
            if expected.glacier_after_days:
                wanted["GLACIER"] = expected.glacier_after_days
            assert transitions == wanted, (env, zone)
            assert rule.get("ExpirationInDays") == expected.expire_after_days
            assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": expected.noncurrent_expire_after_days}
            assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    analytics = _zone_buckets(dev)["Analytics"][1]["Properties"]["LifecycleConfiguration"]["Rules"]
    results = next(r for r in analytics if r["Id"] == "AthenaResults")
    assert results["Prefix"] == "athena-results/" and results["ExpirationInDays"] == 7


def test_only_the_raw_zone_notifies_eventbridge_natively(dev):
    zones = _zone_buckets(dev)
    raw = zones["Raw"][1]["Properties"]
    assert raw["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert all("NotificationConfiguration" not in zones[z][1]["Properties"] for z in ("Curated", "Analytics"))
    # No custom-resource Lambda writes the notification configuration.
    assert not dev.resources(STACK, "Custom::S3BucketNotifications")


STATEFUL = (
    "AWS::S3::Bucket",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::LakeFormation::DataLakeSettings",
)


def test_stateful_resources_are_retained(dev, prod):
    for synthesized in (dev, prod):
        for kind in STATEFUL:
            resources = synthesized.resources(STACK, kind)
            assert resources, kind
            for logical_id, resource in resources.items():
                assert resource.get("DeletionPolicy") == "Retain", logical_id
                assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_a_throwaway_environment_deletes_its_data(synth):
    sandbox = synth(sandbox_config())
    for kind in STATEFUL:
        for logical_id, resource in sandbox.resources(STACK, kind).items():
            assert resource.get("DeletionPolicy") == "Delete", logical_id
    assert sandbox.resources(STACK, "Custom::S3AutoDeleteObjects")


# --- Lake Formation governance --------------------------------------------------------------------


def test_settings_append_the_deployment_role_and_configured_admins(dev, prod):
    (_, settings) = _one(dev, "AWS::LakeFormation::DataLakeSettings")
    props = settings["Properties"]
    assert props["MutationType"] == "APPEND"
    assert props["Admins"] == [{"DataLakePrincipalIdentifier": CFN_EXEC_ROLE}]
    assert props["CreateDatabaseDefaultPermissions"] == [] and props["CreateTableDefaultPermissions"] == []
    assert "Parameters" not in props, "no cross-account version without sharing"
    prod_props = _one(prod, "AWS::LakeFormation::DataLakeSettings")[1]["Properties"]
    admins = [a["DataLakePrincipalIdentifier"] for a in prod_props["Admins"]]
    assert admins[1] == "arn:aws:iam::111111111111:role/DataPlatformAdmin"
    assert "cfn-exec-role" in json.dumps(admins[0])
    assert prod_props["Parameters"] == {"CROSS_ACCOUNT_VERSION": "4"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_iam_allowed_principals_anywhere(synth, env):
    assert "IAM_ALLOWED_PRINCIPALS" not in json.dumps(synth(env).templates[STACK])
    for database in synth(env).resources(STACK, "AWS::Glue::Database").values():
        assert database["Properties"]["DatabaseInput"]["CreateTableDefaultPermissions"] == []


ORDERED_AFTER_SETTINGS = (
    "AWS::LakeFormation::Resource",
    "AWS::LakeFormation::Tag",
    "AWS::LakeFormation::PrincipalPermissions",
    "AWS::Glue::Database",
    "AWS::Glue::Table",
    "AWS::Glue::Crawler",
    "AWS::Glue::Job",
)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_everything_lake_formation_checks_waits_for_the_settings(synth, env):
    synthesized = synth(env)
    (settings_id, _) = _one(synthesized, "AWS::LakeFormation::DataLakeSettings")
    for kind in ORDERED_AFTER_SETTINGS:
        resources = synthesized.resources(STACK, kind)
        assert resources, kind
        for logical_id, resource in resources.items():
            assert settings_id in resource.get("DependsOn", []), logical_id


def test_tag_associations_and_grants_wait_for_what_they_name(dev):
    resources = dev.templates[STACK]["Resources"]
    tags = set(dev.resources(STACK, "AWS::LakeFormation::Tag"))
    for logical_id, assoc in dev.resources(STACK, "AWS::LakeFormation::TagAssociation").items():
        assert tags <= set(assoc["DependsOn"]), logical_id
        target = assoc["Properties"]["Resource"]
        kind = "AWS::Glue::Table" if "TableWithColumns" in target else "AWS::Glue::Database"
        assert any(resources[d]["Type"] == kind for d in assoc["DependsOn"]), logical_id
    for logical_id, grant in dev.resources(STACK, "AWS::LakeFormation::PrincipalPermissions").items():
        resource = grant["Properties"]["Resource"]
        needs = {
            "DataLocation": "AWS::LakeFormation::Resource",
            "Table": "AWS::Glue::Table",
            "Database": "AWS::Glue::Database",
            "LFTagPolicy": "AWS::LakeFormation::Tag",
            "LFTag": "AWS::LakeFormation::Tag",
        }[next(iter(resource))]
        if next(iter(resource)) == "Table" and "TableWildcard" in resource["Table"]:
            needs = "AWS::Glue::Database"
        assert any(resources[d]["Type"] == needs for d in grant["DependsOn"]), logical_id


def test_zones_are_registered_with_a_dedicated_role_that_can_use_the_key(dev):
    locations = dev.resources(STACK, "AWS::LakeFormation::Resource")
    assert len(locations) == 3
    role_ids = set()
    for location in locations.values():
        props = location["Properties"]
        assert props["UseServiceLinkedRole"] is False and props["HybridAccessEnabled"] is False
        role_ids.add(props["RoleArn"]["Fn::GetAtt"][0])
    (role_id,) = role_ids
    role = dev.templates[STACK]["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lakeformation.amazonaws.com"}
    policy = next(
        p for p in dev.resources(STACK, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
    )
    actions = actions_of(*statements_of(policy))
    assert {"s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey*"} <= actions


# --- Catalog --------------------------------------------------------------------------------------


def test_a_database_per_zone_tagged_with_its_zone_and_sensitivity(dev):
    names = {d["Properties"]["DatabaseInput"]["Name"] for d in dev.resources(STACK, "AWS::Glue::Database").values()}
    assert names == {"mlp_dev_raw", "mlp_dev_curated", "mlp_dev_analytics"}
    assert lake_access.database_tags(dev.templates[STACK]) == {
        "mlp_dev_raw": {"mlp-dev:zone": "raw", "mlp-dev:sensitivity": "sensitive"},
        "mlp_dev_curated": {"mlp-dev:zone": "curated", "mlp-dev:sensitivity": "general"},
        "mlp_dev_analytics": {"mlp-dev:zone": "analytics", "mlp-dev:sensitivity": "general"},
    }
    tag_values = {
        t["Properties"]["TagKey"]: t["Properties"]["TagValues"]
        for t in dev.resources(STACK, "AWS::LakeFormation::Tag").values()
    }
    assert tag_values == {
        "mlp-dev:zone": ["raw", "curated", "analytics"],
        "mlp-dev:sensitivity": ["general", "sensitive"],
    }


def test_curated_table_has_the_configured_schema_and_sensitive_column_tags(dev):
    dataset = load_config("dev").data_lake.dataset
    (_, table) = _one(dev, "AWS::Glue::Table")
    props = table["Properties"]
    assert props["DatabaseName"] == "mlp_dev_curated"
    table_input = props["TableInput"]
    assert table_input["Name"] == "transactions"
    columns = [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]]
    assert columns == [(c.name, c.type) for c in dataset.columns]
    assert table_input["PartitionKeys"] == [{"Name": "ingest_date", "Type": "string"}]
    assert table_input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert lake_access.column_tags(dev.templates[STACK]) == {
        ("mlp_dev_curated", "transactions", "customer_id"): {"mlp-dev:sensitivity": "sensitive"},
        ("mlp_dev_curated", "transactions", "customer_email"): {"mlp-dev:sensitivity": "sensitive"},
    }


def test_data_quality_ruleset_is_generated_from_the_config(dev):
    (_, quality) = _one(dev, "AWS::Glue::DataQualityRuleset")
    props = quality["Properties"]
    assert props["Ruleset"] == ruleset(load_config("dev").data_lake.dataset)
    assert props["TargetTable"] == {"DatabaseName": "mlp_dev_curated", "TableName": "transactions"}
    assert 'IsUnique "transaction_id"' in props["Ruleset"]


# --- Glue crawlers and ETL job --------------------------------------------------------------------


def _security_configuration(synthesized) -> dict:
    return _one(synthesized, "AWS::Glue::SecurityConfiguration")[1]["Properties"]


def test_glue_security_configuration_encrypts_output_logs_and_bookmarks(dev):
    config = _security_configuration(dev)["EncryptionConfiguration"]
    assert config["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    assert "KeysData" in json.dumps(config["S3Encryptions"][0]["KmsKeyArn"])
    assert config["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert "KeysLogs" in json.dumps(config["CloudWatchEncryption"]["KmsKeyArn"])
    assert config["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"


def test_glue_runs_in_the_private_subnet_through_a_network_connection(dev):
    (_, connection) = _one(dev, "AWS::Glue::Connection")
    connection_input = connection["Properties"]["ConnectionInput"]
    assert connection_input["ConnectionType"] == "NETWORK"
    requirements = json.dumps(connection_input["PhysicalConnectionRequirements"])
    assert "IsolatedSubnet" in requirements and "WorkloadSecurityGroup" in requirements


def test_crawlers_use_lake_formation_credentials_the_vpc_and_encryption(dev):
    crawlers = dev.resources(STACK, "AWS::Glue::Crawler")
    assert len(crawlers) == 2
    for crawler in crawlers.values():
        props = crawler["Properties"]
        assert props["LakeFormationConfiguration"]["UseLakeFormationCredentials"] is True
        assert props["CrawlerSecurityConfiguration"] == "mlp-dev-lake"
        targets = props["Targets"].get("S3Targets", []) + props["Targets"].get("CatalogTargets", [])
        assert targets and all(t["ConnectionName"] == "mlp-dev-lake-vpc" for t in targets)
        assert props["SchemaChangePolicy"]["DeleteBehavior"] == "LOG"
    (_, curated) = _one(dev, "AWS::Glue::Crawler", "Curated")
    assert curated["Properties"]["Targets"]["CatalogTargets"][0]["Tables"] == ["transactions"]
    assert curated["Properties"]["SchemaChangePolicy"]["UpdateBehavior"] == "LOG", "never rewrites the schema"


def _lf_grants_of(synthesized, role_id: str) -> list[tuple[str, list[str]]]:
    return sorted(
        (next(iter(g["Properties"]["Resource"])), sorted(g["Properties"]["Permissions"]))
        for g in synthesized.resources(STACK, "AWS::LakeFormation::PrincipalPermissions").values()
        if g["Properties"]["Principal"]["DataLakePrincipalIdentifier"] == {"Fn::GetAtt": [role_id, "Arn"]}
    )


def test_crawlers_and_the_job_get_only_the_grants_they_need(dev):
    raw_role = _one(dev, "AWS::IAM::Role", "RawCrawlerRole")[0]
    curated_role = _one(dev, "AWS::IAM::Role", "CuratedCrawlerRole")[0]
    job_role = _one(dev, "AWS::IAM::Role", "EtlJobRole")[0]
    assert _lf_grants_of(dev, raw_role) == [
        ("DataLocation", ["DATA_LOCATION_ACCESS"]),
        ("Database", ["ALTER", "CREATE_TABLE", "DESCRIBE"]),
    ]
    table_rights = ["ALTER", "DESCRIBE", "INSERT", "SELECT"]
    assert _lf_grants_of(dev, curated_role) == [("DataLocation", ["DATA_LOCATION_ACCESS"]), ("Table", table_rights)]
    assert _lf_grants_of(dev, job_role) == [("DataLocation", ["DATA_LOCATION_ACCESS"]), ("Table", table_rights)]


def test_etl_job_is_a_bookmarked_spark_job_in_the_vpc_with_the_script_from_the_repo(dev, prod):
    (_, job) = _one(dev, "AWS::Glue::Job")
    props = job["Properties"]
    assert props["Command"]["Name"] == "glueetl"
    script = props["Command"]["ScriptLocation"]["Fn::Sub"]
    assert script.startswith("s3://cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}/")
    # The uploaded asset is the repository's script, byte for byte.
    asset = dev.outdir / f"asset.{script.rsplit('/', 1)[1]}"
    assert asset.read_bytes() == (ROOT / "etl" / "raw_to_curated.py").read_bytes()
    assert props["GlueVersion"] == "5.0" and props["WorkerType"] == "G.1X" and props["NumberOfWorkers"] == 2
    assert props["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert props["Connections"] == {"Connections": ["mlp-dev-lake-vpc"]}
    assert props["SecurityConfiguration"] == "mlp-dev-lake"
    args = props["DefaultArguments"]
    assert args["--job-bookmark-option"] == "job-bookmark-enable"
    assert args["--curated_database"] == "mlp_dev_curated" and args["--curated_table"] == "transactions"
    assert args["--key_columns"] == "transaction_id" and args["--partition_column"] == "ingest_date"
    assert json.loads(args["--schema"])[0] == {"name": "transaction_id", "type": "string"}


def _triggers(synthesized) -> dict[str, dict]:
    return {
        t["Properties"]["Type"]: t["Properties"] for t in synthesized.resources(STACK, "AWS::Glue::Trigger").values()
    }


def test_new_raw_files_start_the_job_through_a_batched_workflow_then_the_crawler(dev, prod):
    (workflow_id, workflow) = _one(dev, "AWS::Glue::Workflow")
    assert workflow["Properties"]["Name"] == "mlp-dev-lake-etl"
    job_id = _one(dev, "AWS::Glue::Job")[0]
    crawler_id = _one(dev, "AWS::Glue::Crawler", "Curated")[0]
    triggers = _triggers(dev)
    assert set(triggers) == {"EVENT", "CONDITIONAL"}, "dev has no schedule"
    assert all(t["WorkflowName"] == {"Ref": workflow_id} for t in triggers.values())
    assert triggers["EVENT"]["Actions"] == [{"JobName": {"Ref": job_id}}]
    assert triggers["EVENT"]["EventBatchingCondition"] == {"BatchSize": 100, "BatchWindow": 900}
    condition = triggers["CONDITIONAL"]["Predicate"]["Conditions"]
    assert condition == [{"JobName": {"Ref": job_id}, "LogicalOperator": "EQUALS", "State": "SUCCEEDED"}]
    assert triggers["CONDITIONAL"]["Actions"] == [{"CrawlerName": {"Ref": crawler_id}}]
    assert _triggers(prod)["SCHEDULED"]["Schedule"] == "cron(0 2 * * ? *)"


def test_new_data_rule_matches_the_raw_prefix_and_has_retries_and_a_dead_letter_queue(dev):
    (_, rule) = _one(dev, "AWS::Events::Rule")
    raw_id = _zone_buckets(dev)["Raw"][0]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [{"Ref": raw_id}]}, "object": {"key": [{"prefix": "transactions/"}]}},
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::Join"][1][-1] == ":workflow/mlp-dev-lake-etl"
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    queue = dev.templates[STACK]["Resources"][queue_id]
    assert "KmsMasterKeyId" in queue["Properties"] and queue["DeletionPolicy"] == "Retain"
    role = dev.templates[STACK]["Resources"][target["RoleArn"]["Fn::GetAtt"][0]]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "events.amazonaws.com"
    }


def test_job_arguments_are_what_the_script_accepts(dev):
    from etl import raw_to_curated

    args = _one(dev, "AWS::Glue::Job")[1]["Properties"]["DefaultArguments"]
    job_args = {k[2:]: v for k, v in args.items() if k[2:] in raw_to_curated.ARGUMENTS}
    assert set(job_args) == set(raw_to_curated.ARGUMENTS) - {"JOB_NAME"}
    # Tokens (bucket names) become placeholders: the script validates everything else.
    resolved = {k: (v if isinstance(v, str) else "s3://bucket/transactions/") for k, v in job_args.items()}
    resolved["curated_path"] = "s3://curated-bucket/transactions/"
    settings = raw_to_curated.parse_arguments({**resolved, "JOB_NAME": "job"})
    assert settings.key_columns == ("transaction_id",)


# --- Access model ---------------------------------------------------------------------------------


def test_scientists_read_curated_and_analytics_without_sensitive_columns(dev):
    template = dev.templates[STACK]
    scientist = _role("DataScientist")
    dataset = load_config("dev").data_lake.dataset
    assert lake_access.selectable_columns(template, scientist) == {
        ("mlp_dev_curated", "transactions"): {c.name for c in dataset.columns if not c.sensitive}
    }
    assert lake_access.visible_databases(template, scientist) == {"mlp_dev_curated", "mlp_dev_analytics"}
    for grant in lake_access.grants(template, scientist):
        assert set(grant["Permissions"]) <= {"SELECT", "DESCRIBE"}, "read only"
        assert grant["PermissionsWithGrantOption"] == []


def test_engineers_write_raw_and_curated_including_sensitive_columns(dev):
    template = dev.templates[STACK]
    engineer = _role("DataEngineer")
    dataset = load_config("dev").data_lake.dataset
    assert lake_access.selectable_columns(template, engineer) == {
        ("mlp_dev_curated", "transactions"): {c.name for c in dataset.columns}
    }
    assert lake_access.visible_databases(template, engineer) == {"mlp_dev_raw", "mlp_dev_curated"}
    permissions = {p for g in lake_access.grants(template, engineer) for p in g["Permissions"]}
    assert {"INSERT", "DELETE", "CREATE_TABLE", "DATA_LOCATION_ACCESS", "ASSOCIATE"} <= permissions


def test_persona_policies_are_attached_unless_the_config_says_otherwise(dev, prod):
    def attached(synthesized):
        return {
            i.split("Policy")[0].replace("Access", ""): p["Properties"].get("Roles")
            for i, p in synthesized.resources(STACK, "AWS::IAM::ManagedPolicy").items()
            if i.startswith("Access")  # the personas' (the other: the CDK deploy role's read of the promoted state)
        }

    assert attached(dev) == {"DataEngineer": ["DataEngineer"], "DataScientist": ["DataScientist"]}
    assert attached(prod) == {"DataEngineer": ["DataEngineer"], "DataScientist": None}
    outputs = prod.templates[STACK]["Outputs"]
    assert any("DataScientistPolicyArn" in name for name in outputs), "exported for an Identity Center permission set"


def test_scientist_policy_can_query_but_not_write_the_zones(dev):
    policy = next(p for i, p in dev.resources(STACK, "AWS::IAM::ManagedPolicy").items() if "DataScientist" in i)[
        "Properties"
    ]["PolicyDocument"]["Statement"]
    sids = {s["Sid"] for s in policy}
    assert {"QueryInWorkgroup", "ReadCatalog", "QueryResults", "DataKey"} <= sids
    assert "WriteZones" not in sids
    actions = actions_of(*policy)
    assert not any(a.startswith("s3:Delete") for a in actions)


def test_cross_account_share_excludes_sensitive_columns(prod, dev):
    template = prod.templates[STACK]
    shares = lake_access.grants(template, "222222222222")
    assert len(shares) == 2
    database = next(g for g in shares if "Database" in g["Resource"])
    assert database["Resource"]["Database"]["Name"] == "mlp_prod_curated"
    assert database["Permissions"] == ["DESCRIBE"]
    table = next(g for g in shares if "TableWithColumns" in g["Resource"])["Resource"]["TableWithColumns"]
    assert table["Name"] == "transactions"
    assert table["ColumnWildcard"] == {"ExcludedColumnNames": ["customer_id", "customer_email"]}
    assert not lake_access.grants(dev.templates[STACK], "222222222222")


# --- Athena and partitions ------------------------------------------------------------------------


def test_athena_workgroup_enforces_kms_results_and_a_scan_limit(dev):
    (_, workgroup) = _one(dev, "AWS::Athena::WorkGroup")
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == 10240 * 1024 * 1024
    result = config["ResultConfiguration"]
    assert result["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert "KeysData" in json.dumps(result["EncryptionConfiguration"]["KmsKey"])
    analytics = _zone_buckets(dev)["Analytics"][0]
    assert result["OutputLocation"] == {"Fn::Join": ["", ["s3://", {"Ref": analytics}, "/athena-results/"]]}


def test_no_hard_coded_partition_in_an_environment_agnostic_app(dev):
    assert "arn:aws:" not in json.dumps(dev.templates[STACK])


def test_cloudtrail_selects_the_lake_buckets_by_the_name_cloudformation_gives_them(dev):
    # The trail matches `mlp-dev-datalake-` because CloudFormation names buckets after the stack.
    assert dev.platform.data_lake.stack_name == "mlp-dev-DataLake"
    dev.template(STACK).resource_count_is("AWS::S3::Bucket", 5)  # 3 zones, artifacts, access logs
    for bucket in dev.resources(STACK, "AWS::S3::Bucket").values():
        assert "BucketName" not in bucket["Properties"]
    dev.template("Security").has_resource_properties(
        "AWS::CloudTrail::Trail",
        {"AdvancedEventSelectors": Match.array_with([Match.object_like({"Name": "Data lake object events"})])},
    )
