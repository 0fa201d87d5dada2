"""The deploy-time values of a stored definition: CloudFormation's Fn::Sub over its ${...} placeholders."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pipelines.emulator.errors import EmulationError

_PLACEHOLDER = re.compile(r"\$\{([^}!]+)\}")


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Fn::Sub: every ${Name} replaced by its variable; a name without one fails, as CloudFormation refuses it."""
    unknown = sorted(placeholders(text) - set(variables))
    if unknown:
        raise EmulationError(
            "(deployment)",
            "PipelineDefinitionBody",
            f"${{{unknown[0]}}}",
            "no Fn::Sub variable has this name: CloudFormation refuses the template",
        )
    return _PLACEHOLDER.sub(lambda match: variables[match.group(1)], text).replace("${!", "${")
