"""DataLake stack: S3 zones, Lake Formation governance, the Glue catalog, ETL and data quality, Athena."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lakeformation as lf
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as assets
from constructs import Construct, IConstruct

from infra.catalog import naming
from infra.catalog.naming import export_name, glue_database
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    KMS_GRANT_WILDCARDS,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import PARTITION_COLUMN, ZONES, DataLakeConfig, PlatformConfig
from infra.constructs import lake_permissions, sagemaker_roles
from infra.constructs.buckets import AccessLogsBucket, EncryptedBucket, lifecycle_rules
from infra.constructs.lake_permissions import DB_WRITE, DESCRIBE, GENERAL, SENSITIVE, TABLE_READ
from infra.constructs.quality import ruleset
from infra.constructs.queues import DeadLetterQueue
from infra.constructs.retention import retention
from infra.constructs.serving_state import ServingState
from stacks.base import PlatformStack

ETL_SCRIPT = Path(__file__).resolve().parent.parent / "etl" / "raw_to_curated.py"
ATHENA_RESULTS = "athena-results/"


def role_arn(scope: Construct, name: str) -> str:
    """ARN of a role of the deploying account from its name (with path), partition-agnostic."""
    return cdk.Stack.of(scope).format_arn(
        service="iam", region="", resource="role", resource_name=name, arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME
    )


class LakeBuckets(Construct):
    """The raw, curated and analytics zones, the ML artifacts bucket, and their server-access-log bucket."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, key: kms.IKey, artifacts_key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        lake = config.data_lake
        self.access_logs = AccessLogsBucket(self, "AccessLogs", config=config)
        self.zones: dict[str, s3.Bucket] = {}
        for zone in ZONES:
            rules = lifecycle_rules(getattr(lake.zones, zone))
            if zone == "analytics":
                rules.append(
                    s3.LifecycleRule(
                        id="AthenaResults",
                        prefix=ATHENA_RESULTS,
                        expiration=cdk.Duration.days(lake.athena.results_retention_days),
                        noncurrent_version_expiration=cdk.Duration.days(1),
                    )
                )
            self.zones[zone] = EncryptedBucket(
                self,
                zone.capitalize(),
                config=config,
                key=key,
                access_logs=self.access_logs,
                access_logs_prefix=f"{zone}/",
                lifecycle=rules,
                # New raw objects reach EventBridge, where the retraining loop listens.
                event_bridge=zone == "raw",
            )
        # Pipeline outputs, checkpoints, model artifacts, baselines and data capture: not a lake zone
        # (no catalog, no Lake Formation), encrypted with the ML artifacts key.
        self.artifacts = EncryptedBucket(
            self,
            "Artifacts",
            config=config,
            key=artifacts_key,
            access_logs=self.access_logs,
            access_logs_prefix="artifacts/",
            lifecycle=lifecycle_rules(lake.zones.artifacts),
        )


class LakeGovernance(Construct):
    """Lake Formation settings, registered locations and the LF-Tags of the access model.

    Everything else in the stack that Lake Formation checks must come after `settings`: until
    they exist the deployment role is no data lake administrator. `after_settings` orders it.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, buckets: LakeBuckets, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.catalog_id = stack.account
        lake = config.data_lake
        synthesizer = stack.synthesizer
        assert isinstance(synthesizer, cdk.DefaultStackSynthesizer)
        # The role CloudFormation deploys with must administer the lake to create the rest.
        self.deployment_role = cdk.Fn.sub(synthesizer.cloud_formation_execution_role_arn)
        admins = [self.deployment_role, *(role_arn(self, name) for name in lake.admins)]
        empty: list = []
        self.settings = lf.CfnDataLakeSettings(
            self,
            "Settings",
            admins=[lf.CfnDataLakeSettings.DataLakePrincipalProperty(data_lake_principal_identifier=a) for a in admins],
            # APPEND adds these administrators to the account's; REPLACE would drop the others.
            mutation_type="APPEND",
            # Lake Formation permissions only: no IAM_ALLOWED_PRINCIPALS grant on new databases/tables.
            create_database_default_permissions=empty,
            create_table_default_permissions=empty,
            # Version 4 shares through AWS RAM, with LF-Tags and hybrid access.
            parameters={"CROSS_ACCOUNT_VERSION": "4"} if lake.sharing else None,
        )
        self.settings.apply_removal_policy(retention(config))

        # Lake Formation reads and writes registered locations with this role, not the
        # service-linked one, so the KMS key it needs is granted here, visibly. The trust is the
        # one Lake Formation documents; it names no source-account condition for this role.
        self.location_role = iam.Role(
            self,
            "LocationRole",
            assumed_by=iam.ServicePrincipal("lakeformation.amazonaws.com"),
            description="Lake Formation credential vending for the data lake zones",
        )
        self.locations: dict[str, lf.CfnResource] = {}
        zones = buckets.zones
        self.location_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects("*") for bucket in zones.values()],
            )
        )
        self.location_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[bucket.bucket_arn for bucket in zones.values()],
            )
        )
        key.grant_encrypt_decrypt(self.location_role)
        for zone, bucket in zones.items():
            location = lf.CfnResource(
                self,
                f"{zone.capitalize()}Location",
                resource_arn=bucket.bucket_arn,
                use_service_linked_role=False,
                role_arn=self.location_role.role_arn,
                hybrid_access_enabled=False,
            )
            self.after_settings(location)
            # The role's S3 and KMS permissions exist before Lake Formation first uses it.
            location.node.add_dependency(self.location_role.node.find_child("DefaultPolicy"))
            self.locations[zone] = location
        acknowledge_wildcards(
            self.location_role,
            "Lake Formation vends credentials for any object of a registered zone, so the role "
            "needs each zone bucket's objects; KMS action wildcards come from CDK's key grant.",
            actions=KMS_GRANT_WILDCARDS,
            resources=[bucket.arn_for_objects("*") for bucket in zones.values()],
        )
        acknowledge(self.location_role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))

        self.zone_tag = lake_permissions.zone_tag(config)
        self.sensitivity_tag = lake_permissions.sensitivity_tag(config)
        self.tags: dict[str, lf.CfnTag] = {}
        for tag_key, values in ((self.zone_tag, list(ZONES)), (self.sensitivity_tag, [GENERAL, SENSITIVE])):
            construct_id = tag_key.split(":")[1].capitalize() + "Tag"
            tag = lf.CfnTag(self, construct_id, catalog_id=self.catalog_id, tag_key=tag_key, tag_values=values)
            self.after_settings(tag)
            self.tags[tag_key] = tag

    def after_settings(self, *resources: IConstruct) -> None:
        """Order resources after the data lake settings (DependsOn in the template)."""
        for resource in resources:
            resource.node.add_dependency(self.settings)

    def lf_tag(self, key: str, values: Sequence[str]) -> lf.CfnTagAssociation.LFTagPairProperty:
        return lf.CfnTagAssociation.LFTagPairProperty(catalog_id=self.catalog_id, tag_key=key, tag_values=list(values))

    def grant(
        self,
        scope: Construct,
        construct_id: str,
        *,
        principal: str,
        resource: lake_permissions.Resource,
        permissions: Sequence[str],
        grantable: bool = False,
        after: Iterable[IConstruct] = (),
    ) -> lf.CfnPrincipalPermissions:
        """One Lake Formation grant, ordered after the settings and whatever it refers to."""
        permission = lake_permissions.grant(
            scope,
            construct_id,
            catalog_id=self.catalog_id,
            principal=principal,
            resource=resource,
            permissions=permissions,
            grantable=grantable,
        )
        self.after_settings(permission)
        for dependency in after:
            permission.node.add_dependency(dependency)
        return permission

    # Resource shapes of the grants, in this account's catalog.
    def database(self, name: str) -> lake_permissions.Resource:
        return lake_permissions.database(self.catalog_id, name)

    def table(self, database: str, name: str | None = None) -> lake_permissions.Resource:
        return lake_permissions.table(self.catalog_id, database, name)

    def location(self, bucket: s3.IBucket) -> lake_permissions.Resource:
        return lake_permissions.location(self.catalog_id, bucket.bucket_arn)

    def tag_policy(self, resource_type: str, expression: dict[str, Sequence[str]]) -> lake_permissions.Resource:
        return lake_permissions.tag_policy(self.catalog_id, resource_type, expression)

    def tag_key(self, key: str, values: Sequence[str]) -> lake_permissions.Resource:
        return lake_permissions.tag_key(self.catalog_id, key, values)


class LakeCatalog(Construct):
    """Glue databases per zone, the curated table with its column tags, and its data quality ruleset."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        buckets: LakeBuckets,
        governance: LakeGovernance,
    ) -> None:
        super().__init__(scope, construct_id)
        lake, gov, removal = config.data_lake, governance, retention(config)
        dataset = lake.dataset
        self.databases: dict[str, glue.CfnDatabase] = {}
        self.names: dict[str, str] = {}
        for zone in ZONES:
            name = glue_database(config, zone)
            database = glue.CfnDatabase(
                self,
                zone.capitalize(),
                catalog_id=gov.catalog_id,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=name,
                    description=f"{zone} zone of the {config.prefix} data lake",
                    location_uri=f"s3://{buckets.zones[zone].bucket_name}/",
                    # Tables created here get no IAM_ALLOWED_PRINCIPALS grant, whatever the account default.
                    create_table_default_permissions=[],
                ),
            )
            database.apply_removal_policy(removal)
            gov.after_settings(database)
            # Unclassified raw data counts as sensitive until the ETL job has typed it.
            association = lf.CfnTagAssociation(
                self,
                f"{zone.capitalize()}Tags",
                resource=lf.CfnTagAssociation.ResourceProperty(
                    database=lf.CfnTagAssociation.DatabaseResourceProperty(catalog_id=gov.catalog_id, name=name)
                ),
                lf_tags=[
                    gov.lf_tag(gov.zone_tag, [zone]),
                    gov.lf_tag(gov.sensitivity_tag, [SENSITIVE if zone == "raw" else GENERAL]),
                ],
            )
            association.node.add_dependency(database, *gov.tags.values())
            self.databases[zone], self.names[zone] = database, name

        curated = buckets.zones["curated"]
        self.table_location = f"s3://{curated.bucket_name}/{dataset.name}/"
        self.table = glue.CfnTable(
            self,
            "CuratedTable",
            catalog_id=gov.catalog_id,
            database_name=self.names["curated"],
            table_input=glue.CfnTable.TableInputProperty(
                name=dataset.name,
                description=f"{dataset.name}: typed, deduplicated and checked by the ETL job",
                table_type="EXTERNAL_TABLE",
                parameters={"classification": "parquet", "parquet.compression": "SNAPPY", "EXTERNAL": "TRUE"},
                partition_keys=[glue.CfnTable.ColumnProperty(name=PARTITION_COLUMN, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[
                        glue.CfnTable.ColumnProperty(name=c.name, type=c.type, comment=c.description)
                        for c in dataset.columns
                    ],
                    location=self.table_location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    ),
                ),
            ),
        )
        self.table.apply_removal_policy(removal)
        self.table.node.add_dependency(self.databases["curated"])
        gov.after_settings(self.table)
        self.column_tags = None
        if dataset.sensitive_columns:
            # Column tags override the table's inherited `general`: tag-based readers lose these columns.
            self.column_tags = lf.CfnTagAssociation(
                self,
                "SensitiveColumns",
                resource=lf.CfnTagAssociation.ResourceProperty(
                    table_with_columns=lf.CfnTagAssociation.TableWithColumnsResourceProperty(
                        catalog_id=gov.catalog_id,
                        database_name=self.names["curated"],
                        name=dataset.name,
                        column_names=dataset.sensitive_columns,
                    )
                ),
                lf_tags=[gov.lf_tag(gov.sensitivity_tag, [SENSITIVE])],
            )
            self.column_tags.node.add_dependency(self.table, *gov.tags.values())

        self.ruleset = glue.CfnDataQualityRuleset(
            self,
            "Quality",
            name=f"{config.prefix}-{dataset.name}",
            description=f"Checks of {dataset.name} in the curated zone, generated from the platform config",
            ruleset=ruleset(dataset),
            target_table=glue.CfnDataQualityRuleset.DataQualityTargetTableProperty(
                database_name=self.names["curated"], table_name=dataset.name
            ),
        )
        self.ruleset.node.add_dependency(self.table)


class GlueJobs(Construct):
    """The VPC connection, security configuration, crawlers and the raw -> curated ETL job."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        buckets: LakeBuckets,
        governance: LakeGovernance,
        catalog: LakeCatalog,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        lake, gov = config.data_lake, governance
        dataset = lake.dataset
        partition, region, account = stack.partition, stack.region, stack.account

        # Glue workers get their ENIs in the platform's private subnets, so crawlers and jobs
        # reach S3 and AWS APIs only through the VPC endpoints.
        subnet = vpc.select_subnets(subnet_type=subnets.subnet_type).subnets[0]
        self.connection = glue.CfnConnection(
            self,
            "VpcConnection",
            catalog_id=gov.catalog_id,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=f"{config.prefix}-lake-vpc",
                description="Private subnet and security group of the data lake's Glue jobs and crawlers",
                connection_type="NETWORK",
                # The Glue API requires the map even when a NETWORK connection has no properties.
                connection_properties={},
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    subnet_id=subnet.subnet_id,
                    availability_zone=subnet.availability_zone,
                    security_group_id_list=[security_group.security_group_id],
                ),
            ),
        )
        connection_name = f"{config.prefix}-lake-vpc"
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{config.prefix}-lake",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=data_key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=logs_key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=data_key.key_arn
                ),
            ),
        )
        sc_name = f"{config.prefix}-lake"

        read_catalog = [
            "glue:GetDatabase",
            "glue:GetTable",
            "glue:GetTables",
            "glue:GetPartition",
            "glue:GetPartitions",
        ]
        write_partitions = [
            "glue:UpdateTable",
            "glue:BatchGetPartition",
            "glue:CreatePartition",
            "glue:BatchCreatePartition",
            "glue:UpdatePartition",
            "glue:BatchUpdatePartition",
        ]

        def glue_role(
            name: str,
            description: str,
            *,
            log_prefix: str,
            database: str,
            catalog_actions: list[str],
            object_wildcards: Sequence[str] = (),
        ) -> iam.Role:
            """A Glue service role: logs, keys, VPC ENIs, Lake Formation data access, one database."""
            log_groups = f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/{log_prefix}*"
            tables = f"arn:{partition}:glue:{region}:{account}:table/{database}/*"
            role = iam.Role(
                self,
                name,
                assumed_by=service_principal("glue.amazonaws.com", account),
                description=description,
            )
            # Logs of Glue runs, encrypted with the logs key through the security configuration.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:AssociateKmsKey",
                    ],
                    resources=[log_groups],
                )
            )
            logs_key.grant_encrypt_decrypt(role)
            data_key.grant_encrypt_decrypt(role)
            # ENIs in the VPC: EC2 describe calls support no resource-level permissions.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "ec2:DescribeVpcEndpoints",
                        "ec2:DescribeRouteTables",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeVpcAttribute",
                        "ec2:CreateNetworkInterface",
                        "ec2:DeleteNetworkInterface",
                        "ec2:CreateTags",
                        "ec2:DeleteTags",
                    ],
                    resources=["*"],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["glue:GetConnection", "glue:GetSecurityConfiguration"],
                    resources=[
                        f"arn:{partition}:glue:{region}:{account}:catalog",
                        f"arn:{partition}:glue:{region}:{account}:connection/{connection_name}",
                    ],
                )
            )
            # Lake Formation vends S3 credentials for registered locations; this action has no resource.
            role.add_to_policy(iam.PolicyStatement(actions=["lakeformation:GetDataAccess"], resources=["*"]))
            # Catalog actions on one database and its tables, whose names the crawlers/job choose.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=catalog_actions,
                    resources=[
                        f"arn:{partition}:glue:{region}:{account}:catalog",
                        f"arn:{partition}:glue:{region}:{account}:database/{database}",
                        tables,
                    ],
                )
            )
            acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
            acknowledge_wildcards(
                role,
                "Only where nothing narrower exists: EC2 ENI calls and lakeformation:GetDataAccess "
                "take no resource ARN; Glue names its log streams and the tables it discovers at run "
                "time; KMS action families come from CDK's grants on the two platform keys.",
                actions=KMS_GRANT_WILDCARDS,
                resources=["*", log_groups, tables, *object_wildcards],
            )
            return role

        def curated_writer(name: str, role: iam.Role) -> list[lf.CfnPrincipalPermissions]:
            """Lake Formation rights to add partitions to the curated table: its location and the table."""
            return [
                gov.grant(
                    self,
                    f"{name}Location",
                    principal=role.role_arn,
                    resource=gov.location(buckets.zones["curated"]),
                    permissions=["DATA_LOCATION_ACCESS"],
                    after=[gov.locations["curated"]],
                ),
                gov.grant(
                    self,
                    f"{name}Table",
                    principal=role.role_arn,
                    resource=gov.table(curated_db, dataset.name),
                    permissions=["SELECT", "INSERT", "ALTER", "DESCRIBE"],
                    after=[catalog.table],
                ),
            ]

        # Raw crawler: discovers the raw files' schema into the raw database, with Lake Formation
        # credentials for the raw location and nothing else.
        raw_db, curated_db = catalog.names["raw"], catalog.names["curated"]
        self.raw_crawler_role = glue_role(
            "RawCrawlerRole",
            "Crawler of the raw zone",
            log_prefix="crawlers",
            database=raw_db,
            catalog_actions=[*read_catalog, "glue:CreateTable", *write_partitions],
        )
        raw_grants = [
            gov.grant(
                self,
                "RawCrawlerLocation",
                principal=self.raw_crawler_role.role_arn,
                resource=gov.location(buckets.zones["raw"]),
                permissions=["DATA_LOCATION_ACCESS"],
                after=[gov.locations["raw"]],
            ),
            gov.grant(
                self,
                "RawCrawlerDatabase",
                principal=self.raw_crawler_role.role_arn,
                resource=gov.database(raw_db),
                permissions=DB_WRITE,
                after=[catalog.databases["raw"]],
            ),
        ]
        crawler_config = json.dumps(
            {
                "Version": 1.0,
                "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"},
                "CreatePartitionIndex": True,
            }
        )
        self.raw_crawler = glue.CfnCrawler(
            self,
            "RawCrawler",
            role=self.raw_crawler_role.role_arn,
            database_name=raw_db,
            description=f"Schema discovery of raw {dataset.name} files",
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[
                    glue.CfnCrawler.S3TargetProperty(
                        path=f"s3://{buckets.zones['raw'].bucket_name}/{dataset.name}/",
                        connection_name=connection_name,
                    )
                ]
            ),
            lake_formation_configuration=glue.CfnCrawler.LakeFormationConfigurationProperty(
                use_lake_formation_credentials=True, account_id=account
            ),
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="UPDATE_IN_DATABASE", delete_behavior="LOG"
            ),
            crawler_security_configuration=sc_name,
            configuration=crawler_config,
        )
        self.raw_crawler.node.add_dependency(*raw_grants, self.connection, self.security_configuration)

        # Curated crawler: adds new partitions to the governed table, never changes its schema.
        self.curated_crawler_role = glue_role(
            "CuratedCrawlerRole",
            "Crawler of the curated zone",
            log_prefix="crawlers",
            database=curated_db,
            catalog_actions=[*read_catalog, *write_partitions],
        )
        curated_grants = curated_writer("CuratedCrawler", self.curated_crawler_role)
        self.curated_crawler = glue.CfnCrawler(
            self,
            "CuratedCrawler",
            role=self.curated_crawler_role.role_arn,
            description=f"Partitions of the curated {dataset.name} table",
            targets=glue.CfnCrawler.TargetsProperty(
                catalog_targets=[
                    glue.CfnCrawler.CatalogTargetProperty(
                        database_name=curated_db, tables=[dataset.name], connection_name=connection_name
                    )
                ]
            ),
            lake_formation_configuration=glue.CfnCrawler.LakeFormationConfigurationProperty(
                use_lake_formation_credentials=True, account_id=account
            ),
            # Catalog targets must only log deletions; LOG on updates keeps the governed schema.
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="LOG", delete_behavior="LOG"
            ),
            crawler_security_configuration=sc_name,
            configuration=json.dumps(
                {"Version": 1.0, "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}}
            ),
        )
        self.curated_crawler.node.add_dependency(*curated_grants, self.connection, self.security_configuration)

        # ETL job: reads raw files (bookmarks remember which), writes the typed curated table.
        script = assets.Asset(self, "EtlScript", path=str(ETL_SCRIPT))
        raw_objects = buckets.zones["raw"].arn_for_objects(f"{dataset.name}/*")
        curated_objects = buckets.zones["curated"].arn_for_objects(f"{dataset.name}/*")
        self.job_role = glue_role(
            "EtlJobRole",
            f"ETL job raw -> curated {dataset.name}",
            log_prefix="jobs",
            database=curated_db,
            catalog_actions=[*read_catalog, *write_partitions],
            object_wildcards=[raw_objects, curated_objects],
        )
        # Exactly the script object, the dataset's raw files, and its curated prefix.
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{partition}:s3:::{script.s3_bucket_name}/{script.s3_object_key}", raw_objects],
            )
        )
        self.job_role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:DeleteObject"], resources=[curated_objects])
        )
        # `--enable-metrics`: job metrics go to the Glue namespace only; PutMetricData has no resource ARN.
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[buckets.zones["raw"].bucket_arn, buckets.zones["curated"].bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{dataset.name}/*", dataset.name]}},
            )
        )
        job_grants = curated_writer("EtlJob", self.job_role)
        etl = lake.etl
        self.job = glue.CfnJob(
            self,
            "EtlJob",
            role=self.job_role.role_arn,
            description=f"raw -> curated {dataset.name}: typed, deduplicated, partitioned Parquet",
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url
            ),
            glue_version=etl.glue_version,
            worker_type=etl.worker_type,
            number_of_workers=etl.workers,
            timeout=etl.timeout_minutes,
            max_retries=1,
            # Bookmarks track processed files per job: concurrent runs would process files twice.
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
            connections=glue.CfnJob.ConnectionsListProperty(connections=[connection_name]),
            security_configuration=sc_name,
            default_arguments={
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-enable",
                "--enable-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-glue-datacatalog": "true",
                "--raw_path": f"s3://{buckets.zones['raw'].bucket_name}/{dataset.name}/",
                "--raw_format": dataset.raw_format,
                "--curated_database": curated_db,
                "--curated_table": dataset.name,
                "--curated_path": catalog.table_location,
                "--schema": json.dumps([{"name": c.name, "type": c.type} for c in dataset.columns]),
                "--key_columns": ",".join(dataset.key_columns),
                "--partition_column": PARTITION_COLUMN,
            },
        )
        self.job.node.add_dependency(*job_grants, self.connection, self.security_configuration)
        gov.after_settings(self.raw_crawler, self.curated_crawler, self.job)


class EtlWorkflow(Construct):
    """Runs the ETL job when new raw files arrive (EventBridge -> Glue workflow) or on schedule, then the crawler.

    New objects under the dataset's raw prefix are batched by the workflow's event trigger, so a
    burst of uploads starts one run; undeliverable events wait in an encrypted dead-letter queue.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        jobs: GlueJobs,
        raw: s3.IBucket,
        queue_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        etl, dataset = config.data_lake.etl, config.data_lake.dataset
        name = f"{config.prefix}-lake-etl"
        self.workflow = glue.CfnWorkflow(
            self,
            "Workflow",
            name=name,
            description=f"raw -> curated {dataset.name}, then the curated crawler",
            max_concurrent_runs=1,
        )
        run_job = [glue.CfnTrigger.ActionProperty(job_name=jobs.job.ref)]
        self.starts: list[glue.CfnTrigger] = []
        if etl.new_data_batch_size is not None:
            self.starts.append(
                glue.CfnTrigger(
                    self,
                    "OnNewData",
                    type="EVENT",
                    workflow_name=self.workflow.ref,
                    description=f"New raw {dataset.name} files, batched",
                    actions=run_job,
                    event_batching_condition=glue.CfnTrigger.EventBatchingConditionProperty(
                        batch_size=etl.new_data_batch_size, batch_window=etl.new_data_batch_window_seconds
                    ),
                )
            )
        if etl.schedule:
            self.starts.append(
                glue.CfnTrigger(
                    self,
                    "OnSchedule",
                    type="SCHEDULED",
                    schedule=etl.schedule,
                    start_on_creation=True,
                    workflow_name=self.workflow.ref,
                    description=f"Scheduled raw -> curated run of {dataset.name}",
                    actions=run_job,
                )
            )
        self.after_job = glue.CfnTrigger(
            self,
            "AfterJob",
            type="CONDITIONAL",
            start_on_creation=True,
            workflow_name=self.workflow.ref,
            description="Crawl the curated table once the job has written new partitions",
            predicate=glue.CfnTrigger.PredicateProperty(
                logical="AND",
                conditions=[
                    glue.CfnTrigger.ConditionProperty(
                        job_name=jobs.job.ref, logical_operator="EQUALS", state="SUCCEEDED"
                    )
                ],
            ),
            actions=[glue.CfnTrigger.ActionProperty(crawler_name=jobs.curated_crawler.ref)],
        )

        self.rule = None
        self.dead_letters = None
        if etl.new_data_batch_size is None:
            return
        workflow_arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:workflow/{name}"
        role = iam.Role(
            self,
            "EventsRole",
            assumed_by=service_principal("events.amazonaws.com", stack.account),
            description="EventBridge starting the data lake ETL workflow",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["glue:notifyEvent"], resources=[workflow_arn]))
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        self.dead_letters = DeadLetterQueue(
            self, "UndeliveredEvents", config=config, key=queue_key, source="the new-data rule"
        )
        self.rule = events.CfnRule(
            self,
            "NewRawData",
            description=f"New raw {dataset.name} objects start the ETL workflow",
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [raw.bucket_name]}, "object": {"key": [{"prefix": f"{dataset.name}/"}]}},
            },
            state="ENABLED",
            targets=[self.dead_letters.target("EtlWorkflow", workflow_arn, role_arn=role.role_arn)],
        )
        self.rule.node.add_dependency(self.workflow)
        self.dead_letters.receive_from(self.rule, "RuleDeadLetters")


class LakeAccess(Construct):
    """Tag-based Lake Formation grants and IAM policies of the personas, and the cross-account share."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        buckets: LakeBuckets,
        governance: LakeGovernance,
        catalog: LakeCatalog,
        workgroup: athena.CfnWorkGroup,
        data_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        lake, gov = config.data_lake, governance
        tags = list(gov.tags.values())
        self.policies: dict[str, iam.ManagedPolicy] = {}
        personas = lake.personas
        for persona, access in lake_permissions.PERSONAS.items():
            settings = getattr(personas, persona)
            if settings is None:
                continue
            zones, write = access.zones, access.write
            name = "".join(part.capitalize() for part in persona.split("_"))
            persona_scope = Construct(self, name)
            for role in settings.roles:
                arn = role_arn(self, role)
                # Access/<Persona>/<role name>/...: CDK folds a repeated name out of the logical id.
                role_scope = Construct(persona_scope, role.split("/")[-1])
                for kind, expression, permissions in lake_permissions.persona_tag_grants(config, persona):
                    gov.grant(
                        role_scope,
                        "Databases" if kind == "DATABASE" else "Tables",
                        principal=arn,
                        resource=gov.tag_policy(kind, expression),
                        permissions=permissions,
                        after=tags,
                    )
                if write:
                    for zone in zones:
                        gov.grant(
                            role_scope,
                            f"{zone.capitalize()}Location",
                            principal=arn,
                            resource=gov.location(buckets.zones[zone]),
                            permissions=["DATA_LOCATION_ACCESS"],
                            after=[gov.locations[zone]],
                        )
                    # Engineers classify new columns with the sensitivity tag.
                    gov.grant(
                        role_scope,
                        "Classify",
                        principal=arn,
                        resource=gov.tag_key(gov.sensitivity_tag, [GENERAL, SENSITIVE]),
                        permissions=["DESCRIBE", "ASSOCIATE"],
                        after=tags,
                    )
            self.policies[persona] = self._policy(
                name, config=config, zones=zones, write=write, buckets=buckets, catalog=catalog,
                workgroup=workgroup, data_key=data_key, roles=settings.roles if settings.attach_policy else [],
            )  # fmt: skip

        self.shared_link: glue.CfnDatabase | None = None
        if lake.shared_from is not None:
            personas_roles = {
                "".join(part.capitalize() for part in persona.split("_")): getattr(personas, persona).roles
                for persona in lake_permissions.PERSONAS
                if getattr(personas, persona) is not None
            }
            self._link_shared(config, gov, personas_roles)
        self.shares: list[lf.CfnPrincipalPermissions] = []
        if lake.sharing:
            zone = lake.sharing.database
            database = catalog.names[zone]
            for account in lake.sharing.consumer_accounts:
                self.shares.append(
                    gov.grant(
                        self,
                        f"Share{zone.capitalize()}Database{account}",
                        principal=account,
                        resource=gov.database(database),
                        permissions=DESCRIBE,
                        grantable=True,
                        after=[catalog.databases[zone]],
                    )
                )
                if zone == "curated":
                    # The consumer's administrators may pass on what they get, never the sensitive columns.
                    resource = lf.CfnPrincipalPermissions.ResourceProperty(
                        table_with_columns=lf.CfnPrincipalPermissions.TableWithColumnsResourceProperty(
                            catalog_id=gov.catalog_id,
                            database_name=database,
                            name=lake.dataset.name,
                            column_wildcard=lf.CfnPrincipalPermissions.ColumnWildcardProperty(
                                excluded_column_names=lake.dataset.sensitive_columns
                            ),
                        )
                    )
                    after: list[IConstruct] = [catalog.table]
                else:
                    resource, after = gov.table(database), [catalog.databases[zone]]
                self.shares.append(
                    gov.grant(
                        self,
                        f"Share{zone.capitalize()}Tables{account}",
                        principal=account,
                        resource=resource,
                        permissions=TABLE_READ,
                        grantable=True,
                        after=after,
                    )
                )

    def _link_shared(self, config: PlatformConfig, gov: LakeGovernance, personas: dict[str, list[str]]) -> None:
        """A resource link to the database another account shares, and read grants to the personas' roles."""
        shared = config.data_lake.shared_from
        assert shared is not None
        source_database = naming.shared_database(config)
        self.shared_link = glue.CfnDatabase(
            self,
            "SharedLink",
            catalog_id=gov.catalog_id,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=naming.shared_link(config),
                description=f"Resource link to {source_database}, shared by account {shared.account}",
                target_database=glue.CfnDatabase.DatabaseIdentifierProperty(
                    catalog_id=shared.account, database_name=source_database
                ),
            ),
        )
        gov.after_settings(self.shared_link)
        if shared.table is not None:
            target = lf.CfnPrincipalPermissions.ResourceProperty(
                table_with_columns=lf.CfnPrincipalPermissions.TableWithColumnsResourceProperty(
                    catalog_id=shared.account,
                    database_name=source_database,
                    name=shared.table,
                    column_wildcard=lf.CfnPrincipalPermissions.ColumnWildcardProperty(
                        excluded_column_names=shared.excluded_columns
                    ),
                )
            )
        else:
            target = lake_permissions.table(shared.account, source_database)
        self.shared_grants: list[lf.CfnPrincipalPermissions] = []
        for persona, roles in personas.items():
            for role in roles:
                scope = Construct(self, f"Shared{persona}{role.split('/')[-1]}")
                arn = role_arn(self, role)
                self.shared_grants += [
                    gov.grant(
                        scope,
                        "Link",
                        principal=arn,
                        resource=gov.database(naming.shared_link(config)),
                        permissions=DESCRIBE,
                        after=[self.shared_link],
                    ),
                    gov.grant(
                        scope,
                        "Database",
                        principal=arn,
                        resource=lake_permissions.database(shared.account, source_database),
                        permissions=DESCRIBE,
                    ),
                    gov.grant(scope, "Tables", principal=arn, resource=target, permissions=TABLE_READ),
                ]

    def _policy(
        self,
        name: str,
        *,
        config: PlatformConfig,
        zones: Sequence[str],
        write: bool,
        buckets: LakeBuckets,
        catalog: LakeCatalog,
        workgroup: athena.CfnWorkGroup,
        data_key: kms.IKey,
        roles: Sequence[str],
    ) -> iam.ManagedPolicy:
        """What the persona's roles need besides Lake Formation grants: Athena, catalog reads, results, keys."""
        stack = cdk.Stack.of(self)
        partition, region, account = stack.partition, stack.region, stack.account
        databases = [catalog.names[z] for z in zones]
        catalog_arns = [f"arn:{partition}:glue:{region}:{account}:catalog"]
        for database in databases:
            catalog_arns += [
                f"arn:{partition}:glue:{region}:{account}:database/{database}",
                f"arn:{partition}:glue:{region}:{account}:table/{database}/*",
            ]
        shared = config.data_lake.shared_from
        shared_arns = []
        if shared is not None:
            # The resource link here, and what it points to in the sharing account's catalog.
            source_database = naming.shared_database(config)
            shared_arns = [
                f"arn:{partition}:glue:{region}:{account}:database/{naming.shared_link(config)}",
                f"arn:{partition}:glue:{region}:{account}:table/{naming.shared_link(config)}/*",
                f"arn:{partition}:glue:{region}:{shared.account}:catalog",
                f"arn:{partition}:glue:{region}:{shared.account}:database/{source_database}",
                f"arn:{partition}:glue:{region}:{shared.account}:table/{source_database}/*",
            ]
        analytics = buckets.zones["analytics"]
        statements = [
            iam.PolicyStatement(
                sid="QueryInWorkgroup",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:StopQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:GetQueryResultsStream",
                    "athena:ListQueryExecutions",
                    "athena:GetWorkGroup",
                ],
                resources=[f"arn:{partition}:athena:{region}:{account}:workgroup/{workgroup.name}"],
            ),
            iam.PolicyStatement(
                sid="ReadCatalog",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetDatabases",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                    "glue:BatchGetPartition",
                ],
                resources=catalog_arns + shared_arns,
            ),
            # Lake Formation vends the S3 credentials of registered locations; no resource ARN exists.
            iam.PolicyStatement(sid="LakeFormationData", actions=["lakeformation:GetDataAccess"], resources=["*"]),
            iam.PolicyStatement(
                sid="QueryResults",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[analytics.arn_for_objects(f"{ATHENA_RESULTS}*")],
            ),
            iam.PolicyStatement(
                sid="ListResults",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[analytics.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="DataKey",
                actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[data_key.key_arn],
            ),
        ]
        if write:
            statements += [
                iam.PolicyStatement(
                    sid="WriteZones",
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    resources=[buckets.zones[z].arn_for_objects("*") for z in zones],
                ),
                iam.PolicyStatement(
                    sid="ListZones", actions=["s3:ListBucket"], resources=[buckets.zones[z].bucket_arn for z in zones]
                ),
                iam.PolicyStatement(
                    sid="ManageTables",
                    actions=["glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:BatchCreatePartition"],
                    resources=catalog_arns,
                ),
                iam.PolicyStatement(
                    sid="ClassifyColumns",
                    actions=[
                        "lakeformation:AddLFTagsToResource",
                        "lakeformation:RemoveLFTagsFromResource",
                        "lakeformation:GetResourceLFTags",
                        "lakeformation:ListLFTags",
                        "lakeformation:GetLFTag",
                    ],
                    resources=["*"],
                ),
            ]
        policy = iam.ManagedPolicy(
            self,
            f"{name}Policy",
            description=f"{name} access to the {config.prefix} data lake; Lake Formation grants the data itself",
            statements=statements,
        )
        for role in roles:
            # IAM role names are unique per account whatever their path.
            policy.attach_to_role(
                iam.Role.from_role_name(self, f"{name}{role.split('/')[-1]}Role", role.split("/")[-1])
            )
        wildcards = ["*", analytics.arn_for_objects(f"{ATHENA_RESULTS}*"), *catalog_arns[2::2]]
        wildcards += [arn for arn in shared_arns if arn.endswith("/*")]
        if write:
            wildcards += [buckets.zones[z].arn_for_objects("*") for z in zones]
        acknowledge_wildcards(
            policy,
            "Objects under the Athena results prefix and the zones the persona writes, the tables of "
            "its own databases and of the database shared with this lake (Lake Formation decides which "
            "it sees); Lake Formation data access and LF-Tag actions take no resource ARN.",
            resources=wildcards,
        )
        cdk.CfnOutput(
            self,
            f"{name}PolicyArn",
            value=policy.managed_policy_arn,
            description=f"Attach to {name} roles the stack does not manage (e.g. in an Identity Center permission set)",
        )
        return policy


class DataLakeStack(PlatformStack):
    """The stateful data lake: zones, governance, catalog, ETL, data quality and the Athena workgroup."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        data_key: kms.IKey,
        artifacts_key: kms.IKey,
        logs_key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        lake: DataLakeConfig = config.data_lake
        self.buckets = LakeBuckets(self, "Buckets", config=config, key=data_key, artifacts_key=artifacts_key)
        self.governance = LakeGovernance(self, "Governance", config=config, buckets=self.buckets, key=data_key)
        self.catalog = LakeCatalog(self, "Catalog", config=config, buckets=self.buckets, governance=self.governance)
        self.glue = GlueJobs(
            self,
            "Glue",
            config=config,
            buckets=self.buckets,
            governance=self.governance,
            catalog=self.catalog,
            data_key=data_key,
            logs_key=logs_key,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
        )
        self.workflow = EtlWorkflow(
            self, "Etl", config=config, jobs=self.glue, raw=self.buckets.zones["raw"], queue_key=logs_key
        )
        analytics = self.buckets.zones["analytics"]
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=f"{config.prefix}-lake",
            description=f"Queries over the {config.prefix} data lake; settings enforced on every query",
            state="ENABLED",
            recursive_delete_option=False,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=lake.athena.bytes_scanned_cutoff_mb * 1024 * 1024,
                requester_pays_enabled=False,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version="AUTO"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{analytics.bucket_name}/{ATHENA_RESULTS}",
                    expected_bucket_owner=self.account,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=data_key.key_arn
                    ),
                ),
            ),
        )
        # The promoted version's state, which the Serving stack's parameters resolve (it cannot own them).
        self.serving_state = ServingState(self, "ServingState", config=config) if config.serving else None
        # The serving roles of training.model_consumers read the pipeline's models and baselines.
        consumers = sagemaker_roles.consumer_grant(
            config,
            self.partition,
            sid="ServingAccountsReadModels",
            actions=["s3:GetObject"],
            resources=[self.buckets.artifacts.arn_for_objects(f"pipelines/{naming.training_pipeline(config)}/*")],
        )
        if consumers is not None:
            self.buckets.artifacts.add_to_resource_policy(consumers)
        # Named exports for the Training stack: its IAM policies name these buckets' object ARNs,
        # and the acknowledgments of their wildcards must name the same reference (see decisions).
        for bucket, kind in (
            (self.buckets.artifacts, "artifacts"),
            (self.buckets.zones["curated"], "curated"),
            (self.buckets.zones["raw"], "raw"),
        ):
            for attribute, value in (("arn", bucket.bucket_arn), ("name", bucket.bucket_name)):
                cdk.CfnOutput(
                    self,
                    f"{kind.capitalize()}Bucket{attribute.capitalize()}",
                    value=value,
                    export_name=export_name(config, f"{kind}-bucket-{attribute}"),
                )
        self.access = LakeAccess(
            self,
            "Access",
            config=config,
            buckets=self.buckets,
            governance=self.governance,
            catalog=self.catalog,
            workgroup=self.workgroup,
            data_key=data_key,
        )
