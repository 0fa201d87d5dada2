"""The feature store: a feature group of the dataset, offline store in the curated zone's catalog."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lakeformation as lf
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.catalog.naming import glue_database
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    KMS_GRANT_WILDCARDS,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import DatasetConfig, FeatureStoreConfig, PlatformConfig, TrainingConfig
from infra.constructs import lake_permissions
from infra.constructs.retention import retention

# Feature Store types of the dataset's column types.
FEATURE_TYPES = {
    "int": "Integral", "bigint": "Integral", "boolean": "Integral",
    "double": "Fractional", "float": "Fractional",
    "string": "String", "date": "String", "timestamp": "String",
}  # fmt: skip
# The offline store's prefix in the curated zone.
PREFIX = "feature-store"


class FeatureStore(Construct):
    """A feature group of the dataset: KMS-encrypted online store, offline store in the curated zone's catalog."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        training: TrainingConfig,  # the model's features and target are the group's features
        store: FeatureStoreConfig,
        dataset: DatasetConfig,
        curated: s3.IBucket,  # the curated zone, which holds the offline store
        data_key: kms.IKey,  # encrypts both stores
    ) -> None:
        super().__init__(scope, construct_id)
        database = glue_database(config, "curated")
        self.role = self._role(curated.bucket_arn, database, data_key)
        grants = self._lake_grants(curated.bucket_arn, database)
        columns = {c.name: c for c in dataset.columns}
        names = [dataset.key_columns[0], store.event_time_column, *training.features, training.target]
        self.group = cdk.CfnResource(
            self,
            "Group",
            type="AWS::SageMaker::FeatureGroup",
            properties={
                "FeatureGroupName": f"{config.prefix}-{dataset.name}".replace("_", "-"),
                "Description": f"Model features of {dataset.name}, from the curated zone",
                "RecordIdentifierFeatureName": names[0],
                "EventTimeFeatureName": store.event_time_column,
                "FeatureDefinitions": [
                    {"FeatureName": name, "FeatureType": FEATURE_TYPES[columns[name].type]} for name in names
                ],
                "OnlineStoreConfig": {
                    "EnableOnlineStore": store.online,
                    "SecurityConfig": {"KmsKeyId": data_key.key_arn},
                }
                if store.online
                else {"EnableOnlineStore": False},
                "OfflineStoreConfig": {
                    "S3StorageConfig": {"S3Uri": f"s3://{curated.bucket_name}/{PREFIX}", "KmsKeyId": data_key.key_arn},
                    "DataCatalogConfig": {
                        "Catalog": "AwsDataCatalog",
                        "Database": database,
                        "TableName": f"{dataset.name}_features",
                    },
                    "DisableGlueTableCreation": False,
                },
                "RoleArn": self.role.role_arn,
            },
        )
        # Features and their history are data: kept unless the config allows destroying it.
        self.group.apply_removal_policy(retention(config))
        self.group.node.add_dependency(self.role.node.find_child("DefaultPolicy"), *grants)

    def _lake_grants(self, curated_arn: str, database: str) -> list[lf.CfnPrincipalPermissions]:
        """The curated database is governed by Lake Formation: the role needs its grants too."""
        account = cdk.Stack.of(self).account
        return [
            lake_permissions.grant(
                self,
                grant_id,
                catalog_id=account,
                principal=self.role.role_arn,
                resource=resource,
                permissions=permissions,
            )
            for grant_id, resource, permissions in (
                ("Location", lake_permissions.location(account, curated_arn), ["DATA_LOCATION_ACCESS"]),
                ("Database", lake_permissions.database(account, database), ["CREATE_TABLE", "DESCRIBE"]),
            )
        ]

    def _role(self, curated_arn: str, database: str, data_key: kms.IKey) -> iam.Role:
        """The role Feature Store writes the offline store and registers its table with."""
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "Role",
            assumed_by=service_principal("sagemaker.amazonaws.com", stack.account),
            description="Feature Store writing the offline store into the curated zone",
        )
        objects = f"{curated_arn}/{PREFIX}/*"
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject", "s3:GetObject"], resources=[objects]))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetBucketAcl"], resources=[curated_arn]))
        catalog = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetDatabase"],
                resources=[f"{catalog}:catalog", f"{catalog}:database/{database}", f"{catalog}:table/{database}/*"],
            )
        )
        data_key.grant_encrypt_decrypt(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Feature Store writes objects it names itself under the feature-store prefix and registers "
            "its own table in the curated database; KMS action families come from CDK's key grant.",
            actions=KMS_GRANT_WILDCARDS,
            resources=[objects, f"{catalog}:table/{database}/*"],
        )
        return role
