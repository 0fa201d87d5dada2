"""The lake's S3 buckets: one per zone, the ML artifacts bucket and their access-log bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ZONES, DataLakeConfig, PlatformConfig
from infra.constructs.buckets import AccessLogsBucket, EncryptedBucket, lifecycle_rules

# Where Athena writes query results, in the analytics zone.
ATHENA_RESULTS = "athena-results/"


class LakeBuckets(Construct):
    """The raw, curated and analytics zones, the ML artifacts bucket, and their server-access-log bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        lake: DataLakeConfig,
        key: kms.IKey,  # encrypts the zones
        artifacts_key: kms.IKey,  # encrypts the artifacts bucket
    ) -> None:
        super().__init__(scope, construct_id)
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
