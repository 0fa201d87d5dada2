"""The evaluate step: test-split metrics for the quality gate, predictions for the model baseline, SHAP values."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker.processing import ProcessingInput, ProcessingOutput
from sagemaker.workflow.entities import PipelineVariable
from sagemaker.workflow.functions import Join
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import ProcessingStep

from pipelines.builders.context import Build, library_input, monitoring_output, output_uri
from pipelines.definition import BASELINE_DIR, EVALUATE_CODE


@dataclass(frozen=True)
class Evaluation:
    """The evaluate step and the property file the quality gate reads its metric from."""

    step: ProcessingStep
    metrics: PropertyFile

    @property
    def metrics_uri(self) -> Join:
        """evaluation.json, which the Model Registry shows as the version's model statistics."""
        return Join(on="/", values=[output_uri(self.step, "evaluation"), "evaluation.json"])


def evaluate_step(build: Build, preprocess: ProcessingStep, model_data: PipelineVariable) -> Evaluation:
    """Evaluates `model_data` on the test split; with explainability, also its SHAP values (decision 21)."""
    explainability = build.spec.explainability
    # The evaluate step computes the SHAP values itself: no model, no endpoint, isolation kept (decision 21).
    explain_arguments = ["--explainability-rows", str(explainability.rows)] if explainability is not None else []
    explain_outputs = (
        [
            ProcessingOutput(
                output_name="explainability",
                source="/opt/ml/processing/explainability",
                destination=build.run_path("explainability"),
            )
        ]
        if explainability is not None
        else []
    )
    metrics = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    arguments = [*explain_arguments, *_baseline_arguments(build)]
    step = ProcessingStep(
        name="Evaluate",
        step_args=build.processor("evaluate").run(
            code=EVALUATE_CODE,
            inputs=[
                ProcessingInput(source=model_data, destination="/opt/ml/processing/model", input_name="model"),
                ProcessingInput(
                    source=output_uri(preprocess, "test"), destination="/opt/ml/processing/test", input_name="test"
                ),
                ProcessingInput(
                    source=output_uri(preprocess, "train"), destination="/opt/ml/processing/train", input_name="train"
                ),
                *library_input(build),
            ],
            outputs=[
                ProcessingOutput(
                    output_name="evaluation",
                    source="/opt/ml/processing/evaluation",
                    destination=build.run_path("evaluation"),
                ),
                ProcessingOutput(
                    output_name="predictions",
                    source="/opt/ml/processing/predictions",
                    destination=build.run_path("predictions"),
                ),
                *explain_outputs,
                *monitoring_output(build),
            ],
            arguments=arguments or None,
        ),
        property_files=[metrics],
    )
    return Evaluation(step, metrics)


def _baseline_arguments(build: Build) -> list[str]:
    """With the platform engine: write the model-quality baseline, and the bias baseline over the spec's facet."""
    spec = build.spec
    if not spec.platform_baselines:
        return []
    bias = ["--bias-facet", spec.bias_facet, "--bias-threshold", str(spec.bias_threshold)] if spec.bias_facet else []
    return ["--monitoring-baseline-dir", BASELINE_DIR, *bias]
