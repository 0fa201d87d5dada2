"""What happens to stateful resources on `cdk destroy` or a replacing update: decided here, once, from the config."""

from __future__ import annotations

from typing import TypedDict

import aws_cdk as cdk

from infra.config import PlatformConfig


class BucketRetention(TypedDict):
    """The retention props of an `s3.Bucket`, to pass as `**bucket_retention(config)`."""

    removal_policy: cdk.RemovalPolicy
    auto_delete_objects: bool


def retention(config: PlatformConfig) -> cdk.RemovalPolicy:
    """Stateful resources are retained unless the config explicitly allows destroying data."""
    return cdk.RemovalPolicy.DESTROY if config.destroy_data_on_delete else cdk.RemovalPolicy.RETAIN


def bucket_retention(config: PlatformConfig) -> BucketRetention:
    """A bucket's removal policy, and whether CDK empties it first (only when it may be destroyed)."""
    return {"removal_policy": retention(config), "auto_delete_objects": config.destroy_data_on_delete}
