"""The API's OpenAPI document: Powertools' generated schema plus the parts every route shares.

Powertools generates paths, parameters, bodies and responses from the routes and their pydantic
models. On top of that, this module adds what holds for every operation and so is declared once:

- the bearer-JWT security scheme (the ID token of the Cognito user pool, or of the district's OIDC
  provider behind the TOKEN authorizer), required globally; ``servers`` ``/``;
- the error responses of DESIGN.md in one ``Error`` shape (``{"error", "message", "field"?}``):
  400, 401, 403 and 404 on every operation, 409 and 413 on those with a request body, unless
  the route documents them itself; 422 is either Powertools' validation error or ``Error``;
- Powertools' ``ValidationError`` schema corrected to what it sends (``loc`` and ``type``; it
  declares ``msg`` required but never sends it).

``python -m tools.openapi`` writes the result to ``docs/openapi.json``; tests check it is current.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

SECURITY_SCHEME = "bearerAuth"
ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "title": "Error code"},
        "message": {"type": "string", "title": "Message"},
        "field": {"type": "string", "title": "The field at fault"},
    },
}
EVERY_OPERATION_ERRORS = {
    "400": "Malformed request (e.g. invalid JSON, a bad cursor); names the field",
    "401": "No valid token",
    "403": "The caller's role may not do this to a resource it can see",
    "404": "No such resource, or outside the caller's reach",
}
BODY_OPERATION_ERRORS = {
    "409": "Illegal transition or stale version",
    "413": "Request body too large",
}
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_REF_PREFIX = "#/components/schemas/"


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"{_REF_PREFIX}{ERROR_SCHEMA_NAME}"}}},
    }


def _fix_validation_schemas(schemas: dict[str, Any]) -> None:
    validation = schemas.get("ValidationError")
    if isinstance(validation, dict):
        properties = validation.setdefault("properties", {})
        properties.setdefault("msg", {"type": "string", "title": "Message"})
        validation["required"] = [r for r in validation.get("required", []) if r != "msg"]
    for name in ("HTTPValidationError", "ResponseValidationError"):
        envelope = schemas.get(name)
        if isinstance(envelope, dict):
            envelope.setdefault("properties", {}).setdefault(
                "statusCode", {"type": "integer", "title": "Status code"}
            )


def _add_error_responses(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    errors = dict(EVERY_OPERATION_ERRORS)
    if "requestBody" in operation:
        errors.update(BODY_OPERATION_ERRORS)
    for status, description in errors.items():
        responses.setdefault(status, _error_response(description))
    validation = responses.get("422")
    error_ref = {"$ref": f"{_REF_PREFIX}{ERROR_SCHEMA_NAME}"}
    if validation is None:
        responses["422"] = _error_response("Invalid field; names the field")
        return
    media = validation.get("content", {}).get("application/json")
    if isinstance(media, dict) and isinstance(media.get("schema"), dict) and media["schema"] != error_ref:
        media["schema"] = {"anyOf": [media["schema"], error_ref]}


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (Powertools' output) with the shared errors and schema fixes applied."""
    out = copy.deepcopy(document)
    components: dict[str, Any] = out.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    schemas.setdefault(ERROR_SCHEMA_NAME, ERROR_SCHEMA)
    _fix_validation_schemas(schemas)
    for path_item in (out.get("paths") or {}).values():
        for method, operation in path_item.items():
            if method in _HTTP_METHODS and isinstance(operation, dict):
                _add_error_responses(operation)
    return out


def document_for(
    app: APIGatewayRestResolver, *, title: str, version: str, description: str | None = None
) -> dict[str, Any]:
    """The complete OpenAPI document of ``app``."""
    schema = app.get_openapi_json_schema(
        title=title,
        version=version,
        description=description,
        security_schemes={
            SECURITY_SCHEME: HTTPBearer(
                bearerFormat="JWT",
                description="ID token of the platform's identity provider: `Authorization: Bearer <ID token>`",
            )
        },
        security=[{SECURITY_SCHEME: []}],
    )
    document: dict[str, Any] = json.loads(schema)
    return complete_document(document)
