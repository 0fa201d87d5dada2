"""Every SageMaker job can run: each step of the training pipeline and of each monitor run, and each
monitoring job definition.

The calls are derived from the jobs' own arguments (tests/access/jobs.py): the pipeline role starts
the job past the guardrail and passes its role; SageMaker, as that role, reads every input, writes
every output and checkpoint with the named key, pulls the image, places network interfaces and
writes logs and metrics, through the VPC's endpoints.
"""

from __future__ import annotations

import pytest

from infra.catalog import monitors
from tests.access.calls import Call, decide, failures
from tests.access.definitions import training_pipeline
from tests.access.environments import NAMES
from tests.access.jobs import definition_jobs, job_calls, monitor_pipeline_jobs, monitoring_metrics, pipeline_jobs

ENVIRONMENTS = list(NAMES)


def _check(deployed, calls, simulator) -> list[str]:
    world = deployed.world
    return failures(decide(calls, world, deployed.worlds, simulator), world)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_pipeline_job_can_run(env_name, environments, simulator):
    deployed = environments[env_name]
    pipeline = training_pipeline(deployed.environment)
    if pipeline is None:
        pytest.skip(f"{env_name} has no training pipeline (it serves another stage's registry)")
    jobs, calls = pipeline_jobs(deployed, pipeline)
    assert {job.kind for job in jobs} == {"processing", "training"}
    for job in jobs:
        calls += job_calls(deployed, job)
    problems = _check(deployed, calls, simulator)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_monitoring_job_can_run(env_name, environments, simulator):
    """The platform engine's monitor runs (as the deployed starter starts them) and the model_monitor
    engine's job definitions: whichever the environment's config chose."""
    deployed = environments[env_name]
    jobs, calls = monitor_pipeline_jobs(deployed)
    jobs += definition_jobs(deployed)
    configured = deployed.config.serving and monitors.configured(deployed.config.monitoring)
    assert bool(jobs) == bool(configured), f"{env_name}: a job per configured monitor run"
    for job in jobs:
        calls += job_calls(deployed, job)
    for kind in ("DataQuality", "ModelQuality", "ModelBias", "ModelExplainability"):
        for resource in deployed.environment.resources(f"AWS::SageMaker::{kind}JobDefinition"):
            namespace = monitoring_metrics(resource)
            if namespace:
                calls.append(
                    Call(
                        resource.properties["RoleArn"],
                        "cloudwatch:PutMetricData",
                        "*",
                        f"{resource.logical_id}: publishes its metrics",
                        context={"cloudwatch:namespace": namespace},
                    )
                )
    problems = _check(deployed, calls, simulator)
    assert problems == [], "\n".join(problems)
