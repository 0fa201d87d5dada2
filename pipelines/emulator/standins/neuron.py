"""Stand-in for the Neuron compile step: the deployed script's own checks and packing, without the compiler."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

from pipelines.emulator.container import Container
from pipelines.emulator.errors import EmulationError

# What the stand-in packs in place of model.pt: the folded layer, marked as not compiled.
STAND_IN_NOTE = "stand-in: torch_neuronx.trace did not run; not TorchScript"


class Compiler:
    """Loads the compile script the job delivered, runs its input checks (`load_model`, `affine`) on the
    delivered model, and packs its output archive (`pack`: model.pt and code/inference.py) where its
    contract says, with a JSON stand-in for the traced model.
    """

    name = "Neuron compiler"

    def run(self, step: str, args: dict[str, Any], container: Container) -> str:
        entrypoint = list(args["AppSpecification"].get("ContainerEntrypoint") or [])
        if len(entrypoint) < 2:
            raise EmulationError(step, "AppSpecification.ContainerEntrypoint", str(entrypoint), "names no script")
        problem = container.missing(entrypoint[1])
        if problem:
            raise EmulationError(step, "AppSpecification.ContainerEntrypoint[1]", entrypoint[1], problem)
        script = _load(container, entrypoint[1])
        (model_dir,) = script.READS
        (compiled_dir,) = script.WRITES
        try:
            model = script.load_model(container.host(f"/opt/ml/{model_dir}"))
            weights, bias = script.affine(model)
        except script.CompileError as error:
            raise EmulationError(step, "ProcessingInputs[model]", f"/opt/ml/{model_dir}", str(error)) from None
        payload = {"note": STAND_IN_NOTE, "weights": [float(w) for w in weights], "bias": bias}
        archive = script.pack(json.dumps(payload).encode(), container.host(f"/opt/ml/{compiled_dir}"))
        return f"packed {container.inside(archive)} ({STAND_IN_NOTE})"


def _load(container: Container, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("delivered_compile_script", container.host(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
