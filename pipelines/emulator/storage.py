"""S3 as SageMaker uses it: channels and inputs copied into the container, outputs uploaded after the job."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any


class NoObjects(LookupError):
    """An S3 location with nothing to deliver."""


def split_uri(uri: str) -> tuple[str, str]:
    """("bucket", "key/prefix") of an s3:// URI; ValueError for anything else."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return bucket, key


@dataclass(frozen=True)
class Store:
    """A boto3 S3 client (moto in the emulator) with the few operations SageMaker performs."""

    client: Any

    def keys(self, uri: str) -> list[str]:
        bucket, prefix = split_uri(uri)
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
        return found

    def exists(self, uri: str) -> bool:
        """Whether `uri` names an object (not merely a prefix)."""
        key = split_uri(uri)[1]
        return bool(key) and key in self.keys(uri)

    def read(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        try:
            body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise KeyError(f"no object {uri}") from None
        return body

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read(uri))

    def write(self, uri: str, data: bytes) -> None:
        bucket, key = split_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def deliver(self, uri: str, data_type: str, target: Path) -> list[Path]:
        """Copy what `uri` names into `target` as SageMaker does in File mode; the files written.

        S3Prefix: every object under the prefix, at its key relative to the prefix (an object whose
        key is the prefix itself arrives under its base name), as SageMaker local mode also does.
        ManifestFile: the JSON list `[{"prefix": "s3://..."}, "relative/key", ...]`, each at its relative key.
        """
        bucket, prefix = split_uri(uri)
        if data_type == "S3Prefix":
            pairs = [(f"s3://{bucket}/{key}", _relative(key, prefix)) for key in self.keys(uri)]
        elif data_type == "ManifestFile":
            pairs = self._manifest(uri)
        else:
            raise ValueError(f"S3DataType {data_type} is not emulated (S3Prefix and ManifestFile are)")
        if not pairs:
            raise NoObjects(f"no object under {uri}")
        written = []
        for key, relative in pairs:
            path = target.joinpath(*PurePosixPath(relative).parts)
            if path.exists():
                raise FileExistsError(f"{relative} is delivered twice into {target.name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.read(key))
            written.append(path)
        return written

    def _manifest(self, uri: str) -> list[tuple[str, str]]:
        entries = self.read_json(uri)
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
            raise ValueError(f"manifest {uri} is not a list starting with {{'prefix': ...}}")
        prefix = str(entries[0]["prefix"])
        return [(prefix + str(name), str(name)) for name in entries[1:]]

    def collect(self, source: Path, uri: str) -> list[str]:
        """Upload every file under `source` to `uri`/<relative path>; the URIs written."""
        written = []
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            target = f"{uri.rstrip('/')}/{path.relative_to(source).as_posix()}"
            self.write(target, path.read_bytes())
            written.append(target)
        return written


def _relative(key: str, prefix: str) -> str:
    return PurePosixPath(key).name if key == prefix else key[len(prefix) :].lstrip("/")


def tar_directory(source: Path) -> bytes:
    """model.tar.gz as SageMaker packs /opt/ml/model: the directory's contents at the archive's top level."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(source.rglob("*")):
            archive.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    return buffer.getvalue()
