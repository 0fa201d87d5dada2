"""The serving contract: a registered model package loads and answers a request as its inference container would."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from infra.catalog import images
from infra.catalog.instances import Runtime
from pipelines.emulator.container import Container
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.world import World

WORKER = Path(__file__).with_name("serve_worker.py")
# The module sagemaker-inference loads from the model's code/ directory unless SAGEMAKER_PROGRAM names another.
DEFAULT_MODULE = "inference.py"
# The longest a request may take, model loading included: fail, never hang.
SECONDS = 120


@dataclass(frozen=True)
class Served:
    status: int
    content_type: str
    body: str


def serve_package(arn: str, body: bytes, world: World) -> Served:
    """Answer `body` with the package's first container, in the first content and response types it declares."""
    package = world.sagemaker.describe_model_package(ModelPackageName=arn)
    specification = package["InferenceSpecification"]
    container = specification["Containers"][0]
    step = f"(model package {arn.rsplit('/', 2)[-2]})"
    if images.image_runtime(container["Image"]) is Runtime.NEURON:
        raise NotEmulated(
            step,
            "InferenceSpecification.Containers[0].Image",
            container["Image"],
            "a Neuron-compiled model needs torch-neuronx, not installed",
        )
    archive = world.store.read(container["ModelDataUrl"])
    content_type = specification["SupportedContentTypes"][0]
    accept = specification["SupportedResponseMIMETypes"][0]
    served = serve(
        archive,
        body,
        content_type,
        accept,
        Container(world.scratch(world.job_name("serve"))),
        container.get("Environment", {}),
    )
    if served.status != 200:
        raise EmulationError(
            step,
            "InferenceSpecification.Containers[0].ModelDataUrl",
            container["ModelDataUrl"],
            f"the request failed ({served.status}): {served.body.splitlines()[0] if served.body else ''}",
        )
    if served.content_type not in specification["SupportedResponseMIMETypes"]:
        raise EmulationError(
            step,
            "InferenceSpecification.SupportedResponseMIMETypes",
            served.content_type,
            "the handler answers in a type the package does not declare",
        )
    return served


def serve(
    archive: bytes, body: bytes, content_type: str, accept: str, container: Container, environment: dict[str, Any]
) -> Served:
    """Unpack model.tar.gz into /opt/ml/model and run one request through the handler service."""
    model_dir = container.host("/opt/ml/model")
    _extract(archive, model_dir)
    module = str(environment.get("SAGEMAKER_PROGRAM", DEFAULT_MODULE))
    if not (model_dir / "code" / module).is_file():
        raise EmulationError(
            "(serving)",
            "ModelDataUrl",
            f"code/{module}",
            "the model archive has no handler module the inference toolkit would load",
        )
    env = container.environment({str(k): str(v) for k, v in environment.items()})
    env["PYTHONPATH"] = str(model_dir / "code")
    try:
        result = subprocess.run(
            [sys.executable, str(WORKER), content_type, accept],
            input=body,
            env=env,
            cwd=container.root,
            capture_output=True,
            timeout=SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise EmulationError("(serving)", "ModelDataUrl", f"code/{module}", f"no answer within {SECONDS} s") from None
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines() or ["(no output)"]
        raise EmulationError(
            "(serving)", "ModelDataUrl", "code/" + module, f"the model server could not load the model: {lines[-1]}"
        )
    answer = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return Served(int(answer["status"]), str(answer["content_type"]), str(answer["body"]))


def _extract(archive: bytes, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
                raise ValueError(f"unsafe member {member.name!r} in the model archive")
        tar.extractall(target, filter="data")
