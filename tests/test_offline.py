"""The suite is offline: an AWS call that escapes the mocks fails at once instead of hanging."""

from __future__ import annotations

import time

import boto3
import pytest


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_unmocked_aws_call_fails_fast():
    client = boto3.client(
        "sagemaker",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # dummy credentials: the call must never leave the machine
    )
    start = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)socket"):
        client.list_pipelines()
    assert time.monotonic() - start < 5
