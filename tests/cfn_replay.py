"""Replays a synthesized template's Glue and Lake Formation resources as API calls against moto.

CloudFormation's resource properties for these services are the API's request shapes, so a
replay through boto3 checks them against botocore's service model (client-side validation)
and lets tests read the resulting state back through the real API, as a deployment would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"


class Resolver:
    """Turns CloudFormation intrinsics into the strings a deployment in ACCOUNT/REGION would see."""

    def __init__(self, template: dict[str, Any], stack_name: str) -> None:
        self.resources = template["Resources"]
        self.stack_name = stack_name.lower()

    def ref(self, name: str) -> str:
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION}
        if name in pseudo:
            return pseudo[name]
        kind = self.resources[name]["Type"]
        if kind == "AWS::S3::Bucket":
            return f"{self.stack_name}-{name.lower()}"[:63]
        if kind == "AWS::Glue::Job":
            return name
        if kind == "AWS::Glue::Database":
            return self.resources[name]["Properties"]["DatabaseInput"]["Name"]
        if kind == "AWS::Glue::Workflow":
            return self.resources[name]["Properties"]["Name"]
        return name

    def attribute(self, name: str, attribute: str) -> str:
        kind = self.resources[name]["Type"]
        if attribute == "Arn" and kind == "AWS::S3::Bucket":
            return f"arn:{PARTITION}:s3:::{self.ref(name)}"
        if attribute == "Arn" and kind == "AWS::IAM::Role":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"
        raise KeyError(f"no replay for {name}.{attribute}")

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), *_ = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                return self.attribute(*argument)
            if function == "Fn::Join":
                return argument[0].join(self(part) for part in argument[1])
            if function == "Fn::Select":
                return self(argument[1])[int(argument[0])]
            if function == "Fn::GetAZs":
                return [f"{REGION}{letter}" for letter in "abc"]
            if function == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), argument)
            if function == "Fn::GetStackOutput":
                return _imported(argument["OutputName"])
        return {k: self(v) for k, v in value.items()}

    def _sub(self, name: str) -> str:
        if "." in name:
            return self.attribute(*name.split(".", 1))
        return self.ref(name)


def _imported(output: str) -> str:
    """A plausible value for another stack's output, from the output's name."""
    if "Key" in output:
        return f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{output[-12:].lower()}"
    if "Subnet" in output:
        return "subnet-0123456789abcdef0"
    if "SecurityGroup" in output:
        return "sg-0123456789abcdef0"
    return output


def _settings(client, p: dict[str, Any], _id: str) -> None:
    client("lakeformation").put_data_lake_settings(
        DataLakeSettings={
            "DataLakeAdmins": p.get("Admins", []),
            "CreateDatabaseDefaultPermissions": p.get("CreateDatabaseDefaultPermissions", []),
            "CreateTableDefaultPermissions": p.get("CreateTableDefaultPermissions", []),
            **({"Parameters": p["Parameters"]} if "Parameters" in p else {}),
        }
    )


def _security_configuration(client, p: dict[str, Any], _id: str) -> None:
    # The one property whose CloudFormation name differs from the API's (S3Encryptions).
    encryption = dict(p["EncryptionConfiguration"])
    encryption["S3Encryption"] = encryption.pop("S3Encryptions")
    client("glue").create_security_configuration(Name=p["Name"], EncryptionConfiguration=encryption)


def _without(p: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k not in keys}


# Resource type -> how to create it through the API (in this order, which respects DependsOn).
CALLS: dict[str, Callable[[Callable[[str], Any], dict[str, Any], str], Any]] = {
    "AWS::LakeFormation::DataLakeSettings": _settings,
    "AWS::LakeFormation::Tag": lambda c, p, _: c("lakeformation").create_lf_tag(**p),
    "AWS::LakeFormation::Resource": lambda c, p, _: c("lakeformation").register_resource(**p),
    "AWS::Glue::Database": lambda c, p, _: c("glue").create_database(**p),
    "AWS::Glue::Table": lambda c, p, _: c("glue").create_table(**p),
    "AWS::LakeFormation::TagAssociation": lambda c, p, _: c("lakeformation").add_lf_tags_to_resource(**p),
    "AWS::Glue::Connection": lambda c, p, _: c("glue").create_connection(**p),
    "AWS::Glue::SecurityConfiguration": _security_configuration,
    "AWS::LakeFormation::PrincipalPermissions": lambda c, p, _: c("lakeformation").grant_permissions(
        CatalogId=p["Catalog"], **_without(p, "Catalog")
    ),
    "AWS::Glue::Crawler": lambda c, p, i: c("glue").create_crawler(Name=i, **p),
    "AWS::Glue::Job": lambda c, p, i: c("glue").create_job(Name=i, **p),
    "AWS::Glue::Workflow": lambda c, p, _: c("glue").create_workflow(**p),
    "AWS::Glue::Trigger": lambda c, p, i: c("glue").create_trigger(
        Name=i, StartOnCreation=p.get("StartOnCreation", False), **_without(p, "StartOnCreation")
    ),
}


def replay(template: dict[str, Any], stack_name: str, client: Callable[[str], Any]) -> dict[str, list[str]]:
    """Create every resource of the types in CALLS; return the logical ids created per type."""
    resolve = Resolver(template, stack_name)
    created: dict[str, list[str]] = {}
    for kind, call in CALLS.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == kind:
                call(client, resolve(resource.get("Properties", {})), logical_id)
                created.setdefault(kind, []).append(logical_id)
    return created
