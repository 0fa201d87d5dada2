"""Scripts run inside SageMaker jobs: each file stands alone and imports only the standard library, numpy and pandas."""
