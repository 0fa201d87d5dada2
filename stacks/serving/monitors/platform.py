"""The platform engine's monitor run: a SageMaker pipeline per endpoint (analysis job, then publishing), its starter.

One run analyses one window of captured traffic with `python3 -m monitoring.analyze` on the
scikit-learn processing image (in the VPC, network isolation, inter-container encryption, KMS
volume and output keys), then the pipeline's Lambda step has `lambdas/monitor_metrics` publish the
report as CloudWatch metrics (the isolated job cannot reach CloudWatch). A rule per schedule invokes
`lambdas/monitor_start` (retried, then its dead-letter queue), which starts a run with the window's
files and the promoted baselines, never while another run executes. A failed run alerts the alert
topic. The promoted baselines are stack parameters, so promotion writes them with the model.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam

from infra.catalog import instances, monitors, naming
from infra.checks.compliance import (
    INLINE_POLICY_REASON,
    acknowledge,
    acknowledge_wildcards,
    in_hipaa_nist_pci,
    service_principal,
)
from infra.config import MonitoringConfig
from infra.constructs import sagemaker_roles
from infra.constructs.functions import FunctionProps, PythonFunction
from infra.constructs.serving_state import MODEL_PACKAGE
from stacks.serving.context import ServingContext

# When each schedule starts a run: a few minutes after the hour, so the hour's capture files are
# written; daily half an hour later, so it does not collide with the hourly run (runs never overlap).
RUN_SCHEDULES = {"hourly": "cron(5 * ? * * *)", "daily": "cron(35 0 ? * * *)"}
PERIOD_HOURS = {"hourly": 1, "daily": 24}
# Monitors that judge labelled traffic wait an hour for the ground truth of the window's last hour.
LABELLED = ("model_quality", "bias")
INPUT = "/opt/ml/processing/input"
LIBRARY_DIR = f"{INPUT}/library"
WINDOW_DIR = f"{INPUT}/window"
BASELINES_DIR = f"{INPUT}/baselines"
OUTPUT_DIR = "/opt/ml/processing/output"
SKLEARN = monitors.Image("SKLearn", "sagemaker-scikit-learn", "1.2-1-cpu-py3")
# Pipeline parameters the starter sets for each run (lambdas/monitor_start).
PARAMETERS = ("Manifest", "WindowStart", "WindowEnd", "Monitors", "DataBaseline", "QualityBaseline", "BiasBaseline")
MAX_RUNTIME_SECONDS = 3600


def _get(name: str) -> dict[str, str]:
    return {"Get": f"Parameters.{name}"}


class PlatformMonitor:
    """Creates the monitor pipeline of the endpoint, its job and pipeline roles, publisher, starter and failure alert.

    Everything is built into the Serving stack's own scope (no construct level of its own).
    """

    def __init__(self, ctx: ServingContext, monitoring: MonitoringConfig) -> None:
        """`monitoring` is the config's section (engine platform); its kinds decide inputs and schedules."""
        self.ctx, self.monitoring = ctx, monitoring
        self.kinds = [kind for kind, _ in monitors.configured(monitoring)]
        stack = ctx.stack
        self.pipeline_name = f"{ctx.endpoint_name}-monitor"
        self.pipeline_arn = ctx.arn("sagemaker", f"pipeline/{self.pipeline_name}")
        self.prefix = f"{naming.MONITOR_PREFIX}/{ctx.endpoint_name}"
        # The baselines of the promoted version: stack parameters promotion writes with the model.
        self.baselines = [ctx.state.baseline(baseline) for kind in self.kinds for baseline in kind.baselines]
        from stacks.training.scripts import monitoring_library

        self.library = monitoring_library(stack, "MonitoringLibrary")
        self.job_role = self._job_role()
        self.publisher = self._publisher()
        self.pipeline_role = self._pipeline_role()
        self.pipeline = self._pipeline()
        self.starter = self._starter()
        self.failures = self._failure_alerts()

    # --- roles -----------------------------------------------------------------------------------

    def _job_role(self) -> iam.Role:
        """The analysis job's role: read the window (capture, labels), the baselines and the library; write reports."""
        ctx, stack = self.ctx, self.ctx.stack
        role = iam.Role(
            stack,
            "MonitorRole",
            assumed_by=service_principal("sagemaker.amazonaws.com", stack.account),
            description=f"Platform monitor jobs of {ctx.endpoint_name}: captured data, labels, baselines, reports",
            role_name=ctx.outputs.role_name(monitors.SHARED_ROLE),
        )
        baselines = ctx.outputs.grant_read(role)
        listed = ctx.outputs.grant_list(role)  # the baselines are S3Prefix inputs
        inputs = [naming.CAPTURE_PREFIX, naming.GROUND_TRUTH_PREFIX, naming.MONITOR_PREFIX]
        read = [ctx.artifacts.arn_for_objects(f"{prefix}/{ctx.endpoint_name}/*") for prefix in inputs]
        library = f"arn:{stack.partition}:s3:::{self.library.s3_bucket_name}/{self.library.s3_object_key}"
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[*read, library]))
        # The library is an S3Prefix input: SageMaker lists its key as a prefix before it downloads it.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[f"arn:{stack.partition}:s3:::{self.library.s3_bucket_name}"],
                conditions={"StringEquals": {"s3:prefix": self.library.s3_object_key}},
            )
        )
        reports = ctx.artifacts.arn_for_objects(f"{self.prefix}/reports/*")
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[reports])
        )
        ctx.inputs.artifacts_key.grant_encrypt_decrypt(role)
        role.add_to_policy(self._pull())
        log_streams = ctx.arn("logs", "log-group:/aws/sagemaker/ProcessingJobs:*")
        role.add_to_policy(sagemaker_roles.log_streams(log_streams))
        sagemaker_roles.grant_resourceless(role)
        ctx.inputs.guardrail.attach_to(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "This endpoint's capture, label and monitoring prefixes and the pipeline's baselines (named per "
            "execution); processing-job log streams are named per job; ECR login takes no resource ARN, and "
            "SageMaker names each job's VPC network interfaces itself; KMS action families come from CDK's "
            "key grant. Serving another account's registry, its artifacts bucket (named there) is listed "
            "only under the pipeline's prefix, in that account.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=[
                "*",
                *read,
                reports,
                baselines,
                *([listed] if ctx.outputs.source else []),  # the source's buckets; this account's by name
                log_streams,
                *ctx.outputs.key_wildcards(),
            ],
        )
        return role

    def _pull(self) -> iam.PolicyStatement:
        """Pull the scikit-learn processing image from its registry in every region the pipeline knows."""
        from pipelines import definition as pipeline

        stack = self.ctx.stack
        registries = sorted({f[SKLEARN.family] for f in pipeline.registry_accounts().values()})
        return iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[
                f"arn:{stack.partition}:ecr:{stack.region}:{r}:repository/{SKLEARN.repository}" for r in registries
            ],
        )

    def _pipeline_role(self) -> iam.Role:
        """What SageMaker Pipelines runs the monitor pipeline as: its processing jobs, the job role, the publisher."""
        ctx, stack = self.ctx, self.ctx.stack
        role = iam.Role(
            stack,
            "MonitorPipelineRole",
            assumed_by=service_principal("sagemaker.amazonaws.com", stack.account),
            description=f"SageMaker Pipelines execution of {self.pipeline_name}",
        )
        jobs = ctx.arn("sagemaker", "processing-job/*")
        role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:AddTags",
                ],
                resources=[jobs],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.job_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.publisher.function_arn])
        )
        ctx.inputs.guardrail.attach_to(role)
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        acknowledge_wildcards(
            role,
            "Processing jobs are named by SageMaker Pipelines per execution; the guardrail policy denies "
            "any job outside the VPC, without isolation or without keys.",
            resources=[jobs],
        )
        return role

    # --- functions -------------------------------------------------------------------------------

    def _props(
        self, source: str, description: str, environment: dict[str, str], timeout: int, concurrency: str
    ) -> FunctionProps:
        ctx = self.ctx
        return FunctionProps(
            source=source,
            description=description,
            environment=environment,
            subnet_ids=ctx.subnet_ids,
            security_group=ctx.inputs.placement.security_group,
            key=ctx.inputs.logs_key,
            alerts_topic_arn=ctx.inputs.alerts_topic.topic_arn,
            timeout_seconds=timeout,
            concurrency=concurrency,
        )

    def _publisher(self) -> PythonFunction:
        """lambdas/monitor_metrics: a run's report as CloudWatch metrics, in the platform's namespace only."""
        ctx = self.ctx
        function = PythonFunction(
            ctx.stack,
            "MonitorMetrics",
            config=ctx.config,
            props=self._props(
                "monitor_metrics",
                f"publishes {ctx.endpoint_name}'s monitor reports as CloudWatch metrics",
                {
                    "METRIC_NAMESPACE": monitors.PLATFORM_NAMESPACE,
                    "REPORT_BUCKET": ctx.artifacts.bucket_name,
                    "REPORT_PREFIX": f"{self.prefix}/reports/",
                },
                60,
                "Each invocation publishes the metrics of one report and shares no state with another.",
            ),
        )
        role = function.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[ctx.artifacts.arn_for_objects(f"{self.prefix}/reports/*")]
            )
        )
        ctx.inputs.artifacts_key.grant_decrypt(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": monitors.PLATFORM_NAMESPACE}},
            )
        )
        acknowledge_wildcards(
            function.role,
            "This endpoint's report prefix; PutMetricData takes no resource ARN and is limited to the "
            "platform's namespace by condition.",
            resources=["*", ctx.artifacts.arn_for_objects(f"{self.prefix}/reports/*")],
        )
        return function

    def _starter(self) -> PythonFunction:
        """lambdas/monitor_start, invoked by a rule per configured schedule with that schedule's monitors and window."""
        ctx = self.ctx
        state = {
            "model_package": naming.serving_state_parameter(ctx.config, MODEL_PACKAGE),
            **{
                kind.field: naming.serving_state_parameter(ctx.config, kind.baselines[0].parameter)
                for kind in self.kinds
            },
        }
        function = PythonFunction(
            ctx.stack,
            "MonitorStart",
            config=ctx.config,
            props=self._props(
                "monitor_start",
                f"starts {self.pipeline_name} on each window of captured traffic",
                {
                    "PIPELINE_NAME": self.pipeline_name,
                    "BUCKET": ctx.artifacts.bucket_name,
                    "CAPTURE_PREFIX": f"{naming.CAPTURE_PREFIX}/{ctx.endpoint_name}",
                    "GROUND_TRUTH_PREFIX": f"{naming.GROUND_TRUTH_PREFIX}/{ctx.endpoint_name}",
                    "MANIFEST_PREFIX": f"{self.prefix}/manifests",
                    "KMS_KEY_ID": ctx.inputs.artifacts_key.key_arn,
                    "STATE_PARAMETERS": json.dumps(state, sort_keys=True),
                },
                120,
                "It starts nothing while a run executes, and a retried event starts its window with the same "
                "request token, so it never starts a second run of one window.",
            ),
        )
        self._grant_starter(function)
        for schedule, fields in self._schedules().items():
            labelled = any(field in LABELLED for field in fields)
            template = json.dumps(
                {
                    "monitors": fields,
                    "period_hours": PERIOD_HOURS[schedule],
                    "delay_hours": 1 if labelled else 0,
                }
            )
            function.invoked_by_rule(
                ctx.stack,
                f"Monitor{schedule.capitalize()}",
                f"Starts the {schedule} monitor run of {ctx.endpoint_name} ({', '.join(fields)})",
                schedule=RUN_SCHEDULES[schedule],
                input_transformer=events.CfnRule.InputTransformerProperty(
                    input_paths_map={"time": "$.time"},
                    input_template=template[:-1] + ', "time": <time>}',
                ),
            )
        return function

    def _schedules(self) -> dict[str, list[str]]:
        """Schedule -> the monitor kinds that run on it, in table order."""
        runs: dict[str, list[str]] = {}
        for kind, section in monitors.configured(self.monitoring):
            runs.setdefault(section.schedule, []).append(kind.field)
        return runs

    def _grant_starter(self, function: PythonFunction) -> None:
        ctx, role = self.ctx, function.role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
                resources=[self.pipeline_arn],
            )
        )
        window = [f"{p}/{ctx.endpoint_name}/" for p in (naming.CAPTURE_PREFIX, naming.GROUND_TRUTH_PREFIX)]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[ctx.artifacts.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{w}*" for w in window]}},
            )
        )
        manifests = ctx.artifacts.arn_for_objects(f"{self.prefix}/manifests/*")
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[manifests]))
        ctx.inputs.artifacts_key.grant_encrypt(role)
        role.add_to_policy(iam.PolicyStatement(actions=["ssm:GetParameters"], resources=[ctx.state.arn]))
        acknowledge_wildcards(
            role,
            "The endpoint's manifest prefix (one object per window) and the environment's promoted-state "
            "parameters, read together.",
            actions=["kms:GenerateDataKey*", "kms:ReEncrypt*"],
            resources=[manifests, ctx.state.arn],
        )

    # --- the pipeline ----------------------------------------------------------------------------

    def _pipeline(self) -> cdk.CfnResource:
        """The AWS::SageMaker::Pipeline of one run: Analyze (processing), then Publish (Lambda)."""
        ctx = self.ctx
        variables = {
            "JobRoleArn": self.job_role.role_arn,
            "ArtifactsBucket": ctx.artifacts.bucket_name,
            "ArtifactsKeyArn": ctx.inputs.artifacts_key.key_arn,
            "SecurityGroupId": ctx.inputs.placement.security_group.security_group_id,
            "AssetsBucket": self.library.s3_bucket_name,
            "LibraryKey": self.library.s3_object_key,
            "PublisherArn": self.publisher.function_arn,
            "SKLearnImage": self._image(),
            **{f"Subnet{i}": subnet for i, subnet in enumerate(ctx.subnet_ids)},
        }
        resource = cdk.CfnResource(
            ctx.stack,
            "MonitorPipeline",
            type="AWS::SageMaker::Pipeline",
            properties={
                "PipelineName": self.pipeline_name,
                "PipelineDescription": f"One monitor run of {ctx.endpoint_name}: analyze a window, publish its metrics",
                "RoleArn": self.pipeline_role.role_arn,
                "PipelineDefinition": {
                    "PipelineDefinitionBody": cdk.Fn.sub(json.dumps(self.definition(), sort_keys=True), variables)
                },
                "ParallelismConfiguration": {"MaxParallelExecutionSteps": 1},
            },
        )
        resource.node.add_dependency(self.pipeline_role.node.find_child("DefaultPolicy"))
        resource.add_metadata(monitors.RUN_SCHEDULES, [RUN_SCHEDULES[s] for s in self._schedules()])
        return resource

    def _image(self) -> str:
        from pipelines import definition as pipeline

        stack = self.ctx.stack
        if self.ctx.config.region is not None:
            registry = pipeline.registry_accounts()[self.ctx.config.region][SKLEARN.family]
        else:
            mapping = cdk.CfnMapping(stack, "MonitorImageRegistries", mapping=pipeline.registry_accounts())
            registry = mapping.find_in_map(cdk.Aws.REGION, SKLEARN.family)
        return f"{registry}.dkr.ecr.{stack.region}.{stack.url_suffix}/{SKLEARN.name}"

    def definition(self) -> dict[str, Any]:
        """The pipeline definition with ${Name} placeholders (Fn::Sub variables)."""
        return {
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": [{"Name": name, "Type": "String", "DefaultValue": "none"} for name in PARAMETERS],
            "Steps": [self._analyze(), self._publish()],
        }

    def _analyze(self) -> dict[str, Any]:
        ctx, monitoring = self.ctx, self.monitoring
        cluster: dict[str, Any] = {"InstanceCount": 1, "InstanceType": monitoring.instance_type, "VolumeSizeInGB": 20}
        if not instances.has_local_nvme(monitoring.instance_type):
            cluster["VolumeKmsKeyId"] = "${ArtifactsKeyArn}"
        return {
            "Name": "Analyze",
            "Type": "Processing",
            "Arguments": {
                "ProcessingResources": {"ClusterConfig": cluster},
                "AppSpecification": {
                    "ImageUri": "${SKLearnImage}",
                    "ContainerEntrypoint": ["python3", "-m", "monitoring.analyze"],
                    "ContainerArguments": self._arguments(),
                },
                # The library zip's file name is its object key (a content hash).
                "Environment": {"PYTHONPATH": f"{LIBRARY_DIR}/${{LibraryKey}}"},
                "RoleArn": "${JobRoleArn}",
                "ProcessingInputs": self._inputs(),
                "ProcessingOutputConfig": {
                    "KmsKeyId": "${ArtifactsKeyArn}",
                    "Outputs": [
                        {
                            "OutputName": "report",
                            "AppManaged": False,
                            "S3Output": {
                                "S3Uri": {
                                    "Std:Join": {
                                        "On": "/",
                                        "Values": [
                                            f"s3://${{ArtifactsBucket}}/{self.prefix}/reports",
                                            {"Get": "Execution.PipelineExecutionId"},
                                        ],
                                    }
                                },
                                "LocalPath": OUTPUT_DIR,
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                    ],
                },
                "NetworkConfig": {
                    "EnableNetworkIsolation": True,
                    "EnableInterContainerTrafficEncryption": True,
                    "VpcConfig": {
                        "SecurityGroupIds": ["${SecurityGroupId}"],
                        "Subnets": [f"${{Subnet{i}}}" for i in range(len(ctx.subnet_ids))],
                    },
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": MAX_RUNTIME_SECONDS},
            },
        }

    def _arguments(self) -> list[Any]:
        ctx, monitoring = self.ctx, self.monitoring
        window = WINDOW_DIR
        arguments: list[Any] = [
            *("--endpoint", ctx.endpoint_name, "--output-dir", OUTPUT_DIR),
            *("--capture-dir", f"{window}/{naming.CAPTURE_PREFIX}/{ctx.endpoint_name}"),
            *("--ground-truth-dir", f"{window}/{naming.GROUND_TRUTH_PREFIX}/{ctx.endpoint_name}"),
            *("--data-baseline", f"{BASELINES_DIR}/data_quality"),
            *("--monitors", _get("Monitors"), "--window-start", _get("WindowStart"), "--window-end", _get("WindowEnd")),
        ]
        if monitoring.data_quality is not None:
            arguments += ["--max-js-distance", f"{monitoring.data_quality.drift_threshold:g}"]
        if monitoring.model_quality is not None:
            quality = monitoring.model_quality
            arguments += ["--quality-baseline", f"{BASELINES_DIR}/model_quality"]
            arguments += ["--min-metric", f"{quality.metric}={quality.min_value:g}"]
        if monitoring.bias is not None:
            arguments += ["--bias-baseline", f"{BASELINES_DIR}/bias"]
        return arguments

    def _inputs(self) -> list[dict[str, Any]]:
        def s3_input(name: str, uri: Any, local: str, data_type: str = "S3Prefix") -> dict[str, Any]:
            return {
                "InputName": name,
                "AppManaged": False,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": local,
                    "S3DataType": data_type,
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }

        inputs = [
            s3_input("library", "s3://${AssetsBucket}/${LibraryKey}", LIBRARY_DIR),
            # Exactly the window's capture and ground-truth files, listed by the starter.
            s3_input("window", _get("Manifest"), WINDOW_DIR, "ManifestFile"),
            s3_input("data-baseline", _get("DataBaseline"), f"{BASELINES_DIR}/data_quality"),
        ]
        if self.monitoring.model_quality is not None:
            inputs.append(s3_input("quality-baseline", _get("QualityBaseline"), f"{BASELINES_DIR}/model_quality"))
        if self.monitoring.bias is not None:
            inputs.append(s3_input("bias-baseline", _get("BiasBaseline"), f"{BASELINES_DIR}/bias"))
        return inputs

    def _publish(self) -> dict[str, Any]:
        report = {"Get": "Steps.Analyze.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri"}
        return {
            "Name": "Publish",
            "Type": "Lambda",
            "FunctionArn": "${PublisherArn}",
            "Arguments": {"report_uri": {"Std:Join": {"On": "/", "Values": [report, "report.json"]}}},
            "OutputParameters": [{"OutputName": "action", "OutputType": "String"}],
        }

    def _failure_alerts(self) -> events.CfnRule:
        """A failed run (analysis or publishing) tells the alert topic."""
        ctx = self.ctx
        rule = events.CfnRule(
            ctx.stack,
            "MonitorRunFailures",
            description=f"Failed runs of {self.pipeline_name}",
            event_pattern={
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {"pipelineArn": [self.pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
            },
            state="ENABLED",
            targets=[
                self.starter.dead_letters.target(
                    "Alerts",
                    ctx.inputs.alerts_topic.topic_arn,
                    input_transformer=events.CfnRule.InputTransformerProperty(
                        input_paths_map={"execution": "$.detail.pipelineExecutionArn"},
                        input_template=(
                            f'"A monitor run of {ctx.endpoint_name} failed: <execution>. Its window has no '
                            "metrics; see the execution's steps and the processing job log.\""
                        ),
                    ),
                )
            ],
        )
        self.starter.dead_letters.receive_from(rule, "MonitorRunFailureDeadLetters")
        return rule
