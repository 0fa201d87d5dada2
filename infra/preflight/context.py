"""What a check gets: the target it checks (an environment, a stage, the tooling account) and read access to it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.config import PlatformConfig
from infra.preflight.account import Account
from infra.preflight.report import Row


@dataclass(frozen=True)
class Target:
    """One account and region to check, and what will be deployed there.

    `config` is None for a delivery's tooling account; `trusted_by` names the tooling account a
    delivery stage's bootstrap must trust; `connection_arn` is the tooling account's source.
    """

    title: str
    region: str
    account: str | None  # None: environment-agnostic, the caller's account
    config: PlatformConfig | None = None
    trusted_by: str | None = None
    connection_arn: str | None = None
    network_stack: str | None = None  # the stack whose VPC this target adds (None: no VPC)
    delivery: bool = False
    profile: str | None = None


@dataclass
class Context:
    """A target, the account the caller's credentials reach, and a cache shared by its checks."""

    target: Target
    account: Account
    account_id: str
    cache: dict[str, Any]

    @property
    def region(self) -> str:
        return self.target.region

    @property
    def config(self) -> PlatformConfig:
        assert self.target.config is not None, "a check of a platform environment ran on the tooling account"
        return self.target.config


Check = Callable[[Context], list[Row]]
