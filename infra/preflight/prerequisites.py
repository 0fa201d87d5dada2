"""Account prerequisites the stacks rely on but do not create: Config, the cost tag, Lake Formation, roles, services."""

from __future__ import annotations

from botocore.exceptions import ClientError

from infra.preflight import needs
from infra.preflight.account import Unchecked, error_code
from infra.preflight.context import Context
from infra.preflight.quotas import grant
from infra.preflight.report import Row, Status

COST_TAG = "platform"
IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"
# Lake Formation's cross-account version the DataLake stack sets when it shares (RAM, LF-Tags).
LAKE_CROSS_ACCOUNT_VERSION = 4
RAM_PRINCIPAL = "ram.amazonaws.com"
# Service-linked roles: (role name, service principal); CloudFormation creates a missing one only
# if the deploy role may call iam:CreateServiceLinkedRole.
AUTOSCALING_ROLE = (
    "endpoint autoscaling",
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
    "sagemaker.application-autoscaling",
)
STUDIO_ROLE = ("Studio", "AWSServiceRoleForAmazonSageMakerNotebooks", "sagemaker")


def config_recorder(ctx: Context) -> list[Row]:
    """AWS Config rules need a recorder of the account's own that is recording."""
    if not ctx.config.security.config_rules:
        return []
    check, needed = "AWS Config recorder", "one recording (security.config_rules)"
    try:
        statuses = ctx.account.call("config", "DescribeConfigurationRecorderStatus")["ConfigurationRecordersStatus"]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    # Service-linked recorders record for one AWS service only; the rules need a customer recorder.
    own = [s for s in statuses if not s.get("servicePrincipal")]
    if any(s.get("recording") for s in own):
        names = ", ".join(s["name"] for s in own if s.get("recording"))
        return [Row(check, needed, f"recording: {names}", Status.OK)]
    if own:
        name = own[0]["name"]
        fix = f"aws configservice start-configuration-recorder --configuration-recorder-name {name}"
        return [Row(check, needed, f"{name} is stopped", Status.BLOCKER, fix)]
    fix = "console: AWS Config > Get started (record all resource types), or set security.config_rules: false"
    return [Row(check, needed, "no recorder", Status.BLOCKER, fix)]


def cost_tag(ctx: Context) -> list[Row]:
    """The budget filters on the `platform` tag, which Billing counts only once it is activated."""
    if ctx.config.security.budget is None:
        return []
    check, needed = f"cost allocation tag '{COST_TAG}'", "active (the budget filters on it)"
    try:
        tags = ctx.account.call("ce", "ListCostAllocationTags", TagKeys=[COST_TAG])["CostAllocationTags"]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    status = next((t.get("Status") for t in tags if t.get("TagKey") == COST_TAG), None)
    if status == "Active":
        return [Row(check, needed, "active", Status.OK)]
    fix = (
        "aws ce update-cost-allocation-tags-status --cost-allocation-tags-status "
        f"TagKey={COST_TAG},Status=Active (from the paying account)"
    )
    if status is None:
        found = "not seen yet (Billing lists a tag up to 24 h after resources carry it)"
        return [Row(check, needed, found, Status.WARN, "after the first deploy: " + fix)]
    return [Row(check, needed, status.lower(), Status.WARN, fix)]


def lake_formation(ctx: Context) -> list[Row]:
    """The DataLake stack appends administrators and sets the account's default permissions to none."""
    check = "Lake Formation settings"
    needed = "no IAM_ALLOWED_PRINCIPALS defaults"
    try:
        settings = ctx.account.call("lakeformation", "GetDataLakeSettings")["DataLakeSettings"]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    defaults = [
        grant_["Principal"].get("DataLakePrincipalIdentifier")
        for key in ("CreateDatabaseDefaultPermissions", "CreateTableDefaultPermissions")
        for grant_ in settings.get(key, [])
    ]
    admins = f"{len(settings.get('DataLakeAdmins', []))} administrator(s)"
    rows = []
    if IAM_ALLOWED_PRINCIPALS in defaults:
        found = f"{admins}; new databases and tables default to IAM_ALLOWED_PRINCIPALS"
        fix = (
            "the deploy sets the account's defaults to none: agree with its other Lake Formation users first "
            "(their new databases and tables will need grants), or deploy into an account of its own"
        )
        rows.append(Row(check, needed, found, Status.WARN, fix))
    else:
        rows.append(Row(check, needed, f"{admins}; Lake Formation permissions only", Status.OK))
    if ctx.config.data_lake.sharing is not None:
        rows.append(_cross_account_version(settings.get("Parameters", {})))
    return rows


def _cross_account_version(parameters: dict[str, str]) -> Row:
    check, needed = "Lake Formation cross-account version", f"{LAKE_CROSS_ACCOUNT_VERSION} (set by the stack)"
    current = parameters.get("CROSS_ACCOUNT_VERSION", "1")
    if current.isdigit() and int(current) > LAKE_CROSS_ACCOUNT_VERSION:
        fix = f"the deploy lowers it to {LAKE_CROSS_ACCOUNT_VERSION}: check the account's other shares first"
        return Row(check, needed, current, Status.WARN, fix)
    return Row(check, needed, current, Status.OK)


def configured_roles(ctx: Context) -> list[Row]:
    """Roles the config names (lake administrators, personas) must exist before Lake Formation grants them."""
    lake = ctx.config.data_lake
    named = {role: "data_lake.admins" for role in lake.admins}
    for persona in ("data_engineer", "data_scientist"):
        section = getattr(lake.personas, persona)
        named.update({role: f"data_lake.personas.{persona}.roles" for role in (section.roles if section else [])})
    if not named:
        return []
    check, needed = "IAM roles named in the config", ", ".join(named)
    missing: list[str] = []
    unchecked: list[Unchecked] = []
    for role in named:
        try:
            ctx.account.call("iam", "GetRole", RoleName=role.rsplit("/", 1)[-1])
        except Unchecked as reason:
            unchecked.append(reason)
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            missing.append(role)
    if missing:
        fields = sorted({named[r] for r in missing})
        fix = f"create them, or remove them from {', '.join(fields)}"
        return [Row(check, needed, "missing: " + ", ".join(missing), Status.BLOCKER, fix)]
    if unchecked:
        return [Row(check, needed, str(unchecked[0]), Status.UNCHECKED, grant(unchecked[0]))]
    return [Row(check, needed, "all exist", Status.OK)]


def lake_sharing(ctx: Context) -> list[Row]:
    """Lake Formation shares through AWS RAM: accepted by itself only inside an organization that enables it."""
    lake = ctx.config.data_lake
    rows = []
    if lake.sharing is not None or lake.shared_from is not None:
        rows.append(_organization_sharing(ctx))
    if lake.shared_from is not None:
        rows.append(_pending_invitations(ctx, lake.shared_from.account))
    return rows


def _organization_sharing(ctx: Context) -> Row:
    check, needed = "RAM sharing in the organization", "on (shares accepted by themselves)"
    try:
        organization = ctx.account.call("organizations", "DescribeOrganization")["Organization"]
    except Unchecked as reason:
        return Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))
    except ClientError as error:
        if error_code(error) != "AWSOrganizationsNotInUseException":
            raise
        fix = "after the source's first deploy, accept the RAM invitation in each consuming account"
        return Row(check, needed, "not in an organization", Status.WARN, fix)
    try:
        access = ctx.account.pages("organizations", "ListAWSServiceAccessForOrganization", "EnabledServicePrincipals")
        principals = {p["ServicePrincipal"] for p in access}
    except Unchecked as reason:
        fix = "only the management account may read it: check AWS RAM > Settings there"
        return Row(check, needed, f"{reason} ({organization['Id']})", Status.UNCHECKED, fix)
    if RAM_PRINCIPAL in principals:
        return Row(check, needed, f"on in organization {organization['Id']}", Status.OK)
    fix = "aws ram enable-sharing-with-aws-organization (in the management account)"
    return Row(check, needed, f"off in organization {organization['Id']}", Status.WARN, fix)


def _pending_invitations(ctx: Context, source: str) -> Row:
    check, needed = "RAM invitations from the sharing account", f"none pending from {source}"
    try:
        invitations = list(ctx.account.pages("ram", "GetResourceShareInvitations", "resourceShareInvitations"))
    except Unchecked as reason:
        return Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))
    pending = [
        i["resourceShareInvitationArn"]
        for i in invitations
        if i.get("senderAccountId") == source and i.get("status") == "PENDING"
    ]
    if not pending:
        return Row(check, needed, "none pending", Status.OK)
    fix = "; ".join(
        f"aws ram accept-resource-share-invitation --resource-share-invitation-arn {arn} --region {ctx.region}"
        for arn in pending
    )
    return Row(check, needed, f"{len(pending)} pending", Status.WARN, fix)


def service_linked_roles(ctx: Context) -> list[Row]:
    """Roles AWS services act through: autoscaling of the endpoint, Studio."""
    config = ctx.config
    wanted = []
    if config.serving is not None and config.serving.autoscaling is not None:
        wanted.append(AUTOSCALING_ROLE)
    if config.trains_here and config.training is not None and config.training.studio is not None:
        wanted.append(STUDIO_ROLE)
    rows = []
    for purpose, name, service in wanted:
        check, needed = f"service-linked role: {purpose}", "exists (or the deploy creates it)"
        try:
            ctx.account.call("iam", "GetRole", RoleName=name)
        except Unchecked as reason:
            rows.append(Row(check, needed, str(reason), Status.UNCHECKED, grant(reason)))
            continue
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            fix = f"aws iam create-service-linked-role --aws-service-name {service}.amazonaws.com"
            rows.append(Row(check, needed, f"no {name}", Status.WARN, fix))
            continue
        rows.append(Row(check, needed, f"{name} exists", Status.OK))
    return rows


def studio_domains(ctx: Context) -> list[Row]:
    """A Studio domain of this environment beside domains the account already has in the region."""
    config = ctx.config
    if not (config.trains_here and config.training is not None and config.training.studio is not None):
        return []
    ours = f"{config.prefix}-studio"
    check, needed = "SageMaker Studio domains", f"{ours} (VpcOnly)"
    try:
        domains = [d["DomainName"] for d in ctx.account.pages("sagemaker", "ListDomains", "Domains")]
    except Unchecked as reason:
        return [Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))]
    others = [name for name in domains if name != ours]
    if not others:
        return [Row(check, needed, f"{len(domains)} in the region", Status.OK)]
    fix = "check the SageMaker domain quota in Service Quotas, or set training.studio: null"
    return [Row(check, needed, "others in the region: " + ", ".join(others), Status.WARN, fix)]


def closed_services(ctx: Context) -> list[Row]:
    """Model Monitor and Debugger are closed to new customers: an account new to them cannot use them."""
    config = ctx.config
    rows = []
    users = needs.model_monitor_users(config)
    if users:
        rows.append(_model_monitor(ctx, users))
    training = config.training
    if config.trains_here and training is not None and training.debugger.rules:
        fix = "ask AWS whether the account may use Debugger, or set training.debugger.rules: []"
        found = "no read-only call tells whether the account may use it"
        rows.append(Row("SageMaker Debugger", "rules: " + ", ".join(training.debugger.rules), found, Status.WARN, fix))
    return rows


def _model_monitor(ctx: Context, users: list[str]) -> Row:
    monitors = [user for user in users if user.endswith(" monitor")]
    parts = [user for user in users if user not in monitors] + ([f"{len(monitors)} monitor(s)"] if monitors else [])
    check, needed = "SageMaker Model Monitor", "for " + " and ".join(parts)
    try:
        answer = ctx.account.call("sagemaker", "ListMonitoringSchedules", MaxResults=1)
    except Unchecked as reason:
        return Row(check, needed, str(reason), Status.UNCHECKED, grant(reason))
    if answer["MonitoringScheduleSummaries"]:
        return Row(check, needed, "in use here (schedules exist)", Status.OK)
    fix = (
        "ask AWS whether the account may use Model Monitor; without it set the monitoring sections to null "
        "(the pipeline's baseline steps run its image too)"
    )
    return Row(check, needed, "no schedule: the account may be new to it", Status.WARN, fix)
