"""`/v1/sharing` routes: the data-sharing workflow between departments.

- ``POST /v1/sharing/requests`` (a department): ask to use a resource (purpose; the personal items
  wanted unmasked). Conditional resources need it; for unconditional ones it asks only for
  personal items unmasked. Own and not-shared resources: 409.
- ``GET /v1/sharing/requests?box=mine|to_decide``: the requests the caller's department filed, or
  those waiting on its resources (newest first, ``limit``/``cursor``).
- ``GET /v1/sharing/requests/{id}``: requester, provider and admins; anyone else 404.
- ``POST /v1/sharing/requests/{id}/decision`` (the providing department): approve with
  ``expires_at`` and the personal items unmasked (among those requested), or refuse with a reason.
  The requester sees it but may not decide (403); a decided request is final (409).
- ``GET /v1/sharing/grants``: the caller's department's grants (active or expired).
- ``GET /v1/sharing/access-log?resource_code=``: who read a resource (its provider and admins);
  without a code, the caller's department's own reads.

The department always comes from the user registry, never from a token claim.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from smartzone.domain.catalogue import COLUMN_PATTERN
from smartzone.domain.identity import Caller
from smartzone.domain.sharing import (
    AccessGrant,
    AccessLogEntry,
    AccessRequest,
    SharingRefused,
    approve,
    check_request,
    refuse,
)
from smartzone.repositories.cursor import InvalidCursor, decode_cursor, encode_cursor
from smartzone.repositories.sharing import RequestConflict

from .. import data_access
from ..context import caller_of, cursor_secret
from ..data_access import department_of, resource_or_404, sharing_repo
from ..errors import ConflictError, ForbiddenError, NotFoundError, Unprocessable

router = Router()

REQUEST_ID_PARAM = Path(pattern=r"^SR-[0-9a-f]{16}$")
Column = Annotated[str, Field(pattern=COLUMN_PATTERN)]


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_code: str = Field(
        min_length=16, max_length=16, description="e.g. 210007000/000012 or 210007000-000012"
    )
    purpose: str = Field(min_length=4, max_length=500, description="what the data is for")
    items: list[Column] = Field(
        default_factory=list, max_length=200, description="personal items wanted unmasked"
    )


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "refuse"]
    expires_at: AwareDatetime | None = Field(None, description="approve: until when (at most 366 days)")
    unmasked_items: list[Column] = Field(default_factory=list, max_length=200)
    reason: str | None = Field(None, max_length=500, description="refuse: why (required)")


class RequestList(BaseModel):
    items: list[AccessRequest]
    next_cursor: str | None = None


class GrantOut(BaseModel):
    resource_code: str
    request_id: str
    unmasked_items: list[str]
    granted_at: datetime
    expires_at: datetime
    active: bool


class GrantList(BaseModel):
    items: list[GrantOut]


class AccessLogList(BaseModel):
    items: list[AccessLogEntry]


def _json(status: int, model: BaseModel) -> Response[Any]:
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=model.model_dump_json()
    )


def _department_or_403(caller: Caller) -> str:
    department = department_of(router, caller)
    if department is None:
        raise ForbiddenError("only a registered department takes part in data sharing")
    return department


def _refused(exc: SharingRefused) -> Exception:
    if exc.status == 409:
        return ConflictError(str(exc), field=exc.field)
    return Unprocessable(str(exc), field=exc.field)


@router.post("/requests", summary="Ask for access to a resource (a department)")
def create_request(body: Annotated[RequestIn, Body()]) -> Response[Any]:
    caller = caller_of(router)
    department = _department_or_403(caller)
    resource = resource_or_404(body.resource_code)
    try:
        items = check_request(resource, department, body.items)
    except SharingRefused as exc:
        raise _refused(exc) from exc
    request = AccessRequest(
        request_id=f"SR-{uuid.uuid4().hex[:16]}",
        resource_code=resource.code,
        provider_id=resource.department_id,
        requester_id=department,
        requested_by=caller.username,
        purpose=body.purpose,
        items=items,
        created_at=data_access.current_time(),
    )
    sharing_repo().create_request(request)
    return _json(201, request)


@router.get("/requests", summary="Requests my department filed (mine) or must decide (to_decide)")
def list_requests(
    box: Annotated[Literal["mine", "to_decide"], Query()] = "mine",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> RequestList:
    caller = caller_of(router)
    department = _department_or_403(caller)
    scope = f"sharereq|{box}|{department}"
    start: dict[str, Any] | None = None
    if cursor is not None:
        start = decode_cursor(cursor, scope, cursor_secret()).get("k")
        if not isinstance(start, dict):
            raise InvalidCursor("cursor is not valid")
    repo = sharing_repo()
    reader = repo.requests_by if box == "mine" else repo.requests_to
    items, key = reader(department, limit=limit, start=start)
    next_cursor = encode_cursor({"k": key}, scope, cursor_secret()) if key else None
    return RequestList(items=items, next_cursor=next_cursor)


def _visible_request(request_id: str, caller: Caller) -> tuple[AccessRequest, str | None]:
    request = sharing_repo().get_request(request_id)
    department = department_of(router, caller)
    if request is None or not (caller.is_admin or department in (request.requester_id, request.provider_id)):
        raise NotFoundError("no such request", field="request_id")
    return request, department


@router.get("/requests/<request_id>", summary="One sharing request")
def get_request(request_id: Annotated[str, REQUEST_ID_PARAM]) -> AccessRequest:
    request, _ = _visible_request(request_id, caller_of(router))
    return request


@router.post("/requests/<request_id>/decision", summary="Approve or refuse a request (the provider)")
def decide_request(
    request_id: Annotated[str, REQUEST_ID_PARAM], body: Annotated[DecisionIn, Body()]
) -> AccessRequest:
    caller = caller_of(router)
    request, department = _visible_request(request_id, caller)
    if department != request.provider_id:
        raise ForbiddenError("only the providing department decides on a request")
    now = data_access.current_time()
    grant: AccessGrant | None = None
    try:
        if body.decision == "approve":
            if body.expires_at is None:
                raise Unprocessable("expires_at: an approval needs its expiry", field="expires_at")
            decided, grant = approve(
                request,
                by=caller.username,
                expires_at=body.expires_at,
                unmasked_items=body.unmasked_items,
                now=now,
            )
        else:
            decided = refuse(request, by=caller.username, reason=body.reason or "", now=now)
    except SharingRefused as exc:
        raise _refused(exc) from exc
    try:
        sharing_repo().record_decision(decided, grant)
    except RequestConflict as exc:
        raise ConflictError("the request was decided already", field="request_id") from exc
    return decided


@router.get("/grants", summary="My department's access grants")
def list_grants() -> GrantList:
    caller = caller_of(router)
    department = _department_or_403(caller)
    now = data_access.current_time()
    grants = sorted(sharing_repo().grants_for(department), key=lambda g: g.expires_at, reverse=True)
    return GrantList(
        items=[
            GrantOut(
                resource_code=g.resource_code,
                request_id=g.request_id,
                unmasked_items=sorted(g.unmasked_items),
                granted_at=g.granted_at,
                expires_at=g.expires_at,
                active=g.active(now),
            )
            for g in grants
        ]
    )


@router.get("/access-log", summary="Who read a resource (provider, admin), or my department's reads")
def access_log(
    resource_code: Annotated[str | None, Query(min_length=16, max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> AccessLogList:
    caller = caller_of(router)
    if resource_code is None:
        department = _department_or_403(caller)
        return AccessLogList(items=sharing_repo().access_log_of(department, limit=limit))
    resource = resource_or_404(resource_code)
    if not caller.is_admin and department_of(router, caller) != resource.department_id:
        raise ForbiddenError("only the provider and administrators read a resource's access log")
    return AccessLogList(items=sharing_repo().access_log(resource.code, limit=limit))
