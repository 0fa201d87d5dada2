"""Who may use the lake: the personas' tag-based grants and IAM policies, and the cross-account shares."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lakeformation as lf
from constructs import Construct, IConstruct

from infra.catalog import naming
from infra.checks.compliance import acknowledge_wildcards
from infra.config import DataLakeConfig, PersonaConfig, PlatformConfig, SharedFrom, SharingConfig
from infra.constructs import lake_permissions
from infra.constructs.lake_permissions import DESCRIBE, GENERAL, SENSITIVE, TABLE_READ, PersonaAccess
from stacks.datalake.buckets import ATHENA_RESULTS
from stacks.datalake.governance import role_arn
from stacks.datalake.parts import LakeParts

# The Athena calls of a persona in the lake's workgroup.
QUERY_ACTIONS = (
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:GetQueryResultsStream",
    "athena:ListQueryExecutions",
    "athena:GetWorkGroup",
)
READ_CATALOG_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
)
# The LF-Tag calls of classifying columns (writers only).
CLASSIFY_ACTIONS = (
    "lakeformation:AddLFTagsToResource",
    "lakeformation:RemoveLFTagsFromResource",
    "lakeformation:GetResourceLFTags",
    "lakeformation:ListLFTags",
    "lakeformation:GetLFTag",
)


def persona_name(persona: str) -> str:
    """The construct name of a persona, e.g. data_engineer -> DataEngineer."""
    return "".join(part.capitalize() for part in persona.split("_"))


class LakeAccess(Construct):
    """Tag-based Lake Formation grants and IAM policies of the personas, and the cross-account share."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        lake: DataLakeConfig,
        parts: LakeParts,
        workgroup: athena.CfnWorkGroup,  # the workgroup the personas query in
        data_key: kms.IKey,  # the zones' key, which the personas' queries decrypt with
    ) -> None:
        super().__init__(scope, construct_id)
        self._config, self._lake, self._parts = config, lake, parts
        self.policies: dict[str, iam.ManagedPolicy] = {}
        for persona, access in lake_permissions.PERSONAS.items():
            settings = getattr(lake.personas, persona)
            if settings is None:
                continue
            self._persona_grants(persona, access, settings)
            self.policies[persona] = self._policy(
                persona_name(persona),
                zones=access.zones,
                write=access.write,
                workgroup=workgroup,
                data_key=data_key,
                roles=settings.roles if settings.attach_policy else [],
            )
        self.shared_link: glue.CfnDatabase | None = None
        if lake.shared_from is not None:
            personas_roles = {
                persona_name(persona): getattr(lake.personas, persona).roles
                for persona in lake_permissions.PERSONAS
                if getattr(lake.personas, persona) is not None
            }
            self._link_shared(lake.shared_from, personas_roles)
        self.shares: list[lf.CfnPrincipalPermissions] = []
        if lake.sharing:
            for account in lake.sharing.consumer_accounts:
                self._share(lake.sharing, account)

    def _persona_grants(self, persona: str, access: PersonaAccess, settings: PersonaConfig) -> None:
        """Each role of the persona: its tag-based grants; writers also their zones' locations and classifying."""
        gov, zones = self._parts.governance, self._parts.buckets.zones
        tags = list(gov.tags.values())
        persona_scope = Construct(self, persona_name(persona))
        for role in settings.roles:
            arn = role_arn(self, role)
            # Access/<Persona>/<role name>/...: CDK folds a repeated name out of the logical id.
            role_scope = Construct(persona_scope, role.split("/")[-1])
            for kind, expression, permissions in lake_permissions.persona_tag_grants(self._config, persona):
                gov.grant(
                    role_scope,
                    "Databases" if kind == "DATABASE" else "Tables",
                    principal=arn,
                    resource=gov.tag_policy(kind, expression),
                    permissions=permissions,
                    after=tags,
                )
            if not access.write:
                continue
            for zone in access.zones:
                gov.grant(
                    role_scope,
                    f"{zone.capitalize()}Location",
                    principal=arn,
                    resource=gov.location(zones[zone]),
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

    def _share(self, sharing: SharingConfig, account: str) -> None:
        """The shared database and its tables, grantable by the consumer account's administrators."""
        gov, catalog = self._parts.governance, self._parts.catalog
        zone, dataset = sharing.database, self._lake.dataset
        database = catalog.names[zone]
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
                    name=dataset.name,
                    column_wildcard=lf.CfnPrincipalPermissions.ColumnWildcardProperty(
                        excluded_column_names=dataset.sensitive_columns
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

    def _link_shared(self, shared: SharedFrom, personas: dict[str, list[str]]) -> None:
        """A resource link to the database another account shares, and read grants to the personas' roles."""
        config, gov = self._config, self._parts.governance
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
        zones: Sequence[str],
        write: bool,
        workgroup: athena.CfnWorkGroup,
        data_key: kms.IKey,
        roles: Sequence[str],
    ) -> iam.ManagedPolicy:
        """What the persona's roles need besides Lake Formation grants: Athena, catalog reads, results, keys."""
        zone_buckets = self._parts.buckets.zones
        catalog_arns = self._catalog_arns(zones)
        shared_arns = self._shared_arns()
        analytics = zone_buckets["analytics"]
        statements = self._read_statements(catalog_arns + shared_arns, workgroup, data_key)
        if write:
            statements += self._write_statements(zones, catalog_arns)
        policy = iam.ManagedPolicy(
            self,
            f"{name}Policy",
            description=f"{name} access to the {self._config.prefix} data lake; Lake Formation grants the data itself",
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
            wildcards += [zone_buckets[z].arn_for_objects("*") for z in zones]
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

    def _arn(self, service: str, resource: str, account: str | None = None) -> str:
        stack = cdk.Stack.of(self)
        return f"arn:{stack.partition}:{service}:{stack.region}:{account or stack.account}:{resource}"

    def _catalog_arns(self, zones: Sequence[str]) -> list[str]:
        """The catalog, and each zone's database and its tables."""
        arns = [self._arn("glue", "catalog")]
        for database in (self._parts.catalog.names[z] for z in zones):
            arns += [self._arn("glue", f"database/{database}"), self._arn("glue", f"table/{database}/*")]
        return arns

    def _shared_arns(self) -> list[str]:
        """The resource link here, and what it points to in the sharing account's catalog."""
        shared = self._lake.shared_from
        if shared is None:
            return []
        link, source = naming.shared_link(self._config), naming.shared_database(self._config)
        return [
            self._arn("glue", f"database/{link}"),
            self._arn("glue", f"table/{link}/*"),
            self._arn("glue", "catalog", shared.account),
            self._arn("glue", f"database/{source}", shared.account),
            self._arn("glue", f"table/{source}/*", shared.account),
        ]

    def _read_statements(
        self, catalog: list[str], workgroup: athena.CfnWorkGroup, data_key: kms.IKey
    ) -> list[iam.PolicyStatement]:
        """Every persona's: queries in the workgroup, reads of `catalog`, its results and the data key."""
        analytics = self._parts.buckets.zones["analytics"]
        return [
            iam.PolicyStatement(
                sid="QueryInWorkgroup",
                actions=list(QUERY_ACTIONS),
                resources=[self._arn("athena", f"workgroup/{workgroup.name}")],
            ),
            iam.PolicyStatement(sid="ReadCatalog", actions=list(READ_CATALOG_ACTIONS), resources=catalog),
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

    def _write_statements(self, zones: Sequence[str], catalog_arns: list[str]) -> list[iam.PolicyStatement]:
        """A writer's zones, tables and column classification."""
        buckets = self._parts.buckets.zones
        return [
            iam.PolicyStatement(
                sid="WriteZones",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                resources=[buckets[z].arn_for_objects("*") for z in zones],
            ),
            iam.PolicyStatement(
                sid="ListZones", actions=["s3:ListBucket"], resources=[buckets[z].bucket_arn for z in zones]
            ),
            iam.PolicyStatement(
                sid="ManageTables",
                actions=["glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:BatchCreatePartition"],
                resources=catalog_arns,
            ),
            iam.PolicyStatement(sid="ClassifyColumns", actions=list(CLASSIFY_ACTIONS), resources=["*"]),
        ]
