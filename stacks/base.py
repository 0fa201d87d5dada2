"""What every platform stack shares: naming, environment, AZ handling and removal policy."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import PROTECTED_ENVIRONMENTS, PlatformConfig


def retention(config: PlatformConfig) -> cdk.RemovalPolicy:
    """Stateful resources are retained unless the config explicitly allows destroying data."""
    return cdk.RemovalPolicy.DESTROY if config.destroy_data_on_delete else cdk.RemovalPolicy.RETAIN


class PlatformStack(cdk.Stack):
    """A stack of the platform: named from the config, protected in protected environments."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs) -> None:
        env = cdk.Environment(account=config.account, region=config.region) if config.account else None
        super().__init__(
            scope,
            construct_id,
            stack_name=f"{config.prefix}-{construct_id}",
            env=env,
            termination_protection=config.environment in PROTECTED_ENVIRONMENTS,
            **kwargs,
        )
        self.config = config

    @property
    def availability_zones(self) -> list[str]:
        # CDK would look AZs up with AWS credentials for an environment-bound stack, and caps an
        # environment-agnostic one at two. Fn::GetAZs tokens need neither and honour max_azs.
        return [cdk.Fn.select(i, cdk.Fn.get_azs()) for i in range(self.config.network.max_azs)]


def log_retention(days: int) -> logs.RetentionDays:
    """The CDK enum member for a retention period the config has already validated."""
    return _RETENTION[days]


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS, 120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS, 180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS, 1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS, 2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}  # fmt: skip
