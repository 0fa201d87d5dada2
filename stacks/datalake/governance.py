"""Lake Formation governance: the settings, the registered zone locations, the LF-Tags and grant helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lakeformation as lf
from aws_cdk import aws_s3 as s3
from constructs import Construct, IConstruct

from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    KMS_GRANT_WILDCARDS,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
)
from infra.config import ZONES, DataLakeConfig, PlatformConfig
from infra.constructs import lake_permissions
from infra.constructs.lake_permissions import GENERAL, SENSITIVE
from infra.constructs.retention import retention
from stacks.datalake.buckets import LakeBuckets


def role_arn(scope: Construct, name: str) -> str:
    """ARN of a role of the deploying account from its name (with path), partition-agnostic."""
    return cdk.Stack.of(scope).format_arn(
        service="iam", region="", resource="role", resource_name=name, arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME
    )


class LakeGovernance(Construct):
    """Lake Formation settings, registered locations and the LF-Tags of the access model.

    Everything else in the stack that Lake Formation checks must come after `settings`: until
    they exist the deployment role is no data lake administrator. `after_settings` orders it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        lake: DataLakeConfig,
        buckets: LakeBuckets,
        key: kms.IKey,  # the zones' key, which Lake Formation's location role uses
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.catalog_id = stack.account
        synthesizer = stack.synthesizer
        assert isinstance(synthesizer, cdk.DefaultStackSynthesizer)
        # The role CloudFormation deploys with must administer the lake to create the rest.
        self.deployment_role = cdk.Fn.sub(synthesizer.cloud_formation_execution_role_arn)
        self.settings = self._settings(config, lake)
        self.location_role = self._location_role(buckets.zones, key)
        self.locations = self._locations(buckets.zones)
        self.zone_tag = lake_permissions.zone_tag(config)
        self.sensitivity_tag = lake_permissions.sensitivity_tag(config)
        self.tags = self._tags()

    def _settings(self, config: PlatformConfig, lake: DataLakeConfig) -> lf.CfnDataLakeSettings:
        admins = [self.deployment_role, *(role_arn(self, name) for name in lake.admins)]
        empty: list[lf.CfnDataLakeSettings.PrincipalPermissionsProperty] = []
        settings = lf.CfnDataLakeSettings(
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
        settings.apply_removal_policy(retention(config))
        return settings

    def _location_role(self, zones: dict[str, s3.Bucket], key: kms.IKey) -> iam.Role:
        # Lake Formation reads and writes registered locations with this role, not the
        # service-linked one, so the KMS key it needs is granted here, visibly. The trust is the
        # one Lake Formation documents; it names no source-account condition for this role.
        role = iam.Role(
            self,
            "LocationRole",
            assumed_by=iam.ServicePrincipal("lakeformation.amazonaws.com"),
            description="Lake Formation credential vending for the data lake zones",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects("*") for bucket in zones.values()],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[bucket.bucket_arn for bucket in zones.values()],
            )
        )
        key.grant_encrypt_decrypt(role)
        return role

    def _locations(self, zones: dict[str, s3.Bucket]) -> dict[str, lf.CfnResource]:
        """Each zone registered with Lake Formation, vended through the location role."""
        locations: dict[str, lf.CfnResource] = {}
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
            locations[zone] = location
        acknowledge_wildcards(
            self.location_role,
            "Lake Formation vends credentials for any object of a registered zone, so the role "
            "needs each zone bucket's objects; KMS action wildcards come from CDK's key grant.",
            actions=KMS_GRANT_WILDCARDS,
            resources=[bucket.arn_for_objects("*") for bucket in zones.values()],
        )
        acknowledge(self.location_role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        return locations

    def _tags(self) -> dict[str, lf.CfnTag]:
        """The zone and sensitivity LF-Tags, with the values the access model uses."""
        tags: dict[str, lf.CfnTag] = {}
        for tag_key, values in ((self.zone_tag, list(ZONES)), (self.sensitivity_tag, [GENERAL, SENSITIVE])):
            construct_id = tag_key.split(":")[1].capitalize() + "Tag"
            tag = lf.CfnTag(self, construct_id, catalog_id=self.catalog_id, tag_key=tag_key, tag_values=values)
            self.after_settings(tag)
            tags[tag_key] = tag
        return tags

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

    def tag_policy(self, resource_type: str, expression: Mapping[str, Sequence[str]]) -> lake_permissions.Resource:
        return lake_permissions.tag_policy(self.catalog_id, resource_type, dict(expression))

    def tag_key(self, key: str, values: Sequence[str]) -> lake_permissions.Resource:
        return lake_permissions.tag_key(self.catalog_id, key, values)
