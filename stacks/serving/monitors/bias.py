"""The bias monitor: post-training bias of the served model across the training facet, on labelled traffic."""

from __future__ import annotations

import aws_cdk as cdk

from infra.catalog.monitors import BIAS
from infra.config import BiasMonitor
from stacks.serving.monitors.jobs import PUBLISH_METRICS, MonitorJobs


def bias(jobs: MonitorJobs, section: BiasMonitor) -> cdk.CfnResource:
    """Creates the Clarify job definition on the promoted version's bias config, and its schedule."""
    kind = BIAS
    (config,) = jobs.baselines(kind)
    condition = jobs.condition(kind, config)
    definition = jobs.definition(
        kind,
        condition,
        {
            "ModelBiasAppSpecification": {
                "ImageUri": jobs.image(kind.image),
                "ConfigUri": config.value_as_string,
                "Environment": PUBLISH_METRICS,
            },
            "ModelBiasJobInput": jobs.labelled_input,
            **jobs.settings(kind, jobs.shared_role),
        },
        jobs.shared_role,
    )
    return jobs.schedule(kind, condition, definition, section.schedule)
