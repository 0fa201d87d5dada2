"""`python -m infra.preflight --env ENV`: check the account(s) a config deploys to, read-only, before `cdk deploy`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import ProfileNotFound

from infra.config import ConfigError, resolve_config_path
from infra.preflight.account import boto3_factory
from infra.preflight.report import EXIT_USAGE, exit_code, render
from infra.preflight.run import UsageError, parse_profiles, preflight


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m infra.preflight",
        description="Read-only checks of the AWS account(s) an environment or delivery file deploys to.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--env", help="a config/<ENV>.yaml environment or delivery file (default: dev)")
    source.add_argument("--config", help="any environment or delivery file")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="[TARGET=]PROFILE",
        help="AWS profile for every target, or for one (tooling or a stage name); repeatable",
    )
    parser.add_argument("--region", help="region of an environment-agnostic config (default: the profile's)")
    parser.add_argument("--strict", action="store_true", help="exit 1 also when a check could not be made")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        path = resolve_config_path(args.env, args.config)
        profiles = parse_profiles(args.profile)
        region = args.region or _default_region(profiles.get(""))
        sections = preflight(path, boto3_factory, profiles, region)
    except ConfigError as error:
        for line in error.problems:
            print(f"config error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ProfileNotFound) as error:
        print(f"preflight: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(render(sections))
    return exit_code(sections, strict=args.strict)


def _default_region(profile: str | None) -> str | None:
    """The region the caller's profile or environment names (AWS_REGION, AWS_DEFAULT_REGION)."""
    import boto3

    try:
        region: str | None = boto3.Session(profile_name=profile).region_name
    except ProfileNotFound:
        return None  # reported when the profile's clients are made, and only if a target needs them
    return region


if __name__ == "__main__":
    sys.exit(main())
