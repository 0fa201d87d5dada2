"""cfn-lint over one template, in a worker process (tests/conftest.py starts it in the background)."""

from __future__ import annotations


def errors(template: str, region: str) -> list[str]:
    """cfn-lint's errors (E*) for a template as JSON text; warnings and notes are not failures."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(template, config=ManualArgs(regions=[region]))
    return [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches if m.rule.id.startswith("E")]
