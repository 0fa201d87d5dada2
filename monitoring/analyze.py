"""The monitor run's analysis job: one window of captured traffic against the served version's baselines.

Runs as a SageMaker processing job with network isolation (`python3 -m monitoring.analyze ...`, the
library on PYTHONPATH); it reads local files only and writes report.json (README.md, "Report").
Exit status 0 with a report (also for an empty window: status "no_data"), 1 with one line on
stderr when the window or a baseline cannot be read.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitoring import documents
from monitoring.baseline import DataQualityBaseline
from monitoring.bias import BiasBaseline, bias_section
from monitoring.capture import CaptureError, CaptureReader, Tally, read_ground_truth, window_files
from monitoring.documents import DocumentError
from monitoring.drift import data_quality_section
from monitoring.quality import METRICS, ModelQualityBaseline, model_quality_section
from monitoring.window import Window

if TYPE_CHECKING:
    from collections.abc import Sequence

REPORT_FILE = "report.json"
REPORT_KIND = "monitoring_report"
MONITORS = ("data_quality", "model_quality", "bias")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _time(text: str) -> datetime:
    try:
        return datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a UTC time such as 2026-05-09T13:00:00Z") from None


def _floor(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if name not in METRICS or not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not METRIC=VALUE with METRIC one of {list(METRICS)}, VALUE in [0, 1]"
        )
    return name, number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m monitoring.analyze", description=__doc__)
    parser.add_argument("--capture-dir", type=Path, default=Path("/opt/ml/processing/input/capture"))
    parser.add_argument("--data-baseline", type=Path, default=Path("/opt/ml/processing/input/baselines/data_quality"))
    parser.add_argument("--quality-baseline", type=Path, default=None, help="model-quality baseline directory")
    parser.add_argument("--bias-baseline", type=Path, default=None, help="bias baseline directory")
    parser.add_argument("--ground-truth-dir", type=Path, default=None)
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--monitors", default="data_quality", help=f"comma-separated, of {', '.join(MONITORS)}")
    parser.add_argument("--endpoint", required=True, help="endpoint name: the report's, and its metrics' dimension")
    parser.add_argument("--window-start", type=_time, default=None, help="first hour analysed (UTC, inclusive)")
    parser.add_argument("--window-end", type=_time, default=None, help="end of the window (UTC, exclusive)")
    parser.add_argument("--max-js-distance", type=float, default=None, help="replaces every feature's drift limit")
    parser.add_argument("--min-metric", type=_floor, action="append", default=[], help="METRIC=VALUE floor")
    args = parser.parse_args(argv)
    args.monitors = [name.strip() for name in args.monitors.split(",") if name.strip()]
    _check(parser, args)
    return args


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    unknown = [name for name in args.monitors if name not in MONITORS]
    if unknown or not args.monitors:
        parser.error(f"--monitors {','.join(args.monitors)!r}: each must be one of {', '.join(MONITORS)}")
    needs = {"model_quality": ("quality_baseline", "ground_truth_dir"), "bias": ("bias_baseline",)}
    for monitor, names in needs.items():
        absent = [
            f"--{name.replace('_', '-')}" for name in names if monitor in args.monitors and getattr(args, name) is None
        ]
        if absent:
            parser.error(f"--monitors {monitor} needs {' and '.join(absent)}")
    if args.max_js_distance is not None and not 0.0 < args.max_js_distance <= 1.0:
        parser.error(f"--max-js-distance must be in (0, 1], got {args.max_js_distance}")
    if args.window_start and args.window_end and args.window_start >= args.window_end:
        parser.error(f"--window-start {args.window_start} must be before --window-end {args.window_end}")


def analyze(args: argparse.Namespace) -> dict[str, Any]:
    """The report of one window (see README.md, "Report"); DocumentError or CaptureError when impossible."""
    data = DataQualityBaseline.load(args.data_baseline)
    if args.max_js_distance is not None:
        data = _with_drift_limit(data, args.max_js_distance)
    quality = ModelQualityBaseline.load(args.quality_baseline) if "model_quality" in args.monitors else None
    if quality is not None and args.min_metric:
        quality = quality.with_floors(dict(args.min_metric))
    bias = BiasBaseline.load(args.bias_baseline) if "bias" in args.monitors else None
    truth_tally = Tally(root=args.ground_truth_dir)
    truth = read_ground_truth(window_files(args.ground_truth_dir), truth_tally) if args.ground_truth_dir else None
    window = Window(data, bias.new_counts() if bias else None, bias.facet if bias else "")
    reader = CaptureReader(data.names, truth, root=args.capture_dir)
    for batch in reader.batches(window_files(args.capture_dir, args.window_start, args.window_end)):
        window.add(batch)
    tally = reader.tally
    monitors: dict[str, Any] = {}
    if "data_quality" in args.monitors:
        monitors["data_quality"] = data_quality_section(data, window.summaries, tally.schema_errors)
    if quality is not None:
        monitors["model_quality"] = model_quality_section(quality, *window.labelled())
    if bias is not None and window.facet is not None:
        monitors["bias"] = bias_section(bias, window.facet)
    violations = [v for section in monitors.values() for v in section["violations"]]
    return {
        "schema_version": documents.SCHEMA_VERSION,
        "kind": REPORT_KIND,
        "endpoint": args.endpoint,
        "window": {
            "start": args.window_start.strftime(TIME_FORMAT) if args.window_start else None,
            "end": args.window_end.strftime(TIME_FORMAT) if args.window_end else None,
        },
        "generated_at": time.strftime(TIME_FORMAT, time.gmtime()),
        "status": "ok" if tally.records else "no_data",
        "input": {**tally.as_dict(), "ground_truth": truth_tally.as_dict() if truth is not None else None},
        "monitors": monitors,
        "violations": violations,
        "violation_count": len(violations),
    }


def _with_drift_limit(baseline: DataQualityBaseline, limit: float) -> DataQualityBaseline:
    from dataclasses import replace

    return replace(baseline, features=[replace(feature, max_js_distance=limit) for feature in baseline.features])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    # The job allocates millions of short-lived dicts (one per capture line) that reference counting
    # frees; the cyclic collector's passes over them cost a third of the parsing time and find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        report = analyze(args)
    except (DocumentError, CaptureError, ValueError) as error:
        print(str(error).replace("\n", " "), file=sys.stderr)
        return 1
    finally:
        if collecting:
            gc.enable()
    documents.write(args.output_dir / REPORT_FILE, report)
    summary = {
        "status": report["status"],
        "records": report["input"]["records"],
        "malformed_lines": report["input"]["malformed_lines"],
        "violations": report["violation_count"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(" ".join(f"{name}={value}" for name, value in summary.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
