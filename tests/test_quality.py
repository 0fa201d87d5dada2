"""DQDL generation: exact rulesets from config, and malformed rulesets refused before synth."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.config import DatasetConfig, QualityRule, format_errors
from infra.constructs.quality import RulesetError, check_ruleset, rule_statements, ruleset

COLUMNS = [
    {"name": "id", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "label", "type": "int"},
    {"name": "country", "type": "string"},
]


def _dataset(rules: list[dict], min_row_count: int = 10) -> DatasetConfig:
    return DatasetConfig.model_validate(
        {"name": "t", "columns": COLUMNS, "key_columns": ["id"], "quality_rules": rules, "min_row_count": min_row_count}
    )


@pytest.mark.parametrize(
    ("rule", "statements"),
    [
        ({"check": "completeness", "column": "id", "min": 1}, ['IsComplete "id"']),
        ({"check": "completeness", "column": "amount", "min": 0.95}, ['Completeness "amount" >= 0.95']),
        ({"check": "uniqueness", "column": "id", "min": 1.0}, ['IsUnique "id"']),
        ({"check": "uniqueness", "column": "id", "min": 0.999}, ['Uniqueness "id" >= 0.999']),
        (
            {"check": "range", "column": "amount", "min": 0, "max": 1e6},
            ['ColumnValues "amount" >= 0', 'ColumnValues "amount" <= 1000000'],
        ),
        ({"check": "range", "column": "amount", "max": 2.5}, ['ColumnValues "amount" <= 2.5']),
        ({"check": "range", "column": "amount", "min": -3}, ['ColumnValues "amount" >= -3']),
        ({"check": "allowed_values", "column": "label", "values": [0, 1]}, ['ColumnValues "label" in [0, 1]']),
        (
            {"check": "allowed_values", "column": "country", "values": ["DE", "FR"]},
            ['ColumnValues "country" in ["DE", "FR"]'],
        ),
    ],
)
def test_each_check_becomes_exact_dqdl(rule, statements):
    assert rule_statements(QualityRule.model_validate(rule)) == statements


def test_ruleset_starts_with_the_row_count_and_keeps_rule_order():
    text = ruleset(
        _dataset(
            [
                {"check": "uniqueness", "column": "id", "min": 1},
                {"check": "range", "column": "amount", "min": 0},
            ]
        )
    )
    assert text == 'Rules = [\n    RowCount >= 10,\n    IsUnique "id",\n    ColumnValues "amount" >= 0\n]'


def test_generation_is_deterministic():
    rules = [{"check": "allowed_values", "column": "country", "values": ["b", "a"]}]
    assert ruleset(_dataset(rules)) == ruleset(_dataset(rules))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RowCount >= 1", "DQDL ruleset: expected 'Rules = [ ... ]' around the statements"),
        ("Rules = [\n\n]", "DQDL ruleset: no statements"),
        (
            'Rules = [\n    IsComplete "id,\n    RowCount >= 1\n]',
            "DQDL statement 1 = 'IsComplete \"id': not a statement this platform writes",
        ),
        (
            "Rules = [\n    RowCount >= 1,\n    ColumnValues amount >= 0\n]",
            "DQDL statement 2 = 'ColumnValues amount >= 0': not a statement this platform writes",
        ),
        (
            'Rules = [\n    Completeness "id" >= 1.5\n]',
            "DQDL statement 1 = 'Completeness \"id\" >= 1.5': not a statement this platform writes",
        ),
        (
            'Rules = [\n    IsUnique "price"\n]',
            "DQDL statement 1 = 'IsUnique \"price\"': column 'price' is not in the table",
        ),
    ],
)
def test_malformed_rulesets_are_refused_with_the_statement(text, message):
    with pytest.raises(RulesetError) as caught:
        check_ruleset(text, columns=[c["name"] for c in COLUMNS])
    assert str(caught.value) == message


def test_text_values_with_quotes_are_refused_by_the_config():
    with pytest.raises(ValidationError) as caught:
        _dataset([{"check": "allowed_values", "column": "country", "values": ['D"E']}])
    assert format_errors(caught.value, DatasetConfig) == [
        'quality_rules[0].values = ["D\\"E"]: allowed: texts of 1-256 characters without quotes, \'\\\' or newlines'
    ]
