"""The data-quality baseline: statistics and constraints of the features an endpoint receives.

Written by the preprocess step from the training split (`write_data_quality_baseline`), read by the
analysis job (`DataQualityBaseline.load`), which summarizes each window with the baseline's own bins,
categories, types and range. Layouts: README.md, "Data-quality baseline".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from monitoring import documents
from monitoring.documents import CONSTRAINTS_FILE, STATISTICS_FILE, DocumentError, Fields
from monitoring.features import (
    DEFAULT_BINS,
    DEFAULT_CATEGORIES,
    INTEGRAL,
    NUMERIC,
    STRING,
    TYPES,
    CategoricalSummary,
    NumericSummary,
    infer_type,
    quantile_edges,
    top_categories,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from monitoring.features import Summary

KIND = "data_quality"


@dataclass(frozen=True)
class Limits:
    """Default constraints written with a baseline; each feature's copy in constraints.json can be edited."""

    missing_rate_increase: float = 0.05  # above the baseline's missing rate
    type_error_rate: float = 0.01
    out_of_range_rate: float = 0.01
    js_distance: float = 0.2
    psi: float = 0.25
    schema_error_rate: float = 0.0
    min_rows: int = 100  # fewer rows in a window: distances are not computed (too noisy to judge)


def summarize_column(values: Any, kind: str, bins: int, categories: int) -> Summary:
    """The baseline summary of one column of raw cells (missing cells NaN/None) of type `kind`."""
    cells = pd.Series(values, dtype=object)
    missing = int(cells.isna().sum())
    present = cells.dropna()
    if kind == STRING:
        text = present.astype(str)
        summary: Summary = CategoricalSummary(top_categories(text.tolist(), categories))
        summary.update(text.to_numpy(), missing=missing)
        return summary
    numbers = pd.to_numeric(present, errors="coerce").astype("float64").to_numpy()
    usable = numbers[np.isfinite(numbers)]
    numeric = NumericSummary(quantile_edges(usable, bins))
    numeric.update(usable, missing=missing, type_errors=int(numbers.size - usable.size))
    return numeric


def statistics_document(names: Sequence[str], kinds: Sequence[str], summaries: Sequence[Summary]) -> dict[str, Any]:
    features = [feature_statistics(name, kind, s) for name, kind, s in zip(names, kinds, summaries)]  # noqa: B905  Python 3.8
    return {
        "schema_version": documents.SCHEMA_VERSION,
        "kind": KIND,
        "rows": summaries[0].rows if summaries else 0,
        "features": features,
    }


def feature_statistics(name: str, kind: str, summary: Summary) -> dict[str, Any]:
    common: dict[str, Any] = {"name": name, "type": kind, "rows": summary.rows, "missing": summary.missing}
    if isinstance(summary, CategoricalSummary):
        return {
            **common,
            "type_errors": 0,
            "frequencies": {
                "values": list(summary.categories),
                "counts": [int(c) for c in summary.counts[:-1]],
                "other": summary.other,
            },
        }
    empty = summary.count == 0
    return {
        **common,
        "type_errors": summary.type_errors,
        "mean": None if empty else summary.mean,
        "std": None if empty else summary.std,
        "min": None if empty else summary.minimum,
        "max": None if empty else summary.maximum,
        "histogram": {"edges": [float(e) for e in summary.edges], "counts": [int(c) for c in summary.counts]},
    }


def constraints_document(statistics: dict[str, Any], limits: Limits) -> dict[str, Any]:
    features = []
    for feature in statistics["features"]:
        rows = max(int(feature["rows"]), 1)
        constraint: dict[str, Any] = {
            "name": feature["name"],
            "type": feature["type"],
            "max_missing_rate": min(1.0, feature["missing"] / rows + limits.missing_rate_increase),
            "max_type_error_rate": limits.type_error_rate,
            "max_js_distance": limits.js_distance,
            "max_psi": limits.psi,
        }
        if feature["type"] in NUMERIC:
            constraint.update(min=feature["min"], max=feature["max"], max_out_of_range_rate=limits.out_of_range_rate)
        features.append(constraint)
    return {
        "schema_version": documents.SCHEMA_VERSION,
        "kind": KIND,
        "min_rows": limits.min_rows,
        "max_schema_error_rate": limits.schema_error_rate,
        "features": features,
    }


def write_data_quality_baseline(
    output_dir: Path,
    frame: Any,
    features: Sequence[str],
    *,
    bins: int = DEFAULT_BINS,
    categories: int = DEFAULT_CATEGORIES,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """statistics.json and constraints.json of `frame[features]` (the rows an endpoint would receive).

    A column's type is inferred from its values: text makes it categorical. Returns the statistics.
    """
    if not features:
        raise ValueError("features names no column")
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise ValueError(f"the baseline data lacks features {missing}; it has {list(frame.columns)}")
    kinds = [infer_type(frame[name]) for name in features]
    summaries = [summarize_column(frame[name], kind, bins, categories) for name, kind in zip(features, kinds)]  # noqa: B905  Python 3.8
    statistics = statistics_document(features, kinds, summaries)
    documents.write(output_dir / STATISTICS_FILE, statistics)
    documents.write(output_dir / CONSTRAINTS_FILE, constraints_document(statistics, limits or Limits()))
    return statistics


@dataclass(frozen=True)
class FeatureBaseline:
    """One feature of a loaded baseline: its statistics and its constraints."""

    name: str
    type: str
    rows: int
    missing: int
    counts: list[int]  # histogram counts, or category counts followed by "other"
    edges: list[float]  # numeric features only
    categories: list[str]  # categorical features only
    low: float | None
    high: float | None
    max_missing_rate: float
    max_type_error_rate: float
    max_out_of_range_rate: float | None
    max_js_distance: float
    max_psi: float

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC

    def new_summary(self) -> Summary:
        """An empty window summary binned, typed and bounded like this baseline."""
        if not self.numeric:
            return CategoricalSummary(list(self.categories))
        edges = np.asarray(self.edges, dtype="float64")
        return NumericSummary(edges, integral=self.type == INTEGRAL, low=self.low, high=self.high)


@dataclass(frozen=True)
class DataQualityBaseline:
    """statistics.json and constraints.json of a data-quality baseline, checked against each other."""

    features: list[FeatureBaseline]
    rows: int
    min_rows: int
    max_schema_error_rate: float

    @property
    def names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @classmethod
    def load(cls, directory: Path) -> DataQualityBaseline:
        statistics_path, constraints_path = directory / STATISTICS_FILE, directory / CONSTRAINTS_FILE
        statistics = Fields(statistics_path, documents.read(statistics_path, KIND), "")
        constraints = Fields(constraints_path, documents.read(constraints_path, KIND), "")
        described, constrained = statistics.objects("features"), constraints.objects("features")
        names = [f.text("name") for f in described]
        if not names or names != [f.text("name") for f in constrained]:
            raise DocumentError(
                f"{constraints_path}: features {[f.text('name') for f in constrained]} differ from the "
                f"statistics' {names}; both files must list the same features in the same order"
            )
        return cls(
            features=[_feature(s, c) for s, c in zip(described, constrained)],  # noqa: B905  Python 3.8
            rows=statistics.count("rows"),
            min_rows=constraints.count("min_rows"),
            max_schema_error_rate=constraints.number("max_schema_error_rate", 0.0, 1.0),
        )


def _feature(statistics: Fields, constraints: Fields) -> FeatureBaseline:
    kind = statistics.text("type", TYPES)
    if constraints.text("type", TYPES) != kind:
        raise DocumentError(f"{constraints.source}: {constraints.where}.type differs from the statistics' {kind!r}")
    if kind in NUMERIC:
        histogram = statistics.object("histogram")
        edges, counts, categories = histogram.numbers("edges"), histogram.counts("counts"), []
        if len(counts) != len(edges) + 1 or edges != sorted(set(edges)):
            raise DocumentError(
                f"{statistics.source}: {histogram.where} needs increasing edges and one count more than edges"
            )
    else:
        frequencies = statistics.object("frequencies")
        categories, edges = frequencies.texts("values"), []
        counts = [*frequencies.counts("counts"), frequencies.count("other")]
        if len(counts) != len(categories) + 1:
            raise DocumentError(f"{statistics.source}: {frequencies.where} needs one count per value")
    return FeatureBaseline(
        name=statistics.text("name"),
        type=kind,
        rows=statistics.count("rows"),
        missing=statistics.count("missing"),
        counts=counts,
        edges=edges,
        categories=categories,
        low=constraints.optional_number("min") if kind in NUMERIC else None,
        high=constraints.optional_number("max") if kind in NUMERIC else None,
        max_missing_rate=constraints.number("max_missing_rate", 0.0, 1.0),
        max_type_error_rate=constraints.number("max_type_error_rate", 0.0, 1.0),
        max_out_of_range_rate=constraints.number("max_out_of_range_rate", 0.0, 1.0) if kind in NUMERIC else None,
        max_js_distance=constraints.number("max_js_distance", 0.0, 1.0),
        max_psi=constraints.number("max_psi", 0.0),
    )
