"""The Inferentia compile step's offline parts: folding standardization, the archive, the handler."""

from __future__ import annotations

import ast
import io
import json
import tarfile

import numpy as np
import pytest

from pipelines.steps import compile_neuron

MODEL = {"features": ["amount", "age"], "mean": [50.0, 40.0], "std": [10.0, 5.0], "weights": [0.8, -1.2], "bias": 0.3}


def test_folded_weights_compute_what_the_trained_model_computes():
    rows = np.array([[55.0, 38.0], [20.0, 60.0], [50.0, 40.0]])
    standardized = (rows - np.array(MODEL["mean"])) / np.array(MODEL["std"])
    expected = 1 / (1 + np.exp(-(standardized @ np.array(MODEL["weights"]) + MODEL["bias"])))
    np.testing.assert_allclose(compile_neuron.predict(MODEL, rows), expected, rtol=1e-12)
    weights, bias = compile_neuron.affine(MODEL)
    np.testing.assert_allclose(weights, [0.08, -0.24])
    assert bias == pytest.approx(0.3 - (50 * 0.08 + 40 * -0.24))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"std": [10.0, 0.0]}, "a feature has zero standard deviation"),
        ({"mean": [1.0]}, "weights, mean and std must be vectors of the same length"),
    ],
)
def test_models_that_cannot_be_folded_are_refused(change, message):
    with pytest.raises(compile_neuron.CompileError, match=message):
        compile_neuron.affine({**MODEL, **change})


def test_model_is_read_from_the_training_archive_and_bad_members_are_refused(tmp_path):
    data = json.dumps(MODEL).encode()
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    assert compile_neuron.load_model(tmp_path) == MODEL
    evil = tmp_path / "evil"
    evil.mkdir()
    with tarfile.open(evil / "model.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("../model.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(compile_neuron.CompileError, match="not a plain relative path"):
        compile_neuron.load_model(evil)


def test_archive_holds_the_model_and_a_valid_handler(tmp_path):
    path = compile_neuron.pack(b"torchscript", tmp_path)
    with tarfile.open(path) as archive:
        names = sorted(archive.getnames())
        handler = archive.extractfile("code/inference.py").read().decode()
    assert names == ["code/inference.py", "model.pt"]
    functions = {node.name for node in ast.parse(handler).body if isinstance(node, ast.FunctionDef)}
    assert functions == {"model_fn", "input_fn", "predict_fn", "output_fn"}


def test_main_fails_cleanly_without_a_model(tmp_path, capsys):
    assert compile_neuron.main(["--model-dir", str(tmp_path), "--output-dir", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err.strip() == f"compile: no model.json or model.tar.gz in {tmp_path}"
