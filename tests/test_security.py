"""Security stack: keys, trail, alert topic, budget, Config rules and retention of stateful resources."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Match

from tests.helpers import sandbox_config
from tests.templates import statements_of


def test_three_rotating_customer_managed_keys_are_retained(dev):
    keys = dev.resources("Security", "AWS::KMS::Key")
    assert len(keys) == 3
    for key in keys.values():
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["Properties"]["PendingWindowInDays"] == 7
        assert key["DeletionPolicy"] == "Retain" and key["UpdateReplacePolicy"] == "Retain"
    aliases = {a["Properties"]["AliasName"] for a in dev.resources("Security", "AWS::KMS::Alias").values()}
    assert aliases == {"alias/mlp-dev-data", "alias/mlp-dev-artifacts", "alias/mlp-dev-logs"}


def _logs_key_statements(synthesized):
    (logs_key,) = [k for i, k in synthesized.resources("Security", "AWS::KMS::Key").items() if "Logs" in i]
    return {s.get("Sid"): s for s in statements_of(logs_key)}


def test_logs_key_lets_only_the_services_that_need_it(dev):
    statements = _logs_key_statements(dev)
    logs = statements["AllowCloudWatchLogs"]
    assert logs["Principal"] == {"Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]
    trail = statements["AllowCloudTrailEncrypt"]
    assert trail["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert "kms:EncryptionContext:aws:cloudtrail:arn" in trail["Condition"]["StringLike"]
    assert trail["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    publishers = {p for p in statements["AllowAlertPublishers"]["Principal"]["Service"]}
    assert publishers == {
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
        "budgets.amazonaws.com",
        "sns.amazonaws.com",
    }


def test_trail_validates_encrypts_and_records_lake_data_events(dev):
    (trail,) = dev.resources("Security", "AWS::CloudTrail::Trail").values()
    props = trail["Properties"]
    assert props["EnableLogFileValidation"] is True
    assert props["KMSKeyId"] and props["CloudWatchLogsLogGroupArn"]
    assert props["IsMultiRegionTrail"] is False  # dev.yaml; prod.yaml sets it
    assert "EventSelectors" not in props  # mutually exclusive with advanced selectors
    management, data = props["AdvancedEventSelectors"]
    assert management["FieldSelectors"] == [{"Field": "eventCategory", "Equals": ["Management"]}]
    fields = {f["Field"]: f for f in data["FieldSelectors"]}
    assert fields["eventCategory"]["Equals"] == ["Data"]
    assert fields["resources.type"]["Equals"] == ["AWS::S3::Object"]
    assert fields["resources.ARN"]["StartsWith"] == [{"Fn::Sub": "arn:${AWS::Partition}:s3:::mlp-dev-datalake-"}]


def test_prod_trail_is_multi_region(prod):
    (trail,) = prod.resources("Security", "AWS::CloudTrail::Trail").values()
    assert trail["Properties"]["IsMultiRegionTrail"] is True


def test_audit_buckets_are_private_tls_only_versioned_and_retained(dev):
    buckets = dev.resources("Security", "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert bucket["DeletionPolicy"] == "Retain"
    (trail_bucket,) = [b for i, b in buckets.items() if "AuditBucket" in i]
    sse = trail_bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and sse["BucketKeyEnabled"] is True
    assert trail_bucket["Properties"]["LoggingConfiguration"]["LogFilePrefix"] == "trail/"
    dev.template("Security").resource_properties_count_is(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
        2,
    )


def test_alert_topic_is_encrypted_tls_only_and_open_to_publishers_of_this_account(prod):
    template = prod.template("Security")
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    (policy,) = prod.resources("Security", "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    publishers = [s for s in statements if s.get("Sid", "").endswith("Publish")]
    assert {s["Principal"]["Service"] for s in publishers} == {
        "budgets.amazonaws.com",
        "events.amazonaws.com",
        "cloudwatch.amazonaws.com",
    }
    for statement in publishers:
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "ml-platform-oncall@example.com",
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value()},
        },
    )
    template.has_resource_properties("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value()})


def test_budget_alerts_at_configured_thresholds(prod):
    (budget,) = prod.resources("Security", "AWS::Budgets::Budget").values()
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": 20000, "Unit": "USD"}
    assert props["Budget"]["CostFilters"] == {"TagKeyValue": ["user:platform$mlp-prod"]}
    thresholds = [n["Notification"]["Threshold"] for n in props["NotificationsWithSubscribers"]]
    assert thresholds == [50, 80, 100, 120]
    for notification in props["NotificationsWithSubscribers"]:
        types = {s["SubscriptionType"] for s in notification["Subscribers"]}
        assert types == {"SNS", "EMAIL"}


def test_config_rules_only_where_enabled(dev, prod):
    assert dev.resources("Security", "AWS::Config::ConfigRule") == {}
    identifiers = {
        r["Properties"]["Source"]["SourceIdentifier"]
        for r in prod.resources("Security", "AWS::Config::ConfigRule").values()
    }
    assert identifiers == {
        "SAGEMAKER_MODEL_IN_VPC",
        "SAGEMAKER_MODEL_ISOLATION_ENABLED",
        "SAGEMAKER_ENDPOINT_CONFIGURATION_KMS_KEY_CONFIGURED",
        "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET_ACCESS",
        "SAGEMAKER_NOTEBOOK_INSTANCE_KMS_KEY_CONFIGURED",
    }


def test_no_hard_coded_partition(dev, prod):
    # Environment-agnostic templates use ${AWS::Partition} everywhere ...
    for stack_id, template in dev.templates.items():
        assert "arn:aws:" not in json.dumps(template), stack_id
    # ... and an environment-bound one only the partition of its configured region.
    partitions = {p for t in prod.templates.values() for p in re.findall(r'"arn:([a-z-]+):', json.dumps(t))}
    assert partitions <= {prod.platform.security.config.partition}


def test_cost_allocation_tags_on_every_taggable_resource(prod):
    expected = {
        "project": "mlp",
        "environment": "prod",
        "owner": "ml-platform@example.com",
        "platform": "mlp-prod",
        "cost-center": "ml-prod",
    }
    checked = 0
    for stack_id in ("Security", "Network"):
        for logical_id, resource in prod.templates[stack_id]["Resources"].items():
            tags = resource.get("Properties", {}).get("Tags")
            if isinstance(tags, list) and tags and isinstance(tags[0], dict) and "Key" in tags[0]:
                found = {t["Key"]: t["Value"] for t in tags}
                assert expected.items() <= found.items(), logical_id
                checked += 1
    assert checked > 20


def test_protected_environment_has_termination_protection(prod, dev):
    assert all(stack.termination_protection for stack in prod.platform.stacks)
    assert not any(stack.termination_protection for stack in dev.platform.stacks)


def test_throwaway_environment_may_destroy_data(synth):
    sandbox = synth(sandbox_config())
    for key in sandbox.resources("Security", "AWS::KMS::Key").values():
        assert key["DeletionPolicy"] == "Delete"
    for bucket in sandbox.resources("Security", "AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    # Emptying buckets on delete needs the auto-delete custom resource.
    assert sandbox.resources("Security", "Custom::S3AutoDeleteObjects")
