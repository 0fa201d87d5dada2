"""Field types several sections share: names, e-mails, retention periods, regions, roles, accounts, instances."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from infra.config.base import Strict, allowed

NAME = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"
NAME_ALLOWED = "2-20 characters: lowercase letters, digits and '-', starting with a letter"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy); 0 means "never expire".
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def _check_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise PydanticCustomError("retention", "not a CloudWatch Logs retention period")
    return value


# A log retention in days, limited to the periods CloudWatch Logs offers.
RetentionDays = Annotated[int, AfterValidator(_check_retention)]
RETENTION_ALLOWED = "a CloudWatch Logs retention period: " + ", ".join(map(str, LOG_RETENTION_DAYS))


@functools.lru_cache(maxsize=1)
def aws_regions() -> Mapping[str, str]:
    """Region name -> partition, read offline from botocore's bundled endpoint data."""
    import botocore.loaders  # local import: only region validation needs botocore

    data = botocore.loaders.create_loader().load_data("endpoints")
    return {region: partition["partition"] for partition in data["partitions"] for region in partition["regions"]}


def emails(value: list[str]) -> list[str]:
    """Validator body: every entry is an e-mail address."""
    if any(not re.match(EMAIL, email) for email in value):
        raise PydanticCustomError("email", "not an e-mail address")
    return value


_ROLE = r"^(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
ROLE_ALLOWED = "IAM role names of this account, with their path if any (e.g. 'DataScientist')"


def _check_role(value: str) -> str:
    # A name, not an ARN: the stack builds the ARN with the deploy-time partition and account.
    if not re.match(_ROLE, value) or value.startswith("arn:"):
        raise PydanticCustomError("role", "not a role name")
    return value


def unique(value: list[str]) -> list[str]:
    """Validator body: no entry appears twice."""
    if len(set(value)) != len(value):
        raise PydanticCustomError("unique", "duplicate entries")
    return value


RoleName = Annotated[str, AfterValidator(_check_role)]
AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]


def _instance(role: str) -> AfterValidator:
    """Validator: an instance type SageMaker accepts for `role` and the catalog knows."""

    def check(value: str) -> str:
        from infra.catalog import instances  # local import: reads botocore's SageMaker model on first use

        try:
            instances.validate(value, instances.Role(role))
        except instances.InstanceTypeError as exc:
            raise PydanticCustomError("instance", "{reason}", {"reason": str(exc)}) from None
        return value

    return AfterValidator(check)


TrainingInstance = Annotated[str, _instance("training")]
ProcessingInstance = Annotated[str, _instance("processing")]
RealtimeInstance = Annotated[str, _instance("realtime")]


class PeerEnvironment(Strict):
    """Another environment of the same project, in another account of the same region."""

    account: AccountId = Field(**allowed("12 digits"))
    environment: str = Field(
        pattern=NAME, **allowed("the other environment's name (its resources are named <project>-<environment>-*)")
    )
