"""Runs the stored pipeline definitions as SageMaker would, offline: container views, real toolkits, stand-ins."""
