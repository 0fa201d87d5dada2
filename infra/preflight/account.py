"""Read-only access to one account and region: only the Get/List/Describe calls preflight names, nothing else.

Every call goes through `Account.call` or `Account.pages`, which accept only the operations in
READ_OPERATIONS; a guard on each client's event hooks refuses any other operation before it is
signed, so no code path (a paginator included) can create or change anything. A read the caller
may not make raises `Unchecked` naming the IAM action, so the check is reported as not performed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

# Service (botocore name) -> the operations preflight may call. All of them only read.
READ_OPERATIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "sts": frozenset({"GetCallerIdentity"}),
        "service-quotas": frozenset(
            {"ListServiceQuotas", "ListAWSDefaultServiceQuotas", "GetServiceQuota", "GetAWSDefaultServiceQuota"}
        ),
        "lambda": frozenset({"GetAccountSettings"}),
        "ec2": frozenset({"DescribeVpcs", "DescribeAddresses", "DescribeVpcEndpointServices"}),
        "sagemaker": frozenset({"ListDomains", "ListMonitoringSchedules"}),
        "config": frozenset({"DescribeConfigurationRecorderStatus"}),
        "ce": frozenset({"ListCostAllocationTags"}),
        "lakeformation": frozenset({"GetDataLakeSettings"}),
        "iam": frozenset({"GetRole"}),
        "organizations": frozenset({"DescribeOrganization", "ListAWSServiceAccessForOrganization"}),
        "ram": frozenset({"GetResourceShareInvitations"}),
        "ssm": frozenset({"GetParameter"}),
        "cloudformation": frozenset({"DescribeStacks"}),
        "codeconnections": frozenset({"GetConnection"}),
        "codestar-connections": frozenset({"GetConnection"}),
    }
)
READ_PREFIXES = ("Get", "List", "Describe")
# botocore's service name -> the IAM action prefix, where they differ.
_IAM_PREFIX = MappingProxyType({"service-quotas": "servicequotas"})
# Error codes AWS answers a call the caller has no permission for with.
ACCESS_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "UnauthorizedException"}
)
# Services whose API lives in one region of each partition (Cost Explorer, Organizations).
GLOBAL_SERVICES = frozenset({"ce", "organizations"})
_PARTITION_HOME = (("cn-", "cn-northwest-1"), ("us-gov-", "us-gov-west-1"), ("", "us-east-1"))


def home_region(region: str) -> str:
    """The region of a global service's API in `region`'s partition."""
    return next(home for prefix, home in _PARTITION_HOME if region.startswith(prefix))


ClientFactory = Callable[[str, str], Any]


class Unchecked(Exception):
    """A check could not be made: a read was denied or failed. The reason is printed as found."""


class WriteRefused(RuntimeError):
    """An operation that is not a registered read was about to be sent."""


def iam_action(service: str, operation: str) -> str:
    return f"{_IAM_PREFIX.get(service, service)}:{operation}"


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _snake(operation: str) -> str:
    import botocore  # local: xform_name lives in botocore's top-level module

    return str(botocore.xform_name(operation))


class Account:
    """Clients for one account and region (from `factory`), used for registered reads only."""

    def __init__(self, factory: ClientFactory, region: str) -> None:
        self.region = region
        self._factory = factory
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in READ_OPERATIONS:
            raise WriteRefused(f"preflight reads no {service!r} API; registered: {', '.join(READ_OPERATIONS)}")
        if service not in self._clients:
            region = home_region(self.region) if service in GLOBAL_SERVICES else self.region
            client = self._factory(service, region)
            # First at the most specific level: before any other handler (a stub, a cache) answers the call.
            client.meta.events.register_first("before-call.*.*", _guard)
            self._clients[service] = client
        return self._clients[service]

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One registered read; AccessDenied becomes Unchecked naming the permission."""
        _refuse_unless_read(service, operation)
        client = self.client(service)
        with _denial_as_unchecked(service, operation):
            response: dict[str, Any] = getattr(client, _snake(operation))(**params)
        return response

    def pages(self, service: str, operation: str, key: str, **params: Any) -> Iterator[Any]:
        """Every item under `key` across the pages of a registered read."""
        _refuse_unless_read(service, operation)
        paginator = self.client(service).get_paginator(_snake(operation))
        with _denial_as_unchecked(service, operation):
            for page in paginator.paginate(**params):
                yield from page.get(key, [])


def _refuse_unless_read(service: str, operation: str) -> None:
    if operation not in READ_OPERATIONS.get(service, frozenset()) or not operation.startswith(READ_PREFIXES):
        raise WriteRefused(f"{iam_action(service, operation)} is not a read preflight may make")


def _guard(model: Any, **_: Any) -> None:
    """botocore's before-call hook: the last stop before a request is signed and sent."""
    service = model.service_model.service_name
    if model.name not in READ_OPERATIONS.get(service, frozenset()) or not model.name.startswith(READ_PREFIXES):
        raise WriteRefused(f"{iam_action(service, model.name)} is not a read preflight may make")


@contextmanager
def _denial_as_unchecked(service: str, operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if error_code(error) in ACCESS_DENIED:
            raise Unchecked(f"missing permission {iam_action(service, operation)}") from None
        raise
    except BotoCoreError as error:
        raise Unchecked(f"{iam_action(service, operation)} failed: {error}") from None


def boto3_factory(profile: str | None) -> ClientFactory:
    """Clients from the caller's credentials (a named profile, or the default chain)."""
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=profile)
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20)

    def make(service: str, region: str) -> Any:
        return session.client(service, region_name=region, config=config)

    return make
