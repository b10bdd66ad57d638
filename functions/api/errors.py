"""API error responses in one shape: ``{"error": code, "message": text, "field"?: name}``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


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
