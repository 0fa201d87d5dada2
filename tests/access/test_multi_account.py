"""Across the delivery's accounts: each serving stage's roles read the source stage's registry, artifacts and
key through the stage's own endpoints, approvals are forwarded through both buses, and nothing else crosses.

Every request is judged on both sides: the caller's identity policies and VPC endpoint in its
stage, the resource's policy (model package group, bucket, key, event bus) in the source's.
"""

from __future__ import annotations

import pytest

from tests.access.calls import Call, Network, decide, failures
from tests.access.definitions import training_pipeline
from tests.access.environments import Deployed
from tests.access.lambda_calls import promotion_function
from tests.access.resolver import Resource

SERVING_STAGES = ["stage:staging", "stage:prod"]
SOURCE = "stage:dev"
EXECUTION = "execution-7"


def _only(deployed: Deployed, kind: str, stack_suffix: str) -> Resource:
    (found,) = [r for r in deployed.environment.resources(kind) if r.stack.endswith(stack_suffix)]
    return found


def _artifacts(source: Deployed) -> tuple[Resource, str, list[str]]:
    """The source's artifacts bucket, its key ARN and the key's aliases."""
    bucket = next(b for b in source.environment.resources("AWS::S3::Bucket") if "Artifacts" in b.logical_id)
    rules = bucket.properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key = rules[0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    aliases = [
        a.properties["AliasName"]
        for a in source.environment.resources("AWS::KMS::Alias")
        if a.properties["TargetKeyId"] == key
    ]
    return bucket, key, aliases


def _check(deployed: Deployed, calls: list[Call], simulator) -> list[str]:
    return failures(decide(calls, deployed.world, deployed.worlds, simulator), deployed.world)


@pytest.mark.parametrize("stage", SERVING_STAGES)
def test_a_serving_stage_reads_the_source_registry_artifacts_and_key(stage, environments, simulator):
    deployed, source = environments[stage], environments[SOURCE]
    env, src = deployed.environment, source.environment
    bucket, key, aliases = _artifacts(source)
    group = _only(source, "AWS::SageMaker::ModelPackageGroup", "-Training")
    package = group.arn.replace(":model-package-group/", ":model-package/") + "/7"
    pipeline = training_pipeline(src).name
    runs = f"{bucket.arn}/pipelines/{pipeline}/runs/{EXECUTION}"
    model = _only(deployed, "AWS::SageMaker::Model", "-Serving")
    model_role = model.properties["ExecutionRoleArn"]
    network = Network(tuple(model.properties["VpcConfig"]["Subnets"]))
    function = promotion_function(deployed)
    promotion = function.properties["Role"]
    via = {
        "kms:ViaService": f"s3.{env.region}.amazonaws.com",
        "kms:CallerAccount": env.account,
        "kms:ResourceAliases": aliases,
    }
    calls = [
        Call(promotion, "sagemaker:DescribeModelPackage", package, "promotion reads the approved version"),
        Call(
            model_role,
            "s3:GetObject",
            f"{runs}/train/job/output/model.tar.gz",
            "the model's artifacts",
            network=network,
        ),
        Call(model_role, "kms:Decrypt", key, "the model's artifacts, decrypted through S3", context=via),
    ]
    monitoring = deployed.config.monitoring
    if monitoring is not None and monitoring.explainability is not None:  # the model_monitor engine's
        calls += [
            Call(
                promotion,
                "s3:GetObject",
                f"{runs}/explainability/monitoring/analysis_config.json",
                "promotion reads the registered explainability template",
                network=Network(tuple(function.properties["VpcConfig"]["SubnetIds"])),
            ),
            Call(promotion, "kms:Decrypt", key, "the template, decrypted through S3", context=via),
        ]
    problems = _check(deployed, calls, simulator)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("stage", SERVING_STAGES)
def test_approvals_are_forwarded_through_both_buses(stage, environments, simulator):
    deployed, source = environments[stage], environments[SOURCE]
    rule = _only(source, "AWS::Events::Rule", "-Training")
    (target,) = [t for t in rule.properties["Targets"] if f":{deployed.environment.account}:" in t["Arn"]]
    pattern = rule.properties["EventPattern"]
    context = {"events:source": pattern["source"][0], "events:detail-type": pattern["detail-type"][0]}
    call = Call(
        target["RoleArn"], "events:PutEvents", target["Arn"], f"{rule.name} forwards an approval", context=context
    )
    problems = failures(decide([call], source.world, source.worlds, simulator), source.world)
    assert problems == [], "\n".join(problems)
    # What the stage's own rule then admits: only the source account's events of that kind.
    other = Call(
        target["RoleArn"],
        "events:PutEvents",
        target["Arn"],
        "another kind of event",
        context={"events:source": "aws.s3", "events:detail-type": "Object Created"},
        expect="Denied",
    )
    problems = failures(decide([other], source.world, source.worlds, simulator), source.world)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("stage", SERVING_STAGES)
def test_a_serving_stage_reaches_nothing_else_of_the_source(stage, environments, simulator):
    deployed, source = environments[stage], environments[SOURCE]
    bucket, key, _ = _artifacts(source)
    model = _only(deployed, "AWS::SageMaker::Model", "-Serving")
    model_role = model.properties["ExecutionRoleArn"]
    network = Network(tuple(model.properties["VpcConfig"]["Subnets"]))
    curated = next(b for b in source.environment.resources("AWS::S3::Bucket") if "Curated" in b.logical_id)
    group = _only(source, "AWS::SageMaker::ModelPackageGroup", "-Training")
    calls = [
        Call(
            model_role,
            "s3:GetObject",
            f"{bucket.arn}/monitoring/other/x.json",
            "outside the pipeline's prefix",
            network=network,
            expect="Denied",
        ),
        Call(
            model_role,
            "s3:PutObject",
            f"{bucket.arn}/pipelines/x/model.tar.gz",
            "replace a model",
            network=network,
            expect="Denied",
            context={
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": key,
            },
        ),
        Call(
            model_role,
            "s3:GetObject",
            f"{curated.arn}/transactions/part-0.parquet",
            "the source's training data",
            network=network,
            expect="Denied",
        ),
        Call(
            model_role,
            "sagemaker:UpdateModelPackage",
            group.arn.replace("-group/", "/") + "/7",
            "approve a version in the source",
            expect="Denied",
        ),
    ]
    problems = _check(deployed, calls, simulator)
    assert problems == [], "\n".join(problems)
