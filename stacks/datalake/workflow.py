"""The ETL workflow: the Glue job on new raw data or on schedule, then the curated crawler."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.checks.compliance import INLINE_POLICY_REASON, acknowledge, in_hipaa_nist_pci, service_principal
from infra.config import DataLakeConfig, PlatformConfig
from infra.constructs.queues import DeadLetterQueue
from stacks.datalake.glue_jobs import GlueJobs


class EtlWorkflow(Construct):
    """Runs the ETL job when new raw files arrive (EventBridge -> Glue workflow) or on schedule, then the crawler.

    New objects under the dataset's raw prefix are batched by the workflow's event trigger, so a
    burst of uploads starts one run; undeliverable events wait in an encrypted dead-letter queue.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        lake: DataLakeConfig,
        jobs: GlueJobs,
        raw: s3.IBucket,  # the raw zone, whose new objects start a run
        queue_key: kms.IKey,  # encrypts the dead-letter queue of undelivered events
    ) -> None:
        super().__init__(scope, construct_id)
        etl, dataset = lake.etl, lake.dataset
        name = f"{config.prefix}-lake-etl"
        self.workflow = glue.CfnWorkflow(
            self,
            "Workflow",
            name=name,
            description=f"raw -> curated {dataset.name}, then the curated crawler",
            max_concurrent_runs=1,
        )
        self.starts = self._starts(lake, jobs)
        self.after_job = glue.CfnTrigger(
            self,
            "AfterJob",
            type="CONDITIONAL",
            start_on_creation=True,
            workflow_name=self.workflow.ref,
            description="Crawl the curated table once the job has written new partitions",
            predicate=glue.CfnTrigger.PredicateProperty(
                logical="AND",
                conditions=[
                    glue.CfnTrigger.ConditionProperty(
                        job_name=jobs.job.ref, logical_operator="EQUALS", state="SUCCEEDED"
                    )
                ],
            ),
            actions=[glue.CfnTrigger.ActionProperty(crawler_name=jobs.curated_crawler.ref)],
        )
        self.rule: events.CfnRule | None = None
        self.dead_letters: DeadLetterQueue | None = None
        if etl.new_data_batch_size is not None:
            self._on_new_data(config, lake, name, raw, queue_key)

    def _starts(self, lake: DataLakeConfig, jobs: GlueJobs) -> list[glue.CfnTrigger]:
        """The triggers that run the job: batched new-data events, a schedule, or both."""
        etl, dataset = lake.etl, lake.dataset
        run_job = [glue.CfnTrigger.ActionProperty(job_name=jobs.job.ref)]
        starts: list[glue.CfnTrigger] = []
        if etl.new_data_batch_size is not None:
            starts.append(
                glue.CfnTrigger(
                    self,
                    "OnNewData",
                    type="EVENT",
                    workflow_name=self.workflow.ref,
                    description=f"New raw {dataset.name} files, batched",
                    actions=run_job,
                    event_batching_condition=glue.CfnTrigger.EventBatchingConditionProperty(
                        batch_size=etl.new_data_batch_size, batch_window=etl.new_data_batch_window_seconds
                    ),
                )
            )
        if etl.schedule:
            starts.append(
                glue.CfnTrigger(
                    self,
                    "OnSchedule",
                    type="SCHEDULED",
                    schedule=etl.schedule,
                    start_on_creation=True,
                    workflow_name=self.workflow.ref,
                    description=f"Scheduled raw -> curated run of {dataset.name}",
                    actions=run_job,
                )
            )
        return starts

    def _on_new_data(
        self, config: PlatformConfig, lake: DataLakeConfig, workflow: str, raw: s3.IBucket, queue_key: kms.IKey
    ) -> None:
        """The EventBridge rule that notifies the workflow of new raw objects of the dataset."""
        stack = cdk.Stack.of(self)
        dataset = lake.dataset
        workflow_arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:workflow/{workflow}"
        role = iam.Role(
            self,
            "EventsRole",
            assumed_by=service_principal("events.amazonaws.com", stack.account),
            description="EventBridge starting the data lake ETL workflow",
        )
        role.add_to_policy(iam.PolicyStatement(actions=["glue:notifyEvent"], resources=[workflow_arn]))
        acknowledge(role, INLINE_POLICY_REASON, in_hipaa_nist_pci("IAMNoInlinePolicy"))
        self.dead_letters = DeadLetterQueue(
            self, "UndeliveredEvents", config=config, key=queue_key, source="the new-data rule"
        )
        self.rule = events.CfnRule(
            self,
            "NewRawData",
            description=f"New raw {dataset.name} objects start the ETL workflow",
            event_pattern={
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [raw.bucket_name]}, "object": {"key": [{"prefix": f"{dataset.name}/"}]}},
            },
            state="ENABLED",
            targets=[self.dead_letters.target("EtlWorkflow", workflow_arn, role_arn=role.role_arn)],
        )
        self.rule.node.add_dependency(self.workflow)
        self.dead_letters.receive_from(self.rule, "RuleDeadLetters")
