"""Turns a pydantic ValidationError into one line per problem: the field, the bad value, what is allowed."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from infra.config.platform import PlatformConfig


def format_errors(error: ValidationError, model: type[BaseModel] = PlatformConfig) -> list[str]:
    """One line per problem: `<field path> = <bad value>: allowed: <what is allowed>`."""
    lines: list[str] = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        if err["type"] == "combination":
            lines.extend(
                f"{_path((*loc, field))} = {show(value)}: allowed: {allowed}"
                for field, value, allowed in err["ctx"]["problems"]
            )
        elif err["type"] == "extra_forbidden":
            holder = _holder_model(model, loc[:-1])
            keys = ", ".join(holder.model_fields) if holder else "(none)"
            lines.append(f"{_path(loc)} = {show(err['input'])}: unknown key; allowed keys: {keys}")
        else:
            lines.append(_field_line(err, model, loc))
    return lines


def _field_line(err: ErrorDetails, model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The line of a problem with one field's value, its allowed values taken from the field's declaration."""
    _, info = _field_info(model, loc)
    extra = (info.json_schema_extra or {}) if info is not None else {}
    allowed = extra.get("allowed") if isinstance(extra, dict) else None
    if err["type"] == "missing":
        return f"{_path(loc)}: missing; required: {allowed or 'a value'}"
    if err["type"] == "instance":  # the catalog's own explanation names the API and examples
        allowed = err["msg"]
    if err["type"] in ("model_type", "dict_type") and allowed is None:
        holder = _holder_model(model, loc)
        keys = ", ".join(holder.model_fields) if holder else "keys"
        allowed = f"a mapping with keys: {keys}"
    return f"{_path(loc)} = {show(err['input'])}: allowed: {allowed or err['msg']}"


def _field_info(model: type[BaseModel], loc: Iterable[Any]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """Walk a pydantic location to (the model holding the last key, that key's FieldInfo)."""
    current: type[BaseModel] | None = model
    info = None
    for part in loc:
        if current is None or not isinstance(part, str):
            continue
        holder = current
        info = holder.model_fields.get(part)
        if info is None:
            return holder, None
        current = _model_in(info.annotation)
    return current, info


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as `BudgetConfig | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _holder_model(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model a location points into, for listing its keys."""
    holder: type[BaseModel] | None = model
    for part in loc:
        if holder is None:
            return None
        if isinstance(part, int):
            continue
        info = holder.model_fields.get(part)
        holder = _model_in(info.annotation) if info else None
    return holder


def show(value: Any) -> str:
    """A bad value as the error line prints it: strings quoted, everything else as JSON where it can be."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
