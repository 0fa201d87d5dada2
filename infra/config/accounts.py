"""Rules between an environment and the other accounts it trusts: model source, model consumers, lake shares.

A multi-account delivery (infra/config/delivery.py) wires these fields between its stages; a
single environment's file may set them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.config.base import Problem, Rule
from infra.config.fields import PeerEnvironment

if TYPE_CHECKING:  # the rules belong to PlatformConfig, which imports them
    from infra.config.platform import PlatformConfig


def _share_with_other_accounts(config: PlatformConfig) -> list[Problem]:
    """The lake shares its database with other accounts, not its own."""
    sharing = config.data_lake.sharing
    if sharing and config.account in sharing.consumer_accounts:
        return [("data_lake.sharing.consumer_accounts", config.account, "accounts other than this environment's own")]
    return []


def _model_source_trains_elsewhere(config: PlatformConfig) -> list[Problem]:
    """An environment that serves another account's registry neither retrains, registers nor approves."""
    source = config.serving.model_source if config.serving else None
    if source is None:
        return []
    problems: list[Problem] = []
    if config.retraining is not None:
        problems.append(
            (
                "retraining",
                "a section",
                f"null with serving.model_source (the pipeline runs in account {source.account})",
            )
        )
    if config.training is not None and config.training.model_consumers:
        problems.append(
            (
                "training.model_consumers",
                [c.account for c in config.training.model_consumers],
                f"empty with serving.model_source (versions are registered in account {source.account})",
            )
        )
    if config.monitoring is not None and config.monitoring.reviewer_emails:
        problems.append(
            (
                "monitoring.reviewer_emails",
                config.monitoring.reviewer_emails,
                f"empty with serving.model_source (versions wait for approval in account {source.account})",
            )
        )
    return problems


def _consumers_listed_once(config: PlatformConfig) -> list[Problem]:
    """Each consuming account is listed once."""
    consumers = config.training.model_consumers if config.training else []
    accounts = [c.account for c in consumers]
    return [
        (f"training.model_consumers[{i}].account", consumer.account, "an account listed once")
        for i, consumer in enumerate(consumers)
        if consumer.account in accounts[:i]
    ]


def _peers_in_other_accounts(config: PlatformConfig) -> list[Problem]:
    """Other accounts are granted by id: this environment needs an account, and each peer another one."""
    problems: list[Problem] = []
    for field, peer in _peers(config):
        if config.account is None:
            problems.append(
                (field, peer.account, "null unless account and region are set (other accounts are granted by id)")
            )
        elif peer.account == config.account:
            problems.append((f"{field}.account", peer.account, "an account other than this environment's own"))
    return problems


def _peers(config: PlatformConfig) -> list[tuple[str, PeerEnvironment]]:
    """Every other environment this one names, with the field that names it."""
    peers: list[tuple[str, PeerEnvironment]] = []
    if config.serving is not None and config.serving.model_source is not None:
        peers.append(("serving.model_source", config.serving.model_source))
    consumers = config.training.model_consumers if config.training else []
    peers.extend((f"training.model_consumers[{i}]", consumer) for i, consumer in enumerate(consumers))
    if config.data_lake.shared_from is not None:
        peers.append(("data_lake.shared_from", config.data_lake.shared_from))
    return peers


ACCOUNT_RULES: tuple[Rule[PlatformConfig], ...] = (
    _share_with_other_accounts,
    _model_source_trains_elsewhere,
    _consumers_listed_once,
    _peers_in_other_accounts,
)
