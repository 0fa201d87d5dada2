"""The SageMaker guardrail policy: actions, condition operators and keys, and the NVMe exemption."""

from __future__ import annotations

import pytest

from infra.catalog import instances
from tests.templates import actions_of, statements_of


@pytest.fixture(scope="module")
def statements(dev):
    (policy,) = [
        r
        for logical_id, r in dev.resources("Security", "AWS::IAM::ManagedPolicy").items()
        if logical_id.startswith("SageMakerGuardrail")
    ]
    return {s["Sid"]: s for s in statements_of(policy)}


JOBS = {
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateDataQualityJobDefinition",
    "sagemaker:CreateModelQualityJobDefinition",
    "sagemaker:CreateModelBiasJobDefinition",
    "sagemaker:CreateModelExplainabilityJobDefinition",
}


def test_every_statement_is_a_deny_on_all_resources(statements):
    assert len(statements) == 8
    for statement in statements.values():
        assert statement["Effect"] == "Deny" and statement["Resource"] == "*"


def test_vpc_is_required_for_jobs_and_models(statements):
    for sid, key in (
        ("DenyWithoutVpcSubnets", "sagemaker:VpcSubnets"),
        ("DenyWithoutVpcSecurityGroups", "sagemaker:VpcSecurityGroupIds"),
    ):
        assert actions_of(statements[sid]) == JOBS | {"sagemaker:CreateModel"}
        assert statements[sid]["Condition"] == {"Null": {key: "true"}}


def test_isolation_and_inter_container_encryption(statements):
    isolation = statements["DenyWithoutNetworkIsolation"]
    assert actions_of(isolation) == JOBS | {"sagemaker:CreateModel"}
    assert isolation["Condition"] == {"BoolIfExists": {"sagemaker:NetworkIsolation": "false"}}
    encryption = statements["DenyWithoutInterContainerEncryption"]
    # Models have no inter-container traffic key; CreateTransformJob has neither key.
    assert actions_of(encryption) == JOBS
    assert encryption["Condition"] == {"BoolIfExists": {"sagemaker:InterContainerTrafficEncryption": "false"}}
    assert "sagemaker:CreateTransformJob" not in actions_of(isolation) | actions_of(encryption)


def test_output_key_required(statements):
    statement = statements["DenyWithoutOutputKmsKey"]
    assert actions_of(statement) == JOBS | {"sagemaker:CreateTransformJob"}
    assert statement["Condition"] == {"Null": {"sagemaker:OutputKmsKeyArn": "true", "sagemaker:OutputKmsKey": "true"}}


def test_volume_key_required_except_on_local_nvme(statements):
    statement = statements["DenyWithoutVolumeKmsKey"]
    assert actions_of(statement) == JOBS | {"sagemaker:CreateTransformJob", "sagemaker:CreateEndpointConfig"}
    condition = statement["Condition"]
    assert condition["Null"] == {
        "sagemaker:VolumeKmsKeyArn": "true",
        "sagemaker:VolumeKmsKey": "true",
        "sagemaker:InstanceTypes": "false",
    }
    exempt = condition["ForAllValues:StringNotLike"]["sagemaker:InstanceTypes"]
    assert exempt == list(instances.local_nvme_patterns())
    # The exemption is derived from the catalog: NVMe families in, EBS-only families out.
    for family in ("g5", "g6e", "p4d", "p5", "trn1"):
        assert f"ml.{family}.*" in exempt
    for family in ("m5", "c5", "inf2", "p3"):
        assert f"ml.{family}.*" not in exempt


def test_monitoring_schedules_deny_explicit_false_only(statements):
    assert statements["DenyScheduleWithoutIsolation"]["Condition"] == {"Bool": {"sagemaker:NetworkIsolation": "false"}}
    assert statements["DenyScheduleWithoutInterContainerEncryption"]["Condition"] == {
        "Bool": {"sagemaker:InterContainerTrafficEncryption": "false"}
    }
