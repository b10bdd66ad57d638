"""API error responses in one shape: ``{"error": code, "message": text, "field"?: name}``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from smartzone.domain.errors import ServiceError


class ApiError(ServiceError):
    """A refusal by the API layer itself (the domain's refusals share the same base)."""


class BadRequest(ApiError):
    status = 400
    code = "bad_request"


class Unprocessable(ApiError):
    status = 422
    code = "invalid_field"


class NotFoundError(ApiError):
    status = 404
    code = "not_found"


class ForbiddenError(ApiError):
    status = 403
    code = "forbidden"


class ConflictError(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


def error_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False),
    )
