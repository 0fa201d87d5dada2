"""The data lake's calls are allowed: crawlers, the ETL job, the registered locations' role, Athena queries,
and each Glue principal holds the Lake Formation grants its targets need.
"""

from __future__ import annotations

import pytest

from tests.access.calls import decide, failures
from tests.access.environments import NAMES
from tests.access.lake import athena_calls, crawler_calls, job_calls, lake_grants, location_calls

ENVIRONMENTS = list(NAMES)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_crawlers_the_job_and_lake_formation_can_run(env_name, environments, simulator):
    deployed = environments[env_name]
    env = deployed.environment
    calls = location_calls(deployed)
    crawlers, jobs = env.resources("AWS::Glue::Crawler"), env.resources("AWS::Glue::Job")
    assert crawlers and jobs
    for crawler in crawlers:
        calls += crawler_calls(deployed, crawler)
    for job in jobs:
        calls += job_calls(deployed, job)
    world = deployed.world
    problems = failures(decide(calls, world, deployed.worlds, simulator), world)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_every_glue_principal_holds_its_lake_formation_grants(env_name, environments):
    assert lake_grants(environments[env_name]) == []


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_personas_can_query_their_zones_in_the_workgroup(env_name, environments, simulator):
    deployed = environments[env_name]
    world = deployed.world
    # The personas' roles exist outside the platform; their managed policies are judged where attached.
    zones = {"DataEngineer": ["raw", "curated"], "DataScientist": ["curated", "analytics"]}
    calls = []
    for principal in world.principals.values():
        if principal.name in zones:
            databases = [f"{deployed.config.prefix.replace('-', '_')}_{zone}" for zone in zones[principal.name]]
            calls += athena_calls(deployed, principal.arn, databases)
    assert calls, "no persona role has its policy attached"
    problems = failures(decide(calls, world, deployed.worlds, simulator), world)
    assert problems == [], "\n".join(problems)
