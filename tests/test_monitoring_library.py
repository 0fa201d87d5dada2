"""The monitoring engine's statistics (monitoring/): distances against scipy, streaming summaries, baselines."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy, ks_2samp

from monitoring import documents
from monitoring.baseline import DataQualityBaseline, Limits, write_data_quality_baseline
from monitoring.bias import FacetCounts
from monitoring.distance import PSI_FLOOR, js_distance, psi
from monitoring.documents import DocumentError
from monitoring.features import (
    FEW_EDGES,
    CategoricalSummary,
    NumericSummary,
    histogram,
    infer_type,
    quantile_edges,
    top_categories,
)
from monitoring.quality import binary_metrics, roc_auc
from pipelines.steps import evaluate
from tests import monitoring_data as data

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "monitoring"


# --- distances against scipy's reference values -----------------------------------------------


def _counts(seed: int, bins: int = 10, zeros: int = 0) -> np.ndarray:
    counts = np.random.default_rng(seed).integers(1, 500, bins)
    counts[:zeros] = 0
    return counts


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("zeros", [0, 2])
def test_js_distance_is_scipys_jensenshannon_in_base_2(seed, zeros):
    expected, actual = _counts(seed), _counts(seed + 100, zeros=zeros)
    reference = jensenshannon(expected / expected.sum(), actual / actual.sum(), base=2)
    assert js_distance(expected, actual) == pytest.approx(reference, abs=1e-12)


def test_js_distance_is_0_for_equal_and_1_for_disjoint_distributions():
    assert js_distance([5, 10, 0], [50, 100, 0]) == pytest.approx(0.0, abs=1e-12)
    assert js_distance([5, 0], [0, 7]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_psi_is_the_symmetric_kullback_leibler_divergence_of_scipy(seed):
    """Without empty bins, PSI = KL(a || e) + KL(e || a) with scipy.stats.entropy (natural log)."""
    expected, actual = _counts(seed), _counts(seed + 7)
    p, q = expected / expected.sum(), actual / actual.sum()
    assert psi(expected, actual) == pytest.approx(entropy(q, p) + entropy(p, q), rel=1e-12)


def test_psi_floors_empty_bins_and_stays_finite():
    expected, actual = np.array([100, 100, 100, 0]), np.array([0, 100, 100, 100])
    p = np.maximum(expected / expected.sum(), PSI_FLOOR)
    q = np.maximum(actual / actual.sum(), PSI_FLOOR)
    p, q = p / p.sum(), q / q.sum()
    value = psi(expected, actual)
    assert np.isfinite(value) and value > 2
    assert value == pytest.approx(entropy(q, p) + entropy(p, q), rel=1e-12)


def test_distances_refuse_bins_that_do_not_match():
    with pytest.raises(ValueError, match="the baseline has 3 bins and the window 2"):
        js_distance([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="add up to 0"):
        psi([1, 2], [0, 0])


def test_ks_on_binned_data_is_only_a_lower_bound_which_is_why_js_is_used():
    """The reason given in monitoring/distance.py: KS at the bin edges understates scipy's statistic."""
    rng = np.random.default_rng(3)
    base, window = rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 5000)
    edges = quantile_edges(base)
    cdf = lambda counts: np.cumsum(counts)[:-1] / counts.sum()  # noqa: E731
    binned = float(np.max(np.abs(cdf(histogram(edges, base)) - cdf(histogram(edges, window)))))
    exact = ks_2samp(base, window).statistic
    assert binned < exact


# --- streaming summaries ------------------------------------------------------------------------


def test_histogram_by_comparison_equals_a_binary_search():
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(0, 1, 10_000), 1)  # many values sit exactly on an edge
    for bins in (1, 2, 10, FEW_EDGES + 10):
        edges = np.unique(np.round(quantile_edges(values, bins), 1))
        expected = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        np.testing.assert_array_equal(histogram(edges, values), expected)


def test_quantile_edges_give_equal_bins_and_collapse_ties():
    values = np.arange(1000, dtype="float64")
    edges = quantile_edges(values, 10)
    assert edges.size == 9
    assert histogram(edges, values).tolist() == [100] * 10
    binary = np.array([0.0] * 800 + [1.0] * 200)
    edges = quantile_edges(binary, 10)
    assert edges.tolist() == [1.0]
    assert histogram(edges, binary).tolist() == [800, 200]


def test_numeric_summary_streamed_in_chunks_equals_numpy_on_the_whole():
    values = np.random.default_rng(1).gamma(2.0, 60.0, 100_003) + 1e6  # an offset that naive sums lose
    summary = NumericSummary(quantile_edges(values[:5000]), low=1e6 + 1, high=1e6 + 500)
    for chunk in np.array_split(values, 37):
        summary.update(chunk)
    assert summary.count == values.size
    assert summary.mean == pytest.approx(values.mean(), rel=1e-12)
    assert summary.std == pytest.approx(values.std(), rel=1e-9)
    assert (summary.minimum, summary.maximum) == (values.min(), values.max())
    assert summary.out_of_range == int(((values < 1e6 + 1) | (values > 1e6 + 500)).sum())
    assert summary.counts.sum() == values.size


def test_integral_summary_counts_fractions_as_type_errors():
    summary = NumericSummary(np.array([2.0]), integral=True)
    summary.update(np.array([1.0, 2.0, 2.5, 3.0]), missing=1, type_errors=1)
    assert (summary.count, summary.type_errors, summary.missing, summary.rows) == (3, 2, 1, 6)


def test_categorical_summary_puts_unknown_values_in_other():
    summary = CategoricalSummary(["web", "app"])
    summary.update(np.array(["web", "web", "store", "app", "kiosk"], dtype=object), missing=2)
    assert summary.counts.tolist() == [2, 1, 2]
    assert (summary.count, summary.other, summary.rows) == (5, 2, 7)


def test_types_are_inferred_from_values():
    assert infer_type(pd.Series([1.0, 2.0, None])) == "integral"
    assert infer_type(pd.Series([1.5, 2.0])) == "fractional"
    assert infer_type(pd.Series(["1", "x"])) == "string"
    assert infer_type(pd.Series([None, None])) == "fractional"
    assert top_categories(["b", "a", "b", "c", "a", "b"], 2) == ["b", "a"]


# --- the data-quality baseline ------------------------------------------------------------------


@pytest.fixture
def baseline(tmp_path) -> tuple[Path, pd.DataFrame]:
    frame = data.rows(4000, seed=0)
    frame.loc[::50, "amount"] = np.nan  # 2% missing
    write_data_quality_baseline(tmp_path / "dq", frame, list(data.FEATURES))
    return tmp_path / "dq", frame


def test_baseline_statistics_describe_the_training_features(baseline):
    directory, frame = baseline
    statistics = json.loads((directory / "statistics.json").read_text())
    assert (statistics["kind"], statistics["schema_version"], statistics["rows"]) == ("data_quality", 1, 4000)
    amount, count, age, channel = statistics["features"]
    assert [f["name"] for f in statistics["features"]] == list(data.FEATURES)
    assert (amount["type"], count["type"], age["type"], channel["type"]) == (
        "fractional",
        "integral",
        "integral",
        "string",
    )
    present = frame["amount"].dropna()
    assert amount["missing"] == 80
    assert amount["mean"] == pytest.approx(present.mean(), rel=1e-12)
    assert amount["std"] == pytest.approx(present.std(ddof=0), rel=1e-9)
    assert (amount["min"], amount["max"]) == (present.min(), present.max())
    ranked = np.sort(present.to_numpy())
    assert amount["histogram"]["edges"] == list(np.unique(ranked[np.arange(1, 10) * ranked.size // 10]))
    assert sum(amount["histogram"]["counts"]) == present.size
    assert min(amount["histogram"]["counts"]) >= 0.09 * present.size  # deciles, up to ties
    frequencies = frame["channel"].value_counts()
    assert channel["frequencies"]["values"] == list(frequencies.index)
    assert channel["frequencies"]["counts"] == frequencies.tolist()
    assert channel["frequencies"]["other"] == 0


def test_baseline_constraints_hold_the_default_limits(baseline):
    directory, _ = baseline
    constraints = json.loads((directory / "constraints.json").read_text())
    limits = Limits()
    amount, _, _, channel = constraints["features"]
    assert amount["max_missing_rate"] == pytest.approx(0.02 + limits.missing_rate_increase)
    assert (amount["max_js_distance"], amount["max_psi"], amount["max_out_of_range_rate"]) == (0.2, 0.25, 0.01)
    assert "min" not in channel and channel["max_type_error_rate"] == limits.type_error_rate
    assert constraints["min_rows"] == limits.min_rows


def test_baseline_loads_back_and_its_window_summaries_use_its_bins(baseline):
    directory, _ = baseline
    loaded = DataQualityBaseline.load(directory)
    assert loaded.names == list(data.FEATURES)
    amount = loaded.features[0].new_summary()
    assert isinstance(amount, NumericSummary)
    assert amount.edges.tolist() == loaded.features[0].edges
    assert (amount.low, amount.high) == (loaded.features[0].low, loaded.features[0].high)
    assert isinstance(loaded.features[3].new_summary(), CategoricalSummary)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (
            "statistics.json",
            lambda d: d["features"][0]["histogram"].update(edges=[3, 2]),
            r"features\[0\].histogram needs",
        ),
        (
            "statistics.json",
            lambda d: d.update(kind="model_quality"),
            "kind is 'model_quality', expected 'data_quality'",
        ),
        (
            "constraints.json",
            lambda d: d["features"][1].update(max_js_distance=2),
            r"features\[1\].max_js_distance is 2",
        ),
        ("constraints.json", lambda d: d["features"].pop(), "both files must list the same features"),
    ],
)
def test_a_damaged_baseline_is_refused_with_one_line_naming_the_field(baseline, file, change, message):
    directory, _ = baseline
    document = json.loads((directory / file).read_text())
    change(document)
    (directory / file).write_text(json.dumps(document))
    with pytest.raises(DocumentError, match=message) as raised:
        DataQualityBaseline.load(directory)
    assert "\n" not in str(raised.value) and file in str(raised.value)


def test_a_missing_baseline_file_names_the_file(tmp_path):
    with pytest.raises(DocumentError, match=r"statistics\.json: no such file"):
        DataQualityBaseline.load(tmp_path)


def test_documents_never_hold_nan(tmp_path):
    with pytest.raises(ValueError):
        documents.write(tmp_path / "x.json", {"value": float("nan")})


# --- model quality and bias ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_model_quality_metrics_are_the_evaluate_steps(seed):
    """The monitor recomputes exactly what evaluation.json reports, edge cases included."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(300) < 0.3).astype(int)
    scores = np.round(rng.random(300), 2)  # ties
    cases = [(labels, scores), (np.zeros(50, dtype=int), scores[:50]), (labels, np.zeros(300))]
    for y, p in cases:
        ours, theirs = binary_metrics(y, p, 0.5), evaluate.binary_metrics(y, p, 0.5)
        assert ours.keys() == theirs.keys()
        for name, value in theirs.items():
            assert ours[name] == value or (np.isnan(ours[name]) and np.isnan(value)), name
    assert roc_auc([0, 1, 1, 0], [0.1, 0.4, 0.35, 0.8]) == 0.5


def test_facet_metrics_follow_clarifys_definitions():
    facet = np.array([10, 20, 30, 40, 50, 60, np.nan])  # d: above 35
    labels = np.array([1, 0, 0, 1, 1, 0, 1])
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.7, np.nan, 0.9])
    counts = FacetCounts(threshold=35, score_threshold=0.5)
    counts.update(facet, labels, scores)
    metrics = counts.metrics()
    assert counts.rows == [3, 3]
    assert metrics["CI"] == 0.0
    assert metrics["DPL"] == pytest.approx(1 / 3 - 2 / 3)
    assert metrics["DPPL"] == pytest.approx(1 / 3 - 2 / 2)  # the row without a score is left out


# --- the library as shipped ---------------------------------------------------------------------


@pytest.mark.parametrize("module", sorted(path.name for path in LIBRARY.glob("*.py")))
def test_library_stands_alone_in_sagemaker_containers(module):
    """Standard library, numpy and pandas only, and what Python 3.8 (the processing image) runs."""
    source = (LIBRARY / module).read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "absolute imports: the package is imported from a zip"
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"numpy", "pandas", "monitoring"}, imported
    newer_features = (".removeprefix(", ".removesuffix(", ".is_relative_to(", "strict=", "filter=", "import UTC")
    for newer in (*newer_features, "datetime.UTC", "functools.cache", "TypeAlias", "slots=True", "kw_only="):
        assert newer not in source, newer
    assert "from __future__ import annotations" in source or module == "__init__.py"
