"""The HTTP API: one Powertools resolver with a Router per resource, all under ``/v1``.

Errors follow DESIGN.md: 400/422 naming the field, 401 without a valid caller, 404 for anything out
of the caller's reach, 403 for a role that may not act, 409 for illegal or stale transitions.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from smartzone.domain.errors import ServiceError
from smartzone.domain.identity import Caller, InvalidCaller
from smartzone.observability import logger
from smartzone.repositories.cursor import InvalidCursor

from .context import caller_of, check_body_size
from .errors import error_response
from .routes import (
    audit,
    cameras,
    catalogue,
    devices,
    forms,
    grid_boundaries,
    grids,
    notifications,
    population,
    reports,
    residents,
    sharing,
    stats,
    subjects,
    uploads,
    workorders,
)
from .routes import data as data_lake
from .routes import exports as form_exports

API_TITLE = "SmartZone API"
API_VERSION = "1.0.0"

PUBLIC_PATHS = frozenset({"/v1/openapi.json"})

app = APIGatewayRestResolver(
    enable_validation=True,
    cors=CORSConfig(allow_origin=os.environ.get("CORS_ORIGIN", "*"), max_age=600),
)


def _authenticate(resolver: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Every route but the OpenAPI document needs a caller with a role (401 otherwise)."""
    if resolver.current_event.path not in PUBLIC_PATHS:
        caller_of(resolver)
        check_body_size(resolver)
    return next_middleware(resolver)


app.use(middlewares=[_authenticate])
app.include_router(workorders.router, prefix="/v1/workorders")
app.include_router(reports.router, prefix="/v1/reports")
app.include_router(notifications.router, prefix="/v1/notifications")
app.include_router(devices.router, prefix="/v1/devices")
app.include_router(grids.router, prefix="/v1/grids")
app.include_router(grid_boundaries.router, prefix="/v1/grids")
app.include_router(cameras.router, prefix="/v1/cameras")
app.include_router(stats.router, prefix="/v1/stats")
app.include_router(uploads.router, prefix="/v1/uploads")
app.include_router(residents.router, prefix="/v1/residents")
app.include_router(population.router, prefix="/v1/population")
app.include_router(audit.router, prefix="/v1/audit")
app.include_router(forms.router, prefix="/v1/forms")
app.include_router(form_exports.router, prefix="/v1/exports")
app.include_router(subjects.router, prefix="/v1/subjects")
app.include_router(catalogue.router, prefix="/v1/catalogue")
app.include_router(sharing.router, prefix="/v1/sharing")
app.include_router(data_lake.router, prefix="/v1/data")


@app.exception_handler(ServiceError)
def _refused(exc: ServiceError) -> Response[str]:
    """Domain and API refusals alike: their own status, code, message and field."""
    return error_response(exc.status, exc.body())


@app.exception_handler(InvalidCaller)
def _unauthenticated(exc: InvalidCaller) -> Response[str]:
    return error_response(401, {"error": "unauthorized", "message": "a valid token is required"})


@app.exception_handler(InvalidCursor)
def _bad_cursor(exc: InvalidCursor) -> Response[str]:
    return error_response(400, {"error": "invalid_cursor", "message": str(exc), "field": "cursor"})


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    """Validation errors in the common shape, naming the first bad field (all of them in ``details``)."""
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or "body"
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
        for e in errors
    ]
    return error_response(
        422,
        {
            "error": "invalid_field",
            "message": f"{field}: {first.get('msg', 'invalid')}",
            "field": field,
            "details": details,
        },
    )


def authenticate_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """401 before anything else (body validation included) for a request without a caller."""
    if event.get("path") in PUBLIC_PATHS or event.get("httpMethod") == "OPTIONS":
        return None
    raw = (event.get("requestContext") or {}).get("authorizer") or {}
    try:
        caller = Caller.from_claims(raw) if raw else None
    except InvalidCaller:
        caller = None
    if caller is not None and caller.has_any_role:
        return None
    return {
        "statusCode": 401,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": "unauthorized", "message": "a valid token is required"}),
        "isBase64Encoded": False,
    }


@app.not_found
def _not_found(exc: Exception) -> Response[str]:
    return error_response(404, {"error": "not_found", "message": "no such resource"})


def openapi_document() -> dict[str, object]:
    """The generated OpenAPI document (committed as docs/openapi.json; checked current in tests)."""
    from .openapi import document_for

    return document_for(app, title=API_TITLE, version=API_VERSION)


@app.get("/v1/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=json.dumps(openapi_document())
    )


__all__ = ["app", "logger", "openapi_document"]
