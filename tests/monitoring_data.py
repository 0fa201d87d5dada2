"""Synthetic traffic for the monitoring engine's tests: training-like rows, capture files as SageMaker
writes them, and ground truth in Model Monitor's format."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURES = ("amount", "txn_count_24h", "account_age_days", "channel")
NUMERIC = FEATURES[:3]
CHANNELS = ("web", "app", "store")
HOUR = ("2026", "05", "09", "13")


def rows(
    count: int, seed: int, *, amount_shift: float = 0.0, channel_p: Sequence[float] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    """Feature rows like the training data: a skewed amount, a count, an age and a text channel."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": np.round(rng.gamma(2.0, 60.0, count) + amount_shift, 2),
            "txn_count_24h": rng.poisson(3, count).astype(float),
            "account_age_days": np.round(rng.uniform(1, 2000, count), 0),
            "channel": rng.choice(CHANNELS, count, p=list(channel_p)),
        }
    )


def scores_for(frame: pd.DataFrame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) where the score ranks the label well: a usable binary classifier."""
    rng = np.random.default_rng(seed)
    logit = -1.5 + 0.02 * (frame["amount"].to_numpy() - 120) + 0.4 * (frame["txn_count_24h"].to_numpy() - 3)
    truth = 1 / (1 + np.exp(-logit))
    labels = (rng.random(len(frame)) < truth).astype(float)
    scores = np.clip(truth + rng.normal(0, 0.05, len(frame)), 0, 1)
    return labels, scores


def csv_line(values: Sequence[Any]) -> str:
    return ",".join(
        "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value) for value in values
    )


def capture_record(
    request: str,
    response: str | None,
    event_id: str,
    *,
    encoding: str = "CSV",
    content_type: str = "text/csv",
    response_encoding: str = "CSV",
    response_type: str = "text/csv; charset=utf-8",
    inference_id: str | None = None,
) -> str:
    """One capture line exactly as SageMaker writes it (keys in its order); BASE64 encodes the payload."""

    def payload(data: str, mode: str, kind: str, how: str) -> dict[str, str]:
        text = base64.b64encode(data.encode()).decode() if how == "BASE64" else data
        return {"observedContentType": kind, "mode": mode, "data": text, "encoding": how}

    capture = {"endpointInput": payload(request, "INPUT", content_type, encoding)}
    if response is not None:
        capture["endpointOutput"] = payload(response, "OUTPUT", response_type, response_encoding)
    metadata = {"eventId": event_id, "inferenceTime": "2026-05-09T13:05:11Z"}
    if inference_id is not None:
        metadata = {"eventId": event_id, "inferenceId": inference_id, "inferenceTime": metadata["inferenceTime"]}
    return json.dumps({"captureData": capture, "eventMetadata": metadata, "eventVersion": "0"}, separators=(",", ":"))


def capture_lines(frame: pd.DataFrame, scores: Sequence[float] | None = None, prefix: str = "e") -> list[str]:
    """One invocation per row: the row as CSV in (with SageMaker's trailing newline), its score out."""
    lines = []
    for i, values in enumerate(frame.itertuples(index=False)):
        response = None if scores is None else f"{scores[i]:.6f}"
        lines.append(capture_record(csv_line(values) + "\n", response, f"{prefix}{i:06d}"))
    return lines


def write_capture(root: Path, lines: Sequence[str], *, hour: Sequence[str] = HOUR, name: str = "capture.jsonl") -> Path:
    """Lines in `<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>`, as SageMaker lays them out."""
    directory = root / "endpoint-1" / "AllTraffic" / Path(*hour)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def ground_truth_lines(labels: Sequence[float], prefix: str = "e") -> list[str]:
    """Model Monitor's ground-truth records, one per labelled invocation."""
    return [
        json.dumps(
            {
                "groundTruthData": {"data": str(int(label)), "encoding": "CSV"},
                "eventMetadata": {"eventId": f"{prefix}{i:06d}"},
                "eventVersion": "0",
            }
        )
        for i, label in enumerate(labels)
    ]


def write_baselines(root: Path) -> Path:
    """The three baselines of a model trained on rows(seed=0), as the pipeline's steps write them."""
    from monitoring.baseline import write_data_quality_baseline
    from monitoring.bias import FacetCounts, write_bias_baseline
    from monitoring.quality import write_model_quality_baseline

    write_data_quality_baseline(root / "data_quality", rows(20_000, seed=0), list(FEATURES))
    test = rows(5000, seed=1)
    labels, scores = scores_for(test, seed=2)
    write_model_quality_baseline(root / "model_quality", labels, scores)
    counts = FacetCounts(threshold=500.0, score_threshold=0.5)
    counts.update(test["account_age_days"].to_numpy(), labels, scores)
    write_bias_baseline(root / "bias", "account_age_days", counts)
    return root


def write_traffic(root: Path, frame: pd.DataFrame, labels: np.ndarray, scores: np.ndarray) -> tuple[Path, Path]:
    """(capture directory, ground-truth directory) of one invocation per row, every one labelled."""
    capture, truth = root / "capture", root / "ground-truth"
    write_capture(capture, capture_lines(frame, scores))
    (truth / "2026" / "05" / "09" / "14").mkdir(parents=True)
    (truth / "2026" / "05" / "09" / "14" / "labels.jsonl").write_text("\n".join(ground_truth_lines(labels)) + "\n")
    return capture, truth


def analysis_arguments(baselines: Path, capture: Path, truth: Path, output: Path) -> list[str]:
    """The analysis job's arguments for every monitor."""
    return [
        "--capture-dir", str(capture), "--ground-truth-dir", str(truth), "--output-dir", str(output),
        "--data-baseline", str(baselines / "data_quality"),
        "--quality-baseline", str(baselines / "model_quality"),
        "--bias-baseline", str(baselines / "bias"),
        "--monitors", "data_quality,model_quality,bias", "--endpoint", "fraud-endpoint",
    ]  # fmt: skip
