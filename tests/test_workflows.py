"""The CI workflow: valid, least privilege, pinned actions, no script injection, and in step with the repo.

Offline: the workflow is read as YAML and as text; the only thing executed is the small step that
lists the environments for the synth matrix (bash, `ls` and `jq`, as on the runner).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
MAKEFILE = ROOT / "Makefile"

# The only third-party actions CI may use.
ALLOWED_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/setup-node", "actions/cache"}
# `uses: owner/repo[/path]@<40-hex commit> # v<version>` on one line.
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+#\s*(?P<version>v\d+(?:\.\d+)*)\s*$"
)
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
STATEFUL_LABEL = "allow-stateful-replacement"


def load_workflow(path: Path = WORKFLOW) -> dict[str, Any]:
    """The workflow as a dict; YAML 1.1 reads the key `on` as True, so it is put back under "on"."""
    data = yaml.safe_load(path.read_text())
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data


def _try_load() -> dict[str, Any]:
    try:
        data = load_workflow()
    except (OSError, yaml.YAMLError):
        return {}  # test_workflow_is_valid_yaml reports it
    return data if isinstance(data, dict) else {}


def steps(workflow: dict[str, Any]):
    """(job id, step index, step) for every step of every job."""
    for job_id, job in workflow.get("jobs", {}).items():
        for index, step in enumerate(job.get("steps", [])):
            yield job_id, index, step


def run_steps(workflow: dict[str, Any]):
    return [(job_id, index, step) for job_id, index, step in steps(workflow) if "run" in step]


def makefile_targets(path: Path = MAKEFILE) -> set[str]:
    """Explicit targets: `name:` (or `a b:`) at the start of a line, not `NAME := value`."""
    targets: set[str] = set()
    for match in re.finditer(r"^([A-Za-z0-9_][A-Za-z0-9_. -]*?)\s*:(?!=)", path.read_text(), re.MULTILINE):
        targets.update(match.group(1).split())
    return targets


_SHELL_OPERATORS = {"&&", "||", ";", "|", "&", "then", "do", "else", "(", ")", "{", "}"}
_MAKE_OPTIONS_WITH_ARGUMENT = {"-C", "-f", "-I", "-o", "-W", "--directory", "--file", "--makefile"}


def make_calls(script: str) -> list[list[str]]:
    """The targets of each `make` call in a shell script (an empty list: the default goal)."""
    calls = []
    for line in script.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        for position, word in enumerate(words):
            if word != "make" or (position and words[position - 1] not in _SHELL_OPERATORS):
                continue
            targets, rest = [], iter(words[position + 1 :])
            for arg in rest:
                if arg in _SHELL_OPERATORS:
                    break
                if arg in _MAKE_OPTIONS_WITH_ARGUMENT:
                    next(rest, None)
                elif not arg.startswith("-") and "=" not in arg:
                    targets.append(arg)
            calls.append(targets)
    return calls


def _make_invocations() -> list:
    params = []
    for job_id, index, step in run_steps(_try_load()):
        for targets in make_calls(step["run"]):
            for target in targets or ["<default goal>"]:
                params.append(pytest.param(job_id, index, target, id=f"{job_id}-{target}"))
    return params


# ---------------------------------------------------------------------------------------------
# Structure


def test_workflow_is_valid_yaml():
    workflow = load_workflow()
    assert isinstance(workflow, dict)
    assert {"name", "on", "permissions", "jobs"} <= workflow.keys()
    assert workflow["jobs"] and all(isinstance(job, dict) for job in workflow["jobs"].values())
    for job_id, index, step in steps(workflow):
        assert ("uses" in step) != ("run" in step), f"{job_id} step {index}: exactly one of uses/run"


def test_triggers():
    on = load_workflow()["on"]
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    assert on["pull_request"]["branches"] == ["main"]
    assert on["push"]["branches"] == ["main"]
    # Adding or removing the label must re-run the review with the new labels.
    assert {"opened", "synchronize", "reopened", "labeled", "unlabeled"} <= set(on["pull_request"]["types"])


def test_concurrency_per_ref_cancels_superseded_pull_request_runs():
    concurrency = load_workflow()["concurrency"]
    assert "github.ref" in concurrency["group"]
    assert re.fullmatch(r"\$\{\{\s*github\.event_name == 'pull_request'\s*\}\}", concurrency["cancel-in-progress"])


def test_every_job_has_a_timeout():
    for job_id, job in load_workflow()["jobs"].items():
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int) and 0 < timeout <= 60, f"{job_id}: timeout-minutes = {timeout!r}"


def test_instance_metadata_is_disabled_for_every_job():
    assert load_workflow()["env"]["AWS_EC2_METADATA_DISABLED"] == "true"


# ---------------------------------------------------------------------------------------------
# Supply chain and privileges


def test_every_action_is_pinned_to_a_commit_with_its_version():
    text = WORKFLOW.read_text()
    lines = [line for line in text.splitlines() if re.match(r"^\s*(?:-\s+)?uses:", line)]
    parsed = [step["uses"] for _, _, step in steps(load_workflow()) if "uses" in step]
    # Every `uses` the runner sees is on a line checked here (no flow-style `{uses: ...}`).
    assert len(lines) == len(parsed) == text.count("uses:")
    pins: dict[str, set[tuple[str, str]]] = {}
    for line in lines:
        match = PINNED_USES.match(line)
        assert match, f"not pinned to a 40-hex commit with a `# v...` comment: {line.strip()}"
        assert match["action"] in ALLOWED_ACTIONS, f"action not allowed: {match['action']}"
        pins.setdefault(match["action"], set()).add((match["sha"], match["version"]))
    # One version of each action: updates change every occurrence, SHA and comment together.
    assert all(len(versions) == 1 for versions in pins.values()), pins


def test_checkout_does_not_persist_the_token():
    checkouts = [step for _, _, step in steps(load_workflow()) if step.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    assert all(step.get("with", {}).get("persist-credentials") is False for step in checkouts)


def test_token_is_read_only():
    workflow = load_workflow()
    assert workflow["permissions"] == {"contents": "read"}
    for job_id, job in workflow["jobs"].items():
        permissions = job.get("permissions")
        if permissions is None:
            continue  # inherits contents: read
        assert isinstance(permissions, dict), f"{job_id}: permissions must list scopes, not {permissions!r}"
        assert set(permissions.values()) <= {"read", "none"}, f"{job_id} widens permissions: {permissions}"


def test_no_expression_is_expanded_inside_a_run_script():
    """`${{ }}` is pasted into the script before bash parses it: a PR title, branch or file name
    could inject commands. Values reach scripts through `env:` instead (github.event above all)."""
    for job_id, index, step in run_steps(load_workflow()):
        assert "github.event" not in step["run"], f"{job_id} step {index}: github.event in run"
        assert not EXPRESSION.search(step["run"]), f"{job_id} step {index}: ${{{{ }}}} in run"


# ---------------------------------------------------------------------------------------------
# In step with the repository


@pytest.mark.parametrize(("job_id", "index", "target"), _make_invocations())
def test_make_target_exists(job_id, index, target):
    if target == "<default goal>":
        assert makefile_targets(), "the Makefile has no target"
    else:
        assert target in makefile_targets(), f"{job_id} step {index}: `make {target}`: no such target in the Makefile"


def test_make_calls_are_found():
    targets = {
        target for _, _, step in run_steps(load_workflow()) for call in make_calls(step["run"]) for target in call
    }
    assert {"test", "synth", "review", "diagram"} <= targets
    assert make_calls('make review BASE="origin/$B" ENV=all OUT=r.md && make -C x -j2 lint\nmake') == [
        ["review"],
        ["lint"],
        [],
    ]
    assert make_calls("echo make me; cmake ..") == []


def test_toolchain_versions_match_the_project():
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    node = json.loads((ROOT / "package.json").read_text())["devDependencies"]["node"]
    all_steps = [step for _, _, step in steps(load_workflow()) if "uses" in step]
    pythons = {s["with"]["python-version"] for s in all_steps if s["uses"].startswith("actions/setup-python@")}
    nodes = {s["with"]["node-version"] for s in all_steps if s["uses"].startswith("actions/setup-node@")}
    assert pythons == {"3.11"} and ">=3.11" in python and "<3.12" in python
    assert nodes == {node.split(".")[0]} == {"22"}


def _matrix_environments(workflow: dict[str, Any], tmp_path: Path) -> list[str]:
    """The synth matrix: a static list, or `fromJSON(needs.J.outputs.O)` resolved by running J's step."""
    matrix = workflow["jobs"]["synth"]["strategy"]["matrix"]
    (key,) = (k for k in matrix if k not in ("include", "exclude"))
    value = matrix[key]
    if isinstance(value, list):
        return value
    needs = re.fullmatch(r"\$\{\{\s*fromJSON\(needs\.([\w-]+)\.outputs\.([\w-]+)\)\s*\}\}", value)
    assert needs, f"unexpected matrix value {value!r}"
    producer = workflow["jobs"][needs[1]]
    step_output = re.fullmatch(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}", producer["outputs"][needs[2]])
    assert step_output
    (step,) = (s for s in producer["steps"] if s.get("id") == step_output[1])
    assert "ls config/*.yaml" in step["run"]
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed here (it is on the GitHub-hosted runner)")
    output = tmp_path / "github_output"
    output.touch()
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=ROOT,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
        check=True,
        capture_output=True,
        timeout=30,
    )
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return json.loads(values[step_output[2]])


def test_synth_matrix_covers_every_environment(tmp_path):
    workflow = load_workflow()
    environments = _matrix_environments(workflow, tmp_path)
    assert sorted(environments) == sorted(p.stem for p in (ROOT / "config").glob("*.yaml"))
    # Each matrix entry reaches `make synth` as ENV, through an env var.
    synth_job = workflow["jobs"]["synth"]
    (step,) = (s for s in synth_job["steps"] if "make synth" in s.get("run", ""))
    (var,) = (name for name, value in step["env"].items() if re.fullmatch(r"\$\{\{\s*matrix\.\w+\s*\}\}", value))
    assert f'ENV="${var}"' in step["run"]
    assert synth_job["strategy"]["fail-fast"] is False


def test_review_runs_on_pull_requests_only_and_writes_the_job_summary():
    review = load_workflow()["jobs"]["review"]
    assert review["if"].strip() == "github.event_name == 'pull_request'"
    (checkout,) = (s for s in review["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    (run,) = (s for s in review["steps"] if ["review"] in make_calls(s.get("run", "")))
    assert make_calls(run["run"]) == [["review"]]
    words = shlex.split(run["run"])
    base_var = re.fullmatch(r"BASE=origin/\$(\w+)", next(w for w in words if w.startswith("BASE=")))
    assert base_var and re.fullmatch(r"\$\{\{\s*github\.base_ref\s*\}\}", run["env"][base_var[1]])
    assert {"ENV=all", "OUT=review.md"} <= set(words)
    allow = run["env"]["ALLOW_STATEFUL_REPLACEMENT"]
    assert f"contains(github.event.pull_request.labels.*.name, '{STATEFUL_LABEL}')" in allow
    assert re.search(r"&&\s*'1'\s*\|\|\s*''", allow), "1 with the label, empty without"
    (summary,) = (s for s in review["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"].strip() == "always()"
    assert re.search(r'cat review\.md >> "\$GITHUB_STEP_SUMMARY"', summary["run"])
    assert review["steps"].index(summary) > review["steps"].index(run)


def test_workflow_matches_the_github_schema():
    """The official workflow schema (SchemaStore) as vendored by check-jsonschema (pinned in requirements-dev.txt)."""
    import importlib.resources

    import jsonschema

    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "github-workflows.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(load_workflow())]
    assert not errors, errors
