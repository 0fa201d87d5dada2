"""What must never be allowed is denied, each by the policy meant to deny it.

Another account's principal (even one with AdministratorAccess at home), a role outside its own
prefix, a job or model without VPC, isolation or keys (the guardrail), an upload without the
artifacts key or without TLS (the bucket policy), a promotion reaching beyond its stack.
"""

from __future__ import annotations

import pytest

from tests.access.calls import Call, decide, failures
from tests.access.environments import NAMES, Deployed
from tests.access.lambda_calls import promotion_function
from tests.access.resolver import PARTITION, Environment, Resource
from tests.access.world import AWS_MANAGED, Policy, Principal, World, build_world

ENVIRONMENTS = list(NAMES)
OUTSIDER_ACCOUNT = "999999999999"
GUARDRAIL = "GuardrailPolicy"


def _resource(deployed: Deployed, stack_suffix: str, logical_prefix: str) -> Resource:
    found = [
        r
        for r in deployed.environment.resources()
        if r.stack.endswith(stack_suffix) and r.logical_id.startswith(logical_prefix)
    ]
    assert found, f"{deployed.name}: no {logical_prefix}* in the {stack_suffix} stack"
    return found[0]


def _requires(deployed: Deployed, *suffixes: str) -> None:
    missing = [s for s in suffixes if not any(stack.endswith(s) for stack in deployed.environment.stacks)]
    if missing:
        pytest.skip(f"{deployed.name} has no {', '.join(missing)} stack")


def _role(deployed: Deployed, stack_suffix: str, logical_prefix: str) -> str:
    return _resource(deployed, stack_suffix, logical_prefix).arn


def _bucket(deployed: Deployed, logical_prefix: str) -> Resource:
    return _resource(deployed, "-DataLake", logical_prefix)


def _key_of(bucket: Resource) -> str:
    rules = bucket.properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    return str(rules[0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"])


def _outsider(deployed: Deployed) -> World:
    """An account of its own with an administrator role: identity policies at home allow everything."""
    env = Environment("outsider", OUTSIDER_ACCOUNT, deployed.environment.region, stacks={})
    admin = Policy("AdministratorAccess", AWS_MANAGED["AdministratorAccess"], "AWS managed")
    arn = f"arn:{PARTITION}:iam::{OUTSIDER_ACCOUNT}:role/admin"
    return build_world(env, [Principal(arn=arn, name="admin", origin="another account", policies=[admin])])


def _deny(principal: str, action: str, resource: str, why: str, **kwargs) -> Call:
    return Call(principal, action, resource, why, expect="Denied", **kwargs)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_another_accounts_administrator_reaches_nothing(env_name, environments, simulator):
    deployed = environments[env_name]
    outsider = _outsider(deployed)
    admin = next(iter(outsider.principals))
    artifacts = _bucket(deployed, "BucketsArtifacts")
    curated = _bucket(deployed, "BucketsCurated")
    topic = _resource(deployed, "-Security", "AlertsTopic")
    groups = deployed.environment.resources("AWS::SageMaker::ModelPackageGroup")
    group = groups[0] if groups else None
    calls = [
        _deny(admin, "s3:GetObject", f"{artifacts.arn}/pipelines/x/model.tar.gz", "read the models"),
        _deny(admin, "s3:PutObject", f"{artifacts.arn}/pipelines/x/model.tar.gz", "replace a model"),
        _deny(admin, "s3:GetObject", f"{curated.arn}/transactions/part-0.parquet", "read the curated data"),
        _deny(admin, "kms:Decrypt", _key_of(artifacts), "decrypt with the artifacts key"),
        _deny(admin, "sns:Publish", topic.arn, "publish fake alerts"),
    ]
    if group is not None:
        calls.append(
            _deny(
                admin,
                "sagemaker:DescribeModelPackage",
                f"{group.arn.replace('-group/', '/')}/1",
                "read a registered version",
                resource_account=deployed.environment.account,
            )
        )
    worlds = {outsider.account: outsider, deployed.world.account: deployed.world}
    problems = failures(decide(calls, outsider, worlds, simulator), outsider)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_roles_stay_inside_their_prefix(env_name, environments, simulator):
    deployed = environments[env_name]
    _requires(deployed, "-Training", "-Retraining")
    training = _role(deployed, "-Training", "TrainingRole")
    monitor = _role(deployed, "-Serving", "MonitorRole")
    retraining = _role(deployed, "-Retraining", "RetrainingRole")
    artifacts = _bucket(deployed, "BucketsArtifacts")
    raw = _bucket(deployed, "BucketsRaw")
    env = deployed.environment
    calls = [
        _deny(
            training,
            "s3:GetObject",
            f"{artifacts.arn}/pipelines/another-pipeline/model.tar.gz",
            "another pipeline's models",
        ),
        _deny(training, "s3:GetObject", f"{raw.arn}/raw/fraud/new.csv", "unclassified raw data"),
        _deny(
            monitor,
            "s3:PutObject",
            f"{artifacts.arn}/pipelines/{deployed.config.prefix}-training/runs/1/model.tar.gz",
            "overwrite a model",
            context={
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": _key_of(artifacts),
            },
        ),
        _deny(
            retraining,
            "sagemaker:StartPipelineExecution",
            f"arn:{PARTITION}:sagemaker:{env.region}:{env.account}:pipeline/another-pipeline",
            "start another pipeline",
        ),
    ]
    problems = failures(decide(calls, deployed.world, deployed.worlds, simulator), deployed.world)
    assert problems == [], "\n".join(problems)


_KEYS: dict[str, dict[str, object]] = {}


def _job_request_keys(deployed: Deployed) -> dict[str, object]:
    """The keys of a compliant job request in this environment (from its pipeline's first processing step)."""
    from tests.access.definitions import training_pipeline
    from tests.access.jobs import pipeline_jobs
    from tests.access.sagemaker_context import condition_keys

    if deployed.name not in _KEYS:
        pipeline = training_pipeline(deployed.environment)
        assert pipeline is not None, f"{deployed.name} has no training pipeline"
        jobs, _ = pipeline_jobs(deployed, pipeline)
        _KEYS[deployed.name] = condition_keys("CreateProcessingJob", jobs[0].request)
    return dict(_KEYS[deployed.name])


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("action", "drop", "override"),
    [
        ("sagemaker:CreateTrainingJob", ("sagemaker:VpcSubnets",), {}),
        ("sagemaker:CreateProcessingJob", ("sagemaker:VpcSecurityGroupIds",), {}),
        ("sagemaker:CreateProcessingJob", (), {"sagemaker:NetworkIsolation": "false"}),
        ("sagemaker:CreateTrainingJob", ("sagemaker:NetworkIsolation",), {}),
        ("sagemaker:CreateHyperParameterTuningJob", (), {"sagemaker:InterContainerTrafficEncryption": "false"}),
        ("sagemaker:CreateTrainingJob", ("sagemaker:OutputKmsKey", "sagemaker:OutputKmsKeyArn"), {}),
        ("sagemaker:CreateProcessingJob", ("sagemaker:VolumeKmsKey", "sagemaker:VolumeKmsKeyArn"), {}),
    ],
    ids=[
        "no-subnets",
        "no-security-groups",
        "isolation-off",
        "isolation-unset",
        "no-encryption",
        "no-output-key",
        "no-volume-key",
    ],
)
def test_the_guardrail_denies_a_job_without_vpc_isolation_or_keys(
    env_name, action, drop, override, environments, simulator
):
    deployed = environments[env_name]
    _requires(deployed, "-Training")
    pipeline_role = _role(deployed, "-Training", "PipelineRole")
    context = {k: v for k, v in _job_request_keys(deployed).items() if k not in drop} | override
    env = deployed.environment
    kind = {"sagemaker:CreateTrainingJob": "training-job", "sagemaker:CreateProcessingJob": "processing-job"}
    job = (
        f"arn:{PARTITION}:sagemaker:{env.region}:{env.account}:{kind.get(action, 'hyper-parameter-tuning-job')}/unsafe"
    )
    call = _deny(pipeline_role, action, job, f"a job with {drop or override}", context=context, denied_by=GUARDRAIL)
    # The same request with every key is allowed: the deny is the condition's, not a missing grant.
    allowed = Call(pipeline_role, action, job, "the compliant request", context=dict(_job_request_keys(deployed)))
    world = deployed.world
    problems = failures(decide([call, allowed], world, deployed.worlds, simulator), world)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_the_service_role_cannot_create_a_model_outside_the_vpc(env_name, environments, simulator):
    deployed = environments[env_name]
    (model,) = deployed.environment.resources("AWS::SageMaker::Model")
    deploy = _role(deployed, "-Serving", "DeployRole")
    from tests.access.sagemaker_context import condition_keys

    keys = condition_keys("AWS::SageMaker::Model", model.properties)
    unsafe = [
        {k: v for k, v in keys.items() if k != "sagemaker:VpcSubnets"},
        keys | {"sagemaker:NetworkIsolation": "false"},
    ]
    calls = [
        _deny(deploy, "sagemaker:CreateModel", model.arn, f"a model with {c}", context=c, denied_by=GUARDRAIL)
        for c in unsafe
    ]
    world = deployed.world
    problems = failures(decide(calls, world, deployed.worlds, simulator), world)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("context", "denied_by"),
    [
        ({"s3:x-amz-server-side-encryption": "AES256"}, "DenyOtherEncryption"),
        (
            {
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:111111111111:key/another",
            },
            "DenyOtherKmsKeys",
        ),
        ({"aws:SecureTransport": "false"}, "bucket policy"),
    ],
    ids=["sse-s3", "another-key", "no-tls"],
)
def test_an_upload_without_the_artifacts_key_or_tls_is_denied(env_name, context, denied_by, environments, simulator):
    deployed = environments[env_name]
    _requires(deployed, "-Training")
    training = _role(deployed, "-Training", "TrainingRole")
    artifacts = _bucket(deployed, "BucketsArtifacts")
    key = f"{artifacts.arn}/pipelines/{deployed.config.prefix}-training/runs/1/output/model.tar.gz"
    call = _deny(training, "s3:PutObject", key, "an upload", context=context, denied_by=denied_by)
    world = deployed.world
    problems = failures(decide([call], world, deployed.worlds, simulator), world)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_a_promotion_reaches_only_its_own_stack_and_endpoint(env_name, environments, simulator):
    deployed = environments[env_name]
    env = deployed.environment
    promotion = promotion_function(deployed).properties["Role"]
    deploy = _role(deployed, "-Serving", "DeployRole")
    other = f"arn:{PARTITION}:cloudformation:{env.region}:{env.account}:stack/{deployed.config.prefix}-DataLake/*"
    calls = [
        _deny(promotion, "cloudformation:UpdateStack", other, "update another stack"),
        _deny(
            promotion,
            "ssm:PutParameter",
            f"arn:{PARTITION}:ssm:{env.region}:{env.account}:parameter/other/serving/x",
            "write another environment's state",
        ),
        _deny(
            promotion,
            "iam:PassRole",
            _role(deployed, "-Serving", "ModelRole"),
            "pass another role",
            context={"iam:PassedToService": "cloudformation.amazonaws.com"},
        ),
        _deny(
            deploy,
            "sagemaker:DeleteEndpoint",
            f"arn:{PARTITION}:sagemaker:{env.region}:{env.account}:endpoint/other",
            "delete another endpoint",
        ),
        _deny(
            deploy,
            "iam:PassRole",
            promotion,
            "pass the promotion role to SageMaker",
            context={"iam:PassedToService": "sagemaker.amazonaws.com"},
        ),
    ]
    world = deployed.world
    problems = failures(decide(calls, world, deployed.worlds, simulator), world)
    assert problems == [], "\n".join(problems)


def test_a_guardrail_detached_from_the_pipeline_role_fails_the_must_deny_contract(environments, simulator):
    """A reviewer's one-line change (the guardrail no longer attached where jobs are created) cannot pass:
    the job without subnets is then allowed, and the contract says which role and which policy."""
    deployed = environments["dev"]
    principal = deployed.world.principal(_role(deployed, "-Training", "PipelineRole"))
    attached = list(principal.policies)
    principal.policies[:] = [p for p in attached if GUARDRAIL not in p.name]
    assert len(principal.policies) < len(attached), "the pipeline role has the guardrail attached"
    try:
        with pytest.raises(AssertionError) as failed:
            test_the_guardrail_denies_a_job_without_vpc_isolation_or_keys(
                "dev", "sagemaker:CreateTrainingJob", ("sagemaker:VpcSubnets",), {}, environments, simulator
            )
    finally:
        principal.policies[:] = attached
    message = str(failed.value)
    assert (
        f"{principal.name} ({principal.origin}) should be denied by {GUARDRAIL} sagemaker:CreateTrainingJob" in message
    )
    assert "but it is Allowed" in message, message
