"""Stack names, derived once from the configuration so that every module agrees on them."""

from __future__ import annotations

from infra.config import PlatformConfig

# Deployment units in dependency order; the names also appear in stack and bucket names.
STACKS = ("Security", "Network", "DataLake", "Training", "Serving", "Monitoring", "Retraining")


def stack_name(config: PlatformConfig, component: str) -> str:
    """CloudFormation stack name of one component, e.g. 'mlp-dev-Network'."""
    if component not in STACKS:
        raise ValueError(f"unknown component {component!r}; known: {', '.join(STACKS)}")
    return f"{config.prefix}-{component}"


def generated_bucket_prefix(config: PlatformConfig, component: str) -> str:
    """The prefix CloudFormation gives the buckets of a stack it names itself.

    CloudFormation names an unnamed bucket `<stack name>-<logical id>-<suffix>` in lower case,
    so a stack's buckets can be matched by prefix (e.g. in CloudTrail selectors) without a
    cross-stack reference that would tie the stacks' lifecycles together.
    """
    return f"{stack_name(config, component).lower()}-"


def export_name(config: PlatformConfig, value: str) -> str:
    """Name of a CloudFormation export one stack publishes for another, e.g. 'mlp-dev-artifacts-bucket-arn'."""
    return f"{config.prefix}-{value}"


def glue_database(config: PlatformConfig, zone: str) -> str:
    """Glue database of a lake zone; Glue and Athena prefer underscores: 'mlp-dev' + 'raw' -> 'mlp_dev_raw'."""
    return f"{config.prefix}_{zone}".replace("-", "_")


# Names that other stacks, rules and Lambdas refer to without a cross-stack reference.
def model_package_group(config: PlatformConfig) -> str:
    """The Model Registry group the pipeline registers into and the Serving stack deploys from."""
    return f"{config.prefix}-models"


def training_pipeline(config: PlatformConfig) -> str:
    return f"{config.prefix}-training"


def mlflow_server(config: PlatformConfig) -> str:
    return f"{config.prefix}-mlflow"


def endpoint(config: PlatformConfig) -> str:
    """The real-time or serverless endpoint; named, so alarms can name it before it exists."""
    return f"{config.prefix}-endpoint"
