"""The platform's monitoring engine: baselines, drift, model quality and bias drift with numpy and pandas only.

Runs inside SageMaker processing jobs (the training pipeline's preprocess and evaluate steps, and the
monitor's analysis job), whose images hold Python 3.8 and pandas 1.1: runtime code keeps to their
features (annotations are strings, nothing newer from the standard library). See README.md for the
files it writes.
"""
