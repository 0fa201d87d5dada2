"""The code base is ruff clean (lint and format), so CI catches style drift with the tests."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_ruff_check_and_format():
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run([*ruff, "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run([*ruff, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert fmt.returncode == 0, fmt.stdout
