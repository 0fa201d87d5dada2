"""Times the full default synth (all packs) against a one-bucket CDK app and prints the ratio.

Both apps are synthesized the same way the CDK CLI does it (a `python app.py` process with the
cloud assembly directory in CDK_OUTDIR) on the pinned Node.js, several times each, alternating,
and the medians are compared. The one-bucket app is measured twice: as `cdk init` would write it
(CDK's built-in CloudFormation validation on, the default) and with the validation off like this
project, so the report shows what the project costs and what the validation decision saves.
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


def _env(outdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{env['PATH']}"
    env["CDK_OUTDIR"] = str(outdir)
    env["CDK_CONTEXT_JSON"] = json.dumps(json.loads((ROOT / "cdk.json").read_text())["context"])
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"] = "1"
    # Both apps use the compiled-module cache that the warm-up run fills, whatever the shell says.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _time(script: Path, cwd: Path, workdir: Path) -> float:
    outdir = Path(tempfile.mkdtemp(dir=workdir))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=_env(outdir),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        apps = {
            "platform (dev, all packs)": (ROOT / "app.py", ROOT),
        }
        for label, validation in (("one bucket, CDK defaults", "True"), ("one bucket, validation off", "False")):
            script = work / f"{validation}.py"
            script.write_text(ONE_BUCKET_APP.format(validation=validation))
            apps[label] = (script, work)
        timings: dict[str, list[float]] = {label: [] for label in apps}
        for script, cwd in apps.values():  # warm-up: disk caches, .pyc files
            _time(script, cwd, work)
        for _ in range(args.runs):
            for label, (script, cwd) in apps.items():
                timings[label].append(_time(script, cwd, work))
    medians = {label: statistics.median(values) for label, values in timings.items()}
    platform = medians["platform (dev, all packs)"]
    print(f"median of {args.runs} runs (python {sys.version.split()[0]}, node from node_modules)")
    for label, value in medians.items():
        print(f"  {label:<28} {value:6.2f} s")
    for label in ("one bucket, CDK defaults", "one bucket, validation off"):
        print(f"ratio platform / {label:<26} {platform / medians[label]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
