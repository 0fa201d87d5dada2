"""cfn-lint over every synthesized template (it also knows valid instance types per resource)."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, lint

from tests.helpers import sandbox_config

# A region for environment-agnostic templates: cfn-lint checks resource specs per region.
DEFAULT_REGION = "us-east-1"


def _errors(template: dict, region: str) -> list[str]:
    matches = lint(json.dumps(template), config=ManualArgs(regions=[region]))
    # Errors (E*) fail; warnings (W*) and informational (I*) findings are reported, not fatal.
    return [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches if m.rule.id.startswith("E")]


@pytest.mark.parametrize("env", ["dev", "prod", "sandbox"])
def test_templates_have_no_cfn_lint_errors(synth, env):
    synthesized = synth(sandbox_config() if env == "sandbox" else env)
    region = synthesized.platform.security.config.region or DEFAULT_REGION
    for stack_id, template in synthesized.templates.items():
        assert _errors(template, region) == [], stack_id


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
