"""This platform's pipeline, deployed into the emulated account: its stored definitions, assets and synthetic data."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from pipelines import definition as builder
from pipelines.emulator import deployment
from pipelines.emulator.runner import Execution, Selection, StepRun, emulate
from pipelines.emulator.storage import Store, split_uri
from pipelines.emulator.world import World

STEPS = Path(builder.__file__).resolve().parent / "steps"
# The Training stack's script assets (stacks/training.py): placeholder -> file under pipelines/steps/.
SCRIPT_ASSETS = {"PreprocessKey": "preprocess.py", "EvaluateKey": "evaluate.py", "CompileKey": "compile_neuron.py"}
# The training code asset: the placeholder and the files of its sourcedir.tar.gz.
TRAINING_CODE = ("TrainingCodeKey", ("train.py",))
# The monitoring library asset (a zip of the `monitoring` package) the steps import when they write
# the platform engine's baselines; only a definition that names its placeholder gets it.
LIBRARY_CODE = "MonitoringLibraryKey"
LIBRARY = STEPS.parent.parent / "monitoring"
ACCOUNT = "123456789012"
# The handler answers with six decimals.
SERVING_TOLERANCE = 1e-6
DEFAULT_REGION = builder.IMAGE_REGION


@dataclass(frozen=True)
class Stored:
    """A stored definition file: the pipeline's spec and its definition with placeholders."""

    path: Path
    spec: dict[str, Any]
    text: str  # the definition as the Training stack puts it into Fn::Sub

    @classmethod
    def load(cls, path: Path) -> Stored:
        record = json.loads(path.read_text())
        text = json.dumps(record["definition"], sort_keys=True, separators=(",", ":"))
        return cls(path, record["spec"], text)

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def region(self) -> str:
        return str(self.spec["region"] or DEFAULT_REGION)


def training_archive() -> bytes:
    """sourcedir.tar.gz byte for byte as the Training stack builds it (stacks/training.py: source_tarball)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(TRAINING_CODE[1]):
            data = (STEPS / name).read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue())
    return raw.getvalue()


def asset_key(file_name: str, content: bytes) -> str:
    """A file asset's object key as CDK names it: a content hash and the file's last extension (.py, .gz)."""
    return hashlib.sha256(content).hexdigest() + PurePosixPath(file_name).suffix


def library_archive() -> bytes:
    """The monitoring library zip as the Training stack builds it: its .py files under monitoring/, fixed dates."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(LIBRARY.glob("*.py")):
            info = zipfile.ZipInfo(f"monitoring/{source.name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def assets(named: Iterable[str] | None = None) -> dict[str, tuple[str, bytes]]:
    """Placeholder -> (object key, content) of the step scripts and training code, and of the monitoring
    library when `named` (the placeholders a definition uses) includes it."""
    found = {name: (STEPS / file).read_bytes() for name, file in SCRIPT_ASSETS.items()}
    keyed = {name: (asset_key(SCRIPT_ASSETS[name], data), data) for name, data in found.items()}
    archive = training_archive()
    keyed[TRAINING_CODE[0]] = (asset_key("sourcedir.tar.gz", archive), archive)
    if LIBRARY_CODE in set(named or ()):
        library = library_archive()
        keyed[LIBRARY_CODE] = (asset_key("monitoring.zip", library), library)
    return keyed


def variables(stored: Stored, keys: dict[str, str]) -> dict[str, str]:
    """The Fn::Sub variables the Training stack passes, with values of the emulated account."""
    region, name = stored.region, stored.name
    values = {
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "ProcessingRoleName": f"{name}-processing",
        "TrainingRoleName": f"{name}-training",
        "ArtifactsBucket": f"{name}-artifacts",
        "CuratedBucket": f"{name}-curated",
        "ArtifactsKeyArn": f"arn:aws:kms:{region}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000000",
        "SecurityGroupId": "sg-0123456789abcdef0",
        "AssetsBucket": f"cdk-hnb659fds-assets-{ACCOUNT}-{region}",
        **keys,
        **{f"Subnet{i}": f"subnet-{i:017x}" for i in range(int(stored.spec["subnets"]))},
    }
    if stored.spec["region"] is None:
        values.update({f"{family}Registry": account for family, account in builder.registry_accounts()[region].items()})
    return values


def curated_files(spec: dict[str, Any], rows: int = 2000, seed: int = 7, signal: bool = True) -> dict[str, bytes]:
    """The curated table as CSV partitions: key, target, features, columns the pipeline must ignore, a
    few missing feature values, rows without key, and keys loaded twice (the later load wins).

    With `signal`, the label follows the first feature (a model can learn it); without, it is noise.
    """
    rng = np.random.default_rng(seed)
    features = list(spec["features"])
    values = rng.lognormal(5.0, 1.0, size=(rows, len(features)))
    score = (np.log(values[:, 0]) - 5.0) * 3.0 - 1.0 if signal else rng.normal(size=rows)
    labels = (rng.random(rows) < 1.0 / (1.0 + np.exp(-score))).astype(int)
    keys = [f"{i:08d}" for i in range(rows)]
    header = [spec["key"], "customer_email", *features, "event_time", spec["target"]]
    partitions: dict[str, list[str]] = {"ingest_date=2026-01-01": [], "ingest_date=2026-01-02": []}
    for i in range(rows):
        cells = [f"{v:.2f}" if rng.random() > 0.005 else "" for v in values[i]]
        line = [keys[i] if i % 401 else "", f"user{i}@example.com", *cells, "2026-01-01T00:00:00Z", str(labels[i])]
        partitions["ingest_date=2026-01-01" if i % 2 else "ingest_date=2026-01-02"].append(",".join(line))
    # A key corrected by a later load: preprocessing keeps the last file's row.
    partitions["ingest_date=2026-01-02"].append(
        ",".join([keys[1], "late@example.com", *["1.00"] * len(features), "2026-01-02T00:00:00Z", "0"])
    )
    files = {
        f"{part}/part-00000.csv": ("\n".join([",".join(header), *lines]) + "\n").encode()
        for part, lines in partitions.items()
    }
    files["_SUCCESS"] = b""
    return files


@dataclass
class Deployed:
    """A stored definition deployed into a world: substituted, its buckets, assets and data in S3."""

    world: World
    stored: Stored
    definition: dict[str, Any]
    variables: dict[str, str]

    def other(self, definition: dict[str, Any]) -> Deployed:
        """Another definition with placeholders (e.g. a config variant's) deployed into the same account."""
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
        return Deployed(
            self.world, self.stored, json.loads(deployment.substitute(text, self.variables)), self.variables
        )

    def upload_data(self, location: str, signal: bool = True) -> None:
        """Synthetic curated partitions under `location` (an InputData value)."""
        for name, content in curated_files(self.stored.spec, signal=signal).items():
            self.world.store.write(f"{location.rstrip('/')}/{name}", content)

    def run(self, **options: Any) -> Execution:
        return emulate(self.definition, self.world, pipeline=self.stored.name, **options)

    def run_selected(self, steps: set[str], source: Execution, **options: Any) -> Execution:
        return self.run(selection=Selection(frozenset(steps), source), **options)


def deploy(world: World, stored: Stored, signal: bool = True) -> Deployed:
    """Create the buckets, upload the assets and the synthetic curated table, substitute the placeholders."""
    keyed = assets(deployment.placeholders(stored.text))
    values = variables(stored, {name: key for name, (key, _) in keyed.items()})
    definition = json.loads(deployment.substitute(stored.text, values))
    for bucket in (values["ArtifactsBucket"], values["CuratedBucket"], values["AssetsBucket"]):
        _bucket(world, bucket)
    for key, content in keyed.values():
        world.store.write(f"s3://{values['AssetsBucket']}/{key}", content)
    deployed = Deployed(world, stored, definition, values)
    deployed.upload_data(_input_data(definition), signal)
    return deployed


def _bucket(world: World, name: str) -> None:
    options = {} if world.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": world.region}}
    world.store.client.create_bucket(Bucket=name, **options)


def _input_data(definition: dict[str, Any]) -> str:
    (parameter,) = (p for p in definition["Parameters"] if p["Name"] == "InputData")
    split_uri(parameter["DefaultValue"])
    return str(parameter["DefaultValue"])


@contextmanager
def emulated_account(workdir: Path, region: str, tuning_jobs: int = 2) -> Iterator[World]:
    """A world in moto: S3 and the SageMaker registry of a fake account, offline, until the block ends."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        # moto's documented dummy credentials: nothing leaves the process.
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)  # noqa: S106
        world = World(Store(session.client("s3")), session.client("sagemaker"), ACCOUNT, region, workdir, tuning_jobs)
        yield world


def print_step(run: StepRun) -> None:
    print(f"{run.name:24} {run.kind:14} {run.status:10} {run.seconds:6.1f} s  {run.note}", flush=True)


@dataclass(frozen=True)
class ServingCheck:
    rows: int
    missing_values: int  # request rows with an empty feature field
    max_difference: float  # between served and evaluated probabilities


def check_serving(deployed: Deployed, execution: Execution, rows: int = 50) -> ServingCheck:
    """The registered package answers the test split's first rows (features only, as an endpoint receives
    them) with the probabilities the Evaluate step computed for the same rows."""
    from pipelines.emulator import serving
    from pipelines.emulator.errors import EmulationError

    arn = execution.model_package_arn
    if arn is None:
        raise EmulationError(
            "(serving)", "ModelPackageArn", execution.execution_id, "the execution registered no model package"
        )
    evaluate = execution.properties["Evaluate"]
    test_uri = next(i["S3Input"]["S3Uri"] for i in evaluate["ProcessingInputs"] if i["InputName"] == "test")
    predictions_uri = next(
        o["S3Output"]["S3Uri"]
        for o in evaluate["ProcessingOutputConfig"]["Outputs"]
        if o["OutputName"] == "predictions"
    )
    store = deployed.world.store
    bucket = split_uri(test_uri)[0]
    test = [
        line.split(",")
        for key in store.keys(test_uri)
        for line in store.read(f"s3://{bucket}/{key}").decode().splitlines()[1:]
    ]
    predictions = [line.split(",") for line in store.read(f"{predictions_uri}/predictions.csv").decode().splitlines()]
    column = predictions[0].index("probability")
    # The first rows and every row with a missing value; split rows are key, target, then the features.
    chosen = sorted(set(range(min(rows, len(test)))) | {i for i, row in enumerate(test) if "" in row[2:]})
    expected = [float(predictions[1 + i][column]) for i in chosen]
    features = [test[i][2:] for i in chosen]
    body = ("\n".join(",".join(row) for row in features) + "\n").encode()
    served = serving.serve_package(arn, body, deployed.world)
    answers = [float(value) for value in served.body.split()]
    if len(answers) != len(expected):
        raise EmulationError("(serving)", arn, "response", f"{len(answers)} values for {len(expected)} rows")
    difference = max(abs(a - e) for a, e in zip(answers, expected, strict=True))
    if difference > SERVING_TOLERANCE:
        raise EmulationError(
            "(serving)",
            arn,
            "response",
            f"served probabilities differ from the Evaluate step's by up to {difference:.2g}",
        )
    return ServingCheck(len(answers), sum(1 for row in features if "" in row), difference)
