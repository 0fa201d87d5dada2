"""The pipeline's execution parameters: why it runs, the approval status it registers with, and its input data."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker.workflow.parameters import ParameterString

from pipelines.definition import CURATED_BUCKET, PipelineSpec


@dataclass(frozen=True)
class Parameters:
    """The parameters an execution may set, each with its default."""

    trigger: ParameterString
    approval: ParameterString
    input_data: ParameterString

    @property
    def all(self) -> list[ParameterString]:
        """In the order the definition lists them."""
        return [self.trigger, self.approval, self.input_data]


def parameters(spec: PipelineSpec) -> Parameters:
    return Parameters(
        trigger=ParameterString(name="TriggerReason", default_value="manual"),
        approval=ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval"),
        input_data=ParameterString(name="InputData", default_value=f"s3://{CURATED_BUCKET}/{spec.dataset}/"),
    )
