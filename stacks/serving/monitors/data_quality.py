"""The data quality monitor: feature drift of captured requests from the promoted version's data baseline."""

from __future__ import annotations

import aws_cdk as cdk

from infra.catalog.monitors import DATA_QUALITY
from infra.config import DataQualityMonitor
from stacks.serving.monitors.jobs import PUBLISH_METRICS, MonitorJobs


def data_quality(jobs: MonitorJobs, section: DataQualityMonitor) -> cdk.CfnResource:
    """Creates the Model Monitor job definition on the promoted statistics and constraints, and its schedule."""
    kind = DATA_QUALITY
    statistics, constraints = jobs.baselines(kind)
    condition = jobs.condition(kind, statistics, constraints)
    definition = jobs.definition(
        kind,
        condition,
        {
            "DataQualityAppSpecification": {"ImageUri": jobs.image(kind.image), "Environment": PUBLISH_METRICS},
            "DataQualityBaselineConfig": {
                "ConstraintsResource": {"S3Uri": constraints.value_as_string},
                "StatisticsResource": {"S3Uri": statistics.value_as_string},
            },
            "DataQualityJobInput": {"EndpointInput": jobs.endpoint_input},
            **jobs.settings(kind, jobs.shared_role),
        },
        jobs.shared_role,
    )
    return jobs.schedule(kind, condition, definition, section.schedule)
