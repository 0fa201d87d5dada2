"""Glue: the VPC connection and security configuration, the raw and curated crawlers, and the ETL job."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lakeformation as lf
from aws_cdk import aws_s3_assets as assets
from constructs import Construct

from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    KMS_GRANT_WILDCARDS,
    acknowledge,
    acknowledge_wildcards,
    checkov_skip_policies,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import PARTITION_COLUMN, DataLakeConfig, PlatformConfig
from infra.constructs.lake_permissions import DB_WRITE
from infra.constructs.placement import Placement
from stacks.datalake.inputs import DataLakeInputs
from stacks.datalake.parts import LakeParts

ETL_SCRIPT = Path(__file__).resolve().parents[2] / "etl" / "raw_to_curated.py"
READ_CATALOG = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
)
WRITE_PARTITIONS = (
    "glue:UpdateTable",
    "glue:BatchGetPartition",
    "glue:CreatePartition",
    "glue:BatchCreatePartition",
    "glue:UpdatePartition",
    "glue:BatchUpdatePartition",
)
# Glue workers create ENIs in the VPC; EC2's describe calls support no resource-level permissions.
ENI_ACTIONS = (
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
)


class GlueJobs(Construct):
    """The VPC connection, security configuration, crawlers and the raw -> curated ETL job."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        lake: DataLakeConfig,
        parts: LakeParts,
        inputs: DataLakeInputs,
    ) -> None:
        super().__init__(scope, construct_id)
        self._lake, self._parts, self._inputs = lake, parts, inputs
        self.connection_name = f"{config.prefix}-lake-vpc"
        self.security_configuration_name = f"{config.prefix}-lake"
        self.connection = self._vpc_connection(inputs.placement)
        self.security_configuration = self._encryption()
        self._raw_crawler()
        self._curated_crawler()
        self._etl_job()
        parts.governance.after_settings(self.raw_crawler, self.curated_crawler, self.job)

    def _arn(self, service: str, resource: str) -> str:
        stack = cdk.Stack.of(self)
        return f"arn:{stack.partition}:{service}:{stack.region}:{stack.account}:{resource}"

    def _vpc_connection(self, placement: Placement) -> glue.CfnConnection:
        # Glue workers get their ENIs in the platform's private subnets, so crawlers and jobs
        # reach S3 and AWS APIs only through the VPC endpoints.
        subnet = placement.vpc.select_subnets(subnet_type=placement.subnets.subnet_type).subnets[0]
        return glue.CfnConnection(
            self,
            "VpcConnection",
            catalog_id=self._parts.governance.catalog_id,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                name=self.connection_name,
                description="Private subnet and security group of the data lake's Glue jobs and crawlers",
                connection_type="NETWORK",
                # The Glue API requires the map even when a NETWORK connection has no properties.
                connection_properties={},
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    subnet_id=subnet.subnet_id,
                    availability_zone=subnet.availability_zone,
                    security_group_id_list=[placement.security_group.security_group_id],
                ),
            ),
        )

    def _encryption(self) -> glue.CfnSecurityConfiguration:
        """Glue's outputs, bookmarks and logs encrypted with the platform keys."""
        data_key, logs_key = self._inputs.data_key, self._inputs.logs_key
        return glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=self.security_configuration_name,
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

    def _role(
        self,
        name: str,
        description: str,
        *,
        log_prefix: str,
        database: str,
        catalog_actions: Sequence[str],
        object_wildcards: Sequence[str] = (),
    ) -> iam.Role:
        """A Glue service role: logs, keys, VPC ENIs, Lake Formation data access, one database."""
        log_groups = self._arn("logs", f"log-group:/aws-glue/{log_prefix}*")
        tables = self._arn("glue", f"table/{database}/*")
        role = iam.Role(
            self,
            name,
            assumed_by=service_principal("glue.amazonaws.com", cdk.Stack.of(self).account),
            description=description,
        )
        # Logs of Glue runs, encrypted with the logs key through the security configuration.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
                resources=[log_groups],
            )
        )
        self._inputs.logs_key.grant_encrypt_decrypt(role)
        self._inputs.data_key.grant_encrypt_decrypt(role)
        role.add_to_policy(iam.PolicyStatement(actions=list(ENI_ACTIONS), resources=["*"]))
        checkov_skip_policies(
            role,
            "Glue creates and deletes the network interfaces of each crawler or job run in the VPC with "
            "this role; they are created per run, and AWS's managed policy for Glue (AWSGlueServiceRole) grants "
            "these actions on * too.",
            "CKV_AWS_111",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetConnection"],
                resources=[self._arn("glue", "catalog"), self._arn("glue", f"connection/{self.connection_name}")],
            )
        )
        # Lake Formation vends S3 credentials for registered locations; neither this action nor reading
        # the run's security configuration takes a resource (granted on an ARN, never granted).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["lakeformation:GetDataAccess", "glue:GetSecurityConfiguration"], resources=["*"]
            )
        )
        # Catalog actions on one database and its tables, whose names the crawlers/job choose.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=list(catalog_actions),
                resources=[self._arn("glue", "catalog"), self._arn("glue", f"database/{database}"), tables],
            )
        )
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Only where nothing narrower exists: EC2 ENI calls, lakeformation:GetDataAccess and "
            "glue:GetSecurityConfiguration take no resource ARN; Glue names its log streams and the "
            "tables it discovers at run time; KMS action families come from CDK's grants on the two "
            "platform keys.",
            actions=KMS_GRANT_WILDCARDS,
            resources=["*", log_groups, tables, *object_wildcards],
        )
        return role

    def _curated_writer(self, name: str, role: iam.Role) -> list[lf.CfnPrincipalPermissions]:
        """Lake Formation rights to add partitions to the curated table: its location and the table."""
        gov, catalog = self._parts.governance, self._parts.catalog
        return [
            gov.grant(
                self,
                f"{name}Location",
                principal=role.role_arn,
                resource=gov.location(self._parts.buckets.zones["curated"]),
                permissions=["DATA_LOCATION_ACCESS"],
                after=[gov.locations["curated"]],
            ),
            gov.grant(
                self,
                f"{name}Table",
                principal=role.role_arn,
                resource=gov.table(catalog.names["curated"], self._lake.dataset.name),
                permissions=["SELECT", "INSERT", "ALTER", "DESCRIBE"],
                after=[catalog.table],
            ),
        ]

    def _raw_crawler(self) -> None:
        """Discovers the raw files' schema into the raw database, with Lake Formation credentials for raw only."""
        gov, catalog, raw = self._parts.governance, self._parts.catalog, self._parts.buckets.zones["raw"]
        dataset, database = self._lake.dataset, catalog.names["raw"]
        self.raw_crawler_role = self._role(
            "RawCrawlerRole",
            "Crawler of the raw zone",
            log_prefix="crawlers",
            database=database,
            catalog_actions=[*READ_CATALOG, "glue:CreateTable", *WRITE_PARTITIONS],
        )
        grants = [
            gov.grant(
                self,
                "RawCrawlerLocation",
                principal=self.raw_crawler_role.role_arn,
                resource=gov.location(raw),
                permissions=["DATA_LOCATION_ACCESS"],
                after=[gov.locations["raw"]],
            ),
            gov.grant(
                self,
                "RawCrawlerDatabase",
                principal=self.raw_crawler_role.role_arn,
                resource=gov.database(database),
                permissions=DB_WRITE,
                after=[catalog.databases["raw"]],
            ),
        ]
        self.raw_crawler = glue.CfnCrawler(
            self,
            "RawCrawler",
            role=self.raw_crawler_role.role_arn,
            database_name=database,
            description=f"Schema discovery of raw {dataset.name} files",
            targets=glue.CfnCrawler.TargetsProperty(
                s3_targets=[
                    glue.CfnCrawler.S3TargetProperty(
                        path=f"s3://{raw.bucket_name}/{dataset.name}/", connection_name=self.connection_name
                    )
                ]
            ),
            lake_formation_configuration=self._lake_formation_credentials(),
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="UPDATE_IN_DATABASE", delete_behavior="LOG"
            ),
            crawler_security_configuration=self.security_configuration_name,
            configuration=json.dumps(
                {
                    "Version": 1.0,
                    "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas"},
                    "CreatePartitionIndex": True,
                }
            ),
        )
        self.raw_crawler.node.add_dependency(*grants, self.connection, self.security_configuration)

    def _curated_crawler(self) -> None:
        """Adds new partitions to the governed curated table, never changes its schema."""
        dataset, database = self._lake.dataset, self._parts.catalog.names["curated"]
        self.curated_crawler_role = self._role(
            "CuratedCrawlerRole",
            "Crawler of the curated zone",
            log_prefix="crawlers",
            database=database,
            catalog_actions=[*READ_CATALOG, *WRITE_PARTITIONS],
        )
        grants = self._curated_writer("CuratedCrawler", self.curated_crawler_role)
        self.curated_crawler = glue.CfnCrawler(
            self,
            "CuratedCrawler",
            role=self.curated_crawler_role.role_arn,
            description=f"Partitions of the curated {dataset.name} table",
            targets=glue.CfnCrawler.TargetsProperty(
                catalog_targets=[
                    glue.CfnCrawler.CatalogTargetProperty(
                        database_name=database, tables=[dataset.name], connection_name=self.connection_name
                    )
                ]
            ),
            lake_formation_configuration=self._lake_formation_credentials(),
            # Catalog targets must only log deletions; LOG on updates keeps the governed schema.
            schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                update_behavior="LOG", delete_behavior="LOG"
            ),
            crawler_security_configuration=self.security_configuration_name,
            configuration=json.dumps(
                {"Version": 1.0, "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}}}
            ),
        )
        self.curated_crawler.node.add_dependency(*grants, self.connection, self.security_configuration)

    def _lake_formation_credentials(self) -> glue.CfnCrawler.LakeFormationConfigurationProperty:
        return glue.CfnCrawler.LakeFormationConfigurationProperty(
            use_lake_formation_credentials=True, account_id=cdk.Stack.of(self).account
        )

    def _etl_job(self) -> None:
        """Reads raw files (bookmarks remember which) and writes the typed curated table."""
        script = assets.Asset(self, "EtlScript", path=str(ETL_SCRIPT))
        self.job_role = self._etl_job_role(script)
        grants = self._curated_writer("EtlJob", self.job_role)
        dataset, etl, catalog = self._lake.dataset, self._lake.etl, self._parts.catalog
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
            connections=glue.CfnJob.ConnectionsListProperty(connections=[self.connection_name]),
            security_configuration=self.security_configuration_name,
            default_arguments={
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-enable",
                "--enable-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-glue-datacatalog": "true",
                "--raw_path": f"s3://{self._parts.buckets.zones['raw'].bucket_name}/{dataset.name}/",
                "--raw_format": dataset.raw_format,
                "--curated_database": catalog.names["curated"],
                "--curated_table": dataset.name,
                "--curated_path": catalog.table_location,
                "--schema": json.dumps([{"name": c.name, "type": c.type} for c in dataset.columns]),
                "--key_columns": ",".join(dataset.key_columns),
                "--partition_column": PARTITION_COLUMN,
            },
        )
        self.job.node.add_dependency(*grants, self.connection, self.security_configuration)

    def _etl_job_role(self, script: assets.Asset) -> iam.Role:
        """Exactly the script object, the dataset's raw files, and its curated prefix."""
        dataset, zones = self._lake.dataset, self._parts.buckets.zones
        raw_objects = zones["raw"].arn_for_objects(f"{dataset.name}/*")
        curated_objects = zones["curated"].arn_for_objects(f"{dataset.name}/*")
        role = self._role(
            "EtlJobRole",
            f"ETL job raw -> curated {dataset.name}",
            log_prefix="jobs",
            database=self._parts.catalog.names["curated"],
            catalog_actions=[*READ_CATALOG, *WRITE_PARTITIONS],
            object_wildcards=[raw_objects, curated_objects],
        )
        partition = cdk.Stack.of(self).partition
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"arn:{partition}:s3:::{script.s3_bucket_name}/{script.s3_object_key}", raw_objects],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:DeleteObject"], resources=[curated_objects])
        )
        # `--enable-metrics`: job metrics go to the Glue namespace only; PutMetricData has no resource ARN.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[zones["raw"].bucket_arn, zones["curated"].bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{dataset.name}/*", dataset.name]}},
            )
        )
        return role
