"""The SageMaker condition keys a Create* request carries, from the request itself.

CloudFormation's SageMaker properties and a pipeline step's arguments are the API's request
shapes, so one walk serves both: VPC subnets and security groups, network isolation,
inter-container encryption, output and volume KMS keys, instance types (the keys the guardrail
denies on). A key the request does not set is absent, as it is in AWS's request context.
"""

from __future__ import annotations

from typing import Any

# Request field -> condition key, wherever the field appears.
FIELDS = {
    "Subnets": "sagemaker:VpcSubnets",
    "SecurityGroupIds": "sagemaker:VpcSecurityGroupIds",
    "EnableNetworkIsolation": "sagemaker:NetworkIsolation",
    "EnableInterContainerTrafficEncryption": "sagemaker:InterContainerTrafficEncryption",
    "VolumeKmsKeyId": "sagemaker:VolumeKmsKey",
    "InstanceType": "sagemaker:InstanceTypes",
}
# Containers whose KmsKeyId is the output key.
OUTPUT_CONFIGS = ("OutputDataConfig", "ProcessingOutputConfig", "TransformOutput", "MonitoringOutputConfig")
LISTS = {"sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds", "sagemaker:InstanceTypes"}


def _walk(value: Any, parent: str, found: dict[str, Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _walk(item, parent, found)
        return
    if not isinstance(value, dict):
        return
    for field, item in value.items():
        key = FIELDS.get(field)
        if key is not None:
            _collect(found, key, item)
        elif field == "KmsKeyId" and (parent in OUTPUT_CONFIGS or parent.endswith("OutputConfig")):
            _collect(found, "sagemaker:OutputKmsKey", item)
        _walk(item, field, found)


def _collect(found: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, bool):
        found[key] = "true" if value else "false"
    elif key in LISTS:
        values = value if isinstance(value, list) else [value]
        found[key] = sorted({*found.get(key, []), *(str(v) for v in values)})
    else:
        found[key] = str(value)


def condition_keys(kind: str, request: dict[str, Any]) -> dict[str, Any]:
    """The condition keys of a SageMaker Create* request (`kind`: a resource type or an API operation)."""
    found: dict[str, Any] = {}
    _walk(request, "", found)
    if kind in ("AWS::SageMaker::EndpointConfig", "CreateEndpointConfig") and "KmsKeyId" in request:
        found["sagemaker:VolumeKmsKey"] = str(request["KmsKeyId"])
    # The key ARNs are also in the keys that replaced these (the data set marks these deprecated).
    for deprecated in ("sagemaker:VolumeKmsKey", "sagemaker:OutputKmsKey"):
        if deprecated in found:
            found[deprecated + "Arn"] = found[deprecated]
    return found
