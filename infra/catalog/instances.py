"""Catalog of the SageMaker ml.* instance types the platform supports: specs, prices and roles."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any


class Role(StrEnum):
    """What a SageMaker instance is used for; each role maps to one API's instance-type enum."""

    TRAINING = "training"
    PROCESSING = "processing"
    REALTIME = "realtime"
    ASYNC = "async"
    BATCH = "batch"


class Accelerator(StrEnum):
    NONE = "none"
    NVIDIA = "nvidia"
    INFERENTIA = "inferentia"
    TRAINIUM = "trainium"


class Runtime(StrEnum):
    """The software stack a container image must be built for."""

    CPU = "cpu"
    CUDA = "cuda"
    NEURON = "neuron"


class UnknownInstanceType(ValueError):
    """The name is not an entry of CATALOG."""


class InstanceTypeError(ValueError):
    """The name cannot be used for the requested role, or no catalog entry fits a request."""


# Role -> (the API the instance type is sent to, the botocore shape listing what that API accepts).
# Async inference is an endpoint config with an AsyncInferenceConfig: it shares the real-time list.
_ROLE_API: Mapping[Role, tuple[str, str]] = MappingProxyType(
    {
        Role.TRAINING: ("CreateTrainingJob", "TrainingInstanceType"),
        Role.PROCESSING: ("CreateProcessingJob", "ProcessingInstanceType"),
        Role.REALTIME: ("CreateEndpointConfig", "ProductionVariantInstanceType"),
        Role.ASYNC: ("CreateEndpointConfig", "ProductionVariantInstanceType"),
        Role.BATCH: ("CreateTransformJob", "TransformInstanceType"),
    }
)

_RUNTIME: Mapping[Accelerator, Runtime] = MappingProxyType(
    {
        Accelerator.NONE: Runtime.CPU,
        Accelerator.NVIDIA: Runtime.CUDA,
        Accelerator.INFERENTIA: Runtime.NEURON,
        Accelerator.TRAINIUM: Runtime.NEURON,
    }
)


@dataclass(frozen=True)
class PriceSource:
    """Where a price was read and when, so a stale or second-hand figure is visible as such."""

    url: str
    as_of: str  # ISO date
    note: str


# Every price is SageMaker on-demand USD per instance-hour in this region.
PRICE_REGION = "us-east-1"

# The SageMaker pricing page (https://aws.amazon.com/sagemaker/pricing/) fills its tables in the
# browser, so no copy of it with prices could be read; every price below is second-hand and says so.
# Where no quote met the bar below the price is None: cheapest() skips it rather than guess.
PRICE_SOURCES: Mapping[str, PriceSource] = MappingProxyType(
    {
        "fmbench": PriceSource(
            url=(
                "https://github.com/aws-samples/foundation-model-benchmarking-tool/blob/"
                "39ce6b9c3572bf620a60c288c5b473462c5bc2eb/fmbench/configs/pricing.yml"
            ),
            as_of="2025-01-15",
            note=(
                "SageMaker instance-hour table in AWS's own FMBench sample (quotes "
                "https://aws.amazon.com/sagemaker/pricing/); last price edit 2025-01-15"
            ),
        ),
        "quoted": PriceSource(
            url="https://aws.amazon.com/sagemaker/pricing/",
            as_of="2026-11-25",
            note=(
                "the same figure, to the cent, in at least two independent public repositories "
                "citing this page or the AWS Price List API (AmazonSageMaker); collected 2026-11-25"
            ),
        ),
    }
)

# Specs: vCPUs, memory, accelerator count, local NVMe and EFA are EC2 DescribeInstanceTypes values
# as generated into Karpenter's instance-type reference (first URL); p3 and p6e-gb200, absent
# there, come from the instances.vantage.sh data in tsaol/aws-gpu (second URL), which also gives the
# per-device accelerator memory AWS documents (the EC2 API reports GDDR parts a little lower:
# 22888 MiB for A10G and L4, 45776 MiB for L40S). B300's 268 GB is AWS's own figure for P6-B300.
SPEC_SOURCES: tuple[str, ...] = (
    "https://github.com/aws/karpenter-provider-aws/blob/692ccdd06/website/content/en/preview/reference/instance-types.md",
    "https://github.com/tsaol/aws-gpu/tree/77fcd9f/data",
)


@dataclass(frozen=True)
class InstanceType:
    """One ml.* instance type: what it has, what it costs, and which SageMaker APIs accept it."""

    name: str
    family: str
    accelerator: Accelerator
    accelerator_model: str | None
    accelerator_count: int  # GPUs or Neuron devices (chips); 0 on CPU types
    accelerator_memory_gib: int  # total across all accelerators
    vcpus: int
    memory_gib: float
    efa: bool  # EC2 reports Elastic Fabric Adapter support for this size
    # Instance-store NVMe: SageMaker encrypts it in hardware and refuses a customer KMS volume key
    # for training jobs, endpoint configs and transform jobs on these types.
    local_nvme: bool
    price_usd_per_hour: float | None
    price_source: PriceSource | None

    @property
    def runtime(self) -> Runtime:
        return _RUNTIME[self.accelerator]

    @property
    def roles(self) -> frozenset[Role]:
        """The roles whose SageMaker API accepts this type, per botocore's service model."""
        return frozenset(role for role in Role if self.name in valid_types(role))


@dataclass(frozen=True)
class _Size:
    size: str
    devices: int
    vcpus: int
    memory_gib: float
    efa: bool = False
    price: float | None = None
    source: str | None = None  # key of PRICE_SOURCES


@dataclass(frozen=True)
class _Family:
    accelerator: Accelerator
    model: str | None
    device_memory_gib: int  # per accelerator
    local_nvme: bool
    sizes: tuple[_Size, ...]


_NONE, _NV, _INF, _TRN = (
    Accelerator.NONE,
    Accelerator.NVIDIA,
    Accelerator.INFERENTIA,
    Accelerator.TRAINIUM,
)
_FMB, _QUO = "fmbench", "quoted"
_S = _Size

# The one table. Sizes are those botocore 1.44.8 lists for the family in any of the four APIs.
# Prices not given are None because no quote met the PRICE_SOURCES bar; the family comment says
# which ones.
_FAMILIES: Mapping[str, _Family] = MappingProxyType(
    {
        # t3: the quoted $0.05/0.10/0.20/0.399 are Studio-notebook rates; t3 here is training and
        # processing only and no quote of those rates was found, so all None.
        "t3": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("medium", 0, 2, 4),
                _S("large", 0, 2, 8),
                _S("xlarge", 0, 4, 16),
                _S("2xlarge", 0, 8, 32),
            ),
        ),
        # m5: 12xlarge and 24xlarge None (the only quotes found are in tables that get other rates wrong).
        "m5": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 8, price=0.115, source=_QUO),
                _S("xlarge", 0, 4, 16, price=0.23, source=_FMB),
                _S("2xlarge", 0, 8, 32, price=0.461, source=_QUO),
                _S("4xlarge", 0, 16, 64, price=0.922, source=_QUO),
                _S("12xlarge", 0, 48, 192),
                _S("24xlarge", 0, 96, 384),
            ),
        ),
        # m5d and c5d: m5 and c5 with instance-store NVMe; real-time endpoints only (SageMaker lists
        # them for CreateEndpointConfig alone). An endpoint config on them needs no KMS key, which the
        # guardrail allows only on local-NVMe types. No quote, all None.
        "m5d": _Family(
            _NONE,
            None,
            0,
            True,
            (
                _S("large", 0, 2, 8),
                _S("xlarge", 0, 4, 16),
                _S("2xlarge", 0, 8, 32),
                _S("4xlarge", 0, 16, 64),
                _S("12xlarge", 0, 48, 192),
                _S("24xlarge", 0, 96, 384),
            ),
        ),
        "c5d": _Family(
            _NONE,
            None,
            0,
            True,
            (
                _S("large", 0, 2, 4),
                _S("xlarge", 0, 4, 8),
                _S("2xlarge", 0, 8, 16),
                _S("4xlarge", 0, 16, 32),
                _S("9xlarge", 0, 36, 72),
                _S("18xlarge", 0, 72, 144),
            ),
        ),
        # m6i, m7i, c6i, r6i: no SageMaker quote found for any size, all None.
        "m6i": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 8),
                _S("xlarge", 0, 4, 16),
                _S("2xlarge", 0, 8, 32),
                _S("4xlarge", 0, 16, 64),
                _S("8xlarge", 0, 32, 128),
                _S("12xlarge", 0, 48, 192),
                _S("16xlarge", 0, 64, 256),
                _S("24xlarge", 0, 96, 384),
                _S("32xlarge", 0, 128, 512, efa=True),
            ),
        ),
        "m7i": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 8),
                _S("xlarge", 0, 4, 16),
                _S("2xlarge", 0, 8, 32),
                _S("4xlarge", 0, 16, 64),
                _S("8xlarge", 0, 32, 128),
                _S("12xlarge", 0, 48, 192),
                _S("16xlarge", 0, 64, 256),
                _S("24xlarge", 0, 96, 384),
                _S("48xlarge", 0, 192, 768, efa=True),
            ),
        ),
        # c5: 18xlarge None (no quote found).
        "c5": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 4, price=0.102, source=_QUO),
                _S("xlarge", 0, 4, 8, price=0.204, source=_FMB),
                _S("2xlarge", 0, 8, 16, price=0.408, source=_FMB),
                _S("4xlarge", 0, 16, 32, price=0.816, source=_FMB),
                _S("9xlarge", 0, 36, 72, price=1.836, source=_QUO),
                _S("18xlarge", 0, 72, 144),
            ),
        ),
        "c6i": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 4),
                _S("xlarge", 0, 4, 8),
                _S("2xlarge", 0, 8, 16),
                _S("4xlarge", 0, 16, 32),
                _S("8xlarge", 0, 32, 64),
                _S("12xlarge", 0, 48, 96),
                _S("16xlarge", 0, 64, 128),
                _S("24xlarge", 0, 96, 192),
                _S("32xlarge", 0, 128, 256, efa=True),
            ),
        ),
        # c7i: only xlarge quoted.
        "c7i": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 4),
                _S("xlarge", 0, 4, 8, price=0.214, source=_FMB),
                _S("2xlarge", 0, 8, 16),
                _S("4xlarge", 0, 16, 32),
                _S("8xlarge", 0, 32, 64),
                _S("12xlarge", 0, 48, 96),
                _S("16xlarge", 0, 64, 128),
                _S("24xlarge", 0, 96, 192),
                _S("48xlarge", 0, 192, 384, efa=True),
            ),
        ),
        # r5: the quotes found are Studio-notebook or us-east-2 rates, so all None.
        "r5": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 16),
                _S("xlarge", 0, 4, 32),
                _S("2xlarge", 0, 8, 64),
                _S("4xlarge", 0, 16, 128),
                _S("8xlarge", 0, 32, 256),
                _S("12xlarge", 0, 48, 384),
                _S("16xlarge", 0, 64, 512),
                _S("24xlarge", 0, 96, 768),
            ),
        ),
        "r6i": _Family(
            _NONE,
            None,
            0,
            False,
            (
                _S("large", 0, 2, 16),
                _S("xlarge", 0, 4, 32),
                _S("2xlarge", 0, 8, 64),
                _S("4xlarge", 0, 16, 128),
                _S("8xlarge", 0, 32, 256),
                _S("12xlarge", 0, 48, 384),
                _S("16xlarge", 0, 64, 512),
                _S("24xlarge", 0, 96, 768),
                _S("32xlarge", 0, 128, 1024, efa=True),
            ),
        ),
        "g4dn": _Family(
            _NV,
            "T4",
            16,
            True,
            (
                _S("xlarge", 1, 4, 16, price=0.7364, source=_FMB),
                _S("2xlarge", 1, 8, 32, price=0.94, source=_FMB),
                _S("4xlarge", 1, 16, 64, price=1.505, source=_FMB),
                _S("8xlarge", 1, 32, 128, efa=True, price=2.72, source=_FMB),
                _S("12xlarge", 4, 48, 192, efa=True, price=4.89, source=_FMB),
                _S("16xlarge", 1, 64, 256, efa=True, price=5.44, source=_FMB),
            ),
        ),
        "g5": _Family(
            _NV,
            "A10G",
            24,
            True,
            (
                _S("xlarge", 1, 4, 16, price=1.4084, source=_FMB),
                _S("2xlarge", 1, 8, 32, price=1.515, source=_FMB),
                _S("4xlarge", 1, 16, 64, price=2.03, source=_FMB),
                _S("8xlarge", 1, 32, 128, efa=True, price=3.06, source=_FMB),
                _S("12xlarge", 4, 48, 192, efa=True, price=7.09, source=_FMB),
                _S("16xlarge", 1, 64, 256, efa=True, price=5.12, source=_QUO),
                _S("24xlarge", 4, 96, 384, efa=True, price=10.18, source=_FMB),
                _S("48xlarge", 8, 192, 768, efa=True, price=20.36, source=_FMB),
            ),
        ),
        "g6": _Family(
            _NV,
            "L4",
            24,
            True,
            (
                _S("xlarge", 1, 4, 16, price=1.1267, source=_QUO),
                _S("2xlarge", 1, 8, 32, price=1.222, source=_FMB),
                _S("4xlarge", 1, 16, 64, price=1.654, source=_QUO),
                _S("8xlarge", 1, 32, 128, efa=True, price=2.518, source=_QUO),
                _S("12xlarge", 4, 48, 192, efa=True, price=5.752, source=_FMB),
                _S("16xlarge", 1, 64, 256, efa=True, price=4.246, source=_FMB),
                _S("24xlarge", 4, 96, 384, efa=True, price=8.344, source=_FMB),
                _S("48xlarge", 8, 192, 768, efa=True, price=16.688, source=_FMB),
            ),
        ),
        # g6e: 16xlarge, 24xlarge and 48xlarge None (no quote, or a single one).
        "g6e": _Family(
            _NV,
            "L40S",
            48,
            True,
            (
                _S("xlarge", 1, 4, 32, price=2.61, source=_QUO),
                _S("2xlarge", 1, 8, 64, price=2.80, source=_QUO),
                _S("4xlarge", 1, 16, 128, price=3.76, source=_QUO),
                _S("8xlarge", 1, 32, 256, efa=True, price=5.6607, source=_QUO),
                _S("12xlarge", 4, 48, 384, efa=True, price=13.12, source=_QUO),
                _S("16xlarge", 1, 64, 512, efa=True),
                _S("24xlarge", 4, 96, 768, efa=True),
                _S("48xlarge", 8, 192, 1536, efa=True),
            ),
        ),
        # g7 (launched June 2026) and g7e: the quotes found disagree with one another, all None.
        "g7": _Family(
            _NV,
            "RTX PRO 4500 Blackwell",
            32,
            True,
            (
                _S("2xlarge", 1, 8, 32),
                _S("4xlarge", 1, 16, 64),
                _S("8xlarge", 1, 32, 128, efa=True),
                _S("12xlarge", 2, 48, 192, efa=True),
                _S("24xlarge", 4, 96, 384, efa=True),
                _S("48xlarge", 8, 192, 768, efa=True),
            ),
        ),
        "g7e": _Family(
            _NV,
            "RTX PRO 6000 Blackwell",
            96,
            True,
            (
                _S("2xlarge", 1, 8, 64),
                _S("4xlarge", 1, 16, 128),
                _S("8xlarge", 1, 32, 256, efa=True),
                _S("12xlarge", 2, 48, 512, efa=True),
                _S("24xlarge", 4, 96, 1024, efa=True),
                _S("48xlarge", 8, 192, 2048, efa=True),
            ),
        ),
        "p3": _Family(
            _NV,
            "V100",
            16,
            False,
            (
                _S("2xlarge", 1, 8, 61, price=3.825, source=_FMB),
                _S("8xlarge", 4, 32, 244, price=14.688, source=_QUO),
                _S("16xlarge", 8, 64, 488, price=28.152, source=_QUO),
            ),
        ),
        # p3dn: the quotes found disagree ($35.894 vs $35.86), None.
        "p3dn": _Family(_NV, "V100", 32, True, (_S("24xlarge", 8, 96, 768, efa=True),)),
        # p4d, p5: FMBench's $37.688 and $113.068 predate AWS's June-2025 cut of P4/P5 prices and
        # no later SageMaker quote was found, so None rather than a figure that may be 45% high.
        # p4de, p5e, p5en, p6-*: no SageMaker on-demand quote found, None.
        "p4d": _Family(_NV, "A100", 40, True, (_S("24xlarge", 8, 96, 1152, efa=True),)),
        "p4de": _Family(_NV, "A100", 80, True, (_S("24xlarge", 8, 96, 1152, efa=True),)),
        "p5": _Family(
            _NV,
            "H100",
            80,
            True,
            (_S("4xlarge", 1, 16, 256, efa=True), _S("48xlarge", 8, 192, 2048, efa=True)),
        ),
        "p5e": _Family(_NV, "H200", 141, True, (_S("48xlarge", 8, 192, 2048, efa=True),)),
        "p5en": _Family(_NV, "H200", 141, True, (_S("48xlarge", 8, 192, 2048, efa=True),)),
        "p6-b200": _Family(_NV, "B200", 179, True, (_S("48xlarge", 8, 192, 2048, efa=True),)),
        "p6-b300": _Family(_NV, "B300", 268, True, (_S("48xlarge", 8, 192, 4096, efa=True),)),
        # One Grace-Blackwell node of a P6e UltraServer: 2 Grace CPUs (arm64) and 4 Blackwell GPUs.
        "p6e-gb200": _Family(_NV, "GB200", 185, True, (_S("36xlarge", 4, 144, 960, efa=True),)),
        # inf1: the quotes found disagree, None. Inferentia (v1) has 8 GiB per chip.
        "inf1": _Family(
            _INF,
            "Inferentia",
            8,
            False,
            (
                _S("xlarge", 1, 4, 8),
                _S("2xlarge", 1, 8, 16),
                _S("6xlarge", 4, 24, 48),
                _S("24xlarge", 16, 96, 192, efa=True),
            ),
        ),
        "inf2": _Family(
            _INF,
            "Inferentia2",
            32,
            False,
            (
                _S("xlarge", 1, 4, 16, price=0.99, source=_FMB),
                _S("8xlarge", 1, 32, 128, price=2.36, source=_FMB),
                _S("24xlarge", 6, 96, 384, price=7.79, source=_FMB),
                _S("48xlarge", 12, 192, 768, price=15.58, source=_FMB),
            ),
        ),
        # trn1.2xlarge, trn1n, trn2: no SageMaker quote found, None.
        "trn1": _Family(
            _TRN,
            "Trainium",
            32,
            True,
            (
                _S("2xlarge", 1, 8, 32),
                _S("32xlarge", 16, 128, 512, efa=True, price=28.497, source=_FMB),
            ),
        ),
        "trn1n": _Family(_TRN, "Trainium", 32, True, (_S("32xlarge", 16, 128, 512, efa=True),)),
        "trn2": _Family(_TRN, "Trainium2", 96, True, (_S("48xlarge", 16, 192, 2048, efa=True),)),
    }
)


def _build_catalog() -> Mapping[str, InstanceType]:
    entries: dict[str, InstanceType] = {}
    for family, spec in _FAMILIES.items():
        for row in spec.sizes:
            name = f"ml.{family}.{row.size}"
            entries[name] = InstanceType(
                name=name,
                family=family,
                accelerator=spec.accelerator,
                accelerator_model=spec.model,
                accelerator_count=row.devices,
                accelerator_memory_gib=row.devices * spec.device_memory_gib,
                vcpus=row.vcpus,
                memory_gib=row.memory_gib,
                efa=row.efa,
                local_nvme=spec.local_nvme,
                price_usd_per_hour=row.price,
                price_source=PRICE_SOURCES[row.source] if row.source else None,
            )
    return MappingProxyType(entries)


CATALOG: Mapping[str, InstanceType] = _build_catalog()

# Up to three of these, in this order, illustrate a "not a valid type" error when the role accepts them.
_EXAMPLES = (
    "ml.m5.xlarge",
    "ml.g5.xlarge",
    "ml.inf2.xlarge",
    "ml.trn1.32xlarge",
    "ml.p4d.24xlarge",
)


@functools.lru_cache(maxsize=1)
def _sagemaker_shapes() -> Mapping[str, Any]:
    """The shapes of botocore's bundled SageMaker model (its newest API version).

    Read straight from the package's data directory in about 30 ms: a botocore session and its
    ServiceModel take ten times that, on every synth. The loader is the fallback for another layout.
    """
    import gzip
    import json

    import botocore

    versions = sorted((Path(botocore.__file__).parent / "data" / "sagemaker").glob("*/service-2.json*"))
    shapes: Mapping[str, Any]
    if versions:
        raw = versions[-1].read_bytes()
        shapes = json.loads(gzip.decompress(raw) if versions[-1].suffix == ".gz" else raw)["shapes"]
        return shapes
    import botocore.loaders

    shapes = botocore.loaders.create_loader().load_service_model("sagemaker", "service-2")["shapes"]
    return shapes


@functools.cache
def _enum(shape: str) -> frozenset[str]:
    return frozenset(_sagemaker_shapes()[shape]["enum"])


def valid_types(role: Role) -> frozenset[str]:
    """Every instance type the SageMaker API behind `role` accepts, per botocore's service model."""
    return _enum(_ROLE_API[Role(role)][1])


def _show(name: object) -> str:
    # Keep messages on one line, and visible, even when the bad value is empty, holds whitespace or
    # is not a string.
    if isinstance(name, str) and name and name.isprintable() and " " not in name:
        return name
    return repr(name)


def _families(role: Role | None = None) -> str:
    allowed = valid_types(role) if role is not None else None
    names = sorted({t.family for t in CATALOG.values() if allowed is None or t.name in allowed})
    return ", ".join(names)


def _not_in_catalog(name: object, role: Role | None = None) -> str:
    return (
        f"{_show(name)} is not in the platform's instance catalog (infra/catalog/instances.py); "
        f"supported families: {_families(role)}"
    )


def get(name: str) -> InstanceType:
    try:
        return CATALOG[name]
    except (KeyError, TypeError):
        raise UnknownInstanceType(_not_in_catalog(name)) from None


def validate(name: str, role: Role) -> InstanceType:
    """The catalog entry for `name`, if SageMaker accepts it for `role` and the catalog has it."""
    role = Role(role)
    allowed = valid_types(role)
    if not isinstance(name, str) or name not in allowed:
        api = _ROLE_API[role][0]
        sample = ", ".join([t for t in _EXAMPLES if t in allowed][:3])
        raise InstanceTypeError(
            f"{_show(name)} is not a valid SageMaker instance type for {role.value} ({api}); "
            f"e.g. {sample}, ... ({len(allowed)} accepted)"
        )
    if name not in CATALOG:
        raise InstanceTypeError(_not_in_catalog(name, role))
    return CATALOG[name]


def has_local_nvme(name: str) -> bool:
    """Whether `name` has instance-store NVMe, where SageMaker refuses a customer KMS volume key.

    Decided per family, like local_nvme_patterns(), so a size outside the catalog (e.g. a new one)
    of a known family gets the same answer the IAM guardrail gives it; an unknown family raises.
    """
    if not isinstance(name, str):
        raise UnknownInstanceType(_not_in_catalog(name))
    if name in CATALOG:
        return CATALOG[name].local_nvme
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "ml" and parts[1] in _FAMILIES:
        return _FAMILIES[parts[1]].local_nvme
    raise UnknownInstanceType(_not_in_catalog(name))


def local_nvme_families() -> tuple[str, ...]:
    return tuple(sorted(f for f, spec in _FAMILIES.items() if spec.local_nvme))


def local_nvme_patterns() -> tuple[str, ...]:
    """IAM StringLike patterns ("ml.g5.*") matching every local-NVMe type of the catalog's families.

    "." is literal in StringLike, so "ml.p5.*" does not match "ml.p5e.48xlarge".
    """
    return tuple(f"ml.{family}.*" for family in local_nvme_families())


def cheapest(
    role: Role,
    min_accelerator_memory_gib: float = 0,
    accelerator: Accelerator | None = None,
) -> InstanceType:
    """The lowest-priced catalog entry valid for `role` with enough total accelerator memory.

    Entries without a price are skipped; ties go to the alphabetically first name.
    """
    role = Role(role)
    allowed = valid_types(role)
    fits = [
        t
        for t in CATALOG.values()
        if t.price_usd_per_hour is not None
        and t.name in allowed
        and t.accelerator_memory_gib >= min_accelerator_memory_gib
        and (accelerator is None or t.accelerator == accelerator)
    ]
    if fits:
        return min(fits, key=lambda t: (t.price_usd_per_hour, t.name))
    kind = f"{Accelerator(accelerator).value} " if accelerator is not None else ""
    raise InstanceTypeError(
        f"no priced instance type in the catalog is valid for {role.value} ({_ROLE_API[role][0]}) "
        f"with >= {min_accelerator_memory_gib:g} GiB of {kind}accelerator memory"
    )
