"""Security stack: KMS keys, the audit trail, the alert topic, the budget and the SageMaker guardrail."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.catalog.naming import generated_bucket_prefix
from infra.checks.compliance import acknowledge, checkov_skip, in_hipaa_nist_pci
from infra.checks.guardrails import SageMakerGuardrailPolicy
from infra.config import BudgetConfig, CloudTrailConfig, KmsConfig, PlatformConfig, SecurityConfig
from infra.constructs import sagemaker_roles
from infra.constructs.buckets import AccessLogsBucket, EncryptedBucket
from infra.constructs.log_groups import log_retention
from infra.constructs.queues import DeadLetterQueue
from infra.constructs.retention import retention
from stacks.base import PlatformStack


class PlatformKeys(Construct):
    """Customer-managed KMS keys with rotation: data lake, ML artifacts, and logs/alerts.

    `kms_config` sets the deletion window; `config` names the aliases and decides retention.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: PlatformConfig, kms_config: KmsConfig) -> None:
        super().__init__(scope, construct_id)
        self.data = self._key(
            config, kms_config, "data", "Data lake buckets (raw, curated, analytics) and Athena results"
        )
        self.artifacts = self._key(
            config, kms_config, "artifacts", "ML artifacts: SageMaker volumes, outputs, models, data capture"
        )
        self.logs = self._key(
            config, kms_config, "logs", "Audit and operations telemetry: CloudTrail, CloudWatch Logs, alert topic"
        )
        self._let_log_services_encrypt()
        self._let_alert_publishers_encrypt()

    def _key(self, config: PlatformConfig, kms_config: KmsConfig, name: str, description: str) -> kms.Key:
        """A rotating key aliased `alias/<prefix>-<name>`, retained unless the config allows destroying data."""
        return kms.Key(
            self,
            name.capitalize(),
            alias=f"alias/{config.prefix}-{name}",
            description=description,
            enable_key_rotation=True,
            pending_window=cdk.Duration.days(kms_config.pending_window_days),
            removal_policy=retention(config),
        )

    def _let_log_services_encrypt(self) -> None:
        """Key policy statements letting CloudWatch Logs and CloudTrail use the logs key for this account."""
        region, account, partition = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION
        # CloudWatch Logs encrypts log groups of this account and region only.
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogs",
                principals=[iam.ServicePrincipal(f"logs.{region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:log-group:*"
                    }
                },
            )
        )
        # CloudTrail encrypts log files of this account's trails only.
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailEncrypt",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:{partition}:cloudtrail:*:{account}:trail/*"
                    },
                    "StringEquals": {"aws:SourceAccount": account},
                },
            )
        )
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailDescribe",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
            )
        )

    def _let_alert_publishers_encrypt(self) -> None:
        """A key policy statement letting alarms, EventBridge rules and budgets publish to the encrypted alert topic."""
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlertPublishers",
                principals=[
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    iam.ServicePrincipal("events.amazonaws.com"),
                    iam.ServicePrincipal("budgets.amazonaws.com"),
                    # SNS moves undeliverable alerts into the encrypted dead-letter queue.
                    iam.ServicePrincipal("sns.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )


class AuditTrail(Construct):
    """CloudTrail with log file validation, KMS, CloudWatch Logs delivery and lake data events.

    `trail_config` is the cloudtrail section; `key` encrypts the trail, its bucket and its log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        trail_config: CloudTrailConfig,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = AccessLogsBucket(self, "AccessLogs", config=config)
        # CloudTrail names the trail's key in each write; the bucket still refuses non-KMS uploads.
        self.bucket = EncryptedBucket(
            self,
            "Bucket",
            config=config,
            key=key,
            access_logs=self.access_logs,
            access_logs_prefix="trail/",
            pin_key=False,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=key,
            retention=log_retention(trail_config.log_retention_days),
            removal_policy=retention(config),
        )
        self.trail = self._trail(trail_config, key)
        if trail_config.lake_data_events:
            self._select_lake_data_events(config)

    def _trail(self, trail_config: CloudTrailConfig, key: kms.IKey) -> cloudtrail.Trail:
        """The validated, encrypted trail, delivered to the bucket and to the log group."""
        trail = cloudtrail.Trail(
            self,
            "Trail",
            bucket=self.bucket,
            encryption_key=key,
            enable_file_validation=True,
            include_global_service_events=True,
            is_multi_region_trail=trail_config.multi_region,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=self.log_group,
        )
        if not trail_config.multi_region:
            checkov_skip(
                trail,
                "A single-region trail by this environment's config (security.cloudtrail.multi_region: false); "
                "an environment that audits every region sets it true, as prod does.",
                "CKV_AWS_67",
            )
        logs_role = trail.node.try_find_child("LogsRole")
        if logs_role is not None:
            acknowledge(
                logs_role,
                "CDK-generated policy of the trail's delivery role, scoped to this one log group; "
                "an inline policy lives and dies with its role.",
                in_hipaa_nist_pci("IAMNoInlinePolicy"),
            )
        return trail

    def _select_lake_data_events(self, config: PlatformConfig) -> None:
        """Event selectors of the trail: management events plus S3 object events of the data lake's buckets."""
        cfn_trail: cloudtrail.CfnTrail = self.trail.node.default_child  # type: ignore[assignment]
        # Advanced selectors match the lake's buckets by the name prefix CloudFormation gives them.
        lake = generated_bucket_prefix(config, "DataLake")
        cfn_trail.add_property_deletion_override("EventSelectors")
        cfn_trail.add_property_override(
            "AdvancedEventSelectors",
            [
                {
                    "Name": "Management events",
                    "FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}],
                },
                {
                    "Name": "Data lake object events",
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Data"]},
                        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                        {
                            "Field": "resources.ARN",
                            "StartsWith": [cdk.Fn.sub(f"arn:${{AWS::Partition}}:s3:::{lake}")],
                        },
                    ],
                },
            ],
        )


class AlertTopic(Construct):
    """The encrypted, TLS-only SNS topic every alarm and budget notifies.

    `alert_emails` are subscribed; `key` encrypts the topic and the queue of undelivered alerts.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, alert_emails: list[str], key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True)
        # Alerts SNS could not deliver (e.g. a bounced address) land here instead of vanishing.
        self.dead_letters = None
        if alert_emails:
            self.dead_letters = DeadLetterQueue(
                self, "UndeliveredAlerts", config=config, key=key, source="the alert subscriptions"
            )
        for email in alert_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email, dead_letter_queue=self.dead_letters))
        account = cdk.Aws.ACCOUNT_ID
        for service in ("budgets.amazonaws.com", "events.amazonaws.com", "cloudwatch.amazonaws.com"):
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Allow{service.split('.')[0].capitalize()}Publish",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": account}},
                )
            )


class CostBudget(Construct):
    """A monthly budget over the resources tagged with this environment, alerting at thresholds."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        budget: BudgetConfig,
        alert_emails: list[str],
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic.topic_arn)]
        subscribers += [
            budgets.CfnBudget.SubscriberProperty(subscription_type="EMAIL", address=email) for email in alert_emails
        ]
        self.budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=budget.monthly_limit_usd, unit="USD"),
                # Needs the `platform` tag activated as a cost allocation tag in Billing.
                cost_filters={"TagKeyValue": [f"user:platform${config.prefix}"]},
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        comparison_operator="GREATER_THAN",
                        notification_type="ACTUAL",
                        threshold=threshold,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for threshold in budget.alert_thresholds_percent
            ],
        )


# Detective twins of the ML rule pack and the guardrail, evaluated by AWS Config on live resources.
SAGEMAKER_CONFIG_RULES = (
    "SAGEMAKER_MODEL_IN_VPC",
    "SAGEMAKER_MODEL_ISOLATION_ENABLED",
    "SAGEMAKER_ENDPOINT_CONFIGURATION_KMS_KEY_CONFIGURED",
    "SAGEMAKER_NOTEBOOK_NO_DIRECT_INTERNET_ACCESS",
    "SAGEMAKER_NOTEBOOK_INSTANCE_KMS_KEY_CONFIGURED",
)


class SecurityStack(PlatformStack):
    """Keys, audit trail, alert topic, budget, SageMaker guardrail policy and Config rules.

    `security` is the config's security section; `config` gives identity, retention and the
    registry's consuming accounts (their serving roles decrypt models).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, security: SecurityConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.keys = PlatformKeys(self, "Keys", config=config, kms_config=security.kms)
        # Environments in other accounts serve this registry's versions: their serving roles decrypt
        # the models and baselines, through S3 only.
        consumers = sagemaker_roles.consumer_grant(
            config,
            self.partition,
            sid="ServingAccountsDecryptModels",
            actions=["kms:Decrypt"],
            resources=["*"],
            StringEquals={"kms:ViaService": f"s3.{self.region}.amazonaws.com"},
        )
        if consumers is not None:
            self.keys.artifacts.add_to_resource_policy(consumers)
        self.alerts = AlertTopic(self, "Alerts", config=config, alert_emails=security.alert_emails, key=self.keys.logs)
        self.audit = None
        if security.cloudtrail.enabled:
            self.audit = AuditTrail(self, "Audit", config=config, trail_config=security.cloudtrail, key=self.keys.logs)
        self.budget = None
        if security.budget is not None:
            self.budget = CostBudget(
                self,
                "Budget",
                config=config,
                budget=security.budget,
                alert_emails=security.alert_emails,
                topic=self.alerts.topic,
            )
        self.guardrail = SageMakerGuardrailPolicy(self, "SageMakerGuardrail")
        if security.config_rules:
            # Imported only when used: the bindings cost ~0.1 s of every synth that has no rules.
            from aws_cdk import aws_config as config_rules

            for identifier in SAGEMAKER_CONFIG_RULES:
                config_rules.ManagedRule(
                    self,
                    identifier.title().replace("_", ""),
                    identifier=identifier,
                    description=f"AWS Config managed rule {identifier} (detective twin of the guardrail)",
                )
