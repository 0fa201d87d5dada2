"""One window's running state: captured rows parsed with the baseline's schema into summaries, scores and labels."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from monitoring.features import STRING, CategoricalSummary

if TYPE_CHECKING:
    import numpy.typing as npt

    from monitoring.baseline import DataQualityBaseline
    from monitoring.bias import FacetCounts
    from monitoring.capture import Batch
    from monitoring.features import Summary

    Floats = npt.NDArray[np.float64]

# Cells read as missing, the same in every pandas version (the defaults changed over time).
NA_STRINGS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
NUMBER_KINDS = "biuf"


def parse_rows(rows: list[str], types: list[str]) -> Any:
    """A DataFrame with one column per feature (named 0..n-1) of CSV lines that have len(types) fields.

    Text features stay text; numeric ones are numbers where every cell of the chunk parses, and
    text (checked later, cell by cell) otherwise.
    """
    return pd.read_csv(
        io.StringIO("\n".join(rows)),
        header=None,
        names=list(range(len(types))),
        dtype={i: str for i, kind in enumerate(types) if kind == STRING},
        keep_default_na=False,
        na_values=NA_STRINGS,
        skip_blank_lines=False,
        engine="c",
    )


def numeric_cells(column: Any) -> tuple[Floats, int, int]:
    """(values with NaN where not a finite number, missing cells, cells that are not numbers) of a column."""
    if column.dtype.kind in NUMBER_KINDS:
        values = column.to_numpy(dtype="float64")
        missing = np.isnan(values)
    else:
        missing = column.isna().to_numpy(dtype=bool)
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
    finite = np.isfinite(values)
    errors = int(np.count_nonzero(~finite & ~missing))
    return np.where(finite, values, np.nan), int(np.count_nonzero(missing)), errors


class Window:
    """Feature summaries of the captured rows, plus the labelled (label, score) pairs and facet counts."""

    def __init__(self, baseline: DataQualityBaseline, facet: FacetCounts | None = None, facet_name: str = "") -> None:
        self.baseline = baseline
        self.types = [feature.type for feature in baseline.features]
        self.summaries: list[Summary] = [feature.new_summary() for feature in baseline.features]
        self.facet = facet
        if facet is not None and facet_name not in baseline.names:
            raise ValueError(f"bias facet {facet_name!r} is not a feature of the baseline: {baseline.names}")
        if facet is not None and baseline.features[baseline.names.index(facet_name)].type == STRING:
            raise ValueError(f"bias facet {facet_name!r} is a text feature; a numeric facet is needed")
        self.facet_index = baseline.names.index(facet_name) if facet is not None else -1
        self._labels: list[Floats] = []
        self._scores: list[Floats] = []

    def add(self, batch: Batch) -> None:
        if not batch.rows:
            return
        frame = parse_rows(batch.rows, self.types)
        facet_values = None
        for i, summary in enumerate(self.summaries):
            column = frame[i]
            if isinstance(summary, CategoricalSummary):
                missing = column.isna().to_numpy(dtype=bool)
                summary.update(column.to_numpy()[~missing], missing=int(missing.sum()))
                continue
            values, missing_count, errors = numeric_cells(column)
            present = values[~np.isnan(values)]
            summary.update(present, missing=missing_count, type_errors=errors)
            if i == self.facet_index:
                facet_values = values
        scores = np.asarray(batch.scores, dtype="float64")
        labels = np.asarray(batch.labels, dtype="float64")
        joined = ~np.isnan(scores) & ~np.isnan(labels)
        if joined.any():
            self._labels.append(labels[joined])
            self._scores.append(scores[joined])
        if self.facet is not None and facet_values is not None:
            self.facet.update(facet_values, labels, scores)

    def labelled(self) -> tuple[Floats, Floats]:
        """(labels, scores) of the rows that have both."""
        if not self._labels:
            return np.empty(0, dtype="float64"), np.empty(0, dtype="float64")
        return np.concatenate(self._labels), np.concatenate(self._scores)
