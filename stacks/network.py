"""Network stack: an isolated VPC, VPC endpoints with policies, security groups and flow logs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.catalog import naming
from infra.catalog.endpoints import interface_endpoints
from infra.checks.compliance import acknowledge, in_hipaa_nist_pci
from infra.config import NetworkConfig, PlatformConfig, TrainingConfig
from infra.constructs.log_groups import log_retention
from infra.constructs.retention import retention
from stacks.base import PlatformStack


class PlatformNetwork(Construct):
    """The VPC: isolated subnets (plus NAT egress only when configured), endpoints, flow logs.

    `network` shapes the VPC; `training` decides whether the workspace endpoints exist; `config`
    gives the environment's retention; `logs_key` encrypts the flow logs.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        network: NetworkConfig,
        training: TrainingConfig | None,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.flow_log_group = self._flow_log_group(config, network, logs_key)
        self.vpc = self._vpc(network)
        self.subnets = ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
            if network.egress == "isolated"
            else ec2.SubnetType.PRIVATE_WITH_EGRESS
        )
        self.workload_sg = self._workload_security_group()
        self.endpoint_sg = self._endpoint_security_group(network)
        self.s3_endpoint = self._s3_endpoint(config)
        self.dynamodb_endpoint = self._dynamodb_endpoint()
        self.interface_endpoints = self._interface_endpoints(training)

    def _flow_log_group(self, config: PlatformConfig, network: NetworkConfig, logs_key: kms.IKey) -> logs.LogGroup:
        """The encrypted log group the VPC's flow logs are delivered to."""
        group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=logs_key,
            retention=log_retention(network.flow_logs_retention_days),
            removal_policy=retention(config),
        )
        group.node.add_dependency(logs_key)
        return group

    def _vpc(self, network: NetworkConfig) -> ec2.Vpc:
        """The VPC with its subnets (isolated, or private behind NAT in controlled egress) and all-traffic flow logs."""
        subnets = [ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)]
        if network.egress == "controlled":
            subnets = [
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            ]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(network.cidr),
            max_azs=network.max_azs,
            subnet_configuration=subnets,
            nat_gateways=network.nat_gateway_count,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            restrict_default_security_group=True,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        acknowledge(
            vpc.node.find_child("All"),
            "CDK-generated policy of the flow log delivery role, scoped to this one log group; "
            "an inline policy lives and dies with its role.",
            in_hipaa_nist_pci("IAMNoInlinePolicy"),
        )
        return vpc

    def _workload_security_group(self) -> ec2.SecurityGroup:
        """The one security group of every workload: HTTPS out, and all traffic among its members."""
        # SageMaker jobs and models, Lambdas and Glue share it: distributed training, EFA and Glue
        # workers require all traffic among themselves.
        group = ec2.SecurityGroup(
            self,
            "WorkloadSecurityGroup",
            vpc=self.vpc,
            description="SageMaker jobs/models, Lambdas and Glue jobs of the ML platform",
            allow_all_outbound=False,
        )
        group.add_ingress_rule(group, ec2.Port.all_traffic(), "peers of distributed jobs")
        group.add_egress_rule(group, ec2.Port.all_traffic(), "peers of distributed jobs")
        acknowledge(
            group,
            "The all-traffic ingress comes only from this security group itself (peers of one "
            "distributed job, EFA, Glue workers), never from a CIDR.",
            in_hipaa_nist_pci("EC2RestrictedCommonPorts"),
        )
        # The subnets have no route to the internet (isolated mode), so 443 reaches only the
        # interface endpoints and the S3/DynamoDB gateway endpoints' prefix lists.
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs through VPC endpoints")
        return group

    def _endpoint_security_group(self, network: NetworkConfig) -> ec2.SecurityGroup:
        """The security group of the interface endpoints' network interfaces: HTTPS from the VPC only."""
        group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface VPC endpoints of the ML platform: HTTPS from the VPC only",
            allow_all_outbound=False,
        )
        # A literal CIDR from config, not the VPC's CidrBlock attribute, which the nag port rules
        # cannot evaluate.
        group.add_ingress_rule(ec2.Peer.ipv4(network.cidr), ec2.Port.tcp(443), "HTTPS from the VPC")
        return group

    def _s3_endpoint(self, config: PlatformConfig) -> ec2.GatewayVpcEndpoint:
        """The S3 gateway endpoint: buckets of this account, the AWS-owned bucket of ECR image layers and,
        serving another stage's registry, that stage's model artifacts.
        """
        account = cdk.Aws.ACCOUNT_ID
        endpoint = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.subnets]
        )
        endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="OwnAccountBuckets",
                principals=[iam.AnyPrincipal()],
                actions=["s3:*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:ResourceAccount": account, "aws:PrincipalAccount": account}},
            )
        )
        endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="EcrImageLayers",
                principals=[iam.AnyPrincipal()],
                actions=["s3:GetObject"],
                resources=[f"arn:{cdk.Aws.PARTITION}:s3:::prod-{cdk.Aws.REGION}-starport-layer-bucket/*"],
            )
        )
        source = config.serving.model_source if config.serving else None
        if source is not None:
            # Serving another stage's registry: its models, baselines and configs, read from that account's
            # artifacts bucket under the pipeline's prefix, as the serving roles' own grants allow; the
            # monitor jobs' baselines are S3Prefix inputs, which SageMaker lists before it reads them.
            prefix = f"pipelines/{naming.training_pipeline(config)}/"
            accounts = {"aws:ResourceAccount": source.account, "aws:PrincipalAccount": account}
            for sid, action, resource, listed in (
                ("ModelSourceArtifacts", "s3:GetObject", f"*/{prefix}*", {}),
                ("ModelSourceBaselineListing", "s3:ListBucket", "*", {"StringLike": {"s3:prefix": f"{prefix}*"}}),
            ):
                endpoint.add_to_policy(
                    iam.PolicyStatement(
                        sid=sid,
                        principals=[iam.AnyPrincipal()],
                        actions=[action],
                        resources=[f"arn:{cdk.Aws.PARTITION}:s3:::{resource}"],
                        conditions={"StringEquals": accounts, **listed},
                    )
                )
        return endpoint

    def _dynamodb_endpoint(self) -> ec2.GatewayVpcEndpoint:
        """The DynamoDB gateway endpoint: tables of this account only."""
        account = cdk.Aws.ACCOUNT_ID
        endpoint = self.vpc.add_gateway_endpoint(
            "DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=[self.subnets]
        )
        endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="OwnAccountTables",
                principals=[iam.AnyPrincipal()],
                actions=["dynamodb:*"],
                resources=[f"arn:{cdk.Aws.PARTITION}:dynamodb:{cdk.Aws.REGION}:{account}:table/*"],
                conditions={"StringEquals": {"aws:PrincipalAccount": account}},
            )
        )
        return endpoint

    def _interface_endpoints(self, training: TrainingConfig | None) -> dict[str, ec2.InterfaceVpcEndpoint]:
        """An interface endpoint per AWS API the environment calls, usable by this account's principals only."""
        endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for wanted in interface_endpoints(training):
            name = wanted.construct_id
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=getattr(ec2.InterfaceVpcEndpointAwsService, wanted.cdk_service),
                subnets=self.subnets,
                security_groups=[self.endpoint_sg],
                open=False,
                private_dns_enabled=True,
            )
            # Stolen credentials of another account cannot move data out through the endpoint.
            endpoint.add_to_policy(
                iam.PolicyStatement(
                    sid="OwnAccountPrincipals",
                    principals=[iam.AnyPrincipal()],
                    actions=["*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:PrincipalAccount": cdk.Aws.ACCOUNT_ID}},
                )
            )
            endpoints[name] = endpoint
        return endpoints


class NetworkStack(PlatformStack):
    """The platform's VPC and everything that controls traffic in and out of it.

    Props as PlatformNetwork's: the `network` and `training` sections and the logs key.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        network: NetworkConfig,
        training: TrainingConfig | None,
        logs_key: kms.IKey,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.network = PlatformNetwork(
            self, "Network", config=config, network=network, training=training, logs_key=logs_key
        )
        self.vpc = self.network.vpc
        if network.egress == "controlled":
            acknowledge(
                self.network.vpc,
                "Controlled-egress mode was chosen in config: public subnets hold only the NAT "
                "gateways; workloads stay in private subnets without public IPs.",
                [
                    *in_hipaa_nist_pci("VPCSubnetAutoAssignPublicIpDisabled"),
                    *in_hipaa_nist_pci("VPCNoUnrestrictedRouteToIGW"),
                ],
            )
