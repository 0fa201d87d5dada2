"""cfn-lint over every synthesized template (it also knows valid instance types per resource)."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from cfnlint.api import ManualArgs, lint

from tests.helpers import sandbox_config

# A region for environment-agnostic templates: cfn-lint checks resource specs per region.
DEFAULT_REGION = "us-east-1"


def _errors(template: dict, region: str) -> list[str]:
    matches = lint(json.dumps(template), config=ManualArgs(regions=[region]))
    # Errors (E*) fail; warnings (W*) and informational (I*) findings are reported, not fatal.
    return [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches if m.rule.id.startswith("E")]


ENVIRONMENTS = ("dev", "prod", "sandbox")


def _lint(job: tuple[str, str, str, str]) -> tuple[str, str, list[str]]:
    env, stack_id, template, region = job
    return env, stack_id, _errors(json.loads(template), region)


@pytest.fixture(scope="module")
def lint_errors(synth) -> dict[str, dict[str, list[str]]]:
    """Every template of every environment, linted once, on both cores (cfn-lint is the slowest test)."""
    jobs = []
    for env in ENVIRONMENTS:
        synthesized = synth(sandbox_config() if env == "sandbox" else env)
        region = synthesized.platform.security.config.region or DEFAULT_REGION
        jobs += [(env, stack_id, json.dumps(t), region) for stack_id, t in synthesized.templates.items()]
    results: dict[str, dict[str, list[str]]] = {env: {} for env in ENVIRONMENTS}
    # Largest first, so the two workers finish together; spawn, because the parent runs jsii's Node process.
    jobs.sort(key=lambda job: -len(job[2]))
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for env, stack_id, errors in pool.map(_lint, jobs):
            results[env][stack_id] = errors
    return results


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_templates_have_no_cfn_lint_errors(lint_errors, env):
    assert lint_errors[env], env
    for stack_id, errors in lint_errors[env].items():
        assert errors == [], stack_id


def test_cfn_lint_catches_a_bad_instance_type():
    """Negative control: the linter is really looking (an unknown instance type is an error)."""
    template = {
        "Resources": {
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {
                    "ProductionVariants": [
                        {"VariantName": "A", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.g5.huge"}
                    ]
                },
            }
        }
    }
    assert any("ml.g5.huge" in error for error in _errors(template, DEFAULT_REGION))
