"""The cost model on the shipped configs, against figures computed by hand."""

from __future__ import annotations

import json

import pytest

from infra.assembly import cost
from tests.helpers import model_monitor_config, sandbox_config

# 730 hours a month; interface endpoints $0.01 per endpoint per AZ-hour, 16 endpoints (19 in prod,
# whose Studio domain and MLflow server add studio, notebook and experiments);
# NAT gateway $0.045 an hour; KMS $1 a key-month, 3 keys. The SageMaker endpoint around the clock
# (ml.m5.large $0.115, ml.m5.xlarge $0.23, ml.g5.xlarge $1.4084, ml.g6.xlarge $1.1267 an hour) and the
# platform monitor's analysis job at most its max runtime (1 h on ml.m5.xlarge) per run: 730 hourly runs, 365/12 daily
# runs a month (one daily run judges every daily monitor).
EXPECTED = {
    "dev": 16 * 1 * 730 * 0.01 + 3 * 1.0 + 730 * 0.115 + 730 * 0.23,  # 116.80 + 3.00 + 83.95 + 167.90
    # 416.10 + 3.00 + 2,056.26 (2 x g5) + 1,644.98 (2 x g6) + 167.90 (hourly run) + 7.00 (daily run: model
    # quality and bias)
    "prod": 19 * 3 * 730 * 0.01 + 3 * 1.0 + 2 * 730 * 1.4084 + 2 * 730 * 1.1267 + 730 * 0.23 + 365 / 12 * 0.23,
    # Model Monitor: 167.90 (hourly) + 3 x 7.00 (daily: model quality, bias, explainability) + 34.27 (the
    # explainability job's ml.g6.xlarge shadow endpoint, daily)
    "model_monitor": 19 * 3 * 730 * 0.01
    + 3 * 1.0
    + 2 * 730 * 1.4084
    + 2 * 730 * 1.1267
    + 730 * 0.23
    + 3 * 365 / 12 * 0.23
    + 365 / 12 * 1.1267,
    "sandbox": 16 * 2 * 730 * 0.01 + 1 * 730 * 0.045 + 3 * 1.0,  # 233.60 + 32.85 + 3.00
}


def _lines(synthesized) -> list[cost.Line]:
    stacks = {stack.stack_name: synthesized.templates[stack.node.id] for stack in synthesized.platform.stacks}
    return cost.estimate(stacks)


@pytest.mark.parametrize("env", ["dev", "prod", "sandbox", "model_monitor"])
def test_monthly_total_matches_the_hand_computed_figure(synth, env):
    configs = {"sandbox": sandbox_config, "model_monitor": model_monitor_config}
    lines = _lines(synth(configs[env]() if env in configs else env))
    assert cost.monthly_total(lines) == pytest.approx(EXPECTED[env], abs=0.005)


def test_each_line_names_its_quantity_and_price(dev, prod, prod_model_monitor):
    lines = {line.item: line for line in _lines(prod)}
    (run,) = [line for line in lines.values() if line.item.startswith("pipeline step Analyze")]
    assert (run.price, run.monthly) == ("sagemaker:ml.m5.xlarge", True)
    assert run.quantity == pytest.approx(730 + 365 / 12), "hourly and daily monitor runs, 1 h each at most"
    lines = {line.item: line for line in _lines(prod_model_monitor)}
    endpoints = lines["VPC interface endpoints (per endpoint per AZ)"]
    assert (endpoints.quantity, endpoints.price, endpoints.monthly) == (57, "interface_endpoint", True)
    job = next(line for line in lines.values() if line.item.startswith("Glue job run"))
    # prod: 4 G.2X workers = 8 DPU, 120-minute timeout: 16 DPU-hours at most per run.
    assert (job.quantity, job.monthly) == (16, False) and job.usd == pytest.approx(16 * 0.44)
    assert "NAT gateways" not in {line.item for line in _lines(dev)}
    # The explainability job's shadow endpoint: its instance for the job's hour, every daily run.
    (shadow,) = [line for line in lines.values() if line.item.startswith("explainability shadow endpoint")]
    assert (shadow.price, shadow.monthly) == ("sagemaker:ml.g6.xlarge", True)
    assert shadow.quantity == pytest.approx(365 / 12) and not any(
        line.item.startswith("explainability shadow") for line in _lines(dev)
    )


def test_per_use_lines_stay_out_of_the_monthly_total(dev):
    lines = _lines(dev)
    assert any(not line.monthly for line in lines)
    assert cost.monthly_total(lines) == round(sum(line.usd for line in lines if line.monthly), 2)


def test_every_price_is_dated_and_sourced(prod):
    for line in _lines(prod):
        price = line.unit_price
        assert price.url.startswith("https://") and len(price.as_of) == 10
    rows = cost.format_lines(_lines(prod))
    assert any("$416.10/month" in row for row in rows)
    assert all(source.count("as of") == 1 for source in cost.sources(_lines(prod)))


def test_sagemaker_endpoints_are_priced_from_the_instance_catalog():
    template = {
        "Resources": {
            "Config": {
                "Type": "AWS::SageMaker::EndpointConfig",
                "Properties": {"ProductionVariants": [{"InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 2}]},
            }
        }
    }
    (line,) = cost.stack_lines("serving", template)
    from infra.catalog import instances

    hourly = instances.get("ml.g5.xlarge").price_usd_per_hour
    assert line.usd == pytest.approx(2 * hourly * 730) and line.unit_price.unit == "instance-hour"


G5, M5 = 1.4084, 0.23  # catalog prices of ml.g5.xlarge and ml.m5.xlarge, USD per hour


def _pipeline_template(steps: list[dict]) -> dict:
    body = json.dumps({"Version": "2020-12-01", "Steps": steps})
    return {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                # Deploy-time values are substituted by CloudFormation: the body is an Fn::Sub template.
                "Properties": {"PipelineDefinition": {"PipelineDefinitionBody": {"Fn::Sub": [body, {}]}}},
            }
        }
    }


def test_pipeline_steps_are_priced_per_run_at_their_max_runtime():
    steps = [
        {
            "Name": "Preprocess",
            "Type": "Processing",
            "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            },
        },
        {
            "Name": "Train",
            "Type": "Training",
            "Arguments": {
                "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
                "StoppingCondition": {"MaxRuntimeInSeconds": 7200},
            },
        },
        {
            "Name": "Tune",
            "Type": "Tuning",
            "Arguments": {
                "HyperParameterTuningJobConfig": {"ResourceLimits": {"MaxNumberOfTrainingJobs": 10}},
                "TrainingJobDefinition": {
                    "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
                    "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
                },
            },
        },
        {
            "Name": "Parameterized",
            "Type": "Training",
            "Arguments": {"ResourceConfig": {"InstanceType": {"Get": "Parameters.Instance"}, "InstanceCount": 1}},
        },
        {"Name": "Check", "Type": "Condition", "Arguments": {}},
    ]
    lines = {line.item.split(" (")[0]: line for line in cost.stack_lines("training", _pipeline_template(steps))}
    assert set(lines) == {"pipeline step Preprocess", "pipeline step Train", "pipeline step Tune"}
    assert lines["pipeline step Preprocess"].usd == pytest.approx(1 * 1 * M5)
    assert lines["pipeline step Train"].usd == pytest.approx(2 * 2 * G5)  # 2 instances x 2 h
    assert lines["pipeline step Tune"].usd == pytest.approx(10 * 0.5 * G5)  # 10 jobs x 0.5 h
    assert not any(line.monthly for line in lines.values())


@pytest.mark.parametrize(
    ("expression", "runs"),
    [("cron(0 * ? * * *)", 730), ("cron(0 0 ? * * *)", 730 / 24), ("cron(0 0/6 ? * * *)", 730 / 6)],
)
def test_monitoring_runs_a_month_from_the_schedule(expression, runs):
    assert cost.runs_per_month(expression) == pytest.approx(runs)


def test_monitoring_schedules_are_priced_every_run_from_their_job_definition():
    template = {
        "Resources": {
            "Quality": {
                "Type": "AWS::SageMaker::DataQualityJobDefinition",
                "Properties": {
                    "JobResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
                    "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
                },
            },
            "Schedule": {
                "Type": "AWS::SageMaker::MonitoringSchedule",
                "Properties": {
                    "MonitoringScheduleConfig": {
                        "MonitoringJobDefinitionName": {"Fn::GetAtt": ["Quality", "JobDefinitionName"]},
                        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
                    }
                },
            },
        }
    }
    (line,) = cost.stack_lines("monitoring", template)
    assert line.monthly and line.usd == pytest.approx(730 * 0.5 * M5)  # hourly runs of at most 30 minutes
