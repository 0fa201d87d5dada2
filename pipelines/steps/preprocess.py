"""SageMaker Processing step: curated table to reproducible train/validation/test splits and a monitoring baseline."""

# Runs in the SageMaker scikit-learn processing image, whose Python and pandas are older than the
# repo's: runtime code sticks to Python 3.8 and pandas 1.1 features (annotations are strings).
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

# What SageMaker mounts as /opt/ml. SAGEMAKER_BASE_DIR is the training toolkit's name for it; SageMaker
# sets it in no container, and the pipeline emulator (pipelines/emulator) sets it to run the step elsewhere.
OPT_ML = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))
INPUT_SUFFIXES = (".csv", ".parquet")
SPLITS = ("train", "validation", "test")
INPUT_DIR = "processing/input"
OUTPUT_DIR = "processing/output"
SCHEMA_FILE = "schema.json"
CLARIFY_FILES = ("config/analysis_config.json", "data/data.csv", "monitoring/analysis_config.json")
# Where the processing job receives the platform's monitoring library (a ProcessingInput), and
# where the pipeline has the platform engine's baseline written (--monitoring-baseline-dir).
LIBRARY_DIR = "processing/input/library"
MONITORING_DIR = "processing/monitoring"
# Container contract, checked against the pipeline definition and against what the step writes
# (pipelines/emulator/contract.py): directories under /opt/ml -> files read (any of) or written (all).
READS = {INPUT_DIR: ("*.csv", "*.parquet"), LIBRARY_DIR: ("*.zip",)}
WRITES = {
    OUTPUT_DIR + "/train": ("train.csv", SCHEMA_FILE),
    OUTPUT_DIR + "/validation": ("validation.csv",),
    OUTPUT_DIR + "/test": ("test.csv",),
    OUTPUT_DIR + "/baseline": ("baseline.csv",),
    OUTPUT_DIR + "/clarify": CLARIFY_FILES,
    MONITORING_DIR: ("data_quality/statistics.json", "data_quality/constraints.json"),
}
# Read or written only when the pipeline passes the option.
READ_WITH = {LIBRARY_DIR: "--monitoring-baseline-dir"}
WRITTEN_WITH = {OUTPUT_DIR + "/clarify": "--bias-facet", MONITORING_DIR: "--monitoring-baseline-dir"}
# Written only without an option: the Model Monitor baseline, which the platform engine's replaces.
WRITTEN_WITHOUT = {OUTPUT_DIR + "/baseline": "--monitoring-baseline-dir"}
# The evaluation step refuses a smaller test split (pipelines/steps/evaluate.py): fail here first.
MIN_TEST_SHARE = 0.10
# Text read as missing in numeric CSV columns; the key column treats only an empty field as missing.
NA_STRINGS = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None")


class PreprocessError(ValueError):
    """The input cannot give sound splits; the message is one line naming the problem and the numbers."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input-dir", type=Path, default=OPT_ML / INPUT_DIR)
    parser.add_argument("--output-dir", type=Path, default=OPT_ML / OUTPUT_DIR)
    parser.add_argument("--key", required=True, help="column identifying a row; the split is a hash of it")
    parser.add_argument("--target", required=True, help="binary 0/1 label column")
    parser.add_argument("--features", required=True, help="comma-separated numeric feature columns, in model order")
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument(
        "--seed",
        default=None,
        help="optional salt mixed into the key hash: another value gives another split, just as reproducible",
    )
    parser.add_argument("--bias-facet", default=None, help="feature whose groups the Clarify bias baseline compares")
    parser.add_argument(
        "--bias-threshold", type=float, default=None, help="facet values above it form the group Clarify compares"
    )
    parser.add_argument(
        "--monitoring-baseline-dir",
        type=Path,
        default=None,
        help="write the platform monitoring engine's data-quality baseline here (data_quality/); none unless given",
    )
    parser.add_argument(
        "--library-dir",
        type=Path,
        default=OPT_ML / LIBRARY_DIR,
        help="where the platform's monitoring library is (a zip of the `monitoring` package, or its parent directory)",
    )
    args = parser.parse_args(argv)
    args.features = [name.strip() for name in args.features.split(",") if name.strip()]
    return args


def clarify_bias_config(target: str, facet: str, threshold: float) -> dict[str, object]:
    """The Clarify analysis config of the pre-training bias baseline over `clarify/data/data.csv`."""
    return {
        "dataset_type": "text/csv",
        # The data file has no header row: Clarify takes the column names from here.
        "headers": [target, facet],
        "label": target,
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": facet, "value_or_threshold": [threshold]}],
        "methods": {"pre_training_bias": {"methods": "all"}, "report": {"name": "report", "title": "Analysis Report"}},
    }


def clarify_monitor_config(features: Sequence[str], facet: str, threshold: float) -> dict[str, object]:
    """The analysis config of the endpoint's model-bias monitor (the SDK's BiasAnalysisConfig layout).

    The monitor reads captured requests (the features, no header) joined with the ground-truth
    labels Model Monitor merges in as `label`.
    """
    return {
        "label_values_or_threshold": [1],
        "facet": [{"name_or_index": facet, "value_or_threshold": [threshold]}],
        "headers": list(features),
        "label": "label",
    }


def write_clarify_inputs(
    output_dir: Path, train: pd.DataFrame, target: str, facet: str, threshold: float, features: Sequence[str]
) -> None:
    """Config and data of the bias baseline job: written here because the SDK would upload them at build time.

    Also the model-bias monitor's config, registered with the model version as its bias drift config.
    """
    config_file, data_file, monitor_file = (output_dir / "clarify" / name for name in CLARIFY_FILES)
    for path in (config_file, data_file, monitor_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    config = clarify_bias_config(target, facet, threshold)
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    train[[target, facet]].to_csv(data_file, index=False, header=False)
    monitor = clarify_monitor_config(features, facet, threshold)
    monitor_file.write_text(json.dumps(monitor, indent=2) + "\n")


def check_arguments(key: str, target: str, features: Sequence[str], validation: float, test: float) -> None:
    if not features:
        raise PreprocessError("--features names no column")
    if len(set(features)) != len(features):
        raise PreprocessError(f"--features names a column twice: {list(features)}")
    if key in features or target in features or key == target:
        raise PreprocessError(f"key {key!r}, target {target!r} and features {list(features)} must be distinct")
    if not (0 < test < 1 and 0 < validation < 1 and validation + test < 1):
        raise PreprocessError(
            f"fractions must be in (0, 1) and leave rows for training: validation {validation}, test {test}"
        )


def input_files(input_dir: Path) -> list[Path]:
    """Data files under `input_dir`, in path order.

    Names starting with `_` or `.` are Spark/Hadoop bookkeeping (`_SUCCESS`, `.crc`). Path order makes
    "keep the last duplicate" mean the last file: with `ingest_date=YYYY-MM-DD` partitions, the latest load.
    """
    return sorted(
        path
        for path in input_dir.rglob("*")
        if path.is_file() and path.suffix.lower() in INPUT_SUFFIXES and not path.name.startswith(("_", "."))
    )


def read_table(path: Path, key: str, target: str, features: Sequence[str]) -> pd.DataFrame:
    """The key, target and feature columns of one file; other columns (e-mail addresses...) are never loaded."""
    columns = [key, target, *features]
    if path.suffix.lower() == ".parquet":
        try:
            return pd.read_parquet(path, columns=columns)
        except (KeyError, ValueError) as error:
            raise PreprocessError(f"{path.name}: cannot read columns {columns}: {error}") from None
    header = list(pd.read_csv(path, nrows=0).columns)
    missing = [name for name in columns if name not in header]
    if missing:
        raise PreprocessError(f"{path.name}: missing columns {missing}; it has {header}")
    # Text first, so keys keep leading zeros and a key spelled "NA" stays a key.
    na_values = {name: list(NA_STRINGS) for name in [target, *features]}
    na_values[key] = [""]
    return pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_values=na_values)[columns]


def _numbers(values: pd.Series, name: str) -> pd.Series:
    """`values` as floats; missing stays NaN, anything else that is not a finite number is an error."""
    parsed = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = values.notna() & ~np.isfinite(parsed)
    if bad.any():
        example = values[bad].iloc[0]
        raise PreprocessError(f"column {name!r} is not numeric: {int(bad.sum())} values such as {example!r}")
    return parsed


def clean(frame: pd.DataFrame, key: str, target: str, features: Sequence[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Typed columns; rows without key or target dropped, then one row per key (the last one)."""
    keys = frame[key].astype("string").str.strip()
    # Plain numpy masks: comparisons on the nullable string dtype give NA, which older pandas cannot index with.
    no_key = (keys.isna() | (keys.fillna("") == "")).to_numpy(dtype=bool)
    labels = _numbers(frame[target], target)
    invalid = labels.notna() & ~labels.isin([0, 1])
    if invalid.any():
        example = frame[target][invalid].iloc[0]
        raise PreprocessError(f"target {target!r} must be 0 or 1: {int(invalid.sum())} values such as {example!r}")
    data = {key: keys, target: labels}
    for name in features:
        data[name] = _numbers(frame[name], name)
    typed = pd.DataFrame(data, columns=[key, target, *features])
    counts = {"rows_read": len(typed), "missing_key": int(no_key.sum())}
    typed = typed[~no_key]
    no_target = typed[target].isna().to_numpy(dtype=bool)
    counts["missing_target"] = int(no_target.sum())
    typed = typed[~no_target]
    unique = typed.drop_duplicates(subset=[key], keep="last")
    counts["duplicates"] = len(typed) - len(unique)
    unique = unique.astype({key: str, target: "int64"}).reset_index(drop=True)
    return unique, counts


def split_bucket(key: str, seed: str | None = None) -> float:
    """A stable position in [0, 1) for `key`: the first 64 bits of its SHA-256, so any machine agrees."""
    text = key if seed is None else f"{seed}\x00{key}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(keys: pd.Series, validation: float, test: float, seed: str | None = None) -> np.ndarray:
    """Split name per key: test below `test`, validation next, train the rest.

    Test is the lowest band, so a key's membership of the test split depends on nothing but the key
    and the test fraction: changing the validation fraction never moves a key into or out of test.
    """
    buckets = np.array([split_bucket(key, seed) for key in keys], dtype="float64")
    return np.where(buckets < test, "test", np.where(buckets < test + validation, "validation", "train"))


def check_splits(splits: dict[str, pd.DataFrame], target: str) -> None:
    train_rows, test_rows = len(splits["train"]), len(splits["test"])
    if test_rows < MIN_TEST_SHARE * train_rows or test_rows == 0:
        raise PreprocessError(
            f"test split has {test_rows} rows, fewer than {MIN_TEST_SHARE:.0%} of the {train_rows} training rows "
            f"({MIN_TEST_SHARE * train_rows:.0f}): raise --test-fraction or add data"
        )
    # The test split first: the evaluation step needs both classes for AUC, precision and recall.
    for name in ("test", "train", "validation"):
        classes = sorted(int(value) for value in splits[name][target].unique())
        if classes != [0, 1]:
            raise PreprocessError(
                f"{name} split has {len(splits[name])} rows and target classes {classes}; it needs both 0 and 1"
            )


def build_splits(
    frame: pd.DataFrame,
    key: str,
    target: str,
    features: Sequence[str],
    validation: float = 0.15,
    test: float = 0.15,
    seed: str | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Cleaned rows of `frame` split by key hash into train, validation and test (columns key, target, features)."""
    check_arguments(key, target, features, validation, test)
    rows, counts = clean(frame, key, target, features)
    if rows.empty:
        raise PreprocessError(f"none of the {counts['rows_read']} rows read has both a key and a target")
    names = assign_splits(rows[key], validation, test, seed)
    splits = {name: rows[names == name].reset_index(drop=True) for name in SPLITS}
    check_splits(splits, target)
    return splits, counts


def write_outputs(
    output_dir: Path,
    splits: dict[str, pd.DataFrame],
    key: str,
    target: str,
    features: Sequence[str],
    *,
    model_monitor_baseline: bool = True,
) -> None:
    for name, rows in splits.items():
        (output_dir / name).mkdir(parents=True, exist_ok=True)
        rows.to_csv(output_dir / name / f"{name}.csv", index=False)
    schema = {"key": key, "target": target, "features": list(features)}
    (output_dir / "train" / SCHEMA_FILE).write_text(json.dumps(schema, indent=2) + "\n")
    if model_monitor_baseline:
        # What an endpoint receives: the features alone, as the Model Monitor data-quality baseline.
        (output_dir / "baseline").mkdir(parents=True, exist_ok=True)
        splits["train"][list(features)].to_csv(output_dir / "baseline" / "baseline.csv", index=False)


def use_library(library_dir: Path) -> None:
    """Put the platform's monitoring library on the import path.

    SageMaker copies it into `library_dir` as the zip the deployment uploaded (the `monitoring`
    package at the zip's root; Python imports from a zip), or it is a directory holding the package.
    """
    entries = sorted(library_dir.glob("*.zip")) if library_dir.is_dir() else []
    for entry in (*entries, library_dir):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    if importlib.util.find_spec("monitoring") is None:
        raise PreprocessError(
            f"--library-dir {library_dir} holds no `monitoring` package (a zip of it, or its parent directory); "
            "--monitoring-baseline-dir needs it"
        )


def write_monitoring_baseline(output_dir: Path, train: pd.DataFrame, features: Sequence[str]) -> None:
    """The platform engine's data-quality baseline of the training features (what an endpoint receives)."""
    from monitoring.baseline import write_data_quality_baseline

    write_data_quality_baseline(output_dir / "data_quality", train, features)


def summary(splits: dict[str, pd.DataFrame], counts: dict[str, int], target: str) -> dict[str, object]:
    return {
        **counts,
        "splits": {
            name: {"rows": len(rows), "positive_rate": round(float(rows[target].mean()), 4)}
            for name, rows in splits.items()
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.monitoring_baseline_dir is not None:
            use_library(args.library_dir)
        files = input_files(args.input_dir)
        if not files:
            raise PreprocessError(f"no {' or '.join(INPUT_SUFFIXES)} file under {args.input_dir}")
        frame = pd.concat([read_table(path, args.key, args.target, args.features) for path in files], ignore_index=True)
        splits, counts = build_splits(
            frame, args.key, args.target, args.features, args.validation_fraction, args.test_fraction, args.seed
        )
    except PreprocessError as error:
        print(error, file=sys.stderr)
        return 1
    if args.bias_facet is not None and (args.bias_facet not in args.features or args.bias_threshold is None):
        print(
            f"--bias-facet {args.bias_facet!r} must be one of --features and come with --bias-threshold",
            file=sys.stderr,
        )
        return 1
    # Written only once every check passed, so a failed job leaves no partial splits behind.
    # The platform engine's baseline replaces the Model Monitor one (the analyzer's input) when asked for.
    write_outputs(
        args.output_dir,
        splits,
        args.key,
        args.target,
        args.features,
        model_monitor_baseline=args.monitoring_baseline_dir is None,
    )
    if args.bias_facet is not None:
        write_clarify_inputs(
            args.output_dir, splits["train"], args.target, args.bias_facet, args.bias_threshold, args.features
        )
    if args.monitoring_baseline_dir is not None:
        write_monitoring_baseline(args.monitoring_baseline_dir, splits["train"], args.features)
    print(json.dumps({"files": len(files), **summary(splits, counts, args.target)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
