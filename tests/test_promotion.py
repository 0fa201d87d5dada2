"""The model promotion Lambda (lambdas/promotion/handler.py) against moto: SageMaker, CloudFormation, SSM, SNS, SQS.

The Serving stack's promoted parameters are SSM-typed (`AWS::SSM::Parameter::Value<String>`), their
defaults SSM parameters under PREFIX that the fixture creates as `none` first (as the DataLake stack
does). moto 5.2.5 resolves them from its SSM on create_stack and update_stack, but:
- describe_stacks reports the resolved value as the ParameterValue, with no ResolvedValue (AWS:
  ParameterValue is the SSM name, ResolvedValue what the stack resolved), so the tests that need
  AWS's answer (the rollback restore, busy stacks) stub describe_stacks with botocore's Stubber;
- an update whose parameters are all UsePreviousValue is compared with the values resolved before
  and answered "No updates are to be performed" although SSM changed (CloudFormation re-resolves
  the SSM name on every update); see World.resolve_from_ssm.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator
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
# What AWS reports as this stack's id (moto makes up its own).
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/5b7e1c40-1a2b-11f0-9c3e-0a1b2c3d4e5f"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlp-dev-deploy"
EVENT_ID = "844e2571-85d4-695f-b930-0153b71dcb42"
PREFIX = "/mlp-dev/serving/"
PACKAGE_STATE = PREFIX + "ModelPackageArn"
INSTANCE_TYPE = "ml.g5.xlarge"  # not the template default, so a reset to the default shows
SSM_TYPE = "AWS::SSM::Parameter::Value<String>"
LOCK_TABLE = "mlp-dev-promotion-lock"


def state_parameter(name: str) -> dict[str, str]:
    """A promoted stack parameter: resolved from the SSM parameter PREFIX + name."""
    return {"Type": SSM_TYPE, "Default": PREFIX + name}


TEMPLATE = {
    "Parameters": {
        "ModelPackageArn": state_parameter("ModelPackageArn"),
        "InstanceType": {"Type": "String", "Default": "ml.m5.large"},
    },
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}
SPEC = {
    "Containers": [{"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/fraud:1"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}
# Each UpdateStack parameter as the promotion sends it: the previous value, which CloudFormation re-resolves.
PREVIOUS_VALUES = [
    {"ParameterKey": "InstanceType", "UsePreviousValue": True},
    {"ParameterKey": "ModelPackageArn", "UsePreviousValue": True},
]
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


def stack_event(
    stack_id: str = STACK_ID, status: str = "UPDATE_ROLLBACK_COMPLETE", *, event_id: str = "rolled-back"
) -> dict[str, Any]:
    """A CloudFormation stack status change as EventBridge delivers it (CloudFormation user guide's example)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "CloudFormation Stack Status Change",
        "source": "aws.cloudformation",
        "account": ACCOUNT,
        "time": "2026-02-24T17:30:02Z",
        "region": REGION,
        "resources": [stack_id],
        "detail": {
            "stack-id": stack_id,
            "status-details": {"status": status, "status-reason": ""},
            "client-request-token": f"promote-{EVENT_ID}",
        },
    }


@dataclass
class World:
    """moto state: a model package group, the Serving stack and its SSM state, an alert topic read through a queue."""

    cloudformation: Any
    sagemaker: Any
    sns: Any
    sqs: Any
    s3: Any
    ssm: Any
    settings: Settings
    queue_url: str
    # The Serving stack's template as deployed.
    template: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(TEMPLATE))
    # The arguments of every UpdateStack call, and (Name, Value) of every PutParameter call, in order.
    updates: list[dict[str, Any]] = field(default_factory=list)
    writes: list[tuple[str, str]] = field(default_factory=list)
    # The Stubber of a stubbed CloudFormation client, for the tests that need AWS's describe_stacks.
    stubber: Stubber | None = None
    # The table of the promotion lock.
    dynamodb: Any = None

    def package(self, status: str, group: str = GROUP) -> str:
        return self.sagemaker.create_model_package(
            ModelPackageGroupName=group, ModelApprovalStatus=status, InferenceSpecification=SPEC
        )["ModelPackageArn"]

    def run(self, event: Any) -> dict[str, Any]:
        clients = {
            name: getattr(self, name) for name in ("cloudformation", "sagemaker", "sns", "s3", "ssm", "dynamodb")
        }
        return promote(event, **clients, settings=self.settings)

    def lock(self) -> dict[str, Any] | None:
        item = self.dynamodb.get_item(TableName=LOCK_TABLE, Key={"pk": {"S": "lock#promotion"}}).get("Item")
        return None if item is None else {name: next(iter(value.values())) for name, value in item.items()}

    def parameters(self) -> dict[str, str]:
        """What the stack resolved, by parameter (moto gives an SSM-typed one's resolved value as ParameterValue)."""
        stack = self.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
        return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}

    def state(self) -> dict[str, str]:
        """The promoted state in SSM, the source of truth, by stack parameter."""
        found = self.ssm.get_parameters_by_path(Path=PREFIX.rstrip("/"))["Parameters"]
        return {p["Name"].removeprefix(PREFIX): p["Value"] for p in found}

    def add_state_parameters(self, **values: str) -> None:
        """SSM-typed stack parameters, their SSM parameters created first with `values` (as DataLake does)."""
        for name, value in values.items():
            self.ssm.put_parameter(Name=PREFIX + name, Value=value, Type="String", Overwrite=True)
            self.template["Parameters"][name] = state_parameter(name)
        self.cloudformation.update_stack(
            StackName=STACK,
            TemplateBody=json.dumps(self.template),
            Parameters=[{"ParameterKey": "InstanceType", "ParameterValue": INSTANCE_TYPE}],
        )
        self.updates.clear()  # the set-up's own calls
        self.writes.clear()

    def alerts(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    def record_update(self, params: dict[str, Any], **_: Any) -> None:
        self.updates.append(copy.deepcopy(params))

    def record_write(self, params: dict[str, Any], **_: Any) -> None:
        self.writes.append((params["Name"], params["Value"]))

    def resolve_from_ssm(self, params: dict[str, Any], **_: Any) -> None:
        """Makes moto's UpdateStack resolve the SSM-typed parameters' latest values, as CloudFormation does.

        moto compares a UsePreviousValue parameter with the value it resolved before (and finds "No
        updates are to be performed" although SSM changed); CloudFormation takes the previous value,
        the SSM name, and resolves it again. Left out of the request moto sees (after record_update has
        recorded what the promotion sent), such a parameter gets its Default, the same SSM name, which
        moto resolves from its SSM."""
        typed = {name for name, p in self.template["Parameters"].items() if p["Type"] == SSM_TYPE}
        params["Parameters"] = [
            p for p in params.get("Parameters", []) if not (p["ParameterKey"] in typed and p.get("UsePreviousValue"))
        ]

    def watch(self, events: Any) -> Callable[[], None]:
        """Register the recorders and resolve_from_ssm on an event emitter; returns what unregisters them."""
        hooks = [
            ("provide-client-params.cloudformation.UpdateStack", self.record_update),
            ("before-parameter-build.cloudformation.UpdateStack", self.resolve_from_ssm),
            ("provide-client-params.ssm.PutParameter", self.record_write),
        ]
        for name, hook in hooks:
            events.register(name, hook)

        def unwatch() -> None:
            for name, hook in hooks:
                events.unregister(name, hook)

        return unwatch


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    """Clients shared by the module's tests: moto routes a client's calls while any mock_aws is active."""
    return {
        name: SESSION.client(name) for name in ("sagemaker", "cloudformation", "sns", "sqs", "s3", "ssm", "dynamodb")
    }


@pytest.fixture
def aws(clients, monkeypatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sagemaker, cloudformation, sns, sqs, s3, ssm = (
            clients[name] for name in ("sagemaker", "cloudformation", "sns", "sqs", "s3", "ssm")
        )
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        # The promoted state exists before the stack that resolves it: no version promoted yet.
        ssm.put_parameter(Name=PACKAGE_STATE, Value="none", Type="String")
        cloudformation.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(TEMPLATE),
            Parameters=[{"ParameterKey": "InstanceType", "ParameterValue": INSTANCE_TYPE}],
        )
        topic = sns.create_topic(Name="mlp-dev-alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        # The key schema the Serving stack's lock table has.
        clients["dynamodb"].create_table(
            TableName=LOCK_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        settings = Settings(STACK, "ModelPackageArn", GROUP, ROLE, topic, PREFIX, lock_table=LOCK_TABLE)
        world = World(cloudformation, sagemaker, sns, sqs, s3, ssm, settings, queue_url, dynamodb=clients["dynamodb"])
        unwatch_cloudformation = world.watch(cloudformation.meta.events)
        unwatch_ssm = world.watch(ssm.meta.events)
        yield world
        unwatch_cloudformation()
        unwatch_ssm()


def log_lines(caplog) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "promotion"]


def test_an_approved_package_becomes_the_promoted_state(aws, caplog):
    arn = aws.package("Approved")
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    assert result["previous_model_package_arn"] == "none"
    assert result["state_parameters"] == {PACKAGE_STATE: arn}
    assert aws.writes == [(PACKAGE_STATE, arn)]
    assert aws.state() == {"ModelPackageArn": arn}
    # The update resolved it: the stack serves the version, and keeps its other values.
    assert aws.parameters() == {"ModelPackageArn": arn, "InstanceType": INSTANCE_TYPE}
    stack = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["RoleARN"] == ROLE
    (update,) = aws.updates
    assert update["UsePreviousTemplate"] is True
    assert update["Parameters"] == PREVIOUS_VALUES
    assert update["ClientRequestToken"] == f"promote-{EVENT_ID}"
    assert update["Capabilities"] == ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    assert log_lines(caplog) == [result]

    # The next approval names the package it replaces, for a rollback by hand.
    newer = aws.package("Approved")
    result = aws.run(package_event(newer, "Approved", event_id="second"))
    assert (result["action"], result["previous_model_package_arn"]) == ("updated", arn)
    assert arn in result["reason"] and PACKAGE_STATE in result["reason"]
    assert aws.state() == {"ModelPackageArn": newer}
    assert aws.parameters() == {"ModelPackageArn": newer, "InstanceType": INSTANCE_TYPE}


def test_a_deployment_without_parameter_values_keeps_the_promoted_version(aws):
    """Why the state is in SSM: a pipeline's deployment passes no previous values, yet serves the version."""
    arn = aws.package("Approved")
    assert aws.run(package_event(arn, "Approved"))["action"] == "updated"
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue"}  # a change of the template
    aws.cloudformation.update_stack(StackName=STACK, TemplateBody=json.dumps(template))
    assert aws.parameters()["ModelPackageArn"] == arn


def test_a_duplicate_event_updates_the_stack_once(aws):
    arn = aws.package("Approved")
    event = package_event(arn, "Approved")
    assert aws.run(event)["action"] == "updated"
    aws.writes.clear()
    second = aws.run(event)
    assert second["action"] == "unchanged"
    assert "duplicate" in second["reason"]
    assert "state_parameters" not in second
    assert aws.writes == [] and len(aws.updates) == 1
    assert aws.state()["ModelPackageArn"] == arn
    assert aws.parameters()["ModelPackageArn"] == arn


def test_a_version_only_ssm_or_only_the_stack_holds_is_promoted_again(aws):
    """A duplicate needs both: SSM alone holds it after an update failed, the stack alone after a change by hand."""
    arn = aws.package("Approved")
    # The writes of an earlier attempt whose update_stack failed.
    aws.ssm.put_parameter(Name=PACKAGE_STATE, Value=arn, Type="String", Overwrite=True)
    aws.writes.clear()
    assert aws.run(package_event(arn, "Approved"))["action"] == "updated"
    assert len(aws.updates) == 1 and aws.parameters()["ModelPackageArn"] == arn

    # SSM changed by hand behind the stack's back: the version is written again (and the stack updated;
    # CloudFormation would find no update to perform, moto has no such check for SSM-typed parameters).
    aws.ssm.put_parameter(Name=PACKAGE_STATE, Value="none", Type="String", Overwrite=True)
    aws.writes.clear()
    aws.run(package_event(arn, "Approved", event_id="again"))
    assert aws.writes == [(PACKAGE_STATE, arn)] and len(aws.updates) == 2
    assert aws.state()["ModelPackageArn"] == arn


def test_an_event_of_another_group_changes_nothing(aws, caplog):
    aws.sagemaker.create_model_package_group(ModelPackageGroupName="someone-else")
    arn = aws.package("Approved", group="someone-else")
    result = aws.run(package_event(arn, "Approved", group="someone-else"))
    assert result["action"] == "ignored"
    assert "'someone-else'" in result["reason"] and f"'{GROUP}'" in result["reason"]
    assert aws.updates == [] and aws.writes == [] and aws.alerts() == []
    assert aws.state()["ModelPackageArn"] == "none"
    (line,) = log_lines(caplog)
    assert (line["action"], line["reason"], line["model_package_arn"]) == ("ignored", result["reason"], arn)


def test_a_package_of_another_account_changes_nothing(aws):
    """Serving from a source account's registry, a same-named group elsewhere (here: moto's account) is ignored."""
    aws.settings = dataclasses.replace(aws.settings, model_package_account="210987654321")
    arn = aws.package("Approved")
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "ignored"
    assert result["reason"] == f"model package account {ACCOUNT} is not 210987654321, the promoted registry's"
    assert aws.updates == [] and aws.writes == [] and aws.state()["ModelPackageArn"] == "none"
    # The same package is promoted when the registry's account is the one configured.
    aws.settings = dataclasses.replace(aws.settings, model_package_account=ACCOUNT)
    assert aws.run(package_event(arn, "Approved", event_id="again"))["action"] == "updated"
    assert aws.state()["ModelPackageArn"] == arn


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
    aws.writes.clear()
    rejected = aws.package("Rejected")
    result = aws.run(package_event(rejected, "Rejected"))
    assert result["action"] == "rejected"
    assert result["previous_model_package_arn"] == (serving_arn if serving else "none")
    assert aws.writes == []
    assert aws.state()["ModelPackageArn"] == aws.parameters()["ModelPackageArn"] == (serving_arn if serving else "none")
    assert len(aws.updates) == (1 if serving else 0)
    (alert,) = aws.alerts()
    assert alert["Subject"] == f"Model package {GROUP} version 2 rejected"
    assert rejected in alert["Message"]
    # "none", the unset state, reads as no model.
    assert f"keeps serving: {serving_arn if serving else 'no model yet'}." in alert["Message"]
    assert "WARNING" not in alert["Message"]


def test_rejecting_the_serving_package_warns_that_it_still_serves(aws):
    arn = aws.package("Approved")
    aws.run(package_event(arn, "Approved"))
    aws.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    assert aws.run(package_event(arn, "Rejected", event_id="later"))["action"] == "rejected"
    (alert,) = aws.alerts()
    assert "WARNING: the rejected package is the one serving now" in alert["Message"]
    assert aws.state()["ModelPackageArn"] == aws.parameters()["ModelPackageArn"] == arn


def test_the_longest_group_name_fits_the_alert_subject(aws):
    group = "g" * 63
    aws.sagemaker.create_model_package_group(ModelPackageGroupName=group)
    aws.settings = dataclasses.replace(aws.settings, model_package_group=group)
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
    assert aws.updates == [] and aws.writes == [] and aws.alerts() == []
    assert aws.state()["ModelPackageArn"] == "none"
    assert [line["reason"] for line in log_lines(caplog)] == [result["reason"]]


def test_an_approval_reverted_before_the_promotion_is_ignored(aws):
    arn = aws.package("Approved")
    aws.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "ignored"
    assert "Rejected now" in result["reason"]
    assert aws.updates == [] and aws.writes == []
    assert aws.state()["ModelPackageArn"] == "none"


def test_a_promotion_needs_an_ssm_client(aws, caplog):
    aws.ssm = None
    with pytest.raises(ConfigurationError, match="no SSM client"):
        aws.run(package_event(aws.package("Approved"), "Approved"))
    with pytest.raises(ConfigurationError, match="no SSM client"):
        aws.run(stack_event())
    assert aws.updates == [] and aws.writes == []
    assert [line["action"] for line in log_lines(caplog)] == ["failed", "failed"]
    # A rejection reads no state: it needs none.
    assert aws.run(package_event(aws.package("Rejected"), "Rejected", event_id="rejected"))["action"] == "rejected"


ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1"


def _without(key: str, *, detail: bool = False, event: dict[str, Any] | None = None) -> dict[str, Any]:
    event = package_event(ARN, "Approved") if event is None else event
    del (event["detail"] if detail else event)[key]
    return event


def _with(path: tuple[str, ...], value: Any, *, event: dict[str, Any] | None = None) -> dict[str, Any]:
    event = package_event(ARN, "Approved") if event is None else event
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
        (
            _with(("detail-type",), "CloudFormation Resource Status Change", event=stack_event()),
            "detail-type is 'CloudFormation Resource Status Change', expected 'CloudFormation Stack Status Change'",
        ),
        (_without("id", event=stack_event()), "event has no id"),
        (_without("detail", event=stack_event()), "event has no detail object"),
        (_without("stack-id", detail=True, event=stack_event()), "detail is missing stack-id"),
        (
            _with(("detail", "stack-id"), STACK, event=stack_event()),
            f"stack-id '{STACK}' is not a CloudFormation stack ID",
        ),
        (_without("status-details", detail=True, event=stack_event()), "detail is missing status-details.status"),
        (
            _with(("detail", "status-details"), "UPDATE_ROLLBACK_COMPLETE", event=stack_event()),
            "detail is missing status-details.status",
        ),
        (
            _with(("detail", "status-details", "status"), "", event=stack_event()),
            "detail is missing status-details.status",
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
        "stack-detail-type",
        "stack-no-id",
        "stack-no-detail",
        "stack-no-stack-id",
        "stack-name-for-id",
        "stack-no-status",
        "stack-status-string",
        "stack-empty-status",
    ],
)
def test_a_malformed_event_is_ignored_without_an_aws_call(event, reason, caplog):
    settings = Settings(STACK, "ModelPackageArn", GROUP, ROLE, "arn:aws:sns:us-east-1:123456789012:alerts", PREFIX)
    # None for a client: any AWS call would raise AttributeError.
    result = promote(event, cloudformation=None, sagemaker=None, sns=None, ssm=None, settings=settings)
    assert result["action"] == "ignored"
    assert reason in result["reason"]
    (line,) = log_lines(caplog)
    assert line["action"] == "ignored" and reason in line["reason"]


def _stubbed_stack(
    status: str, resolved: dict[str, str] | None = None, *, stack_id: str = STACK_ID
) -> tuple[Any, Stubber]:
    """A CloudFormation client answering describe_stacks as AWS does, with a stack in `status`.

    `resolved`: the value the stack resolved for each SSM-typed parameter (default: ModelPackageArn
    unset); AWS reports it as ResolvedValue, the SSM name as ParameterValue. moto does neither, and
    finishes every stack operation at once, so it never shows an *_IN_PROGRESS status, nor a stack
    that changed between describe_stacks and update_stack; botocore's Stubber stands in."""
    client = SESSION.client("cloudformation")
    stubber = Stubber(client)
    resolved = {"ModelPackageArn": "none"} if resolved is None else resolved
    stack = {
        "StackId": stack_id,
        "StackName": STACK,
        "CreationTime": "2026-01-01T00:00:00Z",
        "StackStatus": status,
        "Parameters": [
            {"ParameterKey": "InstanceType", "ParameterValue": INSTANCE_TYPE},
            *(
                {"ParameterKey": name, "ParameterValue": PREFIX + name, "ResolvedValue": value}
                for name, value in resolved.items()
            ),
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
    assert aws.writes == [] and aws.state() == {"ModelPackageArn": "none"}
    (line,) = log_lines(caplog)
    assert (line["action"], line["model_package_arn"]) == ("busy", arn)
    assert "state_parameters" not in line


# --- one promotion at a time (the lock, in place of a reserved concurrency of 1) ----------------


def _hold_lock(aws: World, seconds: int = 30) -> None:
    until = int(time.time()) + seconds
    item = {"pk": {"S": "lock#promotion"}, "token": {"S": "another-invocation"}, "lease_until": {"N": str(until)}}
    aws.dynamodb.put_item(TableName=LOCK_TABLE, Item=item)


def test_a_held_lock_makes_the_promotion_wait_for_a_retry(aws, caplog):
    arn = aws.package("Approved")
    _hold_lock(aws)
    with pytest.raises(StackBusy, match=f"another promotion or restore of {STACK} holds the lock; retry later"):
        aws.run(package_event(arn, "Approved"))
    assert aws.writes == [] and aws.updates == []
    assert aws.lock()["token"] == "another-invocation"  # left to its holder
    (line,) = log_lines(caplog)
    assert line["action"] == "busy"


def test_a_lock_whose_lease_passed_is_taken_over_and_given_up(aws):
    arn = aws.package("Approved")
    _hold_lock(aws, seconds=-5)  # its holder died without giving it up
    assert aws.run(package_event(arn, "Approved"))["action"] == "updated"
    assert aws.lock() is None


class _Interleaving:
    """SSM, but while the first promotion writes its state a second promotion runs."""

    def __init__(self, ssm: Any, second: Callable[[], dict[str, Any]]) -> None:
        self.ssm, self.second, self.seen = ssm, second, []

    def put_parameter(self, **params: Any) -> dict[str, Any]:
        if not self.seen:
            try:
                self.seen.append(self.second())
            except StackBusy as busy:
                self.seen.append(busy)
        return self.ssm.put_parameter(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ssm, name)


def test_two_approvals_at_once_never_interleave_their_state(aws):
    """What reserved concurrency used to guarantee: one version's values, written whole, per update."""
    arn = baselined(aws)
    other = aws.package("Approved")
    plain = aws.ssm

    def second() -> dict[str, Any]:
        clients = {name: getattr(aws, name) for name in ("cloudformation", "sagemaker", "sns", "s3", "dynamodb")}
        return promote(package_event(other, "Approved", event_id="second"), **clients, ssm=plain, settings=aws.settings)

    aws.ssm = _Interleaving(plain, second)
    assert aws.run(package_event(arn, "Approved"))["action"] == "updated"
    [busy] = aws.ssm.seen
    assert isinstance(busy, StackBusy)  # Lambda retries it once this promotion is done
    assert [value for _, value in aws.writes] == [STATISTICS, "none", arn]
    assert aws.lock() is None


def test_a_restore_waits_for_a_held_lock(rolled_back):
    aws = rolled_back
    _hold_lock(aws)
    with aws.stubber, pytest.raises(StackBusy, match="holds the lock"):
        aws.run(stack_event())
    assert aws.writes == []


def test_promoting_needs_the_lock_table(aws):
    arn = aws.package("Approved")
    aws.settings = dataclasses.replace(aws.settings, lock_table="")
    with pytest.raises(ConfigurationError, match="needs LOCK_TABLE and a DynamoDB client"):
        aws.run(package_event(arn, "Approved"))
    assert aws.writes == [] and aws.updates == []


def _expected_update(arn: str) -> dict[str, Any]:
    return {
        "StackName": STACK,
        "UsePreviousTemplate": True,
        "Parameters": PREVIOUS_VALUES,
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        "RoleARN": ROLE,
        "ClientRequestToken": f"promote-{EVENT_ID}",
    }


def test_an_aws_error_is_logged_and_raised(aws, caplog):
    arn = aws.package("Approved")
    aws.cloudformation, stubber = _stubbed_stack("UPDATE_COMPLETE", {"ModelPackageArn": "arn-before"})
    stubber.add_client_error("update_stack", "Throttling", "Rate exceeded", 400, expected_params=_expected_update(arn))
    with stubber, pytest.raises(ClientError, match="Rate exceeded"):
        aws.run(package_event(arn, "Approved"))
    stubber.assert_no_pending_responses()
    # Written before the update, which the retry (not a duplicate: the stack resolved arn-before) makes.
    assert aws.state() == {"ModelPackageArn": arn}
    (line,) = log_lines(caplog)
    assert line["action"] == "failed" and line["error_code"] == "Throttling"
    assert line["previous_model_package_arn"] == "arn-before"
    assert line["state_parameters"] == {PACKAGE_STATE: arn}
    assert [r.levelname for r in caplog.records if r.name == "promotion"] == ["ERROR"]


def test_an_ssm_error_is_raised_before_the_update(aws, caplog):
    arn = aws.package("Approved")
    aws.ssm = SESSION.client("ssm")
    stubber = Stubber(aws.ssm)
    stubber.add_client_error("put_parameter", "TooManyUpdates", "Too many updates", 400)
    with stubber, pytest.raises(ClientError, match="Too many updates"):
        aws.run(package_event(arn, "Approved"))
    assert aws.updates == []
    (line,) = log_lines(caplog)
    assert (line["action"], line["error_code"]) == ("failed", "TooManyUpdates")


def test_no_updates_to_perform_counts_as_unchanged(aws):
    arn = aws.package("Approved")
    aws.cloudformation, stubber = _stubbed_stack("UPDATE_COMPLETE")
    message = "No updates are to be performed."
    stubber.add_client_error("update_stack", "ValidationError", message, 400, expected_params=_expected_update(arn))
    with stubber:
        result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "unchanged"
    assert result["state_parameters"] == {PACKAGE_STATE: arn}


def test_a_stack_without_the_parameter_fails(aws):
    arn = aws.package("Approved")
    aws.settings = dataclasses.replace(aws.settings, parameter_name="ModelArn")
    with pytest.raises(PromotionError, match=f"stack {STACK} has no parameter ModelArn"):
        aws.run(package_event(arn, "Approved"))
    assert aws.updates == [] and aws.writes == []


def test_client_request_token_is_valid_for_any_event_id():
    token = client_request_token("a b/c:d_é" * 40)
    assert re.fullmatch(r"[a-zA-Z0-9][-a-zA-Z0-9]*", token) and len(token) == 128
    assert client_request_token(EVENT_ID) == f"promote-{EVENT_ID}"


@pytest.fixture
def environment(aws, monkeypatch) -> Iterator[World]:
    """The handler's environment from the World's settings; the clients it makes are watched like the World's."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", SESSION)  # boto3.client() then reuses the loaded models
    for name, variable in ENVIRONMENT.items():
        monkeypatch.setenv(variable, getattr(aws.settings, name))
    unwatch = aws.watch(SESSION.events)  # a client copies its session's handlers when it is made
    yield aws
    unwatch()


def test_handler_reads_its_settings_from_the_environment(environment):
    aws = environment
    arn = aws.package("Approved")
    assert handler(package_event(arn, "Approved"), None)["action"] == "updated"
    assert aws.writes == [(PACKAGE_STATE, arn)] and len(aws.updates) == 1
    assert aws.state()["ModelPackageArn"] == aws.parameters()["ModelPackageArn"] == arn


@pytest.mark.parametrize("variable", list(ENVIRONMENT.values()))
def test_handler_names_a_missing_environment_variable(variable, monkeypatch):
    for key in ENVIRONMENT.values():
        monkeypatch.setenv(key, "set")
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigurationError, match=f"missing environment variable\\(s\\): {variable}$"):
        handler(package_event(ARN, "Approved"), None)


def test_the_state_prefix_comes_from_the_environment():
    environ = {variable: "x" for variable in ENVIRONMENT.values()}
    assert Settings.from_env({**environ, "STATE_PREFIX": PREFIX}).state_prefix == PREFIX
    for missing in ({k: v for k, v in environ.items() if k != "STATE_PREFIX"}, {**environ, "STATE_PREFIX": ""}):
        with pytest.raises(ConfigurationError, match=r"missing environment variable\(s\): STATE_PREFIX$"):
            Settings.from_env(missing)


# --- baselines ---------------------------------------------------------------------------------

STATISTICS = "s3://artifacts/pipelines/mlp-dev-training/runs/1/baselines/data-quality/statistics.json"
EARLIER_CONSTRAINTS = "s3://artifacts/pipelines/mlp-dev-training/runs/0/baselines/model-quality/constraints.json"
BASELINE_PATHS = {
    "DataQualityStatistics": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
    "ModelQualityConstraints": "DriftCheckBaselines.ModelQuality.Constraints.S3Uri",
    "NotInTheStack": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri",
}


def baselined(aws: World) -> str:
    """The stack with two baseline parameters (an earlier version's constraints among them), and an
    approved version that has statistics but no model-quality constraints."""
    aws.add_state_parameters(DataQualityStatistics="none", ModelQualityConstraints=EARLIER_CONSTRAINTS)
    aws.settings = dataclasses.replace(aws.settings, baseline_parameters=BASELINE_PATHS)
    return aws.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        InferenceSpecification=SPEC,
        DriftCheckBaselines={
            "ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": STATISTICS}}
        },
    )["ModelPackageArn"]


def test_an_approval_writes_each_state_parameter_the_package_arn_last(aws):
    arn = baselined(aws)
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    # By name, but ModelPackageArn last (it sorts before ModelQualityConstraints): a write that stops
    # halfway never points the endpoint at a version whose baselines are not written yet.
    assert aws.writes == [
        (PREFIX + "DataQualityStatistics", STATISTICS),
        (PREFIX + "ModelQualityConstraints", "none"),
        (PACKAGE_STATE, arn),
    ]
    assert result["state_parameters"] == dict(aws.writes)
    # Then one update that passes no value: every parameter keeps its previous one, re-resolved.
    (update,) = aws.updates
    assert update["Parameters"] == [
        {"ParameterKey": name, "UsePreviousValue": True}
        for name in ("DataQualityStatistics", "InstanceType", "ModelPackageArn", "ModelQualityConstraints")
    ]
    assert all("ParameterValue" not in p for p in update["Parameters"])


def test_the_same_update_switches_the_monitors_to_the_versions_baselines(aws):
    """Baselines travel with the model: DriftCheckBaselines URIs become the stack's baseline parameters."""
    arn = baselined(aws)
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    assert result["baselines"] == {
        "DataQualityStatistics": STATISTICS,
        "ModelQualityConstraints": "none",
        "NotInTheStack": STATISTICS,
    }
    state = aws.state()
    assert (state["ModelPackageArn"], state["DataQualityStatistics"]) == (arn, STATISTICS)
    # A baseline the version lacks is unset ("none"), so its monitor is switched off rather than left stale.
    assert state["ModelQualityConstraints"] == "none"
    assert "NotInTheStack" not in state
    assert aws.parameters() == {
        "ModelPackageArn": arn,
        "DataQualityStatistics": STATISTICS,
        "ModelQualityConstraints": "none",
        "InstanceType": INSTANCE_TYPE,
    }
    # The alert topic hears that the version's model-quality monitor is off, once: a duplicate event is quiet.
    (alert,) = aws.alerts()
    assert "without these baselines: ModelQualityConstraints" in alert["Message"] and arn in alert["Message"]
    assert aws.run(package_event(arn, "Approved"))["action"] == "unchanged"
    assert aws.alerts() == []


def test_baseline_parameters_come_from_the_environment():
    environ = {variable: "x" for variable in ENVIRONMENT.values()}
    assert Settings.from_env(environ).baseline_parameters == {}
    mapping = {"DataQualityStatistics": "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri"}
    assert Settings.from_env({**environ, "BASELINE_PARAMETERS": json.dumps(mapping)}).baseline_parameters == mapping
    with pytest.raises(ConfigurationError, match="BASELINE_PARAMETERS is not JSON"):
        Settings.from_env({**environ, "BASELINE_PARAMETERS": "{"})


# --- the restore after a rolled-back update ----------------------------------------------------

PREVIOUS_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/1"
FAILED_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/2"
PREVIOUS_STATISTICS = STATISTICS
FAILED_STATISTICS = STATISTICS.replace("/runs/1/", "/runs/2/")
# What the rolled-back stack resolved for its SSM-typed parameters.
SERVED = {"ModelPackageArn": PREVIOUS_ARN, "DataQualityStatistics": PREVIOUS_STATISTICS, "ExplainabilityConfig": "none"}


@pytest.fixture
def rolled_back(aws) -> World:
    """SSM holds version 2, whose update failed; the stack rolled back to version 1 (what it resolves).

    AWS's describe_stacks gives the SSM name as ParameterValue and version 1's values as ResolvedValue;
    moto's gives neither, so the Stubber answers it (and refuses any other CloudFormation call)."""
    aws.add_state_parameters(DataQualityStatistics=FAILED_STATISTICS, ExplainabilityConfig="none")
    aws.ssm.put_parameter(Name=PACKAGE_STATE, Value=FAILED_ARN, Type="String", Overwrite=True)
    aws.writes.clear()
    aws.cloudformation, aws.stubber = _stubbed_stack("UPDATE_ROLLBACK_COMPLETE", SERVED)
    return aws


def test_a_rolled_back_update_restores_what_the_stack_serves(rolled_back, caplog):
    aws = rolled_back
    with aws.stubber:
        result = aws.run(stack_event())
    aws.stubber.assert_no_pending_responses()
    assert result["action"] == "restored"
    # ExplainabilityConfig is already what the stack serves: not written.
    assert result["state_parameters"] == {
        PREFIX + "DataQualityStatistics": PREVIOUS_STATISTICS,
        PACKAGE_STATE: PREVIOUS_ARN,
    }
    assert aws.writes == [(PREFIX + "DataQualityStatistics", PREVIOUS_STATISTICS), (PACKAGE_STATE, PREVIOUS_ARN)]
    assert aws.state() == SERVED
    assert (result["stack_id"], result["stack_status"]) == (STACK_ID, "UPDATE_ROLLBACK_COMPLETE")
    assert log_lines(caplog) == [result]

    # Delivered again: SSM already holds what the stack serves.
    aws.cloudformation, aws.stubber = _stubbed_stack("UPDATE_ROLLBACK_COMPLETE", SERVED)
    aws.writes.clear()
    with aws.stubber:
        again = aws.run(stack_event())
    assert (again["action"], again["state_parameters"]) == ("unchanged", {})
    assert aws.writes == []


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (stack_event(STACK_ID.replace(STACK, "mlp-dev-DataLake")), f"stack 'mlp-dev-DataLake' is not '{STACK}'"),
        (stack_event(status="UPDATE_COMPLETE"), "stack status UPDATE_COMPLETE is not UPDATE_ROLLBACK_COMPLETE"),
        (stack_event(status="UPDATE_ROLLBACK_FAILED"), "stack status UPDATE_ROLLBACK_FAILED is not"),
    ],
    ids=["another-stack", "update-complete", "rollback-failed"],
)
def test_only_a_completed_rollback_of_this_stack_restores(rolled_back, event, reason, caplog):
    aws = rolled_back
    aws.cloudformation = SESSION.client("cloudformation")
    with Stubber(aws.cloudformation):  # no response queued: it refuses any call
        result = aws.run(event)
    assert result["action"] == "ignored" and reason in result["reason"]
    assert aws.writes == [] and aws.state()["ModelPackageArn"] == FAILED_ARN
    (line,) = log_lines(caplog)
    assert line == result


def test_a_rollback_of_an_earlier_stack_of_the_same_name_is_ignored(rolled_back):
    aws = rolled_back
    earlier = STACK_ID.rsplit("/", 1)[0] + "/0d3c9a22-0000-11ef-8a1b-0a1b2c3d4e5f"
    with aws.stubber:
        result = aws.run(stack_event(earlier))
    assert result["action"] == "ignored"
    assert result["reason"] == f"stack {earlier} is not the current {STACK} ({STACK_ID})"
    assert aws.writes == [] and aws.state()["ModelPackageArn"] == FAILED_ARN


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
        # An earlier version's config, so that a test sees the state change.
        aws.add_state_parameters(ExplainabilityConfig=PREVIOUS_CONFIG)
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

    assert aws.writes == [(PREFIX + "ExplainabilityConfig", uri), (PACKAGE_STATE, arn)]
    assert result["state_parameters"] == dict(aws.writes)
    assert aws.state() == {"ModelPackageArn": arn, "ExplainabilityConfig": uri}
    assert aws.parameters() == {"ModelPackageArn": arn, "InstanceType": INSTANCE_TYPE, "ExplainabilityConfig": uri}
    (update,) = aws.updates
    assert {"ParameterKey": "ExplainabilityConfig", "UsePreviousValue": True} in update["Parameters"]


def test_a_version_without_an_explainability_config_turns_the_monitor_off(explaining):
    aws = explaining
    arn = explained_package(aws, config_uri=None)
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    assert (result["explainability_config"], result["explainability_template"]) == ("none", "")
    assert aws.state() == {"ModelPackageArn": arn, "ExplainabilityConfig": "none"}  # was PREVIOUS_CONFIG
    assert aws.parameters()["ExplainabilityConfig"] == "none"
    assert config_keys(aws) == []


def test_a_stack_without_the_explainability_parameter_gets_no_config(aws):
    enable_explainability(aws, stack_parameter=False)
    arn = explained_package(aws)
    result = aws.run(package_event(arn, "Approved"))
    assert result["action"] == "updated"
    assert "explainability_config" not in result
    assert aws.writes == [(PACKAGE_STATE, arn)]
    assert aws.parameters() == {"ModelPackageArn": arn, "InstanceType": INSTANCE_TYPE}
    (update,) = aws.updates
    assert update["Parameters"] == PREVIOUS_VALUES
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
    assert aws.updates == [] and aws.writes == [] and config_keys(aws) == []
    assert aws.state() == {"ModelPackageArn": "none", "ExplainabilityConfig": PREVIOUS_CONFIG}
    (line,) = log_lines(caplog)
    assert (line["action"], line["explainability_template"]) == ("failed", TEMPLATE_URI)


def test_a_malformed_explainability_template_uri_fails_the_promotion(explaining):
    aws = explaining
    arn = explained_package(aws, config_uri=f"https://{BUCKET}.s3.amazonaws.com/{TEMPLATE_KEY}")
    with pytest.raises(PromotionError, match="is not an s3://bucket/key URI"):
        aws.run(package_event(arn, "Approved"))
    assert aws.updates == [] and aws.writes == [] and config_keys(aws) == []


def test_an_s3_error_on_the_template_is_raised_for_a_retry(explaining, caplog):
    aws = explaining
    aws.s3.delete_object(Bucket=BUCKET, Key=TEMPLATE_KEY)
    arn = explained_package(aws)
    with pytest.raises(ClientError) as raised:
        aws.run(package_event(arn, "Approved"))
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"
    assert aws.updates == [] and aws.writes == [] and config_keys(aws) == []
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
    aws.writes.clear()
    second = aws.run(event)
    assert second["action"] == "unchanged" and "duplicate" in second["reason"]
    assert "explainability_config" not in second
    assert config_keys(aws) == [] and len(aws.updates) == 1 and aws.writes == []


def test_explainability_needs_an_s3_client(explaining):
    aws = explaining
    aws.s3 = None
    with pytest.raises(ConfigurationError, match="no S3 client"):
        aws.run(package_event(explained_package(aws), "Approved"))
    assert aws.updates == [] and aws.writes == []


def test_the_handler_writes_the_explainability_config_from_the_environment(explaining, environment, monkeypatch):
    aws = explaining
    arn = explained_package(aws)
    monkeypatch.setenv("EXPLAINABILITY", json.dumps(EXPLAINABILITY))
    result = handler(package_event(arn, "Approved"), None)
    assert result["action"] == "updated"
    assert aws.state()["ExplainabilityConfig"] == result["explainability_config"]
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
