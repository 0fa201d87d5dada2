"""Times the emulated dev pipeline (make dry-run ENV=dev) in a fresh process per run and prints the median."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The budget for one emulated dev pipeline on this kind of machine.
BUDGET_SECONDS = 30.0


def _time(env: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipelines.emulator", "--env", env],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", default="dev")
    args = parser.parse_args()
    _time(args.env)  # warm-up: disk caches, .pyc files
    timings = [_time(args.env) for _ in range(args.runs)]
    median = statistics.median(timings)
    print(f"emulated {args.env} pipeline (make dry-run ENV={args.env}), median of {args.runs} runs")
    print(
        f"  preprocess, train, evaluate, baselines, register, serve  {median:6.2f} s  (budget {BUDGET_SECONDS:.0f} s)"
    )
    print(f"  runs: {', '.join(f'{t:.2f}' for t in timings)} s")
    return 0 if median <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
