"""The model promotion Lambda (lambdas/promotion/handler.py) against moto: SageMaker, CloudFormation, SNS, SQS."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.promotion.handler import (
    ENVIRONMENT,
    ConfigurationError,
    PromotionError,
    Settings,
    StackBusy,
    client_request_token,
    handler,
    promote,
)

REGION, ACCOUNT = "us-east-1", "123456789012"
GROUP = "mlp-dev-fraud"
STACK = "mlp-dev-Serving"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlp-dev-deploy"
EVENT_ID = "844e2571-85d4-695f-b930-0153b71dcb42"
INSTANCE_TYPE = "ml.g5.xlarge"  # not the template default, so a reset to the default shows
TEMPLATE = {
    "Parameters": {
        "ModelPackageArn": {"Type": "String", "Default": ""},
        "InstanceType": {"Type": "String", "Default": "ml.m5.large"},
    },
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}
SPEC = {
    "Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fraud:1"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}
# One session for the module: it loads each service model once (a new session per test costs ~0.3 s).
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def package_event(arn: str, status: str, *, group: str = GROUP, event_id: str = EVENT_ID) -> dict[str, Any]:
    """A model package state change as EventBridge delivers it (SageMaker developer guide's example)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-02-24T17:00:14Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": int(arn.rsplit("/", 1)[-1]),
            "ModelPackageArn": arn,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": status,
            "InferenceSpecification": SPEC,
        },
    }


@dataclass
class World:
    """moto state: a model package group, the Serving stack, an alert topic read through a queue."""

    cloudformation: Any
    sagemaker: Any
    sns: Any
    sqs: Any
    s3: Any
    settings: Settings
    queue_url: str
    updates: list[dict[str, Any]] = field(default_factory=list)

    def package(self, status: str, group: str = GROUP) -> str:
        return self.sagemaker.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus=status, InferenceSpecification=SPEC
        )["ModelPackageArn"]

    def run(self, event: Any) -> dict[str, Any]:
        clients = {"cloudformation": self.cloudformation, "sagemaker": self.sagemaker, "sns": self.sns, "s3": self.s3}
        return promote(event, **clients, settings=self.settings)

    def parameters(self) -> dict[str, str]:
        stack = self.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def alerts(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    """Clients shared by the module's tests: moto routes a client's calls while any mock_aws is active."""
    return {name: SESSION.client(name) for name in ("sagemaker", "cloudformation", "sns", "sqs", "s3")}


@pytest.fixture
def aws(clients, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sagemaker, cloudformation, sns, sqs, s3 = (
            clients[name] for name in ("sagemaker", "cloudformation", "sns", "sqs", "s3")
        )
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[{"ParameterKey": "InstanceType", "ParameterValue": INSTANCE_TYPE}],
        )
        topic = sns.create_topic(Name="mlp-dev-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        settings = Settings(STACK, "ModelPackageArn", GROUP, ROLE, topic)
        world = World(cloudformation, sagemaker, sns, sqs, s3, settings, queue_url)

        # Records the arguments of every UpdateStack call the handler makes.
        def record(params: dict[str, Any], **_: Any) -> None:
            world.updates.append(dict(params))

        cloudformation.meta.events.register("provide-client-params.cloudformation.UpdateStack", record)
        yield world
        cloudformation.meta.events.unregister("provide-client-params.cloudformation.UpdateStack", record)


def log_lines(caplog) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "promotion"]


def test_an_approved_package_becomes_the_stack_parameter(aws, caplog):
    arn = aws.package("Approved")
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    assert result["previous_model_package_arn"] == ""
    assert aws.parameters() == {"ModelPackageArn": arn, "InstanceType": INSTANCE_TYPE}
    stack = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["RoleARN"] == ROLE
    (update,) = aws.updates
    assert update["UsePreviousTemplate"] is True
    assert update["ClientRequestToken"] == f"promote-{EVENT_ID}"
    assert update["Capabilities"] == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    assert log_lines(caplog) == [result]

    # The next approval names the package it replaces, for a rollback by hand.
    newer = aws.package("Approved")
    result = aws.run(package_event(newer, "Approved", event_id="second"))
    assert (result["action"], result["previous_model_package_arn"]) == ("updated", arn)
    assert arn in result["reason"]
    assert aws.parameters() == {"ModelPackageArn": newer, "InstanceType": INSTANCE_TYPE}


def test_a_duplicate_event_updates_the_stack_once(aws):
    arn = aws.package("Approved")
    event = package_event(arn, "Approved")
    assert aws.run(event)["action"] == "updated"
    second = aws.run(event)
    assert second["action"] == "unchanged"
    assert "duplicate" in second["reason"]
    assert len(aws.updates) == 1
    assert aws.parameters()["ModelPackageArn"] == arn


def test_an_event_of_another_group_changes_nothing(aws, caplog):
    aws.sagemaker.create_model_package_group(ModelPackageGroupName="someone-else")
    arn = aws.package("Approved", group="someone-else")
    result = aws.run(package_event(arn, "Approved", group="someone-else"))
    assert result["action"] == "ignored"
    assert "'someone-else'" in result["reason"] and f"'{GROUP}'" in result["reason"]
    assert aws.updates == [] and aws.alerts() == []
    assert aws.parameters()["ModelPackageArn"] == ""
    (line,) = log_lines(caplog)
    assert (line["action"], line["reason"], line["model_package_arn"]) == ("ignored", result["reason"], arn)


def test_a_package_of_another_account_changes_nothing(aws):
    """Serving from a source account's registry, a same-named group elsewhere (here: moto's account) is ignored."""
    aws.settings = dataclasses.replace(aws.settings, model_package_account="210987654321")
    arn = aws.package("Approved")
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "ignored"
    assert result["reason"] == f"model package account {ACCOUNT} is not 210987654321, the promoted registry's"
    assert aws.updates == [] and aws.parameters()["ModelPackageArn"] == ""
    # The same package is promoted when the registry's account is the one configured.
    aws.settings = dataclasses.replace(aws.settings, model_package_account=ACCOUNT)
    assert aws.run(package_event(arn, "Approved", event_id="again"))["action"] == "updated"
    assert aws.parameters()["ModelPackageArn"] == arn


def test_the_registry_account_comes_from_the_environment():
    environ = {variable: "x" for variable in ENVIRONMENT.values()}
    assert Settings.from_env(environ).model_package_account == ""
    assert Settings.from_env({**environ, "MODEL_PACKAGE_ACCOUNT": "210987654321"}).model_package_account == (
        "210987654321"
    )


@pytest.mark.parametrize("serving", [False, True], ids=["no-model-yet", "another-model-serving"])
def test_a_rejection_alerts_and_leaves_the_stack(aws, serving):
    serving_arn = aws.package("Approved")
    if serving:
        aws.run(package_event(serving_arn, "Approved", event_id="earlier"))
    rejected = aws.package("Rejected")
    result = aws.run(package_event(rejected, "Rejected"))
    assert result["action"] == "rejected"
    assert aws.parameters()["ModelPackageArn"] == (serving_arn if serving else "")
    assert len(aws.updates) == (1 if serving else 0)
    (alert,) = aws.alerts()
    assert alert["Subject"] == f"Model package {GROUP} version 2 rejected"
    assert rejected in alert["Message"]
    assert f"keeps serving: {serving_arn if serving else 'no model yet'}." in alert["Message"]
    assert "WARNING" not in alert["Message"]


def test_rejecting_the_serving_package_warns_that_it_still_serves(aws):
    arn = aws.package("Approved")
    aws.run(package_event(arn, "Approved"))
    aws.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    assert aws.run(package_event(arn, "Rejected", event_id="later"))["action"] == "rejected"
    (alert,) = aws.alerts()
    assert "WARNING: the rejected package is the one serving now" in alert["Message"]
    assert aws.parameters()["ModelPackageArn"] == arn


def test_the_longest_group_name_fits_the_alert_subject(aws):
    group = "g" * 63
    aws.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    aws.settings = Settings(STACK, "ModelPackageArn", group, ROLE, aws.settings.alert_topic_arn)
    arn = aws.package("Rejected", group=group)
    assert aws.run(package_event(arn, "Rejected", group=group))["action"] == "rejected"
    (alert,) = aws.alerts()
    assert alert["Subject"] == f"Model package {group} version 1 rejected"
    assert len(alert["Subject"]) <= 100


def test_a_pending_package_is_ignored(aws, caplog):
    arn = aws.package("PendingManualApproval")
    result = aws.run(package_event(arn, "PendingManualApproval"))
    assert result["action"] == "ignored"
    assert "'PendingManualApproval'" in result["reason"]
    assert aws.updates == [] and aws.alerts() == []
    assert aws.parameters()["ModelPackageArn"] == ""
    assert [line["reason"] for line in log_lines(caplog)] == [result["reason"]]


def test_an_approval_reverted_before_the_promotion_is_ignored(aws):
    arn = aws.package("Approved")
    aws.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "ignored"
    assert "Rejected now" in result["reason"]
    assert aws.updates == []
    assert aws.parameters()["ModelPackageArn"] == ""


ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1"


def _without(key: str, *, detail: bool = False) -> dict[str, Any]:
    event = package_event(ARN, "Approved")
    del (event["detail"] if detail else event)[key]
    return event


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = package_event(ARN, "Approved")
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (None, "event is a NoneType, not an object"),
        ([package_event(ARN, "Approved")], "event is a list, not an object"),
        ("{}", "event is a str, not an object"),
        (_with(("source",), "aws.s3"), "source is 'aws.s3', expected 'aws.sagemaker'"),
        (_with(("detail-type",), "SageMaker Model State Change"), "detail-type is 'SageMaker Model State Change'"),
        (_without("id"), "event has no id"),
        (_without("detail"), "event has no detail object"),
        (_with(("detail",), "Approved"), "event has no detail object"),
        (_without("ModelPackageArn", detail=True), "detail is missing ModelPackageArn"),
        (_with(("detail",), {}), "detail is missing ModelPackageGroupName, ModelPackageArn, ModelApprovalStatus"),
        (_with(("detail", "ModelApprovalStatus"), ""), "detail is missing ModelApprovalStatus"),
        (
            _with(("detail", "ModelPackageArn"), f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/fraud"),
            "is not a SageMaker model package ARN",
        ),
    ],
    ids=[
        "none",
        "list",
        "string",
        "source",
        "detail-type",
        "no-id",
        "no-detail",
        "detail-string",
        "no-arn",
        "empty-detail",
        "empty-status",
        "endpoint-arn",
    ],
)
def test_a_malformed_event_is_ignored_without_an_aws_call(event, reason, caplog):
    settings = Settings(STACK, "ModelPackageArn", GROUP, ROLE, "arn:aws:sns:us-east-1:123456789012:alerts")
    # None for a client: any AWS call would raise AttributeError.
    result = promote(event, cloudformation=None, sagemaker=None, sns=None, settings=settings)
    assert result["action"] == "ignored"
    assert reason in result["reason"]
    (line,) = log_lines(caplog)
    assert line["action"] == "ignored" and reason in line["reason"]


def _stubbed_stack(status: str, value: str = "") -> tuple[Any, Stubber]:
    """A CloudFormation client answering describe_stacks with a stack in `status`.

    moto finishes every stack operation at once, so it never shows an *_IN_PROGRESS status, nor a
    stack that changed between describe_stacks and update_stack; botocore's Stubber stands in."""
    client = SESSION.client("cloudformation")
    stubber = Stubber(client)
    stack = {
        "StackName": STACK,
        "CreationTime": "2026-01-01T00:00:00Z",
        "StackStatus": status,
        "Parameters": [
            {"ParameterKey": "InstanceType", "ParameterValue": INSTANCE_TYPE},
            {"ParameterKey": "ModelPackageArn", "ParameterValue": value},
        ],
    }
    stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})
    return client, stubber


@pytest.mark.parametrize("status", ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"])
def test_a_busy_stack_raises_stack_busy_for_a_retry(aws, status, caplog):
    arn = aws.package("Approved")
    aws.cloudformation, stubber = _stubbed_stack(status)
    with stubber, pytest.raises(StackBusy, match=status):
        aws.run(package_event(arn, "Approved"))
    stubber.assert_no_pending_responses()  # and no update_stack: the Stubber would refuse it
    (line,) = log_lines(caplog)
    assert (line["action"], line["model_package_arn"]) == ("busy", arn)


def _expected_update(arn: str) -> dict[str, Any]:
    return {
        "StackName": STACK,
        "UsePreviousTemplate": True,
        "Parameters": [
            {"ParameterKey": "ModelPackageArn", "ParameterValue": arn},
            {"ParameterKey": "InstanceType", "UsePreviousValue": True},
        ],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        "RoleARN": ROLE,
        "ClientRequestToken": f"promote-{EVENT_ID}",
    }


def test_an_aws_error_is_logged_and_raised(aws, caplog):
    arn = aws.package("Approved")
    aws.cloudformation, stubber = _stubbed_stack("UPDATE_COMPLETE", value="arn-before")
    stubber.add_client_error("update_stack", "Throttling", "Rate exceeded", 400, expected_params=_expected_update(arn))
    with stubber, pytest.raises(ClientError, match="Rate exceeded"):
        aws.run(package_event(arn, "Approved"))
    stubber.assert_no_pending_responses()
    (line,) = log_lines(caplog)
    assert line["action"] == "failed" and line["error_code"] == "Throttling"
    assert line["previous_model_package_arn"] == "arn-before"
    assert [r.levelname for r in caplog.records if r.name == "promotion"] == ["ERROR"]


def test_no_updates_to_perform_counts_as_unchanged(aws):
    arn = aws.package("Approved")
    aws.cloudformation, stubber = _stubbed_stack("UPDATE_COMPLETE")
    message = "No updates are to be performed."
    stubber.add_client_error("update_stack", "ValidationError", message, 400, expected_params=_expected_update(arn))
    with stubber:
        result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "unchanged"


def test_a_stack_without_the_parameter_fails(aws):
    arn = aws.package("Approved")
    aws.settings = Settings(STACK, "ModelArn", GROUP, ROLE, aws.settings.alert_topic_arn)
    with pytest.raises(PromotionError, match=f"stack {STACK} has no parameter ModelArn"):
        aws.run(package_event(arn, "Approved"))
    assert aws.updates == []


def test_client_request_token_is_valid_for_any_event_id():
    token = client_request_token("a b/c:d_é" * 40)
    assert re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]*", token) and len(token) == 128
    assert client_request_token(EVENT_ID) == f"promote-{EVENT_ID}"


def test_handler_reads_its_settings_from_the_environment(aws, monkeypatch):
    arn = aws.package("Approved")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", SESSION)  # boto3.client() then reuses the loaded models
    for name, variable in ENVIRONMENT.items():
        monkeypatch.setenv(variable, getattr(aws.settings, name))
    assert handler(package_event(arn, "Approved"), None)["action"] == "updated"
    assert aws.parameters()["ModelPackageArn"] == arn


@pytest.mark.parametrize("variable", list(ENVIRONMENT.values()))
def test_handler_names_a_missing_environment_variable(variable, monkeypatch):
    for key in ENVIRONMENT.values():
        monkeypatch.setenv(key, "set")
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigurationError, match=f"missing environment variable\\(s\\): {variable}$"):
        handler(package_event(ARN, "Approved"), None)


def test_the_same_update_switches_the_monitors_to_the_versions_baselines(aws):
    """Baselines travel with the model: DriftCheckBaselines URIs become the stack's baseline parameters."""
    template = copy.deepcopy(TEMPLATE)
    template["Parameters"].update(
        DataQualityStatistics={"Type": "String", "Default": ""},
        ModelQualityConstraints={"Type": "String", "Default": ""},
    )
    aws.cloudformation.update_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "InstanceType", "ParameterValue": INSTANCE_TYPE}],
    )
    statistics = "s3://artifacts/pipelines/mlp-dev-training/runs/1/baselines/data-quality/statistics.json"
    arn = aws.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification=SPEC,
        DriftCheckBaselines={
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": statistics}}
        },
    )["ModelPackageArn"]
    aws.settings = dataclasses.replace(
        aws.settings,
        baseline_parameters={
            "DataQualityStatistics": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
            "ModelQualityConstraints": "DriftCheckBaselines.ModelQuality.Constraints.S3Uri",
            "NotInTheStack": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
        },
    )
    assert aws.run(package_event(arn, "Approved"))["action"] == "updated"
    parameters = aws.parameters()
    assert parameters["ModelPackageArn"] == arn
    assert parameters["DataQualityStatistics"] == statistics
    # A baseline the version lacks is cleared, so its monitor is switched off rather than left stale.
    assert parameters["ModelQualityConstraints"] == ""
    assert parameters["InstanceType"] == INSTANCE_TYPE and "NotInTheStack" not in parameters


def test_baseline_parameters_come_from_the_environment():
    environ = {variable: "x" for variable in ENVIRONMENT.values()}
    assert Settings.from_env(environ).baseline_parameters == {}
    mapping = {"DataQualityStatistics": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri"}
    assert Settings.from_env({**environ, "BASELINE_PARAMETERS": json.dumps(mapping)}).baseline_parameters == mapping
    with pytest.raises(ConfigurationError, match="BASELINE_PARAMETERS is not JSON"):
        Settings.from_env({**environ, "BASELINE_PARAMETERS": "{"})


# --- the model-explainability monitor's analysis config ----------------------------------------

BUCKET = "mlp-dev-artifacts"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b5e5c4e-2f39-4c56-9d0a-7c1f0e6b8d11"
EXPLAINABILITY = {
    "parameter": "ExplainabilityConfig",
    "bucket": BUCKET,
    "prefix": "monitoring/mlp-dev-endpoint/explainability-config",
    "model_name_prefix": "mlp-dev-endpoint-3f9a1c-",
    "instance_type": "ml.m5.xlarge",
    "kms_key_id": KMS_KEY,
}
CONFIG_PREFIX = EXPLAINABILITY["prefix"]
# What the pipeline's evaluate step writes (pipelines/steps/evaluate.py, monitor_config), plus a
# predictor left over from a baselining run, which the promotion must overwrite.
MONITOR_TEMPLATE = {
    "methods": {
        "shap": {
            "use_logit": True,
            "save_local_shap_values": False,
            "baseline": [[120.5, 41.0, 0.3]],
            "num_samples": 100,
            "agg_method": "mean_abs",
        }
    },
    "predictor": {"accept_type": "text/csv", "content_type": "text/csv", "initial_instance_count": 2},
    "headers": ["amount", "age", "foreign"],
}
TEMPLATE_KEY = "pipelines/mlp-dev-training/runs/1/explainability/monitoring/analysis_config.json"
TEMPLATE_URI = f"s3://{BUCKET}/{TEMPLATE_KEY}"
PREVIOUS_CONFIG = f"s3://{BUCKET}/{CONFIG_PREFIX}/0/analysis_config.json"


def enable_explainability(aws: World, *, stack_parameter: bool = True) -> World:
    """The artifacts bucket with the template, EXPLAINABILITY set, and the Serving stack with an
    ExplainabilityConfig parameter unless `stack_parameter` is False (moto's update_stack cannot
    remove a parameter, so a stack without it is the fixture's, left as it is)."""
    if stack_parameter:
        template = copy.deepcopy(TEMPLATE)
        template["Parameters"]["ExplainabilityConfig"] = {"Type": "String", "Default": ""}
        aws.cloudformation.update_stack(
            StackName=STACK,
            TemplateBody=json.dumps(template),
            Parameters=[
                {"ParameterKey": "InstanceType", "ParameterValue": INSTANCE_TYPE},
                # An earlier version's config, so that a test sees the parameter change.
                {"ParameterKey": "ExplainabilityConfig", "ParameterValue": PREVIOUS_CONFIG},
            ],
        )
        aws.updates.clear()  # the set-up's own update_stack
    aws.s3.create_bucket(Bucket=BUCKET)
    aws.s3.put_object(Bucket=BUCKET, Key=TEMPLATE_KEY, Body=json.dumps(MONITOR_TEMPLATE).encode())
    aws.settings = dataclasses.replace(aws.settings, explainability=EXPLAINABILITY)
    return aws


@pytest.fixture
def explaining(aws):
    return enable_explainability(aws)


def explained_package(aws: World, config_uri: str | None = TEMPLATE_URI) -> str:
    """An approved version whose drift baselines carry an explainability config template (None: no template).

    moto 5 keeps DriftCheckBaselines.Explainability (Constraints and ConfigFile) and returns it from
    DescribeModelPackage, so no Stubber is needed."""
    baselines: dict[str, Any] = {}
    if config_uri is not None:
        constraints = f"s3://{BUCKET}/pipelines/mlp-dev-training/runs/1/explainability/analysis.json"
        baselines["DriftCheckBaselines"] = {
            "Explainability": {
                "Constraints": {"ContentType": "application/json", "S3Uri": constraints},
                "ConfigFile": {"ContentType": "application/json", "S3Uri": config_uri},
            }
        }
    return aws.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP, ModelApprovalStatus="Approved", InferenceSpecification=SPEC, **baselines
    )["ModelPackageArn"]


def config_keys(aws: World) -> list[str]:
    """The keys under the configured prefix: the analysis configs the promotion wrote."""
    listing = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=CONFIG_PREFIX + "/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_an_approval_writes_the_versions_explainability_config(explaining, caplog):
    aws = explaining
    arn = explained_package(aws)
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    key = f"{CONFIG_PREFIX}/1/analysis_config.json"
    uri = f"s3://{BUCKET}/{key}"
    assert (result["explainability_config"], result["explainability_template"]) == (uri, TEMPLATE_URI)
    assert log_lines(caplog) == [result]
    assert config_keys(aws) == [key]

    written = aws.s3.get_object(Bucket=BUCKET, Key=key)
    body = written["Body"].read()
    config = json.loads(body)
    assert config["predictor"] == {
        "model_name": "mlp-dev-endpoint-3f9a1c-1",
        "instance_type": "ml.m5.xlarge",
        "initial_instance_count": 1,
        "content_type": "text/csv",
        "accept_type": "text/csv",
    }
    # Everything but the predictor is the template's.
    assert {k: v for k, v in config.items() if k != "predictor"} == {
        k: v for k, v in MONITOR_TEMPLATE.items() if k != "predictor"
    }
    assert config["methods"]["shap"]["baseline"] == [[120.5, 41.0, 0.3]]
    assert config["headers"] == ["amount", "age", "foreign"]
    # Deterministic bytes: a repeated event writes the same object.
    assert body == json.dumps(config, indent=2, sort_keys=True).encode()
    head = aws.s3.head_object(Bucket=BUCKET, Key=key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", KMS_KEY)
    assert head["ContentType"] == "application/json"

    assert aws.parameters() == {"ModelPackageArn": arn, "InstanceType": INSTANCE_TYPE, "ExplainabilityConfig": uri}
    (update,) = aws.updates
    assert [p for p in update["Parameters"] if p["ParameterKey"] == "ExplainabilityConfig"] == [
        {"ParameterKey": "ExplainabilityConfig", "ParameterValue": uri}
    ]


def test_a_version_without_an_explainability_config_turns_the_monitor_off(explaining):
    aws = explaining
    arn = explained_package(aws, config_uri=None)
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    assert (result["explainability_config"], result["explainability_template"]) == ("", "")
    assert aws.parameters()["ExplainabilityConfig"] == ""  # was PREVIOUS_CONFIG
    assert aws.parameters()["ModelPackageArn"] == arn
    assert config_keys(aws) == []


def test_a_stack_without_the_explainability_parameter_gets_no_config(aws):
    enable_explainability(aws, stack_parameter=False)
    arn = explained_package(aws)
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    assert "explainability_config" not in result
    assert aws.parameters() == {"ModelPackageArn": arn, "InstanceType": INSTANCE_TYPE}
    (update,) = aws.updates
    assert all(p["ParameterKey"] != "ExplainabilityConfig" for p in update["Parameters"])
    assert config_keys(aws) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"methods: {shap: {}}", "Expecting value"),
        (b"\xff{}", "'utf-8' codec can't decode byte 0xff"),
        (b"[1, 2]", "it is a JSON list, not an object"),
        (b'{"predictor": "text/csv"}', "predictor is a str, not an object"),
    ],
    ids=["yaml", "not-utf", "list", "predictor-string"],
)
def test_an_unusable_explainability_template_fails_the_promotion(explaining, body, problem, caplog):
    aws = explaining
    aws.s3.put_object(Bucket=BUCKET, Key=TEMPLATE_KEY, Body=body)
    arn = explained_package(aws)
    with pytest.raises(PromotionError, match=f"template {re.escape(TEMPLATE_URI)} is unusable: .*{re.escape(problem)}"):
        aws.run(package_event(arn, "Approved"))
    assert aws.updates == [] and config_keys(aws) == []
    assert aws.parameters()["ModelPackageArn"] == ""
    assert aws.parameters()["ExplainabilityConfig"] == PREVIOUS_CONFIG
    (line,) = log_lines(caplog)
    assert (line["action"], line["explainability_template"]) == ("failed", TEMPLATE_URI)


def test_a_malformed_explainability_template_uri_fails_the_promotion(explaining):
    aws = explaining
    arn = explained_package(aws, config_uri=f"https://{BUCKET}.s3.amazonaws.com/{TEMPLATE_KEY}")
    with pytest.raises(PromotionError, match="is not an s3://bucket/key URI"):
        aws.run(package_event(arn, "Approved"))
    assert aws.updates == [] and config_keys(aws) == []


def test_an_s3_error_on_the_template_is_raised_for_a_retry(explaining, caplog):
    aws = explaining
    aws.s3.delete_object(Bucket=BUCKET, Key=TEMPLATE_KEY)
    arn = explained_package(aws)
    with pytest.raises(ClientError) as raised:
        aws.run(package_event(arn, "Approved"))
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    assert aws.updates == [] and config_keys(aws) == []
    (line,) = log_lines(caplog)
    assert (line["action"], line["error_code"], line["explainability_template"]) == (
        "failed",
        "NoSuchKey",
        TEMPLATE_URI,
    )


def test_a_duplicate_event_writes_no_explainability_config(explaining):
    aws = explaining
    arn = explained_package(aws)
    event = package_event(arn, "Approved")
    assert aws.run(event)["action"] == "updated"
    (key,) = config_keys(aws)
    aws.s3.delete_object(Bucket=BUCKET, Key=key)
    second = aws.run(event)
    assert second["action"] == "unchanged" and "duplicate" in second["reason"]
    assert "explainability_config" not in second
    assert config_keys(aws) == [] and len(aws.updates) == 1


def test_explainability_needs_an_s3_client(explaining):
    aws = explaining
    aws.s3 = None
    with pytest.raises(ConfigurationError, match="no S3 client"):
        aws.run(package_event(explained_package(aws), "Approved"))
    assert aws.updates == []


def test_the_handler_writes_the_explainability_config_from_the_environment(explaining, monkeypatch):
    aws = explaining
    arn = explained_package(aws)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", SESSION)
    for name, variable in ENVIRONMENT.items():
        monkeypatch.setenv(variable, getattr(aws.settings, name))
    monkeypatch.setenv("EXPLAINABILITY", json.dumps(EXPLAINABILITY))
    result = handler(package_event(arn, "Approved"), None)
    assert result["action"] == "updated"
    assert aws.parameters()["ExplainabilityConfig"] == result["explainability_config"]
    assert config_keys(aws) == [f"{CONFIG_PREFIX}/1/analysis_config.json"]


def test_explainability_comes_from_the_environment():
    environ = {variable: "x" for variable in ENVIRONMENT.values()}
    assert Settings.from_env(environ).explainability is None
    assert Settings.from_env({**environ, "EXPLAINABILITY": ""}).explainability is None
    assert Settings.from_env({**environ, "EXPLAINABILITY": json.dumps(EXPLAINABILITY)}).explainability == EXPLAINABILITY


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{", "EXPLAINABILITY is not JSON"),
        ('["ExplainabilityConfig"]', "EXPLAINABILITY must be a JSON object with the keys parameter, bucket"),
        (
            json.dumps({k: v for k, v in EXPLAINABILITY.items() if k != "kms_key_id"}),
            "EXPLAINABILITY is missing kms_key_id$",
        ),
        (
            json.dumps({"parameter": "ExplainabilityConfig"}),
            "EXPLAINABILITY is missing bucket, prefix, model_name_prefix",
        ),
        (json.dumps({**EXPLAINABILITY, "instance_type": 1}), "non-empty strings: instance_type$"),
        (json.dumps({**EXPLAINABILITY, "bucket": ""}), "non-empty strings: bucket$"),
    ],
    ids=["bad-json", "not-an-object", "missing-key", "missing-keys", "non-string", "empty"],
)
def test_a_bad_explainability_variable_is_a_configuration_error(value, message):
    environ = {variable: "x" for variable in ENVIRONMENT.values()}
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({**environ, "EXPLAINABILITY": value})
