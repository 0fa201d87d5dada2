"""`make dry-run ENV=<env>`: run an environment's stored pipeline definition on synthetic data, offline."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pipelines import definition as builder
from pipelines.emulator import workload
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.runner import Execution, StepRun


def stored_definitions(env: str) -> list[Path]:
    """The stored definitions `make synth ENV=<env>` writes: a directory of them, or the one of the env's pipeline."""
    directory = builder.CACHE_DIR / env
    if directory.is_dir():
        return sorted(directory.glob("*.json"))
    from infra.catalog import naming
    from infra.config import load_config

    config = load_config(env)
    if config.training is None:
        raise SystemExit(f"dry-run: ENV={env} has no training section, so no pipeline to run")
    path = builder.CACHE_DIR / f"{naming.training_pipeline(config)}.json"
    if not path.is_file():
        raise SystemExit(f"dry-run: {path} does not exist: run `make synth ENV={env}` first")
    return [path]


def show(run: StepRun) -> None:
    print(f"{run.name:24} {run.kind:14} {run.status:10} {run.seconds:6.1f} s  {run.note}".rstrip(), flush=True)
    for uri in run.inputs:
        print(f"{'':6}in   {uri}")
    for uri in run.outputs:
        print(f"{'':6}out  {uri}")


def _serve(deployed: workload.Deployed, execution: Execution) -> str:
    try:
        served = workload.check_serving(deployed, execution)
    except NotEmulated as gap:
        return f"not emulated: {gap}"
    return (
        f"{execution.model_package_arn} answered {served.rows} rows ({served.missing_values} with a missing "
        f"value) as the Evaluate step scored them (largest difference {served.max_difference:.1e})"
    )


def dry_run(path: Path, tuning_jobs: int, signal: bool) -> str:
    """Run one stored definition and serve its registered model; the execution's status. EmulationError on failure."""
    stored = workload.Stored.load(path)
    started = time.perf_counter()
    source = path.relative_to(builder.CACHE_DIR.parent.parent)
    print(f"{stored.name}: {source} in {stored.region}, offline, synthetic data")
    print(f"{'step':24} {'type':14} {'status':10} {'time':>8}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        workload.emulated_account(Path(tmp), stored.region, tuning_jobs) as world,
    ):
        deployed = workload.deploy(world, stored, signal=signal)
        execution = deployed.run(execution_id="dry-run", on_step=show)
        if execution.status == "Failed":
            print(f"execution failed at its Fail step: {execution.failure}")
        else:
            print(f"serving: {_serve(deployed, execution)}")
    seconds = time.perf_counter() - started
    print(f"{stored.name}: {execution.status} in {seconds:.1f} s")
    return execution.status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--env", default="dev", help="environment whose stored definition runs (config/<env>.yaml)")
    parser.add_argument("--tuning-jobs", type=int, default=2, help="training jobs a tuning step runs (default 2)")
    parser.add_argument("--no-signal", action="store_true", help="labels independent of the features: the gate fails")
    args = parser.parse_args(argv)
    try:
        for path in stored_definitions(args.env):
            status = dry_run(path, args.tuning_jobs, not args.no_signal)
            # On data a model can learn, the gate must pass; --no-signal is meant to fail it.
            if status != "Succeeded" and not args.no_signal:
                return 1
    except EmulationError as error:
        print(f"dry-run: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
