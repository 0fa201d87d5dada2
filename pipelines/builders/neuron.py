"""The model the version registers: the trained artifact, or its Neuron compilation for Inferentia2."""

from __future__ import annotations

from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
from sagemaker.workflow.functions import Join
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build, output_uri
from pipelines.builders.images import inference_image
from pipelines.builders.register import ServableModel
from pipelines.builders.train import Trained
from pipelines.definition import COMPILE_CODE


def servable_model(build: Build, trained: Trained) -> ServableModel:
    """The trained artifact as it is; compiled on a CPU instance first when the spec serves on Inferentia2."""
    image = inference_image(build.spec, build.region)
    if not build.spec.neuron_inference:
        return ServableModel(data=trained.model_data, image=image)
    compiler = ScriptProcessor(image_uri=image, command=["python3"], **build.processing("compile"))
    step = ProcessingStep(
        name="CompileForInferentia",
        step_args=compiler.run(
            code=COMPILE_CODE,
            inputs=[
                ProcessingInput(source=trained.model_data, destination="/opt/ml/processing/model", input_name="model")
            ],
            outputs=[
                ProcessingOutput(
                    output_name="compiled",
                    source="/opt/ml/processing/compiled",
                    destination=build.run_path("compiled"),
                )
            ],
        ),
    )
    compiled = Join(on="/", values=[output_uri(step, "compiled"), "model.tar.gz"])
    return ServableModel(data=compiled, image=image, steps=(step,))
