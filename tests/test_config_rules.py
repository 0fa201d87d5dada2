"""The config package's cross-field rules: each is a documented function, and each refuses a bad config."""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Callable

import pytest

import infra.config
from infra.config import ConfigError, parse_config
from tests.test_config import BAD_CONFIGS, SERVERLESS, SOURCE, _mutated

Rule = Callable[..., list]


def _rule_tables() -> dict[tuple[types.ModuleType, str], tuple[Rule, ...]]:
    """Every module-level tuple of functions in the package: the rules each model runs, in order."""
    tables = {}
    for info in pkgutil.iter_modules(infra.config.__path__):
        module = importlib.import_module(f"{infra.config.__name__}.{info.name}")
        for name, value in vars(module).items():
            if isinstance(value, tuple) and value and all(isinstance(f, types.FunctionType) for f in value):
                tables[(module, name)] = value
    return tables


RULES = sorted({rule for table in _rule_tables().values() for rule in table}, key=lambda f: f.__qualname__)

# Rules the bad configs of test_config.py leave out, each with one config it refuses.
MORE_BAD_CONFIGS = [
    (
        "allowed_values without values",
        lambda d: d["data_lake"]["dataset"]["quality_rules"].append({"check": "allowed_values", "column": "amount"}),
        "data_lake.dataset.quality_rules[5].values = null: allowed: a list of allowed values for allowed_values",
    ),
    (
        "Studio without personas",
        lambda d: (d["training"].update(studio={}), d["data_lake"].update(personas={})),
        "training.studio = 'studio': allowed: data_lake.personas with at least one persona (their profiles)",
    ),
    (
        "serverless with canary deployment",
        lambda d: d.update(serving={**SERVERLESS, "deployment": {"strategy": "canary"}}),
        "serving.deployment.strategy = 'canary': allowed: all_at_once with mode serverless: no rolling deployments "
        "for serverless endpoints, and canary and linear shifting are sized in instances, which a serverless "
        "endpoint has none of",
    ),
    (
        "provisioned above the serverless maximum",
        lambda d: d.update(
            serving={**SERVERLESS, "serverless": {**SERVERLESS["serverless"], "provisioned_concurrency": 30}}
        ),
        "serving.serverless.provisioned_concurrency = 30: allowed: at most max_concurrency (20)",
    ),
    (
        "real-time endpoint without variants",
        lambda d: d["serving"].update(variants=[], autoscaling=None),
        "serving.variants = []: allowed: at least one variant with mode realtime",
    ),
    (
        "async endpoint without its section",
        lambda d: d["serving"].update(mode="async"),
        "serving.async_inference = null: allowed: an async_inference section with mode async",
    ),
    (
        "two variants of one name",
        lambda d: d["serving"]["variants"].append(dict(d["serving"]["variants"][0])),
        "serving.variants[1].name = 'AllTraffic': allowed: a name no other variant has",
    ),
    (
        "logarithmic range from zero",
        lambda d: d["training"].update(
            tuning={"ranges": {"learning-rate": {"min": 0, "max": 0.5, "scaling": "Logarithmic"}}}
        ),
        "training.tuning.ranges.learning-rate.min = 0.0: allowed: above 0 with Logarithmic scaling",
    ),
    (
        "more parallel tuning jobs than jobs",
        lambda d: d["training"].update(
            tuning={"max_jobs": 2, "max_parallel_jobs": 3, "ranges": {"epochs": {"min": 1, "max": 5}}}
        ),
        "training.tuning.max_parallel_jobs = 3: allowed: at most max_jobs (2)",
    ),
    (
        "Hyperband with SageMaker's early stopping",
        lambda d: d["training"].update(tuning={"strategy": "Hyperband", "ranges": {"epochs": {"min": 1, "max": 5}}}),
        "training.tuning.early_stopping = 'Auto': allowed: Off with Hyperband (it stops jobs itself)",
    ),
    (
        "tuning a parameter the script does not take",
        lambda d: d["training"].update(tuning={"ranges": {"depth": {"min": 1, "max": 5}}}),
        "training.tuning.ranges.depth = 'depth': allowed: a hyperparameter of the training script: epochs, "
        "learning-rate, l2, batch-size",
    ),
    (
        "explainability on the platform engine",
        lambda d: d["monitoring"].update(explainability={"isolation_exception": "x" * 20}),
        "monitoring.explainability = 'a section': allowed: null with engine platform (it provides data_quality, "
        "model_quality, bias)",
    ),
    (
        "Debugger rules without Debugger in the account",
        lambda d: d["training"]["debugger"].update(rules=["overfit"]),
        'training.debugger.rules = ["overfit"]: allowed: [] unless account_has_debugger is true (SageMaker '
        "Debugger is closed to new customers)",
    ),
    (
        "a hyperparameter the script does not take",
        lambda d: d["training"]["hyperparameters"].update(depth=3),
        "training.hyperparameters.depth = 'depth': allowed: a hyperparameter of the training script: epochs, "
        "learning-rate, l2, batch-size",
    ),
    (
        "one registered image for CPU and GPU types",
        lambda d: d["training"].update(inference_instance_types=["ml.m5.large", "ml.g5.xlarge"]),
        "training.inference_instance_types[1] = 'ml.g5.xlarge': allowed: a cpu type like ml.m5.large: the model "
        "package registers one image, built for ml.m5.large, and ml.g5.xlarge needs a cuda image",
    ),
]


def test_the_package_has_its_rules_and_each_says_what_it_checks():
    assert len(RULES) >= 40
    for rule in RULES:
        doc = (rule.__doc__ or "").strip()
        assert doc and doc.splitlines()[0].endswith("."), f"{rule.__module__}.{rule.__qualname__}: no docstring"


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in MORE_BAD_CONFIGS], ids=[c[0] for c in MORE_BAD_CONFIGS])
def test_more_bad_configs_give_one_exact_line(change, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(_mutated(change), SOURCE)
    assert caught.value.problems == [f"{SOURCE}: {message}"]


def test_every_rule_refuses_one_of_the_bad_configs(monkeypatch):
    fired: set[Rule] = set()

    def spy(rule: Rule) -> Rule:
        def run(model: object) -> list:
            problems = rule(model)
            if problems:
                fired.add(rule)
            return problems

        return run

    for (module, name), table in _rule_tables().items():
        monkeypatch.setattr(module, name, tuple(spy(rule) for rule in table))
    for _, change, _ in [*BAD_CONFIGS, *MORE_BAD_CONFIGS]:
        with pytest.raises(ConfigError):
            parse_config(_mutated(change), SOURCE)
    assert [f"{r.__module__}.{r.__qualname__}" for r in RULES if r not in fired] == []
