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
    settings: Settings
    queue_url: str
    updates: list[dict[str, Any]] = field(default_factory=list)

    def package(self, status: str, group: str = GROUP) -> str:
        return self.sagemaker.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus=status, InferenceSpecification=SPEC
        )["ModelPackageArn"]

    def run(self, event: Any) -> dict[str, Any]:
        clients = {"cloudformation": self.cloudformation, "sagemaker": self.sagemaker, "sns": self.sns}
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
    return {name: SESSION.client(name) for name in ("sagemaker", "cloudformation", "sns", "sqs")}


@pytest.fixture
def aws(clients, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sagemaker, cloudformation, sns, sqs = clients.values()
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
        world = World(cloudformation, sagemaker, sns, sqs, settings, queue_url)

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
