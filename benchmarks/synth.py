"""`make bench`: synth time against a one-bucket CDK app, and the import costs the design decisions cite.

Both apps are synthesized the way the CDK CLI does it (a `python app.py` process with the cloud
assembly directory in CDK_OUTDIR) on the Node.js `make` installs, several times each, alternating,
and the medians are compared. The one-bucket app is measured twice: as `cdk init` would write it
(CDK's built-in CloudFormation validation on, the default) and with the validation off like this
project, so the report shows what the project costs and what the validation decision saves.

Import costs are measured in fresh processes: for a module the dev synth imports, over `aws_cdk`
alone (where the synth time goes); for a module the stacks avoid, over everything the dev synth
imports (what using it would add). docs/decisions.md points here instead of quoting figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_BUCKET_APP = """
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

app = cdk.App(builtin_cloud_formation_validation={validation})
stack = cdk.Stack(app, "OneBucket")
s3.Bucket(stack, "Bucket")
app.synth()
"""

PLATFORM = "platform (dev, all packs)"
ONE_BUCKET = {"one bucket, CDK defaults": "True", "one bucket, validation off": "False"}
# The ratio to the one-bucket app as `cdk init` writes it (decision 11).
LIMITS = "ceiling 2x, target 1.5x (decision 11)"


@dataclass(frozen=True)
class Import:
    """Modules whose import cost a decision weighs, and what the stacks do about it."""

    modules: tuple[str, ...]
    note: str


# Imported by the dev synth: where its time goes.
PAID = (
    Import(("aws_cdk.aws_ec2",), "every stack with a VPC (decision 11)"),
    Import(("aws_cdk.aws_glue",), "the DataLake stack (decision 11)"),
)
# Kept off the dev synth: what each would add to it.
AVOIDED = (
    Import(("aws_cdk.aws_sagemaker",), "CfnResource instead (decision 20)"),
    Import(("aws_cdk.aws_lambda", "aws_cdk.aws_cloudwatch"), "L1 resources instead (decision 22)"),
    Import(("aws_cdk.aws_dynamodb",), "a plain resource instead (decision 23)"),
    Import(("aws_cdk.aws_config",), "only when Config rules are on (decision 11)"),
    Import(("aws_cdk.pipelines",), "only in delivery mode (decision 24)"),
    Import(("sagemaker",), "only to rebuild a stale stored definition (decision 18)"),
    Import(("pandas",), "never on the synth path (decision 20)"),
)

IMPORT_TIMER = """
import importlib, sys, time
for name in {baseline!r}:
    try:
        importlib.import_module(name)
    except ImportError:  # a module only an extension registers (cython_runtime)
        pass
start = time.perf_counter()
for name in {measured!r}:
    importlib.import_module(name)
print(time.perf_counter() - start)
"""

MODULE_LISTER = """
import runpy, sys
sys.argv = ["app.py"]
try:
    runpy.run_path("app.py", run_name="__main__")
except SystemExit:
    pass
for name in sorted(sys.modules):
    if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("_"):
        print("module", name)
"""


def _env(outdir: Path, env_name: str = "dev") -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{env['PATH']}"
    env["CDK_OUTDIR"] = str(outdir)
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    env["CDK_CONTEXT_JSON"] = json.dumps({**context, "env": env_name})
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    # Every process uses the compiled-module cache that the warm-up run fills, whatever the shell says.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run(argv: list[str], workdir: Path, *, env_name: str = "dev", cwd: Path = ROOT) -> tuple[float, str]:
    """Seconds a process takes, and its output; it must exit 0."""
    outdir = Path(tempfile.mkdtemp(dir=workdir))
    start = time.perf_counter()
    result = subprocess.run(
        argv, cwd=cwd, env=_env(outdir, env_name), check=True, capture_output=True, text=True, timeout=600
    )
    return time.perf_counter() - start, result.stdout


def _node_version(workdir: Path) -> str:
    return _run(["node", "--version"], workdir)[1].strip()


def _synth_medians(workdir: Path, runs: int) -> dict[str, float]:
    """Median seconds of the platform's dev synth and of the one-bucket apps, run alternately."""
    apps = {PLATFORM: (ROOT / "app.py", ROOT)}
    for label, validation in ONE_BUCKET.items():
        script = workdir / f"one_bucket_{validation}.py"
        script.write_text(ONE_BUCKET_APP.format(validation=validation))
        apps[label] = (script, workdir)
    timings: dict[str, list[float]] = {label: [] for label in apps}
    for script, cwd in apps.values():  # warm-up: disk caches, .pyc files
        _run([sys.executable, str(script)], workdir, cwd=cwd)
    for _ in range(runs):
        for label, (script, cwd) in apps.items():
            timings[label].append(_run([sys.executable, str(script)], workdir, cwd=cwd)[0])
    return {label: statistics.median(values) for label, values in timings.items()}


def _bad_config_seconds(workdir: Path, runs: int) -> float:
    """How long `app.py` takes to report an unknown environment (it exits 2 before the CDK loads)."""
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "app.py"], cwd=ROOT, env=_env(workdir, "no-such-env"), capture_output=True, timeout=60
        )
        timings.append(time.perf_counter() - start)
        assert result.returncode == 2, result.stderr
    return statistics.median(timings)


def _synth_modules(workdir: Path) -> list[str]:
    """Every top-level module and aws_cdk submodule outside the standard library that the dev synth imports."""
    output = _run([sys.executable, "-c", MODULE_LISTER], workdir)[1]
    names = [line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("module ")]
    return [n for n in names if "." not in n or (n.startswith("aws_cdk.") and n.count(".") == 1)]


def _import_seconds(baseline: list[str], measured: tuple[str, ...], workdir: Path, runs: int) -> float:
    """Median seconds that importing `measured` adds to a fresh process that has imported `baseline`."""
    code = IMPORT_TIMER.format(baseline=baseline, measured=list(measured))
    _run([sys.executable, "-c", code], workdir)  # warm-up
    # The last line: the SageMaker SDK prints its config notices first.
    return statistics.median(float(_run([sys.executable, "-c", code], workdir)[1].split()[-1]) for _ in range(runs))


def _print_synth(medians: dict[str, float], bad_config: float) -> None:
    platform = medians[PLATFORM]
    defaults, validation_off = (medians[label] for label in ONE_BUCKET)
    rows = [(label, f"{value:6.2f} s", "") for label, value in medians.items()]
    rows += [
        ("platform / one bucket, CDK defaults", f"{platform / defaults:6.2f}x", LIMITS),
        ("platform / one bucket, validation off", f"{platform / validation_off:6.2f}x", ""),
        ("built-in validation, one-bucket app", f"{defaults - validation_off:+6.2f} s", "off here (decision 2)"),
        ("a bad config reported", f"{bad_config:6.2f} s", "before the CDK loads (decision 20)"),
    ]
    for label, value, note in rows:
        print(f"  {label:<46} {value}  {note}".rstrip())


def _print_imports(workdir: Path, runs: int) -> None:
    synth_modules = _synth_modules(workdir)
    print("  imported by the dev synth (cost over aws_cdk alone):")
    for entry in PAID:
        seconds = _import_seconds(["aws_cdk"], entry.modules, workdir, runs)
        print(f"    {' + '.join(entry.modules):<44} {seconds:6.2f} s  {entry.note}")
    print("  kept off the dev synth (what each would add to it):")
    for entry in AVOIDED:
        label = " + ".join(entry.modules)
        if any(module in synth_modules for module in entry.modules):
            print(f"    {label:<44}   now imported by the dev synth: {entry.note} no longer holds")
            continue
        seconds = _import_seconds(synth_modules, entry.modules, workdir, runs)
        print(f"    {label:<44} {seconds:6.2f} s  {entry.note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="synth runs per app (default 5)")
    parser.add_argument("--import-runs", type=int, default=3, help="fresh processes per import cost (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"synth, median of {args.runs} runs (python {sys.version.split()[0]}, node {_node_version(work)})")
        _print_synth(_synth_medians(work, args.runs), _bad_config_seconds(work, args.runs))
        print(f"\nimport cost, median of {args.import_runs} fresh processes")
        _print_imports(work, args.import_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
