"""API error responses in one shape: ``{"error": code, "message": text, "field"?: name}``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from smartzone.domain.errors import ServiceError
from smartzone.domain.lifecycle import Forbidden, InvalidField, NotFound


class ApiError(ServiceError):
    """A refusal by the API layer itself (the domain's refusals share the same base)."""


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class ConflictError(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


# The same refusals as the lifecycle's: one class each, under the names the routes use.
NotFoundError = NotFound
ForbiddenError = Forbidden
Unprocessable = InvalidField


def error_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False),
    )
