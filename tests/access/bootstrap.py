"""The CDK bootstrap's roles in an account, from the bootstrap template the pinned CDK CLI deploys.

`cdk deploy` (and a CDK pipeline's deployment actions) call CloudFormation as the bootstrap's
deploy role and pass its execution role; the contracts judge those roles as the template the
pinned CLI (node_modules/aws-cdk) would create them with its default parameters.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.access.resolver import Environment, Stack
from tests.access.world import Principal, build_world

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "node_modules" / "aws-cdk" / "lib" / "api" / "bootstrap" / "bootstrap-template.yaml"
STACK = "CDKToolkit"
# `cdk bootstrap --trust <account> --cloudformation-execution-policies <arn>`, as the README's
# multi-account steps run it; a single-account bootstrap leaves both empty.
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"


@cache
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(TEMPLATE.read_text())
    return loaded


def roles(account: str, region: str, trusted: tuple[str, ...] = ()) -> list[Principal]:
    """The bootstrap's roles in `account`/`region` (deploy, CloudFormation execution, publishing, lookup)."""
    env = Environment(
        name=f"bootstrap {account}/{region}", account=account, region=region, stacks={STACK: Stack(STACK, template())}
    )
    if trusted:
        env.parameter_values["TrustedAccounts"] = ",".join(trusted)
        env.parameter_values["CloudFormationExecutionPolicies"] = ADMINISTRATOR
    world = build_world(env)
    return list(world.principals.values())


def deploy_role_name(account: str, region: str, qualifier: str = "hnb659fds") -> str:
    return f"cdk-{qualifier}-deploy-role-{account}-{region}"


def execution_role_name(account: str, region: str, qualifier: str = "hnb659fds") -> str:
    return f"cdk-{qualifier}-cfn-exec-role-{account}-{region}"
