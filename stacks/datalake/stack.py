"""The DataLake stack: composes the buckets, governance, catalog, Glue jobs, ETL workflow, Athena and access."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.catalog import monitors, naming
from infra.catalog.naming import export_name
from infra.config import DataLakeConfig, PlatformConfig, ServingConfig
from infra.constructs import sagemaker_roles
from infra.constructs.serving_state import ServingState
from stacks.base import PlatformStack
from stacks.datalake.access import LakeAccess
from stacks.datalake.buckets import ATHENA_RESULTS, LakeBuckets
from stacks.datalake.catalog import LakeCatalog
from stacks.datalake.glue_jobs import GlueJobs
from stacks.datalake.governance import LakeGovernance
from stacks.datalake.inputs import DataLakeInputs
from stacks.datalake.parts import LakeParts
from stacks.datalake.workflow import EtlWorkflow


class DataLakeStack(PlatformStack):
    """The stateful data lake: zones, governance, catalog, ETL, data quality and the Athena workgroup."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        data_lake: DataLakeConfig,
        serving: ServingConfig | None,  # with serving, the lake also holds the promoted version's state
        inputs: DataLakeInputs,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        lake, data_key = data_lake, inputs.data_key
        self.buckets = LakeBuckets(
            self, "Buckets", config=config, lake=lake, key=data_key, artifacts_key=inputs.artifacts_key
        )
        self.governance = LakeGovernance(
            self, "Governance", config=config, lake=lake, buckets=self.buckets, key=data_key
        )
        self.catalog = LakeCatalog(
            self, "Catalog", config=config, lake=lake, buckets=self.buckets, governance=self.governance
        )
        parts = LakeParts(buckets=self.buckets, governance=self.governance, catalog=self.catalog)
        self.glue = GlueJobs(self, "Glue", config=config, lake=lake, parts=parts, inputs=inputs)
        self.workflow = EtlWorkflow(
            self,
            "Etl",
            config=config,
            lake=lake,
            jobs=self.glue,
            raw=self.buckets.zones["raw"],
            queue_key=inputs.logs_key,
        )
        self.workgroup = self._workgroup(config, lake, data_key)
        # The promoted version's state, which the Serving stack's parameters resolve (it cannot own them).
        self.serving_state = ServingState(self, "ServingState", config=config) if serving is not None else None
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
        # Their monitor jobs read the baselines as S3Prefix inputs, which SageMaker lists first.
        listing = sagemaker_roles.consumer_grant(
            config,
            self.partition,
            sid="ServingMonitorsListBaselines",
            actions=["s3:ListBucket"],
            resources=[self.buckets.artifacts.bucket_arn],
            kinds=(monitors.SHARED_ROLE,),
            StringLike={"s3:prefix": f"pipelines/{naming.training_pipeline(config)}/*"},
        )
        if listing is not None:
            self.buckets.artifacts.add_to_resource_policy(listing)
        self._export_buckets(config)
        self.access = LakeAccess(
            self, "Access", config=config, lake=lake, parts=parts, workgroup=self.workgroup, data_key=data_key
        )

    def _workgroup(self, config: PlatformConfig, lake: DataLakeConfig, data_key: kms.IKey) -> athena.CfnWorkGroup:
        """The Athena workgroup: results encrypted in the analytics zone, a scan limit per query, enforced."""
        analytics = self.buckets.zones["analytics"]
        return athena.CfnWorkGroup(
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

    def _export_buckets(self, config: PlatformConfig) -> None:
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
