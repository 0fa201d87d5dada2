"""The data lake's dataset: its columns, its key and its data quality rules, with their cross-field rules."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from infra.config.base import Problem, Rule, Strict, allowed, run_rules

ZONES = ("raw", "curated", "analytics")
COLUMN_TYPES = ("string", "int", "bigint", "double", "float", "boolean", "date", "timestamp")
NUMERIC_TYPES = frozenset({"int", "bigint", "double", "float"})
# The ETL job adds this partition column to the curated table; no dataset column may take it.
PARTITION_COLUMN = "ingest_date"
_COLUMN = r"^[a-z_][a-z0-9_]{0,127}$"


class ColumnConfig(Strict):
    """A column of the dataset's curated table."""

    name: str = Field(pattern=_COLUMN, **allowed("lowercase letters, digits and '_', starting with a letter or '_'"))
    type: Literal["string", "int", "bigint", "double", "float", "boolean", "date", "timestamp"] = Field(
        **allowed("one of " + ", ".join(COLUMN_TYPES))
    )
    sensitive: bool = Field(
        default=False, **allowed("true or false (true tags the column sensitive: hidden from data scientists)")
    )
    description: str | None = Field(default=None, max_length=255, **allowed("up to 255 characters"))


class QualityRule(Strict):
    """One data quality check on a curated column, turned into DQDL at synth time."""

    check: Literal["completeness", "uniqueness", "range", "allowed_values"] = Field(
        **allowed("one of completeness, uniqueness, range, allowed_values")
    )
    column: str = Field(**allowed("a column of the dataset"))
    min: float | None = Field(
        default=None,
        **allowed("a ratio from 0 to 1 for completeness/uniqueness, the lowest value for range"),
    )
    max: float | None = Field(default=None, **allowed("the highest value, for range only"))
    values: list[str | int | float] | None = Field(
        default=None, min_length=1, max_length=100, **allowed("1 to 100 allowed values, for allowed_values only")
    )

    @model_validator(mode="after")
    def _shape(self) -> QualityRule:
        return run_rules(self, QUALITY_RULE_RULES)


def _ratio_shape(rule: QualityRule) -> list[Problem]:
    """Completeness and uniqueness take a ratio in min, and nothing else."""
    if rule.check not in ("completeness", "uniqueness"):
        return []
    problems: list[Problem] = []
    if rule.min is None or not 0 < rule.min <= 1:
        problems.append(("min", rule.min, f"a ratio above 0 and at most 1 for {rule.check}"))
    if rule.max is not None or rule.values is not None:
        field = "max" if rule.max is not None else "values"
        problems.append((field, getattr(rule, field), f"nothing for {rule.check}; use min"))
    return problems


def _range_shape(rule: QualityRule) -> list[Problem]:
    """A range takes min, max or both, in order, and no values."""
    if rule.check != "range":
        return []
    problems: list[Problem] = []
    if rule.min is None and rule.max is None:
        problems.append(("min", None, "min, max or both for range"))
    elif rule.min is not None and rule.max is not None and rule.min > rule.max:
        problems.append(("max", rule.max, f"at least min ({rule.min:g})"))
    if rule.values is not None:
        problems.append(("values", rule.values, "nothing for range; use min and max"))
    return problems


def _allowed_values_shape(rule: QualityRule) -> list[Problem]:
    """Allowed values take a list of values DQDL can quote, and no min or max."""
    if rule.check != "allowed_values":
        return []
    problems: list[Problem] = []
    if rule.values is None:
        problems.append(("values", None, "a list of allowed values for allowed_values"))
    elif any(isinstance(v, str) and not re.fullmatch(r"[^\x00-\x1f\"\\]{1,256}", v) for v in rule.values):
        problems.append(("values", rule.values, "texts of 1-256 characters without quotes, '\\' or newlines"))
    if rule.min is not None or rule.max is not None:
        field = "min" if rule.min is not None else "max"
        problems.append((field, getattr(rule, field), "nothing for allowed_values; use values"))
    return problems


QUALITY_RULE_RULES: tuple[Rule[QualityRule], ...] = (_ratio_shape, _range_shape, _allowed_values_shape)


class DatasetConfig(Strict):
    """The dataset the lake ingests: raw files in, a typed and checked curated table out."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        **allowed("1-63 lowercase letters, digits and '_', starting with a letter (a Glue table name)"),
    )
    raw_format: Literal["csv", "json", "parquet"] = Field(default="csv", **allowed("csv, json or parquet"))
    columns: list[ColumnConfig] = Field(min_length=1, max_length=500, **allowed("1 to 500 columns"))
    key_columns: list[str] = Field(
        min_length=1, max_length=10, **allowed("1 to 10 columns of the dataset that identify a record")
    )
    quality_rules: list[QualityRule] = Field(
        default_factory=list, max_length=100, **allowed("up to 100 data quality rules")
    )
    min_row_count: int = Field(default=1, ge=0, **allowed("an integer of 0 or more (rows expected per run)"))

    @model_validator(mode="after")
    def _references(self) -> DatasetConfig:
        return run_rules(self, DATASET_RULES)

    @property
    def sensitive_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.sensitive]


def _column_names(dataset: DatasetConfig) -> list[Problem]:
    """Each column name is used once, and none takes the partition column's name."""
    problems: list[Problem] = []
    names = [c.name for c in dataset.columns]
    for i, column in enumerate(dataset.columns):
        if names.count(column.name) > 1 and names.index(column.name) != i:
            problems.append((f"columns[{i}].name", column.name, "a name not used by another column"))
        if column.name == PARTITION_COLUMN:
            problems.append((f"columns[{i}].name", column.name, f"any name but '{PARTITION_COLUMN}' (reserved)"))
    return problems


def _key_columns_exist(dataset: DatasetConfig) -> list[Problem]:
    """The key names columns of the dataset."""
    known = ", ".join(c.name for c in dataset.columns)
    types = {c.name: c.type for c in dataset.columns}
    return [
        (f"key_columns[{i}]", key, f"a column of the dataset: {known}")
        for i, key in enumerate(dataset.key_columns)
        if key not in types
    ]


def _quality_rules_fit_columns(dataset: DatasetConfig) -> list[Problem]:
    """Each quality rule names a column of the dataset whose type its check can test."""
    problems: list[Problem] = []
    known = ", ".join(c.name for c in dataset.columns)
    types = {c.name: c.type for c in dataset.columns}
    for i, rule in enumerate(dataset.quality_rules):
        where = f"quality_rules[{i}]"
        if rule.column not in types:
            problems.append((f"{where}.column", rule.column, f"a column of the dataset: {known}"))
            continue
        kind = types[rule.column]
        if rule.check == "range" and kind not in NUMERIC_TYPES:
            problems.append((f"{where}.column", rule.column, f"a numeric column for range (it is {kind})"))
        if rule.check == "allowed_values" and rule.values is not None:
            problems.extend(_allowed_values_fit(where, rule, kind))
    return problems


def _allowed_values_fit(where: str, rule: QualityRule, kind: str) -> list[Problem]:
    """Allowed values test a string or numeric column, with values of the column's kind."""
    numeric = kind in NUMERIC_TYPES
    if kind not in (*NUMERIC_TYPES, "string"):
        return [(f"{where}.column", rule.column, f"a string or numeric column (it is {kind})")]
    if any(isinstance(v, str) == numeric for v in rule.values or ()):
        what = "numbers" if numeric else "strings"
        return [(f"{where}.values", rule.values, f"{what} only, for {kind} column {rule.column}")]
    return []


DATASET_RULES: tuple[Rule[DatasetConfig], ...] = (_column_names, _key_columns_exist, _quality_rules_fit_columns)
