"""The promoted version's state: SSM parameters that the Serving stack's parameters resolve.

The Serving stack takes the approved model package and its monitors' baselines as stack
parameters of type `AWS::SSM::Parameter::Value<String>`, whose values live here. CloudFormation
resolves them on every create and update, so a deployment that cannot reuse previous parameter
values (a CDK pipeline's CloudFormation action) still serves the promoted version instead of
resetting it. The promotion function writes them, then updates the stack; after a failed update
rolls back, it writes back what the stack serves. SSM refuses empty values: `UNSET` means "none".

They live in the DataLake stack (stateful, deployed before Serving, which cannot create what its
own parameters resolve). Their template never changes once created, so a stack update never
rewrites a promoted value; `make review` treats replacing or removing one as losing state.

CloudFormation resolves SSM-typed parameters with the credentials of whoever creates the change
set: for `cdk deploy` and a CDK pipeline, the CDK bootstrap's deploy role, which the default
bootstrap template lets read only its own version parameter. So the DataLake stack also grants
that role `ssm:GetParameters` on exactly these parameters (docs/decisions.md, decision 22).
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from infra.catalog import monitors, naming
from infra.config import PlatformConfig
from infra.constructs.retention import retention

UNSET = "none"
MODEL_PACKAGE = "ModelPackageArn"
_S3_URI = rf"^{UNSET}$|^s3://[a-z0-9.-]+/.+$"


def parameters(config: PlatformConfig) -> dict[str, str]:
    """Each promoted stack parameter the config's Serving stack has, with the values it allows."""
    assert config.serving is not None
    source = config.serving.model_source
    account = source.account if source else "[0-9]{12}"
    group = naming.model_package_group(config)
    allowed = {
        MODEL_PACKAGE: rf"^{UNSET}$|^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:{account}:model-package/{group}/[0-9]+$"
    }
    # The monitors the Serving stack creates, each with its baselines.
    for kind, _ in monitors.configured(config.monitoring):
        allowed.update({name: _S3_URI for name in kind.state_parameters})
    return allowed


class ServingState(Construct):
    """One SSM String parameter per promoted value, created as `none` (no version promoted yet)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig) -> None:
        super().__init__(scope, construct_id)
        self.parameters: dict[str, cdk.CfnResource] = {}
        for name, pattern in parameters(config).items():
            resource = cdk.CfnResource(
                self,
                name,
                type="AWS::SSM::Parameter",
                properties={
                    "Name": naming.serving_state_parameter(config, name),
                    "Type": "String",
                    "Value": UNSET,
                    "AllowedPattern": pattern,
                    "Description": f"{config.prefix}: the promoted version's {name}, written by the promotion "
                    "function and resolved by the Serving stack",
                },
            )
            # Promoted state: a deleted stack keeps it unless the config allows destroying data.
            resource.apply_removal_policy(retention(config))
            self.parameters[name] = resource
        self.deploy_role_read = self._deploy_role_reads(config)

    def _deploy_role_reads(self, config: PlatformConfig) -> cdk.CfnResource | None:
        """A managed policy on the CDK bootstrap's deploy role: read these parameters, nothing else."""
        synthesizer = cdk.Stack.of(self).synthesizer
        if not isinstance(synthesizer, cdk.DefaultStackSynthesizer):
            return None
        role = cdk.Fn.sub(synthesizer.deploy_role_arn.split(":role/", 1)[1])
        arns = [
            cdk.Fn.sub(
                "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
                + naming.serving_state_parameter(config, name)
            )
            for name in self.parameters
        ]
        return cdk.CfnResource(
            self,
            "DeployRoleReads",
            type="AWS::IAM::ManagedPolicy",
            properties={
                "Description": f"{config.prefix}: cdk deploy resolves the Serving stack's SSM-typed parameters",
                "Roles": [role],
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": arns}],
                },
            },
        )
