"""Network stack: no internet path, the endpoint list and policies, security groups, flow logs."""

from __future__ import annotations

import pytest

from infra.catalog.endpoints import PLATFORM as INTERFACE_ENDPOINTS
from tests.helpers import sandbox_config

EXPECTED_SERVICES = {
    "sagemaker.api",
    "sagemaker.runtime",
    "sts",
    "logs",
    "monitoring",
    "ecr.api",
    "ecr.dkr",
    "kms",
    "glue",
    "lakeformation",
    "athena",
    "events",
    "ssm",
    "sns",
    "sqs",
    "cloudformation",
}


def _service(endpoint) -> str:
    # com.amazonaws.<region>.<service>, synthesized as Fn::Join ["", ["com.amazonaws.", region, ".svc"]]
    name = endpoint["Properties"]["ServiceName"]
    return name["Fn::Join"][1][-1].lstrip(".") if isinstance(name, dict) else name.split(".", 3)[-1]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_internet_path_in_isolated_mode(synth, env):
    network = synth(env)
    for resource_type in (
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EIP",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::EgressOnlyInternetGateway",
    ):
        assert network.resources("Network", resource_type) == {}, resource_type
    routes = network.resources("Network", "AWS::EC2::Route")
    assert routes == {}, "isolated subnets have only the local route and gateway-endpoint routes"
    for subnet in network.resources("Network", "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_one_subnet_per_configured_az(dev, prod):
    assert len(dev.resources("Network", "AWS::EC2::Subnet")) == 1
    subnets = prod.resources("Network", "AWS::EC2::Subnet").values()
    azs = [s["Properties"]["AvailabilityZone"] for s in subnets]
    # Fn::GetAZs at deploy time: no AWS lookup at synth time, and all three AZs of prod.yaml.
    assert azs == [{"Fn::Select": [i, {"Fn::GetAZs": ""}]} for i in range(3)]
    assert {s["Properties"]["CidrBlock"] for s in subnets} == {"10.50.0.0/18", "10.50.64.0/18", "10.50.128.0/18"}


def test_interface_endpoints_cover_every_platform_api(dev):
    endpoints = [
        e
        for e in dev.resources("Network", "AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Interface"
    ]
    assert {_service(e) for e in endpoints} == EXPECTED_SERVICES
    assert len(endpoints) == len(INTERFACE_ENDPOINTS)
    for endpoint in endpoints:
        props = endpoint["Properties"]
        assert props["PrivateDnsEnabled"] is True
        (statement,) = props["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"AWS": "*"}
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}


def test_gateway_endpoints_are_scoped_to_this_account(dev):
    gateways = {
        _service(e): e
        for e in dev.resources("Network", "AWS::EC2::VPCEndpoint").values()
        if e["Properties"].get("VpcEndpointType") == "Gateway"
    }
    assert set(gateways) == {"s3", "dynamodb"}
    s3 = {s["Sid"]: s for s in gateways["s3"]["Properties"]["PolicyDocument"]["Statement"]}
    assert s3["OwnAccountBuckets"]["Condition"] == {
        "StringEquals": {
            "aws:ResourceAccount": {"Ref": "AWS::AccountId"},
            "aws:PrincipalAccount": {"Ref": "AWS::AccountId"},
        }
    }
    assert s3["EcrImageLayers"]["Action"] == "s3:GetObject"
    ddb = gateways["dynamodb"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert ddb["Condition"] == {"StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}}


def test_security_groups_allow_only_what_is_needed(dev):
    groups = dev.resources("Network", "AWS::EC2::SecurityGroup")
    (endpoint_sg,) = [g for i, g in groups.items() if "EndpointSecurityGroup" in i]
    assert endpoint_sg["Properties"]["SecurityGroupIngress"] == [
        {
            "CidrIp": "10.40.0.0/16",
            "Description": "HTTPS from the VPC",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    # No egress from endpoint ENIs (CDK's placeholder rule matches nothing).
    assert endpoint_sg["Properties"]["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32"
    (workload_sg,) = [g for i, g in groups.items() if "WorkloadSecurityGroup" in i]
    assert workload_sg["Properties"]["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "AWS APIs through VPC endpoints",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    ingress = list(dev.resources("Network", "AWS::EC2::SecurityGroupIngress").values())
    assert len(ingress) == 1 and "SourceSecurityGroupId" in ingress[0]["Properties"]
    assert dev.resources("Network", "Custom::VpcRestrictDefaultSG"), "the default security group is emptied"


def test_flow_logs_all_traffic_to_encrypted_retained_log_group(dev, prod):
    for synthesized, days in ((dev, 30), (prod, 365)):
        (group,) = synthesized.resources("Network", "AWS::Logs::LogGroup").values()
        assert group["Properties"]["RetentionInDays"] == days
        assert "KmsKeyId" in group["Properties"]
        assert group["DeletionPolicy"] == "Retain"
        (flow_log,) = synthesized.resources("Network", "AWS::EC2::FlowLog").values()
        assert flow_log["Properties"]["TrafficType"] == "ALL"
        assert flow_log["Properties"]["LogDestinationType"] == "cloud-watch-logs"


def test_controlled_egress_adds_nat_and_keeps_workloads_private(synth):
    sandbox = synth(sandbox_config())
    assert len(sandbox.resources("Network", "AWS::EC2::NatGateway")) == 1
    assert len(sandbox.resources("Network", "AWS::EC2::InternetGateway")) == 1
    subnets = sandbox.resources("Network", "AWS::EC2::Subnet")
    private = [s for i, s in subnets.items() if "Isolated" in i]
    assert len(private) == 2 and all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in private)
    # Interface endpoints stay in the private subnets.
    for endpoint in sandbox.resources("Network", "AWS::EC2::VPCEndpoint").values():
        if endpoint["Properties"]["VpcEndpointType"] == "Interface":
            refs = [s["Ref"] for s in endpoint["Properties"]["SubnetIds"]]
            assert all("Isolated" in ref for ref in refs)
