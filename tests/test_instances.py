"""Tests of the instance catalog: published specs, botocore-derived roles, validation and prices."""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import importlib.abc
import importlib.util
import sys
from pathlib import Path

import pytest

from infra.catalog import instances
from infra.catalog.instances import (
    CATALOG,
    PRICE_SOURCES,
    Accelerator,
    InstanceTypeError,
    Role,
    Runtime,
    UnknownInstanceType,
    cheapest,
    get,
    has_local_nvme,
    local_nvme_families,
    local_nvme_patterns,
    valid_types,
    validate,
)

NV, INF, TRN, CPU = Accelerator.NVIDIA, Accelerator.INFERENTIA, Accelerator.TRAINIUM, Accelerator.NONE

# Published figures (AWS instance-type pages / EC2 DescribeInstanceTypes), written out here
# independently of the catalog's table: name, accelerator, model, count, total accelerator GiB,
# vCPUs, memory GiB.
PUBLISHED = [
    ("ml.g5.xlarge", NV, "A10G", 1, 24, 4, 16),
    ("ml.g5.48xlarge", NV, "A10G", 8, 192, 192, 768),
    ("ml.g4dn.12xlarge", NV, "T4", 4, 64, 48, 192),
    ("ml.g6.xlarge", NV, "L4", 1, 24, 4, 16),
    ("ml.g6e.xlarge", NV, "L40S", 1, 48, 4, 32),
    ("ml.g6e.48xlarge", NV, "L40S", 8, 384, 192, 1536),
    ("ml.g7.12xlarge", NV, "RTX PRO 4500 Blackwell", 2, 64, 48, 192),
    ("ml.g7e.2xlarge", NV, "RTX PRO 6000 Blackwell", 1, 96, 8, 64),
    ("ml.g7e.48xlarge", NV, "RTX PRO 6000 Blackwell", 8, 768, 192, 2048),
    ("ml.p3.2xlarge", NV, "V100", 1, 16, 8, 61),
    ("ml.p3.16xlarge", NV, "V100", 8, 128, 64, 488),
    ("ml.p3dn.24xlarge", NV, "V100", 8, 256, 96, 768),
    ("ml.p4d.24xlarge", NV, "A100", 8, 320, 96, 1152),
    ("ml.p4de.24xlarge", NV, "A100", 8, 640, 96, 1152),
    ("ml.p5.4xlarge", NV, "H100", 1, 80, 16, 256),
    ("ml.p5.48xlarge", NV, "H100", 8, 640, 192, 2048),
    ("ml.p5e.48xlarge", NV, "H200", 8, 1128, 192, 2048),
    ("ml.p5en.48xlarge", NV, "H200", 8, 1128, 192, 2048),
    ("ml.p6-b200.48xlarge", NV, "B200", 8, 1432, 192, 2048),
    ("ml.p6-b300.48xlarge", NV, "B300", 8, 2144, 192, 4096),
    ("ml.p6e-gb200.36xlarge", NV, "GB200", 4, 740, 144, 960),
    ("ml.inf1.xlarge", INF, "Inferentia", 1, 8, 4, 8),
    ("ml.inf1.24xlarge", INF, "Inferentia", 16, 128, 96, 192),
    ("ml.inf2.xlarge", INF, "Inferentia2", 1, 32, 4, 16),
    ("ml.inf2.48xlarge", INF, "Inferentia2", 12, 384, 192, 768),
    ("ml.trn1.2xlarge", TRN, "Trainium", 1, 32, 8, 32),
    ("ml.trn1.32xlarge", TRN, "Trainium", 16, 512, 128, 512),
    ("ml.trn1n.32xlarge", TRN, "Trainium", 16, 512, 128, 512),
    ("ml.trn2.48xlarge", TRN, "Trainium2", 16, 1536, 192, 2048),
    ("ml.t3.medium", CPU, None, 0, 0, 2, 4),
    ("ml.m5.large", CPU, None, 0, 0, 2, 8),
    ("ml.m5.xlarge", CPU, None, 0, 0, 4, 16),
    ("ml.m5.4xlarge", CPU, None, 0, 0, 16, 64),
    ("ml.c5.xlarge", CPU, None, 0, 0, 4, 8),
    ("ml.c5.9xlarge", CPU, None, 0, 0, 36, 72),
    ("ml.r5.large", CPU, None, 0, 0, 2, 16),
    ("ml.m7i.48xlarge", CPU, None, 0, 0, 192, 768),
    ("ml.r6i.32xlarge", CPU, None, 0, 0, 128, 1024),
    ("ml.m5d.large", CPU, None, 0, 0, 2, 8),
    ("ml.m5d.24xlarge", CPU, None, 0, 0, 96, 384),
    ("ml.c5d.xlarge", CPU, None, 0, 0, 4, 8),
    ("ml.c5d.18xlarge", CPU, None, 0, 0, 72, 144),
]


@pytest.mark.parametrize(("name", "accelerator", "model", "count", "acc_gib", "vcpus", "mem_gib"), PUBLISHED)
def test_published_specs(name, accelerator, model, count, acc_gib, vcpus, mem_gib):
    t = get(name)
    assert (t.accelerator, t.accelerator_model, t.accelerator_count) == (accelerator, model, count)
    assert t.accelerator_memory_gib == acc_gib
    assert (t.vcpus, t.memory_gib) == (vcpus, mem_gib)


def test_required_types_are_present():
    for name in ("ml.m5.large", "ml.m5.xlarge", "ml.t3.medium", "ml.c5.xlarge", "ml.m5.4xlarge"):
        assert name in CATALOG


def test_entries_are_self_consistent():
    for name, t in CATALOG.items():
        assert t.name == name
        assert name == f"ml.{t.family}.{name.rsplit('.', 1)[1]}"
        if t.accelerator is Accelerator.NONE:
            assert (t.accelerator_model, t.accelerator_count, t.accelerator_memory_gib) == (None, 0, 0)
        else:
            assert t.accelerator_model and t.accelerator_count > 0 and t.accelerator_memory_gib > 0


@pytest.mark.parametrize(
    ("name", "runtime"),
    [
        ("ml.g5.xlarge", Runtime.CUDA),
        ("ml.p5.48xlarge", Runtime.CUDA),
        ("ml.inf2.xlarge", Runtime.NEURON),
        ("ml.inf1.xlarge", Runtime.NEURON),
        ("ml.trn1.32xlarge", Runtime.NEURON),
        ("ml.trn2.48xlarge", Runtime.NEURON),
        ("ml.m5.xlarge", Runtime.CPU),
        ("ml.t3.medium", Runtime.CPU),
    ],
)
def test_runtime(name, runtime):
    assert get(name).runtime is runtime


# --- local NVMe (SageMaker refuses a customer KMS volume key there) ---------------------------


def test_local_nvme_families():
    assert local_nvme_families() == (
        "c5d",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "g7",
        "g7e",
        "m5d",
        "p3dn",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6-b200",
        "p6-b300",
        "p6e-gb200",
        "trn1",
        "trn1n",
        "trn2",
    )


@pytest.mark.parametrize(
    "name",
    [
        "ml.g4dn.xlarge",
        "ml.g5.xlarge",
        "ml.g6.16xlarge",
        "ml.g6e.xlarge",
        "ml.g7.2xlarge",
        "ml.g7e.2xlarge",
        "ml.p3dn.24xlarge",
        "ml.p4d.24xlarge",
        "ml.p5.4xlarge",
        "ml.p6-b200.48xlarge",
        "ml.trn1.2xlarge",
        "ml.trn2.48xlarge",
        "ml.m5d.large",
        "ml.c5d.xlarge",
    ],
)
def test_has_local_nvme(name):
    assert has_local_nvme(name) is True


@pytest.mark.parametrize(
    "name",
    [
        "ml.m5.xlarge",
        "ml.t3.medium",
        "ml.c5.xlarge",
        "ml.c6i.32xlarge",
        "ml.r5.24xlarge",
        "ml.p3.2xlarge",
        "ml.p3.16xlarge",
        "ml.inf1.xlarge",
        "ml.inf2.xlarge",
        "ml.inf2.48xlarge",
    ],
)
def test_has_no_local_nvme(name):
    assert has_local_nvme(name) is False


def test_has_local_nvme_answers_per_family_and_rejects_unknown_families():
    # A size the catalog lacks gets its family's answer, the same the IAM patterns give it.
    assert has_local_nvme("ml.g5.96xlarge") is True
    assert has_local_nvme("ml.m5.96xlarge") is False
    for name in ("ml.r5d.xlarge", "g5.xlarge", "ml.g5", ""):
        with pytest.raises(UnknownInstanceType):
            has_local_nvme(name)


def _string_like(pattern: str, value: str) -> bool:
    # IAM StringLike: only * and ? are wildcards, everything else (including ".") is literal.
    assert "[" not in pattern
    return fnmatch.fnmatchcase(value, pattern)


def test_local_nvme_patterns():
    patterns = local_nvme_patterns()
    assert patterns == tuple(f"ml.{family}.*" for family in local_nvme_families())
    assert "ml.p6-b200.*" in patterns and "ml.p6e-gb200.*" in patterns
    every_type = set().union(*(valid_types(role) for role in Role)) | set(CATALOG)
    for name in every_type:
        family = name.split(".")[1]
        matched = any(_string_like(p, name) for p in patterns)
        assert matched == (family in local_nvme_families()), name
    # "." is literal: the p5 pattern covers p5 sizes only, never p5e/p5en.
    assert not _string_like("ml.p5.*", "ml.p5e.48xlarge")
    assert not _string_like("ml.p5.*", "ml.p5en.48xlarge")
    assert not any(_string_like(p, "ml.inf2.xlarge") or _string_like(p, "ml.p3.2xlarge") for p in patterns)


# --- EFA -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "ml.p3dn.24xlarge",
        "ml.p4d.24xlarge",
        "ml.p4de.24xlarge",
        "ml.p5.4xlarge",
        "ml.p5.48xlarge",
        "ml.p5en.48xlarge",
        "ml.p6-b200.48xlarge",
        "ml.trn1.32xlarge",
        "ml.trn1n.32xlarge",
        "ml.trn2.48xlarge",
        "ml.g4dn.8xlarge",
        "ml.g5.8xlarge",
        "ml.g5.48xlarge",
        "ml.g6e.48xlarge",
        "ml.inf1.24xlarge",
        "ml.c6i.32xlarge",
    ],
)
def test_efa(name):
    assert get(name).efa is True


@pytest.mark.parametrize(
    "name",
    [
        "ml.g5.xlarge",
        "ml.g5.4xlarge",
        "ml.g6e.4xlarge",
        "ml.g7e.4xlarge",
        "ml.p3.16xlarge",
        "ml.trn1.2xlarge",
        "ml.inf2.48xlarge",
        "ml.m5.24xlarge",
        "ml.c5.18xlarge",
    ],
)
def test_no_efa(name):
    assert get(name).efa is False


# --- roles, from botocore's service model ------------------------------------------------------


def test_every_entry_is_listed_by_botocore():
    # Catches typos in the table: each name must be accepted by at least one SageMaker API.
    listed = set().union(*(valid_types(role) for role in Role))
    assert sorted(set(CATALOG) - listed) == []
    assert all(t.roles for t in CATALOG.values())


def test_catalog_has_every_size_botocore_lists_for_its_families():
    families = {t.family for t in CATALOG.values()}
    listed = set().union(*(valid_types(role) for role in Role))
    missing = sorted(n for n in listed if n.split(".")[1] in families and n not in CATALOG)
    assert missing == []


def test_async_and_realtime_share_the_endpoint_config_list():
    assert valid_types(Role.ASYNC) == valid_types(Role.REALTIME)
    assert valid_types("training") == valid_types(Role.TRAINING)


@pytest.mark.parametrize(
    ("name", "roles"),
    [
        ("ml.t3.medium", {Role.TRAINING, Role.PROCESSING}),
        ("ml.r5.8xlarge", {Role.TRAINING, Role.PROCESSING}),
        ("ml.c5.large", {Role.REALTIME, Role.ASYNC}),
        ("ml.m5d.large", {Role.REALTIME, Role.ASYNC}),
        ("ml.inf2.xlarge", {Role.REALTIME, Role.ASYNC, Role.BATCH}),
        ("ml.inf1.xlarge", {Role.REALTIME, Role.ASYNC}),
        ("ml.p3dn.24xlarge", {Role.TRAINING}),
        ("ml.p4d.24xlarge", {Role.TRAINING, Role.REALTIME, Role.ASYNC}),
        ("ml.p5.4xlarge", {Role.TRAINING, Role.PROCESSING, Role.REALTIME, Role.ASYNC}),
        ("ml.trn1.32xlarge", {Role.TRAINING, Role.REALTIME, Role.ASYNC, Role.BATCH}),
        ("ml.g5.xlarge", set(Role)),
    ],
)
def test_roles(name, roles):
    assert get(name).roles == frozenset(roles)


# --- validate() ----------------------------------------------------------------------------


def test_validate_returns_the_entry():
    assert validate("ml.g5.xlarge", Role.REALTIME) is CATALOG["ml.g5.xlarge"]
    assert validate("ml.t3.medium", "training") is CATALOG["ml.t3.medium"]
    assert validate("ml.inf2.xlarge", Role.BATCH).runtime is Runtime.NEURON


def test_validate_rejects_a_type_the_api_does_not_accept():
    with pytest.raises(InstanceTypeError) as err:
        validate("ml.foo.bar", Role.TRAINING)
    assert str(err.value) == (
        "ml.foo.bar is not a valid SageMaker instance type for training (CreateTrainingJob); "
        f"e.g. ml.m5.xlarge, ml.g5.xlarge, ml.trn1.32xlarge, ... ({len(valid_types(Role.TRAINING))} accepted)"
    )


def test_validate_rejects_a_real_type_used_for_the_wrong_role():
    with pytest.raises(InstanceTypeError) as err:
        validate("ml.t3.medium", Role.REALTIME)
    assert str(err.value) == (
        "ml.t3.medium is not a valid SageMaker instance type for realtime (CreateEndpointConfig); "
        f"e.g. ml.m5.xlarge, ml.g5.xlarge, ml.inf2.xlarge, ... ({len(valid_types(Role.REALTIME))} accepted)"
    )
    for name, role in [
        ("ml.inf2.xlarge", Role.TRAINING),
        ("ml.p4d.24xlarge", Role.PROCESSING),
        ("ml.p3dn.24xlarge", Role.BATCH),
    ]:
        with pytest.raises(
            InstanceTypeError, match=rf"^{name} is not a valid SageMaker instance type for {role.value} "
        ):
            validate(name, role)


def test_validate_rejects_a_valid_type_outside_the_catalog():
    assert "ml.c4.xlarge" in valid_types(Role.TRAINING)
    with pytest.raises(InstanceTypeError) as err:
        validate("ml.c4.xlarge", Role.TRAINING)
    # Only families with a type valid for training are offered: no inf1/inf2.
    assert str(err.value) == (
        "ml.c4.xlarge is not in the platform's instance catalog (infra/catalog/instances.py); supported families: "
        "c5, c6i, c7i, g4dn, g5, g6, g6e, g7, g7e, m5, m6i, m7i, p3, p3dn, p4d, p4de, p5, p5e, p5en, "
        "p6-b200, p6-b300, p6e-gb200, r5, r6i, t3, trn1, trn1n, trn2"
    )


def test_error_messages_stay_on_one_line():
    for bad in ("ml.g5.xlarge\nrm -rf /", "ml. g5.xlarge", ""):
        with pytest.raises(InstanceTypeError) as err:
            validate(bad, Role.TRAINING)
        assert "\n" not in str(err.value) and repr(bad) in str(err.value)
    with pytest.raises(UnknownInstanceType) as err:
        get("ml.nope.xlarge")
    assert str(err.value).startswith("ml.nope.xlarge is not in the platform's instance catalog")
    assert "\n" not in str(err.value)
    assert issubclass(UnknownInstanceType, ValueError) and issubclass(InstanceTypeError, ValueError)


# --- cheapest() ----------------------------------------------------------------------------


def test_cheapest_realtime_with_24_gib():
    # Inferentia2's 32 GiB at $0.99 undercuts every 24 GiB GPU.
    assert cheapest(Role.REALTIME, 24).name == "ml.inf2.xlarge"
    assert cheapest(Role.REALTIME, 24, Accelerator.NVIDIA).name == "ml.g6.xlarge"
    assert cheapest(Role.BATCH, 24, Accelerator.INFERENTIA).name == "ml.inf2.xlarge"


def test_cheapest_training_with_80_gib():
    # 4x L4 (96 GiB) at $5.752; inf2 is not a training type.
    assert cheapest(Role.TRAINING, 80).name == "ml.g6.12xlarge"


def test_cheapest_without_a_memory_floor():
    assert cheapest(Role.TRAINING).name == "ml.m5.large"  # ml.c5.large is not a training type
    assert cheapest(Role.REALTIME).name == "ml.c5.large"


def test_cheapest_breaks_ties_by_name(monkeypatch):
    same_price = {n: dataclasses.replace(CATALOG[n], price_usd_per_hour=1.0) for n in ("ml.m5.xlarge", "ml.c5.xlarge")}
    monkeypatch.setattr(instances, "CATALOG", same_price)
    assert cheapest(Role.TRAINING).name == "ml.c5.xlarge"


def test_cheapest_reports_no_fit():
    with pytest.raises(InstanceTypeError) as err:
        cheapest(Role.REALTIME, 5000, Accelerator.NVIDIA)
    assert str(err.value) == (
        "no priced instance type in the catalog is valid for realtime (CreateEndpointConfig) "
        "with >= 5000 GiB of nvidia accelerator memory"
    )
    with pytest.raises(InstanceTypeError, match=r">= 1 GiB of none accelerator memory$"):
        cheapest(Role.TRAINING, 1, Accelerator.NONE)


# --- prices --------------------------------------------------------------------------------


def test_every_price_has_a_dated_source():
    for t in CATALOG.values():
        if t.price_usd_per_hour is None:
            assert t.price_source is None, t.name
            continue
        assert t.price_usd_per_hour > 0
        assert t.price_source in PRICE_SOURCES.values(), t.name
        assert t.price_source.url.startswith("https://")
        datetime.date.fromisoformat(t.price_source.as_of)
        assert t.price_source.note


def test_spot_prices():
    assert get("ml.m5.xlarge").price_usd_per_hour == 0.23
    assert get("ml.g5.xlarge").price_usd_per_hour == 1.4084
    assert get("ml.p3.2xlarge").price_usd_per_hour == 3.825
    # No current quote: left unpriced rather than guessed.
    assert get("ml.p5.48xlarge").price_usd_per_hour is None
    assert get("ml.p6-b200.48xlarge").price_usd_per_hour is None


def test_prices_grow_with_size_at_equal_accelerator_count():
    # Catches a mistyped price: within a family, more vCPUs for the same accelerators costs more.
    by_group: dict[tuple[str, int], list] = {}
    for t in CATALOG.values():
        if t.price_usd_per_hour is not None:
            by_group.setdefault((t.family, t.accelerator_count), []).append(t)
    for group in by_group.values():
        group.sort(key=lambda t: t.vcpus)
        prices = [t.price_usd_per_hour for t in group]
        assert prices == sorted(prices), [t.name for t in group]


# --- import cost ---------------------------------------------------------------------------


class _BlockBotocore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, _path=None, _target=None):
        if name == "botocore" or name.startswith("botocore."):
            raise ImportError(f"{name} blocked by the test")
        return None


def test_import_and_lookups_do_not_load_botocore(monkeypatch):
    for name in [n for n in sys.modules if n == "botocore" or n.startswith("botocore.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BlockBotocore(), *sys.meta_path])
    path = Path(instances.__file__)
    spec = importlib.util.spec_from_file_location("instances_without_botocore", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)

    assert module.CATALOG["ml.g5.xlarge"].local_nvme
    assert module.has_local_nvme("ml.p4d.24xlarge")
    assert "ml.g5.*" in module.local_nvme_patterns()
    with pytest.raises(ImportError):  # only role checks need the service model
        module.valid_types(module.Role.TRAINING)


def test_instance_type_lists_read_from_the_data_file_are_botocores_own():
    """The fast read of botocore's SageMaker model gives what botocore's ServiceModel gives."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    for role in instances.Role:
        shape = instances._ROLE_API[role][1]
        assert instances.valid_types(role) == frozenset(model.shape_for(shape).enum), role
