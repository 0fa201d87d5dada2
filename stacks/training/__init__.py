"""The Training stack and its parts: spec, registry, scripts, roles, pipeline, workspace and feature store."""

from stacks.training.feature_store import FEATURE_TYPES, FeatureStore
from stacks.training.inputs import TrainingInputs
from stacks.training.pipeline import MAX_DEFINITION_BYTES
from stacks.training.scripts import STEPS, source_tarball
from stacks.training.spec import pipeline_spec
from stacks.training.stack import TrainingStack
from stacks.training.workspace import MLFLOW_RUN_ACTIONS

__all__ = [
    "FEATURE_TYPES",
    "MAX_DEFINITION_BYTES",
    "MLFLOW_RUN_ACTIONS",
    "STEPS",
    "FeatureStore",
    "TrainingInputs",
    "TrainingStack",
    "pipeline_spec",
    "source_tarball",
]
