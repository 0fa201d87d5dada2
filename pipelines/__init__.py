"""The training pipeline: its SageMaker Pipeline definition and the scripts its steps run."""
