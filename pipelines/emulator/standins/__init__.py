"""Stand-ins for the images that cannot run offline: they check the inputs the image would get and write its outputs.

Each is named in the README with what it does not prove.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipelines.emulator.container import Container


class StandIn(Protocol):
    """Runs instead of an image's container: reads what the job delivered, writes documented outputs."""

    name: str

    def run(self, step: str, args: dict[str, Any], container: Container) -> str:
        """Check the inputs under `container`, write the outputs there; a short log."""
        ...


def for_image(image: str) -> StandIn | None:
    """The stand-in for `image`'s repository, or None when the image's own entry runs."""
    from pipelines.emulator.standins import clarify, monitor, neuron

    repository = image.rsplit("/", 1)[-1].partition(":")[0]
    stand_ins: dict[str, StandIn] = {
        "sagemaker-model-monitor-analyzer": monitor.Analyzer(),
        "sagemaker-clarify-processing": clarify.PreTrainingBias(),
        "pytorch-inference-neuronx": neuron.Compiler(),
    }
    return stand_ins.get(repository)
