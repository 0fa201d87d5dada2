"""Deploy prerequisites: the credentials' account, the CDK bootstrap (version, a delivery's trust), the source."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from botocore.exceptions import ClientError

from infra.preflight.account import Unchecked, error_code
from infra.preflight.context import Context, Target
from infra.preflight.quotas import grant
from infra.preflight.report import Row, Status

QUALIFIER = "hnb659fds"  # CDK's default; the app sets no other
VERSION_PARAMETER = f"/cdk-bootstrap/{QUALIFIER}/version"
TOOLKIT_STACK = "CDKToolkit"
# The version every stack's deployment needs (the cloud assembly's requiresBootstrapStackVersion).
MIN_BOOTSTRAP_VERSION = 6
CLI_TEMPLATE = Path(__file__).resolve().parents[2] / "node_modules/aws-cdk/lib/api/bootstrap/bootstrap-template.yaml"


@functools.cache
def cli_template_version(template: Path = CLI_TEMPLATE) -> int | None:
    """The bootstrap version the pinned CDK CLI deploys, read from its template (None without node_modules)."""
    try:
        text = template.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"\n  CdkBootstrapVersion:\n(?:    .*\n)*?      Value: '(\d+)'", text)
    return int(match[1]) if match else None


def bootstrap_command(target: Target, account: str) -> str:
    command = f"npx cdk bootstrap aws://{account}/{target.region}"
    if target.trusted_by:
        command += (
            f" --trust {target.trusted_by} "
            "--cloudformation-execution-policies arn:aws:iam::aws:policy/AdministratorAccess"
        )
    return command


def identity(target: Target, caller: str, arn: str) -> Row:
    """Whose credentials preflight reads with; a single environment deploys with the same ones."""
    needed = f"account {target.account}" if target.account else "any (environment-agnostic config)"
    found = f"account {caller} ({arn.split(':', 5)[-1]})"
    if target.account is None or target.account == caller:
        return Row("credentials", needed, found, Status.OK)
    fix = f"use credentials of account {target.account}: --profile {_profile_key(target)}=PROFILE"
    # A delivery stage deploys with the pipeline's role, not the caller's: only preflight is stopped.
    return Row("credentials", needed, found, Status.UNCHECKED if target.delivery else Status.BLOCKER, fix)


def _profile_key(target: Target) -> str:
    return target.title.split()[-1]


def bootstrap_version(ctx: Context) -> list[Row]:
    """The CDK bootstrap of this account and region, at the version deployments need."""
    check = "CDK bootstrap"
    latest = cli_template_version()
    needed = f">= {MIN_BOOTSTRAP_VERSION}" + (f" (the pinned CLI deploys {latest})" if latest else "")
    fix = bootstrap_command(ctx.target, ctx.account_id)
    try:
        value = ctx.account.call("ssm", "GetParameter", Name=VERSION_PARAMETER)["Parameter"]["Value"]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    except ClientError as error:
        if error_code(error) != "ParameterNotFound":
            raise
        return [Row(check, needed, "not bootstrapped", Status.BLOCKER, fix)]
    version = int(value) if value.isdigit() else 0
    if version < MIN_BOOTSTRAP_VERSION:
        return [Row(check, needed, f"version {value}", Status.BLOCKER, fix)]
    if latest and version < latest:
        return [Row(check, needed, f"version {value}", Status.WARN, fix)]
    return [Row(check, needed, f"version {value}", Status.OK)]


def bootstrap_trust(ctx: Context) -> list[Row]:
    """A delivery stage's bootstrap trusts the tooling account, whose pipeline deploys into it."""
    tooling = ctx.target.trusted_by
    if tooling is None:
        return []
    check, needed = "CDK bootstrap trust", f"trusts {tooling} (the tooling account)"
    fix = bootstrap_command(ctx.target, ctx.account_id)
    try:
        stacks = ctx.account.call("cloudformation", "DescribeStacks", StackName=TOOLKIT_STACK)["Stacks"]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    except ClientError as error:
        if error_code(error) != "ValidationError":
            raise
        return [Row(check, needed, f"no {TOOLKIT_STACK} stack", Status.BLOCKER, fix)]
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}
    trusted = [a for a in parameters.get("TrustedAccounts", "").split(",") if a]
    found = "trusts " + (", ".join(trusted) if trusted else "no other account")
    if tooling in trusted:
        return [Row(check, needed, found, Status.OK)]
    return [Row(check, needed, found, Status.BLOCKER, fix)]


def source_connection(ctx: Context) -> list[Row]:
    """The delivery pipeline's CodeConnections connection must be AVAILABLE (its handshake done)."""
    arn = ctx.target.connection_arn
    if arn is None:
        return []
    service = "codeconnections" if ":codeconnections:" in arn else "codestar-connections"
    check, needed = "source connection", "AVAILABLE"
    try:
        connection = ctx.account.call(service, "GetConnection", ConnectionArn=arn)["Connection"]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        fix = "create it: console Developer Tools > Settings > Connections, then set deployment.source.connection_arn"
        return [Row(check, needed, "no such connection", Status.BLOCKER, fix)]
    status = connection.get("ConnectionStatus", "?")
    if status == "AVAILABLE":
        return [Row(check, needed, f"{connection.get('ConnectionName')} AVAILABLE", Status.OK)]
    fix = "console: Developer Tools > Settings > Connections > the connection > Update pending connection"
    return [Row(check, needed, f"{connection.get('ConnectionName')} {status}", Status.BLOCKER, fix)]
