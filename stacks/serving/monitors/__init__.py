"""The endpoint's Model Monitor schedules: one part per kind of infra/catalog/monitors.py, on shared job parts."""

from __future__ import annotations

import aws_cdk as cdk

from infra.config import MonitoringConfig
from stacks.serving.context import ServingContext
from stacks.serving.monitors.bias import bias
from stacks.serving.monitors.data_quality import data_quality
from stacks.serving.monitors.explainability import ExplainabilityJob, explainability
from stacks.serving.monitors.jobs import MonitorJobs
from stacks.serving.monitors.model_quality import model_quality

__all__ = ["ExplainabilityJob", "MonitorJobs", "build_monitors"]


def build_monitors(
    ctx: ServingContext, monitoring: MonitoringConfig, *, endpoint: cdk.CfnResource, model_name_prefix: str | None
) -> tuple[MonitorJobs, ExplainabilityJob | None]:
    """Each configured kind's job definition and schedule on the promoted version's baselines, in table order.

    `model_name_prefix` is the served model's predictable name (set when a kind starts a shadow endpoint).
    """
    jobs = MonitorJobs(ctx, monitoring=monitoring, endpoint=endpoint)
    if monitoring.data_quality is not None:
        data_quality(jobs, monitoring.data_quality)
    if monitoring.model_quality is not None:
        model_quality(jobs, monitoring.model_quality)
    if monitoring.bias is not None:
        bias(jobs, monitoring.bias)
    explained = None
    if monitoring.explainability is not None:
        explained = explainability(jobs, monitoring.explainability, model_name_prefix=model_name_prefix)
    return jobs, explained
