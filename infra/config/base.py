"""What every config section is built on: the strict model, the error type and cross-field rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

# One cross-field problem: the field's path below the model, its bad value, and what is allowed.
Problem = tuple[str, Any, str]

ModelT = TypeVar("ModelT", bound=BaseModel)
# A named cross-field rule of one model: the problems it finds, in the order they are reported.
Rule = Callable[[ModelT], list[Problem]]


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one printable line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Strict(BaseModel):
    """Base model: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def allowed(text: str) -> dict[str, Any]:
    """Attach the human description of the allowed values to a field, used in error lines."""
    return {"json_schema_extra": {"allowed": text}}


def combination(problems: list[Problem]) -> None:
    """Raise one error carrying every cross-field problem found (field, value, allowed)."""
    if problems:
        raise PydanticCustomError(
            "combination",
            "impossible combination",
            {"problems": [list(p) for p in problems]},
        )


def run_rules(model: ModelT, rules: Iterable[Rule[ModelT]]) -> ModelT:
    """Run a model's cross-field rules in order; raise one error carrying every problem they find."""
    combination([problem for rule in rules for problem in rule(model)])
    return model
