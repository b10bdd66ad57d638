"""`/v1/catalogue` routes: browse the data catalogue (政务信息资源目录); admins add and edit entries.

- ``GET /v1/catalogue`` (filters ``department``, ``classification``, ``sharing_type``; ``limit``,
  ``cursor``): every signed-in user may browse the catalogue (metadata only, no data). A department
  caller also sees, per entry, whether it may read the data now and which items unmasked.
- ``GET /v1/catalogue/{code}``: one entry with its ``stale`` flag (last load older than the update
  cycle). In paths the code's ``/`` is written ``-`` (``210007000-000012``).
- ``POST /v1/catalogue`` / ``PUT /v1/catalogue/{code}?version=N`` (admins): validated by the JSON
  Schema, then by the model's cross-field rules, then against the catalogue (unique code, one
  provider number per department); 422 naming the field, 409 for a taken code or a stale version.

Lists are index queries (gsi2 ``CATALOGUE`` or gsi1 ``CATDEPT#<department>``), never a Scan.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import BaseModel, ValidationError

from smartzone.domain.catalogue import (
    Resource,
    SharingType,
    check_catalogue,
    code_from_path,
    is_stale,
    path_code,
)
from smartzone.domain.catalogue_schema import schema_problems
from smartzone.domain.identity import Caller
from smartzone.domain.sharing import AccessGrant, decide_access
from smartzone.repositories.catalogue import ResourceConflict
from smartzone.repositories.cursor import InvalidCursor, decode_cursor, encode_cursor

from .. import data_access
from ..context import caller_of, cursor_secret
from ..data_access import catalogue_repo, department_of, resource_or_404, sharing_repo
from ..errors import ConflictError, ForbiddenError, NotFoundError, Unprocessable

router = Router()

CODE_PARAM = Path(min_length=16, max_length=16, description="resource code with '-' for '/'")
MAX_PAGES_PER_REQUEST = 10
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([a-z_]+(?:\.[a-z0-9_]+)*): ")


class AccessOut(BaseModel):
    """What the calling department may do with the data now."""

    allowed: bool
    reason: str
    unmasked_items: list[str]
    expires_at: datetime | None = None


class ResourceOut(Resource):
    stale: bool
    """The last load is older than the update cycle allows (or nothing was ever loaded)."""
    version: int | None = None
    """The revision to send back with an update (on the detail only)."""
    path_code: str
    access: AccessOut | None = None
    """For callers acting for a department."""


class ResourceList(BaseModel):
    items: list[ResourceOut]
    next_cursor: str | None = None


def _json(status: int, model: BaseModel) -> Response[Any]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=model.model_dump_json()
    )


def _access(
    department: str | None, resource: Resource, grants: list[AccessGrant], now: datetime
) -> AccessOut | None:
    if department is None:
        return None
    decision = decide_access(department, resource, grants, now)
    return AccessOut(
        allowed=decision.allowed,
        reason=decision.reason.value,
        unmasked_items=sorted(decision.unmasked_items),
        expires_at=decision.grant.expires_at if decision.grant else None,
    )


def resource_out(
    resource: Resource, version: int | None, now: datetime, department: str | None, grants: list[AccessGrant]
) -> ResourceOut:
    return ResourceOut(
        **resource.model_dump(),
        stale=is_stale(resource, now),
        version=version,
        path_code=path_code(resource.code),
        access=_access(department, resource, grants, now),
    )


def _caller_context(caller: Caller) -> tuple[str | None, list[AccessGrant]]:
    department = department_of(router, caller)
    return department, (sharing_repo().grants_for(department) if department else [])


@router.get("/", summary="Browse the data catalogue")
def list_catalogue(
    department: Annotated[
        str | None, Query(pattern=r"^[a-z][a-z0-9-]{1,39}$", description="provider")
    ] = None,
    classification: Annotated[str | None, Query(pattern=r"^[123][0-9]{2}$")] = None,
    sharing_type: Annotated[SharingType | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> ResourceList:
    caller = caller_of(router)
    scope = f"catalogue|{department or '*'}|{classification or '*'}|{sharing_type or '*'}"
    key: dict[str, Any] | None = None
    if cursor is not None:
        key = decode_cursor(cursor, scope, cursor_secret()).get("k")
        if not isinstance(key, dict):
            raise InvalidCursor("cursor is not valid")
    caller_department, grants = _caller_context(caller)
    now = data_access.current_time()
    items: list[ResourceOut] = []
    for _ in range(MAX_PAGES_PER_REQUEST):
        page, key = catalogue_repo().list(
            department_id=department,
            classification=classification,
            sharing_type=sharing_type.value if sharing_type else None,
            limit=limit - len(items),
            start=key,
        )
        items += [resource_out(r, None, now, caller_department, grants) for r in page]
        if key is None or len(items) >= limit:
            break
    next_cursor = encode_cursor({"k": key}, scope, cursor_secret()) if key else None
    return ResourceList(items=items, next_cursor=next_cursor)


@router.get("/<code>", summary="One catalogue entry with its stale flag")
def get_resource(code: Annotated[str, CODE_PARAM]) -> ResourceOut:
    caller = caller_of(router)
    parsed = code_from_path(code)
    found = catalogue_repo().get_with_rev(parsed) if parsed else None
    if found is None:
        raise NotFoundError("no such resource", field="code")
    resource, version = found
    department, grants = _caller_context(caller)
    return resource_out(resource, version, data_access.current_time(), department, grants)


# -- admin writes -------------------------------------------------------------------------------------------
def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise ForbiddenError("only administrators edit the catalogue")


def validated(body: Any) -> Resource:
    """The JSON Schema first, then the model (cross-field rules); 422 naming the first bad field."""
    problems = schema_problems(body)
    if problems:
        raise Unprocessable(problems[0].message, field=problems[0].field)
    try:
        return Resource.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error.get("msg", "invalid"))
        location = ".".join(str(p) for p in error.get("loc", ()))
        match = _FIELD_PREFIX.match(message)
        field = match.group(1) if match else (location or "body")
        text = message.removeprefix("Value error, ")
        raise Unprocessable(text if match else f"{field}: {text}", field=field) from exc


def _check_against_catalogue(resource: Resource) -> None:
    others = [r for r in catalogue_repo().all() if r.code != resource.code]
    problems = check_catalogue([*others, resource])
    if problems:
        raise Unprocessable(problems[0].message, field=problems[0].field)


@router.post("/", summary="Add a catalogue entry (admin)")
def create_resource(
    body: Annotated[dict[str, Any], Body(description="a catalogue resource")],
) -> Response[Any]:
    caller = caller_of(router)
    _require_admin(caller)
    resource = validated(body).model_copy(update={"last_loaded_at": None})
    _check_against_catalogue(resource)
    try:
        catalogue_repo().create(resource)
    except ResourceConflict as exc:
        raise ConflictError(f"code {resource.code} is taken", field="code") from exc
    return _json(201, resource_out(resource, 1, data_access.current_time(), None, []))


@router.put("/<code>", summary="Replace a catalogue entry (admin; version from GET)")
def update_resource(
    code: Annotated[str, CODE_PARAM],
    body: Annotated[dict[str, Any], Body(description="a catalogue resource")],
    version: Annotated[int, Query(ge=0, description="the version read with GET")],
) -> ResourceOut:
    caller = caller_of(router)
    _require_admin(caller)
    current = resource_or_404(code)
    resource = validated(body)
    if resource.code != current.code:
        raise Unprocessable(f"code: the body's code must be {current.code}", field="code")
    resource = resource.model_copy(update={"last_loaded_at": current.last_loaded_at})
    _check_against_catalogue(resource)
    try:
        new_version = catalogue_repo().update(resource, rev=version)
    except ResourceConflict as exc:
        raise ConflictError("the entry changed since it was read: read it again", field="version") from exc
    return resource_out(resource, new_version, data_access.current_time(), None, [])
