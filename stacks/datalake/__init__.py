"""The DataLake stack and its parts: buckets, governance, catalog, Glue jobs, ETL workflow and access."""

from stacks.datalake.inputs import DataLakeInputs
from stacks.datalake.stack import DataLakeStack

__all__ = ["DataLakeInputs", "DataLakeStack"]
