"""Pipeline step scripts end to end on a small synthetic dataset: preprocess, train (with resume), evaluate."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.emulator import declarations
from pipelines.steps import evaluate, preprocess, train

ROOT = Path(__file__).resolve().parent.parent
STEPS = ROOT / "pipelines" / "steps"
KEY, TARGET = "transaction_id", "is_fraud"
FEATURES = ("amount", "txn_count_24h", "account_age_days")
ROWS = 3000
EPOCHS = 6
# Rows the raw files add to the ROWS distinct transactions (see write_raw).
UPDATED, NO_KEY, NO_TARGET = 50, 20, 15
LINE = re.compile(r"^epoch=(\d+) train:loss=\d+\.\d{4} validation:loss=\d+\.\d{4} validation:auc=\d+\.\d{4}$")
# Environment a SageMaker container or a developer shell could leak into the scripts.
ENVIRONMENT = ("RANK", "SM_HOSTS", "SM_CURRENT_HOST", "MLFLOW_TRACKING_URI", "SM_CHANNEL_TRAIN")
ENVIRONMENT += ("SM_CHANNEL_VALIDATION", "SM_MODEL_DIR")


def transactions(rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """Curated-zone-like rows: `is_fraud` (about 20%) depends on amount and two other numeric features."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 60.0, rows).round(2)
    count = rng.poisson(3, rows).astype(float)
    age = rng.uniform(1, 2000, rows).round(0)
    logit = -1.9 + 0.018 * (amount - 120) + 0.45 * (count - 3) - 0.0012 * (age - 1000)
    fraud = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    # A few missing feature values: training and scoring impute the training mean.
    count[rng.random(rows) < 0.01] = np.nan
    return pd.DataFrame(
        {
            KEY: [f"t{i:06d}" for i in range(rows)],
            "customer_id": [f"c{i:04d}" for i in rng.integers(0, 400, rows)],
            "customer_email": [f"c{i:04d}@example.com" for i in rng.integers(0, 400, rows)],
            "amount": amount,
            "merchant_category": rng.choice(["grocery", "travel", "online"], rows),
            "event_time": pd.Timestamp("2024-05-01") + pd.to_timedelta(rng.integers(0, 172800, rows), unit="s"),
            "txn_count_24h": count,
            "account_age_days": age,
            TARGET: fraud,
        }
    )


def write_raw(directory: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Two daily partitions of CSV; the second adds rows without key or target and newer versions of some keys.

    Returns the rows preprocessing must keep: one per key, the newest version.
    """
    first, second = frame.iloc[: len(frame) * 2 // 3], frame.iloc[len(frame) * 2 // 3 :]
    updated = first.sample(UPDATED, random_state=1).assign(amount=lambda rows: rows["amount"] + 0.5)
    no_key = frame.iloc[:NO_KEY].assign(**{KEY: ""})
    no_target = frame.iloc[NO_KEY : NO_KEY + NO_TARGET].assign(**{KEY: lambda rows: "x" + rows[KEY], TARGET: ""})
    for day, rows in (("2024-05-01", first), ("2024-05-02", pd.concat([second, updated, no_key, no_target]))):
        partition = directory / f"ingest_date={day}"
        partition.mkdir(parents=True)
        rows.to_csv(partition / "part-00000.csv", index=False)
        (partition / "_SUCCESS").write_text("")
    return pd.concat([first.drop(index=updated.index), second, updated])


def run(module: types.ModuleType, *argv: object) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a step script's main."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = module.main([str(arg) for arg in argv])
    return status, out.getvalue(), err.getvalue()


def options(**values: object) -> list[str]:
    """`--name value` pairs as SageMaker passes them, underscores in names spelled as dashes."""
    return [item for name, value in values.items() for item in (f"--{name.replace('_', '-')}", str(value))]


def preprocess_args(raw: Path, output: Path, *extra: str) -> list[str]:
    features = ",".join(FEATURES)
    return [*options(input_dir=raw, output_dir=output, key=KEY, target=TARGET, features=features), *extra]


def train_args(processed: Path, model_dir: Path, checkpoints: Path | str, epochs: int = EPOCHS) -> list[str]:
    train, validation = processed / "train", processed / "validation"
    return options(train=train, validation=validation, model_dir=model_dir, checkpoint_dir=checkpoints, epochs=epochs)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={KEY: str})


@dataclass(frozen=True)
class Pipeline:
    root: Path
    raw: Path
    expected: pd.DataFrame
    processed: Path
    preprocess_log: str
    model_dir: Path
    checkpoints: Path
    train_log: str
    artifact: Path
    evaluation: Path
    predictions: Path

    def evaluate_args(self, test_dir: Path, output: Path, model_dir: Path | None = None) -> list[str]:
        return options(
            model_dir=model_dir or self.artifact.parent,
            test_dir=test_dir,
            train_dir=self.processed / "train",
            output_dir=output / "evaluation",
            predictions_dir=output / "predictions",
        )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    """preprocess -> train -> evaluate once, as the SageMaker Pipeline chains them."""
    root = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as patch:
        for name in ENVIRONMENT:
            patch.delenv(name, raising=False)
        expected = write_raw(root / "raw", transactions())
        status, preprocess_log, err = run(preprocess, *preprocess_args(root / "raw", root / "processed"))
        assert status == 0, err
        model_dir, checkpoints = root / "model", root / "checkpoints"
        status, train_log, err = run(train, *train_args(root / "processed", model_dir, checkpoints))
        assert status == 0, err
        # What SageMaker uploads: the model directory's files in model.tar.gz.
        artifact = root / "artifact" / "model.tar.gz"
        artifact.parent.mkdir()
        with tarfile.open(artifact, "w:gz") as tar:
            tar.add(model_dir / "model.json", arcname="model.json")
        pipeline = Pipeline(
            root, root / "raw", expected, root / "processed", preprocess_log, model_dir, checkpoints, train_log,
            artifact, root / "out" / "evaluation", root / "out" / "predictions",
        )  # fmt: skip
        status, _, err = run(evaluate, *pipeline.evaluate_args(root / "processed" / "test", root / "out"))
        assert status == 0, err
    return pipeline


# --- preprocess -------------------------------------------------------------------------------


def test_preprocess_drops_incomplete_rows_and_keeps_the_newest_duplicate(pipeline):
    summary = json.loads(pipeline.preprocess_log.strip().splitlines()[-1])
    assert summary["rows_read"] == ROWS + UPDATED + NO_KEY + NO_TARGET
    assert (summary["missing_key"], summary["missing_target"], summary["duplicates"]) == (NO_KEY, NO_TARGET, UPDATED)
    splits = {name: read_csv(pipeline.processed / name / f"{name}.csv") for name in preprocess.SPLITS}
    assert sum(len(rows) for rows in splits.values()) == ROWS
    assert {name: summary["splits"][name]["rows"] for name in splits} == {name: len(s) for name, s in splits.items()}
    rows = pd.concat(splits.values()).set_index(KEY).sort_index()
    expected = pipeline.expected.set_index(KEY).sort_index()
    assert list(rows.index) == list(expected.index)
    np.testing.assert_array_equal(rows["amount"], expected["amount"])  # the newer versions (+0.5) won
    np.testing.assert_array_equal(rows[TARGET], expected[TARGET])
    for name, split in splits.items():
        assert list(split.columns) == [KEY, TARGET, *FEATURES]
        assert summary["splits"][name]["positive_rate"] == round(split[TARGET].mean(), 4)


def test_splits_are_disjoint_by_key_and_reproducible(pipeline, tmp_path):
    keys = {name: set(read_csv(pipeline.processed / name / f"{name}.csv")[KEY]) for name in preprocess.SPLITS}
    assert not keys["train"] & keys["validation"]
    assert not keys["train"] & keys["test"]
    assert not keys["validation"] & keys["test"]
    assert run(preprocess, *preprocess_args(pipeline.raw, tmp_path / "again"))[0] == 0
    for name in ("train/train.csv", "train/schema.json", "validation/validation.csv", "test/test.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (pipeline.processed / name).read_bytes(), name
    # Test membership depends only on the key and the test fraction; a salt gives another split.
    assert run(preprocess, *preprocess_args(pipeline.raw, tmp_path / "wider", "--validation-fraction", "0.3"))[0] == 0
    assert set(read_csv(tmp_path / "wider" / "test" / "test.csv")[KEY]) == keys["test"]
    assert run(preprocess, *preprocess_args(pipeline.raw, tmp_path / "salted", "--seed", "2"))[0] == 0
    assert set(read_csv(tmp_path / "salted" / "test" / "test.csv")[KEY]) != keys["test"]


def test_baseline_holds_the_training_features_only(pipeline):
    baseline = pd.read_csv(pipeline.processed / "baseline" / "baseline.csv")
    training = read_csv(pipeline.processed / "train" / "train.csv")
    assert list(baseline.columns) == list(FEATURES)
    pd.testing.assert_frame_equal(baseline, training[list(FEATURES)])
    schema = json.loads((pipeline.processed / "train" / "schema.json").read_text())
    assert schema == {"key": KEY, "target": TARGET, "features": list(FEATURES)}


def test_preprocess_reads_parquet_and_csv_alike(tmp_path, monkeypatch):
    """Typed Parquet columns (no pyarrow here: the reader is faked) and text CSV columns give one table."""
    frame = transactions(900, seed=4)
    first, second = tmp_path / "raw" / "ingest_date=2024-05-01", tmp_path / "raw" / "ingest_date=2024-05-02"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    (first / "part-00000.parquet").write_bytes(b"PAR1")
    frame.iloc[450:].to_csv(second / "part-00000.csv", index=False)
    calls = []

    def read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
        calls.append((Path(path).name, columns))
        return frame.iloc[:450][columns]

    monkeypatch.setattr(pd, "read_parquet", read_parquet)
    status, _, err = run(preprocess, *preprocess_args(tmp_path / "raw", tmp_path / "out"))
    assert status == 0, err
    assert calls == [("part-00000.parquet", [KEY, TARGET, *FEATURES])]  # never the e-mail column
    splits = [read_csv(tmp_path / "out" / name / f"{name}.csv") for name in preprocess.SPLITS]
    rows = pd.concat(splits).set_index(KEY).sort_index()
    expected = frame.set_index(KEY).sort_index()
    pd.testing.assert_frame_equal(rows[[TARGET, *FEATURES]], expected[[TARGET, *FEATURES]], check_dtype=False)


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        (None, ["--test-fraction", "0.02"], r"test split has \d+ rows, fewer than 10% of the \d+ training rows"),
        ({TARGET: 0}, [], r"test split has \d+ rows and target classes \[0\]; it needs both 0 and 1"),
        ({"account_age_days": "n/a"}, [], r"column 'account_age_days' is not numeric: \d+ values such as 'n/a'"),
        ({TARGET: 2}, [], r"target 'is_fraud' must be 0 or 1: \d+ values such as '2'"),
        (None, ["--features", "amount,merchant_category_code"], r"part-00000.csv: missing columns"),
    ],
    ids=["small-test", "single-class", "text-feature", "non-binary-target", "missing-column"],
)
def test_preprocess_refuses_unsound_input(tmp_path, change, extra, message):
    frame = transactions(600, seed=3)
    if change:
        frame = frame.assign(**change)
    write_raw(tmp_path / "raw", frame)
    status, _, err = run(preprocess, *preprocess_args(tmp_path / "raw", tmp_path / "out"), *extra)
    assert status == 1
    assert re.match(message, err) and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


# --- train ------------------------------------------------------------------------------------


def test_training_logs_scrapeable_metrics(pipeline):
    lines = [line for line in pipeline.train_log.splitlines() if line.startswith("epoch=")]
    assert [int(LINE.match(line).group(1)) for line in lines] == list(range(1, EPOCHS + 1))
    assert [d["Name"] for d in train.METRIC_DEFINITIONS] == ["train:loss", "validation:loss", "validation:auc"]
    for line in lines:
        values = dict(part.split("=") for part in line.split()[1:])
        for definition in train.METRIC_DEFINITIONS:
            found = re.findall(definition["Regex"], line)
            assert found == [values[definition["Name"]]], (definition, line)
    # No other line may feed a metric (e.g. the final JSON summary).
    for line in set(pipeline.train_log.splitlines()) - set(lines):
        assert not any(re.search(d["Regex"], line) for d in train.METRIC_DEFINITIONS), line


def test_model_learns_the_signal(pipeline):
    document = json.loads((pipeline.model_dir / "model.json").read_text())
    assert document["features"] == list(FEATURES)
    assert {"mean", "std", "weights", "bias", "metadata"} <= set(document)
    model = train.model_from_document(document)
    test = train.load_split(pipeline.processed / "test")
    auc = train.roc_auc(test.y, train.predict_proba(model, test.x))
    assert auc > 0.75
    report = json.loads((pipeline.evaluation / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["auc"]["value"] == pytest.approx(auc, abs=1e-12)


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(pipeline, tmp_path, monkeypatch):
    class SpotInterruption(Exception):
        pass

    save = train.save_checkpoint

    def interrupted(directory, epoch, *args):
        save(directory, epoch, *args)
        if epoch == 2:
            raise SpotInterruption

    monkeypatch.setattr(train, "save_checkpoint", interrupted)
    with pytest.raises(SpotInterruption):
        run(train, *train_args(pipeline.processed, tmp_path / "model", tmp_path / "checkpoints"))
    monkeypatch.setattr(train, "save_checkpoint", save)
    status, out, err = run(train, *train_args(pipeline.processed, tmp_path / "model", tmp_path / "checkpoints"))
    assert status == 0, err
    assert "resuming after epoch 2" in out
    assert [int(m.group(1)) for m in map(LINE.match, out.splitlines()) if m] == list(range(3, EPOCHS + 1))
    resumed = json.loads((tmp_path / "model" / "model.json").read_text())
    uninterrupted = json.loads((pipeline.model_dir / "model.json").read_text())
    assert resumed == uninterrupted  # exactly: JSON floats round-trip


def test_checkpoint_is_complete_and_of_the_last_epoch(pipeline):
    assert sorted(path.name for path in pipeline.checkpoints.iterdir()) == [train.CHECKPOINT_FILE]
    with np.load(pipeline.checkpoints / train.CHECKPOINT_FILE, allow_pickle=False) as state:
        assert int(state["epoch"]) == EPOCHS
        assert int(state["seed"]) == train.Hyperparameters().seed
        assert state["weights"].shape == state["mean"].shape == state["std"].shape == (len(FEATURES),)
        weights = state["weights"].tolist()
    assert weights == json.loads((pipeline.model_dir / "model.json").read_text())["weights"]


@pytest.mark.parametrize("checkpoint", ["other-hyperparameters", "corrupt"])
def test_foreign_or_broken_checkpoint_is_not_resumed(pipeline, tmp_path, checkpoint):
    checkpoints = tmp_path / "checkpoints"
    if checkpoint == "corrupt":
        checkpoints.mkdir()
        (checkpoints / train.CHECKPOINT_FILE).write_bytes(b"not a zip file")
    else:
        extra = ("--l2", "0.01")
        assert run(train, *train_args(pipeline.processed, tmp_path / "other", checkpoints, epochs=2), *extra)[0] == 0
    status, out, err = run(train, *train_args(pipeline.processed, tmp_path / "model", checkpoints))
    assert status == 0
    assert "ignoring" in err and "resuming" not in out
    assert json.loads((tmp_path / "model" / "model.json").read_text()) == json.loads(
        (pipeline.model_dir / "model.json").read_text()
    )


def test_mlflow_tracking_is_optional(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.invalid")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # not installed: the import raises ImportError
    status, _, err = run(train, *train_args(pipeline.processed, tmp_path / "a", "", epochs=2))
    assert status == 0 and "mlflow is not installed" in err

    calls: list[tuple[str, object]] = []
    fake = types.SimpleNamespace(
        start_run=lambda run_name=None: calls.append(("start_run", run_name)),
        log_params=lambda params: calls.append(("log_params", params)),
        log_metrics=lambda _metrics, step: calls.append(("log_metrics", step)),
        end_run=lambda: calls.append(("end_run", None)),
    )
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    assert run(train, *train_args(pipeline.processed, tmp_path / "b", "", epochs=2))[0] == 0
    assert [name for name, _ in calls] == ["start_run", "log_params", "log_metrics", "log_metrics", "end_run"]
    assert calls[1][1]["learning_rate"] == 0.1 and [step for name, step in calls if name == "log_metrics"] == [1, 2]


def test_train_script_runs_as_sagemaker_starts_it(pipeline, tmp_path):
    """As a process, paths from SM_* variables, hyperparameters as strings, a tuner's extra argument ignored."""
    environment = {name: value for name, value in os.environ.items() if name not in ENVIRONMENT}
    environment.update(
        SM_CHANNEL_TRAIN=str(pipeline.processed / "train"),
        SM_CHANNEL_VALIDATION=str(pipeline.processed / "validation"),
        SM_MODEL_DIR=str(tmp_path / "model"),
    )
    command = [sys.executable, str(STEPS / "train.py"), "--epochs", "2", "--learning_rate", "0.2"]
    command += ["--checkpoint-dir", str(tmp_path / "checkpoints"), "--_tuning_objective_metric", "validation:auc"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ignoring unknown arguments" in result.stderr
    document = json.loads((tmp_path / "model" / "model.json").read_text())
    assert document["metadata"]["hyperparameters"]["learning_rate"] == 0.2


def test_only_the_primary_process_trains(pipeline, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    status, out, _ = run(train, *train_args(pipeline.processed, tmp_path / "model", tmp_path / "checkpoints"))
    assert status == 0 and "not the primary process" in out
    assert not (tmp_path / "model").exists() and not (tmp_path / "checkpoints").exists()


def test_roc_auc_counts_ties_as_one_half_and_both_scripts_agree():
    assert train.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.5, 0.5, 0.9])) == 0.875
    assert np.isnan(train.roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 400), rng.integers(0, 20, 400) / 20  # many ties
    pairs = (p[y == 1][:, None] > p[y == 0][None, :]) + 0.5 * (p[y == 1][:, None] == p[y == 0][None, :])
    assert train.roc_auc(y, p) == pytest.approx(pairs.mean(), abs=1e-12)
    assert evaluate.roc_auc(y, p) == train.roc_auc(y, p)
    assert train.log_loss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_both_scripts_score_alike_with_missing_values(pipeline):
    document = json.loads((pipeline.model_dir / "model.json").read_text())
    x = np.array([[120.0, np.nan, 10.0], [np.nan, 1.0, 1500.0], [900.0, 9.0, np.nan]])
    expected = train.predict_proba(train.model_from_document(document), x)
    np.testing.assert_allclose(evaluate.predict_proba(document, x), expected, rtol=0, atol=1e-15)


# --- evaluate ---------------------------------------------------------------------------------


def test_evaluation_report_and_model_quality_baseline(pipeline):
    report = json.loads((pipeline.evaluation / "evaluation.json").read_text())["binary_classification_metrics"]
    for name in evaluate.METRICS:
        assert 0.0 <= report[name]["value"] <= 1.0, name
        assert report[name]["standard_deviation"] == "NaN"
    matrix = report["confusion_matrix"]
    test = read_csv(pipeline.processed / "test" / "test.csv")
    assert sum(matrix[actual][predicted] for actual in "01" for predicted in "01") == len(test)
    predictions = pd.read_csv(pipeline.predictions / "predictions.csv")
    assert list(predictions.columns) == ["label", "prediction", "probability"]
    assert predictions["label"].tolist() == test[TARGET].tolist()
    assert predictions["prediction"].tolist() == (predictions["probability"] >= 0.5).astype(int).tolist()
    assert report["accuracy"]["value"] == pytest.approx((predictions["label"] == predictions["prediction"]).mean())


def test_evaluate_takes_an_extracted_model_directory_too(pipeline, tmp_path):
    # The training job's model directory holds model.json itself.
    assert run(evaluate, *pipeline.evaluate_args(pipeline.processed / "test", tmp_path, pipeline.model_dir))[0] == 0
    assert (tmp_path / "evaluation" / "evaluation.json").read_bytes() == (
        pipeline.evaluation / "evaluation.json"
    ).read_bytes()


def _leak(test: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([test, training.head(12)])


def _shrink(test: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:
    return test.head(len(training) // 20)


def _reorder(test: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:
    return test[[KEY, TARGET, "txn_count_24h", "amount", "account_age_days"]]


def _shift(test: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:
    flipped = test[test[TARGET] == 0].index[: len(test) // 10]  # +10 points of positive rate
    return test.assign(**{TARGET: test[TARGET].where(~test.index.isin(flipped), 1)})


def _single_class(test: pd.DataFrame, training: pd.DataFrame) -> pd.DataFrame:
    return test.assign(**{TARGET: 0})


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_leak, r"test split shares 12 of its \d+ keys with the training split \(e\.g\. 't\d+'\)"),
        (_shrink, r"test split has \d+ rows, fewer than 10% of the \d+ training rows \(\d+\)"),
        (_reorder, r"test columns \[.*\] differ from training columns \[.*\]"),
        (_shift, r"test positive rate 0\.\d{4} differs from training positive rate 0\.\d{4} by 0\.\d{4}, more than"),
        (_single_class, r"test split has a single target class \[0\] in \d+ rows"),
    ],
    ids=["leaked-keys", "too-small", "other-columns", "shifted-target", "single-class"],
)
def test_unsound_evaluation_data_fails_the_step(pipeline, tmp_path, corrupt, message):
    training = read_csv(pipeline.processed / "train" / "train.csv")
    test = corrupt(read_csv(pipeline.processed / "test" / "test.csv"), training)
    (tmp_path / "test").mkdir()
    test.to_csv(tmp_path / "test" / "test.csv", index=False)
    status, _, err = run(evaluate, *pipeline.evaluate_args(tmp_path / "test", tmp_path))
    assert status == 1
    assert re.match(message, err) and err.count("\n") == 1, err
    assert not (tmp_path / "evaluation").exists()
    with pytest.raises(evaluate.UnsoundEvaluationData):
        evaluate.check_soundness(list(training.columns), training, list(test.columns), test)


def _archive(path: Path, member: tarfile.TarInfo) -> Path:
    """A model.tar.gz with a harmless model.json and then `member`."""
    path.parent.mkdir(parents=True)
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(_member("model.json"), io.BytesIO(b"{}"))
        tar.addfile(member, io.BytesIO(b"{}") if member.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, 2 if kind == tarfile.REGTYPE else 0
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../evil.json"),
        _member("model/../../evil.json"),
        _member("/abs/evil.json"),
        _member("link", tarfile.SYMTYPE, "../../evil.json"),
    ],
    ids=["parent", "nested-parent", "absolute", "symlink"],
)
def test_model_archive_with_an_escaping_member_is_refused(pipeline, tmp_path, member):
    archive = _archive(tmp_path / "model" / "model.tar.gz", member)
    with pytest.raises(evaluate.UnsafeArchive, match=re.escape(repr(member.name))):
        evaluate.safe_extract(archive, tmp_path / "extract")
    assert not (tmp_path / "evil.json").exists()
    assert not (tmp_path / "extract").exists() or not any((tmp_path / "extract").iterdir())
    status, _, err = run(evaluate, *pipeline.evaluate_args(pipeline.processed / "test", tmp_path, archive.parent))
    assert status == 1 and err.startswith("unsafe") and err.count("\n") == 1, err


# --- the scripts as shipped -------------------------------------------------------------------


@pytest.mark.parametrize("script", ["preprocess.py", "train.py", "evaluate.py"])
def test_scripts_stand_alone_in_sagemaker_containers(script):
    """Only the standard library, numpy and pandas (mlflow optional), and syntax older container Pythons parse.

    Preprocess and evaluate import the platform's monitoring library too, only when asked to write
    its baselines; the library is a job input of its own (see the monitoring-baseline tests).
    """
    source = (STEPS / script).read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative import: the script runs alone"
            imported.add(node.module.split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"numpy", "pandas"} | ({"mlflow"} if script == "train.py" else set())
    allowed |= {"monitoring"} if script in ("preprocess.py", "evaluate.py") else set()
    assert imported <= allowed, imported - allowed
    # Runtime features newer than Python 3.8 the older processing image lacks.
    for newer in (".removeprefix(", ".removesuffix(", ".is_relative_to(", "strict=", "filter="):
        assert newer not in source, newer


def test_trained_model_ships_a_handler_that_serves_it(tmp_path):
    """The model directory holds code/inference.py; loaded as the inference container would, it scores CSV rows."""
    import importlib.util

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    document = {"features": ["a", "b"], "mean": [1.0, 2.0], "std": [2.0, 4.0], "weights": [0.5, -1.0], "bias": 0.1}
    (model_dir / "model.json").write_text(json.dumps(document))
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(train.INFERENCE_HANDLER)
    spec = importlib.util.spec_from_file_location("handler", model_dir / "code" / "inference.py")
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    model = handler.model_fn(str(model_dir))
    rows = handler.input_fn(b"3,2\n1,6\n", "text/csv")
    body, content_type = handler.output_fn(handler.predict_fn(rows, model), "text/csv")
    expected = [1 / (1 + math.exp(-(0.5 * 1.0 - 1.0 * 0.0 + 0.1))), 1 / (1 + math.exp(-(0.0 - 1.0 * 1.0 + 0.1)))]
    assert content_type == "text/csv"
    assert [float(v) for v in body.split("\n")] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="unsupported content type"):
        handler.input_fn(b"{}", "application/json")


def test_preprocess_writes_the_clarify_bias_inputs_when_asked(pipeline, tmp_path):
    facet = FEATURES[0]
    status, _, err = run(
        preprocess, *preprocess_args(pipeline.raw, tmp_path, "--bias-facet", facet, "--bias-threshold", "50")
    )
    assert status == 0, err
    config = json.loads((tmp_path / "clarify" / "config" / "analysis_config.json").read_text())
    assert config["headers"] == [TARGET, facet] and config["label"] == TARGET
    assert config["facet"] == [{"name_or_index": facet, "value_or_threshold": [50.0]}]
    assert config["methods"]["pre_training_bias"] == {"methods": "all"}
    # Clarify reads the data without a header row; the columns are the config's headers.
    data = pd.read_csv(tmp_path / "clarify" / "data" / "data.csv", header=None)
    train = read_csv(tmp_path / "train" / "train.csv")
    assert data.shape == (len(train), 2)
    assert data[0].tolist() == train[TARGET].tolist()
    # The endpoint's bias monitor config, as the SageMaker SDK's BiasAnalysisConfig builds it.
    monitor = json.loads((tmp_path / "clarify" / "monitoring" / "analysis_config.json").read_text())
    from sagemaker.clarify import BiasConfig
    from sagemaker.model_monitor.clarify_model_monitoring import BiasAnalysisConfig

    expected = BiasAnalysisConfig(
        BiasConfig(label_values_or_threshold=[1], facet_name=facet, facet_values_or_threshold=[50.0]),
        headers=list(FEATURES),
        label="label",
    )._to_dict()
    assert monitor == expected


def test_preprocess_refuses_a_bias_facet_that_is_not_a_feature(pipeline, tmp_path):
    status, _, err = run(
        preprocess, *preprocess_args(pipeline.raw, tmp_path, "--bias-facet", TARGET, "--bias-threshold", "0")
    )
    assert status == 1
    assert err.strip() == f"--bias-facet {TARGET!r} must be one of --features and come with --bias-threshold"
    assert not (tmp_path / "train").exists()


# --- evaluate: SHAP values of the model (the explainability baseline) ----------------------------


def _explain(pipeline: Pipeline, output: Path, *extra: object) -> tuple[int, str, str]:
    args = pipeline.evaluate_args(pipeline.processed / "test", output)
    return run(evaluate, *args, *options(explainability_dir=output / "explainability"), *extra)


@pytest.fixture(scope="module")
def explained(pipeline, tmp_path_factory) -> tuple[Path, int, str]:
    """The evaluate step asked for SHAP values of the test rows up to and including the first with a missing value."""
    test = read_csv(pipeline.processed / "test" / "test.csv")
    missing = test[list(FEATURES)].isna().any(axis=1).to_numpy()
    assert missing.any(), "the synthetic test split has rows with a missing feature"
    rows = int(missing.argmax()) + 1
    assert 10 <= rows < len(test), "a row count the config accepts, short of the whole split"
    output = tmp_path_factory.mktemp("explained")
    status, out, err = _explain(pipeline, output, "--explainability-rows", rows)
    assert status == 0, err
    return output / "explainability", rows, out


def test_evaluate_writes_exact_shap_values_of_the_first_test_rows(pipeline, explained):
    directory, rows, out = explained
    document = json.loads((pipeline.model_dir / "model.json").read_text())
    test = read_csv(pipeline.processed / "test" / "test.csv").head(rows)
    local = pd.read_csv(directory / "explanations_shap" / "out.csv")
    assert list(local.columns) == list(FEATURES) and len(local) == rows
    assert json.loads(out.strip().splitlines()[-1])["explained_rows"] == rows

    # By hand for the first row: weight * (value - training mean) / training std, feature by feature.
    first = test.iloc[0]
    by_hand = [
        document["weights"][i] * (float(first[name]) - document["mean"][i]) / document["std"][i]
        for i, name in enumerate(FEATURES)
    ]
    assert local.iloc[0].tolist() == pytest.approx(by_hand, rel=1e-12)
    # A missing value is scored as the training mean: it contributes nothing.
    last = test.iloc[rows - 1]
    gaps = [i for i, name in enumerate(FEATURES) if math.isnan(last[name])]
    assert gaps and all(local.iloc[rows - 1, i] == 0.0 for i in gaps)
    assert all(local.iloc[rows - 1, i] != 0.0 for i in range(len(FEATURES)) if i not in gaps)
    # Local accuracy: the baseline's margin plus a row's values is the margin the evaluation scored.
    probability = pd.read_csv(pipeline.predictions / "predictions.csv")["probability"].head(rows).to_numpy()
    scored = np.log(probability / (1 - probability))
    np.testing.assert_allclose(document["bias"] + local.to_numpy().sum(axis=1), scored, rtol=0, atol=1e-9)


def test_the_report_is_clarifys_analysis_json_with_mean_absolute_shap_values(pipeline, explained):
    directory = explained[0]
    document = json.loads((pipeline.model_dir / "model.json").read_text())
    report = json.loads((directory / "analysis.json").read_text())
    # Clarify's layout: one label ("label0" when the model's output has no header), its global values
    # and the expected value, here the margin (log-odds) at the baseline row, the model's bias.
    assert list(report) == ["version", "explanations"] and report["version"] == "1.0"
    assert list(report["explanations"]) == ["kernel_shap"] and list(report["explanations"]["kernel_shap"]) == ["label0"]
    label = report["explanations"]["kernel_shap"]["label0"]
    assert list(label) == ["global_shap_values", "expected_value"] and label["expected_value"] == document["bias"]
    shap = label["global_shap_values"]
    local = pd.read_csv(directory / "explanations_shap" / "out.csv")
    assert list(shap) == list(FEATURES)
    assert list(shap.values()) == pytest.approx(local.abs().mean().tolist(), rel=1e-12)
    # amount moves the synthetic label the most per standard deviation (about 1.5 log-odds against
    # 0.8 and 0.7), and the model learnt it: it leads by far.
    ranked = sorted(shap, key=shap.get, reverse=True)
    assert ranked[0] == "amount" and shap["amount"] > 2 * max(shap[name] for name in ranked[1:])
    # The SageMaker SDK's own reader of Clarify explainability reports (model cards) takes it as is.
    from sagemaker.model_card.evaluation_metric_parsers import ClarifyExplainabilityParser

    (group,) = ClarifyExplainabilityParser().run(report)["metric_groups"]
    assert group["name"] == "explanations - global_shap_values, label=label0"
    assert [(m["name"], m["value"]) for m in group["metric_data"]] == list(shap.items())


def test_global_shap_values_follow_the_weights_in_standard_deviations():
    """Mean |SHAP| of a feature is |weight| times its mean absolute z-score: a zero weight explains nothing."""
    document = {
        "features": ["a", "b", "c"], "mean": [0.0, 10.0, 5.0], "std": [1.0, 2.0, 4.0],
        "weights": [-3.0, 1.0, 0.0], "bias": 0.25,
    }  # fmt: skip
    x = np.array([[1.0, 12.0, 9.0], [-1.0, 8.0, 1.0], [2.0, np.nan, 5.0], [np.nan, 14.0, 13.0]])
    values = evaluate.shap_values(document, x)
    np.testing.assert_array_equal(values[:, 0], [-3.0, 3.0, -6.0, 0.0])
    np.testing.assert_array_equal(values[:, 1], [1.0, -1.0, 0.0, 2.0])
    np.testing.assert_array_equal(values[:, 2], [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(document["bias"] + values.sum(axis=1), evaluate.margin(document, x), atol=1e-12)
    shap = evaluate.explainability_report(document, values)["explanations"]["kernel_shap"]["label0"]
    assert shap == {"global_shap_values": {"a": 3.0, "b": 1.0, "c": 0.0}, "expected_value": 0.25}


def test_explainability_is_reproducible_and_stops_at_the_split(pipeline, explained, tmp_path):
    directory, rows, _ = explained
    status, _, err = _explain(pipeline, tmp_path / "again", "--explainability-rows", rows)
    assert status == 0, err
    for name in ("analysis.json", "explanations_shap/out.csv"):
        assert (tmp_path / "again" / "explainability" / name).read_bytes() == (directory / name).read_bytes()
    # More rows than the test split has: every row, once.
    status, out, err = _explain(pipeline, tmp_path / "all", "--explainability-rows", 100_000)
    assert status == 0, err
    test = read_csv(pipeline.processed / "test" / "test.csv")
    assert len(pd.read_csv(tmp_path / "all" / "explainability" / "explanations_shap" / "out.csv")) == len(test)
    assert json.loads(out.strip().splitlines()[-1])["explained_rows"] == len(test)


def test_evaluate_writes_no_shap_values_unless_asked(pipeline, tmp_path):
    status, out, err = _explain(pipeline, tmp_path)
    assert status == 0, err
    assert not (tmp_path / "explainability").exists()
    assert "explained_rows" not in json.loads(out.strip().splitlines()[-1])
    status, _, err = _explain(pipeline, tmp_path / "bad", "--explainability-rows", 0)
    assert status == 1
    assert err.strip() == "--explainability-rows must be 1 or more, got 0"
    assert not (tmp_path / "bad" / "evaluation").exists() and not (tmp_path / "bad" / "explainability").exists()


def test_evaluate_writes_the_explainability_monitor_config_the_promotion_completes(pipeline, explained):
    """The template, completed by the promotion function, is the SDK's ExplainabilityAnalysisConfig for that model.

    Its Kernel SHAP baseline is the training mean and it explains the margin (use_logit), so Clarify
    estimates on captured requests the values analysis.json holds exactly.
    """
    from sagemaker.clarify import ModelConfig, SHAPConfig
    from sagemaker.model_monitor.clarify_model_monitoring import ExplainabilityAnalysisConfig

    from lambdas.promotion.handler import explainability_config

    template = json.loads((explained[0] / evaluate.MONITOR_CONFIG_FILE).read_text())
    document = json.loads((pipeline.model_dir / "model.json").read_text())
    assert template["methods"]["shap"]["baseline"] == [document["mean"]]
    assert "model_name" not in template["predictor"]  # the model exists only once a version is deployed
    completed = explainability_config(template, "mlp-prod-endpoint-abc123-7", "ml.m5.xlarge")
    expected = ExplainabilityAnalysisConfig(
        SHAPConfig(
            baseline=[document["mean"]],
            num_samples=evaluate.MONITOR_SHAP_SAMPLES,
            agg_method="mean_abs",
            use_logit=True,
            save_local_shap_values=False,
        ),
        ModelConfig(
            model_name="mlp-prod-endpoint-abc123-7",
            instance_type="ml.m5.xlarge",
            instance_count=1,
            content_type="text/csv",
            accept_type="text/csv",
        ),
        headers=list(FEATURES),
    )._to_dict()
    assert completed == expected


# --- the platform monitoring engine's baselines ---------------------------------------------------


def test_preprocess_writes_the_data_quality_baseline_of_the_training_features_when_asked(pipeline, tmp_path):
    from monitoring.baseline import write_data_quality_baseline

    extra = ("--monitoring-baseline-dir", str(tmp_path / "monitoring"))
    status, _, err = run(preprocess, *preprocess_args(pipeline.raw, tmp_path / "out", *extra))
    assert status == 0, err
    train = read_csv(tmp_path / "out" / "train" / "train.csv")
    expected = write_data_quality_baseline(tmp_path / "expected", train, list(FEATURES))
    written = json.loads((tmp_path / "monitoring" / "data_quality" / "statistics.json").read_text())
    assert written == expected
    assert [f["name"] for f in written["features"]] == list(FEATURES) and written["rows"] == len(train)
    assert (tmp_path / "monitoring" / "data_quality" / "constraints.json").is_file()
    # What it wrote is what it declares (WRITES, checked by the pipeline emulator's contract).
    monitoring = [("Outputs[monitoring]", f"/opt/ml/{preprocess.MONITORING_DIR}", tmp_path / "monitoring")]
    declarations.verify_outputs("Preprocess", STEPS / "preprocess.py", monitoring)


def test_evaluate_writes_model_quality_and_bias_baselines_of_the_test_split_when_asked(pipeline, tmp_path):
    facet = "account_age_days"
    args = pipeline.evaluate_args(pipeline.processed / "test", tmp_path)
    extra = options(monitoring_baseline_dir=tmp_path / "monitoring", bias_facet=facet, bias_threshold=1000)
    status, _, err = run(evaluate, *args, *extra)
    assert status == 0, err
    evaluation = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())["binary_classification_metrics"]
    quality = json.loads((tmp_path / "monitoring" / "model_quality" / "statistics.json").read_text())
    assert quality["metrics"] == {name: evaluation[name]["value"] for name in evaluate.METRICS}
    assert quality["confusion_matrix"] == evaluation["confusion_matrix"]
    assert quality["threshold"] == 0.5
    test = read_csv(pipeline.processed / "test" / "test.csv")
    bias = json.loads((tmp_path / "monitoring" / "bias" / "statistics.json").read_text())
    young = int((test[facet] <= 1000).sum())
    assert bias["facet"] == facet and bias["counts"]["rows"] == [young, len(test) - young]
    assert bias["metrics"]["CI"] == pytest.approx((2 * young - len(test)) / len(test))
    monitoring = [("Outputs[monitoring]", f"/opt/ml/{evaluate.MONITORING_DIR}", tmp_path / "monitoring")]
    declarations.verify_outputs("Evaluate", STEPS / "evaluate.py", monitoring)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--bias-facet", "amount"), "--bias-facet 'amount' and --bias-threshold None come together or not at all"),
        (("--bias-facet", "amount", "--bias-threshold", "1"), "--bias-facet needs --monitoring-baseline-dir"),
        (
            ("--bias-facet", "channel", "--bias-threshold", "1", "--monitoring-baseline-dir", "x"),
            "--bias-facet 'channel' is not a model feature",
        ),
    ],
)
def test_evaluate_refuses_an_incomplete_bias_baseline_request(pipeline, tmp_path, extra, message):
    status, _, err = run(evaluate, *pipeline.evaluate_args(pipeline.processed / "test", tmp_path), *extra)
    assert status == 1 and err.strip().startswith(message)


def test_the_scripts_import_the_library_from_the_zip_the_job_receives(pipeline, tmp_path):
    """As SageMaker runs them: a copy of the script alone, the library a zip in its own input directory.

    Without --monitoring-baseline-dir (the Model Monitor engine) the scripts run without the library.
    """
    library = tmp_path / "library"
    library.mkdir()
    with zipfile.ZipFile(library / "0123abcd.zip", "w") as archive:
        for path in sorted((ROOT / "monitoring").glob("*.py")):
            archive.write(path, f"monitoring/{path.name}")
    code = tmp_path / "code"
    code.mkdir()
    for script in ("preprocess.py", "evaluate.py"):
        shutil.copy(STEPS / script, code / script)
    environment = {name: value for name, value in os.environ.items() if name not in (*ENVIRONMENT, "PYTHONPATH")}

    def script(name: str, *argv: object) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-I", str(code / name), *map(str, argv)]
        return subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    monitored = ("--monitoring-baseline-dir", tmp_path / "monitoring", "--library-dir", library)
    result = script("preprocess.py", *preprocess_args(pipeline.raw, tmp_path / "out"), *monitored)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "monitoring" / "data_quality" / "statistics.json").is_file()
    result = script("evaluate.py", *pipeline.evaluate_args(pipeline.processed / "test", tmp_path), *monitored)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "monitoring" / "model_quality" / "constraints.json").is_file()
    result = script(
        "preprocess.py", *preprocess_args(pipeline.raw, tmp_path / "plain"), "--library-dir", tmp_path / "none"
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "plain" / "monitoring").exists()
    result = script("preprocess.py", *preprocess_args(pipeline.raw, tmp_path / "lost"), *monitored[:2])
    assert result.returncode == 1 and not (tmp_path / "lost").exists()
    assert result.stderr == (
        "--library-dir /opt/ml/processing/input/library holds no `monitoring` package (a zip of it, or its parent "
        "directory); --monitoring-baseline-dir needs it\n"
    )
