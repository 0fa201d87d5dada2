"""Checks: the cdk-nag packs and acknowledgments, the project's ML rule pack, the SageMaker guardrail policy."""
