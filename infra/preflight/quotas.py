"""Quota checks: SageMaker instances per type and usage, serverless and Lambda concurrency, the VPC's limits."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from infra.preflight import needs
from infra.preflight.account import Unchecked, error_code
from infra.preflight.context import Context
from infra.preflight.report import Row, Status

# Quotas with a fixed code (Service Quotas' own identifiers).
VPCS_PER_REGION = ("vpc", "L-F678F1CE")
INTERFACE_ENDPOINTS_PER_VPC = ("vpc", "L-29B6F2EB")
ELASTIC_IPS = ("ec2", "L-0263D0A3")
LAMBDA_CONCURRENCY = ("lambda", "L-B99A9384")
# Lambda keeps this much of the account's concurrency unreserved (less when the limit itself is lower).
LAMBDA_MIN_UNRESERVED = 100
# The Service Quotas name of the account-wide serverless concurrency (matched, not spelled: AWS words it).
_SERVERLESS_QUOTA = re.compile(r"total concurrency.*serverless", re.IGNORECASE)


def increase(service_code: str, quota_code: str, value: int, region: str) -> str:
    """The command that asks for a quota increase."""
    return (
        f"aws service-quotas request-service-quota-increase --service-code {service_code} "
        f"--quota-code {quota_code} --desired-value {value} --region {region}"
    )


def grant(reason: Unchecked) -> str:
    """The fix of a check that could not be made."""
    text = str(reason)
    if text.startswith("missing permission "):
        return f"allow {text.removeprefix('missing permission ')} to the caller, then run preflight again"
    return "run preflight again (the read failed)"


def _sagemaker_quotas(ctx: Context) -> dict[str, dict[str, Any]]:
    """SageMaker quotas by name: the account's applied values, completed by AWS's defaults."""
    if "sagemaker" not in ctx.cache:
        ctx.cache["sagemaker"] = {
            q["QuotaName"]: q
            for q in ctx.account.pages("service-quotas", "ListServiceQuotas", "Quotas", ServiceCode="sagemaker")
        }
    applied: dict[str, dict[str, Any]] = ctx.cache["sagemaker"]
    return applied


def _sagemaker_defaults(ctx: Context) -> dict[str, dict[str, Any]]:
    if "sagemaker-defaults" not in ctx.cache:
        ctx.cache["sagemaker-defaults"] = {
            q["QuotaName"]: q
            for q in ctx.account.pages(
                "service-quotas", "ListAWSDefaultServiceQuotas", "Quotas", ServiceCode="sagemaker"
            )
        }
    defaults: dict[str, dict[str, Any]] = ctx.cache["sagemaker-defaults"]
    return defaults


def sagemaker_instances(ctx: Context) -> list[Row]:
    """Each (instance type, usage) the environment needs at once against its quota."""
    wanted = needs.instance_needs(ctx.config)
    rows = {need: f"{need.count} ({'; '.join(need.reasons)})" for need in wanted}
    try:
        found = {need: _sagemaker_quotas(ctx).get(need.quota_name) for need in wanted}
        if None in found.values():  # AWS's defaults, for quotas the account has no value applied for
            defaults = _sagemaker_defaults(ctx)
            found = {need: quota or defaults.get(need.quota_name) for need, quota in found.items()}
    except Unchecked as reason:
        return [Row(n.quota_name, needed, str(reason), Status.UNCHECKED, grant(reason)) for n, needed in rows.items()]
    return [_instance_row(need, needed, found[need], ctx.region) for need, needed in rows.items()]


def _instance_row(need: needs.InstanceNeed, needed: str, quota: dict[str, Any] | None, region: str) -> Row:
    if quota is None:
        return Row(
            need.quota_name,
            needed,
            "no such quota in this region",
            Status.WARN,
            f"SageMaker may not offer {need.instance_type} in {region}: pick a type it lists there",
        )
    value = int(quota["Value"])
    if value >= need.count:
        return Row(need.quota_name, needed, str(value), Status.OK)
    fix = (
        increase("sagemaker", quota["QuotaCode"], need.count, region)
        if quota.get("Adjustable", True)
        else f"not adjustable: use another instance type for {need.usage.value}s"
    )
    return Row(need.quota_name, needed, str(value), Status.BLOCKER, fix)


def serverless_concurrency(ctx: Context) -> list[Row]:
    """A serverless endpoint's maximum concurrency against the account's serverless total."""
    wanted = needs.serverless_concurrency(ctx.config)
    if not wanted:
        return []
    check, needed = "serverless endpoint concurrency", f"{wanted} (serving.serverless.max_concurrency)"
    try:
        named = {**_sagemaker_defaults(ctx), **_sagemaker_quotas(ctx)}
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    matches = [quota for name, quota in named.items() if _SERVERLESS_QUOTA.search(name)]
    if len(matches) != 1:
        found = f"{len(matches)} quotas named like 'total concurrency ... serverless'"
        return [Row(check, needed, found, Status.UNCHECKED, "compare with the Service Quotas console by hand")]
    quota = matches[0]
    value = int(quota["Value"])
    if value >= wanted:
        return [Row(check, needed, f"{value} ({quota['QuotaName']})", Status.OK)]
    fix = increase("sagemaker", quota["QuotaCode"], wanted, ctx.region)
    return [Row(check, needed, f"{value} ({quota['QuotaName']})", Status.BLOCKER, fix)]


def lambda_concurrency(ctx: Context) -> list[Row]:
    """Reserved concurrency must leave Lambda's minimum of unreserved concurrency in the account."""
    reserved = needs.reserved_concurrency(ctx.config)
    total = sum(reserved.values())
    check = "Lambda reserved concurrency"
    needed = f"{total} reserved ({', '.join(reserved)})" if reserved else "0 reserved (the functions run unreserved)"
    try:
        limits = ctx.account.call("lambda", "GetAccountSettings")["AccountLimit"]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    limit, unreserved = limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]
    minimum = min(LAMBDA_MIN_UNRESERVED, limit)
    found = f"limit {limit}, unreserved {unreserved} ({minimum} must stay)"
    if total <= unreserved - minimum:
        return [Row(check, needed, found, Status.OK)]
    wanted = max(limit + total, 1000)
    return [Row(check, needed, found, Status.BLOCKER, increase(*LAMBDA_CONCURRENCY, wanted, ctx.region))]


def coded_quota(ctx: Context, service_code: str, quota_code: str) -> int:
    """A quota's applied value, or AWS's default where the account has none applied."""
    try:
        quota = ctx.account.call("service-quotas", "GetServiceQuota", ServiceCode=service_code, QuotaCode=quota_code)
    except ClientError as error:
        if error_code(error) != "NoSuchResourceException":
            raise
        quota = ctx.account.call(
            "service-quotas", "GetAWSDefaultServiceQuota", ServiceCode=service_code, QuotaCode=quota_code
        )
    return int(quota["Quota"]["Value"])


def vpcs(ctx: Context) -> list[Row]:
    """One more VPC, unless the stack that owns it (the Network stack, the delivery's build VPC) has it already."""
    stack = ctx.target.network_stack
    if stack is None:
        return []
    check = "VPCs per region"
    try:
        existing = list(ctx.account.pages("ec2", "DescribeVpcs", "Vpcs"))
        quota = coded_quota(ctx, *VPCS_PER_REGION)
    except Unchecked as reason:
        return [Row(check, "1 more", str(reason), Status.UNCHECKED, grant(reason))]
    ours = any(
        tag.get("Key") == "aws:cloudformation:stack-name" and tag.get("Value") == stack
        for vpc in existing
        for tag in vpc.get("Tags", [])
    )
    more = 0 if ours else 1
    needed = f"{len(existing) + more} ({len(existing)} existing" + (f", {stack}'s among them)" if ours else " + 1)")
    total = len(existing) + more
    if total <= quota:
        return [Row(check, needed, str(quota), Status.OK)]
    return [Row(check, needed, str(quota), Status.BLOCKER, increase(*VPCS_PER_REGION, total, ctx.region))]


def interface_endpoints(ctx: Context) -> list[Row]:
    """The VPC's interface endpoints against the per-VPC quota, and each endpoint service in the region."""
    wanted = needs.interface_endpoints(ctx.config, ctx.region)
    rows = []
    check, needed = "interface endpoints per VPC", str(len(wanted))
    try:
        quota = coded_quota(ctx, *INTERFACE_ENDPOINTS_PER_VPC)
    except Unchecked as reason:
        rows.append(Row(check, needed, str(reason), Status.UNCHECKED, grant(reason)))
    else:
        fix = "" if len(wanted) <= quota else increase(*INTERFACE_ENDPOINTS_PER_VPC, len(wanted), ctx.region)
        rows.append(Row(check, needed, str(quota), Status.OK if not fix else Status.BLOCKER, fix))
    rows.append(_endpoint_services(ctx, wanted))
    return rows


def _endpoint_services(ctx: Context, wanted: list[str]) -> Row:
    check = "endpoint services in the region"
    azs = ctx.config.network.max_azs
    needed = f"{len(wanted)} services, each in {azs}+ AZs"
    try:
        offered = {
            s["ServiceName"]: s.get("AvailabilityZones", [])
            for s in ctx.account.pages("ec2", "DescribeVpcEndpointServices", "ServiceDetails")
        }
    except Unchecked as reason:
        return Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))
    missing = [name for name in wanted if name not in offered]
    narrow = [name for name in wanted if name in offered and len(offered[name]) < azs]
    if missing:
        found = "not offered: " + ", ".join(missing)
        return Row(check, needed, found, Status.BLOCKER, "deploy to a region that offers them, or drop what needs them")
    if narrow:
        found = "in fewer AZs: " + ", ".join(f"{n} ({len(offered[n])})" for n in narrow)
        return Row(check, needed, found, Status.WARN, "set network.max_azs to what every service offers")
    return Row(check, needed, f"all {len(wanted)} offered", Status.OK)


def elastic_ips(ctx: Context) -> list[Row]:
    """Controlled egress: one Elastic IP per NAT gateway, on top of the addresses the account holds."""
    wanted = ctx.config.network.nat_gateway_count
    if not wanted:
        return []
    check = "Elastic IPs (NAT gateways)"
    try:
        held = len(ctx.account.call("ec2", "DescribeAddresses").get("Addresses", []))
        quota = coded_quota(ctx, *ELASTIC_IPS)
    except Unchecked as reason:
        return [Row(check, f"{wanted} more", str(reason), Status.UNCHECKED, grant(reason))]
    needed = f"{held + wanted} ({held} held + {wanted})"
    if held + wanted <= quota:
        return [Row(check, needed, str(quota), Status.OK)]
    return [Row(check, needed, str(quota), Status.BLOCKER, increase(*ELASTIC_IPS, held + wanted, ctx.region))]
