"""Reads an environment's YAML file (duplicate keys refused) and validates it into a PlatformConfig."""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from infra.config.base import ConfigError
from infra.config.errors import format_errors, show
from infra.config.platform import PlatformConfig

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_ENV = "dev"

if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
else:  # libyaml's parser when PyYAML has it: ~10x faster
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(_SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str) -> Any:
    """Parse YAML text with the duplicate-refusing loader (safe: no arbitrary objects)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse_config(data: Any, source: str) -> PlatformConfig:
    """Validate already-parsed YAML data; raise ConfigError with one line per problem."""
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: (top level) = {show(data)}: allowed: a mapping of settings"])
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([f"{source}: {line}" for line in format_errors(exc)]) from None


def load_config_file(path: Path) -> PlatformConfig:
    """Read and validate one YAML config file."""
    source = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read the file ({exc.strerror or exc})"]) from None
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
        raise ConfigError([f"{source}: invalid YAML{where}: {problem}"]) from None
    return parse_config(data, source)


def available_environments() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(env: str | None, config: str | None) -> Path:
    """Turn the `env` / `config` context values into the file to load."""
    if env is not None and config is not None:
        raise ConfigError(
            [f"context: env = {show(env)} and config = {show(config)}: allowed: one of -c env=NAME or -c config=PATH"]
        )
    if config is not None:
        return Path(config)
    name = env or DEFAULT_ENV
    path = CONFIG_DIR / f"{name}.yaml"
    if not re.match(r"^[A-Za-z0-9_-]+$", name) or not path.is_file():
        raise ConfigError(
            [
                f"context: env = {show(name)}: allowed: one of {', '.join(available_environments())} "
                "(files in config/), or -c config=PATH"
            ]
        )
    return path


def load_config(env: str | None = None, config: str | None = None) -> PlatformConfig:
    """Load the configuration the CDK context asks for (`-c env=NAME` or `-c config=PATH`)."""
    return load_config_file(resolve_config_path(env, config))


def display_path(path: Path) -> str:
    """The path as error lines show it: relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
