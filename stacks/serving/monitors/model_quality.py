"""The model quality monitor: the served model's predictions judged against uploaded ground truth labels."""

from __future__ import annotations

import aws_cdk as cdk

from infra.catalog.monitors import MODEL_QUALITY
from infra.config import ModelQualityMonitor
from stacks.serving.monitors.jobs import PUBLISH_METRICS, MonitorJobs


def model_quality(jobs: MonitorJobs, section: ModelQualityMonitor) -> cdk.CfnResource:
    """Creates the Model Monitor job definition on the promoted quality constraints, and its schedule."""
    kind = MODEL_QUALITY
    (constraints,) = jobs.baselines(kind)
    condition = jobs.condition(kind, constraints)
    definition = jobs.definition(
        kind,
        condition,
        {
            "ModelQualityAppSpecification": {
                "ImageUri": jobs.image(kind.image),
                "ProblemType": "BinaryClassification",
                "Environment": PUBLISH_METRICS,
            },
            "ModelQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": constraints.value_as_string}},
            "ModelQualityJobInput": jobs.labelled_input,
            **jobs.settings(kind, jobs.shared_role),
        },
        jobs.shared_role,
    )
    return jobs.schedule(kind, condition, definition, section.schedule)
