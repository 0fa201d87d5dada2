"""The pipeline's step scripts as file assets, and the reproducible source tarball of the training code."""

from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
import zipfile
from pathlib import Path

from aws_cdk import aws_s3_assets as assets
from constructs import Construct

import monitoring
from pipelines import definition as pipeline

STEPS = Path(pipeline.__file__).resolve().parent / "steps"
LIBRARY = Path(monitoring.__file__).resolve().parent


def source_tarball(sources: list[Path], directory: Path) -> Path:
    """A byte-reproducible sourcedir.tar.gz (fixed order, times and owners) of the training code."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for source in sorted(sources):
            data = source.read_bytes()
            info = tarfile.TarInfo(source.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    path = directory / "sourcedir.tar.gz"
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue())
    return path


def library_zip(directory: Path) -> Path:
    """A byte-reproducible zip of the `monitoring` package (its .py files, at the zip's root)."""
    path = directory / "monitoring.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(LIBRARY.glob("*.py")):
            info = zipfile.ZipInfo(f"monitoring/{source.name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, source.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return path


def monitoring_library(scope: Construct, construct_id: str = "MonitoringLibrary") -> assets.Asset:
    """The monitoring library as a file asset: its object key (content hash + .zip) is the zip's name in the job."""
    return assets.Asset(scope, construct_id, path=str(library_zip(Path(tempfile.mkdtemp()))))


def step_scripts(scope: Construct, spec: pipeline.PipelineSpec) -> dict[str, assets.Asset]:
    """Each script asset by the definition's placeholder for its object key (see pipelines/definition.py)."""
    library = {"MonitoringLibraryKey": monitoring_library(scope)} if spec.platform_baselines else {}
    return {
        "PreprocessKey": assets.Asset(scope, "PreprocessScript", path=str(STEPS / "preprocess.py")),
        "EvaluateKey": assets.Asset(scope, "EvaluateScript", path=str(STEPS / "evaluate.py")),
        "CompileKey": assets.Asset(scope, "CompileScript", path=str(STEPS / "compile_neuron.py")),
        "TrainingCodeKey": assets.Asset(
            scope, "TrainingCode", path=str(source_tarball([STEPS / "train.py"], Path(tempfile.mkdtemp())))
        ),
        **library,
    }
