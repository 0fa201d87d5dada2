"""The Training stack: composes the model registry, the pipeline with its roles and scripts, workspace and features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.catalog.naming import export_name
from infra.config import DataLakeConfig, PlatformConfig, TrainingConfig
from pipelines import definition as pipeline
from stacks.base import PlatformStack
from stacks.training.context import TrainingContext
from stacks.training.feature_store import FeatureStore
from stacks.training.inputs import TrainingInputs
from stacks.training.pipeline import PipelineRoles, definition_body, image_registries, training_pipeline
from stacks.training.registry import model_package_group, share_registry
from stacks.training.roles import pipeline_role, processing_role, training_role
from stacks.training.scripts import step_scripts
from stacks.training.spec import pipeline_spec
from stacks.training.workspace import workspace


class TrainingStack(PlatformStack):
    """The model registry and the training pipeline that fills it, with least-privilege job roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        training: TrainingConfig,
        data_lake: DataLakeConfig,  # the dataset the pipeline trains on, from the lake's curated zone
        inputs: TrainingInputs,
        definitions: Path | None = pipeline.SHIPPED,  # where the pipeline definition is stored (pipeline.cached)
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        artifacts, curated = (self._lake_bucket(config, kind) for kind in ("artifacts", "curated"))
        spec = pipeline_spec(config, training, data_lake.dataset, subnets=len(inputs.placement.subnet_ids))
        ctx = TrainingContext(
            stack=self,
            config=config,
            training=training,
            dataset=data_lake.dataset,
            inputs=inputs,
            spec=spec,
            artifacts=artifacts,
            curated=curated,
        )
        self.model_package_group = model_package_group(ctx)
        self.approval_forwarding: events.CfnRule | None = None
        if training.model_consumers:
            self.approval_forwarding = share_registry(ctx, self.model_package_group)
        scripts = step_scripts(self, spec)
        registries, self.image_registries = image_registries(ctx)
        self.processing_role = processing_role(ctx, scripts, registries)
        self.training_role = training_role(ctx, scripts, registries)
        self.pipeline_role = pipeline_role(ctx, self.model_package_group, [self.processing_role, self.training_role])
        self.pipeline = training_pipeline(
            ctx,
            definition_body(ctx, definitions),
            roles=PipelineRoles(
                pipeline=self.pipeline_role, processing=self.processing_role, training=self.training_role
            ),
            scripts=scripts,
            registries=registries,
        )
        self.spec = spec
        self.workspace = workspace(ctx, self.training_role, self.pipeline)
        self.tracking_server, self.studio = self.workspace.tracking_server, self.workspace.studio
        self.feature_store = None
        if training.feature_store is not None:
            self.feature_store = FeatureStore(
                self,
                "Features",
                config=config,
                training=training,
                store=training.feature_store,
                dataset=data_lake.dataset,
                curated=curated,
                data_key=inputs.data_key,
            )

    def _lake_bucket(self, config: PlatformConfig, kind: str) -> s3.IBucket:
        """A bucket of the DataLake stack, from its named exports."""
        return s3.Bucket.from_bucket_attributes(
            self,
            f"{kind.capitalize()}Bucket",
            bucket_arn=cdk.Fn.import_value(export_name(config, f"{kind}-bucket-arn")),
            bucket_name=cdk.Fn.import_value(export_name(config, f"{kind}-bucket-name")),
        )
