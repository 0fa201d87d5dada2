"""Per-step builders of the training pipeline; they import the SageMaker SDK, so only `definition.build` does."""
