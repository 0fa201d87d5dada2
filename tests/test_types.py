"""mypy strict, with the pydantic plugin, over the files pyproject.toml names (started in the background, conftest)."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT, start_mypy

CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]


def _configured_files() -> set[str]:
    """The Python files under `files`, less `exclude`: what mypy must report as checked."""
    excluded = [re.compile(pattern) for pattern in CONFIG.get("exclude", [])]
    found = set()
    for name in CONFIG["files"]:
        path = ROOT / name
        for file in [path] if path.is_file() else path.rglob("*.py"):
            relative = file.relative_to(ROOT).as_posix()
            if not any(pattern.search(relative) for pattern in excluded):
                found.add(relative)
    return found


def test_mypy_is_strict_with_the_pydantic_plugin():
    assert CONFIG["strict"] is True and "pydantic.mypy" in CONFIG["plugins"]
    assert {"app.py", "infra", "stacks", "lambdas", "pipelines"} <= set(CONFIG["files"])


def test_the_code_base_passes_mypy():
    process = start_mypy()
    # A cold cache (a fresh checkout) takes minutes; a warm one about a second.
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    # Every configured file was checked (an emptied `files` would pass vacuously).
    checked = re.search(r"no issues found in (\d+) source files", output)
    assert checked and int(checked[1]) == len(_configured_files()), output
