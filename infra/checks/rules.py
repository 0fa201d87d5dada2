"""The project's own rule pack for ML resources, which the public cdk-nag packs do not inspect."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from infra.catalog import instances, monitors

PACK_NAME = "MLPlatform"

# The Model Monitor job definition types share one shape: <Kind>JobInput / JobResources /
# NetworkConfig / <Kind>JobOutputConfig.
MONITOR_JOB_DEFINITIONS = {kind.resource_type: kind.output_config for kind in monitors.KINDS}


@dataclass(frozen=True)
class Rule:
    """One check: its id, what it demands, how to fix it, and the function that finds problems."""

    id: str
    description: str
    fix: str
    resource_types: tuple[str, ...]
    # (resource type, properties) -> one line per problem; an empty list means compliant.
    check: Callable[[str, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Finding:
    rule: Rule
    logical_id: str
    problems: tuple[str, ...]


def _present(value: Any) -> bool:
    """A value counts as set if it is a non-empty literal or any intrinsic function."""
    if value is None:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


def _true(value: Any) -> bool:
    # Intrinsics (e.g. a condition) are accepted: their value is decided at deploy time.
    return value is True or value == "true" or isinstance(value, dict)


def _has_local_nvme(instance_type: str) -> bool:
    try:
        return instances.has_local_nvme(instance_type)
    except instances.UnknownInstanceType:
        # Not in the catalog: assume EBS storage, so the key stays required (the safe default).
        return False


def _instance_types_need_key(types: list[Any]) -> tuple[bool, list[str]]:
    """(needs a KMS volume key, the local-NVMe types that forbid one) for a list of instance types."""
    nvme = [t for t in types if isinstance(t, str) and _has_local_nvme(t)]
    return (not nvme, nvme)


def _vpc_problems(vpc: Any, where: str) -> list[str]:
    if not isinstance(vpc, dict):
        return [f"{where} is missing"]
    problems = []
    if not _present(vpc.get("Subnets")):
        problems.append(f"{where}.Subnets is empty")
    if not _present(vpc.get("SecurityGroupIds")):
        problems.append(f"{where}.SecurityGroupIds is empty")
    return problems


def _model_vpc(props: Mapping[str, Any]) -> list[str]:
    return _vpc_problems(props.get("VpcConfig"), "VpcConfig")


def _model_isolation(props: Mapping[str, Any]) -> list[str]:
    return [] if _true(props.get("EnableNetworkIsolation")) else ["EnableNetworkIsolation is not true"]


def _endpoint_config_kms(props: Mapping[str, Any]) -> list[str]:
    variants = list(props.get("ProductionVariants") or []) + list(props.get("ShadowProductionVariants") or [])
    types = [v.get("InstanceType") for v in variants if isinstance(v, dict) and v.get("InstanceType")]
    needs_key, nvme = _instance_types_need_key(types)
    if _present(props.get("KmsKeyId")):
        if nvme:
            return [f"KmsKeyId is set but {', '.join(nvme)} has local NVMe storage, where SageMaker refuses it"]
        return []
    return ["KmsKeyId is missing"] if needs_key else []


def _network_config(props: Mapping[str, Any], where: str = "NetworkConfig") -> list[str]:
    network = props.get("NetworkConfig")
    if not isinstance(network, dict):
        return [f"{where} is missing"]
    problems = _vpc_problems(network.get("VpcConfig"), f"{where}.VpcConfig")
    if not _true(network.get("EnableNetworkIsolation")):
        problems.append(f"{where}.EnableNetworkIsolation is not true")
    if not _true(network.get("EnableInterContainerTrafficEncryption")):
        problems.append(f"{where}.EnableInterContainerTrafficEncryption is not true")
    return problems


def _job_kms(cluster: Any, output: Any, where: str) -> list[str]:
    problems = []
    cluster = cluster if isinstance(cluster, dict) else {}
    needs_key, nvme = _instance_types_need_key([cluster.get("InstanceType")])
    if _present(cluster.get("VolumeKmsKeyId")) and nvme:
        problems.append(f"{where}ClusterConfig.VolumeKmsKeyId is set on {nvme[0]}, which has local NVMe storage")
    elif needs_key and not _present(cluster.get("VolumeKmsKeyId")):
        problems.append(f"{where}ClusterConfig.VolumeKmsKeyId is missing")
    if not _present((output or {}).get("KmsKeyId") if isinstance(output, dict) else None):
        problems.append(f"{where}output KmsKeyId is missing")
    return problems


def _inline_schedule(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    config = props.get("MonitoringScheduleConfig")
    definition = config.get("MonitoringJobDefinition") if isinstance(config, dict) else None
    return definition if isinstance(definition, dict) else None


def _schedule_network(props: Mapping[str, Any]) -> list[str]:
    definition = _inline_schedule(props)
    if definition is None:  # it references a job definition, which is checked itself
        return []
    return _network_config(definition, "MonitoringJobDefinition.NetworkConfig")


def _schedule_kms(props: Mapping[str, Any]) -> list[str]:
    definition = _inline_schedule(props)
    if definition is None:
        return []
    cluster = (definition.get("MonitoringResources") or {}).get("ClusterConfig")
    return _job_kms(cluster, definition.get("MonitoringOutputConfig"), "MonitoringJobDefinition.")


def _monitor_network_problems(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == "AWS::SageMaker::MonitoringSchedule":
        return _schedule_network(props)
    return _network_config(props)


def _isolation_problem(problem: str) -> bool:
    return problem.endswith("EnableNetworkIsolation is not true")


def _monitor_network(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """VPC and inter-container encryption (MLP-SM4); network isolation is MLP-SM9, acknowledged on its own."""
    return [p for p in _monitor_network_problems(resource_type, props) if not _isolation_problem(p)]


def _monitor_isolation(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = _monitor_network_problems(resource_type, props)
    return [p for p in problems if _isolation_problem(p) or p.endswith("NetworkConfig is missing")]


def _monitor_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if resource_type == "AWS::SageMaker::MonitoringSchedule":
        return _schedule_kms(props)
    cluster = (props.get("JobResources") or {}).get("ClusterConfig")
    return _job_kms(cluster, props.get(MONITOR_JOB_DEFINITIONS[resource_type]), "JobResources.")


def pipeline_definition(props: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON definition of an AWS::SageMaker::Pipeline (inline body, or the template of an Fn::Sub)."""
    body = (props.get("PipelineDefinition") or {}).get("PipelineDefinitionBody")
    if isinstance(body, dict) and "Fn::Sub" in body:
        body = body["Fn::Sub"] if isinstance(body["Fn::Sub"], str) else body["Fn::Sub"][0]
    if not isinstance(body, str):
        return None
    try:
        definition = json.loads(body)
    except ValueError:
        definition = None
    return definition if isinstance(definition, dict) else {"Steps": "invalid JSON"}


def _pipeline_steps(steps: Any) -> Iterator[dict[str, Any]]:
    """Every step, including those nested in condition steps' branches."""
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict):
            continue
        yield step
        arguments = step.get("Arguments") or {}
        if step.get("Type") == "Condition" and isinstance(arguments, dict):
            yield from _pipeline_steps(arguments.get("IfSteps"))
            yield from _pipeline_steps(arguments.get("ElseSteps"))


def _training_job(args: Mapping[str, Any], where: str) -> list[str]:
    problems = _vpc_problems(args.get("VpcConfig"), f"{where}VpcConfig")
    for flag in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption"):
        if not _true(args.get(flag)):
            problems.append(f"{where}{flag} is not true")
    resources = args.get("ResourceConfig") or args.get("HyperParameterTuningResourceConfig") or {}
    problems += _job_kms(resources, args.get("OutputDataConfig"), f"{where}Resource").copy()
    return [p.replace("ResourceClusterConfig.", "ResourceConfig.") for p in problems]


def _pipeline_jobs(props: Mapping[str, Any]) -> list[str]:
    definition = pipeline_definition(props)
    if definition is None:
        return []  # a definition in S3 is not in the template; nothing to read here
    if not isinstance(definition.get("Steps"), list):
        return ["PipelineDefinitionBody is not a readable pipeline definition"]
    problems = []
    for step in _pipeline_steps(definition["Steps"]):
        kind, name, args = step.get("Type"), step.get("Name", "?"), step.get("Arguments") or {}
        where = f"step {name}: "
        if kind in ("Processing", "QualityCheck", "ClarifyCheck"):
            problems += _network_config(args, f"{where}NetworkConfig")
            cluster = (args.get("ProcessingResources") or {}).get("ClusterConfig")
            problems += _job_kms(cluster, args.get("ProcessingOutputConfig"), f"{where}ProcessingResources.")
        elif kind == "Training":
            problems += _training_job(args, where)
        elif kind == "Tuning":
            problems += _training_job(args.get("TrainingJobDefinition") or {}, f"{where}TrainingJobDefinition.")
        elif kind == "Model":
            # A model step's CreateModel request: the model runs in the VPC with network isolation too.
            problems += _vpc_problems(args.get("VpcConfig"), f"{where}VpcConfig")
            if not _true(args.get("EnableNetworkIsolation")):
                problems.append(f"{where}EnableNetworkIsolation is not true")
        elif kind == "Transform":
            resources = args.get("TransformResources") or {}
            output = args.get("TransformOutput") or {}
            needs_key, _ = _instance_types_need_key([resources.get("InstanceType")])
            if needs_key and not _present(resources.get("VolumeKmsKeyId")):
                problems.append(f"{where}TransformResources.VolumeKmsKeyId is missing")
            if not _present(output.get("KmsKeyId")):
                problems.append(f"{where}TransformOutput.KmsKeyId is missing")
    return problems


def _capture_kms(props: Mapping[str, Any]) -> list[str]:
    problems = []
    capture = props.get("DataCaptureConfig")
    if (
        isinstance(capture, dict)
        and capture.get("EnableCapture") is not False
        and not _present(capture.get("KmsKeyId"))
    ):
        problems.append("DataCaptureConfig.KmsKeyId is missing")
    output = (props.get("AsyncInferenceConfig") or {}).get("OutputConfig")
    if isinstance(output, dict) and not _present(output.get("KmsKeyId")):
        problems.append("AsyncInferenceConfig.OutputConfig.KmsKeyId is missing")
    return problems


def _endpoint_rollback(props: Mapping[str, Any]) -> list[str]:
    deployment = props.get("DeploymentConfig")
    if not isinstance(deployment, dict):
        return ["DeploymentConfig is missing"]
    problems = []
    if not ({"BlueGreenUpdatePolicy", "RollingUpdatePolicy"} & set(deployment)):
        problems.append("DeploymentConfig has neither BlueGreenUpdatePolicy nor RollingUpdatePolicy")
    alarms = (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms")
    if not _present(alarms):
        problems.append("DeploymentConfig.AutoRollbackConfiguration.Alarms is empty")
    return problems


def _function(props: Mapping[str, Any]) -> list[str]:
    problems = _vpc_problems(
        {
            "Subnets": (props.get("VpcConfig") or {}).get("SubnetIds"),
            "SecurityGroupIds": (props.get("VpcConfig") or {}).get("SecurityGroupIds"),
        }
        if isinstance(props.get("VpcConfig"), dict)
        else None,
        "VpcConfig",
    )
    if not _present((props.get("DeadLetterConfig") or {}).get("TargetArn")):
        problems.append("DeadLetterConfig.TargetArn is missing")
    if (props.get("TracingConfig") or {}).get("Mode") != "Active":
        problems.append("TracingConfig.Mode is not Active")
    if not _present(props.get("KmsKeyArn")):
        problems.append("KmsKeyArn is missing (environment variables encrypted with the default key)")
    if not _present((props.get("LoggingConfig") or {}).get("LogGroup")):
        problems.append("LoggingConfig.LogGroup is missing (logs in an unencrypted, never-expiring default group)")
    return problems


def _concurrency(props: Mapping[str, Any]) -> list[str]:
    if props.get("ReservedConcurrentExecutions") is None:
        return ["ReservedConcurrentExecutions is missing"]
    return []


def _table(props: Mapping[str, Any]) -> list[str]:
    problems = []
    sse = props.get("SSESpecification") or {}
    if not (_true(sse.get("SSEEnabled")) and sse.get("SSEType") == "KMS" and _present(sse.get("KMSMasterKeyId"))):
        problems.append("SSESpecification does not name a customer-managed KMS key")
    recovery = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
    if not _true(recovery):
        problems.append("PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled is not true")
    return problems


RULES: list[Rule] = [
    Rule(
        id="MLP-SM1",
        description="SageMaker models run in the platform VPC.",
        fix="Set VpcConfig with the platform's isolated subnets and workload security group.",
        resource_types=("AWS::SageMaker::Model",),
        check=lambda _type, props: _model_vpc(props),
    ),
    Rule(
        id="MLP-SM2",
        description="SageMaker models run with network isolation.",
        fix="Set EnableNetworkIsolation: true.",
        resource_types=("AWS::SageMaker::Model",),
        check=lambda _type, props: _model_isolation(props),
    ),
    Rule(
        id="MLP-SM3",
        description=(
            "SageMaker endpoint configs encrypt storage with a customer-managed KMS key, except on "
            "local-NVMe instance types, where SageMaker refuses one."
        ),
        fix=(
            "Set KmsKeyId; leave it out only when a variant runs on a local-NVMe instance type "
            "(see infra/catalog/instances.py)."
        ),
        resource_types=("AWS::SageMaker::EndpointConfig",),
        check=lambda _type, props: _endpoint_config_kms(props),
    ),
    Rule(
        id="MLP-SM4",
        description="SageMaker monitoring jobs run in the VPC with inter-container traffic encryption.",
        fix="Set NetworkConfig.VpcConfig (subnets, security groups) and EnableInterContainerTrafficEncryption: true.",
        resource_types=(*MONITOR_JOB_DEFINITIONS, "AWS::SageMaker::MonitoringSchedule"),
        check=_monitor_network,
    ),
    Rule(
        id="MLP-SM9",
        description="SageMaker monitoring jobs run with network isolation.",
        fix=(
            "Set NetworkConfig.EnableNetworkIsolation: true; a job that cannot (Clarify's explainability "
            "monitor calls the SageMaker API) needs a stated, acknowledged exception."
        ),
        resource_types=(*MONITOR_JOB_DEFINITIONS, "AWS::SageMaker::MonitoringSchedule"),
        check=_monitor_isolation,
    ),
    Rule(
        id="MLP-SM5",
        description=(
            "SageMaker monitoring jobs encrypt their volumes (unless the instance has local NVMe "
            "storage) and their outputs with a customer-managed KMS key."
        ),
        fix="Set ClusterConfig.VolumeKmsKeyId (not on local-NVMe instance types) and the output KmsKeyId.",
        resource_types=(*MONITOR_JOB_DEFINITIONS, "AWS::SageMaker::MonitoringSchedule"),
        check=_monitor_kms,
    ),
    Rule(
        id="MLP-SM6",
        description=(
            "Every job inside a SageMaker pipeline definition (processing, quality checks, training, "
            "tuning, transform) runs in the VPC with network isolation and inter-container traffic "
            "encryption, and encrypts its volumes (unless local NVMe) and outputs with a KMS key; "
            "every model a model step creates runs in the VPC with network isolation."
        ),
        fix=(
            "Build the jobs with subnets, security groups, enable_network_isolation, "
            "encrypt_inter_container_traffic, volume_kms_key (not on local-NVMe types) and output_kms_key; "
            "models with vpc_config and enable_network_isolation=True."
        ),
        resource_types=("AWS::SageMaker::Pipeline",),
        check=lambda _type, props: _pipeline_jobs(props),
    ),
    Rule(
        id="MLP-SM7",
        description="SageMaker endpoint configs encrypt captured data and asynchronous results with a KMS key.",
        fix="Set DataCaptureConfig.KmsKeyId and AsyncInferenceConfig.OutputConfig.KmsKeyId.",
        resource_types=("AWS::SageMaker::EndpointConfig",),
        check=lambda _type, props: _capture_kms(props),
    ),
    Rule(
        id="MLP-SM8",
        description=(
            "SageMaker endpoints replace a model with a blue/green or rolling deployment that rolls back "
            "on CloudWatch alarms."
        ),
        fix="Set DeploymentConfig with BlueGreenUpdatePolicy or RollingUpdatePolicy and AutoRollbackConfiguration.",
        resource_types=("AWS::SageMaker::Endpoint",),
        check=lambda _type, props: _endpoint_rollback(props),
    ),
    Rule(
        id="MLP-L1",
        description=(
            "Lambda functions declared as plain CloudFormation resources (which the public packs do not "
            "inspect) run in the VPC with a dead-letter queue, active tracing, a KMS key for their "
            "environment and their own log group."
        ),
        fix="Use infra.constructs.functions.PythonFunction, which sets all of these.",
        resource_types=("AWS::Lambda::Function",),
        check=lambda _type, props: _function(props),
    ),
    Rule(
        id="MLP-L2",
        description=(
            "Lambda functions declared as plain CloudFormation resources reserve concurrency (what the "
            "HIPAA Security and NIST 800-53 R5 packs' LambdaConcurrency rules ask of typed functions)."
        ),
        fix="Set ReservedConcurrentExecutions, or acknowledge with the reason the function needs none.",
        resource_types=("AWS::Lambda::Function",),
        check=lambda _type, props: _concurrency(props),
    ),
    Rule(
        id="MLP-D1",
        description=(
            "DynamoDB tables declared as plain CloudFormation resources are encrypted with a "
            "customer-managed KMS key and keep point-in-time recovery."
        ),
        fix="Set SSESpecification (SSEType KMS, KMSMasterKeyId) and PointInTimeRecoverySpecification.",
        resource_types=("AWS::DynamoDB::Table",),
        check=lambda _type, props: _table(props),
    ),
]


def check_template(template: Mapping[str, Any]) -> Iterator[Finding]:
    """Every rule over every resource of a CloudFormation template."""
    resources = template.get("Resources") or {}
    for rule in RULES:
        for logical_id, resource in resources.items():
            resource_type = resource.get("Type")
            if resource_type not in rule.resource_types:
                continue
            problems = rule.check(resource_type, resource.get("Properties") or {})
            if problems:
                yield Finding(rule=rule, logical_id=logical_id, problems=tuple(problems))


def _plugin_class() -> type:
    """Build the CDK validation plugin lazily so the rule logic above imports without jsii."""
    import aws_cdk as cdk
    import jsii

    @jsii.implements(cdk.IPolicyValidationPlugin)
    class MLPlatformChecks:
        """CDK policy-validation plugin that runs RULES over every synthesized template."""

        @property
        def name(self) -> str:
            return PACK_NAME

        @property
        def version(self) -> str:
            return "1.0.0"

        @property
        def rule_ids(self) -> list[str]:
            return [rule.id for rule in RULES]

        def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
            by_rule: dict[str, list[cdk.PolicyViolatingResource]] = {}
            rules = {rule.id: rule for rule in RULES}
            details: dict[str, list[str]] = {}
            for stack in context.stack_templates:
                with open(stack.template_path, encoding="utf-8") as handle:
                    template = json.load(handle)
                for finding in check_template(template):
                    by_rule.setdefault(finding.rule.id, []).append(
                        cdk.PolicyViolatingResource(
                            resource_logical_id=finding.logical_id,
                            template_path=stack.template_path,
                            locations=list(finding.problems),
                        )
                    )
                    details.setdefault(finding.rule.id, []).extend(
                        f"{finding.logical_id}: {p}" for p in finding.problems
                    )
            violations = [
                cdk.PolicyViolation(
                    rule_name=rule_id,
                    description=f"{rules[rule_id].description} ({'; '.join(details[rule_id])})",
                    fix=rules[rule_id].fix,
                    violating_resources=resources,
                    severity="error",
                )
                for rule_id, resources in by_rule.items()
            ]
            return cdk.PolicyValidationPluginReport(success=not violations, violations=violations)

    return MLPlatformChecks


def ml_platform_checks() -> Any:
    """A new instance of the project's validation plugin, for `Validations.of(app).add_plugins`."""
    return _plugin_class()()
