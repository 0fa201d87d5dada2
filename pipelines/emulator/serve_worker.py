"""Serves one request with sagemaker-inference's handler service, as a worker of the inference container does.

Run as a script (`python serve_worker.py CONTENT_TYPE ACCEPT < body`) with SAGEMAKER_BASE_DIR and
PYTHONPATH set as the PyTorch inference container sets them (model in <base>/model, its code/ on the
path); prints {"status", "content_type", "body"} as JSON. Standard library and sagemaker-inference only.
"""

from __future__ import annotations

import json
import sys
from typing import Any


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class Context:
    """The model server's request context, as far as sagemaker-inference's Transformer reads and sets it."""

    def __init__(self, model_dir: str, headers: dict[str, str]) -> None:
        self.system_properties: dict[str, Any] = {"model_dir": model_dir, "gpu_id": None}
        self.request_processor = [_RequestProcessor(headers)]
        self.status = (200, "OK")
        self.content_type = ""

    def set_response_status(self, code: int = 200, phrase: str = "") -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, index: int, value: str) -> None:
        self.content_type = value if index == 0 else self.content_type


def main() -> int:
    # sagemaker-inference publishes no type information.
    from sagemaker_inference import environment  # type: ignore[import-untyped]
    from sagemaker_inference.default_handler_service import DefaultHandlerService  # type: ignore[import-untyped]

    content_type, accept = sys.argv[1], sys.argv[2]
    context = Context(environment.model_dir, {"Content-Type": content_type, "Accept": accept})
    service = DefaultHandlerService()
    service.initialize(context)
    body = sys.stdin.buffer.read()
    (response,) = service.handle([{"body": body}], context)
    text = response.decode() if isinstance(response, (bytes, bytearray)) else str(response)
    print(json.dumps({"status": context.status[0], "content_type": context.content_type, "body": text}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
