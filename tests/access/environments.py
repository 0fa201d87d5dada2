"""The environments the contracts judge: dev, prod, and every stage of the multi-account delivery.

An environment is the stacks one deployment creates; it is resolved in its config's account and
region (a fake account and region where the config leaves them to the CLI) in the state the
contracts care about: a version promoted, so the Serving stack's conditional resources exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.catalog import monitors, naming
from infra.config import PlatformConfig
from tests.access.definitions import registered
from tests.access.resolver import FAKE_ACCOUNT, FAKE_REGION, PARTITION, Environment, Stack
from tests.access.world import World, build_world

BOOTSTRAP_VERSION = "30"  # the parameter's value in an account bootstrapped by the pinned CLI
# The environments every contract runs on: the single-account apps and each stage of the delivery.
NAMES = (
    "dev",
    "prod",
    "model_monitor",  # prod on the model_monitor engine (tests/helpers.py), for accounts with Model Monitor
    "stage:dev",
    "stage:staging",
    "stage:prod",
)


@dataclass
class Deployed:
    """One environment: its config, resolved templates and the world of policies built from them."""

    config: PlatformConfig
    environment: Environment
    world: World
    peers: dict[str, World] = field(default_factory=dict)  # other accounts of the same delivery, by id

    @property
    def name(self) -> str:
        return self.environment.name

    @property
    def worlds(self) -> dict[str, World]:
        """Every account a request of this environment may reach, by id (its own included)."""
        return {**self.peers, self.world.account: self.world}


def environment(name: str, config: PlatformConfig, stacks: list[tuple[str, dict[str, Any]]]) -> Environment:
    """An environment of (stack name, template) pairs, in the config's account and region."""
    return Environment(
        name=name,
        account=config.account or FAKE_ACCOUNT,
        region=config.region or FAKE_REGION,
        stacks={stack_name: Stack(stack_name, template) for stack_name, template in stacks},
    )


def promote(env: Environment, config: PlatformConfig, source: Environment | None = None) -> None:
    """Set the Serving stack's SSM-typed parameters to a promoted version and its baselines.

    The baselines live where the pipeline wrote them: the registry's artifacts bucket (`source`'s,
    when this environment serves another stage's registry).
    """
    registry = source or env
    group = naming.model_package_group(config)
    account = naming.registry_account(config, env.account)
    env.parameter_values["ModelPackageArn"] = (
        f"arn:{PARTITION}:sagemaker:{env.region}:{account}:model-package/{group}/7"
    )
    env.parameter_values["BootstrapVersion"] = BOOTSTRAP_VERSION
    registry_config = _REGISTRY_CONFIGS.get(registry.name, config)
    bucket = registry.export(naming.export_name(registry_config, "artifacts-bucket-name"))
    runs = f"s3://{bucket}/pipelines/{naming.training_pipeline(registry_config)}/runs/execution-7"
    # What the registry's pipeline registers is what a promotion writes to the state (infra/catalog/monitors.py).
    version = registered(registry)
    for kind in monitors.KINDS:
        for baseline in kind.baselines:
            env.parameter_values[baseline.parameter] = version.get(baseline.path, f"{runs}/{baseline.parameter}.json")
    # Set before any condition is decided (a schedule waits for it), then named as the promotion names it.
    env.parameter_values["ExplainabilityConfig"] = f"{runs}/explainability/analysis_config.json"
    env.parameter_values["ExplainabilityConfig"] = _explainability_config(env, version="7")


def _explainability_config(env: Environment, version: str) -> str:
    """Where the promotion function writes a version's analysis config (lambdas/promotion), if it writes one."""
    for function in env.resources("AWS::Lambda::Function"):
        setting = function.properties.get("Environment", {}).get("Variables", {}).get("EXPLAINABILITY")
        if setting:
            explainability = json.loads(setting)
            return (
                f"s3://{explainability['bucket']}/{explainability['prefix'].rstrip('/')}/{version}/analysis_config.json"
            )
    return env.parameter_values["ExplainabilityConfig"]


# Each environment's config by name, for a stage whose registry is another environment's.
_REGISTRY_CONFIGS: dict[str, PlatformConfig] = {}


def deployed(name: str, config: PlatformConfig, stacks: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> Deployed:
    env = environment(name, config, stacks)
    _REGISTRY_CONFIGS[name] = config
    if config.serving is not None:
        promote(env, config, kwargs.get("source"))
    return Deployed(config, env, build_world(env, kwargs.get("extra_principals")))


def from_synthesized(synthesized: Any, config: PlatformConfig, name: str | None = None, **kwargs: Any) -> Deployed:
    """An environment from the suite's `synth` fixture result (one app, one environment)."""
    stacks = [(s.stack_name, synthesized.templates[s.node.id]) for s in synthesized.platform.stacks]
    return deployed(name or config.environment, config, stacks, **kwargs)


def stacks_of_assembly(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """(stack name, template) of every stack of a cloud assembly directory, in manifest order."""
    manifest = json.loads((directory / "manifest.json").read_text())
    found = []
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "aws:cloudformation:stack":
            properties = artifact["properties"]
            template = json.loads((directory / properties["templateFile"]).read_text())
            found.append((properties.get("stackName", properties["templateFile"]), template))
    return found
