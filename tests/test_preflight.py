"""Preflight (infra/preflight) against stubbed accounts, and its needs against what the app really synthesizes.

The accounts are botocore Stubbers: every response is checked against the service's own model, so
the shapes are AWS's, and every call preflight makes must be one the scenario expects, in order.
What this does not prove: that AWS answers these calls this way for a real account (the quota names
and codes, the recorder and invitation fields are AWS's documented ones, not observed here).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import Stubber

from infra.catalog.monitors import SHADOW_METADATA
from infra.config import PlatformConfig, load_config
from infra.config.delivery import load_delivery
from infra.preflight import __main__ as cli
from infra.preflight import bootstrap, needs
from infra.preflight.account import READ_OPERATIONS, READ_PREFIXES, Account, WriteRefused
from infra.preflight.context import Target
from infra.preflight.report import Status, exit_code, render
from infra.preflight.run import check, preflight
from tests.helpers import model_monitor_config

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-west-1"
PROD_ACCOUNT = "111111111111"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SESSION = botocore.session.get_session()


# ---------------------------------------------------------------------------------------------
# Stubbed accounts


@dataclass(frozen=True)
class Call:
    """One expected call: its client and method, and the response (or error code) AWS gives."""

    service: str
    method: str
    response: dict[str, Any] | None = None
    error: str | None = None
    params: dict[str, Any] | None = None


class FakeAccount:
    """Stubbed clients of one account: each client answers its calls in order, validated by Stubber."""

    def __init__(self, calls: list[Call], region: str = REGION) -> None:
        self.region = region
        self.clients: dict[str, Any] = {}
        self.stubbers: dict[str, Stubber] = {}
        self.regions: dict[str, str] = {}
        for call in calls:
            stubber = self._stubber(call.service)
            if call.error is not None:
                stubber.add_client_error(
                    call.method, service_error_code=call.error, service_message="stubbed", expected_params=call.params
                )
            else:
                stubber.add_response(call.method, call.response or {}, call.params)

    def _stubber(self, service: str) -> Stubber:
        if service not in self.stubbers:
            client = SESSION.create_client(
                service, region_name=self.region, aws_access_key_id="testing", aws_secret_access_key="testing"
            )
            self.clients[service] = client
            self.stubbers[service] = Stubber(client)
            self.stubbers[service].activate()
        return self.stubbers[service]

    def factory(self, service: str, region: str) -> Any:
        self._stubber(service)  # a service without expected calls still gets a client that refuses them
        self.regions[service] = region
        return self.clients[service]

    def assert_all_called(self) -> None:
        for stubber in self.stubbers.values():
            stubber.assert_no_pending_responses()


def quota(name: str, value: float, code: str = "L-12345678", service: str = "sagemaker") -> dict[str, Any]:
    return {
        "ServiceCode": service,
        "QuotaCode": code,
        "QuotaName": name,
        "Value": float(value),
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
    }


def quota_code(name: str) -> str:
    """A stable, distinct fake quota code per name (AWS's are L- and eight hex digits)."""
    return "L-" + hashlib.sha256(name.encode()).hexdigest()[:8].upper()


def healthy(config: PlatformConfig, account: str, *, trusted_by: str | None = None) -> list[Call]:
    """Every call preflight makes for `config` in an account that has all it needs, in call order."""
    calls = [
        Call(
            "sts",
            "get_caller_identity",
            {"UserId": "AROAEXAMPLE:me", "Account": account, "Arn": f"arn:aws:sts::{account}:assumed-role/Admin/me"},
        ),
        Call(
            "ssm",
            "get_parameter",
            {"Parameter": {"Name": bootstrap.VERSION_PARAMETER, "Type": "String", "Value": "33", "Version": 4}},
            params={"Name": bootstrap.VERSION_PARAMETER},
        ),
    ]
    if trusted_by is not None:
        calls.append(toolkit_stack(trusted_by))
    calls += _quota_calls(config)
    calls += _network_calls(config)
    calls += _prerequisite_calls(config)
    return calls


def toolkit_stack(trusted: str) -> Call:
    parameters = [{"ParameterKey": "TrustedAccounts", "ParameterValue": trusted}]
    stack = {"StackName": "CDKToolkit", "CreationTime": NOW, "StackStatus": "UPDATE_COMPLETE", "Parameters": parameters}
    return Call("cloudformation", "describe_stacks", {"Stacks": [stack]}, params={"StackName": "CDKToolkit"})


def _quota_calls(config: PlatformConfig) -> list[Call]:
    wanted = needs.instance_needs(config)
    calls = []
    if wanted:
        quotas = [quota(n.quota_name, n.count + 2, quota_code(n.quota_name)) for n in wanted]
        calls.append(
            Call("service-quotas", "list_service_quotas", {"Quotas": quotas}, params={"ServiceCode": "sagemaker"})
        )
    limits = {
        "TotalCodeSize": 80530636800,
        "CodeSizeUnzipped": 262144000,
        "CodeSizeZipped": 52428800,
        "ConcurrentExecutions": 1000,
        "UnreservedConcurrentExecutions": 1000,
    }
    usage = {"TotalCodeSize": 0, "FunctionCount": 0}
    calls.append(Call("lambda", "get_account_settings", {"AccountLimit": limits, "AccountUsage": usage}))
    return calls


def service_quota(service: str, code: str, value: float) -> Call:
    return Call(
        "service-quotas",
        "get_service_quota",
        {"Quota": quota("a quota", value, code, service)},
        params={"ServiceCode": service, "QuotaCode": code},
    )


def _network_calls(config: PlatformConfig) -> list[Call]:
    vpc = {"VpcId": "vpc-0default", "CidrBlock": "172.31.0.0/16", "State": "available", "IsDefault": True}
    services = needs.interface_endpoints(config, REGION)
    details = [{"ServiceName": name, "AvailabilityZones": [f"{REGION}{z}" for z in "abc"]} for name in services]
    calls = [
        Call("ec2", "describe_vpcs", {"Vpcs": [vpc]}),
        service_quota("vpc", "L-F678F1CE", 5),
        service_quota("vpc", "L-29B6F2EB", 50),
        Call("ec2", "describe_vpc_endpoint_services", {"ServiceDetails": details, "ServiceNames": services}),
    ]
    if config.network.nat_gateway_count:
        calls += [Call("ec2", "describe_addresses", {"Addresses": []}), service_quota("ec2", "L-0263D0A3", 5)]
    return calls


def role(name: str) -> dict[str, Any]:
    return {
        "Role": {
            "Path": "/",
            "RoleName": name,
            "RoleId": "AROAEXAMPLEEXAMPLE01",
            "Arn": f"arn:aws:iam::{PROD_ACCOUNT}:role/{name}",
            "CreateDate": NOW,
        }
    }


def _prerequisite_calls(config: PlatformConfig) -> list[Call]:
    calls = []
    if config.security.config_rules:
        recorder = {"name": "default", "recording": True, "lastStatus": "SUCCESS"}
        calls.append(
            Call("config", "describe_configuration_recorder_status", {"ConfigurationRecordersStatus": [recorder]})
        )
    if config.security.budget is not None:
        tag = {"TagKey": "platform", "Type": "UserDefined", "Status": "Active"}
        calls.append(
            Call("ce", "list_cost_allocation_tags", {"CostAllocationTags": [tag]}, params={"TagKeys": ["platform"]})
        )
    admin = {"DataLakePrincipalIdentifier": f"arn:aws:iam::{PROD_ACCOUNT}:role/DataPlatformAdmin"}
    calls.append(Call("lakeformation", "get_data_lake_settings", {"DataLakeSettings": {"DataLakeAdmins": [admin]}}))
    lake = config.data_lake
    personas = [p for p in (lake.personas.data_engineer, lake.personas.data_scientist) if p is not None]
    for name in [*lake.admins, *(r for p in personas for r in p.roles)]:
        calls.append(Call("iam", "get_role", role(name), params={"RoleName": name}))
    if lake.sharing is not None or lake.shared_from is not None:
        organization = {"Id": "o-exampleorgid", "MasterAccountId": "999999999999"}
        calls.append(Call("organizations", "describe_organization", {"Organization": organization}))
        ram = {"EnabledServicePrincipals": [{"ServicePrincipal": "ram.amazonaws.com"}]}
        calls.append(Call("organizations", "list_aws_service_access_for_organization", ram))
    if lake.shared_from is not None:
        calls.append(Call("ram", "get_resource_share_invitations", {"resourceShareInvitations": []}))
    calls += _service_calls(config)
    return calls


def _service_calls(config: PlatformConfig) -> list[Call]:
    training = config.training
    studio = config.trains_here and training is not None and training.studio is not None
    calls = []
    if config.serving is not None and config.serving.autoscaling is not None:
        name = "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
        calls.append(Call("iam", "get_role", role(name), params={"RoleName": name}))
    if studio:
        name = "AWSServiceRoleForAmazonSageMakerNotebooks"
        calls.append(Call("iam", "get_role", role(name), params={"RoleName": name}))
        calls.append(Call("sagemaker", "list_domains", {"Domains": []}))
    if needs.model_monitor_users(config):
        schedule = {
            "MonitoringScheduleName": "another-team-data-quality",
            "MonitoringScheduleArn": f"arn:aws:sagemaker:{REGION}:{PROD_ACCOUNT}:monitoring-schedule/another-team",
            "CreationTime": NOW,
            "LastModifiedTime": NOW,
            "MonitoringScheduleStatus": "Scheduled",
        }
        calls.append(
            Call(
                "sagemaker",
                "list_monitoring_schedules",
                {"MonitoringScheduleSummaries": [schedule]},
                params={"MaxResults": 1},
            )
        )
    return calls


def answered(calls: list[Call], method: str, response: dict[str, Any], nth: int = 0) -> list[Call]:
    """The calls with the `nth` call of `method` answered by `response` instead."""
    return _swap(calls, method, nth, lambda call: replace(call, response=response, error=None))


def failed(calls: list[Call], method: str, code: str, nth: int = 0) -> list[Call]:
    """The calls with the `nth` call of `method` failing with `code`."""
    return _swap(calls, method, nth, lambda call: replace(call, response=None, error=code))


def _swap(calls: list[Call], method: str, nth: int, change: Callable[[Call], Call]) -> list[Call]:
    indexes = [i for i, call in enumerate(calls) if call.method == method]
    out = list(calls)
    out[indexes[nth]] = change(out[indexes[nth]])
    return out


def without(calls: list[Call], *methods: str) -> list[Call]:
    """The calls without those of `methods` (preflight must not make them)."""
    return [call for call in calls if call.method not in methods]


@pytest.fixture(scope="module")
def prod_config() -> PlatformConfig:
    return load_config("prod")


def run_target(config: PlatformConfig, calls: list[Call], **target: Any) -> tuple[Any, FakeAccount]:
    """Check one environment against a stubbed account; every expected call must have been made."""
    fake = FakeAccount(calls)
    defaults = {"title": f"environment {config.environment}", "region": REGION, "account": config.account}
    section = check(
        Target(config=config, network_stack=f"{config.prefix}-Network", **{**defaults, **target}), fake.factory
    )
    fake.assert_all_called()
    return section, fake


def rows_by_status(section: Any, status: Status) -> list[Any]:
    return [row for row in section.rows if row.status == status]


# ---------------------------------------------------------------------------------------------
# Scenarios the issue names


def test_healthy_account_passes_every_check(prod_config: PlatformConfig) -> None:
    section, fake = run_target(prod_config, healthy(prod_config, PROD_ACCOUNT))
    assert [row for row in section.rows if row.status != Status.OK] == []
    assert exit_code([section]) == 0
    checks = [row.check for row in section.rows]
    # Everything prod needs is looked at, and AWS's global APIs are called in their region.
    assert "ml.g5.xlarge for spot training job usage" in checks and "AWS Config recorder" in checks
    assert {"credentials", "CDK bootstrap", "Lambda reserved concurrency", "interface endpoints per VPC"} <= set(checks)
    assert fake.regions["ce"] == fake.regions["organizations"] == "us-east-1" and fake.regions["sagemaker"] == REGION


def test_zero_gpu_quota_is_one_blocker_row_naming_type_usage_needed_and_found(prod_config: PlatformConfig) -> None:
    calls = healthy(prod_config, PROD_ACCOUNT)
    name = "ml.g5.xlarge for spot training job usage"
    quotas = [
        quota(n.quota_name, 0 if n.quota_name == name else n.count, quota_code(n.quota_name))
        for n in needs.instance_needs(prod_config)
    ]
    section, _ = run_target(prod_config, answered(calls, "list_service_quotas", {"Quotas": quotas}))
    [blocker] = rows_by_status(section, Status.BLOCKER)
    # prod tunes with 4 parallel spot jobs of one ml.g5.xlarge each.
    assert (blocker.check, blocker.needed, blocker.found) == (name, "4 (tuning: 4 jobs x 1)", "0")
    assert blocker.fix == (
        f"aws service-quotas request-service-quota-increase --service-code sagemaker "
        f"--quota-code {quota_code(name)} --desired-value 4 --region {REGION}"
    )
    line = next(line for line in render([section]).splitlines() if name in line)
    assert re.search(rf"^BLOCKER\s+{re.escape(name)}\s+4 \(tuning: 4 jobs x 1\)\s+0\s+aws service-quotas", line)
    assert exit_code([section]) == 1


def test_quota_missing_from_the_applied_list_is_read_from_aws_defaults(prod_config: PlatformConfig) -> None:
    calls = healthy(prod_config, PROD_ACCOUNT)
    name = "ml.m5.2xlarge for processing job usage"
    applied = [quota(n.quota_name, n.count, quota_code(n.quota_name)) for n in needs.instance_needs(prod_config)]
    calls = answered(calls, "list_service_quotas", {"Quotas": [q for q in applied if q["QuotaName"] != name]})
    default = Call(
        "service-quotas",
        "list_aws_default_service_quotas",
        {"Quotas": [quota(name, 0, quota_code(name))]},
        params={"ServiceCode": "sagemaker"},
    )
    at = calls.index(next(c for c in calls if c.method == "list_service_quotas")) + 1
    section, _ = run_target(prod_config, [*calls[:at], default, *calls[at:]])
    [blocker] = rows_by_status(section, Status.BLOCKER)
    assert (blocker.check, blocker.needed, blocker.found) == (name, "1 (pipeline: 1 steps at once)", "0")


def _limit_of_ten(calls: list[Call]) -> list[Call]:
    settings = next(c for c in calls if c.method == "get_account_settings").response
    assert settings is not None
    limits = {**settings["AccountLimit"], "ConcurrentExecutions": 10, "UnreservedConcurrentExecutions": 10}
    return answered(calls, "get_account_settings", {**settings, "AccountLimit": limits})


def test_concurrency_limit_of_ten_is_enough_now_that_no_function_reserves(prod_config: PlatformConfig) -> None:
    section, _ = run_target(prod_config, _limit_of_ten(healthy(prod_config, PROD_ACCOUNT)))
    [row] = [row for row in section.rows if row.check == "Lambda reserved concurrency"]
    assert (row.status, row.needed, row.found) == (
        Status.OK,
        "0 reserved (the functions run unreserved)",
        "limit 10, unreserved 10 (10 must stay)",
    )


def test_a_reservation_in_an_account_with_a_limit_of_ten_blocks(
    prod_config: PlatformConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What decision 26 removed: a reserved concurrency of 1 per function fails in such an account."""
    monkeypatch.setattr(needs, "RESERVED_CONCURRENCY", {"promotion": 1, "retraining": 1})
    section, _ = run_target(prod_config, _limit_of_ten(healthy(prod_config, PROD_ACCOUNT)))
    [blocker] = rows_by_status(section, Status.BLOCKER)
    assert blocker.check == "Lambda reserved concurrency"
    assert blocker.needed == "2 reserved (mlp-prod-promotion, mlp-prod-retraining)"
    assert "--service-code lambda --quota-code L-B99A9384 --desired-value 1000" in blocker.fix


def test_missing_config_recorder_blocks_config_rules(prod_config: PlatformConfig) -> None:
    calls = healthy(prod_config, PROD_ACCOUNT)
    section, _ = run_target(
        prod_config, answered(calls, "describe_configuration_recorder_status", {"ConfigurationRecordersStatus": []})
    )
    [blocker] = rows_by_status(section, Status.BLOCKER)
    assert (blocker.check, blocker.found) == ("AWS Config recorder", "no recorder")
    assert "security.config_rules: false" in blocker.fix


def test_stopped_recorder_is_named_with_the_command_that_starts_it(prod_config: PlatformConfig) -> None:
    recorder = {"name": "default", "recording": False, "lastStatus": "SUCCESS"}
    calls = answered(
        healthy(prod_config, PROD_ACCOUNT),
        "describe_configuration_recorder_status",
        {"ConfigurationRecordersStatus": [recorder]},
    )
    [blocker] = rows_by_status(run_target(prod_config, calls)[0], Status.BLOCKER)
    assert blocker.fix == "aws configservice start-configuration-recorder --configuration-recorder-name default"


@pytest.mark.parametrize(
    ("version", "status", "found"),
    [("5", Status.BLOCKER, "version 5"), ("21", Status.WARN, "version 21"), ("33", Status.OK, "version 33")],
)
def test_old_bootstrap(
    prod_config: PlatformConfig, monkeypatch: pytest.MonkeyPatch, version: str, status: Status, found: str
) -> None:
    monkeypatch.setattr(bootstrap, "cli_template_version", lambda: 33)
    parameter = {"Name": bootstrap.VERSION_PARAMETER, "Type": "String", "Value": version, "Version": 1}
    calls = answered(healthy(prod_config, PROD_ACCOUNT), "get_parameter", {"Parameter": parameter})
    section, _ = run_target(prod_config, calls)
    row = next(row for row in section.rows if row.check == "CDK bootstrap")
    assert (row.status, row.found, row.needed) == (status, found, ">= 6 (the pinned CLI deploys 33)")
    if status != Status.OK:
        assert row.fix == f"npx cdk bootstrap aws://{PROD_ACCOUNT}/{REGION}"


def test_not_bootstrapped(prod_config: PlatformConfig) -> None:
    section, _ = run_target(
        prod_config, failed(healthy(prod_config, PROD_ACCOUNT), "get_parameter", "ParameterNotFound")
    )
    [blocker] = rows_by_status(section, Status.BLOCKER)
    assert (blocker.check, blocker.found) == ("CDK bootstrap", "not bootstrapped")


def test_missing_permission_is_reported_as_not_checked_never_as_a_pass(prod_config: PlatformConfig) -> None:
    calls = failed(healthy(prod_config, PROD_ACCOUNT), "get_data_lake_settings", "AccessDeniedException")
    section, _ = run_target(prod_config, calls)
    [row] = rows_by_status(section, Status.UNCHECKED)
    assert (row.check, row.found) == ("Lake Formation settings", "missing permission lakeformation:GetDataLakeSettings")
    assert row.fix.startswith("allow lakeformation:GetDataLakeSettings to the caller")
    assert exit_code([section]) == 0 and exit_code([section], strict=True) == 1
    assert "(some checks were not made)" in render([section])


def test_denied_quota_listing_leaves_every_instance_need_unchecked(prod_config: PlatformConfig) -> None:
    calls = failed(healthy(prod_config, PROD_ACCOUNT), "list_service_quotas", "AccessDeniedException")
    section, _ = run_target(prod_config, calls)
    unchecked = rows_by_status(section, Status.UNCHECKED)
    assert [row.check for row in unchecked] == [n.quota_name for n in needs.instance_needs(prod_config)]
    assert {row.found for row in unchecked} == {"missing permission servicequotas:ListServiceQuotas"}


def test_ec2_denial_code_counts_as_a_missing_permission(prod_config: PlatformConfig) -> None:
    calls = failed(healthy(prod_config, PROD_ACCOUNT), "describe_vpcs", "UnauthorizedOperation")
    calls = [c for c in calls if c.params != {"ServiceCode": "vpc", "QuotaCode": "L-F678F1CE"}]
    section, _ = run_target(prod_config, calls)
    [row] = rows_by_status(section, Status.UNCHECKED)
    assert (row.check, row.found) == ("VPCs per region", "missing permission ec2:DescribeVpcs")


def test_an_unexpected_aws_error_is_not_checked_either(prod_config: PlatformConfig) -> None:
    calls = failed(healthy(prod_config, PROD_ACCOUNT), "list_domains", "ThrottlingException")
    section, _ = run_target(prod_config, calls)
    [row] = rows_by_status(section, Status.UNCHECKED)
    assert row.check == "SageMaker Studio domains" and row.found.startswith("ThrottlingException")


def test_missing_persona_role_and_other_account_findings(prod_config: PlatformConfig) -> None:
    calls = failed(healthy(prod_config, PROD_ACCOUNT), "get_role", "NoSuchEntity", nth=1)  # DataEngineer
    iam_allowed = {"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}
    settings = {"DataLakeAdmins": [], "CreateDatabaseDefaultPermissions": [iam_allowed]}
    calls = answered(calls, "get_data_lake_settings", {"DataLakeSettings": settings})
    calls = answered(calls, "list_domains", {"Domains": [{"DomainName": "research", "DomainId": "d-abc"}]})
    section, _ = run_target(prod_config, calls)
    [blocker] = rows_by_status(section, Status.BLOCKER)
    assert (blocker.check, blocker.found) == ("IAM roles named in the config", "missing: DataEngineer")
    assert blocker.fix == "create them, or remove them from data_lake.personas.data_engineer.roles"
    warned = {row.check: row.found for row in rows_by_status(section, Status.WARN)}
    assert warned == {
        "Lake Formation settings": "0 administrator(s); new databases and tables default to IAM_ALLOWED_PRINCIPALS",
        "SageMaker Studio domains": "others in the region: research",
    }


def test_model_monitor_is_checked_only_where_the_model_monitor_engine_uses_it(prod_config: PlatformConfig) -> None:
    """prod runs the platform engine: nothing of it needs Model Monitor, so an account new to it is fine.
    On the model_monitor engine an account without schedules may be new to it (closed to new customers)."""
    section, _ = run_target(prod_config, healthy(prod_config, PROD_ACCOUNT))
    assert "SageMaker Model Monitor" not in {row.check for row in section.rows}
    config = model_monitor_config()
    calls = answered(healthy(config, PROD_ACCOUNT), "list_monitoring_schedules", {"MonitoringScheduleSummaries": []})
    section, _ = run_target(config, calls)
    [row] = [row for row in section.rows if row.check == "SageMaker Model Monitor"]
    assert (row.status, row.found) == (Status.WARN, "no schedule: the account may be new to it")
    assert row.needed == "for pipeline baselines and 4 monitor(s)"


def test_credentials_of_another_account_block_a_single_environment(prod_config: PlatformConfig) -> None:
    identity = {"UserId": "AIDAEXAMPLE", "Account": "999999999999", "Arn": "arn:aws:iam::999999999999:user/me"}
    section, _ = run_target(prod_config, [Call("sts", "get_caller_identity", identity)])
    [row] = section.rows
    assert (row.check, row.status) == ("credentials", Status.BLOCKER)
    assert row.fix == "use credentials of account 111111111111: --profile prod=PROFILE"


def test_no_credentials_at_all() -> None:
    config = load_config("dev")
    fake = FakeAccount([Call("sts", "get_caller_identity", error="ExpiredToken")])
    section = check(Target(title="environment dev", region=REGION, account=None, config=config), fake.factory)
    [row] = section.rows
    assert (row.check, row.status, row.found) == ("credentials", Status.BLOCKER, "ExpiredToken: stubbed")


def test_a_delivery_without_credentials_is_not_checked_rather_than_blocked() -> None:
    from infra.preflight.run import targets

    found = targets(ROOT / "config" / "multi-account.yaml", {}, None)
    sections = [
        check(t, FakeAccount([Call("sts", "get_caller_identity", error="ExpiredToken")]).factory) for t in found
    ]
    assert [[row.status for row in s.rows] for s in sections] == [[Status.UNCHECKED]] * 4
    assert exit_code(sections) == 0 and exit_code(sections, strict=True) == 1


def test_dev_is_checked_in_the_callers_account() -> None:
    config = load_config("dev")
    section, _ = run_target(config, healthy(config, "123456789012"), account=None)
    assert [row for row in section.rows if row.status != Status.OK] == []
    assert section.title == f"environment dev (the caller's account, {REGION})"


# ---------------------------------------------------------------------------------------------
# A delivery: the tooling account and every stage, each with its own credentials


def _delivery_accounts(trust: str = "100000000000") -> dict[str | None, FakeAccount]:
    delivery, stages = load_delivery(ROOT / "config" / "multi-account.yaml")
    tooling = delivery.deployment.tooling
    connection = {
        "ConnectionName": "ml-platform",
        "ConnectionArn": delivery.deployment.source.connection_arn,
        "ProviderType": "GitHub",
        "OwnerAccountId": tooling.account,
        "ConnectionStatus": "AVAILABLE",
    }
    tooling_calls = [
        *healthy(stages["dev"], tooling.account)[:2],
        Call("codeconnections", "get_connection", {"Connection": connection}),
    ]
    accounts: dict[str | None, FakeAccount] = {"tooling-profile": FakeAccount(tooling_calls)}
    for stage in delivery.deployment.stages:
        accounts[f"{stage.name}-profile"] = FakeAccount(healthy(stages[stage.name], stage.account, trusted_by=trust))
    return accounts


def test_delivery_checks_every_stage_with_its_account_and_the_tooling_trust() -> None:
    accounts = _delivery_accounts()
    profiles = {name: f"{name}-profile" for name in ("tooling", "dev", "staging", "prod")}
    sections = preflight(ROOT / "config" / "multi-account.yaml", lambda p: accounts[p].factory, profiles, None)
    for fake in accounts.values():
        fake.assert_all_called()
    assert [s.title for s in sections] == [
        "tooling (account 100000000000, eu-west-1)",
        "stage dev (account 200000000000, eu-west-1)",
        "stage staging (account 300000000000, eu-west-1)",
        "stage prod (account 400000000000, eu-west-1)",
    ]
    assert all(row.status == Status.OK for s in sections for row in s.rows), render(sections)
    trust = [row for s in sections for row in s.rows if row.check == "CDK bootstrap trust"]
    assert [row.needed for row in trust] == ["trusts 100000000000 (the tooling account)"] * 3
    # staging links dev's lake: its pending RAM invitations are looked at; dev and prod link nothing.
    assert [s.title.split()[1] for s in sections if any(r.check.startswith("RAM invitations") for r in s.rows)] == [
        "staging"
    ]
    # staging and prod serve dev's registry: no pipeline, so no training quota there.
    spot = [s.title.split()[1] for s in sections if any("spot training" in r.check for r in s.rows)]
    assert spot == ["dev"]


def test_delivery_stage_without_trust_blocks() -> None:
    accounts = _delivery_accounts(trust="")
    profiles = {name: f"{name}-profile" for name in ("tooling", "dev", "staging", "prod")}
    sections = preflight(ROOT / "config" / "multi-account.yaml", lambda p: accounts[p].factory, profiles, None)
    blockers = [(s.title.split()[1], r.found, r.fix) for s in sections for r in s.rows if r.status == Status.BLOCKER]
    assert [b[:2] for b in blockers] == [(stage, "trusts no other account") for stage in ("dev", "staging", "prod")]
    assert blockers[0][2] == (
        "npx cdk bootstrap aws://200000000000/eu-west-1 --trust 100000000000 "
        "--cloudformation-execution-policies arn:aws:iam::aws:policy/AdministratorAccess"
    )


def test_delivery_with_one_profile_checks_its_account_and_says_which_profiles_are_missing() -> None:
    from infra.preflight.run import targets

    _, stages = load_delivery(ROOT / "config" / "multi-account.yaml")
    # The caller's one profile reaches dev's account: dev is checked, the others say which profile they need.
    identity = healthy(stages["dev"], "200000000000")[:1]
    fakes = [
        FakeAccount(identity),
        FakeAccount(healthy(stages["dev"], "200000000000", trusted_by="100000000000")),
        FakeAccount(identity),
        FakeAccount(identity),
    ]
    found = targets(ROOT / "config" / "multi-account.yaml", {}, None)
    sections = [check(target, fake.factory) for target, fake in zip(found, fakes, strict=True)]
    for fake in fakes:
        fake.assert_all_called()
    assert [row.status for row in sections[1].rows] == [Status.OK] * len(sections[1].rows)
    for section, name in zip((sections[0], *sections[2:]), ("tooling", "staging", "prod"), strict=True):
        [row] = section.rows
        assert row.status == Status.UNCHECKED and row.fix.endswith(f"--profile {name}=PROFILE")
    assert exit_code(sections) == 0 and exit_code(sections, strict=True) == 1


def test_cli_prints_the_table_and_exits_by_severity(
    prod_config: PlatformConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = failed(healthy(prod_config, PROD_ACCOUNT), "get_parameter", "ParameterNotFound")
    fake = FakeAccount(calls)
    asked: list[str | None] = []

    def factory(profile: str | None) -> Callable[[str, str], Any]:
        asked.append(profile)
        return fake.factory

    monkeypatch.setattr(cli, "boto3_factory", factory)
    assert cli.main(["--env", "prod", "--profile", "prod-admin"]) == 1
    assert asked == ["prod-admin"]
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"environment prod (account {PROD_ACCOUNT}, {REGION})"
    assert re.search(r"^status\s+check\s+needed\s+found\s+fix$", out, re.MULTILINE)
    assert "BLOCKER  CDK bootstrap" in out and out.rstrip().endswith("fix the BLOCKER rows first")


def test_cli_config_errors_and_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--env", "nope"]) == 2
    assert "config error: context: env = 'nope': allowed: one of" in capsys.readouterr().err
    assert cli.main(["--env", "prod", "--profile", "stage="]) == 2
    assert "--profile 'stage=': allowed: PROFILE or TARGET=PROFILE" in capsys.readouterr().err
    assert cli.main(["--env", "multi-account", "--profile", "qa=x"]) == 2
    assert "--profile names qa: allowed: tooling or a stage name" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Read-only by construction


def test_every_operation_preflight_may_call_only_reads() -> None:
    for service, operations in READ_OPERATIONS.items():
        model = SESSION.get_service_model(service)
        for operation in operations:
            assert operation in model.operation_names, f"{service}:{operation} is not an operation of {service}"
            assert operation.startswith(READ_PREFIXES), f"{service}:{operation} is not a Get/List/Describe call"


def test_global_services_are_called_in_their_partitions_home_region() -> None:
    from infra.preflight.account import home_region

    assert [home_region(r) for r in ("eu-west-1", "cn-north-1", "us-gov-east-1")] == [
        "us-east-1",
        "cn-northwest-1",
        "us-gov-west-1",
    ]


def test_the_guard_refuses_a_write_before_it_is_sent() -> None:
    fake = FakeAccount([Call("ssm", "put_parameter", {"Version": 1, "Tier": "Standard"})])
    account = Account(fake.factory, REGION)
    with pytest.raises(WriteRefused, match="ssm:PutParameter is not a read preflight may make"):
        account.call("ssm", "PutParameter", Name="/x", Value="y")
    # Even a direct call on its client never reaches the stub (or AWS): the hook runs first.
    with pytest.raises(WriteRefused, match="ssm:PutParameter"):
        account.client("ssm").put_parameter(Name="/x", Value="y", Type="String")
    with pytest.raises(WriteRefused, match="reads no 's3' API"):
        account.client("s3")


def test_readme_lists_exactly_the_permissions_preflight_reads_with() -> None:
    from infra.preflight.account import iam_action

    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Before the first deploy") : text.index("## Deploying")]
    listed = set(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", section.split("The caller needs these read permissions")[1]))
    assert listed == {iam_action(s, o) for s, ops in READ_OPERATIONS.items() for o in ops} - {"sts:GetCallerIdentity"}


# ---------------------------------------------------------------------------------------------
# The needs against what the app synthesizes


def _template_needs(synthesized: Any) -> dict[tuple[str, str], int]:
    """(instance type, usage) -> peak instances, read from the synthesized templates alone."""
    found: dict[tuple[str, str], int] = {}

    def add(instance_type: str, usage: str, count: int) -> None:
        found[(instance_type, usage)] = found.get((instance_type, usage), 0) + count

    templates = synthesized.templates
    for template in templates.values():
        for resource in template["Resources"].values():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::SageMaker::Pipeline":
                _pipeline_needs(props, add)
            elif kind.startswith("AWS::SageMaker::") and kind.endswith("JobDefinition"):
                cluster = props["JobResources"]["ClusterConfig"]
                add(cluster["InstanceType"], "processing job", cluster["InstanceCount"])
            # The explainability job's shadow endpoint, as the cost estimate reads it.
            shadow = resource.get("Metadata", {}).get(SHADOW_METADATA)
            if shadow:
                add(shadow["InstanceType"], "endpoint", shadow["InstanceCount"])
    if "Serving" in templates:
        _endpoint_needs(synthesized.templates["Serving"], add)
    return found


def _pipeline_needs(props: dict[str, Any], add: Callable[[str, str, int], None]) -> None:
    body = props["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"][0]
    parallel = props["ParallelismConfiguration"]["MaxParallelExecutionSteps"]
    steps = json.loads(body)["Steps"]
    gate = next((s for s in steps if s["Type"] == "Condition"), None)
    for step in steps:
        args = step.get("Arguments", {})
        if step["Type"] == "Training":
            spot = "spot training job" if args.get("EnableManagedSpotTraining") else "training job"
            add(args["ResourceConfig"]["InstanceType"], spot, args["ResourceConfig"]["InstanceCount"])
        elif step["Type"] == "Tuning":
            job = args["TrainingJobDefinition"]
            spot = "spot training job" if job.get("EnableManagedSpotTraining") else "training job"
            resources = job.get("ResourceConfig") or job["HyperParameterTuningResourceConfig"]
            parallel_jobs = args["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"]
            add(resources["InstanceType"], spot, resources["InstanceCount"] * parallel_jobs)
    processing = [
        s["Arguments"]["ProcessingResources"]["ClusterConfig"]
        for s in steps
        if "ProcessingResources" in s.get("Arguments", {})
    ]
    # The peak of processing: the steps after the gate run side by side, up to the pipeline's parallelism;
    # without any, one step at a time (a monitor pipeline has no gate: one run at a time, never overlapping).
    after_gate = [
        s["Arguments"]["ProcessingResources"]["ClusterConfig"]
        for s in (gate["Arguments"]["IfSteps"] if gate else [])
        if "ProcessingResources" in s.get("Arguments", {})
    ]
    if after_gate:
        assert len({c["InstanceType"] for c in after_gate}) == 1
        add(after_gate[0]["InstanceType"], "processing job", min(sum(c["InstanceCount"] for c in after_gate), parallel))
    else:
        assert len({c["InstanceType"] for c in processing}) == 1
        add(processing[0]["InstanceType"], "processing job", max(c["InstanceCount"] for c in processing))


def _endpoint_needs(template: dict[str, Any], add: Callable[[str, str, int], None]) -> None:
    resources = template["Resources"].values()
    maxima = {
        json.dumps(r["Properties"]["ResourceId"], sort_keys=True): r["Properties"]["MaxCapacity"]
        for r in resources
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
    }
    [endpoint] = [r for r in resources if r["Type"] == "AWS::SageMaker::Endpoint"]
    deployment = endpoint["Properties"]["DeploymentConfig"]
    for config in (r for r in resources if r["Type"] == "AWS::SageMaker::EndpointConfig"):
        for variant in config["Properties"]["ProductionVariants"]:
            scaling = [m for key, m in maxima.items() if f"variant/{variant['VariantName']}" in key]
            fleet = max([variant["InitialInstanceCount"], *scaling])
            if "RollingUpdatePolicy" in deployment:
                batch = deployment["RollingUpdatePolicy"]["MaximumBatchSize"]["Value"]
                extra = -(-fleet * batch // 100)
            else:
                extra = fleet
            add(variant["InstanceType"], "endpoint", fleet + extra)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_instance_needs_match_the_synthesized_app(synth: Any, env: str) -> None:
    config = load_config(env)
    expected = _template_needs(synth(env))
    assert {(n.instance_type, n.usage.value): n.count for n in needs.instance_needs(config)} == expected


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_interface_endpoints_and_reserved_concurrency_match_the_synthesized_app(synth: Any, env: str) -> None:
    config, synthesized = load_config(env), synth(env)
    region = config.region or REGION
    endpoints = [
        r["Properties"]
        for r in synthesized.templates["Network"]["Resources"].values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    ]
    names = sorted(_service_name(p["ServiceName"], region) for p in endpoints)
    assert names == sorted(needs.interface_endpoints(config, region))
    reserved = {
        r["Properties"]["FunctionName"]: r["Properties"]["ReservedConcurrentExecutions"]
        for template in synthesized.templates.values()
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "ReservedConcurrentExecutions" in r["Properties"]
    }
    assert reserved == needs.reserved_concurrency(config)


def _service_name(value: Any, region: str) -> str:
    """A ServiceName as written (a literal, or Fn::Join around the region of an agnostic stack)."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(region if part == {"Ref": "AWS::Region"} else part for part in parts)


def test_bootstrap_version_matches_what_the_assembly_requires(synth: Any) -> None:
    manifest = json.loads((synth("dev").outdir / "manifest.json").read_text())
    required = {
        artifact["properties"]["requiresBootstrapStackVersion"]
        for artifact in manifest["artifacts"].values()
        if "requiresBootstrapStackVersion" in artifact.get("properties", {})
    }
    assert required == {bootstrap.MIN_BOOTSTRAP_VERSION}


def test_cli_template_version_is_read_from_the_bootstrap_template(tmp_path: Path) -> None:
    template = tmp_path / "bootstrap-template.yaml"
    template.write_text(
        "Resources:\n  CdkBootstrapVersion:\n    Type: AWS::SSM::Parameter\n    Properties:\n"
        "      Type: String\n      Name: /cdk-bootstrap/x/version\n      Value: '33'\nOutputs:\n"
        "  BootstrapVersion:\n    Value: '34'\n"
    )
    assert bootstrap.cli_template_version.__wrapped__(template) == 33
    assert bootstrap.cli_template_version.__wrapped__(tmp_path / "missing.yaml") is None
