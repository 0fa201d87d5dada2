"""cfn-lint over every synthesized template (it also knows valid instance types per resource)."""

from __future__ import annotations

import json

import pytest

from tests.cfn_lint_job import errors
from tests.conftest import DEFAULT_LINT_REGION, lint_results
from tests.helpers import sandbox_config

ENVIRONMENTS = ("dev", "prod", "sandbox")


@pytest.fixture(scope="module")
def lint_errors(synth) -> dict[str, dict[str, list[str]]]:
    """Every template of every environment, linted in the background since its synth (conftest)."""
    return {env: lint_results(synth(sandbox_config() if env == "sandbox" else env)) for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_templates_have_no_cfn_lint_errors(lint_errors, env):
    assert lint_errors[env], env
    for stack_id, found in lint_errors[env].items():
        assert found == [], stack_id


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
    assert any("ml.g5.huge" in error for error in errors(json.dumps(template), DEFAULT_LINT_REGION))
