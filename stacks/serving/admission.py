"""Cross-account admission: the default event bus lets the model source account's approval events in."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk

from infra.config import PeerEnvironment


def admit_source_events(stack: cdk.Stack, source: PeerEnvironment, pattern: dict[str, Any]) -> cdk.CfnResource:
    """Creates the bus policy `SourceApprovals`: PutEvents from `source`'s account, of `pattern`'s kind only."""
    properties = {
        "EventBusName": "default",
        "StatementId": f"{stack.stack_name}-source-approvals"[:64],
        # The statement's Sid is StatementId.
        "Statement": {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{stack.partition}:iam::{source.account}:root"},
            "Action": "events:PutEvents",
            "Resource": f"arn:{stack.partition}:events:{stack.region}:{stack.account}:event-bus/default",
            # Both keys are multivalued (a PutEvents call carries entries): a set operator, and present.
            "Condition": {
                "ForAllValues:StringEquals": {
                    "events:source": pattern["source"][0],
                    "events:detail-type": pattern["detail-type"][0],
                },
                "Null": {"events:source": "false", "events:detail-type": "false"},
            },
        },
    }
    # A plain resource: the L1 class warns of its deprecated `principal` on every synth.
    return cdk.CfnResource(stack, "SourceApprovals", type="AWS::Events::EventBusPolicy", properties=properties)
