"""The Glue catalog: a database per zone, the curated table with its column tags, and its data quality ruleset."""

from __future__ import annotations

from aws_cdk import aws_glue as glue
from aws_cdk import aws_lakeformation as lf
from constructs import Construct

from infra.catalog.naming import glue_database
from infra.config import PARTITION_COLUMN, ZONES, DataLakeConfig, DatasetConfig, PlatformConfig
from infra.constructs.lake_permissions import GENERAL, SENSITIVE
from infra.constructs.quality import ruleset
from infra.constructs.retention import retention
from stacks.datalake.buckets import LakeBuckets
from stacks.datalake.governance import LakeGovernance


class LakeCatalog(Construct):
    """Glue databases per zone, the curated table with its column tags, and its data quality ruleset."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        lake: DataLakeConfig,
        buckets: LakeBuckets,
        governance: LakeGovernance,
    ) -> None:
        super().__init__(scope, construct_id)
        self._governance = governance
        dataset = lake.dataset
        self.databases: dict[str, glue.CfnDatabase] = {}
        self.names: dict[str, str] = {}
        for zone in ZONES:
            self.names[zone] = glue_database(config, zone)
            self.databases[zone] = self._database(config, zone, f"s3://{buckets.zones[zone].bucket_name}/")
        self.table_location = f"s3://{buckets.zones['curated'].bucket_name}/{dataset.name}/"
        self.table = self._curated_table(config, dataset)
        self.column_tags = self._sensitive_columns(dataset) if dataset.sensitive_columns else None
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

    def _database(self, config: PlatformConfig, zone: str, location: str) -> glue.CfnDatabase:
        """The zone's database, tagged with its zone and its sensitivity."""
        gov, name = self._governance, self.names[zone]
        database = glue.CfnDatabase(
            self,
            zone.capitalize(),
            catalog_id=gov.catalog_id,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=name,
                description=f"{zone} zone of the {config.prefix} data lake",
                location_uri=location,
                # Tables created here get no IAM_ALLOWED_PRINCIPALS grant, whatever the account default.
                create_table_default_permissions=[],
            ),
        )
        database.apply_removal_policy(retention(config))
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
        return database

    def _curated_table(self, config: PlatformConfig, dataset: DatasetConfig) -> glue.CfnTable:
        """The dataset's typed, partitioned Parquet table, which the ETL job fills."""
        table = glue.CfnTable(
            self,
            "CuratedTable",
            catalog_id=self._governance.catalog_id,
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
        table.apply_removal_policy(retention(config))
        table.node.add_dependency(self.databases["curated"])
        self._governance.after_settings(table)
        return table

    def _sensitive_columns(self, dataset: DatasetConfig) -> lf.CfnTagAssociation:
        # Column tags override the table's inherited `general`: tag-based readers lose these columns.
        gov = self._governance
        column_tags = lf.CfnTagAssociation(
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
        column_tags.node.add_dependency(self.table, *gov.tags.values())
        return column_tags
