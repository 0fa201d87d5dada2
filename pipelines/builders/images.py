"""The container images of the training job and of the registered model, from the SDK's offline tables."""

from __future__ import annotations

from sagemaker import image_uris

from pipelines.definition import (
    NEURON_INFERENCE_IMAGE,
    NEURON_TRAINING_IMAGE,
    PYTORCH_PY,
    PYTORCH_VERSION,
    PipelineSpec,
    image_registries,
)


def _pytorch(region: str, instance_type: str, scope: str) -> str:
    uri: str = image_uris.retrieve(
        "pytorch",
        region,
        version=PYTORCH_VERSION,
        py_version=PYTORCH_PY,
        instance_type=instance_type,
        image_scope=scope,
    )
    return uri


def training_image(spec: PipelineSpec, region: str) -> str:
    """The PyTorch training image; for Trainium the Neuron DLC from the same registry."""
    if spec.training_runtime == "neuron":
        registry = _pytorch(region, "ml.m5.xlarge", "training").split("/")[0]
        return f"{registry}/{NEURON_TRAINING_IMAGE}"
    return _pytorch(region, spec.training_instance_type, "training")


def inference_image(spec: PipelineSpec, region: str) -> str:
    """The image the registered model serves with: Neuron for Inferentia2, else PyTorch for the first type."""
    if spec.neuron_inference:
        return f"{image_registries(region)['PyTorch']}/{NEURON_INFERENCE_IMAGE}"
    return _pytorch(region, spec.inference_instance_types[0], "inference")
