"""Where a workload runs: the platform VPC's isolated subnets and the workload security group."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2


@dataclass(frozen=True)
class Placement:
    """The Network stack's VPC, subnet selection and workload security group, as one prop."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection  # the isolated subnets workloads run in
    security_group: ec2.ISecurityGroup  # the workload security group

    @property
    def subnet_ids(self) -> list[str]:
        return self.vpc.select_subnets(subnet_type=self.subnets.subnet_type).subnet_ids
