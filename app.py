#!/usr/bin/env python3
"""CDK entry point: load the environment's configuration, then build its stacks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config import ConfigError, PlatformConfig, load_config, resolve_config_path

if TYPE_CHECKING:
    from infra.config.delivery import DeliveryConfig

    # A delivery file: the delivery and every stage's config, by stage name.
    Delivery = tuple[DeliveryConfig, dict[str, PlatformConfig]]


def _report(error: ConfigError) -> int:
    for line in error.problems:
        print(f"config error: {line}", file=sys.stderr)
    return 2


def _early_context() -> dict[str, Any]:
    """The `-c` values the CDK CLI passes in CDK_CONTEXT_JSON, read before the CDK loads (~3 s)."""
    try:
        context = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    except ValueError:
        return {}
    return context if isinstance(context, dict) else {}


def main() -> int:
    # A bad config fails in a fraction of a second, before the CDK's Python bindings load. The
    # app below reads the context again through CDK, which stays the authority.
    early = _early_context()
    try:
        _load(early.get("env"), early.get("config"))
    except ConfigError as error:
        return _report(error)

    import aws_cdk as cdk

    # CloudFormation's built-in validation plugin is replaced by cfn-lint in the tests (see
    # docs/decisions.md): it tripled synth time and only warns.
    app = cdk.App(builtin_cloud_formation_validation=False)
    try:
        path, loaded = _load(app.node.try_get_context("env"), app.node.try_get_context("config"))
    except ConfigError as error:
        return _report(error)
    if isinstance(loaded, tuple):  # a multi-account delivery file
        from stacks.delivery import build_delivery

        build_delivery(app, *loaded, file_stem=path.stem)
    else:
        from stacks.platform import build_platform

        build_platform(app, loaded)
    app.synth()
    return 0


def _load(env: str | None, config: str | None) -> tuple[Path, PlatformConfig | Delivery]:
    """(path, platform config) for an environment file, (path, (delivery, stage configs)) for a delivery file."""
    from infra.config.delivery import is_delivery_file, load_delivery

    path = resolve_config_path(env, config)
    if is_delivery_file(path):
        return path, load_delivery(path)
    return path, load_config(config=str(path))


if __name__ == "__main__":
    sys.exit(main())
