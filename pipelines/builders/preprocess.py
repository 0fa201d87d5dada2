"""The preprocess step: the curated table split into train, validation, test, the data baseline and Clarify's input."""

from __future__ import annotations

from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.workflow.parameters import ParameterString
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build
from pipelines.definition import PREPROCESS_CODE


def preprocess_step(build: Build, input_data: ParameterString) -> ProcessingStep:
    spec = build.spec
    splits = ("train", "validation", "test", "baseline", *(("clarify",) if spec.bias_facet else ()))
    bias = ("--bias-facet", spec.bias_facet, "--bias-threshold", str(spec.bias_threshold)) if spec.bias_facet else ()
    return ProcessingStep(
        name="Preprocess",
        step_args=build.processor("preprocess").run(
            code=PREPROCESS_CODE,
            inputs=[ProcessingInput(source=input_data, destination="/opt/ml/processing/input", input_name="curated")],
            outputs=[
                ProcessingOutput(
                    output_name=split,
                    source=f"/opt/ml/processing/output/{split}",
                    destination=build.run_path(split),
                )
                for split in splits
            ],
            arguments=["--key", spec.key, "--target", spec.target, "--features", ",".join(spec.features), *bias],
        ),
    )
