"""Training stack: the SageMaker pipeline, its execution roles and scripts, and the model package group."""

from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as assets
from constructs import Construct

from infra.catalog import instances, naming
from infra.catalog.naming import export_name, glue_database
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    KMS_GRANT_WILDCARDS,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.checks.guardrails import SageMakerGuardrailPolicy
from infra.config import TRAINING_METRIC_REGEXES, PlatformConfig, available_environments
from infra.constructs import lake_permissions, sagemaker_roles
from infra.constructs.queues import DeadLetterQueue
from infra.constructs.retention import retention
from pipelines import definition as pipeline
from stacks.base import PlatformStack

STEPS = Path(pipeline.__file__).resolve().parent / "steps"
# SageMaker's limit for an inline definition body; larger ones would have to go through S3.
MAX_DEFINITION_BYTES = 1_000_000


# The MLflow REST calls that create and fill a run (no deletes, no registry, no UI).
MLFLOW_RUN_ACTIONS = (
    "CreateExperiment",
    "GetExperiment",
    "GetExperimentByName",
    "CreateRun",
    "GetRun",
    "UpdateRun",
    "LogBatch",
    "LogMetric",
    "LogParam",
    "SetTag",
)


def pipeline_spec(config: PlatformConfig, subnets: int) -> pipeline.PipelineSpec:
    """The pipeline builder's inputs, from the config and the instance catalog."""
    training = config.training
    assert training is not None
    dataset = config.data_lake.dataset
    tuning = None
    if training.tuning:
        t = training.tuning
        from infra.config import TRAINING_HYPERPARAMETERS

        tuning = pipeline.Tuning(
            strategy=t.strategy,
            objective_metric=t.objective_metric,
            objective=t.objective,
            max_jobs=t.max_jobs,
            max_parallel_jobs=t.max_parallel_jobs,
            early_stopping=t.early_stopping,
            ranges=tuple(
                (
                    name,
                    TRAINING_HYPERPARAMETERS[name],
                    r.min,
                    r.max,
                    tuple(str(v) for v in r.values) if r.values else None,
                    r.scaling,
                )
                for name, r in sorted(t.ranges.items())
            ),
        )
    return pipeline.PipelineSpec(
        name=naming.training_pipeline(config),
        region=config.region,
        model_package_group=naming.model_package_group(config),
        dataset=dataset.name,
        key=dataset.key_columns[0],
        target=training.target,
        features=tuple(training.features),
        subnets=subnets,
        training_instance_type=training.instance_type,
        training_instance_count=training.instance_count,
        training_runtime=training.runtime,
        # SageMaker refuses a customer volume key on local-NVMe types (encrypted in hardware).
        training_volume_kms=not instances.has_local_nvme(training.instance_type),
        volume_size_gb=training.volume_size_gb,
        max_runtime_seconds=training.max_runtime_minutes * 60,
        processing_instance_type=training.processing_instance_type,
        processing_volume_kms=not instances.has_local_nvme(training.processing_instance_type),
        hyperparameters=tuple(sorted((k, str(v)) for k, v in training.hyperparameters.items())),
        metric_definitions=tuple(TRAINING_METRIC_REGEXES.items()),
        spot=training.spot.enabled,
        max_wait_seconds=training.spot.max_wait_minutes * 60 if training.spot.max_wait_minutes else None,
        gate_metric=training.quality_gate.metric,
        gate_threshold=training.quality_gate.threshold,
        inference_instance_types=tuple(training.inference_instance_types),
        tuning=tuning,
        neuron_inference=training.serves_on_inferentia,
        bias_facet=training.bias_baseline.facet if training.bias_baseline else None,
        bias_threshold=training.bias_baseline.threshold if training.bias_baseline else None,
        explainability=pipeline.Explainability(rows=training.explainability.rows) if training.explainability else None,
        debugger_rules=tuple(training.debugger.rules),
        tensorboard=training.debugger.tensorboard,
        mlflow_tracking_server=naming.mlflow_server(config) if training.mlflow else None,
    )


def source_tarball(sources: list[Path], directory: Path) -> Path:
    """A byte-reproducible sourcedir.tar.gz (fixed order, times and owners) of the training code."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for source in sorted(sources):
            data = source.read_bytes()
            info = tarfile.TarInfo(source.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    path = directory / "sourcedir.tar.gz"
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(buffer.getvalue())
    return path


# Feature Store types of the dataset's column types.
FEATURE_TYPES = {
    "int": "Integral", "bigint": "Integral", "boolean": "Integral",
    "double": "Fractional", "float": "Fractional",
    "string": "String", "date": "String", "timestamp": "String",
}  # fmt: skip


class FeatureStore(Construct):
    """A feature group of the dataset: KMS-encrypted online store, offline store in the curated zone's catalog."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        curated_arn: str,
        curated_name: str,
        data_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        training, dataset = config.training, config.data_lake.dataset
        assert training is not None and training.feature_store is not None
        store = training.feature_store
        columns = {c.name: c for c in dataset.columns}
        names = [dataset.key_columns[0], store.event_time_column, *training.features, training.target]
        database = glue_database(config, "curated")
        prefix = "feature-store"
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=service_principal("sagemaker.amazonaws.com", stack.account),
            description="Feature Store writing the offline store into the curated zone",
        )
        objects = f"{curated_arn}/{prefix}/*"
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject", "s3:GetObject"], resources=[objects]))
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetBucketAcl"], resources=[curated_arn]))
        catalog = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetDatabase"],
                resources=[f"{catalog}:catalog", f"{catalog}:database/{database}", f"{catalog}:table/{database}/*"],
            )
        )
        data_key.grant_encrypt_decrypt(self.role)
        acknowledge(self.role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            self.role,
            "Feature Store writes objects it names itself under the feature-store prefix and registers "
            "its own table in the curated database; KMS action families come from CDK's key grant.",
            actions=KMS_GRANT_WILDCARDS,
            resources=[objects, f"{catalog}:table/{database}/*"],
        )
        # The curated database is governed by Lake Formation: the role needs its grants too.
        grants = [
            lake_permissions.grant(
                self,
                grant_id,
                catalog_id=stack.account,
                principal=self.role.role_arn,
                resource=resource,
                permissions=permissions,
            )
            for grant_id, resource, permissions in (
                ("Location", lake_permissions.location(stack.account, curated_arn), ["DATA_LOCATION_ACCESS"]),
                ("Database", lake_permissions.database(stack.account, database), ["CREATE_TABLE", "DESCRIBE"]),
            )
        ]
        self.group = cdk.CfnResource(
            self,
            "Group",
            type="AWS::SageMaker::FeatureGroup",
            properties={
                "FeatureGroupName": f"{config.prefix}-{dataset.name}".replace("_", "-"),
                "Description": f"Model features of {dataset.name}, from the curated zone",
                "RecordIdentifierFeatureName": names[0],
                "EventTimeFeatureName": store.event_time_column,
                "FeatureDefinitions": [
                    {"FeatureName": name, "FeatureType": FEATURE_TYPES[columns[name].type]} for name in names
                ],
                "OnlineStoreConfig": {
                    "EnableOnlineStore": store.online,
                    "SecurityConfig": {"KmsKeyId": data_key.key_arn},
                }
                if store.online
                else {"EnableOnlineStore": False},
                "OfflineStoreConfig": {
                    "S3StorageConfig": {"S3Uri": f"s3://{curated_name}/{prefix}", "KmsKeyId": data_key.key_arn},
                    "DataCatalogConfig": {
                        "Catalog": "AwsDataCatalog",
                        "Database": database,
                        "TableName": f"{dataset.name}_features",
                    },
                    "DisableGlueTableCreation": False,
                },
                "RoleArn": self.role.role_arn,
            },
        )
        # Features and their history are data: kept unless the config allows destroying it.
        self.group.apply_removal_policy(retention(config))
        self.group.node.add_dependency(self.role.node.find_child("DefaultPolicy"), *grants)


class TrainingStack(PlatformStack):
    """The model registry and the training pipeline that fills it, with least-privilege job roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        artifacts_key: kms.IKey,
        data_key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        guardrail: SageMakerGuardrailPolicy,
        logs_key: kms.IKey,
        persona_policies: Mapping[str, iam.IManagedPolicy] | None = None,
        definitions: Path | None = pipeline.SHIPPED,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        artifacts, curated = (
            s3.Bucket.from_bucket_attributes(
                self,
                f"{kind.capitalize()}Bucket",
                bucket_arn=cdk.Fn.import_value(export_name(config, f"{kind}-bucket-arn")),
                bucket_name=cdk.Fn.import_value(export_name(config, f"{kind}-bucket-name")),
            )
            for kind in ("artifacts", "curated")
        )
        selected = vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids
        spec = pipeline_spec(config, len(selected))
        partition, region, account = self.partition, self.region, self.account
        prefix = f"pipelines/{spec.name}"
        dataset = config.data_lake.dataset.name

        # Generic L1 resources: the aws_sagemaker bindings would add 0.4 s to every synth for two types.
        self.model_package_group = cdk.CfnResource(
            self,
            "Models",
            type="AWS::SageMaker::ModelPackageGroup",
            properties={
                "ModelPackageGroupName": spec.model_package_group,
                "ModelPackageGroupDescription": f"Models of {config.prefix}, registered by the training pipeline",
            },
        )
        # Approved versions and their history are what serving and audits rely on.
        self.model_package_group.apply_removal_policy(retention(config))
        self.approval_forwarding: events.CfnRule | None = None
        if config.training.model_consumers:
            self._share_registry(config, spec.model_package_group, logs_key)

        scripts = {
            "PreprocessKey": assets.Asset(self, "PreprocessScript", path=str(STEPS / "preprocess.py")),
            "EvaluateKey": assets.Asset(self, "EvaluateScript", path=str(STEPS / "evaluate.py")),
            "CompileKey": assets.Asset(self, "CompileScript", path=str(STEPS / "compile_neuron.py")),
            "TrainingCodeKey": assets.Asset(
                self, "TrainingCode", path=str(source_tarball([STEPS / "train.py"], Path(tempfile.mkdtemp())))
            ),
        }
        registries = self._registries(spec)

        def job_role(name: str, description: str, logs: str, code_keys: list[str]) -> iam.Role:
            role = iam.Role(
                self,
                name,
                assumed_by=service_principal("sagemaker.amazonaws.com", account),
                description=description,
            )
            artifacts_objects = artifacts.arn_for_objects(f"{prefix}/*")
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    resources=[artifacts_objects],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[artifacts.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}/*"]}},
                )
            )
            artifacts_key.grant_encrypt_decrypt(role)
            # Exactly the script objects this job runs.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[
                        f"arn:{partition}:s3:::{scripts[k].s3_bucket_name}/{scripts[k].s3_object_key}"
                        for k in code_keys
                    ],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                    resources=[
                        f"arn:{partition}:ecr:{region}:{registry}:repository/{repository}"
                        for family, registry in zip(pipeline.IMAGE_FAMILIES, registries, strict=True)
                        for repository in pipeline.JOB_REPOSITORIES[family]
                    ],
                )
            )
            role.add_to_policy(
                sagemaker_roles.log_streams(
                    f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/{logs}:*"
                )
            )
            # Resource-less actions: ECR login, metrics, and the ENIs of a job in the VPC.
            role.add_to_policy(sagemaker_roles.resourceless())
            role.add_to_policy(sagemaker_roles.metrics(["/aws/sagemaker/*", "aws/sagemaker/*"]))
            guardrail.attach_to(role)
            acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
            acknowledge_wildcards(
                role,
                "Only where nothing narrower exists: this pipeline's artifact prefix and its jobs' log "
                "streams; ECR login, metrics and VPC ENI calls take no resource ARN; KMS action "
                "families come from CDK's key grant.",
                actions=KMS_GRANT_WILDCARDS,
                resources=[
                    "*",
                    artifacts_objects,
                    f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/{logs}:*",
                ],
            )
            return role

        self.processing_role = job_role(
            "ProcessingRole",
            "Preprocess, evaluate, baseline jobs",
            "ProcessingJobs",
            ["PreprocessKey", "EvaluateKey", "CompileKey"],
        )
        curated_objects = curated.arn_for_objects(f"{dataset}/*")
        self.processing_role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[curated_objects]))
        self.processing_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[curated.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{dataset}/*", dataset]}},
            )
        )
        data_key.grant_decrypt(self.processing_role)
        acknowledge_wildcards(
            self.processing_role,
            "The curated dataset's own prefix: the preprocess job reads every file of the table.",
            resources=[curated_objects],
        )
        self.training_role = job_role("TrainingRole", "Training and tuning jobs", "TrainingJobs", ["TrainingCodeKey"])

        # The role SageMaker Pipelines runs as: it creates the jobs and registers the model.
        self.pipeline_role = iam.Role(
            self,
            "PipelineRole",
            assumed_by=service_principal("sagemaker.amazonaws.com", account),
            description=f"SageMaker Pipelines execution of {spec.name}",
        )
        jobs = [
            f"arn:{partition}:sagemaker:{region}:{account}:{kind}/*"
            for kind in ("processing-job", "training-job", "hyper-parameter-tuning-job")
        ]
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:AddTags",
                ],
                resources=jobs,
            )
        )
        group = self.model_package_group
        packages = f"arn:{partition}:sagemaker:{region}:{account}:model-package/{spec.model_package_group}/*"
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:AddTags"],
                resources=[group.get_att("ModelPackageGroupArn").to_string(), packages],
            )
        )
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.processing_role.role_arn, self.training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        # The condition step reads evaluation.json from this pipeline's prefix.
        self.pipeline_role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[artifacts.arn_for_objects(f"{prefix}/*")])
        )
        artifacts_key.grant_decrypt(self.pipeline_role)
        guardrail.attach_to(self.pipeline_role)
        acknowledge(self.pipeline_role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            self.pipeline_role,
            "Job names are generated per pipeline execution, so jobs are matched by type in this "
            "account and region; model versions of this one group; this pipeline's artifact prefix.",
            resources=[*jobs, packages, artifacts.arn_for_objects(f"{prefix}/*")],
        )

        store = definitions
        if definitions == pipeline.SHIPPED:
            store = pipeline.CACHE_DIR if config.environment in available_environments() else None
        body = pipeline.cached(spec, store)
        if len(body.encode()) > MAX_DEFINITION_BYTES:
            raise ValueError(
                f"the pipeline definition of {spec.name} is {len(body.encode()):,} bytes; the inline limit is "
                f"{MAX_DEFINITION_BYTES:,}: split the pipeline or store it in S3"
            )
        registry_variables = {
            f"{family}Registry": registry for family, registry in zip(pipeline.IMAGE_FAMILIES, registries, strict=True)
        }
        variables = {
            "ProcessingRoleName": self.processing_role.role_name,
            "TrainingRoleName": self.training_role.role_name,
            "ArtifactsBucket": artifacts.bucket_name,
            "CuratedBucket": curated.bucket_name,
            "ArtifactsKeyArn": artifacts_key.key_arn,
            "SecurityGroupId": security_group.security_group_id,
            "AssetsBucket": scripts["PreprocessKey"].s3_bucket_name,
            **{name: asset.s3_object_key for name, asset in scripts.items()},
            **{f"Subnet{i}": subnet for i, subnet in enumerate(selected)},
            # Per-region image registries, only when the definition leaves the region open.
            **(registry_variables if spec.region is None else {}),
        }
        self.pipeline = cdk.CfnResource(
            self,
            "Pipeline",
            type="AWS::SageMaker::Pipeline",
            properties={
                "PipelineName": spec.name,
                "PipelineDisplayName": spec.name,
                "PipelineDescription": "preprocess -> train -> evaluate -> quality gate -> baselines -> register",
                "RoleArn": self.pipeline_role.role_arn,
                "PipelineDefinition": {"PipelineDefinitionBody": cdk.Fn.sub(body, variables)},
                "ParallelismConfiguration": {"MaxParallelExecutionSteps": 4},
            },
        )
        # The roles' permissions exist before SageMaker validates the pipeline against them.
        for role in (self.pipeline_role, self.processing_role, self.training_role):
            self.pipeline.node.add_dependency(role.node.find_child("DefaultPolicy"))
        self.spec = spec
        self._workspace(config, artifacts, artifacts_key, vpc, subnets, security_group, persona_policies or {})
        self.feature_store = None
        if config.training.feature_store is not None:
            self.feature_store = FeatureStore(
                self,
                "Features",
                config=config,
                curated_arn=curated.bucket_arn,
                curated_name=curated.bucket_name,
                data_key=data_key,
            )

    def _workspace(
        self,
        config: PlatformConfig,
        artifacts: s3.IBucket,
        artifacts_key: kms.IKey,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        persona_policies: Mapping[str, iam.IManagedPolicy],
    ) -> None:
        """The optional MLflow tracking server and Studio domain, with Lake Formation grants for Studio."""
        from infra.constructs.workspace import StudioDomain, TrackingServer

        training = config.training
        assert training is not None
        self.tracking_server = None
        extra: list[iam.IManagedPolicy] = []
        if training.mlflow is not None:
            self.tracking_server = TrackingServer(
                self,
                "Mlflow",
                config=config,
                artifacts_bucket_name=artifacts.bucket_name,
                artifacts_bucket_arn=artifacts.bucket_arn,
                artifacts_key=artifacts_key,
            )
            extra = [self.tracking_server.access_policy, self.tracking_server.artifacts_policy]
            # SageMaker logs the training job's metrics and hyperparameters to the server as the
            # job's role (the job's MlflowConfig); the isolated container never calls it.
            self.training_role.add_to_policy(
                iam.PolicyStatement(
                    actions=[f"sagemaker-mlflow:{action}" for action in MLFLOW_RUN_ACTIONS]
                    + ["sagemaker:DescribeMlflowTrackingServer"],
                    resources=[self.tracking_server.arn],
                )
            )
            # The server exists before a pipeline that names it is created.
            self.pipeline.node.add_dependency(self.tracking_server)
        self.studio = None
        if training.studio is None:
            return
        self.studio = StudioDomain(
            self,
            "Studio",
            config=config,
            vpc=vpc,
            subnets=subnets,
            security_group=security_group,
            key=artifacts_key,
            extra_policies=extra,
            persona_policies=persona_policies,
        )
        # Studio sessions run as the profiles' execution roles: the same tag-based Lake Formation
        # grants as the persona they belong to (writers: raw and curated; readers: general columns).
        for persona, role in self.studio.roles.items():
            for kind, expression, permissions in lake_permissions.persona_tag_grants(config, persona):
                lake_permissions.grant(
                    self,
                    f"Studio{persona.title().replace('_', '')}{kind.title()}Grant",
                    catalog_id=self.account,
                    principal=role.role_arn,
                    resource=lake_permissions.tag_policy(self.account, kind, expression),
                    permissions=permissions,
                )

    def _share_registry(self, config: PlatformConfig, group: str, queue_key: kms.IKey) -> None:
        """Environments in other accounts serve this registry's approved versions.

        The group's resource policy lets each consumer account read its versions; approvals and
        rejections are forwarded to each consumer account's default event bus, where its promotion
        function takes them (the consumer's bus policy admits this account's events only).
        """
        assert config.training is not None
        consumers = config.training.model_consumers
        partition, region, account = self.partition, self.region, self.account
        group_arn = f"arn:{partition}:sagemaker:{region}:{account}:model-package-group/{group}"
        self.model_package_group.add_property_override(
            "ModelPackageGroupPolicy",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ServingAccountsReadVersions",
                        "Effect": "Allow",
                        "Principal": {"AWS": [f"arn:{partition}:iam::{c.account}:root" for c in consumers]},
                        "Action": [
                            "sagemaker:DescribeModelPackageGroup",
                            "sagemaker:DescribeModelPackage",
                            "sagemaker:ListModelPackages",
                        ],
                        "Resource": [
                            group_arn,
                            f"arn:{partition}:sagemaker:{region}:{account}:model-package/{group}/*",
                        ],
                    }
                ],
            },
        )
        buses = [f"arn:{partition}:events:{region}:{c.account}:event-bus/default" for c in consumers]
        role = iam.Role(
            self,
            "ApprovalForwarding",
            assumed_by=service_principal("events.amazonaws.com", account),
            description=f"EventBridge forwarding {group} approvals to the accounts that serve its versions",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=buses))
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        dead_letters = DeadLetterQueue(
            self, "UnforwardedApprovals", config=config, key=queue_key, source="the approval forwarding rule"
        )
        self.approval_forwarding = events.CfnRule(
            self,
            "ForwardApprovals",
            description=f"Approvals and rejections in {group} reach the accounts that serve it",
            event_pattern=naming.model_package_changes(group, "Approved", "Rejected"),
            state="ENABLED",
            targets=[
                dead_letters.target(
                    f"{c.environment.title().replace('-', '')}Bus", bus, bus=True, role_arn=role.role_arn
                )
                for c, bus in zip(consumers, buses, strict=True)
            ],
        )
        dead_letters.receive_from(self.approval_forwarding, "ForwardingDeadLetters")

    def _registries(self, spec: pipeline.PipelineSpec) -> list[str]:
        """ECR registry accounts of the images the jobs run: literal for a known region, else mapped."""
        if spec.region is not None:
            accounts = pipeline.registry_accounts()[spec.region]
            return [accounts[family] for family in pipeline.IMAGE_FAMILIES]
        self.image_registries = cdk.CfnMapping(self, "ImageRegistries", mapping=pipeline.registry_accounts())
        return [self.image_registries.find_in_map(cdk.Aws.REGION, family) for family in pipeline.IMAGE_FAMILIES]
