"""Lake Formation grants: permission sets, the personas' tag-based access, and the shapes of grant resources."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_lakeformation as lf
from constructs import Construct

from infra.config import PlatformConfig

# Permission sets, named for what they let a principal do.
DB_WRITE = ["CREATE_TABLE", "ALTER", "DESCRIBE"]
TABLE_WRITE = ["SELECT", "INSERT", "DELETE", "ALTER", "DESCRIBE"]
TABLE_READ = ["SELECT", "DESCRIBE"]
DESCRIBE = ["DESCRIBE"]
# Values of the sensitivity LF-Tag: columns tagged sensitive are hidden from readers.
GENERAL, SENSITIVE = "general", "sensitive"

Resource = lf.CfnPrincipalPermissions.ResourceProperty


def zone_tag(config: PlatformConfig) -> str:
    # LF-Tag keys are catalog-wide: the environment prefix keeps two environments of one account
    # from fighting over the same key.
    return f"{config.prefix}:zone"


def sensitivity_tag(config: PlatformConfig) -> str:
    return f"{config.prefix}:sensitivity"


@dataclass(frozen=True)
class PersonaAccess:
    """The zones a persona works in, and whether it writes there (readers see `general` columns only)."""

    zones: tuple[str, ...]
    write: bool


PERSONAS = {
    "data_engineer": PersonaAccess(zones=("raw", "curated"), write=True),
    "data_scientist": PersonaAccess(zones=("curated", "analytics"), write=False),
}


def persona_tag_grants(config: PlatformConfig, persona: str) -> list[tuple[str, dict[str, list[str]], list[str]]]:
    """(resource type, LF-Tag expression, permissions) of a persona's DATABASE and TABLE grants."""
    access = PERSONAS[persona]
    zones = {zone_tag(config): list(access.zones)}
    if access.write:
        return [("DATABASE", zones, DB_WRITE), ("TABLE", zones, TABLE_WRITE)]
    # Readers match only `general` columns: columns tagged sensitive drop out of SELECT.
    readable = {**zones, sensitivity_tag(config): [GENERAL]}
    return [("DATABASE", zones, DESCRIBE), ("TABLE", readable, TABLE_READ)]


def grant(
    scope: Construct,
    construct_id: str,
    *,
    catalog_id: str,
    principal: str,
    resource: Resource,
    permissions: Sequence[str],
    grantable: bool = False,
) -> lf.CfnPrincipalPermissions:
    """One Lake Formation grant (its ordering is the caller's business)."""
    return lf.CfnPrincipalPermissions(
        scope,
        construct_id,
        catalog=catalog_id,
        principal=lf.CfnPrincipalPermissions.DataLakePrincipalProperty(data_lake_principal_identifier=principal),
        resource=resource,
        permissions=list(permissions),
        permissions_with_grant_option=list(permissions) if grantable else [],
    )


# Resource shapes of the grants.
def database(catalog_id: str, name: str) -> Resource:
    return Resource(database=lf.CfnPrincipalPermissions.DatabaseResourceProperty(catalog_id=catalog_id, name=name))


def table(catalog_id: str, database_name: str, name: str | None = None) -> Resource:
    return Resource(
        table=lf.CfnPrincipalPermissions.TableResourceProperty(
            catalog_id=catalog_id, database_name=database_name, name=name, table_wildcard=None if name else {}
        )
    )


def location(catalog_id: str, bucket_arn: str) -> Resource:
    return Resource(
        data_location=lf.CfnPrincipalPermissions.DataLocationResourceProperty(
            catalog_id=catalog_id, resource_arn=bucket_arn
        )
    )


def tag_policy(catalog_id: str, resource_type: str, expression: dict[str, Sequence[str]]) -> Resource:
    return Resource(
        lf_tag_policy=lf.CfnPrincipalPermissions.LFTagPolicyResourceProperty(
            catalog_id=catalog_id,
            resource_type=resource_type,
            expression=[
                lf.CfnPrincipalPermissions.LFTagProperty(tag_key=k, tag_values=list(v)) for k, v in expression.items()
            ],
        )
    )


def tag_key(catalog_id: str, key: str, values: Sequence[str]) -> Resource:
    return Resource(
        lf_tag=lf.CfnPrincipalPermissions.LFTagKeyResourceProperty(
            catalog_id=catalog_id, tag_key=key, tag_values=list(values)
        )
    )
