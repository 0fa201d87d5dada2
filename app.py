#!/usr/bin/env python3
"""CDK entry point: load the environment's configuration, then build its stacks."""

from __future__ import annotations

import json
import os
import sys

from infra.config import ConfigError, load_config


def _report(error: ConfigError) -> int:
    for line in error.problems:
        print(f"config error: {line}", file=sys.stderr)
    return 2


def _early_context() -> dict:
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
        load_config(env=early.get("env"), config=early.get("config"))
    except ConfigError as error:
        return _report(error)

    import aws_cdk as cdk

    from stacks.platform import build_platform

    # CloudFormation's built-in validation plugin is replaced by cfn-lint in the tests (see
    # docs/decisions.md): it tripled synth time and only warns.
    app = cdk.App(builtin_cloud_formation_validation=False)
    try:
        config = load_config(env=app.node.try_get_context("env"), config=app.node.try_get_context("config"))
    except ConfigError as error:
        return _report(error)
    build_platform(app, config)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
