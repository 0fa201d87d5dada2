"""Estimated monthly cost of a synthesized app, line by line, from unit prices with their dates and sources."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from infra.catalog import instances, monitors

HOURS_PER_MONTH = 730  # AWS's own convention in its pricing examples
PRICE_REGION = instances.PRICE_REGION


@dataclass(frozen=True)
class UnitPrice:
    """A list price in PRICE_REGION, where it was read and when."""

    usd: float
    unit: str
    url: str
    as_of: str  # ISO date


# AWS pricing pages render their tables in the browser; these are the us-east-1 list prices as
# quoted on those pages' static text or by the AWS Price List API, read on the date given.
_AS_OF = "2026-11-25"
PRICES: dict[str, UnitPrice] = {
    "interface_endpoint": UnitPrice(0.01, "endpoint-AZ-hour", "https://aws.amazon.com/privatelink/pricing/", _AS_OF),
    "nat_gateway": UnitPrice(0.045, "NAT gateway-hour", "https://aws.amazon.com/vpc/pricing/", _AS_OF),
    "kms_key": UnitPrice(1.00, "customer managed key-month", "https://aws.amazon.com/kms/pricing/", _AS_OF),
    "glue_dpu_hour": UnitPrice(0.44, "DPU-hour", "https://aws.amazon.com/glue/pricing/", _AS_OF),
    "athena_tb": UnitPrice(5.00, "TB scanned", "https://aws.amazon.com/athena/pricing/", _AS_OF),
}

# DPUs per Glue worker type.
GLUE_WORKER_DPU = {"G.025X": 0.25, "G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8}
# A crawler run is billed for at least 10 minutes.
CRAWLER_MINIMUM_HOURS = 10 / 60


@dataclass(frozen=True)
class Line:
    """One priced line: what, how many, at which price; monthly lines add up, per-use lines do not."""

    stack: str
    item: str
    quantity: float
    price: str  # key of PRICES, or "sagemaker:<instance type>"
    usd: float
    monthly: bool = True

    @property
    def unit_price(self) -> UnitPrice:
        if self.price.startswith("sagemaker:"):
            instance = instances.get(self.price.split(":", 1)[1])
            source = instance.price_source
            assert instance.price_usd_per_hour is not None and source is not None
            return UnitPrice(instance.price_usd_per_hour, "instance-hour", source.url, source.as_of)
        return PRICES[self.price]


def _of_type(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in template.get("Resources", {}).values() if r["Type"] == kind]


def _list_length(value: Any) -> int:
    # A list of subnet ids, possibly behind intrinsics that CDK always renders as lists.
    return len(value) if isinstance(value, list) else 1


def stack_lines(stack: str, template: dict[str, Any]) -> list[Line]:
    """The priced lines of one stack's template."""
    return [
        *_network_lines(stack, template),
        *_key_lines(stack, template),
        *_endpoint_lines(stack, template),
        *(
            line
            for resource in template.get("Resources", {}).values()
            if resource["Type"] == "AWS::SageMaker::Pipeline"
            for line in _pipeline_lines(
                stack, resource.get("Properties", {}), resource.get("Metadata", {}).get(monitors.RUN_SCHEDULES)
            )
        ),
        *(
            line
            for schedule in _of_type(template, "AWS::SageMaker::MonitoringSchedule")
            for line in _monitoring_lines(stack, schedule, template)
        ),
        *_glue_lines(stack, template),
        *_athena_lines(stack, template),
    ]


def _network_lines(stack: str, template: dict[str, Any]) -> list[Line]:
    """Interface endpoints per AZ and NAT gateways, by the hour."""
    lines = []
    endpoint_azs = sum(
        _list_length(e.get("SubnetIds", []))
        for e in _of_type(template, "AWS::EC2::VPCEndpoint")
        if e.get("VpcEndpointType") == "Interface"
    )
    if endpoint_azs:
        lines.append(
            _hourly(stack, "VPC interface endpoints (per endpoint per AZ)", endpoint_azs, "interface_endpoint")
        )
    nats = len(_of_type(template, "AWS::EC2::NatGateway"))
    if nats:
        lines.append(_hourly(stack, "NAT gateways", nats, "nat_gateway"))
    return lines


def _key_lines(stack: str, template: dict[str, Any]) -> list[Line]:
    keys = len(_of_type(template, "AWS::KMS::Key"))
    return [Line(stack, "KMS customer managed keys", keys, "kms_key", keys * PRICES["kms_key"].usd)] if keys else []


def _endpoint_lines(stack: str, template: dict[str, Any]) -> list[Line]:
    """Each endpoint variant's instances, all month."""
    lines = []
    for config in _of_type(template, "AWS::SageMaker::EndpointConfig"):
        for variant in config.get("ProductionVariants", []):
            instance_type, count = variant.get("InstanceType"), variant.get("InitialInstanceCount", 1)
            item = f"SageMaker endpoint {instance_type} x{count}"
            line = _instance_hours(stack, item, instance_type, count, HOURS_PER_MONTH, 1)
            if line is not None:
                lines.append(Line(stack, item, line.quantity, line.price, line.usd, monthly=True))
    return lines


def _glue_lines(stack: str, template: dict[str, Any]) -> list[Line]:
    """A Glue job run up to its timeout, and a crawler run at its minimum: per use."""
    lines = []
    dpu_hour = PRICES["glue_dpu_hour"].usd
    for job in _of_type(template, "AWS::Glue::Job"):
        dpus = GLUE_WORKER_DPU.get(job.get("WorkerType", "G.1X"), 1) * job.get("NumberOfWorkers", 2)
        hours = job.get("Timeout", 2880) / 60
        item = f"Glue job run, {dpus:g} DPU up to its {hours:g} h timeout (at most)"
        lines.append(Line(stack, item, dpus * hours, "glue_dpu_hour", dpus * hours * dpu_hour, monthly=False))
    for _ in _of_type(template, "AWS::Glue::Crawler"):
        lines.append(
            Line(stack, "Glue crawler run, 10-minute minimum (at least)", CRAWLER_MINIMUM_HOURS, "glue_dpu_hour",
                 CRAWLER_MINIMUM_HOURS * dpu_hour, monthly=False)
        )  # fmt: skip
    return lines


def _athena_lines(stack: str, template: dict[str, Any]) -> list[Line]:
    """An Athena query at its workgroup's bytes-scanned cutoff: per use."""
    lines = []
    for workgroup in _of_type(template, "AWS::Athena::WorkGroup"):
        cutoff = workgroup.get("WorkGroupConfiguration", {}).get("BytesScannedCutoffPerQuery")
        if cutoff:
            tb = cutoff / 1024**4
            lines.append(Line(stack, "Athena query at the bytes-scanned cutoff (at most)", tb, "athena_tb",
                              tb * PRICES["athena_tb"].usd, monthly=False))  # fmt: skip
    return lines


def _instance_hours(stack: str, item: str, instance_type: Any, count: Any, hours: float, runs: float) -> Line | None:
    """`runs` x `count` instances of `instance_type` for `hours`, or None when it cannot be priced."""
    if not isinstance(instance_type, str) or not isinstance(count, int):
        return None  # a pipeline parameter or a token: decided at run time
    try:
        hourly = instances.get(instance_type).price_usd_per_hour
    except instances.UnknownInstanceType:
        return None
    if hourly is None:
        return None
    quantity = runs * count * hours
    return Line(stack, item, quantity, f"sagemaker:{instance_type}", quantity * hourly, monthly=runs != 1)


def _definition(pipeline: dict[str, Any]) -> dict[str, Any]:
    body = pipeline.get("PipelineDefinition", {}).get("PipelineDefinitionBody")
    if isinstance(body, dict) and "Fn::Sub" in body:  # placeholders substituted at deploy time
        body = body["Fn::Sub"] if isinstance(body["Fn::Sub"], str) else body["Fn::Sub"][0]
    return json.loads(body) if isinstance(body, str) else {}


def _pipeline_lines(stack: str, pipeline: dict[str, Any], schedules: Any = None) -> list[Line]:
    """Each training, tuning and processing step at its instance type and maximum runtime, per run.

    A pipeline started on `schedules` (cron expressions: the platform monitor's runs) is priced per month.
    """
    scheduled = isinstance(schedules, list) and bool(schedules)
    monthly_runs = sum(runs_per_month(e) for e in schedules) if scheduled else 1.0
    lines = []
    for step in _definition(pipeline).get("Steps", []):
        args, kind, name = step.get("Arguments", {}), step.get("Type"), step.get("Name", "?")
        if kind == "Training":
            resources, runs = args.get("ResourceConfig", {}), 1
            seconds = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        elif kind == "Tuning":
            definition = args.get("TrainingJobDefinition", {})
            resources = definition.get("ResourceConfig") or definition.get("HyperParameterTuningResourceConfig", {})
            seconds = definition.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
            runs = (
                args.get("HyperParameterTuningJobConfig", {})
                .get("ResourceLimits", {})
                .get("MaxNumberOfTrainingJobs", 1)
            )
        elif kind == "Processing":
            resources, runs = args.get("ProcessingResources", {}).get("ClusterConfig", {}), 1
            seconds = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400)
        else:
            continue
        item = f"pipeline step {name} ({kind.lower()}), up to its max runtime per pipeline run"
        if scheduled:
            item = (
                f"pipeline step {name} ({kind.lower()}), {monthly_runs:g} runs a month up to its max runtime (at most)"
            )
        line = _instance_hours(
            stack, item, resources.get("InstanceType"), resources.get("InstanceCount"), seconds / 3600, 1
        )
        if line is not None:
            total = runs * monthly_runs
            lines.append(Line(stack, item, line.quantity * total, line.price, line.usd * total, monthly=scheduled))
    return lines


def runs_per_month(expression: str) -> float:
    """Runs a month of a SageMaker monitoring schedule (`cron(m h ? * * *)` forms it accepts)."""
    fields = expression.removeprefix("cron(").removesuffix(")").split()
    hours = fields[1] if len(fields) > 1 else "0"
    if hours == "*":
        per_day = 24.0
    elif "/" in hours:
        per_day = 24 / int(hours.split("/")[1])
    else:
        per_day = float(len(hours.split(",")))
    return per_day * HOURS_PER_MONTH / 24


def _monitoring_lines(stack: str, schedule: dict[str, Any], template: dict[str, Any]) -> list[Line]:
    """A monitoring schedule: its job's instances for the job's max runtime, every scheduled run."""
    config = schedule.get("MonitoringScheduleConfig", {})
    expression = config.get("ScheduleConfig", {}).get("ScheduleExpression", "")
    if not isinstance(expression, str) or not expression.startswith("cron("):
        return []
    job = config.get("MonitoringJobDefinition")
    definition: dict[str, Any] = {}
    if job is None:  # a job definition resource, referenced by name
        definition = _job_definition(template, config.get("MonitoringJobDefinitionName")) or {}
        if not definition:
            return []
        job = definition.get("Properties", {})
    cluster = job.get("JobResources", job.get("MonitoringResources", {})).get("ClusterConfig", {})
    hours = job.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 3600) / 3600
    runs = runs_per_month(expression)
    item = f"monitoring schedule, {runs:g} runs a month up to the job's max runtime (at most)"
    lines = [_instance_hours(stack, item, cluster.get("InstanceType"), cluster.get("InstanceCount"), hours, runs)]
    # A job that starts a shadow endpoint of the model (Clarify's explainability) pays for it while it runs.
    shadow = definition.get("Metadata", {}).get(monitors.SHADOW_METADATA)
    kind = monitors.by_resource_type(definition.get("Type", ""))
    if isinstance(shadow, dict) and kind is not None:
        item = f"{kind.title} shadow endpoint, {runs:g} runs a month up to the job's max runtime (at most)"
        lines.append(_instance_hours(stack, item, shadow.get("InstanceType"), shadow.get("InstanceCount"), hours, runs))
    return [Line(stack, line.item, line.quantity, line.price, line.usd, monthly=True) for line in lines if line]


def _job_definition(template: dict[str, Any], name: Any) -> dict[str, Any] | None:
    """The monitoring job definition resource a schedule names (by GetAtt or by its literal name)."""
    for logical_id, resource in template.get("Resources", {}).items():
        names = (
            {"Fn::GetAtt": [logical_id, "JobDefinitionName"]},
            resource.get("Properties", {}).get("JobDefinitionName"),
        )
        if resource["Type"].endswith("JobDefinition") and name and name in names:
            return dict(resource)
    return None


def _hourly(stack: str, item: str, quantity: float, price: str) -> Line:
    return Line(stack, item, quantity, price, quantity * PRICES[price].usd * HOURS_PER_MONTH)


def estimate(templates: dict[str, dict[str, Any]]) -> list[Line]:
    """Priced lines of every stack, in stack order."""
    return [line for stack, template in templates.items() for line in stack_lines(stack, template)]


def monthly_total(lines: Iterable[Line]) -> float:
    return round(sum(line.usd for line in lines if line.monthly), 2)


def format_lines(lines: list[Line]) -> list[str]:
    """Plain-text table rows for the synth summary."""
    rows = []
    for line in lines:
        price = line.unit_price
        when = "/month" if line.monthly else " per use"
        rows.append(
            f"{line.stack:<20} {line.item:<58} {line.quantity:>8.3g} x ${price.usd:g}/{price.unit}"
            f" = ${line.usd:,.2f}{when}  ({price.as_of})"
        )
    return rows


def sources(lines: Iterable[Line]) -> list[str]:
    """Each price used, once: unit, date and URL."""
    seen = {}
    for line in lines:
        price = line.unit_price
        seen[line.price] = (
            f"{line.price}: ${price.usd:g} per {price.unit}, {PRICE_REGION}, as of {price.as_of}: {price.url}"
        )
    return [seen[key] for key in sorted(seen)]
