"""What every platform stack shares: its name, environment, termination protection and AZ handling."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.config import PROTECTED_ENVIRONMENTS, PlatformConfig


class PlatformStack(cdk.Stack):
    """A stack of the platform: named from the config, protected in protected environments."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, **kwargs: Any) -> None:
        """`kwargs` are further `cdk.Stack` props (a description, tags, ...), passed on as they are."""
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
