"""SageMaker training job (script mode): L2-regularised logistic regression in numpy with spot-safe checkpoints."""

# Runs unchanged in the PyTorch training images (CPU, GPU, Trainium): numpy and pandas only, and
# Python 3.8-compatible runtime code like the other step scripts (annotations are strings).
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# SageMaker scrapes these from the job's log (estimator and tuner `metric_definitions`).
METRIC_DEFINITIONS = [
    {"Name": "train:loss", "Regex": "train:loss=([0-9.]+)"},
    {"Name": "validation:loss", "Regex": "validation:loss=([0-9.]+)"},
    {"Name": "validation:auc", "Regex": "validation:auc=([0-9.]+)"},
]
CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.json"
HANDLER_FILE = "code/inference.py"
# What SageMaker mounts as /opt/ml. SAGEMAKER_BASE_DIR is the training toolkit's name for it (the toolkit
# reads it too); SageMaker sets it in no container, the pipeline emulator sets it to run the job elsewhere.
OPT_ML = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))
# Managed spot training syncs this directory with the job's checkpoint URI (CheckpointConfig.LocalPath's default).
CHECKPOINT_DIR = "checkpoints"
# Container contract, checked against the pipeline definition and against what the job writes
# (pipelines/emulator/contract.py): directories under /opt/ml -> files read (any of) or written (all).
READS = {"input/data/train": ("*.csv",), "input/data/validation": ("*.csv",), CHECKPOINT_DIR: (CHECKPOINT_FILE,)}
WRITES = {"model": (MODEL_FILE, HANDLER_FILE), CHECKPOINT_DIR: (CHECKPOINT_FILE,)}
# The handler the PyTorch inference container loads from the model archive's code/ directory, so
# the registered model serves as is: CSV rows of feature values in, one probability per row out.
INFERENCE_HANDLER = '''"""SageMaker inference handler of the logistic-regression model (written by train.py)."""
import json
import os

import numpy as np


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.json")) as handle:
        return json.load(handle)


def input_fn(body, content_type):
    if content_type != "text/csv":
        raise ValueError(f"unsupported content type {content_type}")
    text = body.decode() if isinstance(body, (bytes, bytearray)) else body
    # One row per line, none dropped (an empty line is a row whose one feature is missing); an empty
    # field is a missing value.
    rows = [[float(v) if v.strip() else float("nan") for v in line.split(",")] for line in text.splitlines()]
    return np.array(rows, dtype="float64")


def predict_fn(rows, model):
    scaled = (rows - np.asarray(model["mean"])) / np.asarray(model["std"])
    # A missing value scores as the training mean, as in training and evaluation.
    scaled = np.where(np.isnan(scaled), 0.0, scaled)
    return 0.5 * (1.0 + np.tanh(0.5 * (scaled @ np.asarray(model["weights"]) + model["bias"])))


def output_fn(prediction, accept):
    return "\\n".join(f"{p:.6f}" for p in np.asarray(prediction).reshape(-1)), "text/csv"
'''
SCHEMA_FILE = "schema.json"
MODEL_FORMAT = "logistic-regression/1"
# Probabilities are clipped this far from 0 and 1 so a confident mistake costs a large, finite loss.
EPSILON = 1e-15


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split as written by the preprocessing step: key, target, then the features."""

    key: str
    target: str
    features: tuple[str, ...]
    keys: np.ndarray
    x: np.ndarray  # (rows, features) float64; NaN where a value is missing
    y: np.ndarray  # (rows,) float64, 0 or 1

    @property
    def columns(self) -> list[str]:
        return [self.key, self.target, *self.features]


@dataclass(frozen=True)
class Hyperparameters:
    epochs: int = 20
    learning_rate: float = 0.1
    l2: float = 0.0001
    batch_size: int = 512
    seed: int = 7

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0 or not self.l2 >= 0:
            raise ValueError(f"invalid hyperparameters {asdict(self)}: need epochs, batch-size >= 1, l2 >= 0, rate > 0")


@dataclass(frozen=True, eq=False)
class Model:
    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    bias: float


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    train_loss: float
    validation_loss: float
    validation_auc: float

    def line(self) -> str:
        """The log line METRIC_DEFINITIONS match."""
        return (
            f"epoch={self.epoch} train:loss={self.train_loss:.4f} "
            f"validation:loss={self.validation_loss:.4f} validation:auc={self.validation_auc:.4f}"
        )


# --- data -------------------------------------------------------------------------------------


def _csv_files(path: Path) -> list[Path]:
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise ValueError(f"no .csv file in {path}")
    return files


def load_split(path: str | Path) -> Dataset:
    """A split from a CSV file or a directory of them (a SageMaker channel).

    The header gives the schema (key, target, features...); a `schema.json` next to the files must agree.
    """
    path = Path(path)
    files = _csv_files(path)
    columns = list(pd.read_csv(files[0], nrows=0).columns)
    if len(columns) < 3:
        raise ValueError(f"{files[0].name}: expected key, target and at least one feature, got {columns}")
    schema_file = (path if path.is_dir() else path.parent) / SCHEMA_FILE
    if schema_file.is_file():
        schema = json.loads(schema_file.read_text())
        expected = [schema["key"], schema["target"], *schema["features"]]
        if columns != expected:
            raise ValueError(f"{files[0].name} has columns {columns}, {SCHEMA_FILE} says {expected}")
    key, target, features = columns[0], columns[1], tuple(columns[2:])
    frames = []
    for file in files:
        header = list(pd.read_csv(file, nrows=0).columns)
        if header != columns:
            raise ValueError(f"{file.name} has columns {header}, {files[0].name} has {columns}")
        # Keys stay text (leading zeros, "NA"); in the other columns only an empty field is missing.
        na_values = {name: [""] for name in columns[1:]}
        frames.append(pd.read_csv(file, dtype={key: str}, keep_default_na=False, na_values=na_values))
    frame = pd.concat(frames, ignore_index=True)
    y = frame[target].to_numpy(dtype="float64")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"target {target!r} must be 0 or 1 in every row of {path}")
    x = frame[list(features)].to_numpy(dtype="float64")
    return Dataset(key, target, features, frame[key].to_numpy(dtype=object), x, y)


# --- model ------------------------------------------------------------------------------------


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over the values present (NaN-safe, no warnings)."""
    present = ~np.isnan(x)
    counts = present.sum(axis=0)
    mean = np.divide(np.where(present, x, 0.0).sum(axis=0), counts, out=np.zeros(x.shape[1]), where=counts > 0)
    squares = np.where(present, x - mean, 0.0) ** 2
    std = np.sqrt(np.divide(squares.sum(axis=0), counts, out=np.zeros(x.shape[1]), where=counts > 0))
    # A constant (or empty) feature carries no signal; scale 1 keeps it finite instead of dividing by 0.
    return mean, np.where(std > 1e-12, std, 1.0)


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    z = (x - mean) / std
    # A missing value becomes the training mean: neutral for the model, and the same at inference.
    return np.where(np.isnan(z), 0.0, z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    # The tanh form never overflows, unlike 1 / (1 + exp(-z)) for large negative z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def predict_proba(model: Model, x: np.ndarray) -> np.ndarray:
    """Probability of the positive class for each row of raw (unstandardised) features."""
    return sigmoid(standardize(x, model.mean, model.std) @ model.weights + model.bias)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy; NaN for no rows."""
    y = np.asarray(y, dtype="float64")
    if y.size == 0:
        return float("nan")
    p = np.clip(np.asarray(p, dtype="float64"), EPSILON, 1.0 - EPSILON)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


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


# --- checkpoints ------------------------------------------------------------------------------


def fingerprint(train: Dataset, hp: Hyperparameters, mean: np.ndarray, std: np.ndarray) -> str:
    """What a checkpoint must match to be resumed: data and every hyperparameter but the epoch count.

    Epochs are left out so that a job restarted with more epochs continues where the last one stopped.
    """
    settings = {**asdict(hp), "epochs": None, "features": list(train.features), "rows": int(train.y.size)}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for array in (mean, std, train.y):
        digest.update(np.ascontiguousarray(array, dtype="float64").tobytes())
    return digest.hexdigest()


def save_checkpoint(directory: Path, epoch: int, model: Model, seed: int, stamp: str) -> None:
    """Write the state after `epoch` atomically: a job stopped mid-write keeps the previous checkpoint whole."""
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / (CHECKPOINT_FILE + ".partial")
    with partial.open("wb") as handle:
        np.savez(
            handle,
            epoch=np.int64(epoch),
            weights=model.weights,
            bias=np.float64(model.bias),
            mean=model.mean,
            std=model.std,
            # The shuffle of epoch e is drawn from (seed, e), so seed and epoch are the whole RNG state.
            seed=np.int64(seed),
            fingerprint=np.str_(stamp),
        )
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, directory / CHECKPOINT_FILE)


def load_checkpoint(directory: Path, stamp: str) -> tuple[int, np.ndarray, float] | None:
    """(epoch, weights, bias) of a checkpoint of this very training run, else None (with the reason on stderr)."""
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = str(data["fingerprint"])
            state = (int(data["epoch"]), data["weights"].astype("float64"), float(data["bias"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        print(f"ignoring unreadable checkpoint {path}: {error}", file=sys.stderr)
        return None
    if stored != stamp:
        print(f"ignoring checkpoint {path}: it is of other data or hyperparameters", file=sys.stderr)
        return None
    return state


# --- training ---------------------------------------------------------------------------------


def score(model: Model, data: Dataset) -> tuple[float, float]:
    """(log loss, AUC) of `model` on `data`."""
    p = predict_proba(model, data.x)
    return log_loss(data.y, p), roc_auc(data.y, p)


def fit(
    train: Dataset,
    validation: Dataset,
    hp: Hyperparameters,
    checkpoint_dir: Path | None = None,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> Model:
    """Mini-batch gradient descent on the mean log loss plus (l2 / 2) * |w|^2, resuming from a checkpoint.

    Deterministic: epoch e shuffles with a generator seeded by (seed, e), so an interrupted and
    resumed run ends with exactly the weights of an uninterrupted one.
    """
    hp.check()
    if validation.features != train.features:
        raise ValueError(f"validation features {list(validation.features)} differ from {list(train.features)}")
    mean, std = standardizer(train.x)
    z, y = standardize(train.x, mean, std), train.y
    stamp = fingerprint(train, hp, mean, std)
    weights, bias, first = np.zeros(len(train.features)), 0.0, 1
    state = load_checkpoint(checkpoint_dir, stamp) if checkpoint_dir is not None else None
    if state is not None and checkpoint_dir is not None:
        done, weights, bias = state
        first = done + 1
        print(f"resuming after epoch {done} from {checkpoint_dir / CHECKPOINT_FILE}", flush=True)
    for epoch in range(first, hp.epochs + 1):
        order = np.random.default_rng([hp.seed, epoch]).permutation(y.size)
        for start in range(0, y.size, hp.batch_size):
            batch = order[start : start + hp.batch_size]
            error = sigmoid(z[batch] @ weights + bias) - y[batch]
            weights = weights - hp.learning_rate * (z[batch].T @ error / batch.size + hp.l2 * weights)
            bias -= hp.learning_rate * float(error.mean())
        model = Model(train.features, mean, std, weights, bias)
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, epoch, model, hp.seed, stamp)
        if on_epoch is not None:
            train_loss = log_loss(y, sigmoid(z @ weights + bias))
            on_epoch(EpochResult(epoch, train_loss, *score(model, validation)))
    return Model(train.features, mean, std, weights, bias)


def model_document(model: Model, train: Dataset, validation: Dataset, hp: Hyperparameters) -> dict[str, Any]:
    """model.json: everything inference needs (features, scaling, weights) plus how it was made."""
    validation_loss, validation_auc = score(model, validation)
    return {
        "format": MODEL_FORMAT,
        "key": train.key,
        "target": train.target,
        "features": list(model.features),
        "mean": model.mean.tolist(),
        "std": model.std.tolist(),
        "weights": model.weights.tolist(),
        "bias": model.bias,
        "metadata": {
            "hyperparameters": asdict(hp),
            "train_rows": int(train.y.size),
            "validation_rows": int(validation.y.size),
            "train_positive_rate": float(train.y.mean()),
            "validation_loss": _finite_or_none(validation_loss),
            "validation_auc": _finite_or_none(validation_auc),
        },
    }


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN; null says "undefined" to every parser.
    return value if math.isfinite(value) else None


def model_from_document(document: dict[str, Any]) -> Model:
    return Model(
        tuple(document["features"]),
        np.asarray(document["mean"], dtype="float64"),
        np.asarray(document["std"], dtype="float64"),
        np.asarray(document["weights"], dtype="float64"),
        float(document["bias"]),
    )


# --- experiment tracking ----------------------------------------------------------------------


class Tracker:
    """MLflow tracking when MLFLOW_TRACKING_URI is set and mlflow imports; otherwise every call does nothing.

    Tracking is a convenience: a missing package or an unreachable server is reported and never fails training.
    """

    def __init__(self, mlflow: Any = None) -> None:
        self._mlflow = mlflow

    @classmethod
    def start(cls, params: dict[str, Any]) -> Tracker:
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            return cls()
        try:
            import mlflow
        except ImportError:
            print("MLFLOW_TRACKING_URI is set but mlflow is not installed: not tracking", file=sys.stderr)
            return cls()
        tracker = cls(mlflow)
        tracker._call(lambda: mlflow.start_run(run_name=os.environ.get("TRAINING_JOB_NAME")))
        tracker._call(lambda: mlflow.log_params(params))
        return tracker

    def _call(self, action: Callable[[], object]) -> None:
        if self._mlflow is None:
            return
        try:
            action()
        except Exception as error:  # any failure of the tracking server or client
            print(f"experiment tracking stopped: {type(error).__name__}: {error}", file=sys.stderr)
            self._mlflow = None

    def log_epoch(self, result: EpochResult) -> None:
        # MLflow metric names allow no ':' on every version, hence underscores.
        metrics = {
            "train_loss": result.train_loss,
            "validation_loss": result.validation_loss,
            "validation_auc": result.validation_auc,
        }
        self._call(lambda: self._mlflow.log_metrics(metrics, step=result.epoch))

    def finish(self) -> None:
        self._call(lambda: self._mlflow.end_run())


# --- entry point ------------------------------------------------------------------------------


def is_primary() -> bool:
    """Whether this process trains: rank 0 under torchrun, else the first SageMaker host.

    The model is small and trained by one process; the others of a multi-process or multi-instance
    job stop at once instead of writing the same model and checkpoints concurrently.
    """
    if os.environ.get("RANK") is not None:
        return os.environ["RANK"] == "0"
    hosts, current = os.environ.get("SM_HOSTS"), os.environ.get("SM_CURRENT_HOST")
    return not (hosts and current) or sorted(json.loads(hosts))[0] == current


def parse_args(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__)
    defaults = Hyperparameters()
    # SageMaker passes hyperparameters as `--name value` under the names given to the estimator.
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--learning-rate", "--learning_rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--l2", type=float, default=defaults.l2)
    parser.add_argument("--batch-size", "--batch_size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    environ = os.environ
    parser.add_argument(
        "--train", type=Path, default=Path(environ.get("SM_CHANNEL_TRAIN", OPT_ML / "input/data/train"))
    )
    parser.add_argument(
        "--validation",
        type=Path,
        default=Path(environ.get("SM_CHANNEL_VALIDATION", OPT_ML / "input/data/validation")),
    )
    parser.add_argument("--model-dir", type=Path, default=Path(environ.get("SM_MODEL_DIR", OPT_ML / "model")))
    parser.add_argument(
        "--checkpoint-dir",
        default=str(OPT_ML / CHECKPOINT_DIR),
        help="synced with S3 by managed spot training; an empty value turns checkpoints off",
    )
    # A tuning job may add arguments of its own (e.g. its objective metric): ignored, not fatal.
    return parser.parse_known_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = parse_args(argv)
    if unknown:
        print(f"ignoring unknown arguments {unknown}", file=sys.stderr)
    if not is_primary():
        print("not the primary process: the model trains on rank 0 of the first host only", flush=True)
        return 0
    hp = Hyperparameters(args.epochs, args.learning_rate, args.l2, args.batch_size, args.seed)
    try:
        hp.check()
        train, validation = load_split(args.train), load_split(args.validation)
        if validation.columns != train.columns:
            raise ValueError(f"validation columns {validation.columns} differ from training columns {train.columns}")
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    tracker = Tracker.start({**asdict(hp), "features": ",".join(train.features), "train_rows": int(train.y.size)})

    def report(result: EpochResult) -> None:
        print(result.line(), flush=True)
        tracker.log_epoch(result)

    checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    model = fit(train, validation, hp, checkpoint_dir, on_epoch=report)
    document = model_document(model, train, validation, hp)
    args.model_dir.mkdir(parents=True, exist_ok=True)
    (args.model_dir / MODEL_FILE).write_text(json.dumps(document, indent=2) + "\n")
    (args.model_dir / HANDLER_FILE).parent.mkdir(exist_ok=True)
    (args.model_dir / HANDLER_FILE).write_text(INFERENCE_HANDLER)
    tracker.finish()
    print(json.dumps({"model": str(args.model_dir / MODEL_FILE), **document["metadata"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
