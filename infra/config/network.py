"""The network section: the VPC every workload runs in, and its cross-field rules."""

from __future__ import annotations

import ipaddress
import math
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.config.base import Problem, Rule, Strict, allowed, run_rules
from infra.config.fields import RETENTION_ALLOWED, RetentionDays


class NetworkConfig(Strict):
    """The VPC every workload runs in."""

    cidr: str = Field(
        default="10.40.0.0/16",
        **allowed("a private (RFC 1918) IPv4 network in CIDR notation with a prefix from /16 to /24"),
    )
    max_azs: int = Field(default=2, ge=1, le=6, **allowed("an integer from 1 to 6"))
    egress: Literal["isolated", "controlled"] = Field(
        default="isolated",
        **allowed("'isolated' (no internet path) or 'controlled' (NAT gateway egress)"),
    )
    nat_gateways: int | None = Field(
        default=None, ge=1, le=6, **allowed("an integer from 1 to 6, only with egress 'controlled'")
    )
    flow_logs_retention_days: RetentionDays = Field(default=365, **allowed(RETENTION_ALLOWED))

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise PydanticCustomError("cidr", "not an IPv4 network") from exc
        if not 16 <= network.prefixlen <= 24:
            raise PydanticCustomError("cidr", "prefix out of range")
        if not network.is_private:
            raise PydanticCustomError("cidr", "not a private range")
        return str(network)

    @model_validator(mode="after")
    def _combinations(self) -> NetworkConfig:
        return run_rules(self, NETWORK_RULES)

    @property
    def nat_gateway_count(self) -> int:
        """NAT gateways to build: none when isolated, one per AZ unless configured."""
        if self.egress == "isolated":
            return 0
        return self.nat_gateways or self.max_azs


def _nat_only_with_controlled_egress(net: NetworkConfig) -> list[Problem]:
    """NAT gateways exist only for controlled egress."""
    if net.egress == "isolated" and net.nat_gateways is not None:
        return [("nat_gateways", net.nat_gateways, "only with egress 'controlled'; remove it for 'isolated'")]
    return []


def _nat_at_most_one_per_az(net: NetworkConfig) -> list[Problem]:
    """A NAT gateway sits in one AZ's public subnet: no more gateways than AZs."""
    if net.nat_gateways is not None and net.nat_gateways > net.max_azs:
        return [("nat_gateways", net.nat_gateways, f"at most max_azs ({net.max_azs}), one per AZ")]
    return []


def _subnets_fit(net: NetworkConfig) -> list[Problem]:
    """One isolated subnet per AZ (plus a public one per AZ for controlled egress) fits at /26 or larger.

    /26 leaves enough addresses for endpoint ENIs and job instances.
    """
    subnets = net.max_azs * (2 if net.egress == "controlled" else 1)
    prefix = ipaddress.IPv4Network(net.cidr).prefixlen + math.ceil(math.log2(max(subnets, 1)))
    if prefix > 26:
        return [("cidr", net.cidr, f"a network large enough for {subnets} subnets of /26 or larger")]
    return []


NETWORK_RULES: tuple[Rule[NetworkConfig], ...] = (
    _nat_only_with_controlled_egress,
    _nat_at_most_one_per_az,
    _subnets_fit,
)
