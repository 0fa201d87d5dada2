"""The SHAP report the evaluate step writes, registered as the version's explainability report and drift baseline."""

from __future__ import annotations

from sagemaker.model_metrics import FileSource, MetricsSource
from sagemaker.workflow.functions import Join

from pipelines.builders.context import Build, output_uri
from pipelines.builders.evaluate import Evaluation
from pipelines.builders.register import Reports


def explainability_reports(build: Build, evaluation: Evaluation) -> Reports:
    """The evaluate step's analysis.json and monitor config when the spec explains the model; nothing otherwise."""
    if build.spec.explainability is None:
        return Reports()
    # analysis.json in Clarify's layout is both the version's explainability report and the
    # explainability drift baseline: for Clarify's own baselining job too, that file is the
    # constraints (the SDK's ClarifyBaseliningJob.suggested_constraints). The config file is
    # the monitor's analysis config without the model it explains, which the promotion
    # function adds for the version it deploys.
    explained = output_uri(evaluation.step, "explainability")
    report = MetricsSource(s3_uri=Join(on="/", values=[explained, "analysis.json"]), content_type="application/json")
    return Reports(
        metrics={"explainability": report},
        drift={"explainability_constraints": report},
        drift_configs={
            "explainability_config_file": FileSource(
                s3_uri=Join(on="/", values=[explained, "monitoring", "analysis_config.json"]),
                content_type="application/json",
            )
        },
    )
