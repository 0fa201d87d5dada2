"""Stand-in for the SageMaker Clarify processing image: a pre-training bias analysis of the delivered data."""

from __future__ import annotations

import json
from typing import Any

from pipelines.emulator.container import Container
from pipelines.emulator.errors import EmulationError, NotEmulated
from pipelines.emulator.standins import tables

CONFIG = "/opt/ml/processing/input/config/analysis_config.json"
DATA = "/opt/ml/processing/input/data"
OUTPUT = "/opt/ml/processing/output"
REQUIRED = ("dataset_type", "headers", "label", "facet", "methods")
# The input names and paths the Clarify container reads, and its output (AWS's Clarify processing job guide).
INPUTS = {"analysis_config": "/opt/ml/processing/input/config", "dataset": "/opt/ml/processing/input/data"}
OUTPUT_NAME = "analysis_result"


class PreTrainingBias:
    """Reads analysis_config.json and the dataset where Clarify's container reads them, checks that the
    config describes the data (headers, label and facet columns, label values, numeric facet for a
    threshold), and writes analysis.json with class imbalance (CI) and difference in proportions of
    labels (DPL) in Clarify's layout.
    """

    name = "Clarify"

    def run(self, step: str, args: dict[str, Any], container: Container) -> str:
        _check_job(step, args)
        config_file = container.host(CONFIG)
        if not config_file.is_file():
            raise EmulationError(
                step, "ProcessingInputs[analysis_config]", CONFIG, "no analysis_config.json delivered there"
            )
        config = json.loads(config_file.read_text())
        missing = [key for key in REQUIRED if key not in config]
        if missing:
            raise EmulationError(
                step, "ProcessingInputs[analysis_config]", CONFIG, f"the config lacks {', '.join(missing)}"
            )
        if config["dataset_type"] != "text/csv" or set(config["methods"]) - {"pre_training_bias", "report"}:
            raise NotEmulated(
                step, "ProcessingInputs[analysis_config]", CONFIG, "only text/csv pre-training bias is emulated"
            )
        files = tables.csv_files(container.host(DATA))
        if not files:
            raise EmulationError(step, "ProcessingInputs[dataset]", DATA, "no CSV file delivered there")
        _, rows = tables.read_rows(files, header=False)
        headers = list(config["headers"])
        for number, row in enumerate(rows, start=1):
            if len(row) != len(headers):
                raise EmulationError(
                    step,
                    "ProcessingInputs[dataset]",
                    DATA,
                    f"row {number} has {len(row)} columns, the config's headers {len(headers)}",
                )
        # Rows without a label or facet value are left out (the stand-in's choice; see the README).
        label_at = headers.index(config["label"]) if config["label"] in headers else 0
        complete = [row for row in rows if row[label_at] != "" and all(value != "" for value in row)]
        facets = [_facet(step, config, headers, complete, facet) for facet in config["facet"]]
        report = {
            "version": "1.0",
            "pre_training_bias_metrics": {
                "label": config["label"],
                "label_value_or_threshold": ",".join(str(v) for v in config.get("label_values_or_threshold", [])),
                "facets": dict(facets),
            },
        }
        output = container.host(OUTPUT)
        output.mkdir(parents=True, exist_ok=True)
        (output / "analysis.json").write_text(json.dumps(report, indent=2))
        dropped = len(rows) - len(complete)
        return f"pre-training bias over {len(complete)} rows ({dropped} with missing values left out)"


def _check_job(step: str, args: dict[str, Any]) -> None:
    """The job as Clarify's container accepts it: no entrypoint or arguments, its named inputs and output."""
    app = args["AppSpecification"]
    for key in ("ContainerEntrypoint", "ContainerArguments"):
        if app.get(key):
            raise EmulationError(step, f"AppSpecification.{key}", str(app[key]), "the Clarify image supports none")
    given = {i["InputName"]: i.get("S3Input", {}).get("LocalPath") for i in args.get("ProcessingInputs", [])}
    for name, path in INPUTS.items():
        if given.get(name) != path:
            raise EmulationError(
                step, f"ProcessingInputs[{name}]", str(given.get(name)), f"Clarify reads input {name} at {path}"
            )
    outputs = {o["OutputName"]: o["S3Output"]["LocalPath"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    if outputs.get(OUTPUT_NAME) != OUTPUT:
        raise EmulationError(
            step,
            f"ProcessingOutputConfig.Outputs[{OUTPUT_NAME}]",
            str(outputs.get(OUTPUT_NAME)),
            f"Clarify writes {OUTPUT}",
        )


def _facet(
    step: str, config: dict[str, Any], headers: list[str], rows: list[list[str]], facet: dict[str, Any]
) -> tuple[str, list[dict[str, Any]]]:
    where = "ProcessingInputs[analysis_config]"
    name = facet["name_or_index"]
    if name not in headers or config["label"] not in headers:
        raise EmulationError(
            step, where, CONFIG, f"facet {name!r} or label {config['label']!r} is not among the headers {headers}"
        )
    label_at, facet_at = headers.index(config["label"]), headers.index(name)
    positive = {str(v) for v in config.get("label_values_or_threshold", [1])}
    thresholds = facet.get("value_or_threshold", [])
    if len(thresholds) != 1 or tables.number(str(thresholds[0])) is None:
        raise NotEmulated(step, where, CONFIG, f"facet {name!r}: one numeric threshold is emulated")
    threshold = float(thresholds[0])
    groups: dict[bool, list[bool]] = {True: [], False: []}
    for row in rows:
        value = tables.number(row[facet_at])
        if value is None:
            raise EmulationError(
                step, "ProcessingInputs[dataset]", DATA, f"facet {name!r} has a non-numeric value {row[facet_at]!r}"
            )
        groups[value > threshold].append(row[label_at] in positive)
    if not groups[True] or not groups[False]:
        raise EmulationError(step, where, CONFIG, f"facet {name!r} threshold {threshold:g} leaves one group empty")
    n_d, n_a = len(groups[True]), len(groups[False])
    metrics = [
        {"name": "CI", "description": "Class Imbalance (CI)", "value": (n_a - n_d) / (n_a + n_d)},
        {
            "name": "DPL",
            "description": "Difference in Positive Proportions in Labels (DPL)",
            "value": sum(groups[False]) / n_a - sum(groups[True]) / n_d,
        },
    ]
    return name, [{"value_or_threshold": f"({threshold:g}, inf)", "metrics": metrics}]
