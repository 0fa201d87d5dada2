"""The calls behind the data lake: Glue crawlers and the ETL job, Lake Formation's data access, Athena queries.

Derived from the resources: a crawler's targets and database, the job's script, arguments,
connection and security configuration, each registered location's role, the workgroup's result
location and key. What Glue does with those (catalog reads and writes, credential vending, logs
under the security configuration's key, job bookmarks encrypted client-side) is the service's
documented behaviour, listed here once. Lake Formation grants are not IAM: `lake_grants` reports
the grants each Glue principal needs and the environment lacks.
"""

from __future__ import annotations

from typing import Any

from tests.access.calls import Call, Network
from tests.access.environments import Deployed
from tests.access.resolver import PARTITION, Resource

CRAWLER_CATALOG = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
    "glue:BatchCreatePartition",
)
CRAWLER_SCHEMA_WRITES = ("glue:CreateTable", "glue:UpdateTable")
JOB_CATALOG = ("glue:GetDatabase", "glue:GetTable", "glue:GetPartitions", "glue:BatchCreatePartition")


def _arn(deployed: Deployed, service: str, resource: str) -> str:
    env = deployed.environment
    return f"arn:{PARTITION}:{service}:{env.region}:{env.account}:{resource}"


def _catalog(
    deployed: Deployed, role: str, actions: tuple[str, ...], database: str, table: str, why: str
) -> list[Call]:
    """Glue checks a catalog call against the catalog, the database and the table."""
    resources = [
        _arn(deployed, "glue", "catalog"),
        _arn(deployed, "glue", f"database/{database}"),
        _arn(deployed, "glue", f"table/{database}/{table}"),
    ]
    return [
        Call(role, a, r, why) for a in actions for r in resources if not (a == "glue:GetDatabase" and "table/" in r)
    ]


def _security_configuration(deployed: Deployed, name: str) -> dict[str, Any]:
    for resource in deployed.environment.resources("AWS::Glue::SecurityConfiguration"):
        if resource.properties["Name"] == name:
            return dict(resource.properties["EncryptionConfiguration"])
    return {}


def _connection_subnets(deployed: Deployed, names: list[str]) -> tuple[str, ...]:
    subnets = []
    for resource in deployed.environment.resources("AWS::Glue::Connection"):
        connection = resource.properties["ConnectionInput"]
        if connection["Name"] in names:
            subnets.append(connection["PhysicalConnectionRequirements"]["SubnetId"])
    return tuple(subnets)


def _common(deployed: Deployed, role: str, kind: str, security: str, connections: list[str], why: str) -> list[Call]:
    """What every Glue run does: assume its role, read its security configuration and connection, vend
    Lake Formation credentials, place network interfaces, write logs under the configuration's key."""
    calls = [
        Call("glue.amazonaws.com", "sts:AssumeRole", role, f"{why}: Glue assumes the role"),
        Call(role, "glue:GetSecurityConfiguration", "*", f"{why}: reads its security configuration {security}"),
        Call(role, "lakeformation:GetDataAccess", "*", f"{why}: Lake Formation vends the data's credentials"),
        Call(role, "ec2:CreateNetworkInterface", "*", f"{why}: network interfaces of its connection"),
    ]
    network = Network(_connection_subnets(deployed, connections)) or None
    for name in connections:
        for resource in (_arn(deployed, "glue", "catalog"), _arn(deployed, "glue", f"connection/{name}")):
            calls.append(Call(role, "glue:GetConnection", resource, f"{why}: its connection {name}", network=network))
    encryption = _security_configuration(deployed, security)
    group = f"/aws-glue/{kind}s-role/{role.rsplit('/', 1)[1]}-{security}"
    logs = _arn(deployed, "logs", f"log-group:{group}")
    calls += [
        Call(role, "logs:AssociateKmsKey", logs, f"{why}: log group under the configuration's key"),
        Call(role, "logs:CreateLogStream", f"{logs}:log-stream:run-1", f"{why}: logs"),
        Call(role, "logs:PutLogEvents", f"{logs}:log-stream:run-1", f"{why}: logs"),
    ]
    bookmarks = encryption.get("JobBookmarksEncryption", {})
    if kind == "job" and bookmarks.get("JobBookmarksEncryptionMode") == "CSE-KMS":
        key = bookmarks["KmsKeyArn"]
        calls += [
            Call(role, a, key, f"{why}: encrypts its bookmarks client-side")
            for a in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
    return calls


def crawler_calls(deployed: Deployed, crawler: Resource) -> list[Call]:
    p = crawler.properties
    role, why = p["Role"], f"crawler {crawler.name}"
    targets = p["Targets"]
    connections = sorted({t["ConnectionName"] for kind in targets.values() for t in kind if "ConnectionName" in t})
    calls = _common(deployed, role, "crawler", p.get("CrawlerSecurityConfiguration", ""), connections, why)
    for target in targets.get("CatalogTargets", []):
        for table in target["Tables"]:
            calls += _catalog(
                deployed, role, (*CRAWLER_CATALOG, "glue:UpdateTable"), target["DatabaseName"], table, why
            )
    writes = p.get("SchemaChangePolicy", {}).get("UpdateBehavior") == "UPDATE_IN_DATABASE"
    for target in targets.get("S3Targets", []):
        table = target["Path"].rstrip("/").rsplit("/", 1)[-1]
        actions = CRAWLER_CATALOG + (CRAWLER_SCHEMA_WRITES if writes else ())
        calls += _catalog(deployed, role, actions, p["DatabaseName"], table, why)
    return calls


def job_calls(deployed: Deployed, job: Resource) -> list[Call]:
    p = job.properties
    role, why = p["Role"], f"Glue job {job.name}"
    arguments = p.get("DefaultArguments", {})
    connections = p.get("Connections", {}).get("Connections", [])
    calls = _common(deployed, role, "job", p.get("SecurityConfiguration", ""), connections, why)
    script = p["Command"]["ScriptLocation"].removeprefix("s3://")
    calls.append(Call(role, "s3:GetObject", f"arn:{PARTITION}:s3:::{script}", f"{why}: reads its script"))
    if "--curated_database" in arguments:
        calls += _catalog(
            deployed, role, JOB_CATALOG, arguments["--curated_database"], arguments["--curated_table"], why
        )
    return calls


def location_calls(deployed: Deployed) -> list[Call]:
    """Each registered location's role: Lake Formation assumes it and reads and writes the location."""
    env = deployed.environment
    calls: list[Call] = []
    # The writer through Lake Formation is the Glue job: its uploads carry its configuration's S3 encryption.
    encryption = [
        c.properties["EncryptionConfiguration"]["S3Encryptions"][0]
        for c in env.resources("AWS::Glue::SecurityConfiguration")
    ]
    upload = (
        {
            "s3:x-amz-server-side-encryption": "aws:kms",
            "s3:x-amz-server-side-encryption-aws-kms-key-id": encryption[0]["KmsKeyArn"],
        }
        if encryption
        else {}
    )
    for location in env.resources("AWS::LakeFormation::Resource"):
        role, bucket = location.properties["RoleArn"], location.properties["ResourceArn"]
        why = f"Lake Formation serving {bucket}"
        calls.append(Call("lakeformation.amazonaws.com", "sts:AssumeRole", role, f"{why}: assumes the location role"))
        calls.append(Call(role, "s3:ListBucket", bucket, why, context={"s3:prefix": "transactions/"}))
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            context = upload if action == "s3:PutObject" else {}
            calls.append(Call(role, action, f"{bucket}/transactions/part-0.parquet", why, context=dict(context)))
        key = _bucket_key(deployed, bucket)
        if key:
            via = {"kms:ViaService": f"s3.{env.region}.amazonaws.com", "kms:CallerAccount": env.account}
            calls += [
                Call(role, a, key, f"{why} (S3 uses the bucket key)", context=via)
                for a in ("kms:Decrypt", "kms:GenerateDataKey")
            ]
    return calls


def _bucket_key(deployed: Deployed, bucket_arn: str) -> str | None:
    for bucket in deployed.environment.resources("AWS::S3::Bucket"):
        if bucket.arn == bucket_arn:
            rules = bucket.properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
            return rules[0].get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID") if rules else None
    return None


def athena_calls(deployed: Deployed, principal: str, databases: list[str]) -> list[Call]:
    """A persona querying in the lake's workgroup: the query, its results under the workgroup's key, the catalog."""
    env = deployed.environment
    calls: list[Call] = []
    for workgroup in env.resources("AWS::Athena::WorkGroup"):
        why = f"a query in the workgroup {workgroup.name}"
        for action in ("athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"):
            calls.append(Call(principal, action, workgroup.arn, why))
        results = workgroup.properties["WorkGroupConfiguration"]["ResultConfiguration"]
        key = results["EncryptionConfiguration"]["KmsKey"]
        location = results["OutputLocation"].removeprefix("s3://").rstrip("/")
        context = {"s3:x-amz-server-side-encryption": "aws:kms", "s3:x-amz-server-side-encryption-aws-kms-key-id": key}
        calls.append(
            Call(
                principal,
                "s3:PutObject",
                f"arn:{PARTITION}:s3:::{location}/q-1.csv",
                f"{why}: results",
                context=context,
            )
        )
        calls.append(Call(principal, "s3:GetObject", f"arn:{PARTITION}:s3:::{location}/q-1.csv", f"{why}: results"))
        via = {"kms:ViaService": f"s3.{env.region}.amazonaws.com", "kms:CallerAccount": env.account}
        calls += [
            Call(principal, a, key, f"{why}: results key", context=via) for a in ("kms:GenerateDataKey", "kms:Decrypt")
        ]
        calls.append(Call(principal, "lakeformation:GetDataAccess", "*", f"{why}: data through Lake Formation"))
        for database in databases:
            calls += _catalog(deployed, principal, ("glue:GetDatabase", "glue:GetTable"), database, "transactions", why)
    return calls


def lake_grants(deployed: Deployed) -> list[str]:
    """Lake Formation grants each Glue principal needs for its targets, and which are missing."""
    grants: dict[str, list[dict[str, Any]]] = {}
    for grant in deployed.environment.resources("AWS::LakeFormation::PrincipalPermissions"):
        p = grant.properties
        grants.setdefault(p["Principal"]["DataLakePrincipalIdentifier"], []).append(p)
    missing = []
    for crawler in deployed.environment.resources("AWS::Glue::Crawler"):
        p, role = crawler.properties, crawler.properties["Role"]
        held = grants.get(role, [])
        for target in p["Targets"].get("S3Targets", []):
            bucket = f"arn:{PARTITION}:s3:::{target['Path'].removeprefix('s3://').split('/', 1)[0]}"
            if not any(
                "DATA_LOCATION_ACCESS" in g["Permissions"]
                and g["Resource"].get("DataLocation", {}).get("ResourceArn") == bucket
                for g in held
            ):
                missing.append(f"crawler {crawler.name}: DATA_LOCATION_ACCESS on {bucket}")
            if not any(
                "CREATE_TABLE" in g["Permissions"]
                and g["Resource"].get("Database", {}).get("Name") == p["DatabaseName"]
                for g in held
            ):
                missing.append(f"crawler {crawler.name}: CREATE_TABLE on database {p['DatabaseName']}")
        for target in p["Targets"].get("CatalogTargets", []):
            for table in target["Tables"]:
                if not any(
                    {"SELECT", "ALTER"} <= set(g["Permissions"]) and g["Resource"].get("Table", {}).get("Name") == table
                    for g in held
                ):
                    missing.append(f"crawler {crawler.name}: SELECT and ALTER on {target['DatabaseName']}.{table}")
    for job in deployed.environment.resources("AWS::Glue::Job"):
        arguments, role = job.properties.get("DefaultArguments", {}), job.properties["Role"]
        held = grants.get(role, [])
        table = arguments.get("--curated_table")
        if table and not any(
            "INSERT" in g["Permissions"] and g["Resource"].get("Table", {}).get("Name") == table for g in held
        ):
            missing.append(f"Glue job {job.name}: INSERT on {arguments['--curated_database']}.{table}")
    return missing
