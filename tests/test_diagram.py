"""Architecture diagram: stacks as clusters, main resources as nodes, flows as edges, rendered without `dot`."""

from __future__ import annotations

import html

import pytest

from infra.assembly import diagram
from infra.assembly.diagram import ROOT, build_graph, load_assembly, readable, render_svg, to_dot

STACKS = tuple(
    f"mlp-dev-{name}" for name in ("Security", "Network", "DataLake", "Training", "Serving", "Monitoring", "Retraining")
)


@pytest.fixture(scope="module")
def stacks(dev) -> dict[str, dict]:
    return load_assembly(dev.outdir)


@pytest.fixture(scope="module")
def dot(stacks) -> str:
    return to_dot(stacks)


@pytest.fixture(scope="module")
def svg(dot) -> str:
    """The one render of the session: the dev app through the WebAssembly Graphviz."""
    return render_svg(dot, ROOT)


def node(stacks: dict[str, dict], stack: str, resource_type: str, name: str) -> str:
    """DOT id of the resource of a type whose logical id reads `name` (without the CDK hash)."""
    matches = [
        logical_id
        for logical_id, resource in stacks[stack]["Resources"].items()
        if resource["Type"] == resource_type and readable(logical_id) == name
    ]
    assert len(matches) == 1, (stack, resource_type, name, matches)
    return f"{stack}/{matches[0]}"


def edge(src: str, dst: str) -> str:
    return f'"{src}" -> "{dst}"'


def test_load_assembly_returns_every_stack_by_name(stacks, dev):
    assert sorted(stacks) == sorted(STACKS)
    by_logical_ids = {frozenset(template["Resources"]) for template in dev.templates.values()}
    assert {frozenset(template["Resources"]) for template in stacks.values()} == by_logical_ids


def test_readable_strips_the_cdk_hash():
    assert readable("BucketsRaw686CB728") == "BucketsRaw"
    assert readable("Workgroup") == "Workgroup"


def test_a_cluster_per_stack_and_the_main_resources(stacks, dot):
    assert "compound=true" in dot
    for stack in STACKS:
        assert f'subgraph "cluster_{stack}" {{' in dot
        assert f'label="{stack}"' in dot
    for stack, resource_type, name, label in [
        ("mlp-dev-DataLake", "AWS::S3::Bucket", "BucketsRaw", "BucketsRaw\\nS3 bucket"),
        ("mlp-dev-DataLake", "AWS::Glue::Job", "GlueEtlJob", "GlueEtlJob\\nGlue job"),
        ("mlp-dev-DataLake", "AWS::Events::Rule", "EtlNewRawData", "EtlNewRawData\\nEventBridge rule"),
        ("mlp-dev-DataLake", "AWS::Glue::Workflow", "EtlWorkflow", "EtlWorkflow\\nGlue workflow"),
        ("mlp-dev-Security", "AWS::KMS::Key", "KeysData", "KeysData\\nKMS key"),
        ("mlp-dev-Network", "AWS::EC2::VPC", "NetworkVpc", "NetworkVpc\\nVPC"),
    ]:
        assert f'"{node(stacks, stack, resource_type, name)}" [label="{label}"' in dot


SKIPPED_TYPES = (
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::LakeFormation::PrincipalPermissions",
    "AWS::LakeFormation::TagAssociation",
    "AWS::CDK::Metadata",
    "Custom::VpcRestrictDefaultSG",
)


def test_plumbing_is_left_out_and_interface_endpoints_collapse(stacks, dot):
    drawn = {node_id.split("/", 1)[1] for node_id in build_graph(stacks).nodes}
    for template in stacks.values():
        for logical_id, resource in template["Resources"].items():
            interface = resource.get("Properties", {}).get("VpcEndpointType") == "Interface"
            if resource["Type"] in SKIPPED_TYPES or interface or "CustomResourceProvider" in logical_id:
                assert logical_id not in drawn, logical_id
    endpoints = [r for r in stacks["mlp-dev-Network"]["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    count = sum(r["Properties"].get("VpcEndpointType") == "Interface" for r in endpoints)
    assert 1 < count < len(endpoints)  # gateway endpoints stay single nodes
    assert dot.count("interface endpoints") == 1
    assert f'"mlp-dev-Network/#interface-endpoints" [label="{count} interface endpoints\\nVPC endpoints"' in dot
    assert "NetworkVpcS3\\nVPC endpoint" in dot


def test_flows_between_resources(stacks, dot):
    lake = "mlp-dev-DataLake"
    raw = node(stacks, lake, "AWS::S3::Bucket", "BucketsRaw")
    rule = node(stacks, lake, "AWS::Events::Rule", "EtlNewRawData")
    workflow = node(stacks, lake, "AWS::Glue::Workflow", "EtlWorkflow")
    on_new_data = node(stacks, lake, "AWS::Glue::Trigger", "EtlOnNewData")
    job = node(stacks, lake, "AWS::Glue::Job", "GlueEtlJob")
    curated_crawler = node(stacks, lake, "AWS::Glue::Crawler", "GlueCuratedCrawler")
    after_job = node(stacks, lake, "AWS::Glue::Trigger", "EtlAfterJob")
    assert f'{edge(raw, rule)} [label="events"]' in dot
    assert edge(rule, workflow) in dot  # matched by the workflow name in the target ARN
    assert edge(workflow, on_new_data) in dot
    assert edge(on_new_data, job) in dot
    assert edge(job, after_job) in dot
    assert edge(after_job, curated_crawler) in dot


def test_cross_stack_references(stacks, dot):
    data_key = node(stacks, "mlp-dev-Security", "AWS::KMS::Key", "KeysData")
    raw = node(stacks, "mlp-dev-DataLake", "AWS::S3::Bucket", "BucketsRaw")
    assert f'{edge(data_key, raw)} [style="dashed"]' in dot
    # The subnet is not drawn: that reference starts at the Network cluster itself.
    assert 'ltail="cluster_mlp-dev-Network"' in dot
    assert '"mlp-dev-Network/#anchor" [label="" shape=point style=invis' in dot


def test_edges_are_unique_and_the_output_deterministic(stacks, dot):
    arrows = [line for line in dot.splitlines() if " -> " in line]
    assert len(arrows) == len({line.split(" [")[0] for line in arrows}) > 0
    assert to_dot(stacks) == dot
    assert to_dot(dict(reversed(stacks.items()))) == dot


def test_references_by_export_and_collapsed_alarms():
    producer = {
        "Resources": {"TopicAB12CD34": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TopicArn": {"Value": {"Ref": "TopicAB12CD34"}, "Export": {"Name": "p:TopicArn"}}},
    }
    alarm = {"Type": "AWS::CloudWatch::Alarm", "Properties": {"AlarmActions": [{"Fn::ImportValue": "p:TopicArn"}]}}
    consumer = {
        "Resources": {
            "Fn1234ABCD": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Rule5678ABCD": {
                "Type": "AWS::Events::Rule",
                "Properties": {"Targets": [{"Arn": {"Fn::GetAtt": ["Fn1234ABCD", "Arn"]}, "Id": "t"}]},
            },
            "HighErrors": alarm,
            "HighLatency": alarm,
        }
    }
    graph = build_graph({"p": producer, "c": consumer})
    assert graph.nodes["c/#alarms"].lines == ("2 alarms", "CloudWatch alarms")
    assert ("c/Rule5678ABCD", "c/Fn1234ABCD") in graph.edges
    assert graph.edges[("c/#alarms", "p/TopicAB12CD34")] == {"label": "alerts"}


def test_render_produces_svg_with_every_stack(svg):
    assert svg.lstrip().startswith(("<?xml", "<svg"))
    assert "</svg>" in svg
    text = html.unescape(svg)  # Graphviz writes "-" as "&#45;"
    for stack in STACKS:
        assert f">{stack}</text>" in text


def test_main_writes_the_svg_and_optionally_the_dot(dev, svg, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(diagram, "render_svg", lambda _dot, _root: svg)  # the one render is the fixture's
    output = tmp_path / "docs" / "architecture.svg"
    assert diagram.main(["diagram", str(dev.outdir), str(output), "--dot"]) == 0
    assert output.read_text() == svg
    assert output.with_suffix(".dot").read_text() == to_dot(load_assembly(dev.outdir))
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {output} (7 stacks, ") and line.endswith(" edges)")
    assert len(line.splitlines()) == 1


def test_main_without_an_assembly_exits_2_with_one_line(tmp_path, capsys):
    output = tmp_path / "out.svg"
    assert diagram.main(["diagram", str(tmp_path), str(output)]) == 2
    captured = capsys.readouterr()
    assert len((captured.out + captured.err).strip().splitlines()) == 1
    assert "manifest.json" in captured.err
    assert not output.exists()


def test_the_readme_picture_is_the_app_as_it_is(svg):
    # `make diagram` rewrites it; a change to the stacks without a new picture fails here.
    assert (ROOT / "docs" / "architecture.svg").read_text() == svg
