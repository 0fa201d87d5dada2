"""Configuration: the shipped files load, and every kind of bad input gives exact one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from infra.config import (
    ConfigError,
    PlatformConfig,
    available_environments,
    load_config,
    load_config_file,
    parse_config,
)

ROOT = Path(__file__).resolve().parent.parent
DEV = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())
SOURCE = "config/x.yaml"
REASON = "Clarify calls the SageMaker API for its shadow endpoint"


def _mutated(change) -> dict:
    data = copy.deepcopy(DEV)
    change(data)
    return data


def test_shipped_configs_load():
    assert {"dev", "prod"} <= set(available_environments())
    dev, prod = load_config(), load_config("prod")
    assert (dev.environment, dev.account, dev.region) == ("dev", None, None)
    assert dev.network.max_azs == 1 and dev.network.egress == "isolated"
    assert prod.network.max_azs == 3 and prod.region == "eu-west-1" and prod.account == "111111111111"
    assert prod.destroy_data_on_delete is False and prod.security.config_rules is True


def test_config_path_context_reads_any_file(tmp_path):
    path = tmp_path / "sandbox.yaml"
    path.write_text(yaml.safe_dump({**DEV, "environment": "sandbox", "destroy_data_on_delete": True}))
    config = load_config(config=str(path))
    assert config.environment == "sandbox" and config.destroy_data_on_delete is True
    assert config.prefix == "mlp-sandbox"


def test_defaults_are_secure():
    dataset = {"name": "events", "columns": [{"name": "id", "type": "string"}], "key_columns": ["id"]}
    config = PlatformConfig.model_validate(
        {"project": "mlp", "environment": "qa", "tags": {"owner": "a@b.io"}, "data_lake": {"dataset": dataset}}
    )
    assert config.destroy_data_on_delete is False
    assert config.network.egress == "isolated" and config.network.nat_gateway_count == 0
    assert config.security.cloudtrail.enabled and config.security.cloudtrail.lake_data_events
    lake = config.data_lake
    assert lake.sharing is None and lake.personas.data_scientist is None
    assert lake.zones.raw.glacier_after_days == 90 and lake.zones.raw.noncurrent_expire_after_days == 90


SERVERLESS = {
    "mode": "serverless",
    "variants": [],
    "data_capture": {"enabled": False},
    "deployment": {"strategy": "all_at_once"},
    "serverless": {"memory_mb": 2048, "isolation_exception": "A demo model scoring synthetic data only"},
}

BAD_CONFIGS = [
    (
        "unknown top-level key",
        lambda d: d.update(vpc={}),
        "vpc = {}: unknown key; allowed keys: project, environment, account, region, destroy_data_on_delete, "
        "tags, network, security, data_lake, training, serving, monitoring, retraining",
    ),
    (
        "misspelt nested key",
        lambda d: d["network"].update(natgateways=1),
        "network.natgateways = 1: unknown key; allowed keys: cidr, max_azs, egress, nat_gateways, "
        "flow_logs_retention_days",
    ),
    (
        "wrong type",
        lambda d: d["network"].update(max_azs="two"),
        "network.max_azs = 'two': allowed: an integer from 1 to 6",
    ),
    ("out of range", lambda d: d["network"].update(max_azs=7), "network.max_azs = 7: allowed: an integer from 1 to 6"),
    (
        "not one of the choices",
        lambda d: d["network"].update(egress="open"),
        "network.egress = 'open': allowed: 'isolated' (no internet path) or 'controlled' (NAT gateway egress)",
    ),
    (
        "public CIDR",
        lambda d: d["network"].update(cidr="8.8.0.0/16"),
        "network.cidr = '8.8.0.0/16': allowed: a private (RFC 1918) IPv4 network in CIDR notation with a prefix "
        "from /16 to /24",
    ),
    (
        "retention CloudWatch does not offer",
        lambda d: d["network"].update(flow_logs_retention_days=10),
        "network.flow_logs_retention_days = 10: allowed: a CloudWatch Logs retention period: 1, 3, 5, 7, 14, 30, "
        "60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
    ),
    (
        "short account id",
        lambda d: d.update(account="12345", region="eu-west-1"),
        "account = '12345': allowed: 12 digits, or omit for an environment-agnostic app",
    ),
    (
        "unknown region",
        lambda d: d.update(account="123456789012", region="eu-west-9"),
        "region = 'eu-west-9': allowed: an AWS region name such as eu-west-1, or omit for an environment-agnostic app",
    ),
    (
        "account without region",
        lambda d: d.update(account="123456789012"),
        "region = null: allowed: set account and region together, or neither",
    ),
    (
        "NAT gateways in isolated mode",
        lambda d: d["network"].update(nat_gateways=1),
        "network.nat_gateways = 1: allowed: only with egress 'controlled'; remove it for 'isolated'",
    ),
    (
        "more NAT gateways than AZs",
        lambda d: d["network"].update(egress="controlled", nat_gateways=2),
        "network.nat_gateways = 2: allowed: at most max_azs (1), one per AZ",
    ),
    (
        "VPC too small for its subnets",
        lambda d: d["network"].update(cidr="10.40.0.0/24", max_azs=6, egress="controlled"),
        "network.cidr = '10.40.0.0/24': allowed: a network large enough for 12 subnets of /26 or larger",
    ),
    (
        "prod that may destroy data",
        lambda d: d.update(environment="prod", destroy_data_on_delete=True),
        "destroy_data_on_delete = true: allowed: false for environment 'prod' (protected: prod, production, staging)",
    ),
    (
        "missing owner tag",
        lambda d: d["tags"].pop("owner"),
        "tags.owner: missing; required: an e-mail address of the owning team",
    ),
    (
        "duplicate budget thresholds",
        lambda d: d["security"]["budget"].update(alert_thresholds_percent=[80, 80]),
        "security.budget.alert_thresholds_percent = [80, 80]: allowed: 1 to 5 distinct integers from 1 to 1000 "
        "(percent of the limit)",
    ),
    (
        "zero budget",
        lambda d: d["security"]["budget"].update(monthly_limit_usd=0),
        "security.budget.monthly_limit_usd = 0: allowed: a number of US dollars above 0",
    ),
    (
        "project name with capitals",
        lambda d: d.update(project="ML_Platform"),
        "project = 'ML_Platform': allowed: 2-20 characters: lowercase letters, digits and '-', starting with a letter",
    ),
    (
        "section that is not a mapping",
        lambda d: d.update(security=["kms"]),
        'security = ["kms"]: allowed: a mapping with keys: kms, cloudtrail, alert_emails, '
        "function_log_retention_days, budget, config_rules",
    ),
    (
        "KMS deletion window too short",
        lambda d: d["security"]["kms"].update(pending_window_days=3),
        "security.kms.pending_window_days = 3: allowed: an integer from 7 to 30",
    ),
    (
        "not an e-mail address",
        lambda d: d["security"].update(alert_emails=["oncall"]),
        'security.alert_emails = ["oncall"]: allowed: a list of e-mail addresses subscribed to the alert topic',
    ),
    (
        "boolean that is not one",
        lambda d: d.update(destroy_data_on_delete="maybe"),
        "destroy_data_on_delete = 'maybe': allowed: true or false (true deletes buckets, keys and logs with the "
        "stack: throwaway environments only)",
    ),
    # Data lake
    (
        "unknown persona",
        lambda d: d["data_lake"]["personas"].update(ml_engineer={"roles": ["MlEngineer"]}),
        'data_lake.personas.ml_engineer = {"roles": ["MlEngineer"]}: unknown key; allowed keys: data_engineer, '
        "data_scientist",
    ),
    (
        "persona role given as an ARN",
        lambda d: d["data_lake"]["personas"]["data_scientist"].update(roles=["arn:aws:iam::1:role/X"]),
        "data_lake.personas.data_scientist.roles[0] = 'arn:aws:iam::1:role/X': allowed: IAM role names of this "
        "account, with their path if any (e.g. 'DataScientist')",
    ),
    (
        "quality rule on a column that does not exist",
        lambda d: d["data_lake"]["dataset"]["quality_rules"].append(
            {"check": "completeness", "column": "price", "min": 1}
        ),
        "data_lake.dataset.quality_rules[5].column = 'price': allowed: a column of the dataset: transaction_id, "
        "customer_id, customer_email, amount, merchant_category, event_time, is_fraud",
    ),
    (
        "range rule on a text column",
        lambda d: d["data_lake"]["dataset"]["quality_rules"].append(
            {"check": "range", "column": "customer_id", "min": 0}
        ),
        "data_lake.dataset.quality_rules[5].column = 'customer_id': allowed: a numeric column for range (it is string)",
    ),
    (
        "range rule with min above max",
        lambda d: d["data_lake"]["dataset"]["quality_rules"].append(
            {"check": "range", "column": "amount", "min": 10, "max": 1}
        ),
        "data_lake.dataset.quality_rules[5].max = 1.0: allowed: at least min (10)",
    ),
    (
        "completeness above 100%",
        lambda d: d["data_lake"]["dataset"]["quality_rules"].append(
            {"check": "completeness", "column": "amount", "min": 1.5}
        ),
        "data_lake.dataset.quality_rules[5].min = 1.5: allowed: a ratio above 0 and at most 1 for completeness",
    ),
    (
        "allowed values of the wrong type",
        lambda d: d["data_lake"]["dataset"]["quality_rules"].append(
            {"check": "allowed_values", "column": "is_fraud", "values": ["yes"]}
        ),
        'data_lake.dataset.quality_rules[5].values = ["yes"]: allowed: numbers only, for int column is_fraud',
    ),
    (
        "unknown quality check",
        lambda d: d["data_lake"]["dataset"]["quality_rules"].append({"check": "freshness", "column": "amount"}),
        "data_lake.dataset.quality_rules[5].check = 'freshness': allowed: one of completeness, uniqueness, range, "
        "allowed_values",
    ),
    (
        "key column that does not exist",
        lambda d: d["data_lake"]["dataset"].update(key_columns=["id"]),
        "data_lake.dataset.key_columns[0] = 'id': allowed: a column of the dataset: transaction_id, customer_id, "
        "customer_email, amount, merchant_category, event_time, is_fraud",
    ),
    (
        "column named like the partition column",
        lambda d: d["data_lake"]["dataset"]["columns"].append({"name": "ingest_date", "type": "date"}),
        "data_lake.dataset.columns[7].name = 'ingest_date': allowed: any name but 'ingest_date' (reserved)",
    ),
    (
        "unsupported column type",
        lambda d: d["data_lake"]["dataset"]["columns"].append({"name": "note", "type": "varchar"}),
        "data_lake.dataset.columns[7].type = 'varchar': allowed: one of string, int, bigint, double, float, boolean, "
        "date, timestamp",
    ),
    (
        "lifecycle: Glacier too soon after Standard-IA",
        lambda d: d["data_lake"]["zones"]["raw"].update(glacier_after_days=45),
        "data_lake.zones.raw.glacier_after_days = 45: allowed: at least infrequent_access_after_days + 30 (60)",
    ),
    (
        "lifecycle: expiry before the last transition",
        lambda d: d["data_lake"]["zones"]["raw"].update(expire_after_days=60),
        "data_lake.zones.raw.expire_after_days = 60: allowed: more than the last transition (90 days)",
    ),
    (
        "lifecycle: Standard-IA before 30 days",
        lambda d: d["data_lake"]["zones"]["curated"].update(infrequent_access_after_days=7),
        "data_lake.zones.curated.infrequent_access_after_days = 7: allowed: 30 to 36500 days (S3 Standard-IA needs "
        "30 at least), or null",
    ),
    (
        "consumer account id that is not 12 digits",
        lambda d: d["data_lake"].update(sharing={"consumer_accounts": ["22222222222"]}),
        "data_lake.sharing.consumer_accounts[0] = '22222222222': allowed: 1 to 20 distinct AWS account ids of 12 "
        "digits each",
    ),
    (
        "sharing with the environment's own account",
        lambda d: (
            d.update(account="123456789012", region="eu-west-1"),
            d["data_lake"].update(sharing={"consumer_accounts": ["123456789012"]}),
        ),
        "data_lake.sharing.consumer_accounts = '123456789012': allowed: accounts other than this environment's own",
    ),
    (
        "Athena scan limit below Athena's minimum",
        lambda d: d["data_lake"]["athena"].update(bytes_scanned_cutoff_mb=5),
        "data_lake.athena.bytes_scanned_cutoff_mb = 5: allowed: 10 to 100000000 MB scanned per query (Athena's "
        "minimum is 10)",
    ),
    (
        "ETL schedule that is not a Glue cron expression",
        lambda d: d["data_lake"]["etl"].update(schedule="0 2 * * *"),
        "data_lake.etl.schedule = '0 2 * * *': allowed: a Glue cron expression such as 'cron(0 2 * * ? *)', or null "
        "(run on demand/by events)",
    ),
    (
        "new-data batch window beyond Glue's limit",
        lambda d: d["data_lake"]["etl"].update(new_data_batch_window_seconds=3600),
        "data_lake.etl.new_data_batch_window_seconds = 3600: allowed: 1 to 900 seconds a batch of new objects waits "
        "to fill up",
    ),
    # Training
    (
        "Inferentia instance for processing",
        lambda d: d["training"].update(processing_instance_type="ml.inf2.xlarge"),
        "training.processing_instance_type = 'ml.inf2.xlarge': allowed: ml.inf2.xlarge is not a valid SageMaker "
        "instance type for processing (CreateProcessingJob); e.g. ml.m5.xlarge, ml.g5.xlarge, ... (207 accepted)",
    ),
    (
        "spot without checkpoints",
        lambda d: d["training"]["spot"].update(checkpoints=False),
        "training.spot.checkpoints = false: allowed: true with spot (an interrupted job resumes only from checkpoints)",
    ),
    (
        "spot that waits less than the job runs",
        lambda d: d["training"]["spot"].update(max_wait_minutes=30),
        "training.spot.max_wait_minutes = 30: allowed: at least max_runtime_minutes (60)",
    ),
    (
        "tuning range with min above max",
        lambda d: d["training"].update(tuning={"ranges": {"l2": {"min": 1, "max": 0.1}}}),
        "training.tuning.ranges.l2.max = 0.1: allowed: at least min (1)",
    ),
    (
        "quality gate on a metric the evaluation does not produce",
        lambda d: d["training"]["quality_gate"].update(metric="rmse"),
        "training.quality_gate.metric = 'rmse': allowed: a metric the evaluation produces: auc, accuracy, precision, "
        "recall, f1",
    ),
    (
        "tuning on a metric the training script does not report",
        lambda d: d["training"].update(
            tuning={"objective_metric": "validation:f1", "ranges": {"epochs": {"min": 1, "max": 5}}}
        ),
        "training.tuning.objective_metric = 'validation:f1': allowed: one of validation:auc, validation:loss, "
        "train:loss",
    ),
    (
        "feature that is sensitive",
        lambda d: d["training"].update(features=["customer_id"]),
        "training.features[0] = 'customer_id': allowed: a numeric, non-sensitive column of data_lake.dataset other "
        "than the target",
    ),
    (
        "training on an Inferentia instance",
        lambda d: d["training"].update(instance_type="ml.inf2.xlarge"),
        "training.instance_type = 'ml.inf2.xlarge': allowed: ml.inf2.xlarge is not a valid SageMaker instance type "
        "for training (CreateTrainingJob); e.g. ml.m5.xlarge, ml.g5.xlarge, ml.trn1.32xlarge, ... (225 accepted)",
    ),
    (
        "Debugger rules with tuning",
        lambda d: d["training"].update(
            tuning={"ranges": {"epochs": {"min": 1, "max": 5}}},
            debugger={"rules": ["overfit"], "account_has_debugger": True},
        ),
        "training.debugger = 'rules/tensorboard': allowed: none with tuning: tuning jobs take no Debugger or "
        "TensorBoard settings",
    ),
    (
        "feature store on a text event-time column",
        lambda d: d["training"].update(feature_store={"event_time_column": "merchant_category"}),
        "training.feature_store.event_time_column = 'merchant_category': allowed: a timestamp or date column of "
        "data_lake.dataset",
    ),
    (
        "Inferentia serving mixed with CPU serving",
        lambda d: d["training"].update(inference_instance_types=["ml.inf2.xlarge", "ml.m5.large"]),
        "training.inference_instance_types[1] = 'ml.m5.large': allowed: Inferentia2 types only, like the others: the "
        "compiled model runs only there",
    ),
    (
        "first-generation Inferentia serving",
        lambda d: d["training"].update(inference_instance_types=["ml.inf1.xlarge"]),
        "training.inference_instance_types[0] = 'ml.inf1.xlarge': allowed: ml.inf2.* (the pipeline compiles for "
        "Neuron 2)",
    ),
    (
        "bias baseline on a column that is not a model feature",
        lambda d: d["training"].update(bias_baseline={"facet": "is_fraud", "threshold": 0}),
        "training.bias_baseline.facet = 'is_fraud': allowed: one of training.features: amount",
    ),
    (
        "explainability over too few rows",
        lambda d: d["training"].update(explainability={"rows": 5}),
        "training.explainability.rows = 5: allowed: 10 to 1000 rows of the test split to explain",
    ),
    (
        "explainability over too many rows",
        lambda d: d["training"].update(explainability={"rows": 1001}),
        "training.explainability.rows = 1001: allowed: 10 to 1000 rows of the test split to explain",
    ),
    (
        "explainability rows that are not a number",
        lambda d: d["training"].update(explainability={"rows": "all"}),
        "training.explainability.rows = 'all': allowed: 10 to 1000 rows of the test split to explain",
    ),
    (
        "explainability with the retired shadow endpoint settings",
        lambda d: d["training"].update(explainability={"shadow_instance_type": "ml.m5d.large"}),
        "training.explainability.shadow_instance_type = 'ml.m5d.large': unknown key; allowed keys: rows",
    ),
    (
        "explainability that is not a section",
        lambda d: d["training"].update(explainability=True),
        "training.explainability = true: allowed: an explainability section (SHAP values from the evaluate step, "
        "registered with the model) or null",
    ),
    (
        "serverless with a model built for a GPU",
        lambda d: (
            d["training"].update(inference_instance_types=["ml.g5.xlarge"]),
            d.update(serving=SERVERLESS, monitoring=None, retraining=None),
        ),
        "serving.mode = 'serverless': allowed: realtime or async: serverless endpoints run on CPU only, and the "
        "registered model is built for ml.g5.xlarge (training.inference_instance_types[0])",
    ),
    (
        "serverless without its stated exception",
        lambda d: d.update(serving={**SERVERLESS, "serverless": {"memory_mb": 2048}}),
        "serving.serverless.isolation_exception: missing; required: why this endpoint may run without VPC, network "
        "isolation, data capture and Model Monitor (at least 20 characters; serverless endpoints support none of "
        "them)",
    ),
    (
        "serverless memory off the 1 GB steps",
        lambda d: d.update(serving={**SERVERLESS, "serverless": {**SERVERLESS["serverless"], "memory_mb": 1500}}),
        "serving.serverless.memory_mb = 1500: allowed: 1024, 2048, 3072, 4096, 5120 or 6144",
    ),
    (
        "serverless still capturing data",
        lambda d: d.update(serving={**SERVERLESS, "data_capture": {"enabled": True}}),
        "serving.data_capture.enabled = true: allowed: false with mode serverless (serverless endpoints capture "
        "no data)",
    ),
    (
        "data capture sampling over 100 percent",
        lambda d: d["serving"].update(data_capture={"sampling_percentage": 101}),
        "serving.data_capture.sampling_percentage = 101: allowed: 1 to 100 (percent of requests)",
    ),
    (
        "autoscaling minimum above maximum",
        lambda d: d["serving"].update(autoscaling={"min_instances": 3, "max_instances": 2}),
        "serving.autoscaling.min_instances = 3: allowed: at most max_instances (2)",
    ),
    (
        "an instance type that cannot serve real-time",
        lambda d: d["serving"]["variants"][0].update(instance_type="ml.t3.medium"),
        "serving.variants[0].instance_type = 'ml.t3.medium': allowed: ml.t3.medium is not a valid SageMaker "
        "instance type for realtime (CreateEndpointConfig); e.g. ml.m5.xlarge, ml.g5.xlarge, ml.inf2.xlarge, ... "
        "(277 accepted)",
    ),
    (
        "a variant on a type the registered model does not support",
        lambda d: d["serving"]["variants"][0].update(instance_type="ml.c5.xlarge"),
        "serving.variants[0].instance_type = 'ml.c5.xlarge': allowed: one of training.inference_instance_types, "
        "which the registered model supports: ml.m5.large",
    ),
    (
        "a canary on one instance",
        lambda d: d["serving"]["deployment"].update(strategy="canary"),
        "serving.deployment.strategy = 'canary': allowed: all_at_once, or 2+ instances in variants[0]: a canary "
        "or linear step is at most half of the new fleet, which one instance cannot split",
    ),
    (
        "a rolling deployment over two variants",
        lambda d: d["serving"].update(
            variants=[{"name": "A", "instance_type": "ml.m5.large"}, {"name": "B", "instance_type": "ml.m5.large"}],
            deployment={"strategy": "rolling"},
        ),
        "serving.deployment.strategy = 'rolling': allowed: canary, linear or all_at_once: no rolling deployments "
        "for multi-variant endpoints",
    ),
    (
        "GPU scaling on a CPU variant",
        lambda d: d["serving"].update(autoscaling={"gpu_utilization_percent": 70}),
        "serving.autoscaling.gpu_utilization_percent = 70: allowed: null unless every variant runs on an NVIDIA "
        "GPU type",
    ),
    (
        "serving without training",
        lambda d: d.update(training=None, retraining=None),
        "serving = 'a section': allowed: only with a training section (its model registry feeds the endpoint)",
    ),
    (
        "monitoring a serverless endpoint",
        lambda d: d.update(serving=SERVERLESS, retraining=None),
        "monitoring = 'a section': allowed: null with serving.mode serverless (no data capture, no Model Monitor)",
    ),
    (
        "monitoring without captured data",
        lambda d: d["serving"].update(data_capture={"enabled": False}),
        "serving.data_capture.enabled = false: allowed: true with monitoring (Model Monitor reads captured data)",
    ),
    (
        "retraining on drift without a drift monitor",
        lambda d: d["monitoring"].update(data_quality=None),
        "retraining.on_drift = true: allowed: false, or a monitoring.data_quality section (drift alarms)",
    ),
    (
        "retraining schedule that EventBridge cannot read",
        lambda d: d["retraining"].update(schedule="every sunday"),
        "retraining.schedule = 'every sunday': allowed: an EventBridge schedule such as cron(0 3 ? * SUN *) or "
        "rate(7 days), or null",
    ),
    (
        "new-data trigger with no threshold",
        lambda d: d["retraining"].update(new_data={"min_objects": 0, "min_bytes": 0}),
        "retraining.new_data.min_objects = 0: allowed: above 0, or min_bytes above 0 (one threshold at least)",
    ),
    (
        "model-quality monitor on an unknown metric",
        lambda d: d["monitoring"].update(model_quality={"metric": "rmse"}),
        "monitoring.model_quality.metric = 'rmse': allowed: auc, accuracy, f1, precision or recall",
    ),
    (
        "bias monitor without a bias baseline",
        lambda d: d["monitoring"].update(bias={"schedule": "daily"}),
        "monitoring.bias = 'a section': allowed: null, or a training.bias_baseline (its facet and config)",
    ),
    (
        "missing data lake section",
        lambda d: d.pop("data_lake"),
        "data_lake: missing; required: a data_lake section with at least a dataset",
    ),
    (
        "explainability monitor without a SHAP baseline",
        lambda d: d["monitoring"].update(engine="model_monitor", explainability={"isolation_exception": REASON}),
        "monitoring.explainability = 'a section': allowed: null, or a training.explainability (the registered "
        "SHAP baseline)",
    ),
    (
        "explainability monitor in one availability zone",
        lambda d: (
            d["training"].update(explainability={}),
            d["monitoring"].update(engine="model_monitor", explainability={"isolation_exception": REASON}),
        ),
        "network.max_azs = 1: allowed: 2 or more with monitoring.explainability (Clarify's shadow endpoint needs "
        "the model's subnets in two availability zones)",
    ),
    (
        "explainability monitor with no stated reason",
        lambda d: (
            d["network"].update(max_azs=2),
            d["training"].update(explainability={}),
            d["monitoring"].update(engine="model_monitor", explainability={"isolation_exception": "needed"}),
        ),
        "monitoring.explainability.isolation_exception = 'needed': allowed: why the explainability job may run "
        "without network isolation (20 to 500 characters)",
    ),
    (
        "explainability shadow on a type the model does not support",
        lambda d: (
            d["network"].update(max_azs=2),
            d["training"].update(explainability={}),
            d["monitoring"].update(
                engine="model_monitor", explainability={"isolation_exception": REASON, "instance_type": "ml.c5.xlarge"}
            ),
        ),
        "monitoring.explainability.instance_type = 'ml.c5.xlarge': allowed: one of "
        "training.inference_instance_types: ml.m5.large",
    ),
    (
        "serving another account's versions while retraining here",
        lambda d: (
            d.update(account="111111111111", region="eu-west-1"),
            d["serving"].update(model_source={"account": "222222222222", "environment": "dev"}),
        ),
        "retraining = 'a section': allowed: null with serving.model_source (the pipeline runs in account 222222222222)",
    ),
    (
        "model source in this environment's own account",
        lambda d: (
            d.update(account="111111111111", region="eu-west-1", retraining=None),
            d["serving"].update(model_source={"account": "111111111111", "environment": "dev"}),
        ),
        "serving.model_source.account = '111111111111': allowed: an account other than this environment's own",
    ),
    (
        "model consumers of an environment-agnostic app",
        lambda d: d["training"].update(model_consumers=[{"account": "222222222222", "environment": "prod"}]),
        "training.model_consumers[0] = '222222222222': allowed: null unless account and region are set (other "
        "accounts are granted by id)",
    ),
    (
        "a model consumer listed twice",
        lambda d: (
            d.update(account="111111111111", region="eu-west-1"),
            d["training"].update(model_consumers=[{"account": "222222222222", "environment": e} for e in ("a1", "b2")]),
        ),
        "training.model_consumers[1].account = '222222222222': allowed: an account listed once",
    ),
    (
        "a model consumer with an environment name that cannot name its roles",
        lambda d: (
            d.update(account="111111111111", region="eu-west-1"),
            d["training"].update(model_consumers=[{"account": "222222222222", "environment": "Prod_1"}]),
        ),
        "training.model_consumers[0].environment = 'Prod_1': allowed: the other environment's name (its resources "
        "are named <project>-<environment>-*)",
    ),
    (
        "a shared curated database without its table",
        lambda d: (
            d.update(account="111111111111", region="eu-west-1"),
            d["data_lake"].update(shared_from={"account": "222222222222", "environment": "dev"}),
        ),
        "data_lake.shared_from.table = null: allowed: the shared dataset's table name",
    ),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_gives_one_exact_line(change, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(_mutated(change), SOURCE)
    assert caught.value.problems == [f"{SOURCE}: {message}"]


def test_explainability_is_on_in_prod_only_and_needs_no_second_availability_zone():
    assert load_config("dev").training.explainability is None
    assert load_config("prod").training.explainability.rows == 50
    # The evaluate step computes it in its own job: no shadow endpoint, so one AZ is enough.
    data = _mutated(lambda d: d["training"].update(explainability={}))
    assert data["network"]["max_azs"] == 1
    assert parse_config(data, SOURCE).training.explainability.rows == 50


def test_every_problem_gets_its_own_line():
    data = _mutated(lambda d: (d.update(project="X", foo=1), d["network"].update(max_azs=0, egress="x")))
    with pytest.raises(ConfigError) as caught:
        parse_config(data, SOURCE)
    assert len(caught.value.problems) == 4
    assert all(line.startswith(SOURCE + ": ") and "\n" not in line for line in caught.value.problems)


def test_duplicate_yaml_key_is_rejected(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("project: mlp\nproject: other\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert caught.value.problems == [f"{path}: invalid YAML at line 2, column 1: duplicate key 'project'"]


def test_invalid_yaml_names_the_position(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("project: mlp\nnetwork: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    (line,) = caught.value.problems
    assert line.startswith(f"{path}: invalid YAML at line 3")


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError) as caught:
        parse_config(["a"], SOURCE)
    assert caught.value.problems == [f'{SOURCE}: (top level) = ["a"]: allowed: a mapping of settings']


def test_unknown_environment_lists_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        load_config("staging2")
    envs = ", ".join(available_environments())
    assert caught.value.problems == [
        f"context: env = 'staging2': allowed: one of {envs} (files in config/), or -c config=PATH"
    ]


def test_env_and_config_together_are_ambiguous():
    with pytest.raises(ConfigError) as caught:
        load_config("dev", "config/prod.yaml")
    assert caught.value.problems == [
        "context: env = 'dev' and config = 'config/prod.yaml': allowed: one of -c env=NAME or -c config=PATH"
    ]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(config=str(tmp_path / "nope.yaml"))
    (line,) = caught.value.problems
    assert "nope.yaml: cannot read the file" in line
