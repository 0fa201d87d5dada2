"""Serving stack: the endpoint that serves the approved model version, and the path a version takes to it.

CloudFormation is the endpoint's only owner. The approved model package is the stack parameter
`ModelPackageArn`; the model, endpoint config, endpoint, scaling and rollback alarms exist only
while it is set (the first deploy has none). The promotion Lambda reacts to an approval in the
registry by updating that one parameter (UsePreviousTemplate) through a CloudFormation service
role that may change only what the parameter drives. SageMaker's blue/green deployment shifts
traffic and rolls back on this stack's alarms; a failed update rolls the stack back, the previous
version keeps serving, and the alert topic hears of it.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.catalog import naming
from infra.config import MonitoringConfig, PlatformConfig, ServingConfig
from stacks.base import PlatformStack
from stacks.serving import endpoint as endpoints
from stacks.serving.context import ServingContext, ServingInputs
from stacks.serving.deploy_role import DeployRole
from stacks.serving.deployment import rollback_alarms
from stacks.serving.model import ServedModel, predictable_name_prefix
from stacks.serving.monitors import ExplainabilityJob, MonitorJobs, build_monitors
from stacks.serving.monitors.explainability import grant_promotion
from stacks.serving.monitors.platform import PlatformMonitor
from stacks.serving.pipeline_outputs import PipelineOutputs
from stacks.serving.promoted import PromotedState
from stacks.serving.promotion import Promotion, failed_promotion_alerts
from stacks.serving.scaling import autoscaling


class ServingStack(PlatformStack):
    """The endpoint of the approved version (model, config, alarms, scaling), its monitors and its promotion path."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        serving: ServingConfig,
        monitoring: MonitoringConfig | None,
        inputs: ServingInputs,
        **kwargs: Any,
    ) -> None:
        """`serving` and `monitoring` are the config's sections (no monitors without the latter)."""
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.endpoint_name = naming.endpoint(config)
        group = naming.model_package_group(config)
        # Versions of this environment's registry, or of the source account's (serving.model_source).
        registry = naming.registry_account(config, self.account)
        artifacts = s3.Bucket.from_bucket_attributes(
            self,
            "ArtifactsBucket",
            bucket_arn=cdk.Fn.import_value(naming.export_name(config, "artifacts-bucket-arn")),
            bucket_name=cdk.Fn.import_value(naming.export_name(config, "artifacts-bucket-name")),
        )
        ctx = ServingContext(
            stack=self,
            config=config,
            serving=serving,
            inputs=inputs,
            endpoint_name=self.endpoint_name,
            packages=f"arn:{self.partition}:sagemaker:{self.region}:{registry}:model-package/{group}/*",
            artifacts=artifacts,
            outputs=PipelineOutputs(self, config=config, artifacts=artifacts, source=serving.model_source),
            state=PromotedState(self, config=config, group=group),
            subnet_ids=inputs.placement.subnet_ids,
        )

        name_prefix = predictable_name_prefix(self.endpoint_name, config.network, monitoring)
        self.model = ServedModel(ctx, name_prefix=name_prefix)
        self.endpoint_config = endpoints.endpoint_config(ctx, self.model)
        self.alarms = rollback_alarms(ctx)
        self.endpoint = endpoints.endpoint(ctx, self.endpoint_config, self.alarms)
        self.scaling = autoscaling(ctx, self.endpoint)
        self.monitors: MonitorJobs | None = None
        self.platform_monitor: PlatformMonitor | None = None
        explainability: ExplainabilityJob | None = None
        if monitoring is not None and monitoring.engine == "platform":
            self.platform_monitor = PlatformMonitor(ctx, monitoring)
        elif monitoring is not None:
            self.monitors, explainability = build_monitors(
                ctx, monitoring, endpoint=self.endpoint, model_name_prefix=name_prefix
            )
        self.deploy_role = DeployRole(ctx, model_role=self.model.role, jobs=self.monitors).role
        self.promotion = Promotion(ctx, group=group, deploy_role=self.deploy_role, explainability=explainability)
        if explainability is not None:
            grant_promotion(ctx, self.promotion.function, explainability)
        self.rollback_rule = failed_promotion_alerts(ctx, self.promotion.function)

        cdk.CfnOutput(self, "EndpointName", value=self.endpoint_name, condition=ctx.state.has_model)
        cdk.CfnOutput(
            self,
            "PromotionFunction",
            value=self.promotion.function.function_name,
            description="Reacts to approvals in the model registry by setting ModelPackageArn",
        )
