"""What the DataLake stack takes from the Security and Network stacks."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_kms as kms

from infra.constructs.placement import Placement


@dataclass(frozen=True)
class DataLakeInputs:
    """The platform keys the lake encrypts with and where its Glue workers run."""

    data_key: kms.IKey  # the zones, the catalog's job bookmarks, Athena results
    artifacts_key: kms.IKey  # the ML artifacts bucket
    logs_key: kms.IKey  # Glue logs and the dead-letter queue of the new-data rule
    placement: Placement  # the private subnets and security group of Glue's ENIs
