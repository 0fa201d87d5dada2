"""The parts of the lake that its Glue jobs and access model build on."""

from __future__ import annotations

from dataclasses import dataclass

from stacks.datalake.buckets import LakeBuckets
from stacks.datalake.catalog import LakeCatalog
from stacks.datalake.governance import LakeGovernance


@dataclass(frozen=True)
class LakeParts:
    """The zone buckets, the Lake Formation governance and the Glue catalog of one lake."""

    buckets: LakeBuckets
    governance: LakeGovernance
    catalog: LakeCatalog
