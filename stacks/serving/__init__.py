"""The Serving stack, composed of one module per part (endpoint, monitors, promotion, admission)."""

from stacks.serving.context import ServingInputs
from stacks.serving.stack import ServingStack

__all__ = ["ServingInputs", "ServingStack"]
