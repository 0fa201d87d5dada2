"""Fixed names (stacks, resources, parameters, prefixes), derived once from the configuration so every module agrees."""

from __future__ import annotations

from typing import Any

from infra.catalog import monitors
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
    return glue_database_of(config.project, config.environment, zone)


def glue_database_of(project: str, environment: str, zone: str) -> str:
    """The same name for any environment of the project (e.g. the one that shares a database here)."""
    return f"{project}_{environment}_{zone}".replace("-", "_")


def shared_database(config: PlatformConfig) -> str:
    """The database of the environment that shares it with this one (data_lake.shared_from)."""
    shared = config.data_lake.shared_from
    assert shared is not None
    return glue_database_of(config.project, shared.environment, shared.database)


def shared_link(config: PlatformConfig) -> str:
    """The resource link to the database shared with this environment, e.g. 'mlp_staging_curated_from_dev'."""
    shared = config.data_lake.shared_from
    assert shared is not None
    return f"{glue_database(config, shared.database)}_from_{shared.environment}".replace("-", "_")


def registry_prefix(config: PlatformConfig) -> str:
    """Prefix of the environment that trains and registers the served model: this one, or its model source."""
    source = config.serving.model_source if config.serving else None
    return f"{config.project}-{source.environment}" if source else config.prefix


def registry_account(config: PlatformConfig, own_account: str) -> str:
    """The account of that registry (`own_account` may be a deploy-time token)."""
    source = config.serving.model_source if config.serving else None
    return source.account if source else own_account


# Names that other stacks, rules and Lambdas refer to without a cross-stack reference.
def model_package_group(config: PlatformConfig) -> str:
    """The Model Registry group the pipeline registers into and the Serving stack deploys from."""
    return f"{registry_prefix(config)}-models"


def model_package_changes(group: str, *statuses: str) -> dict[str, Any]:
    """The EventBridge pattern of a group's "SageMaker Model Package State Change" events in `statuses`.

    The approval forwarding (source account), the promotion rule and the approval notices all match
    through it, so they cannot drift apart.
    """
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [group], "ModelApprovalStatus": list(statuses)},
    }


def training_pipeline(config: PlatformConfig) -> str:
    """The pipeline that trains the served model (whose artifacts sit under pipelines/<name>/)."""
    return f"{registry_prefix(config)}-training"


# The Serving stack's roles that read the training pipeline's outputs (models, baselines, configs).
SERVING_ROLE_KINDS = ("model", *monitors.ROLES, "promotion")


def serving_role(project: str, environment: str, kind: str) -> str:
    """Fixed name of a Serving stack role another account's policies name (one of SERVING_ROLE_KINDS).

    Only environments that serve from another account's registry name these roles: the source's
    bucket and key policies grant them by ARN before they exist (aws:PrincipalArn).
    """
    return f"{project}-{environment}-serving-{kind}"


def mlflow_server(config: PlatformConfig) -> str:
    return f"{config.prefix}-mlflow"


def endpoint(config: PlatformConfig) -> str:
    """The real-time or serverless endpoint; named, so alarms can name it before it exists."""
    return f"{config.prefix}-endpoint"


def monitor_schedule(config: PlatformConfig, kind: monitors.MonitorKind) -> str:
    """The endpoint's monitoring schedule of one kind, e.g. 'mlp-dev-endpoint-data-quality' (alarms name it)."""
    return f"{endpoint(config)}-{kind.slug}"


def monitor_alarm_prefix(config: PlatformConfig, kind: monitors.MonitorKind) -> str:
    """Every alarm on a kind's metrics starts with this, e.g. 'mlp-dev-drift-'."""
    alarm = kind.alarm or kind.platform_alarm  # the engines' alarms of a kind share their stem
    assert alarm is not None, f"the {kind.title} monitor has no alarms"
    return f"{config.prefix}-{alarm.stem}-"


def drift_alarm_prefix(config: PlatformConfig) -> str:
    """The data drift alarms' prefix: the retraining rule matches on it."""
    return monitor_alarm_prefix(config, monitors.DATA_QUALITY)


def function_name(config: PlatformConfig, source: str) -> str:
    """The name of the platform function built from `lambdas/<source>`, e.g. 'mlp-dev-promotion'."""
    return f"{config.prefix}-{source}"


def functions(config: PlatformConfig) -> tuple[str, ...]:
    """The platform's functions by source (lambdas/<source>): promotion with serving, the platform monitor's
    publisher and starter with its monitors, retraining with retraining."""
    monitoring = config.monitoring
    platform = bool(config.serving and monitoring and monitoring.engine == "platform")
    return (
        *(("promotion",) if config.serving else ()),
        *(("monitor_metrics", "monitor_start") if platform else ()),
        *(("retraining",) if config.retraining else ()),
    )


def dataset_prefix(config: PlatformConfig) -> str:
    """The key prefix of the dataset's objects in each lake zone, e.g. 'transactions/'."""
    return f"{config.data_lake.dataset.name}/"


def retraining_request_source(config: PlatformConfig) -> str:
    """The event source of a manual retraining request, e.g. 'mlp-dev.retraining'."""
    return f"{config.prefix}.retraining"


def serving_state_prefix(config: PlatformConfig) -> str:
    """The SSM path of an environment's promoted state, e.g. '/mlp-dev/serving/'."""
    return f"/{config.prefix}/serving/"


def serving_state_parameter(config: PlatformConfig, parameter: str) -> str:
    """The SSM parameter of one promoted value, e.g. '/mlp-dev/serving/ModelPackageArn'."""
    return f"{serving_state_prefix(config)}{parameter}"


# Key prefixes in the artifacts bucket, each followed by the endpoint's name: where SageMaker writes
# captured requests and asynchronous results, where people upload ground truth labels, and where the
# monitoring jobs write their reports.
CAPTURE_PREFIX = "data-capture"
ASYNC_PREFIX = "async-inference"
GROUND_TRUTH_PREFIX = "ground-truth"
MONITOR_PREFIX = "monitoring"


def consumer_serving_roles(
    config: PlatformConfig, partition: str, kinds: tuple[str, ...] = SERVING_ROLE_KINDS
) -> list[str]:
    """ARNs of the roles (of `kinds`) of training.model_consumers that read this environment's models and baselines."""
    consumers = config.training.model_consumers if config.training else []
    return [
        f"arn:{partition}:iam::{c.account}:role/{serving_role(config.project, c.environment, kind)}"
        for c in consumers
        for kind in kinds
    ]
