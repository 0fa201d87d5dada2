#!/usr/bin/env python3
"""CDK entry point: load the environment's configuration, then build its stacks."""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.config import ConfigError, load_config
from stacks.platform import build_platform


def main() -> int:
    # CloudFormation's built-in validation plugin is replaced by cfn-lint in the tests (see
    # docs/decisions.md): it tripled synth time and only warns.
    app = cdk.App(builtin_cloud_formation_validation=False)
    try:
        config = load_config(env=app.node.try_get_context("env"), config=app.node.try_get_context("config"))
    except ConfigError as error:
        for line in error.problems:
            print(f"config error: {line}", file=sys.stderr)
        return 2
    build_platform(app, config)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
