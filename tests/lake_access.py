"""Lake Formation tag-based access, evaluated from a synthesized template the way LF evaluates it.

Databases carry LF-Tags; tables inherit them; a column inherits its table's tags unless a tag
association on the column sets another value for the same key. A TABLE-type LF-Tag policy
grant matches a column when, for every key of its expression, the column's value is one of the
expression's values. This module answers "which columns of which table can this principal
SELECT" from the template alone, so tests state access rules, not resource shapes.
"""

from __future__ import annotations

from typing import Any

from tests.templates import Template, properties


def _tags(pairs: list[dict[str, Any]]) -> dict[str, str]:
    return {pair["TagKey"]: pair["TagValues"][0] for pair in pairs}


def database_tags(template: Template) -> dict[str, dict[str, str]]:
    """Database name -> {tag key: value}."""
    out: dict[str, dict[str, str]] = {}
    for assoc in properties(template, "AWS::LakeFormation::TagAssociation"):
        database = assoc["Resource"].get("Database")
        if database:
            out.setdefault(database["Name"], {}).update(_tags(assoc["LFTags"]))
    return out


def column_tags(template: Template) -> dict[tuple[str, str, str], dict[str, str]]:
    """(database, table, column) -> tags set on the column itself."""
    out: dict[tuple[str, str, str], dict[str, str]] = {}
    for assoc in properties(template, "AWS::LakeFormation::TagAssociation"):
        columns = assoc["Resource"].get("TableWithColumns")
        if columns:
            for column in columns["ColumnNames"]:
                key = (columns["DatabaseName"], columns["Name"], column)
                out.setdefault(key, {}).update(_tags(assoc["LFTags"]))
    return out


def tables(template: Template) -> dict[tuple[str, str], list[str]]:
    """(database, table) -> column names, for the tables the template defines."""
    return {
        (t["DatabaseName"], t["TableInput"]["Name"]): [
            c["Name"] for c in t["TableInput"]["StorageDescriptor"]["Columns"]
        ]
        for t in properties(template, "AWS::Glue::Table")
    }


def grants(template: Template, principal: Any) -> list[dict[str, Any]]:
    return [
        g
        for g in properties(template, "AWS::LakeFormation::PrincipalPermissions")
        if g["Principal"]["DataLakePrincipalIdentifier"] == principal
    ]


def selectable_columns(template: Template, principal: Any) -> dict[tuple[str, str], set[str]]:
    """(database, table) -> the columns `principal` may SELECT through LF-Tag policy grants."""
    db_tags, col_tags = database_tags(template), column_tags(template)
    policies = [
        {e["TagKey"]: set(e["TagValues"]) for e in g["Resource"]["LFTagPolicy"]["Expression"]}
        for g in grants(template, principal)
        if "LFTagPolicy" in g["Resource"]
        and g["Resource"]["LFTagPolicy"]["ResourceType"] == "TABLE"
        and "SELECT" in g["Permissions"]
    ]
    visible: dict[tuple[str, str], set[str]] = {}
    for (database, table), columns in tables(template).items():
        for column in columns:
            effective = {**db_tags.get(database, {}), **col_tags.get((database, table, column), {})}
            if any(all(effective.get(k) in values for k, values in p.items()) for p in policies):
                visible.setdefault((database, table), set()).add(column)
    return visible


def visible_databases(template: Template, principal: Any) -> set[str]:
    """Databases a DATABASE-type LF-Tag policy grant lets `principal` see."""
    db_tags = database_tags(template)
    policies = [
        {e["TagKey"]: set(e["TagValues"]) for e in g["Resource"]["LFTagPolicy"]["Expression"]}
        for g in grants(template, principal)
        if "LFTagPolicy" in g["Resource"] and g["Resource"]["LFTagPolicy"]["ResourceType"] == "DATABASE"
    ]
    return {
        name for name, tags in db_tags.items() if any(all(tags.get(k) in v for k, v in p.items()) for p in policies)
    }
