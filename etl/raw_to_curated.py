"""Glue Spark job: new raw-zone files to validated, typed, deduplicated, partitioned curated Parquet."""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import partial
from typing import Any

LOG = logging.getLogger(__name__)

ARGUMENTS = ("JOB_NAME", "raw_path", "raw_format", "curated_database", "curated_table", "curated_path")
ARGUMENTS += ("schema", "key_columns", "partition_column")
RAW_FORMATS = ("csv", "json", "parquet")
# Schema type -> pyspark.sql.types class; main() instantiates them, so this module needs no pyspark.
SPARK_TYPES = {
    "string": "StringType",
    "int": "IntegerType",
    "bigint": "LongType",
    "double": "DoubleType",
    "float": "FloatType",
    "boolean": "BooleanType",
    "date": "DateType",
    "timestamp": "TimestampType",
}
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Athena only handles lowercase letters, digits and underscores in database and table names.
CATALOG_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
# Stricter than float()/Decimal(), which also take "inf", "nan" and "1_000".
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NULL_MARKERS = frozenset({"", "null", "none"})
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
INT_BITS = {"int": 32, "bigint": 64}
FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class JobSettings:
    job_name: str
    raw_path: str
    raw_format: str
    curated_database: str
    curated_table: str
    curated_path: str
    columns: tuple[Column, ...]
    key_columns: tuple[str, ...]
    partition_column: str


@dataclass(frozen=True)
class Counts:
    read: int
    rejected: int
    duplicates: int
    written: int


def parse_schema(text: str) -> tuple[Column, ...]:
    """The `schema` argument, a JSON list of {"name", "type"} objects, as columns; ValueError names the bad entry."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"schema is not valid JSON: {error}") from None
    if not isinstance(entries, list):
        raise ValueError("schema must be a JSON list of {name, type} objects")
    if not entries:
        raise ValueError("schema has no columns")
    columns: list[Column] = []
    for index, entry in enumerate(entries):
        if not (isinstance(entry, dict) and all(isinstance(entry.get(key), str) for key in ("name", "type"))):
            raise ValueError(f"schema entry {index} must be an object with string 'name' and 'type': {entry!r}")
        name, type_name = entry["name"], entry["type"]
        if not NAME.match(name):
            raise ValueError(f"schema column name {name!r} is invalid: must match {NAME.pattern}")
        if type_name not in SPARK_TYPES:
            raise ValueError(
                f"schema column {name!r} has unknown type {type_name!r} (one of: {', '.join(SPARK_TYPES)})"
            )
        if any(c.name == name for c in columns):
            raise ValueError(f"schema column {name!r} is duplicated")
        columns.append(Column(name, type_name))
    return tuple(columns)


def parse_arguments(args: Mapping[str, str]) -> JobSettings:
    """Validated job settings from the resolved job arguments; ValueError names the bad argument and value."""
    missing = [name for name in ARGUMENTS if not args.get(name)]
    if missing:
        raise ValueError(f"missing job arguments: {', '.join('--' + name for name in missing)}")
    if args["raw_format"] not in RAW_FORMATS:
        raise ValueError(f"raw_format {args['raw_format']!r} is not supported (one of: {', '.join(RAW_FORMATS)})")
    for name in ("raw_path", "curated_path"):
        if not S3_URI.match(args[name]):
            raise ValueError(f"{name} {args[name]!r} must be an s3://bucket/prefix/ URI")
    raw, curated = (args[name].rstrip("/") + "/" for name in ("raw_path", "curated_path"))
    # The raw read recurses, so curated output under the raw prefix would be read back as input.
    if raw.startswith(curated) or curated.startswith(raw):
        raise ValueError(f"curated_path {args['curated_path']!r} overlaps raw_path {args['raw_path']!r}")
    for name in ("curated_database", "curated_table"):
        if not CATALOG_NAME.match(args[name]):
            raise ValueError(f"{name} {args[name]!r} is invalid: must match {CATALOG_NAME.pattern}")
    columns = parse_schema(args["schema"])
    names = {c.name for c in columns}
    keys = tuple(key.strip() for key in args["key_columns"].split(","))
    for key in keys:
        if key not in names:
            raise ValueError(f"key column {key!r} is not in the schema")
    if len(set(keys)) != len(keys):
        raise ValueError(f"key_columns {args['key_columns']!r} lists a column twice")
    partition = args["partition_column"]
    if not NAME.match(partition):
        raise ValueError(f"partition_column {partition!r} is invalid: must match {NAME.pattern}")
    if partition in names:
        raise ValueError(f"partition_column {partition!r} clashes with a schema column")
    return JobSettings(
        job_name=args["JOB_NAME"],
        raw_path=args["raw_path"],
        raw_format=args["raw_format"],
        curated_database=args["curated_database"],
        curated_table=args["curated_table"],
        curated_path=args["curated_path"],
        columns=columns,
        key_columns=keys,
        partition_column=partition,
    )


def _to_integer(value: Any, bits: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        # is_integer() is False for NaN and infinities as well as for fractions: never truncate.
        number: Any = int(value) if value.is_integer() else None
    elif isinstance(value, int | Decimal):
        number = value
    elif isinstance(value, str) and NUMBER.match(value):
        number = Decimal(value)
    else:
        return None
    if isinstance(number, Decimal):
        # adjusted() bounds the magnitude before int() could build a huge number from "1e999999999".
        if not number.is_finite() or number.adjusted() > 19 or number != number.to_integral_value():
            return None
        number = int(number)
    if number is None or not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
        return None
    return number


def _to_float(value: Any, single: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and NUMBER.match(value)):
        number = float(value)
    else:
        return None
    # Overflow becomes inf in float(), and float32 would turn large doubles into inf: neither is data.
    if not math.isfinite(number) or (single and abs(number) > FLOAT32_MAX):
        return None
    return number


def _parse_iso(parser: Callable[[str], Any], text: str) -> Any:
    try:
        return parser(text)
    except ValueError:
        return None


def _to_utc(moment: datetime) -> datetime:
    # Naive values (ISO text without offset, Spark rows of a UTC Glue worker) are taken to be UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def coerce(value: Any, type_name: str) -> Any:
    """`value` as a Python value of schema type `type_name`, or None when missing or not convertible.

    Strings are stripped; "", "null" and "none" (any case) are missing for every type, "nan" also for numbers.
    Integers are never truncated ("1.5" is None) and must fit the Spark type's range. Timestamps are returned as
    timezone-aware UTC datetimes: Spark converts aware values exactly, whereas naive ones are read in the worker's
    local time zone; text without an offset is taken to be UTC.
    """
    if type_name not in SPARK_TYPES:
        raise ValueError(f"unknown type {type_name!r}")
    if isinstance(value, str):
        value = value.strip()
        if value.lower() in NULL_MARKERS:
            return None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type_name == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, Mapping | list):
            return json.dumps(value, sort_keys=True, default=str)
        return value.isoformat() if isinstance(value, date) else str(value)
    if type_name in INT_BITS:
        return _to_integer(value, INT_BITS[type_name])
    if type_name in ("double", "float"):
        return _to_float(value, single=type_name == "float")
    if type_name == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float | Decimal) and value in (0, 1):
            return value == 1
        word = value.lower() if isinstance(value, str) else None
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None
    if type_name == "date":
        if isinstance(value, datetime):
            return _to_utc(value).date()
        if isinstance(value, date):
            return value
        return _parse_iso(date.fromisoformat, value) if isinstance(value, str) and ISO_DATE.match(value) else None
    # timestamp
    if isinstance(value, datetime):
        return _to_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    # Numbers are not taken as epoch times: seconds or milliseconds cannot be told apart.
    parsed = _parse_iso(datetime.fromisoformat, value) if isinstance(value, str) else None
    return None if parsed is None else _to_utc(parsed)


def normalize_key(key: Any) -> str:
    """A raw field name as a schema column name: stripped, lowercased, whitespace and '-' as '_'."""
    return re.sub(r"[\s-]", "_", str(key).strip().lower())


def clean_record(record: Mapping[str, Any], settings: JobSettings) -> dict[str, Any] | None:
    """The record with exactly the schema columns, typed; None (a reject) when a key column is missing or invalid."""
    fields: dict[str, Any] = {}
    for key, value in record.items():
        # When two raw names normalize to the same column, the first one wins.
        fields.setdefault(normalize_key(key), value)
    cleaned = {column.name: coerce(fields.get(column.name), column.type) for column in settings.columns}
    if any(cleaned[key] is None for key in settings.key_columns):
        return None
    return cleaned


def deduplicate(records: Iterable[Mapping[str, Any]], key_columns: Iterable[str]) -> list[dict[str, Any]]:
    """One record per key, the last one seen, in the order each key was first seen."""
    keys = tuple(key_columns)
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        # Reassigning an existing dict key keeps its original position, hence first-seen order.
        latest[tuple(record[key] for key in keys)] = dict(record)
    return list(latest.values())


def _check_ingest_date(ingest_date: str) -> None:
    if not (ISO_DATE.match(ingest_date) and _parse_iso(date.fromisoformat, ingest_date)):
        raise ValueError(f"ingest date {ingest_date!r} must be a YYYY-MM-DD date")


def transform(
    records: Iterable[Mapping[str, Any]], settings: JobSettings, ingest_date: str
) -> tuple[list[dict[str, Any]], Counts]:
    """Cleaned, deduplicated rows, each with the partition column set to `ingest_date`, and the counts."""
    _check_ingest_date(ingest_date)
    records = list(records)
    valid = [cleaned for record in records if (cleaned := clean_record(record, settings)) is not None]
    rows = [{**row, settings.partition_column: ingest_date} for row in deduplicate(valid, settings.key_columns)]
    read = len(records)
    return rows, Counts(read=read, rejected=read - len(valid), duplicates=len(valid) - len(rows), written=len(rows))


def clean_partition(
    rows: Iterable[Mapping[str, Any]], settings: JobSettings, ingest_date: str
) -> Iterator[tuple[Any, ...]]:
    """For `rdd.mapPartitions`: valid rows as tuples in `spark_fields(settings)` order; rejects are dropped."""
    _check_ingest_date(ingest_date)
    for row in rows:
        if (cleaned := clean_record(row, settings)) is not None:
            yield (*cleaned.values(), ingest_date)


def spark_fields(settings: JobSettings) -> tuple[tuple[str, str], ...]:
    """(column, pyspark.sql.types class name) of curated rows; the partition column is a string."""
    return (*((c.name, SPARK_TYPES[c.type]) for c in settings.columns), (settings.partition_column, "StringType"))


def main() -> None:
    from awsglue.context import GlueContext
    from awsglue.dynamicframe import DynamicFrame
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext
    from pyspark.sql import types

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = getResolvedOptions(sys.argv, list(ARGUMENTS))
    settings = parse_arguments(args)
    ingest_date = datetime.now(UTC).date().isoformat()
    glue_context = GlueContext(SparkContext.getOrCreate())
    job = Job(glue_context)
    job.init(settings.job_name, args)

    # transformation_ctx on source and sink lets job bookmarks skip files already processed.
    raw = glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [settings.raw_path], "recurse": True},
        format=settings.raw_format,
        format_options={"withHeader": True} if settings.raw_format == "csv" else {},
        transformation_ctx="raw",
    )
    # Mixed-type fields arrive as choice types, which toDF() turns into structs; coerce() parses strings.
    raw_df = raw.resolveChoice(choice="cast:string").toDF().cache()
    read = raw_df.count()
    if read == 0:
        LOG.info("no new raw files under %s", settings.raw_path)
        job.commit()
        return

    schema = types.StructType(
        [
            types.StructField(name, getattr(types, type_name)(), nullable=True)
            for name, type_name in spark_fields(settings)
        ]
    )
    clean = partial(clean_partition, settings=settings, ingest_date=ingest_date)
    valid_df = glue_context.spark_session.createDataFrame(
        raw_df.rdd.mapPartitions(lambda rows: clean(row.asDict(recursive=True) for row in rows)), schema
    )
    valid = valid_df.count()
    # Across partitions Spark keeps an arbitrary duplicate, unlike deduplicate(), which keeps the last one.
    curated_df = valid_df.dropDuplicates(list(settings.key_columns)).cache()
    written = curated_df.count()
    counts = Counts(read=read, rejected=read - valid, duplicates=valid - written, written=written)
    LOG.info("counts %s", json.dumps(asdict(counts)))

    if written:
        sink = glue_context.getSink(
            connection_type="s3",
            path=settings.curated_path,
            enableUpdateCatalog=True,
            updateBehavior="LOG",
            partitionKeys=[settings.partition_column],
            transformation_ctx="curated",
        )
        sink.setFormat("glueparquet", compression="snappy")
        sink.setCatalogInfo(catalogDatabase=settings.curated_database, catalogTableName=settings.curated_table)
        sink.writeFrame(DynamicFrame.fromDF(curated_df, glue_context, "curated"))
    else:
        # Still committed below: the bookmark must move past files whose every record was rejected.
        LOG.warning("all %d records were rejected; nothing written", read)
    curated_df.unpersist()
    raw_df.unpersist()
    job.commit()


if __name__ == "__main__":
    main()
