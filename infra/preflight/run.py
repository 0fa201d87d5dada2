"""Which targets a config file deploys to, and the checks each one gets, run read-only into report sections."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from infra.config import PlatformConfig, load_config_file
from infra.config.delivery import is_delivery_file, load_delivery
from infra.preflight import bootstrap, prerequisites, quotas
from infra.preflight.account import Account, ClientFactory, Unchecked, error_code
from infra.preflight.context import Check, Context, Target
from infra.preflight.report import Row, Section, Status

# In report order. Each takes the target's context and returns its rows ([] when it does not apply).
ENVIRONMENT_CHECKS: tuple[tuple[str, Check], ...] = (
    ("CDK bootstrap", bootstrap.bootstrap_version),
    ("CDK bootstrap trust", bootstrap.bootstrap_trust),
    ("SageMaker instance quotas", quotas.sagemaker_instances),
    ("serverless endpoint concurrency", quotas.serverless_concurrency),
    ("Lambda reserved concurrency", quotas.lambda_concurrency),
    ("VPCs per region", quotas.vpcs),
    ("interface endpoints", quotas.interface_endpoints),
    ("Elastic IPs (NAT gateways)", quotas.elastic_ips),
    ("AWS Config recorder", prerequisites.config_recorder),
    ("cost allocation tag", prerequisites.cost_tag),
    ("Lake Formation settings", prerequisites.lake_formation),
    ("IAM roles named in the config", prerequisites.configured_roles),
    ("Lake Formation sharing", prerequisites.lake_sharing),
    ("service-linked roles", prerequisites.service_linked_roles),
    ("SageMaker Studio domains", prerequisites.studio_domains),
    ("closed SageMaker features", prerequisites.closed_services),
)
TOOLING_CHECKS: tuple[tuple[str, Check], ...] = (
    ("CDK bootstrap", bootstrap.bootstrap_version),
    ("source connection", bootstrap.source_connection),
    ("VPCs per region", quotas.vpcs),
)

FactoryForProfile = Callable[[str | None], ClientFactory]


class UsageError(Exception):
    """Preflight cannot start: one printable line says why."""


def targets(path: Path, profiles: Mapping[str, str], region: str | None) -> list[Target]:
    """The targets of an environment file (one) or of a delivery file (the tooling account, then each stage)."""
    default = profiles.get("")
    if not is_delivery_file(path):
        config = load_config_file(path)
        where = config.region or region
        if where is None:
            raise UsageError(f"{path.name}: no region in the config: pass --region (or set AWS_REGION)")
        profile = profiles.get(config.environment, default)
        return [_environment(f"environment {config.environment}", config, where, profile)]
    delivery, stages = load_delivery(path)
    tooling = delivery.deployment.tooling
    found = [
        Target(
            title="tooling",
            region=tooling.region,
            account=tooling.account,
            connection_arn=delivery.deployment.source.connection_arn,
            network_stack=f"{delivery.project}-delivery" if tooling.build_in_vpc else None,
            delivery=True,
            profile=profiles.get("tooling", default),
        )
    ]
    for stage in delivery.deployment.stages:
        profile = profiles.get(stage.name, default)
        target = _environment(f"stage {stage.name}", stages[stage.name], stage.region, profile)
        found.append(replace(target, trusted_by=tooling.account, delivery=True))
    unknown = set(profiles) - {"", "tooling", *(t.title.split()[-1] for t in found)}
    if unknown:
        raise UsageError(f"--profile names {', '.join(sorted(unknown))}: allowed: tooling or a stage name")
    return found


def _environment(title: str, config: PlatformConfig, region: str, profile: str | None) -> Target:
    return Target(
        title=title,
        region=region,
        account=config.account,
        config=config,
        network_stack=f"{config.prefix}-Network",
        profile=profile,
    )


def check(target: Target, factory: ClientFactory) -> Section:
    """Every check of one target, reading through `factory`'s clients."""
    account = Account(factory, target.region)
    owner = f"account {target.account}" if target.account else "the caller's account"
    title = f"{target.title} ({owner}, {target.region})"
    try:
        caller = account.call("sts", "GetCallerIdentity")
    except (Unchecked, ClientError, BotoCoreError) as problem:
        # As with credentials of another account (bootstrap.identity): a delivery deploys with the pipeline's role.
        status = Status.UNCHECKED if target.delivery else Status.BLOCKER
        row = Row("credentials", f"account {target.account or 'any'}", _reason(problem), status, _LOGIN)
        return Section(title, (row,))
    identity = bootstrap.identity(target, caller["Account"], caller["Arn"])
    if identity.status != Status.OK:
        return Section(title, (identity,))
    context = Context(target, account, caller["Account"], {})
    rows = [identity]
    for name, function in ENVIRONMENT_CHECKS if target.config is not None else TOOLING_CHECKS:
        rows += _run(name, function, context)
    return Section(title, tuple(rows))


_RETRY = "run preflight again; if it persists, check by hand"
_LOGIN = "configure credentials (aws configure sso, or AWS_PROFILE) and run preflight again"


def _run(name: str, function: Check, context: Context) -> list[Row]:
    """One check; a read it could not make turns into a row saying so, never into a pass."""
    try:
        return function(context)
    except Unchecked as reason:
        return [Row(name, "-", str(reason), Status.UNCHECKED, quotas.grant(reason))]
    except (ClientError, BotoCoreError) as problem:
        return [Row(name, "-", _reason(problem), Status.UNCHECKED, _RETRY)]


def _reason(problem: Exception) -> str:
    if isinstance(problem, ClientError):
        return f"{error_code(problem)}: {problem.response.get('Error', {}).get('Message', '')}".rstrip(": ")
    return str(problem)


def preflight(
    path: Path, factories: FactoryForProfile, profiles: Mapping[str, str], region: str | None
) -> list[Section]:
    """The report of every target of the file at `path`."""
    cache: dict[str | None, ClientFactory] = {}
    sections = []
    for target in targets(path, profiles, region):
        if target.profile not in cache:
            cache[target.profile] = factories(target.profile)
        sections.append(check(target, cache[target.profile]))
    return sections


def parse_profiles(values: Sequence[str]) -> dict[str, str]:
    """`--profile NAME` (every target) and `--profile TARGET=NAME` (one target) into target -> profile."""
    profiles: dict[str, str] = {}
    for value in values:
        key, _, name = value.rpartition("=")
        if not name:
            raise UsageError(f"--profile {value!r}: allowed: PROFILE or TARGET=PROFILE")
        profiles[key] = name
    return profiles
