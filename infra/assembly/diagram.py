"""Draws a synthesized cloud assembly as SVG: stacks as clusters, their main resources and the flows between them."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.assembly import reader
from infra.catalog import monitors

ROOT = Path(__file__).resolve().parents[2]

# Fill colours by kind of service, so the picture reads at a glance.
_STORAGE = "#E8F5E9"
_SECURITY = "#FDECEA"
_NETWORK = "#E3F2FD"
_DATA = "#F3E5F5"
_INTEGRATION = "#FFF3E0"
_ML = "#E0F7FA"
_OPERATIONS = "#ECEFF1"

# The "main" resources: CloudFormation type -> (short type label, node shape, fill colour). Anything else
# (IAM, policies, Lake Formation permissions and tag associations, aliases, log groups, CDK metadata ...) is left out.
NODE_TYPES: dict[str, tuple[str, str, str]] = {
    "AWS::S3::Bucket": ("S3 bucket", "cylinder", _STORAGE),
    "AWS::KMS::Key": ("KMS key", "box", _SECURITY),
    "AWS::EC2::VPC": ("VPC", "box", _NETWORK),
    "AWS::EC2::VPCEndpoint": ("VPC endpoint", "box", _NETWORK),
    "AWS::EC2::SecurityGroup": ("security group", "box", _NETWORK),
    "AWS::Glue::Database": ("Glue database", "cylinder", _DATA),
    "AWS::Glue::Table": ("Glue table", "cylinder", _DATA),
    "AWS::Glue::Crawler": ("Glue crawler", "box", _DATA),
    "AWS::Glue::Job": ("Glue job", "box", _DATA),
    "AWS::Glue::Workflow": ("Glue workflow", "box", _DATA),
    "AWS::Glue::Trigger": ("Glue trigger", "box", _DATA),
    "AWS::Glue::DataQualityRuleset": ("data quality ruleset", "box", _DATA),
    "AWS::Glue::Connection": ("Glue connection", "box", _DATA),
    "AWS::Glue::SecurityConfiguration": ("Glue security config", "box", _SECURITY),
    "AWS::LakeFormation::DataLakeSettings": ("Lake Formation settings", "box", _SECURITY),
    "AWS::Athena::WorkGroup": ("Athena workgroup", "box", _DATA),
    "AWS::Events::Rule": ("EventBridge rule", "box", _INTEGRATION),
    "AWS::SQS::Queue": ("SQS queue", "box", _INTEGRATION),
    "AWS::SNS::Topic": ("SNS topic", "box", _INTEGRATION),
    "AWS::DynamoDB::Table": ("DynamoDB table", "cylinder", _STORAGE),
    "AWS::Lambda::Function": ("Lambda function", "box", _INTEGRATION),
    "AWS::StepFunctions::StateMachine": ("state machine", "box", _INTEGRATION),
    "AWS::CloudTrail::Trail": ("CloudTrail trail", "box", _SECURITY),
    "AWS::SageMaker::Pipeline": ("SageMaker pipeline", "box", _ML),
    "AWS::SageMaker::ModelPackageGroup": ("model package group", "box", _ML),
    "AWS::SageMaker::Model": ("SageMaker model", "box", _ML),
    "AWS::SageMaker::EndpointConfig": ("endpoint config", "box", _ML),
    "AWS::SageMaker::Endpoint": ("SageMaker endpoint", "box", _ML),
    "AWS::SageMaker::MonitoringSchedule": ("monitoring schedule", "box", _ML),
    **{kind.resource_type: (f"{kind.title} monitor", "box", _ML) for kind in monitors.KINDS},
    "AWS::SageMaker::FeatureGroup": ("feature group", "cylinder", _ML),
    "AWS::SageMaker::Domain": ("SageMaker domain", "box", _ML),
    "AWS::CloudWatch::Alarm": ("CloudWatch alarm", "box", _OPERATIONS),
    "AWS::CloudWatch::CompositeAlarm": ("CloudWatch alarm", "box", _OPERATIONS),
    "AWS::CloudWatch::Dashboard": ("dashboard", "note", _OPERATIONS),
    "AWS::Budgets::Budget": ("budget", "box", _OPERATIONS),
}

# Logical ids of the functions CDK adds to run custom resources: plumbing, not part of the platform.
_PLUMBING = re.compile(
    r"CustomResourceProvider|Providerframework|LogRetention|BucketNotificationsHandler|^AWS[0-9a-f]{32}"
)
_HASH = re.compile(r"^(?P<name>.+?)[0-9A-F]{8}$")

# Further references that are flows between two drawn resources: (type, property, label, direction). "out" draws
# resource -> referenced node, "in" draws referenced node -> resource.
_LINKS: tuple[tuple[str, str, str, str], ...] = (
    ("AWS::CloudTrail::Trail", "S3BucketName", "logs", "out"),
    ("AWS::Budgets::Budget", "NotificationsWithSubscribers", "alerts", "out"),
    ("AWS::CloudWatch::Alarm", "AlarmActions", "alerts", "out"),
    ("AWS::CloudWatch::CompositeAlarm", "AlarmActions", "alerts", "out"),
    ("AWS::Glue::Crawler", "Targets", "crawls", "in"),
    ("AWS::SageMaker::EndpointConfig", "ProductionVariants", "", "in"),
    ("AWS::SageMaker::Endpoint", "EndpointConfigName", "", "in"),
    ("AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleConfig", "", "in"),
)


@dataclass
class Node:
    """One box of the picture: its stack (cluster), label lines, shape and fill colour."""

    stack: str
    lines: tuple[str, ...]
    shape: str
    fill: str
    invisible: bool = False


@dataclass
class Graph:
    """What `to_dot` draws: nodes by id, grouped by stack, and edges (src, dst) -> DOT attributes."""

    stacks: list[str]
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @property
    def visible_nodes(self) -> int:
        return sum(not node.invisible for node in self.nodes.values())


def load_assembly(outdir: Path) -> dict[str, dict[str, Any]]:
    """Stack name -> CloudFormation template of every stack of a cloud assembly."""
    return {name: stack.template for name, stack in reader.load(Path(outdir)).stacks.items()}


def readable(logical_id: str) -> str:
    """`BucketsRaw686CB728` -> `BucketsRaw`: the logical id without the hash CDK appends."""
    match = _HASH.match(logical_id)
    return match["name"] if match else logical_id


def _ref(value: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` points to."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    reference = value.get("Ref")
    if isinstance(reference, str):
        return reference
    attribute = value.get("Fn::GetAtt")
    if isinstance(attribute, list) and attribute and isinstance(attribute[0], str):
        return attribute[0]
    if isinstance(attribute, str):
        return attribute.split(".", 1)[0]
    return None


def _flatten(value: Any) -> str:
    """A string value with its intrinsic functions reduced to placeholders (to search ARNs for names)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            return str(argument[0]).join(_flatten(part) for part in argument[1])
        if function == "Fn::Sub":
            return _flatten(argument[0] if isinstance(argument, list) else argument)
    return "${}"


def _walk(value: Any, skip: frozenset[str] = frozenset()) -> Iterator[Any]:
    """Every dict and list inside a value, depth first, in document order (keys in `skip` not entered)."""
    yield value
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in skip:
                yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


class _Builder:
    """Turns templates into a Graph: nodes first (so references can be resolved), then edges."""

    def __init__(self, stacks: dict[str, dict[str, Any]]) -> None:
        self.templates = {name: stacks[name] for name in sorted(stacks)}
        self.graph = Graph(stacks=list(self.templates))
        self.alias: dict[tuple[str, str], str] = {}  # (stack, logical id) -> node id
        self.names: dict[tuple[str, str], list[str]] = defaultdict(list)  # (type, physical name) -> node ids
        self.exports: dict[str, tuple[str, str]] = {}  # export name -> (stack, output name)

    def resources(self, stack: str) -> list[tuple[str, dict[str, Any]]]:
        return sorted(self.templates[stack].get("Resources", {}).items())

    # Nodes

    def add_nodes(self) -> None:
        for stack, template in self.templates.items():
            for output_name, output in sorted(template.get("Outputs", {}).items()):
                export = output.get("Export", {}).get("Name")
                if isinstance(export, str):
                    self.exports[export] = (stack, output_name)
            resources = self.resources(stack)
            tokens = (resource.get("Properties", {}).get("ServiceToken") for _, resource in resources)
            service_tokens = {_ref(token) for token in tokens}
            groups: dict[str, list[str]] = defaultdict(list)
            for logical_id, resource in resources:
                kind = resource.get("Type", "")
                if kind not in NODE_TYPES:
                    continue
                if kind == "AWS::Lambda::Function" and (logical_id in service_tokens or _PLUMBING.search(logical_id)):
                    continue
                properties = resource.get("Properties", {})
                if kind == "AWS::EC2::VPCEndpoint" and properties.get("VpcEndpointType") == "Interface":
                    groups["interface endpoint"].append(logical_id)
                elif kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
                    groups["alarm"].append(logical_id)
                else:
                    short, shape, fill = NODE_TYPES[kind]
                    self.add_node(stack, logical_id, (readable(logical_id), short), shape, fill)
                    name = properties.get("Name", properties.get("BucketName"))
                    if isinstance(name, str):
                        self.names[(kind, name)].append(self.alias[(stack, logical_id)])
            for group, members in sorted(groups.items()):
                kind = "AWS::EC2::VPCEndpoint" if group == "interface endpoint" else "AWS::CloudWatch::Alarm"
                short, shape, fill = NODE_TYPES[kind]
                label = f"{len(members)} {group}{'' if len(members) == 1 else 's'}"
                node_id = self.add_node(stack, f"#{group.replace(' ', '-')}s", (label, short + "s"), shape, fill)
                for logical_id in members:
                    self.alias[(stack, logical_id)] = node_id

    def add_node(self, stack: str, key: str, lines: tuple[str, ...], shape: str, fill: str) -> str:
        node_id = f"{stack}/{key}"
        self.graph.nodes[node_id] = Node(stack, lines, shape, fill)
        self.alias[(stack, key)] = node_id
        return node_id

    def anchor(self, stack: str) -> str:
        """An invisible node inside a stack's cluster, for edges that start at the cluster itself."""
        node_id = f"{stack}/#anchor"
        self.graph.nodes.setdefault(node_id, Node(stack, ("",), "point", "none", invisible=True))
        return node_id

    # References

    def producer(self, stack: str, value: Any) -> tuple[str, str | None] | None:
        """(producing stack, its node or None) of a `Fn::GetStackOutput` / `Fn::ImportValue`, else None."""
        if not isinstance(value, dict) or len(value) != 1:
            return None
        if "Fn::GetStackOutput" in value:
            argument = value["Fn::GetStackOutput"]
            source = argument.get("StackName") if isinstance(argument, dict) else None
            output = argument.get("OutputName") if isinstance(argument, dict) else None
        elif "Fn::ImportValue" in value:
            export = value["Fn::ImportValue"]
            source, output = self.exports.get(export, (None, None)) if isinstance(export, str) else (None, None)
        else:
            return None
        if not isinstance(source, str) or source not in self.templates or source == stack:
            return None
        produced = self.templates[source].get("Outputs", {}).get(output, {}).get("Value")
        logical_id = _ref(produced)
        return source, self.alias.get((source, logical_id)) if logical_id else None

    def resolve(self, stack: str, value: Any) -> str | None:
        """The node a Ref / GetAtt (same stack) or a cross-stack reference to a drawn resource points to."""
        logical_id = _ref(value)
        if logical_id:
            return self.alias.get((stack, logical_id))
        produced = self.producer(stack, value)
        return produced[1] if produced else None

    def by_name(self, stack: str, kind: str, value: Any) -> str | None:
        """A Glue job / crawler / workflow given by name (a string) or by a reference to it."""
        if isinstance(value, str):
            candidates = self.names.get((kind, value), [])
            same_stack = [node for node in candidates if node.startswith(f"{stack}/")]
            return next(iter(same_stack or candidates), None)
        return self.resolve(stack, value)

    # Edges

    def edge(self, src: str | None, dst: str | None, **attributes: str) -> None:
        if src and dst and src != dst:
            self.graph.edges.setdefault((src, dst), {k: v for k, v in attributes.items() if v})

    def drawn(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(stack, node, resource) of every resource that is drawn, stack by stack."""
        for stack in self.templates:
            for logical_id, resource in self.resources(stack):
                node = self.alias.get((stack, logical_id))
                if node is not None:
                    yield stack, node, resource

    def add_edges(self) -> None:
        for stack, node, resource in self.drawn():
            self.flow_edges(stack, node, resource.get("Type"), resource.get("Properties", {}))
        # Cross-stack references last, so a flow drawn above wins over a plain dependency between the same nodes.
        for stack, node, resource in self.drawn():
            self.reference_edges(stack, node, resource)

    def flow_edges(self, stack: str, node: str, kind: Any, properties: dict[str, Any]) -> None:
        """Events, triggers and the _LINKS references of one resource."""
        if kind == "AWS::Events::Rule":
            self.rule_edges(stack, node, properties)
        elif kind == "AWS::Glue::Trigger":
            self.trigger_edges(stack, node, properties)
        for link_kind, prop, label, direction in _LINKS:
            if kind == link_kind and prop in properties:
                for item in _walk(properties[prop]):
                    other = self.resolve(stack, item)
                    pair = (node, other) if direction == "out" else (other, node)
                    self.edge(*pair, label=label)

    def reference_edges(self, stack: str, node: str, resource: dict[str, Any]) -> None:
        """Dashed edges from what another stack produces (an export, a stack output) to the resource using it."""
        skip = frozenset({"Targets"}) if resource.get("Type") == "AWS::Events::Rule" else frozenset()
        for item in _walk(resource.get("Properties", {}), skip):
            produced = self.producer(stack, item)
            if produced is None:
                continue
            source, source_node = produced
            if source_node:
                self.edge(source_node, node, style="dashed")
            else:
                self.edge(self.anchor(source), node, style="dashed", ltail=f"cluster_{source}")

    def rule_edges(self, stack: str, rule: str, properties: dict[str, Any]) -> None:
        pattern = properties.get("EventPattern", {})
        names = pattern.get("detail", {}).get("bucket", {}).get("name", []) if isinstance(pattern, dict) else []
        for value in names if isinstance(names, list) else [names]:
            bucket = self.by_name(stack, "AWS::S3::Bucket", value)
            self.edge(bucket, rule, label="events")
        for target in properties.get("Targets", []):
            arn = target.get("Arn")
            node = self.resolve(stack, arn)
            if node is None:
                workflow = re.search(r":workflow/([A-Za-z0-9_.-]+)", _flatten(arn))
                node = self.by_name(stack, "AWS::Glue::Workflow", workflow[1]) if workflow else None
            if node is None and (produced := self.producer(stack, arn)):
                self.edge(rule, self.anchor(produced[0]), lhead=f"cluster_{produced[0]}")
            self.edge(rule, node)
            dead_letters = self.resolve(stack, target.get("DeadLetterConfig", {}).get("Arn"))
            self.edge(rule, dead_letters, label="undelivered", style="dashed")

    def trigger_edges(self, stack: str, trigger: str, properties: dict[str, Any]) -> None:
        self.edge(self.by_name(stack, "AWS::Glue::Workflow", properties.get("WorkflowName")), trigger)
        for action in properties.get("Actions", []):
            self.edge(trigger, self.by_name(stack, "AWS::Glue::Job", action.get("JobName")))
            self.edge(trigger, self.by_name(stack, "AWS::Glue::Crawler", action.get("CrawlerName")))
        for condition in properties.get("Predicate", {}).get("Conditions", []):
            state = str(condition.get("State", condition.get("CrawlState", ""))).lower()
            self.edge(self.by_name(stack, "AWS::Glue::Job", condition.get("JobName")), trigger, label=state)
            self.edge(self.by_name(stack, "AWS::Glue::Crawler", condition.get("CrawlerName")), trigger, label=state)


def build_graph(stacks: dict[str, dict[str, Any]]) -> Graph:
    """The nodes and edges `to_dot` draws, for counting and testing without parsing DOT."""
    builder = _Builder(stacks)
    builder.add_nodes()
    builder.add_edges()
    return builder.graph


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attributes(attributes: dict[str, str]) -> str:
    return " ".join(f"{key}={_quote(value)}" for key, value in sorted(attributes.items()))


def to_dot(stacks: dict[str, dict[str, Any]]) -> str:
    """Graphviz DOT of the stacks: one cluster per stack, its main resources, and the flows between them."""
    graph = build_graph(stacks)
    lines = [
        "digraph platform {",
        '  graph [compound=true rankdir=LR newrank=true nodesep=0.25 ranksep=0.5 fontname="Helvetica" fontsize=16'
        ' labelloc=t label="Synthesized stacks, main resources and flows (dashed: cross-stack reference)"]',
        '  node [shape=box style="rounded,filled" fontname="Helvetica" fontsize=10 color="#546E7A"]',
        '  edge [fontname="Helvetica" fontsize=9 color="#455A64" fontcolor="#455A64"]',
    ]
    for stack in graph.stacks:
        lines.append(f"  subgraph {_quote('cluster_' + stack)} {{")
        lines.append(
            f'    graph [label={_quote(stack)} style="rounded" color="#90A4AE" fontsize=14 labeljust=l margin=12]'
        )
        for node_id, node in sorted(graph.nodes.items()):
            if node.stack != stack:
                continue
            if node.invisible:
                lines.append(f'    {_quote(node_id)} [label="" shape=point style=invis width=0 height=0]')
            else:
                text = "\\n".join(_quote(line)[1:-1] for line in node.lines)
                lines.append(f'    {_quote(node_id)} [label="{text}" shape={node.shape} fillcolor="{node.fill}"]')
        lines.append("  }")
    for (src, dst), attributes in sorted(graph.edges.items()):
        suffix = f" [{_attributes(attributes)}]" if attributes else ""
        lines.append(f"  {_quote(src)} -> {_quote(dst)}{suffix}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot: str, root: Path) -> str:
    """SVG of a DOT graph, laid out by the WebAssembly Graphviz of node_modules (no `dot` binary needed)."""
    root = Path(root)
    env = dict(os.environ, PATH=f"{root / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    try:
        result = subprocess.run(
            ["node", str(root / "infra" / "assembly" / "diagram_render.mjs")],
            input=dot,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=root,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"rendering failed: {error}") from error
    if result.returncode != 0 or not result.stdout.strip():
        first = next((line for line in result.stderr.splitlines() if line.strip()), f"exit code {result.returncode}")
        raise RuntimeError(first.strip())
    return result.stdout


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.assembly.diagram", description=__doc__)
    parser.add_argument("cdk_out", type=Path, help="cloud assembly directory (cdk.out)")
    parser.add_argument("output", type=Path, help="SVG file to write")
    parser.add_argument("--dot", action="store_true", help="also write the DOT source next to the SVG")
    args = parser.parse_args(argv[1:])
    if not (args.cdk_out / "manifest.json").is_file():
        print(f"diagram: no manifest.json in {args.cdk_out} (synthesize first: make synth)", file=sys.stderr)
        return 2
    stacks = load_assembly(args.cdk_out)
    graph = build_graph(stacks)
    dot = to_dot(stacks)
    try:
        svg = render_svg(dot, ROOT)
    except RuntimeError as error:
        print(f"diagram: {error}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(svg)
    if args.dot:
        args.output.with_suffix(".dot").write_text(dot)
    print(f"wrote {args.output} ({len(stacks)} stacks, {graph.visible_nodes} nodes, {len(graph.edges)} edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
