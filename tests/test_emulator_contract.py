"""The container contracts the emulator checks, and the emulator's own semantics (S3 delivery, expressions, order)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from pipelines import definition as builder
from pipelines.emulator import contract, declarations, deployment, graph, workload
from pipelines.emulator.errors import EmulationError
from pipelines.emulator.expressions import Resolver, Scope, tokens
from pipelines.emulator.storage import NoObjects, Store

STORED = sorted(builder.CACHE_DIR.rglob("*.json"))
PROD = json.loads((builder.CACHE_DIR / "mlp-prod-training.json").read_text())["definition"]


# --- the processing contract, from the definitions and the scripts' declarations --------------------


@pytest.mark.parametrize("path", STORED, ids=[str(p.relative_to(builder.CACHE_DIR)) for p in STORED])
def test_every_stored_definition_keeps_its_scripts_contracts(path: Path):
    definition = json.loads(path.read_text())["definition"]
    assert contract.check(definition) == []
    # Not vacuous: every processing step running a step script was checked.
    checked = [s["Name"] for s in contract.steps(definition) if s["Type"] == "Processing" and contract.script_of(s)]
    assert {"Preprocess", "Evaluate"} <= set(checked)


def _broken(change) -> list[str]:
    definition = copy.deepcopy(PROD)
    change({s["Name"]: s for s in contract.steps(definition)})
    return contract.check(definition)


EVALUATION = "/opt/ml/processing/evaluation"


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        (
            lambda s: s["Evaluate"]["PropertyFiles"][0].update(FilePath="eval.json"),
            [
                f"step Evaluate, PropertyFiles[Evaluation].FilePath: {EVALUATION}/eval.json: step Evaluate writes no "
                "such file there (it writes evaluation.json)"
            ],
        ),
        (
            lambda s: s["Evaluate"]["Arguments"]["ProcessingInputs"][1]["S3Input"].update(
                LocalPath="/opt/ml/processing/testing"
            ),
            [
                "step Evaluate, ProcessingInputs[test].S3Input.LocalPath: /opt/ml/processing/testing: evaluate.py "
                "reads no "
                "such directory (it reads /opt/ml/processing/model, /opt/ml/processing/test, /opt/ml/processing/train, "
                "/opt/ml/processing/input/library)",
                "step Evaluate, ProcessingInputs: /opt/ml/processing/test: evaluate.py reads it, and no input "
                "delivers it",
            ],
        ),
        (
            lambda s: s["Evaluate"]["Arguments"]["AppSpecification"].update(ContainerArguments=[]),
            [
                "step Evaluate, ProcessingInputs[library].S3Input.LocalPath: /opt/ml/processing/input/library: "
                "evaluate.py "
                "reads no such directory (it reads /opt/ml/processing/model, /opt/ml/processing/test, "
                "/opt/ml/processing/train)",
                "step Evaluate, AppSpecification.ContainerArguments: /opt/ml/processing/explainability: evaluate.py "
                "writes "
                "it only with --explainability-rows, which the step does not pass",
                "step Evaluate, AppSpecification.ContainerArguments: /opt/ml/processing/monitoring: evaluate.py "
                "writes it "
                "only with --monitoring-baseline-dir, which the step does not pass",
            ],
        ),
        (
            lambda s: s["Preprocess"]["Arguments"]["ProcessingOutputConfig"]["Outputs"].pop(),
            [
                "step Preprocess, ProcessingOutputConfig.Outputs: /opt/ml/processing/monitoring: preprocess.py writes "
                "it "
                "with --monitoring-baseline-dir, and no output collects it",
            ],
        ),
        (
            lambda s: s["Tune"]["Arguments"]["TrainingJobDefinition"]["InputDataConfig"][1].update(ChannelName="valid"),
            [
                "step Tune, InputDataConfig[valid]: /opt/ml/input/data/valid: train.py reads no such channel",
                "step Tune, InputDataConfig: /opt/ml/input/data/validation: train.py reads it, and no channel "
                "delivers it",
            ],
        ),
        (
            lambda s: s["Register-RegisterModel"]["Arguments"]["ModelMetrics"]["Explainability"]["Report"]["S3Uri"][
                "Std:Join"
            ]["Values"].__setitem__(1, "report.json"),
            [
                "step Register-RegisterModel, ModelMetrics.Explainability.Report.S3Uri: /opt/ml/processing/"
                "explainability/report.json: step Evaluate writes no such file there (it writes analysis.json, "
                "explanations_shap/out.csv, monitoring/analysis_config.json)"
            ],
        ),
        (
            # The platform engine's baseline asked of the step without the library it imports.
            lambda s: s["Preprocess"]["Arguments"].update(
                ProcessingInputs=[
                    i for i in s["Preprocess"]["Arguments"]["ProcessingInputs"] if i["InputName"] != "library"
                ]
            ),
            [
                "step Preprocess, ProcessingInputs: /opt/ml/processing/input/library: preprocess.py reads it, and no "
                "input delivers it",
            ],
        ),
    ],
    ids=[
        "property-file",
        "input-path",
        "option-dropped",
        "output-dropped",
        "channel",
        "file",
        "engine-baseline",
    ],
)
def test_a_broken_contract_is_one_line_naming_step_argument_and_path(change, problems):
    assert _broken(change) == problems


def test_what_a_script_writes_is_what_it_declares(tmp_path):
    script = tmp_path / "step.py"
    script.write_text('OUT = "processing/out"\nREADS = {}\nWRITES = {OUT: ("a.csv", "sub/b.json")}\n')
    written = tmp_path / "out"
    (written / "sub").mkdir(parents=True)
    (written / "a.csv").write_text("x\n")
    (written / "sub" / "b.json").write_text("{}")
    outputs = [("Outputs[o]", "/opt/ml/processing/out", written)]
    declarations.verify_outputs("S", script, outputs)
    (written / "c.txt").write_text("")
    with pytest.raises(EmulationError, match=r"^step S, Outputs\[o\]: /opt/ml/processing/out/c\.txt: written by step"):
        declarations.verify_outputs("S", script, outputs)
    (written / "c.txt").unlink()
    (written / "a.csv").unlink()
    with pytest.raises(EmulationError, match=r"/opt/ml/processing/out/a\.csv: declared by step\.py but not written$"):
        declarations.verify_outputs("S", script, outputs)


# --- the emulator runs what the Training stack deploys ---------------------------------------------


def _sub(synthesized) -> tuple[str, dict]:
    (pipeline,) = synthesized.resources("Training", "AWS::SageMaker::Pipeline").values()
    body, variables = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return body, variables


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_emulator_substitutes_what_the_stack_substitutes_and_runs_the_deployed_assets(synth, env):
    synthesized = synth(env)
    body, variables = _sub(synthesized)
    stored = workload.Stored.load(builder.CACHE_DIR / f"mlp-{env}-training.json")
    assert json.loads(body) == json.loads(stored.text), "the stack deploys the stored definition"
    named = deployment.placeholders(body)
    keys = {name: key for name, (key, _) in workload.assets(named).items()}
    pseudo = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
    assert set(workload.variables(stored, keys)) - pseudo == set(variables)
    assert deployment.placeholders(body) - pseudo <= set(variables)
    for name, (key, content) in workload.assets(named).items():
        deployed = variables[name]
        # Same file name extension in the object key (what the container sees), and the same bytes.
        assert Path(deployed).suffix == Path(key).suffix
        (staged,) = [p for p in synthesized.outdir.glob(f"asset.{Path(deployed).stem}*") if p.is_file()]
        assert staged.read_bytes() == content, name


# --- S3 delivery, expressions, order ------------------------------------------------------------------


@pytest.fixture
def store():
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1").client("s3")
        client.create_bucket(Bucket="bkt")
        for key in ("data/part-0.csv", "data/day=2/part-1.csv", "data-old/x.csv", "one/model.tar.gz"):
            client.put_object(Bucket="bkt", Key=key, Body=key.encode())
        client.put_object(Bucket="bkt", Key="manifest", Body=json.dumps([{"prefix": "s3://bkt/data/"}, "part-0.csv"]))
        yield Store(client)


def test_s3_prefix_object_and_manifest_are_delivered_as_sagemaker_lays_them_out(store, tmp_path):
    store.deliver("s3://bkt/data/", "S3Prefix", tmp_path / "prefix")
    assert sorted(p.relative_to(tmp_path / "prefix").as_posix() for p in (tmp_path / "prefix").rglob("*.csv")) == [
        "day=2/part-1.csv",
        "part-0.csv",
    ]
    # A prefix naming one object delivers it under its own name.
    assert [p.name for p in store.deliver("s3://bkt/one/model.tar.gz", "S3Prefix", tmp_path / "object")] == [
        "model.tar.gz"
    ]
    assert [p.name for p in store.deliver("s3://bkt/manifest", "ManifestFile", tmp_path / "manifest")] == ["part-0.csv"]
    with pytest.raises(NoObjects):
        store.deliver("s3://bkt/nothing/", "S3Prefix", tmp_path / "none")


def _resolver(**steps) -> Resolver:
    documents = {"s3://b/eval.json": {"metrics": {"auc": {"value": 0.8}}, "rows": [{"n": 1}, {"n": 2}]}}
    scope = Scope({"Threshold": 0.7}, {"PipelineExecutionId": "e1"}, documents.__getitem__, steps)
    scope.property_files[("Evaluate", "Evaluation")] = "s3://b/eval.json"
    return Resolver(scope, "S")


def test_expressions_resolve_as_pipelines_does():
    assert tokens("Steps.A.Outputs['x'].S3Output.S3Uri") == ["Steps", "A", "Outputs", "'x", "S3Output", "S3Uri"]
    resolver = _resolver(A={"Outputs": [{"OutputName": "x", "S3Output": {"S3Uri": "s3://b/x"}}]})
    join = {
        "Std:Join": {
            "On": "/",
            "Values": [{"Get": "Steps.A.Outputs['x'].S3Output.S3Uri"}, {"Get": "Execution.PipelineExecutionId"}, 3],
        }
    }
    assert resolver.resolve(join, "Where") == "s3://b/x/e1/3"
    file = {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}
    assert resolver.resolve({"Std:JsonGet": {"PropertyFile": file, "Path": "metrics.auc.value"}}, "L") == 0.8
    assert resolver.resolve({"Std:JsonGet": {"PropertyFile": file, "Path": "rows[1].n"}}, "L") == 2
    with pytest.raises(EmulationError, match=r"^step S, L: s3://b/eval\.json#rows\[5\]\.n: no such value"):
        resolver.resolve({"Std:JsonGet": {"PropertyFile": file, "Path": "rows[5].n"}}, "L")
    with pytest.raises(EmulationError, match=r"^step S, P: Parameters\.Missing: the pipeline declares no such"):
        resolver.resolve({"Get": "Parameters.Missing"}, "P")


def test_steps_run_after_what_they_read_whatever_the_listed_order():
    read_b = {"Get": "Steps.B.ModelArtifacts.S3ModelArtifacts"}
    definition = {
        "Steps": [
            {"Name": "A", "Type": "Processing", "Arguments": {"X": read_b}},
            {"Name": "B", "Type": "Training", "Arguments": {}},
            {"Name": "C", "Type": "Fail", "Arguments": {}, "DependsOn": ["A"]},
        ]
    }
    assert [n.name for n in graph.nodes(definition)] == ["B", "A", "C"]
    definition["Steps"][1]["Arguments"] = {"Y": {"Get": "Steps.A.ProcessingJobName"}}
    with pytest.raises(EmulationError, match=r"steps that depend on each other in a cycle$"):
        graph.nodes(definition)
