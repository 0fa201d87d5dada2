"""Configs shared by several test modules (each distinct config is synthesized once per session)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from infra.config import PlatformConfig, parse_config

ROOT = Path(__file__).resolve().parent.parent


def dev_data() -> dict:
    return yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())


def sandbox_config() -> PlatformConfig:
    """A throwaway environment: data may be destroyed, and egress goes through a NAT gateway."""
    data = copy.deepcopy(dev_data())
    data.update(environment="sandbox", destroy_data_on_delete=True)
    data["network"].update(egress="controlled", max_azs=2, nat_gateways=1)
    # No Training stack: its pipeline definition is cached for the shipped environments only.
    data["training"] = None
    # Serving, its monitors and retraining all work on what the training stack registers.
    data.update(serving=None, monitoring=None, retraining=None)
    return parse_config(data, "sandbox")


def model_monitor_config() -> PlatformConfig:
    """prod on the model_monitor engine, with the explainability monitor: the loop of accounts with Model Monitor."""
    data = yaml.safe_load((ROOT / "config" / "prod.yaml").read_text())
    # Another environment name: its pipeline definition is built, not the stored one of prod.
    data["environment"] = "prodmm"
    data["monitoring"]["engine"] = "model_monitor"
    data["monitoring"]["explainability"] = {
        "schedule": "daily",
        "instance_type": "ml.g6.xlarge",  # the registered (CUDA) image: a GPU shadow
        "isolation_exception": (
            "Clarify calls the SageMaker API to start, invoke and remove a shadow endpoint of the served model; "
            "the job stays in the isolated subnets and reaches AWS only through the VPC endpoints."
        ),
    }
    return parse_config(data, "prod-model-monitor")
