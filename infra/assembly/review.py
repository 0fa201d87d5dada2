"""Pull-request review: what a change does to the cloud, from the cloud assemblies of BASE and HEAD.

`python -m infra.assembly.review --base REF [--env NAME|all] [--out FILE]` synthesizes both (BASE in a
temporary git worktree), compares them and prints a Markdown report: resources added, removed,
modified and replaced (stateful ones loudly), IAM and network changes, new cdk-nag
acknowledgments, template sizes against CloudFormation limits, and the monthly cost delta. It
exits 1 when a stateful resource would be replaced or removed, unless that is explicitly allowed.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.assembly import cost, reader

ROOT = Path(__file__).resolve().parents[2]

# Resources whose replacement or removal loses data (or identity others depend on, for keys).
STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SageMaker::Domain",
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::EFS::FileSystem",
        "AWS::RDS::DBCluster",
        "AWS::RDS::DBInstance",
        "AWS::LakeFormation::DataLakeSettings",
        # The promoted model version and its baselines (infra/constructs/serving_state.py).
        "AWS::SSM::Parameter",
    }
)
NETWORK_TYPES = frozenset(
    {
        "AWS::EC2::VPC",
        "AWS::EC2::Subnet",
        "AWS::EC2::RouteTable",
        "AWS::EC2::Route",
        "AWS::EC2::NatGateway",
        "AWS::EC2::InternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::VPCEndpoint",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupIngress",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::EC2::NetworkAcl",
        "AWS::EC2::NetworkAclEntry",
        "AWS::EC2::FlowLog",
    }
)
# CloudFormation quotas per stack: resources, and template body size when uploaded through S3.
MAX_RESOURCES = 500
MAX_TEMPLATE_BYTES = 1_000_000
NEAR_LIMIT = 0.8
LIMIT_REGION = "us-east-1"


@dataclass(frozen=True)
class ResourceChange:
    stack: str
    logical_id: str
    type: str
    action: str  # added | removed | modified | replaced
    properties: tuple[str, ...] = ()  # changed properties; for `replaced`, those that force it

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL_TYPES


@dataclass(frozen=True)
class Permission:
    """One allowed or denied (action, resource) pair of one policy-bearing resource."""

    stack: str
    logical_id: str
    effect: str
    action: str
    resource: str
    principal: str = ""

    @property
    def wildcard(self) -> bool:
        # In a resource policy (with a principal) `Resource: *` means the resource itself.
        return self.effect == "Allow" and ("*" in self.action or (self.resource == "*" and not self.principal))


@dataclass
class EnvironmentReview:
    env: str
    changes: list[ResourceChange] = field(default_factory=list)
    permissions_added: list[Permission] = field(default_factory=list)
    permissions_removed: list[Permission] = field(default_factory=list)
    acknowledgments_added: list[tuple[str, str, str]] = field(default_factory=list)  # rule, path, reason
    limits: list[str] = field(default_factory=list)
    sizes: list[tuple[str, int, int]] = field(default_factory=list)  # stack, resources, bytes
    cost_base: list[cost.Line] = field(default_factory=list)
    cost_head: list[cost.Line] = field(default_factory=list)
    base_error: str | None = None

    @property
    def dangerous(self) -> list[ResourceChange]:
        return [c for c in self.changes if c.stateful and c.action in ("replaced", "removed")]


# ---------------------------------------------------------------------------------------------
# Resource changes


@functools.lru_cache(maxsize=256)
def create_only_properties(resource_type: str) -> tuple[str, ...]:
    """Top-level property paths whose change replaces the resource, from CloudFormation's schemas (cfn-lint)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER  # local import: loading schemas takes ~2 s

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(LIMIT_REGION, resource_type).schema
    except Exception:  # an unknown type (custom resource): no property forces replacement
        return ()
    return tuple(p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", []))


def changed_paths(base: Any, head: Any, prefix: str = "") -> Iterator[str]:
    """JSON-pointer-like paths (`A/B/0`) where two property trees differ."""
    if isinstance(base, dict) and isinstance(head, dict):
        for key in sorted(set(base) | set(head)):
            yield from changed_paths(base.get(key), head.get(key), f"{prefix}/{key}" if prefix else key)
    elif isinstance(base, list) and isinstance(head, list) and len(base) == len(head):
        for i, (b, h) in enumerate(zip(base, head, strict=True)):
            yield from changed_paths(b, h, f"{prefix}/{i}")
    elif base != head:
        yield prefix


def diff_stack(stack: str, base: dict[str, Any], head: dict[str, Any]) -> list[ResourceChange]:
    """Resource-level changes of one stack between two templates."""
    base_resources, head_resources = base.get("Resources", {}), head.get("Resources", {})
    changes = []
    for logical_id in sorted(set(base_resources) | set(head_resources)):
        old, new = base_resources.get(logical_id), head_resources.get(logical_id)
        if old is None:
            changes.append(ResourceChange(stack, logical_id, new["Type"], "added"))
        elif new is None:
            changes.append(ResourceChange(stack, logical_id, old["Type"], "removed"))
        elif old["Type"] != new["Type"]:
            changes.append(ResourceChange(stack, logical_id, new["Type"], "replaced", ("Type",)))
        else:
            paths = list(changed_paths(old.get("Properties", {}), new.get("Properties", {})))
            create_only = create_only_properties(new["Type"])
            forcing = sorted({p for p in paths if any(p == c or p.startswith(f"{c}/") for c in create_only)})
            if forcing:
                changes.append(ResourceChange(stack, logical_id, new["Type"], "replaced", tuple(forcing)))
            elif paths or _attributes(old) != _attributes(new):
                top = sorted({p.split("/")[0] for p in paths}) or ["(resource attributes)"]
                changes.append(ResourceChange(stack, logical_id, new["Type"], "modified", tuple(top)))
    return changes


def _attributes(resource: dict[str, Any]) -> tuple[str | None, ...]:
    return tuple(
        resource.get(k) and repr(resource.get(k)) for k in ("DeletionPolicy", "UpdateReplacePolicy", "DependsOn")
    )


# ---------------------------------------------------------------------------------------------
# IAM


# Where each policy-bearing resource type keeps its documents.
POLICY_DOCUMENTS = {
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::Role": ("AssumeRolePolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::EC2::VPCEndpoint": ("PolicyDocument",),
}


def _text(value: Any) -> str:
    """A template value as one readable string: `<LogicalId.Arn>` for references, like cdk-nag."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{'.'.join(argument) if isinstance(argument, list) else argument}>"
        if function == "Fn::Join":
            separator: str = argument[0]
            return separator.join(_text(v) for v in argument[1])
        if function == "Fn::Sub":
            template: str = argument if isinstance(argument, str) else argument[0]
            return template
        if function in ("Fn::ImportValue", "Fn::GetStackOutput"):
            output = argument.get("OutputName") if isinstance(argument, dict) else _text(argument)
            return f"<import {output}>"
    return repr(value)


def _principal(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{kind}: {', '.join(_text(v) for v in _as_list(ids))}" for kind, ids in sorted(value.items()))
    return _text(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    properties = resource.get("Properties", {})
    for key in POLICY_DOCUMENTS.get(resource["Type"], ()):
        yield from properties.get(key, {}).get("Statement", [])
    if resource["Type"] == "AWS::IAM::Role":
        for policy in properties.get("Policies", []):
            yield from policy.get("PolicyDocument", {}).get("Statement", [])


def permissions(stack: str, template: dict[str, Any]) -> set[Permission]:
    """Every (effect, action, resource, principal) of every policy in a template."""
    out = set()
    for logical_id, resource in template.get("Resources", {}).items():
        for statement in _statements(resource):
            principal = _principal(statement["Principal"]) if "Principal" in statement else ""
            # Trust policies have no Resource: the role itself.
            default = "(this resource)" if principal else "*"
            resources = _as_list(statement.get("Resource", statement.get("NotResource", default)))
            for action in _as_list(statement.get("Action", statement.get("NotAction", []))):
                for target in resources:
                    out.add(
                        Permission(
                            stack, logical_id, statement.get("Effect", "Allow"), action, _text(target), principal
                        )
                    )
    return out


# ---------------------------------------------------------------------------------------------
# cdk-nag acknowledgments, limits


def acknowledgments(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(rule, construct path, reason) of every acknowledged finding in a validation report."""
    out = set()
    for plugin in report.get("pluginReports", []):
        for finding in plugin.get("suppressedViolations", []):
            for construct in finding.get("violatingConstructs", [{}]) or [{}]:
                out.add((finding.get("ruleName", "?"), construct.get("constructPath", "?"), finding.get("reason", "")))
    return out


def limit_warnings(stacks: dict[str, reader.Stack]) -> list[str]:
    warnings = []
    for name, stack in stacks.items():
        count = len(stack.resources)
        if count >= NEAR_LIMIT * MAX_RESOURCES:
            warnings.append(f"{name}: {count} resources, limit {MAX_RESOURCES}")
        if stack.size >= NEAR_LIMIT * MAX_TEMPLATE_BYTES:
            warnings.append(f"{name}: template {stack.size:,} bytes, limit {MAX_TEMPLATE_BYTES:,}")
    return warnings


def review(
    env: str, base: reader.Assembly | None, head: reader.Assembly, base_error: str | None = None
) -> EnvironmentReview:
    """Compare two assemblies of one environment (`base` None: the environment is new or failed)."""
    base = base or reader.Assembly()
    result = EnvironmentReview(env=env, base_error=base_error)
    for name in list(head.stacks) + [n for n in base.stacks if n not in head.stacks]:
        old = base.stacks.get(name)
        new = head.stacks.get(name)
        result.changes += diff_stack(name, old.template if old else {}, new.template if new else {})
        old_perms = permissions(name, old.template) if old else set()
        new_perms = permissions(name, new.template) if new else set()
        result.permissions_added += sorted(new_perms - old_perms, key=_permission_key)
        result.permissions_removed += sorted(old_perms - new_perms, key=_permission_key)
    result.acknowledgments_added = sorted(acknowledgments(head.report) - acknowledgments(base.report))
    result.limits = limit_warnings(head.stacks)
    result.sizes = [(n, len(s.resources), s.size) for n, s in head.stacks.items()]
    result.cost_base = cost.estimate({n: s.template for n, s in base.stacks.items()})
    result.cost_head = cost.estimate({n: s.template for n, s in head.stacks.items()})
    return result


def _permission_key(p: Permission) -> tuple[str, ...]:
    return (p.stack, p.logical_id, p.effect, p.action, p.resource, p.principal)


# ---------------------------------------------------------------------------------------------
# Report


def render(reviews: list[EnvironmentReview], *, base_ref: str, allow_stateful: bool) -> str:
    out = [f"# Infrastructure review: `{base_ref}` → working tree", ""]
    dangerous = [c for r in reviews for c in r.dangerous]
    limits = [f"{r.env}: {w}" for r in reviews for w in r.limits]
    if dangerous:
        verdict = "allowed by label" if allow_stateful else "blocks the merge"
        out += [f"> [!CAUTION]\n> **{len(dangerous)} stateful resource(s) replaced or removed ({verdict}):**"]
        out += [
            f"> - `{r.env}` {c.stack} `{c.logical_id}` ({c.type}) **{c.action}**{_why(c)}"
            for r in reviews
            for c in r.dangerous
        ]
        out.append("")
    if limits:
        out += ["> [!WARNING]\n> **Near CloudFormation limits:**", *[f"> - {w}" for w in limits], ""]
    for r in reviews:
        out += _environment(r)
    return "\n".join(out).rstrip() + "\n"


def _why(change: ResourceChange) -> str:
    return f" (changes {', '.join(change.properties)})" if change.properties else ""


def _environment(r: EnvironmentReview) -> list[str]:
    out = [f"## Environment `{r.env}`", ""]
    if r.base_error:
        out += [f"_BASE did not synthesize ({r.base_error}); everything counts as added._", ""]
    counts: dict[str, dict[str, int]] = {}
    for c in r.changes:
        counts.setdefault(c.stack, {}).setdefault(c.action, 0)
        counts[c.stack][c.action] += 1
    if not r.changes:
        out += ["No resource changes.", ""]
    else:
        out += ["| stack | added | removed | modified | replaced |", "|---|---:|---:|---:|---:|"]
        for stack, n in counts.items():
            cells = " | ".join(str(n.get(action, 0)) for action in ("added", "removed", "modified", "replaced"))
            out.append(f"| {stack} | {cells} |")
        out += ["", "<details><summary>Resources</summary>", ""]
        for c in r.changes:
            flag = " ⚠ stateful" if c.stateful and c.action in ("replaced", "removed") else ""
            out.append(f"- `{c.action}` {c.stack} `{c.logical_id}` {c.type}{_why(c)}{flag}")
        out += ["", "</details>", ""]
    network = [c for c in r.changes if c.type in NETWORK_TYPES]
    if network:
        out += ["### Network and security groups", ""]
        out += [f"- `{c.action}` {c.stack} `{c.logical_id}` {c.type}{_why(c)}" for c in network]
        out.append("")
    if r.permissions_added or r.permissions_removed:
        wildcards = [p for p in r.permissions_added if p.wildcard]
        out += [f"### IAM: {len(r.permissions_added)} permission(s) added, {len(r.permissions_removed)} removed", ""]
        if wildcards:
            out += [f"**{len(wildcards)} new wildcard permission(s):**", ""]
            out += [f"- ⚠ {line}" for line in _grouped(wildcards)]
            out.append("")
        out += ["<details><summary>All IAM changes</summary>", ""]
        out += [f"- `+` {_permission(p)}" for p in r.permissions_added if not p.wildcard]
        out += [f"- `-` {_permission(p)}" for p in r.permissions_removed]
        out += ["", "</details>", ""]
    if r.acknowledgments_added:
        out += [f"### cdk-nag: {len(r.acknowledgments_added)} new acknowledged finding(s)", ""]
        out += [f"- `{rule}` on `{path}`: {reason}" for rule, path, reason in r.acknowledgments_added]
        out.append("")
    out += ["### Size", "", "| stack | resources | template bytes |", "|---|---:|---:|"]
    out += [
        f"| {name} | {count} / {MAX_RESOURCES} | {size:,} / {MAX_TEMPLATE_BYTES:,} |" for name, count, size in r.sizes
    ]
    out.append("")
    out += _cost(r)
    return out


def _grouped(perms: list[Permission]) -> list[str]:
    """One line per policy, resource and principal, with its actions together."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for p in perms:
        groups.setdefault((p.stack, p.logical_id, p.effect, p.resource, p.principal), []).append(p.action)
    lines = []
    for (stack, logical_id, effect, resource, principal), actions in groups.items():
        who = f" for {principal}" if principal else ""
        listed = ", ".join(f"`{a}`" for a in sorted(actions))
        lines.append(f"{stack} `{logical_id}`: {effect} {listed} on `{resource}`{who}")
    return lines


def _permission(p: Permission) -> str:
    who = f" for {p.principal}" if p.principal else ""
    return f"{p.stack} `{p.logical_id}`: {p.effect} `{p.action}` on `{p.resource}`{who}"


def monthly_delta(r: EnvironmentReview) -> float:
    """Change of the estimated monthly cost from BASE to HEAD, in USD."""
    return round(cost.monthly_total(r.cost_head) - cost.monthly_total(r.cost_base), 2)


def _cost(r: EnvironmentReview) -> list[str]:
    base, head = cost.monthly_total(r.cost_base), cost.monthly_total(r.cost_head)
    out = [f"### Estimated monthly cost: ${head:,.2f} (was ${base:,.2f}, {monthly_delta(r):+,.2f})", ""]
    out += ["| stack | item | quantity | unit price | USD |", "|---|---|---:|---|---:|"]
    for line in r.cost_head:
        price = line.unit_price
        usd = f"{line.usd:,.2f}" + ("" if line.monthly else " per use")
        out.append(f"| {line.stack} | {line.item} | {line.quantity:.3g} | ${price.usd:g} / {price.unit} | {usd} |")
    out += ["", "Prices:", *[f"- {source}" for source in cost.sources(r.cost_head)], ""]
    return out


# ---------------------------------------------------------------------------------------------
# Synthesis of BASE and HEAD


def environments(*roots: Path) -> list[str]:
    return sorted({p.stem for root in roots for p in (root / "config").glob("*.yaml")})


def synthesize(tree: Path, env: str, outdir: Path) -> reader.Assembly:
    """`cdk synth` of one environment of the app in `tree`, with this checkout's toolchain."""
    python = ROOT / ".venv" / "bin" / "python"
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    env_vars = {**os.environ, "PATH": f"{ROOT / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [
        str(cdk),
        "synth",
        "--quiet",
        "--no-notices",
        "-c",
        f"env={env}",
        "-o",
        str(outdir),
        "--app",
        f"{python} app.py",
    ]
    result = subprocess.run(command, cwd=tree, env=env_vars, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"cdk synth exited {result.returncode}")
    return reader.load(outdir)


def _worktree(ref: str, path: Path) -> None:
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(path), ref], cwd=ROOT, check=True, capture_output=True
    )


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.assembly.review", description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git ref to compare against, e.g. origin/main")
    parser.add_argument("--env", default="all", help="environment name (config/<name>.yaml) or 'all'")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument(
        "--allow-stateful-replacement", action="store_true", help="report, but do not fail on, stateful replacements"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    with tempfile.TemporaryDirectory(prefix="review-") as tmp:
        tmp_path = Path(tmp)
        base_tree = tmp_path / "base"
        try:
            _worktree(args.base, base_tree)
        except subprocess.CalledProcessError as exc:
            print(
                f"review: cannot check out BASE {args.base!r}: {exc.stderr.decode().strip().splitlines()[-1]}",
                file=sys.stderr,
            )
            return 2
        try:
            envs = environments(ROOT, base_tree) if args.env == "all" else [args.env]
            reviews = []
            for env in envs:
                try:
                    head = synthesize(ROOT, env, tmp_path / f"head-{env}")
                except RuntimeError as exc:
                    print(f"review: the working tree does not synthesize {env!r}: {exc}", file=sys.stderr)
                    return 2
                base, error = None, None
                if (base_tree / "config" / f"{env}.yaml").exists():
                    try:
                        base = synthesize(base_tree, env, tmp_path / f"base-{env}")
                    except RuntimeError as exc:
                        error = str(exc)
                reviews.append(review(env, base, head, error))
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False, capture_output=True
            )
    report = render(reviews, base_ref=args.base, allow_stateful=args.allow_stateful_replacement)
    print(report, end="")
    if args.out:
        args.out.write_text(report)
    return exit_code(reviews, allow_stateful=args.allow_stateful_replacement)


def exit_code(reviews: list[EnvironmentReview], *, allow_stateful: bool) -> int:
    """1 when a stateful resource is replaced or removed and that is not allowed, else 0."""
    return 1 if any(r.dangerous for r in reviews) and not allow_stateful else 0


if __name__ == "__main__":
    sys.exit(main())
