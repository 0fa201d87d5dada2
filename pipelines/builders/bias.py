"""The bias baseline registered with the version: the platform engine's (evaluate step) or Clarify's."""

from __future__ import annotations

from sagemaker import image_uris
from sagemaker.model_metrics import FileSource, MetricsSource
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.workflow.functions import Join
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.baselines import baseline_document
from pipelines.builders.context import Build, output_uri
from pipelines.builders.evaluate import Evaluation
from pipelines.builders.register import Reports


def bias_baseline(build: Build, preprocess: ProcessingStep, evaluation: Evaluation) -> Reports:
    """The bias baseline when the spec names a facet, on the spec's engine; nothing otherwise."""
    if not build.spec.bias_facet:
        return Reports()
    if build.spec.platform_baselines:
        return platform_bias_baseline(evaluation)
    return clarify_bias_baseline(build, preprocess)


def platform_bias_baseline(evaluation: Evaluation) -> Reports:
    """The evaluate step's facet statistics (monitoring/README.md, bias/): the report and the monitor's constraints.

    The constraints take the place of Clarify's bias config (DriftCheckBaselines.Bias.ConfigFile),
    which promotion delivers to the monitor as it does for Model Monitor.
    """
    statistics = baseline_document(evaluation.step, "bias", "statistics.json")
    constraints = baseline_document(evaluation.step, "bias", "constraints.json")
    return Reports(
        metrics={"bias_post_training": statistics},
        drift_configs={"bias_config_file": FileSource(s3_uri=constraints.s3_uri, content_type="application/json")},
    )


def clarify_bias_baseline(build: Build, preprocess: ProcessingStep) -> Reports:
    """Clarify's pre-training bias analysis of the training data, and the config Model Monitor's bias job reads."""
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
