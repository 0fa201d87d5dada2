"""The emulator's failure: what SageMaker would refuse or fail on, in one line naming step, argument and path."""

from __future__ import annotations


def line(step: str, argument: str, path: str, reason: str) -> str:
    """`step <name>, <argument>: <path>: <reason>` on one line."""
    return f"step {step}, {argument}: {path}: {' '.join(reason.split())}"


class EmulationError(Exception):
    """A step that would fail in SageMaker: `step <name>, <argument>: <path>: <reason>`."""

    def __init__(self, step: str, argument: str, path: str, reason: str) -> None:
        self.step, self.argument, self.path = step, argument, path
        self.reason = " ".join(reason.split())
        super().__init__(line(step, argument, path, reason))


class NotEmulated(EmulationError):
    """A valid setting the emulator cannot reproduce (it says which, instead of guessing)."""
