"""Compiles the trained model for AWS Inferentia2 (Neuron) and packs it with its inference handler.

Runs as a SageMaker Processing job on a CPU instance with the Neuron PyTorch inference image: the
Neuron compiler needs no Neuron device. Only this module's `main` imports torch and torch_neuronx;
the rest is standard library and numpy, and is tested offline.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# What SageMaker mounts as /opt/ml. SAGEMAKER_BASE_DIR is the training toolkit's name for it; SageMaker
# sets it in no container, and the pipeline emulator (pipelines/emulator) sets it to run the step elsewhere.
OPT_ML = Path(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"))
MODEL_DIR = "processing/model"
COMPILED_DIR = "processing/compiled"
# Container contract, checked against the pipeline definition and against what the step writes
# (pipelines/emulator/contract.py): directories under /opt/ml -> files read (any of) or written (all).
READS = {MODEL_DIR: ("model.json", "model.tar.gz")}
WRITES = {COMPILED_DIR: ("model.tar.gz",)}

# The handler the Neuron PyTorch inference container loads from code/inference.py: CSV rows of
# feature values in, one probability per row out.
INFERENCE_HANDLER = '''"""SageMaker inference handler of the Neuron-compiled model (written by compile_neuron.py)."""
import os

import torch
import torch_neuronx  # noqa: F401  registers the Neuron ops TorchScript needs


def model_fn(model_dir):
    return torch.jit.load(os.path.join(model_dir, "model.pt"))


def input_fn(body, content_type):
    if content_type != "text/csv":
        raise ValueError(f"unsupported content type {content_type}")
    text = body.decode() if isinstance(body, (bytes, bytearray)) else body
    rows = [[float(v) for v in line.split(",")] for line in text.strip().splitlines() if line.strip()]
    return torch.tensor(rows, dtype=torch.float32)


def predict_fn(data, model):
    with torch.no_grad():
        return model(data)


def output_fn(prediction, accept):
    return "\\n".join(f"{p:.6f}" for p in prediction.reshape(-1).tolist()), "text/csv"
'''


class CompileError(ValueError):
    """A model that cannot be compiled as given."""


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = []
    for member in archive.getmembers():
        path = Path(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise CompileError(f"model archive member {member.name!r} is not a plain relative path")
        members.append(member)
    return members


def load_model(model_dir: Path) -> dict[str, Any]:
    """model.json from the training job's output (model.tar.gz) or a directory holding it."""
    direct = model_dir / "model.json"
    if direct.exists():
        model: dict[str, Any] = json.loads(direct.read_text())
        return model
    archive_path = model_dir / "model.tar.gz"
    if not archive_path.exists():
        raise CompileError(f"no model.json or model.tar.gz in {model_dir}")
    with tarfile.open(archive_path) as archive:
        for member in _safe_members(archive):
            if Path(member.name).name == "model.json" and member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                packed: dict[str, Any] = json.loads(handle.read())
                return packed
    raise CompileError("model.tar.gz holds no model.json")


def affine(model: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Weights and bias on raw features: the standardization folded into the linear layer.

    logit = ((x - mean) / std) @ w + b = x @ (w / std) + (b - sum(mean * w / std))
    """
    weights = np.asarray(model["weights"], dtype=np.float64)
    mean = np.asarray(model["mean"], dtype=np.float64)
    std = np.asarray(model["std"], dtype=np.float64)
    if not (weights.shape == mean.shape == std.shape) or weights.ndim != 1:
        raise CompileError("weights, mean and std must be vectors of the same length")
    if np.any(std == 0):
        raise CompileError("a feature has zero standard deviation")
    scaled = weights / std
    return scaled, float(model["bias"]) - float(np.sum(mean * scaled))


def predict(model: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """What the compiled model computes, in numpy: the reference the tests compare against."""
    weights, bias = affine(model)
    scores: np.ndarray = 1.0 / (1.0 + np.exp(-(rows @ weights + bias)))
    return scores


def pack(model_pt: bytes, destination: Path) -> Path:
    """model.tar.gz with model.pt and code/inference.py, as the Neuron inference container expects."""
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / "model.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("model.pt", model_pt), ("code/inference.py", INFERENCE_HANDLER.encode())):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=OPT_ML / MODEL_DIR)
    parser.add_argument("--output-dir", type=Path, default=OPT_ML / COMPILED_DIR)
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model_dir)
        weights, bias = affine(model)
    except CompileError as error:
        print(f"compile: {error}", file=sys.stderr)
        return 1

    import torch
    import torch_neuronx

    layer = torch.nn.Linear(len(weights), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights, dtype=torch.float32).reshape(1, -1))
        layer.bias.fill_(bias)
    network = torch.nn.Sequential(layer, torch.nn.Sigmoid()).eval()
    traced = torch_neuronx.trace(network, torch.zeros(1, len(weights), dtype=torch.float32))
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    print(json.dumps({"compiled": str(pack(buffer.getvalue(), args.output_dir)), "features": model["features"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
