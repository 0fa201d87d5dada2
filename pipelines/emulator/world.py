"""What emulated jobs run against: S3 and the model registry (moto), the account, and a scratch directory."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.emulator.storage import Store


@dataclass
class World:
    """The emulated account: its S3 store and SageMaker client (both moto), region and working directory."""

    store: Store
    sagemaker: Any  # boto3 SageMaker client (moto): the model registry
    account: str
    region: str
    workdir: Path
    # Training jobs a tuning step runs here (at most its MaxNumberOfTrainingJobs): enough to pass
    # tuned values through and pick the best; SageMaker's search strategy is not emulated.
    tuning_jobs: int = 2
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def job_name(self, prefix: str) -> str:
        """A unique job name as Pipelines makes them (pipelines-<id>-<step>), within SageMaker's 63 characters."""
        return f"{prefix[:52]}-{next(self._counter):04d}"

    def arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=False)
        return path
