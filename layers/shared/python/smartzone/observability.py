"""One place for Powertools Logger, Metrics and Tracer (structured JSON logs, EMF metrics).

Where tracing is off (the China regions have no X-Ray for Lambda, and tests), a no-op tracer
stands in: creating Powertools' Tracer imports the X-Ray SDK (~300 ms of cold start) even when
it is disabled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = "smartzone"
NAMESPACE = "SmartZone"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class NoopTracer:
    """The decorators of Powertools' Tracer, doing nothing."""

    def capture_lambda_handler(self, handler: Callable[..., Any] | None = None, **_: Any) -> Any:
        return handler if handler is not None else (lambda fn: fn)

    def capture_method(self, method: Callable[..., Any] | None = None, **_: Any) -> Any:
        return method if method is not None else (lambda fn: fn)

    def put_annotation(self, key: str, value: Any) -> None:
        return None


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in {"true", "1"}


def _make_tracer() -> Any:
    if not tracing_enabled():
        return NoopTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


tracer = _make_tracer()
