"""Read access to the training pipeline's outputs: in this account's artifacts bucket, or the model source's."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.catalog import naming
from infra.config import PeerEnvironment, PlatformConfig


class PipelineOutputs:
    """Grants on the models, baselines and configs the training pipeline writes under pipelines/<name>/.

    Serving from another account's registry (serving.model_source), the objects are in that account's
    artifacts bucket, whose policy and key policy grant this stack's roles by name.
    """

    def __init__(
        self, stack: cdk.Stack, *, config: PlatformConfig, artifacts: s3.IBucket, source: PeerEnvironment | None
    ) -> None:
        """`artifacts` is this environment's artifacts bucket; `source` the environment whose registry it serves."""
        self.stack = stack
        self.config = config
        self.artifacts = artifacts
        self.source = source

    def role_name(self, kind: str) -> str | None:
        """Roles the source account's bucket and key policies grant by ARN get fixed names; others CDK's."""
        return naming.serving_role(self.config.project, self.config.environment, kind) if self.source else None

    def grant_read(self, role: iam.Role) -> str:
        """Let `role` read the pipeline's outputs; returns the object ARN pattern granted.

        From the source account: objects under the pipeline's prefix in buckets that account owns,
        decrypted with its artifacts key through S3.
        """
        pipeline = naming.training_pipeline(self.config)
        if self.source is None:
            models = self.artifacts.arn_for_objects(f"pipelines/{pipeline}/*")
            role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[models]))
            return models
        models = f"arn:{self.stack.partition}:s3:::*/pipelines/{pipeline}/*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SourceModels",
                actions=["s3:GetObject"],
                resources=[models],
                conditions={"StringEquals": {"s3:ResourceAccount": self.source.account}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SourceArtifactsKey",
                actions=["kms:Decrypt"],
                resources=self.key_wildcards(),
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{self.stack.region}.amazonaws.com"},
                    "ForAnyValue:StringEquals": {
                        "kms:ResourceAliases": f"alias/{naming.registry_prefix(self.config)}-artifacts"
                    },
                },
            )
        )
        return models

    def grant_list(self, role: iam.Role) -> str:
        """Let `role` list keys under the pipeline's prefix (S3Prefix inputs are listed before they are read);
        returns the bucket ARN (pattern) granted."""
        prefix = {"s3:prefix": f"pipelines/{naming.training_pipeline(self.config)}/*"}
        if self.source is None:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"], resources=[self.artifacts.bucket_arn], conditions={"StringLike": prefix}
                )
            )
            return self.artifacts.bucket_arn
        buckets = f"arn:{self.stack.partition}:s3:::*"
        role.add_to_policy(
            iam.PolicyStatement(
                sid="SourceModelsListing",
                actions=["s3:ListBucket"],
                resources=[buckets],
                conditions={"StringEquals": {"s3:ResourceAccount": self.source.account}, "StringLike": prefix},
            )
        )
        return buckets

    def key_wildcards(self) -> list[str]:
        """The source's artifacts key, by account: its id is generated there (its alias is a condition)."""
        if self.source is None:
            return []
        return [f"arn:{self.stack.partition}:kms:{self.stack.region}:{self.source.account}:key/*"]
