"""Glue Data Quality rulesets in DQDL, generated from the dataset config and checked before synth."""

from __future__ import annotations

import re
from collections.abc import Iterable

from infra.config import DatasetConfig, QualityRule

# The statements this module emits, one pattern each: a ruleset that does not match them all
# would be refused by Glue at deploy time (or, worse, evaluate something else).
_NAME = r'"[a-z_][a-z0-9_]*"'
_NUMBER = r"-?\d+(?:\.\d+)?"
_VALUE = rf'(?:{_NUMBER}|"[^"\\\n]*")'
_STATEMENTS = (
    re.compile(r"^RowCount >= \d+$"),
    re.compile(rf"^IsComplete {_NAME}$"),
    re.compile(rf"^IsUnique {_NAME}$"),
    re.compile(rf"^(?:Completeness|Uniqueness) {_NAME} >= (?:0\.\d+|1(?:\.0+)?)$"),
    re.compile(rf"^ColumnValues {_NAME} (?:>=|<=) {_NUMBER}$"),
    re.compile(rf"^ColumnValues {_NAME} in \[{_VALUE}(?:, {_VALUE})*\]$"),
)


class RulesetError(ValueError):
    """A ruleset that is not the DQDL this platform knows how to write."""


def _number(value: float) -> str:
    """A number as DQDL reads it, without float noise: 1.0 -> '1', 0.95 -> '0.95'."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _literal(value: str | int | float) -> str:
    if isinstance(value, str):
        return f'"{value}"'  # the config allows no quotes, backslashes or control characters in values
    return _number(value)


def rule_statements(rule: QualityRule) -> list[str]:
    """The DQDL statements of one configured rule."""
    column = f'"{rule.column}"'
    if rule.check in ("completeness", "uniqueness"):
        assert rule.min is not None
        if rule.min == 1:
            return [f"{'IsComplete' if rule.check == 'completeness' else 'IsUnique'} {column}"]
        return [f"{rule.check.capitalize()} {column} >= {_number(rule.min)}"]
    if rule.check == "range":
        # Two comparisons instead of `between`, whose bounds are exclusive in DQDL.
        statements = []
        if rule.min is not None:
            statements.append(f"ColumnValues {column} >= {_number(rule.min)}")
        if rule.max is not None:
            statements.append(f"ColumnValues {column} <= {_number(rule.max)}")
        return statements
    assert rule.values is not None
    return [f"ColumnValues {column} in [{', '.join(_literal(v) for v in rule.values)}]"]


def ruleset(dataset: DatasetConfig) -> str:
    """The DQDL ruleset of the dataset's curated table: row count first, then each rule in order."""
    statements = [f"RowCount >= {dataset.min_row_count}"]
    for rule in dataset.quality_rules:
        statements.extend(rule_statements(rule))
    text = "Rules = [\n" + ",\n".join(f"    {s}" for s in statements) + "\n]"
    check_ruleset(text, columns=(c.name for c in dataset.columns))
    return text


def check_ruleset(text: str, *, columns: Iterable[str]) -> None:
    """Raise RulesetError naming the first statement that is malformed or names an unknown column."""
    match = re.fullmatch(r"Rules = \[\n(.*)\n\]", text, flags=re.DOTALL)
    if not match:
        raise RulesetError("DQDL ruleset: expected 'Rules = [ ... ]' around the statements")
    known = set(columns)
    statements = [line.strip() for line in match.group(1).split(",\n")]
    if not statements or statements == [""]:
        raise RulesetError("DQDL ruleset: no statements")
    for number, statement in enumerate(statements, start=1):
        if not any(pattern.match(statement) for pattern in _STATEMENTS):
            raise RulesetError(f"DQDL statement {number} = {statement!r}: not a statement this platform writes")
        name = re.search(r'^\w+ "([^"]+)"', statement)
        if name and name.group(1) not in known:
            raise RulesetError(f"DQDL statement {number} = {statement!r}: column {name.group(1)!r} is not in the table")
