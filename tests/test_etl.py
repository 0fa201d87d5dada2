"""Raw-to-curated Glue job: schema and argument checks, type coercion, cleaning, deduplication and counts."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etl import raw_to_curated as etl
from etl.raw_to_curated import Column, Counts

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "etl" / "raw_to_curated.py"
SCHEMA = [
    {"name": "order_id", "type": "bigint"},
    {"name": "region", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "paid", "type": "boolean"},
    {"name": "ordered_at", "type": "timestamp"},
]
ARGS = {
    "JOB_NAME": "raw-to-curated-orders",
    "raw_path": "s3://data-raw/orders/",
    "raw_format": "csv",
    "curated_database": "curated",
    "curated_table": "orders",
    "curated_path": "s3://data-curated/orders/",
    "schema": json.dumps(SCHEMA),
    "key_columns": "order_id,region",
    "partition_column": "ingest_date",
}
DAY = "2024-05-02"


@pytest.fixture
def settings() -> etl.JobSettings:
    return etl.parse_arguments(ARGS)


def _args(**changes: str) -> dict[str, str]:
    return {**ARGS, **changes}


def _raises(message: str):
    """The exact one-line message, whole."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


# --- schema -------------------------------------------------------------------------------------


def test_parse_schema_keeps_order_and_types():
    assert etl.parse_schema(json.dumps(SCHEMA)) == (
        Column("order_id", "bigint"),
        Column("region", "string"),
        Column("amount", "double"),
        Column("paid", "boolean"),
        Column("ordered_at", "timestamp"),
    )


def test_parse_schema_accepts_every_type():
    types = ["string", "int", "bigint", "double", "float", "boolean", "date", "timestamp"]
    text = json.dumps([{"name": f"c_{t}", "type": t} for t in types])
    assert [c.type for c in etl.parse_schema(text)] == types


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("[", "schema is not valid JSON: Expecting value: line 1 column 2 (char 1)"),
        ('{"name": "a", "type": "int"}', "schema must be a JSON list of {name, type} objects"),
        ("[]", "schema has no columns"),
        ('[{"name": "a"}]', "schema entry 0 must be an object with string 'name' and 'type': {'name': 'a'}"),
        ('[{"name": "a", "type": "int"}, "b"]', "schema entry 1 must be an object with string 'name' and 'type': 'b'"),
        (
            '[{"name": "a", "type": 3}]',
            "schema entry 0 must be an object with string 'name' and 'type': {'name': 'a', 'type': 3}",
        ),
        (
            '[{"name": "Order ID", "type": "int"}]',
            "schema column name 'Order ID' is invalid: must match ^[a-z_][a-z0-9_]*$",
        ),
        ('[{"name": "1st", "type": "int"}]', "schema column name '1st' is invalid: must match ^[a-z_][a-z0-9_]*$"),
        (
            '[{"name": "age", "type": "integer"}]',
            "schema column 'age' has unknown type 'integer' "
            "(one of: string, int, bigint, double, float, boolean, date, timestamp)",
        ),
        (
            '[{"name": "age", "type": "INT"}]',
            "schema column 'age' has unknown type 'INT' "
            "(one of: string, int, bigint, double, float, boolean, date, timestamp)",
        ),
        ('[{"name": "id", "type": "int"}, {"name": "id", "type": "string"}]', "schema column 'id' is duplicated"),
    ],
)
def test_parse_schema_errors_name_the_bad_entry(schema: str, message: str):
    with _raises(message):
        etl.parse_schema(schema)


# --- arguments ----------------------------------------------------------------------------------


def test_parse_arguments(settings: etl.JobSettings):
    assert settings == etl.JobSettings(
        job_name="raw-to-curated-orders",
        raw_path="s3://data-raw/orders/",
        raw_format="csv",
        curated_database="curated",
        curated_table="orders",
        curated_path="s3://data-curated/orders/",
        columns=etl.parse_schema(json.dumps(SCHEMA)),
        key_columns=("order_id", "region"),
        partition_column="ingest_date",
    )


def test_parse_arguments_strips_key_columns_and_accepts_every_format():
    assert etl.parse_arguments(_args(key_columns=" region , order_id ")).key_columns == ("region", "order_id")
    assert [etl.parse_arguments(_args(raw_format=f)).raw_format for f in ("csv", "json", "parquet")] == [
        "csv",
        "json",
        "parquet",
    ]


def test_arguments_list_matches_what_parse_arguments_reads():
    assert etl.ARGUMENTS == (
        "JOB_NAME",
        "raw_path",
        "raw_format",
        "curated_database",
        "curated_table",
        "curated_path",
        "schema",
        "key_columns",
        "partition_column",
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"raw_path": ""}, "missing job arguments: --raw_path"),
        ({"raw_format": "xml"}, "raw_format 'xml' is not supported (one of: csv, json, parquet)"),
        ({"raw_format": "CSV"}, "raw_format 'CSV' is not supported (one of: csv, json, parquet)"),
        ({"raw_path": "data-raw/orders/"}, "raw_path 'data-raw/orders/' must be an s3://bucket/prefix/ URI"),
        ({"curated_path": "s3a://b/x/"}, "curated_path 's3a://b/x/' must be an s3://bucket/prefix/ URI"),
        (
            {"curated_path": "s3://data-raw/orders/curated/"},
            "curated_path 's3://data-raw/orders/curated/' overlaps raw_path 's3://data-raw/orders/'",
        ),
        ({"curated_path": "s3://data-raw"}, "curated_path 's3://data-raw' overlaps raw_path 's3://data-raw/orders/'"),
        (
            {"curated_database": "curated-db"},
            "curated_database 'curated-db' is invalid: must match ^[a-z0-9_]{1,255}$",
        ),
        ({"curated_table": "Orders"}, "curated_table 'Orders' is invalid: must match ^[a-z0-9_]{1,255}$"),
        ({"schema": "[]"}, "schema has no columns"),
        ({"key_columns": "order_id,customer"}, "key column 'customer' is not in the schema"),
        ({"key_columns": "order_id,"}, "key column '' is not in the schema"),
        ({"key_columns": "order_id, order_id"}, "key_columns 'order_id, order_id' lists a column twice"),
        ({"partition_column": "region"}, "partition_column 'region' clashes with a schema column"),
        (
            {"partition_column": "Ingest-Date"},
            "partition_column 'Ingest-Date' is invalid: must match ^[a-z_][a-z0-9_]*$",
        ),
    ],
)
def test_parse_arguments_errors_name_the_bad_value(changes: dict[str, str], message: str):
    with _raises(message):
        etl.parse_arguments(_args(**changes))


def test_parse_arguments_lists_every_missing_argument():
    args = {k: v for k, v in ARGS.items() if k not in ("JOB_NAME", "key_columns")}
    with _raises("missing job arguments: --JOB_NAME, --key_columns"):
        etl.parse_arguments(args)


# --- coercion -----------------------------------------------------------------------------------

BIG = 2**63


@pytest.mark.parametrize(
    ("value", "type_name", "expected"),
    [
        # missing markers, for every type
        *[(marker, t, None) for marker in ("", "  ", "null", "NULL", "None", None) for t in etl.SPARK_TYPES],
        # string
        ("  Acme  ", "string", "Acme"),
        ("NaN", "string", "NaN"),
        (12, "string", "12"),
        (1.5, "string", "1.5"),
        (True, "string", "true"),
        (date(2024, 1, 2), "string", "2024-01-02"),
        ({"b": 1, "a": [1, 2]}, "string", '{"a": [1, 2], "b": 1}'),
        # int / bigint
        ("42", "int", 42),
        (" -7 ", "int", -7),
        ("+3", "int", 3),
        ("3.0", "int", 3),
        ("1e3", "int", 1000),
        (12, "int", 12),
        (4.0, "int", 4),
        (Decimal("5"), "int", 5),
        ("1.5", "int", None),
        (1.5, "int", None),
        ("abc", "int", None),
        ("1_000", "int", None),
        ("NaN", "int", None),
        ("inf", "int", None),
        (float("nan"), "int", None),
        (float("inf"), "int", None),
        (True, "int", None),
        ("2147483647", "int", 2147483647),
        ("2147483648", "int", None),
        ("-2147483648", "int", -2147483648),
        ("2147483648", "bigint", 2147483648),
        (str(BIG - 1), "bigint", BIG - 1),
        (str(BIG), "bigint", None),
        (str(-BIG), "bigint", -BIG),
        ("1e999999999", "bigint", None),
        # double / float
        ("2.50", "double", 2.5),
        ("-1e-3", "double", -0.001),
        (".5", "double", 0.5),
        (3, "double", 3.0),
        (Decimal("1.25"), "double", 1.25),
        ("NaN", "double", None),
        ("nan", "float", None),
        (float("nan"), "double", None),
        ("inf", "double", None),
        ("1e400", "double", None),
        ("12abc", "double", None),
        (False, "double", None),
        ("1e38", "float", 1e38),
        ("1e39", "float", None),
        ("1e39", "double", 1e39),
        # boolean
        *[(word, "boolean", True) for word in ("true", "TRUE", "True", "1", "yes", "YES", " yes ")],
        *[(word, "boolean", False) for word in ("false", "FALSE", "0", "no", "No")],
        (True, "boolean", True),
        (False, "boolean", False),
        (1, "boolean", True),
        (0, "boolean", False),
        (2, "boolean", None),
        ("y", "boolean", None),
        ("maybe", "boolean", None),
        # date
        ("2024-02-29", "date", date(2024, 2, 29)),
        ("2023-02-29", "date", None),
        ("2024-13-01", "date", None),
        ("20240102", "date", None),
        ("2024-01-02T10:00:00", "date", None),
        ("02/01/2024", "date", None),
        (date(2024, 1, 2), "date", date(2024, 1, 2)),
        (datetime(2024, 1, 2, 23, 30, tzinfo=timezone(timedelta(hours=-2))), "date", date(2024, 1, 3)),
        (20240102, "date", None),
        # timestamp: timezone-aware UTC
        ("2024-03-01T12:30:00Z", "timestamp", datetime(2024, 3, 1, 12, 30, tzinfo=UTC)),
        ("2024-03-01T12:30:00+02:00", "timestamp", datetime(2024, 3, 1, 10, 30, tzinfo=UTC)),
        ("2024-03-01 12:30:00.250", "timestamp", datetime(2024, 3, 1, 12, 30, 0, 250000, tzinfo=UTC)),
        ("2024-03-01", "timestamp", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01T25:00:00", "timestamp", None),
        ("yesterday", "timestamp", None),
        (1_700_000_000, "timestamp", None),
        (datetime(2024, 3, 1, 12, 30), "timestamp", datetime(2024, 3, 1, 12, 30, tzinfo=UTC)),
        (date(2024, 3, 1), "timestamp", datetime(2024, 3, 1, tzinfo=UTC)),
    ],
)
def test_coerce(value: Any, type_name: str, expected: Any):
    result = etl.coerce(value, type_name)
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(expected, datetime):
        assert result.tzinfo is UTC


def test_coerce_rejects_an_unknown_type():
    with _raises("unknown type 'integer'"):
        etl.coerce("1", "integer")


# --- records ------------------------------------------------------------------------------------


def _order(order_id: Any = "1", region: Any = "eu", **extra: Any) -> dict[str, Any]:
    return {"Order ID": order_id, "region": region, "amount": "9.5", "paid": "yes", **extra}


def test_clean_record_normalizes_keys_keeps_schema_columns_and_coerces(settings: etl.JobSettings):
    record = {" Order-ID ": "7", "REGION": " eu ", "Amount": "12", "paid": "no", "Ordered At": "2024-01-02T03:04:05Z"}
    assert etl.clean_record({**record, "comment": "dropped"}, settings) == {
        "order_id": 7,
        "region": "eu",
        "amount": 12.0,
        "paid": False,
        "ordered_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    }


def test_clean_record_fills_missing_and_unconvertible_columns_with_none(settings: etl.JobSettings):
    assert etl.clean_record({"order_id": 1, "region": "eu", "amount": "lots"}, settings) == {
        "order_id": 1,
        "region": "eu",
        "amount": None,
        "paid": None,
        "ordered_at": None,
    }


@pytest.mark.parametrize(
    "record",
    [
        {"region": "eu"},
        {"order_id": "", "region": "eu"},
        {"order_id": "null", "region": "eu"},
        {"order_id": "1.5", "region": "eu"},
        {"order_id": "abc", "region": "eu"},
        {"order_id": "1", "region": "NULL"},
        {"order_id": "1", "region": "   "},
    ],
)
def test_clean_record_rejects_a_missing_or_invalid_key(settings: etl.JobSettings, record: dict[str, Any]):
    assert etl.clean_record(record, settings) is None


def test_clean_record_first_of_colliding_names_wins(settings: etl.JobSettings):
    cleaned = etl.clean_record({"order_id": "1", "Region": "eu", "region": "us"}, settings)
    assert cleaned is not None
    assert cleaned["region"] == "eu"


def test_deduplicate_keeps_last_record_in_first_seen_key_order():
    records = [
        {"id": 1, "r": "a", "v": "first"},
        {"id": 2, "r": "a", "v": "only"},
        {"id": 1, "r": "b", "v": "other key"},
        {"id": 1, "r": "a", "v": "last"},
    ]
    original = [dict(r) for r in records]
    assert etl.deduplicate(records, ["id", "r"]) == [
        {"id": 1, "r": "a", "v": "last"},
        {"id": 2, "r": "a", "v": "only"},
        {"id": 1, "r": "b", "v": "other key"},
    ]
    assert records == original
    assert etl.deduplicate([], ["id"]) == []


def test_transform_rows_and_counts(settings: etl.JobSettings):
    records = [
        _order("1", "eu", amount="1"),
        _order("2", "eu"),
        _order("", "eu"),  # rejected: no key
        _order("1", "eu", amount="3"),  # duplicate of the first, wins
        _order("1.5", "us"),  # rejected: key is not an integer
        _order("1", "us", paid="maybe"),  # kept, paid unknown
    ]
    rows, counts = etl.transform(iter(records), settings, DAY)
    assert counts == Counts(read=6, rejected=2, duplicates=1, written=3)
    assert rows == [
        {"order_id": 1, "region": "eu", "amount": 3.0, "paid": True, "ordered_at": None, "ingest_date": DAY},
        {"order_id": 2, "region": "eu", "amount": 9.5, "paid": True, "ordered_at": None, "ingest_date": DAY},
        {"order_id": 1, "region": "us", "amount": 9.5, "paid": None, "ordered_at": None, "ingest_date": DAY},
    ]
    assert list(rows[0]) == [name for name, _ in etl.spark_fields(settings)]


def test_transform_of_nothing(settings: etl.JobSettings):
    assert etl.transform([], settings, DAY) == ([], Counts(read=0, rejected=0, duplicates=0, written=0))


@pytest.mark.parametrize("day", ["2024-5-2", "2024/05/02", "2024-02-30", ""])
def test_transform_rejects_a_bad_ingest_date(settings: etl.JobSettings, day: str):
    with _raises(f"ingest date {day!r} must be a YYYY-MM-DD date"):
        etl.transform([_order()], settings, day)
    with _raises(f"ingest date {day!r} must be a YYYY-MM-DD date"):
        next(etl.clean_partition([_order()], settings, day))


def test_clean_partition_yields_tuples_in_spark_field_order(settings: etl.JobSettings):
    rows = iter([_order("3", "eu"), _order("x", "eu"), _order("3", "eu")])
    out = etl.clean_partition(rows, settings, DAY)
    assert next(out) == (3, "eu", 9.5, True, None, DAY)
    # Rows are consumed lazily, one partition row at a time.
    assert next(rows)["Order ID"] == "x"
    # Deduplication across partitions is Spark's dropDuplicates, so a partition keeps repeats.
    assert list(out) == [(3, "eu", 9.5, True, None, DAY)]


def test_spark_fields(settings: etl.JobSettings):
    assert etl.spark_fields(settings) == (
        ("order_id", "LongType"),
        ("region", "StringType"),
        ("amount", "DoubleType"),
        ("paid", "BooleanType"),
        ("ordered_at", "TimestampType"),
        ("ingest_date", "StringType"),
    )


# --- module -------------------------------------------------------------------------------------


def test_module_level_imports_are_standard_library_only():
    tree = ast.parse(SCRIPT.read_text())
    modules = [alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names]
    modules += [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module]
    assert modules, "expected module-level imports"
    assert [m for m in modules if m.split(".")[0] not in sys.stdlib_module_names | {"__future__"}] == []


def test_imports_without_glue_or_spark_and_main_needs_them():
    # None in sys.modules makes any import of the package fail, as on a machine without Glue libraries.
    code = (
        "import sys\n"
        "sys.modules.update(awsglue=None, pyspark=None)\n"
        "from etl import raw_to_curated as job\n"
        "assert callable(job.main)\n"
        "try:\n"
        "    job.main()\n"
        "except ImportError as error:\n"
        "    print('ImportError', error.name)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ImportError awsglue.context"
