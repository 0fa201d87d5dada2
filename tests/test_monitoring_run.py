"""The monitor run's analysis job (monitoring/analyze.py) on capture files as SageMaker writes them.

Every monitor must be able to report a violation: each test injects one kind of drift (or bias,
or a worse model) into synthetic traffic and sees the number cross its threshold, and the same
traffic without it stays below.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitoring import analyze
from monitoring.baseline import DataQualityBaseline, write_data_quality_baseline
from monitoring.capture import CaptureReader, window_files
from monitoring.window import Window
from tests import monitoring_data as data

ROOT = Path(__file__).resolve().parent.parent
WINDOW_ROWS = 3000


@pytest.fixture(scope="module")
def baselines(tmp_path_factory) -> Path:
    return data.write_baselines(tmp_path_factory.mktemp("baselines"))


def run(baselines: Path, capture: Path, output: Path, *extra: str) -> tuple[int, str, str, dict[str, Any] | None]:
    """(status, stdout, stderr, report) of the analysis job's main."""
    argv = ["--capture-dir", str(capture), "--data-baseline", str(baselines / "data_quality")]
    argv += ["--output-dir", str(output), "--endpoint", "fraud-endpoint", *extra]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = analyze.main(argv)
    path = output / analyze.REPORT_FILE
    return status, out.getvalue(), err.getvalue(), json.loads(path.read_text()) if path.exists() else None


def all_monitors(baselines: Path, truth: Path) -> list[str]:
    return [
        "--monitors", "data_quality,model_quality,bias",
        "--quality-baseline", str(baselines / "model_quality"),
        "--bias-baseline", str(baselines / "bias"),
        "--ground-truth-dir", str(truth),
    ]  # fmt: skip


def traffic(tmp_path: Path, frame: pd.DataFrame, labels: np.ndarray, scores: np.ndarray) -> tuple[Path, Path]:
    return data.write_traffic(tmp_path, frame, labels, scores)


def section(report: dict[str, Any], kind: str) -> dict[str, Any]:
    return report["monitors"][kind]


def feature(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in section(report, "data_quality")["features"] if f["name"] == name)


# --- reading capture files ----------------------------------------------------------------------


def test_every_capture_encoding_gives_the_same_rows(tmp_path, baselines):
    """CSV and JSON payloads, plain or base64, one row or several per request, read alike."""
    frame = data.rows(6, seed=5)
    csv_rows = [data.csv_line(row) for row in frame.itertuples(index=False)]
    json_rows = [dict(zip(data.FEATURES, row, strict=True)) for row in frame.itertuples(index=False)]
    lines = [
        data.capture_record(csv_rows[0] + "\n", "0.1", "a"),
        data.capture_record(csv_rows[1], "0.2\n", "b", encoding="BASE64", response_encoding="BASE64"),
        data.capture_record("\n".join(csv_rows[2:4]) + "\n", "0.3\n0.4\n", "c"),
        data.capture_record(
            json.dumps({"instances": json_rows[4:5]}),
            json.dumps({"predictions": [{"score": 0.5}]}),
            "d",
            encoding="JSON",
            content_type="application/json",
            response_encoding="JSON",
            response_type="application/json",
        ),
        data.capture_record(csv_rows[4], json.dumps({"predictions": [0.45]}), "f", response_encoding="JSON"),
        data.capture_record(
            json.dumps([list(json_rows[5].values())]),
            json.dumps([0.6]),
            "e",
            encoding="BASE64",
            content_type="application/json",
            response_encoding="BASE64",
            response_type="application/json",
        ),
    ]
    data.write_capture(tmp_path, lines)
    reader = CaptureReader(data.FEATURES)
    batches = list(reader.batches(window_files(tmp_path)))
    assert [row for batch in batches for row in batch.rows] == [*csv_rows[:5], csv_rows[4], csv_rows[5]]
    assert [s for batch in batches for s in batch.scores] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.45, 0.6]
    assert (reader.tally.records, reader.tally.rows, reader.tally.malformed) == (6, 7, 0)


def test_malformed_lines_are_counted_skipped_and_named(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=3)
    lines = data.capture_lines(frame)
    bad = {
        10: "{not json",
        20: json.dumps({"eventMetadata": {"eventId": "x"}}),
        30: data.capture_record("1,2", None, "y", encoding="BASE64").replace('"data":"', '"data":"%%'),
        40: data.capture_record("1,2", None, "z", encoding="GZIP"),
    }
    for index, line in bad.items():
        lines.insert(index, line)
    path = data.write_capture(tmp_path / "capture", lines)
    status, stdout, _, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    assert status == 0, stdout
    assert report["input"]["malformed_lines"] == 4
    assert report["input"]["records"] == WINDOW_ROWS
    assert section(report, "data_quality")["rows"] == WINDOW_ROWS
    examples = report["input"]["malformed_examples"]
    name = str(path.relative_to(tmp_path / "capture"))  # the tail of its S3 key
    assert name == "endpoint-1/AllTraffic/2026/05/09/13/capture.jsonl"
    assert [(e["file"], e["line"]) for e in examples] == [(name, i + 1) for i in bad]
    assert [e["reason"] for e in examples] == [
        "not a JSON object",
        "captureData.endpointInput is missing",
        "endpointInput.data is not base64 of UTF-8 text",
        "endpointInput.encoding is 'GZIP', not CSV, JSON or BASE64",
    ]


def test_a_window_where_every_line_is_malformed_fails_with_one_line_naming_the_file(tmp_path, baselines):
    path = data.write_capture(tmp_path / "capture", ["garbage", '{"captureData": 1}', "[1, 2]"])
    status, _, stderr, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    assert status == 1 and report is None
    assert stderr.count("\n") == 1
    name = path.relative_to(tmp_path / "capture")
    assert f"every one of the 3 lines of 1 capture file(s) is malformed; first: {name} line 1: not a JSON" in stderr


@pytest.mark.parametrize("content", [None, "", "\n\n"])
def test_an_empty_window_is_a_no_data_report_not_an_error(tmp_path, baselines, content):
    (tmp_path / "capture").mkdir()
    if content is not None:
        data.write_capture(tmp_path / "capture", []).write_text(content)
    truth = tmp_path / "ground-truth"
    truth.mkdir()
    status, stdout, stderr, report = run(
        baselines, tmp_path / "capture", tmp_path / "out", *all_monitors(baselines, truth)
    )
    assert (status, stderr) == (0, "")
    assert "status=no_data" in stdout
    assert report["status"] == "no_data" and report["violation_count"] == 0
    assert {kind: s["status"] for kind, s in report["monitors"].items()} == dict.fromkeys(analyze.MONITORS, "no_data")


def test_streaming_in_small_chunks_gives_the_summaries_of_one_chunk(tmp_path, baselines):
    frame = data.rows(2000, seed=4)
    frame.loc[::7, "amount"] = np.nan
    data.write_capture(tmp_path, data.capture_lines(frame))
    baseline = DataQualityBaseline.load(baselines / "data_quality")
    results = []
    for chunk_bytes in (1 << 30, 4096):
        window = Window(baseline)
        for batch in CaptureReader(baseline.names).batches(window_files(tmp_path), chunk_bytes):
            window.add(batch)
        results.append(window.summaries)
    for whole, chunked in zip(*results, strict=True):
        assert whole.counts.tolist() == chunked.counts.tolist()
        assert (whole.count, whole.missing) == (chunked.count, chunked.missing)
        if hasattr(whole, "mean"):
            assert whole.mean == pytest.approx(chunked.mean, rel=1e-12)
            assert whole.std == pytest.approx(chunked.std, rel=1e-9)


def test_the_window_is_the_hours_asked_for(tmp_path):
    for hour in ("12", "13", "14"):
        data.write_capture(tmp_path, ["{}"], hour=("2026", "05", "09", hour))
    start, end = analyze._time("2026-05-09T13:00:00Z"), analyze._time("2026-05-09T14:00:00Z")
    assert [p.parts[-2] for p in window_files(tmp_path, start, end)] == ["13"]
    assert len(window_files(tmp_path)) == 3


def test_ground_truth_joins_on_inference_id_before_event_id(tmp_path, baselines):
    frame = data.rows(2, seed=6)
    rows = [data.csv_line(row) for row in frame.itertuples(index=False)]
    lines = [
        data.capture_record(rows[0], "0.9", "event-a", inference_id="caller-a"),
        data.capture_record(rows[1], "0.1", "event-b"),
    ]
    data.write_capture(tmp_path / "capture", lines)
    truth = tmp_path / "truth" / "labels.jsonl"
    truth.parent.mkdir()
    records = [
        {
            "groundTruthData": {"data": "1", "encoding": "CSV"},
            "eventMetadata": {"eventId": "caller-a"},
            "eventVersion": "0",
        },
        {"groundTruthData": {"data": "MA==", "encoding": "BASE64"}, "eventMetadata": {"eventId": "event-b"}},
        {"groundTruthData": {"data": "2", "encoding": "CSV"}, "eventMetadata": {"eventId": "event-c"}},
        {"groundTruthData": {"data": "1", "encoding": "CSV"}},
    ]
    truth.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    extra = ["--monitors", "model_quality", "--quality-baseline", str(baselines / "model_quality")]
    status, _, _, report = run(
        baselines, tmp_path / "capture", tmp_path / "out", *extra, "--ground-truth-dir", str(truth.parent)
    )
    assert status == 0
    assert report["input"]["labelled_rows"] == 2
    assert report["input"]["ground_truth"]["records"] == 2
    assert [e["reason"] for e in report["input"]["ground_truth"]["malformed_examples"]] == [
        "ground truth holds a label other than 0 or 1",
        "eventMetadata.eventId is missing",
    ]
    assert section(report, "model_quality")["status"] == "insufficient_data"


def test_rows_of_another_width_are_schema_errors(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=7)
    lines = data.capture_lines(frame)
    lines += [data.capture_record("1,2,3\n", "0.5", f"short{i}") for i in range(40)]
    data.write_capture(tmp_path / "capture", lines)
    _, _, _, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    dq = section(report, "data_quality")
    assert (dq["rows"], dq["schema_errors"]) == (WINDOW_ROWS, 40)
    assert [(v["check"], v["subject"]) for v in dq["violations"]] == [("schema", "*")]


# --- each monitor can report a violation, and stays quiet without one ---------------------------


def test_data_quality_without_drift_stays_below_every_threshold(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=8)
    data.write_capture(tmp_path / "capture", data.capture_lines(frame))
    status, _, _, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    dq = section(report, "data_quality")
    assert (status, dq["status"], report["violation_count"]) == (0, "ok", 0)
    assert dq["max_js_distance"] < 0.1 and dq["max_psi"] < 0.05


def test_injected_drift_crosses_the_drift_threshold_of_that_feature_only(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=8, amount_shift=60.0)
    data.write_capture(tmp_path / "capture", data.capture_lines(frame))
    _, _, _, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    dq = section(report, "data_quality")
    assert dq["worst_feature"]["name"] == "amount"
    assert feature(report, "amount")["js_distance"] > 0.2 and feature(report, "amount")["psi"] > 0.25
    assert {(v["check"], v["subject"]) for v in dq["violations"]} == {("drift", "amount"), ("psi", "amount")}
    assert all(f["js_distance"] < 0.1 for f in dq["features"] if f["name"] != "amount")


def test_a_new_category_mix_is_drift_of_a_text_feature(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=9, channel_p=(0.1, 0.1, 0.8))
    data.write_capture(tmp_path / "capture", data.capture_lines(frame))
    _, _, _, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    assert feature(report, "channel")["js_distance"] > 0.2
    assert ("drift", "channel") in {(v["check"], v["subject"]) for v in report["violations"]}


def test_missing_values_text_in_numbers_and_out_of_range_values_are_violations(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=10).astype({"account_age_days": object, "txn_count_24h": object})
    frame.loc[: WINDOW_ROWS // 5, "amount"] = np.nan
    frame.loc[:100, "account_age_days"] = "unknown"
    frame.loc[200:300, "txn_count_24h"] = 1000.0
    data.write_capture(tmp_path / "capture", data.capture_lines(frame))
    _, _, _, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    found = {(v["check"], v["subject"]) for v in report["violations"]}
    assert {("missing_rate", "amount"), ("type", "account_age_days"), ("range", "txn_count_24h")} <= found
    assert feature(report, "account_age_days")["type_error_rate"] == pytest.approx(101 / WINDOW_ROWS)


def test_a_drift_limit_from_the_config_replaces_the_baselines(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=8, amount_shift=60.0)
    data.write_capture(tmp_path / "capture", data.capture_lines(frame))
    _, _, _, report = run(baselines, tmp_path / "capture", tmp_path / "out", "--max-js-distance", "0.9")
    assert ("drift", "amount") not in {(v["check"], v["subject"]) for v in report["violations"]}


def test_a_feature_the_baseline_never_saw_gets_no_distance(tmp_path):
    train = data.rows(500, seed=0).assign(amount=np.nan)
    write_data_quality_baseline(tmp_path / "data_quality", train, list(data.FEATURES))
    data.write_capture(tmp_path / "capture", data.capture_lines(data.rows(500, seed=1)))
    status, _, stderr, report = run(tmp_path, tmp_path / "capture", tmp_path / "out")
    assert status == 0, stderr
    amount = feature(report, "amount")
    assert (amount["baseline_missing_rate"], amount["js_distance"], amount["psi"]) == (1.0, None, None)


def test_too_few_rows_are_described_but_not_judged(tmp_path, baselines):
    frame = data.rows(50, seed=8, amount_shift=200.0)
    data.write_capture(tmp_path / "capture", data.capture_lines(frame))
    _, _, _, report = run(baselines, tmp_path / "capture", tmp_path / "out")
    dq = section(report, "data_quality")
    assert (dq["status"], dq["violations"], dq["max_js_distance"]) == ("insufficient_data", [], None)
    assert feature(report, "amount")["mean"] > 200


def test_model_quality_of_a_good_model_passes_and_a_degraded_one_violates(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=11)
    labels, scores = data.scores_for(frame, seed=12)
    capture, truth = traffic(tmp_path / "good", frame, labels, scores)
    _, _, _, report = run(baselines, capture, tmp_path / "good" / "out", *all_monitors(baselines, truth))
    quality = section(report, "model_quality")
    assert (quality["status"], quality["rows"], quality["violations"]) == ("ok", WINDOW_ROWS, [])
    assert quality["metrics"]["auc"] > 0.8
    noise = np.random.default_rng(13).random(WINDOW_ROWS)
    capture, truth = traffic(tmp_path / "bad", frame, labels, noise)
    _, _, _, report = run(baselines, capture, tmp_path / "bad" / "out", *all_monitors(baselines, truth))
    quality = section(report, "model_quality")
    assert quality["metrics"]["auc"] < 0.6
    assert "auc" in {v["subject"] for v in quality["violations"]}


def test_a_metric_floor_from_the_config_replaces_the_baselines(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=11)
    labels, scores = data.scores_for(frame, seed=12)
    capture, truth = traffic(tmp_path, frame, labels, scores)
    extra = [*all_monitors(baselines, truth), "--min-metric", "auc=0.99"]
    _, _, _, report = run(baselines, capture, tmp_path / "out", *extra)
    assert [(v["subject"], v["threshold"]) for v in section(report, "model_quality")["violations"]] == [("auc", 0.99)]


def test_bias_without_drift_stays_below_and_injected_bias_crosses_its_threshold(tmp_path, baselines):
    frame = data.rows(WINDOW_ROWS, seed=14)
    labels, scores = data.scores_for(frame, seed=15)
    capture, truth = traffic(tmp_path / "fair", frame, labels, scores)
    _, _, _, report = run(baselines, capture, tmp_path / "fair" / "out", *all_monitors(baselines, truth))
    bias = section(report, "bias")
    assert bias["status"] == "ok" and bias["violations"] == []
    assert max(bias["shifts"].values()) < 0.1
    # The served model starts to favour young accounts (the facet group d: age above 500 days).
    biased = np.where(frame["account_age_days"].to_numpy() > 500, np.minimum(scores, 0.2), np.maximum(scores, 0.8))
    capture, truth = traffic(tmp_path / "biased", frame, labels, biased)
    _, _, _, report = run(baselines, capture, tmp_path / "biased" / "out", *all_monitors(baselines, truth))
    bias = section(report, "bias")
    assert bias["shifts"]["DPPL"] > 0.5
    assert [v["subject"] for v in bias["violations"]] == ["DPPL"]
    assert bias["shifts"]["CI"] < 0.1  # the traffic is the same, only the predictions changed


# --- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--monitors", "drift"], "--monitors 'drift': each must be one of data_quality, model_quality, bias"),
        (["--monitors", "model_quality"], "--monitors model_quality needs --quality-baseline and --ground-truth-dir"),
        (["--min-metric", "auc=2"], "'auc=2' is not METRIC=VALUE"),
        (["--window-start", "yesterday"], "'yesterday' is not a UTC time"),
    ],
)
def test_bad_arguments_are_refused_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit):
        analyze.parse_args(["--endpoint", "fraud-endpoint", *argv])
    assert message in capsys.readouterr().err


# --- the job as SageMaker starts it -------------------------------------------------------------


def test_the_job_runs_from_the_library_zip_alone(tmp_path, baselines):
    """`python3 -m monitoring.analyze` with the zip the job receives on PYTHONPATH, outside the repository."""
    library = tmp_path / "library" / "5f2a0c.zip"
    library.parent.mkdir()
    with zipfile.ZipFile(library, "w") as archive:
        for path in sorted((ROOT / "monitoring").glob("*.py")):
            archive.write(path, f"monitoring/{path.name}")
    data.write_capture(tmp_path / "capture", data.capture_lines(data.rows(500, seed=16)))
    command = [sys.executable, "-m", "monitoring.analyze", "--capture-dir", "capture", "--output-dir", "out"]
    command += ["--data-baseline", str(baselines / "data_quality"), "--endpoint", "fraud-endpoint"]
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run(
        command, cwd=tmp_path, env={**environment, "PYTHONPATH": str(library)}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("status=ok records=500 malformed_lines=0 violations=0")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert section(report, "data_quality")["rows"] == 500
