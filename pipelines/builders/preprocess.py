"""The preprocess step: the curated table split into train, validation, test, the data baseline and Clarify's input."""

from __future__ import annotations

from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.workflow.parameters import ParameterString
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build, library_input, monitoring_output
from pipelines.definition import BASELINE_DIR, PREPROCESS_CODE


def preprocess_step(build: Build, input_data: ParameterString) -> ProcessingStep:
    """Splits the curated table; writes the data baseline of the spec's engine (and Clarify's input with a facet)."""
    spec = build.spec
    platform = spec.platform_baselines
    clarify = bool(spec.bias_facet) and not platform
    splits = ("train", "validation", "test", *(() if platform else ("baseline",)), *(("clarify",) if clarify else ()))
    bias = ("--bias-facet", spec.bias_facet, "--bias-threshold", str(spec.bias_threshold)) if clarify else ()
    baseline = ("--monitoring-baseline-dir", BASELINE_DIR) if platform else ()
    return ProcessingStep(
        name="Preprocess",
        step_args=build.processor("preprocess").run(
            code=PREPROCESS_CODE,
            inputs=[
                ProcessingInput(source=input_data, destination="/opt/ml/processing/input", input_name="curated"),
                *library_input(build),
            ],
            outputs=[
                ProcessingOutput(
                    output_name=split,
                    source=f"/opt/ml/processing/output/{split}",
                    destination=build.run_path(split),
                )
                for split in splits
            ]
            + monitoring_output(build),
            arguments=[
                *("--key", spec.key, "--target", spec.target, "--features", ",".join(spec.features)),
                *bias,
                *baseline,
            ],
        ),
    )
