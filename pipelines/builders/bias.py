"""The Clarify pre-training bias baseline, and the bias config the endpoint's model-bias monitor reads."""

from __future__ import annotations

from sagemaker import image_uris
from sagemaker.model_metrics import FileSource, MetricsSource
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.workflow.functions import Join
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build, output_uri
from pipelines.builders.register import Reports


def bias_baseline(build: Build, preprocess: ProcessingStep) -> Reports:
    """A bias analysis of the training data when the spec names a facet; nothing otherwise."""
    if not build.spec.bias_facet:
        return Reports()
    # A plain processing job on the Clarify image: ClarifyCheckStep would upload its config at
    # build time (decision 21), so the preprocess step writes config and data instead.
    clarify = output_uri(preprocess, "clarify")
    bias = ProcessingStep(
        name="DataBiasBaseline",
        step_args=Processor(image_uri=image_uris.retrieve("clarify", build.region), **build.processing("bias")).run(
            inputs=[
                ProcessingInput(
                    source=Join(on="/", values=[clarify, "config"]),
                    destination="/opt/ml/processing/input/config",
                    input_name="analysis_config",
                ),
                ProcessingInput(
                    source=Join(on="/", values=[clarify, "data"]),
                    destination="/opt/ml/processing/input/data",
                    input_name="dataset",
                ),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="analysis_result",
                    source="/opt/ml/processing/output",
                    destination=build.run_path("baselines", "bias"),
                )
            ],
        ),
    )
    result = output_uri(bias, "analysis_result")
    return Reports(
        steps=(bias,),
        metrics={
            "bias_pre_training": MetricsSource(
                s3_uri=Join(on="/", values=[result, "analysis.json"]), content_type="application/json"
            )
        },
        # The endpoint's model-bias monitor reads this config (written by the preprocess step).
        drift_configs={
            "bias_config_file": FileSource(
                s3_uri=Join(on="/", values=[clarify, "monitoring", "analysis_config.json"]),
                content_type="application/json",
            )
        },
    )
