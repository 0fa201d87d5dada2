"""SageMaker Processing step: check the evaluation data is sound, then score the model on the test split."""

# Runs in the SageMaker scikit-learn processing image, whose Python and pandas are older than the
# repo's: runtime code sticks to Python 3.8 and pandas 1.1 features (annotations are strings).
# The step runs this one file, so the few helpers it shares with train.py are repeated here.
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

METRICS = ("auc", "accuracy", "precision", "recall", "f1")
MODEL_FILE = "model.json"
ARCHIVE_FILE = "model.tar.gz"
EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.csv"
# The explainability report in Clarify's analysis.json layout, which the Model Registry and Model
# Monitor read; per-row SHAP values go where Clarify puts them (explanations_shap/out.csv).
ANALYSIS_FILE = "analysis.json"
LOCAL_SHAP_FILE = "explanations_shap/out.csv"
# Clarify's name for the one score of a model whose output has no label headers.
SHAP_LABEL = "label0"
# The model-explainability monitor's config template (monitor_config), next to analysis.json.
MONITOR_CONFIG_FILE = "monitoring/analysis_config.json"
MONITOR_SHAP_SAMPLES = 100
MIN_TEST_SHARE = 0.10  # of the training rows
# Largest allowed gap between test and training positive rates: the larger of an absolute and a relative bound.
RATE_GAP_ABSOLUTE = 0.02
RATE_GAP_RELATIVE = 0.25
# What SageMaker mounts as /opt/ml. SAGEMAKER_BASE_DIR is the training toolkit's name for it; SageMaker
# sets it in no container, and the pipeline emulator (pipelines/emulator) sets it to run the step elsewhere.
OPT_ML = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))
MODEL_DIR = "processing/model"
TEST_DIR = "processing/test"
TRAIN_DIR = "processing/train"
EVALUATION_DIR = "processing/evaluation"
PREDICTIONS_DIR = "processing/predictions"
EXPLAINABILITY_DIR = "processing/explainability"
# Where the processing job receives the platform's monitoring library (a ProcessingInput), and
# where the pipeline has the platform engine's baselines written (--monitoring-baseline-dir).
LIBRARY_DIR = "processing/input/library"
MONITORING_DIR = "processing/monitoring"
# The model-quality baseline's columns: ground truth, predicted label, positive-class probability.
PREDICTION_COLUMNS = ("label", "prediction", "probability")
# Container contract, checked against the pipeline definition and against what the step writes
# (pipelines/emulator/contract.py): directories under /opt/ml -> files read (any of) or written (all).
READS = {
    MODEL_DIR: (MODEL_FILE, ARCHIVE_FILE, "*/" + ARCHIVE_FILE),
    TEST_DIR: ("*.csv",),
    TRAIN_DIR: ("*.csv",),
    LIBRARY_DIR: ("*.zip",),
}
WRITES = {
    EVALUATION_DIR: (EVALUATION_FILE,),
    PREDICTIONS_DIR: (PREDICTIONS_FILE,),
    EXPLAINABILITY_DIR: (ANALYSIS_FILE, LOCAL_SHAP_FILE, MONITOR_CONFIG_FILE),
    # model_quality/, and bias/ as well with --bias-facet (the wildcards).
    MONITORING_DIR: (
        "model_quality/statistics.json",
        "model_quality/constraints.json",
        "*/statistics.json",
        "*/constraints.json",
    ),
}
# Read or written only when the pipeline passes the option.
READ_WITH = {LIBRARY_DIR: "--monitoring-baseline-dir"}
WRITTEN_WITH = {EXPLAINABILITY_DIR: "--explainability-rows", MONITORING_DIR: "--monitoring-baseline-dir"}
# The header row of each CSV file written, by path under /opt/ml.
COLUMNS = {PREDICTIONS_DIR + "/" + PREDICTIONS_FILE: PREDICTION_COLUMNS}


class UnsoundEvaluationData(ValueError):
    """The test split cannot give a trustworthy score; the message is one line with the numbers."""


class UnsafeArchive(ValueError):
    """The model archive has a member that would land outside the extraction directory, or is not a plain file."""


# --- model ------------------------------------------------------------------------------------


def _member_path(member: tarfile.TarInfo) -> PurePosixPath:
    """The member's path relative to the extraction directory, or UnsafeArchive."""
    name = member.name.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or name.startswith("/"):
        raise UnsafeArchive(f"unsafe path {member.name!r} in the model archive: it leaves the extraction directory")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchive(f"unsafe member {member.name!r} in the model archive: links and devices are refused")
    return PurePosixPath(*[part for part in path.parts if part != "."])


def safe_extract(archive: Path, destination: Path) -> list[Path]:
    """Extract regular files and directories of `archive` under `destination`; refuse the whole archive otherwise.

    Every member is checked before anything is written (no absolute path, no `..`, no link or device),
    and files are copied out one by one rather than trusting `extractall` on this Python version.
    """
    root = destination.resolve()
    written = []
    with tarfile.open(archive, "r:*") as tar:
        members = [(member, _member_path(member)) for member in tar.getmembers()]
        for member, relative in members:
            target = root.joinpath(*relative.parts)
            if root != target and root not in target.parents:
                raise UnsafeArchive(f"unsafe path {member.name!r} in the model archive: it leaves {root}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                raise UnsafeArchive(f"unreadable member {member.name!r} in the model archive")
            with source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            written.append(target)
    return written


def load_model(model_dir: Path, workdir: Path) -> dict[str, Any]:
    """model.json from `model_dir`, directly or from the model.tar.gz the training job produced."""
    path = model_dir / MODEL_FILE
    if not path.is_file():
        archives = [model_dir / ARCHIVE_FILE] if (model_dir / ARCHIVE_FILE).is_file() else []
        archives = archives or sorted(model_dir.rglob(ARCHIVE_FILE))
        if not archives:
            raise ValueError(f"neither {MODEL_FILE} nor {ARCHIVE_FILE} in {model_dir}")
        safe_extract(archives[0], workdir)
        path = workdir / MODEL_FILE
        if not path.is_file():
            raise ValueError(f"{archives[0].name} has no top-level {MODEL_FILE}")
    model: dict[str, Any] = json.loads(path.read_text())
    missing = [name for name in ("features", "mean", "std", "weights", "bias") if name not in model]
    if missing:
        raise ValueError(f"{MODEL_FILE} lacks {missing}")
    sizes = {name: len(model[name]) for name in ("features", "mean", "std", "weights")}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{MODEL_FILE} has inconsistent lengths {sizes}")
    return model


def standardized(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Rows of raw features scaled as train.py does; a missing value scores as the training mean (0)."""
    z = (x - np.asarray(model["mean"], dtype="float64")) / np.asarray(model["std"], dtype="float64")
    scaled: np.ndarray = np.where(np.isnan(z), 0.0, z)
    return scaled


def margin(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Log-odds of the positive class per row: the scaling and weights of train.py's model.json."""
    log_odds: np.ndarray = standardized(model, x) @ np.asarray(model["weights"], dtype="float64") + float(model["bias"])
    return log_odds


def predict_proba(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Positive-class probability per row."""
    return 0.5 * (1.0 + np.tanh(0.5 * margin(model, x)))


# --- data -------------------------------------------------------------------------------------


def read_split(directory: Path, first_columns: int | None = None) -> tuple[list[str], pd.DataFrame]:
    """(header, rows) of the CSV files of a split directory; only the first `first_columns` columns if given."""
    files = sorted(directory.glob("*.csv")) if directory.is_dir() else [directory]
    if not files or not files[0].is_file():
        raise ValueError(f"no .csv file in {directory}")
    columns = list(pd.read_csv(files[0], nrows=0).columns)
    if len(columns) < 2:
        raise ValueError(f"{files[0].name}: expected key and target columns first, got {columns}")
    used = columns[:first_columns] if first_columns else columns
    frames = []
    for file in files:
        header = list(pd.read_csv(file, nrows=0).columns)
        if header != columns:
            raise ValueError(f"{file.name} has columns {header}, {files[0].name} has {columns}")
        # Keys stay text (leading zeros, "NA"); in the other columns only an empty field is missing.
        na_values = {name: [""] for name in columns[1:]}
        frames.append(
            pd.read_csv(file, usecols=used, dtype={columns[0]: str}, keep_default_na=False, na_values=na_values)
        )
    frame = pd.concat(frames, ignore_index=True)[used]
    labels = frame[columns[1]]
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise ValueError(f"target {columns[1]!r} must be 0 or 1 in every row of {directory}")
    return columns, frame


def check_soundness(
    train_columns: Sequence[str], train: pd.DataFrame, test_columns: Sequence[str], test: pd.DataFrame
) -> None:
    """Raise UnsoundEvaluationData unless the test split can give a trustworthy score.

    Checked in this order, the first failure wins:
    1. same columns, in the same order, as the training split;
    2. no key of the test split occurs in the training split (no leakage);
    3. at least 10% as many test rows as training rows;
    4. both target classes occur in the test split;
    5. similar target distribution: |test positive rate - train positive rate| <= max(0.02, 0.25 * train rate).

    `train` needs only its key and target columns (the first two).
    """
    if list(test_columns) != list(train_columns):
        raise UnsoundEvaluationData(
            f"test columns {list(test_columns)} differ from training columns {list(train_columns)}"
        )
    key, target = train_columns[0], train_columns[1]
    overlap = set(test[key]) & set(train[key])
    if overlap:
        example = sorted(overlap)[0]
        raise UnsoundEvaluationData(
            f"test split shares {len(overlap)} of its {test[key].nunique()} keys with the training split "
            f"(e.g. {example!r}): the score would be on data the model has seen"
        )
    minimum = MIN_TEST_SHARE * len(train)
    if len(test) < minimum or len(test) == 0:
        raise UnsoundEvaluationData(
            f"test split has {len(test)} rows, fewer than {MIN_TEST_SHARE:.0%} of the {len(train)} training rows "
            f"({minimum:.0f})"
        )
    classes = sorted(int(value) for value in test[target].unique())
    if classes != [0, 1]:
        raise UnsoundEvaluationData(
            f"test split has a single target class {classes} in {len(test)} rows: AUC, precision and recall need both"
        )
    train_rate, test_rate = float(train[target].mean()), float(test[target].mean())
    allowed = max(RATE_GAP_ABSOLUTE, RATE_GAP_RELATIVE * train_rate)
    if abs(test_rate - train_rate) > allowed:
        raise UnsoundEvaluationData(
            f"test positive rate {test_rate:.4f} differs from training positive rate {train_rate:.4f} "
            f"by {abs(test_rate - train_rate):.4f}, more than the allowed {allowed:.4f} "
            f"(max({RATE_GAP_ABSOLUTE}, {RATE_GAP_RELATIVE} * training rate))"
        )


# --- metrics ----------------------------------------------------------------------------------


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U): ties count one half. NaN unless both classes occur."""
    y = np.asarray(y, dtype="float64")
    positives = int((y == 1).sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(p, dtype="float64"), return_inverse=True, return_counts=True)
    # Tied scores share the mean of the 1-based ranks they span.
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0
    rank_sum = float(mean_rank[inverse.reshape(-1)][y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """METRICS of probabilities `p` against labels `y`, a row predicted positive when p >= threshold."""
    y = np.asarray(y).astype(int)
    predicted = (np.asarray(p) >= threshold).astype(int)
    tp = int(((predicted == 1) & (y == 1)).sum())
    fp = int(((predicted == 1) & (y == 0)).sum())
    fn = int(((predicted == 0) & (y == 1)).sum())
    tn = int(((predicted == 0) & (y == 0)).sum())
    # No predicted (or actual) positive: precision (recall) is taken as 0 rather than undefined.
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "auc": roc_auc(y, p),
        "accuracy": (tp + tn) / y.size,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        # Rows are actual labels, columns predicted ones: the Model Monitor model-quality layout.
        "confusion_matrix": {"0": {"0": tn, "1": fp}, "1": {"0": fn, "1": tp}},
    }


def evaluation_report(metrics: dict[str, Any]) -> dict[str, Any]:
    """evaluation.json in the SageMaker Model Registry model-quality format."""
    report: dict[str, Any] = {name: {"value": float(metrics[name]), "standard_deviation": "NaN"} for name in METRICS}
    report["confusion_matrix"] = metrics["confusion_matrix"]
    return {"binary_classification_metrics": report}


# --- explainability (exact SHAP values of the linear model) -----------------------------------


def shap_values(model: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """SHAP values of the margin (log-odds) for each row of raw features, one column per model feature.

    Exact for this model, not an estimate. The margin is linear in the standardized inputs,
    margin(x) = bias + sum_i w_i * (x_i - mean_i) / std_i, and the baseline is one row, the training
    mean of every feature (model.json's `mean`). A linear function has no interactions, so feature i
    adds the same w_i * (x_i - mean_i) / std_i to every coalition of the other features: that term is
    its Shapley value. A missing value scores as the mean and contributes 0. Each row's values add up
    to its margin minus `expected_value` (local accuracy). Clarify's Kernel SHAP with that baseline row
    and `use_logit: true` estimates these same values by sampling, through an endpoint of the model.

    With a model that is not linear this function is wrong, not approximate. Replace it (and
    `expected_value`) in your own evaluate step, e.g. with shap.KernelExplainer(margin_function,
    baseline_rows).shap_values(rows) (the shap package must be in the processing image: the job is
    network-isolated and installs nothing), or run Clarify itself, which needs an accepted exception
    to network isolation for its job and the model it serves (decision 21). Keep writing
    analysis.json as `explainability_report` does, so the registry and Model Monitor read it.
    """
    contributions: np.ndarray = standardized(model, x) * np.asarray(model["weights"], dtype="float64")
    return contributions


def expected_value(model: dict[str, Any]) -> float:
    """The margin at the baseline row (the training mean): the model's bias alone."""
    return float(model["bias"])


def explainability_report(model: dict[str, Any], values: np.ndarray) -> dict[str, Any]:
    """analysis.json in Clarify's explainability layout: mean |SHAP| per feature (agg_method mean_abs).

    Model Monitor's explainability constraints are this same file: a feature attribution drift job
    compares the global SHAP values of each label here with those of its own analysis.json.
    """
    magnitudes = np.abs(values).mean(axis=0)
    return {
        "version": "1.0",
        "explanations": {
            "kernel_shap": {
                SHAP_LABEL: {
                    "global_shap_values": {name: float(magnitudes[i]) for i, name in enumerate(model["features"])},
                    "expected_value": expected_value(model),
                }
            }
        },
    }


def monitor_config(model: dict[str, Any], samples: int = MONITOR_SHAP_SAMPLES) -> dict[str, Any]:
    """The model-explainability monitor's analysis config, all but the model it explains.

    Clarify reproduces analysis.json's values on captured requests with it: Kernel SHAP of the
    margin (`use_logit`) around the same baseline row (the training mean), aggregated as mean |SHAP|.
    The promotion function adds `predictor.model_name`, `instance_type` and
    `initial_instance_count` for the version it deploys (the model exists only then).
    """
    return {
        "methods": {
            "shap": {
                "use_logit": True,
                "save_local_shap_values": False,
                "baseline": [[float(v) for v in model["mean"]]],
                "num_samples": samples,
                "agg_method": "mean_abs",
            }
        },
        "predictor": {"accept_type": "text/csv", "content_type": "text/csv"},
        "headers": list(model["features"]),
    }


def write_explainability(output_dir: Path, model: dict[str, Any], test: pd.DataFrame, rows: int) -> int:
    """Explain the first `rows` test rows (all of them if there are fewer); returns how many it explained.

    Writes analysis.json, explanations_shap/out.csv (a header row of the model's features, then the
    SHAP values of each explained row, in test-split order) and the monitor's config template.
    """
    features = list(model["features"])
    values = shap_values(model, test[features].head(rows).to_numpy(dtype="float64"))
    local = output_dir / LOCAL_SHAP_FILE
    local.parent.mkdir(parents=True, exist_ok=True)
    (output_dir / ANALYSIS_FILE).write_text(json.dumps(explainability_report(model, values), indent=2) + "\n")
    pd.DataFrame(values, columns=features).to_csv(local, index=False)
    config = output_dir / MONITOR_CONFIG_FILE
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(monitor_config(model), indent=2) + "\n")
    return len(values)


# --- entry point ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=OPT_ML / MODEL_DIR)
    parser.add_argument("--test-dir", type=Path, default=OPT_ML / TEST_DIR)
    parser.add_argument("--train-dir", type=Path, default=OPT_ML / TRAIN_DIR)
    parser.add_argument("--output-dir", type=Path, default=OPT_ML / EVALUATION_DIR)
    parser.add_argument("--predictions-dir", type=Path, default=OPT_ML / PREDICTIONS_DIR)
    parser.add_argument("--threshold", type=float, default=0.5, help="probability from which a row is positive")
    parser.add_argument(
        "--explainability-rows",
        type=int,
        default=None,
        help="write SHAP values of the first N test rows (analysis.json); none unless given",
    )
    parser.add_argument("--explainability-dir", type=Path, default=OPT_ML / EXPLAINABILITY_DIR)
    parser.add_argument(
        "--monitoring-baseline-dir",
        type=Path,
        default=None,
        help="write the platform monitoring engine's model-quality (and bias) baselines here; none unless given",
    )
    parser.add_argument(
        "--library-dir",
        type=Path,
        default=OPT_ML / LIBRARY_DIR,
        help="where the platform's monitoring library is (a zip of the `monitoring` package, or its parent directory)",
    )
    parser.add_argument("--bias-facet", default=None, help="feature whose groups the bias baseline compares")
    parser.add_argument("--bias-threshold", type=float, default=None, help="facet values above it form the facet group")
    return parser.parse_args(argv)


def use_library(library_dir: Path) -> None:
    """Put the platform's monitoring library on the import path (see preprocess.py's twin)."""
    entries = sorted(library_dir.glob("*.zip")) if library_dir.is_dir() else []
    for entry in (*entries, library_dir):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    if importlib.util.find_spec("monitoring") is None:
        raise ValueError(
            f"--library-dir {library_dir} holds no `monitoring` package (a zip of it, or its parent directory); "
            "--monitoring-baseline-dir needs it"
        )


def write_monitoring_baselines(args: argparse.Namespace, test: pd.DataFrame, y: np.ndarray, p: np.ndarray) -> None:
    """The platform engine's model-quality baseline of the test split, and its bias baseline when a facet is set."""
    from monitoring.bias import FacetCounts, write_bias_baseline
    from monitoring.quality import write_model_quality_baseline

    write_model_quality_baseline(args.monitoring_baseline_dir / "model_quality", y, p, threshold=args.threshold)
    if args.bias_facet is not None:
        counts = FacetCounts(threshold=args.bias_threshold, score_threshold=args.threshold)
        counts.update(test[args.bias_facet].to_numpy(dtype="float64"), y, p)
        write_bias_baseline(args.monitoring_baseline_dir / "bias", args.bias_facet, counts)


def check_arguments(args: argparse.Namespace) -> None:
    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.explainability_rows is not None and args.explainability_rows < 1:
        raise ValueError(f"--explainability-rows must be 1 or more, got {args.explainability_rows}")
    if (args.bias_facet is None) != (args.bias_threshold is None):
        raise ValueError(
            f"--bias-facet {args.bias_facet!r} and --bias-threshold {args.bias_threshold!r} come together or not at all"
        )
    if args.bias_facet is not None and args.monitoring_baseline_dir is None:
        raise ValueError("--bias-facet needs --monitoring-baseline-dir (the bias baseline is written there)")
    if args.monitoring_baseline_dir is not None:
        use_library(args.library_dir)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_arguments(args)
        with tempfile.TemporaryDirectory() as workdir:
            model = load_model(args.model_dir, Path(workdir))
        train_columns, train = read_split(args.train_dir, first_columns=2)
        test_columns, test = read_split(args.test_dir)
        check_soundness(train_columns, train, test_columns, test)
        if list(model["features"]) != test_columns[2:]:
            raise ValueError(f"model features {model['features']} differ from the split's features {test_columns[2:]}")
        if args.bias_facet is not None and args.bias_facet not in model["features"]:
            raise ValueError(f"--bias-facet {args.bias_facet!r} is not a model feature: {model['features']}")
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    target = test_columns[1]
    y = test[target].to_numpy(dtype="int64")
    p = predict_proba(model, test[test_columns[2:]].to_numpy(dtype="float64"))
    metrics = binary_metrics(y, p, args.threshold)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / EVALUATION_FILE).write_text(json.dumps(evaluation_report(metrics), indent=2) + "\n")
    # The Model Monitor model-quality baseline: ground truth, predicted label and probability per test row.
    args.predictions_dir.mkdir(parents=True, exist_ok=True)
    predicted = (p >= args.threshold).astype(int)
    label, prediction, probability = PREDICTION_COLUMNS
    predictions = pd.DataFrame({label: y, prediction: predicted, probability: p})
    predictions.to_csv(args.predictions_dir / PREDICTIONS_FILE, index=False)
    if args.monitoring_baseline_dir is not None:
        write_monitoring_baselines(args, test, y, p)
    explained = None
    if args.explainability_rows is not None:
        explained = write_explainability(args.explainability_dir, model, test, args.explainability_rows)

    summary = {name: round(float(metrics[name]), 4) for name in METRICS}
    summary.update(test_rows=len(test), train_rows=len(train), test_positive_rate=round(float(y.mean()), 4))
    if explained is not None:
        summary.update(explained_rows=explained)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
