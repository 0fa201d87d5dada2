"""Which hardware a container image is built for (CPU, CUDA or Neuron), and whether it fits an instance type."""

from __future__ import annotations

from infra.catalog import instances
from infra.catalog.instances import Runtime

# Images without a processor in their tag that run on CPU only (SageMaker's own analysis images).
CPU_REPOSITORIES = ("sagemaker-model-monitor-analyzer", "sagemaker-clarify-processing", "sagemaker-debugger-rules")


def image_runtime(image: str) -> Runtime | None:
    """The runtime an image URI is built for, from its repository and tag; None if they do not say.

    The Deep Learning Containers name it in the tag (`2.6.0-cpu-py312`, `2.6.0-gpu-py312`, `-cu124-`)
    or, for Neuron, in the repository (`pytorch-inference-neuronx`).
    """
    repository, _, tag = image.rsplit("/", 1)[-1].partition(":")
    parts = tag.split("-")
    if "neuron" in repository or any(part.startswith("neuron") for part in parts):
        return Runtime.NEURON
    if "gpu" in parts or any(part.startswith("cu1") for part in parts):
        return Runtime.CUDA
    if "cpu" in parts or repository in CPU_REPOSITORIES:
        return Runtime.CPU
    return None


def misfit(image: str, instance_type: str) -> str | None:
    """Why `image` cannot run on `instance_type` (one line), or None when it fits."""
    built = image_runtime(image)
    needed = instances.get(instance_type).runtime
    if built is None:
        return f"the image's tag names no processor (cpu, gpu, neuron), so nothing says it runs on {needed.value}"
    if built != needed:
        return f"{instance_type} needs a {needed.value} image; {image.rsplit('/', 1)[-1]} is built for {built.value}"
    return None
