"""The VPC's interface endpoints: every AWS API the platform calls from inside the VPC, and who calls it.

One table for the Network stack (which builds each with CDK's `InterfaceVpcEndpointAwsService`
constant of that name) and for preflight (which checks each service is offered in the region and
counts them against the account's quota) without importing CDK. Jobs in network isolation reach
nothing themselves; SageMaker moves their data through the VPC on their behalf (S3 gateway, KMS,
ECR, CloudWatch).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import TrainingConfig


@dataclass(frozen=True)
class InterfaceEndpoint:
    construct_id: str  # the endpoint's id in the Network stack
    cdk_service: str  # the aws_ec2.InterfaceVpcEndpointAwsService constant
    service: str  # the endpoint service name after the region, e.g. sagemaker.api
    callers: str
    prefix: str = "com.amazonaws"

    def service_name(self, region: str) -> str:
        return f"{self.prefix}.{region}.{self.service}"


_E = InterfaceEndpoint

PLATFORM: tuple[InterfaceEndpoint, ...] = (
    _E("SageMakerApi", "SAGEMAKER_API", "sagemaker.api", "retraining and promotion Lambdas, pipeline steps"),
    _E("SageMakerRuntime", "SAGEMAKER_RUNTIME", "sagemaker.runtime", "in-VPC clients invoking endpoints"),
    _E("Sts", "STS", "sts", "role assumption by jobs, Lambdas and Glue"),
    _E("Logs", "CLOUDWATCH_LOGS", "logs", "job, Lambda and Glue logs"),
    _E("Monitoring", "CLOUDWATCH_MONITORING", "monitoring", "metrics from jobs, Model Monitor and Lambdas"),
    _E("EcrApi", "ECR", "ecr.api", "container image metadata for SageMaker and Glue"),
    _E("EcrDocker", "ECR_DOCKER", "ecr.dkr", "container image layers"),
    _E("Kms", "KMS", "kms", "envelope encryption by every in-VPC workload"),
    _E("Glue", "GLUE", "glue", "Glue ETL jobs and crawlers in the VPC, catalog reads"),
    _E("LakeFormation", "LAKE_FORMATION", "lakeformation", "credential vending for Glue and Athena"),
    _E("Athena", "ATHENA", "athena", "queries from jobs and notebooks"),
    _E("Events", "EVENTBRIDGE", "events", "events published by Lambdas"),
    _E("Ssm", "SSM", "ssm", "parameters read by Lambdas and jobs"),
    _E("Sns", "SNS", "sns", "alerts published by Lambdas"),
    _E("Sqs", "SQS", "sqs", "dead-letter queues read and redriven from the VPC"),
    _E("CloudFormation", "CLOUDFORMATION", "cloudformation", "the promotion Lambda updating the serving stack"),
)

# Only with a Studio domain or an MLflow tracking server in the config.
WORKSPACE: tuple[InterfaceEndpoint, ...] = (
    _E("SageMakerStudio", "SAGEMAKER_STUDIO", "studio", "Studio web UI reached from inside the VPC", "aws.sagemaker"),
    _E(
        "SageMakerNotebook",
        "SAGEMAKER_NOTEBOOK",
        "notebook",
        "Studio apps (JupyterLab, Code Editor) from inside the VPC",
        "aws.sagemaker",
    ),
    _E(
        "SageMakerExperiments",
        "SAGEMAKER_EXPERIMENTS",
        "experiments",
        "MLflow tracking server calls from Studio",
        "aws.sagemaker",
    ),
)


def interface_endpoints(training: TrainingConfig | None) -> tuple[InterfaceEndpoint, ...]:
    """The interface endpoints this environment needs: the workspace's too with a Studio domain or MLflow."""
    workspace = training is not None and (training.studio is not None or training.mlflow is not None)
    return PLATFORM + (WORKSPACE if workspace else ())
