"""API Lambda entry point (handler string ``api.handler.handler``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from smartzone.observability import logger, metrics, tracer

from .app import app, authenticate_event


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refused = authenticate_event(event)
    if refused is not None:
        return refused
    response: dict[str, Any] = app.resolve(event, context)
    return response
