"""Who is reading shared data, may they, and the log of it: used by every data-reading route.

A route that serves a resource's data (the query endpoint, downloads) calls
:func:`authorize_read` first (404 for an unknown code, 403 with the reason when the caller may not
read it; the refusal is logged) and :func:`log_access` once it has answered (rows returned, what
was asked). The caller's department comes from the user registry (``UserProfile.department_id``),
never from a token claim; only callers with the ``department`` role read shared data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Router

from smartzone.domain.catalogue import Resource, code_from_path
from smartzone.domain.identity import Caller
from smartzone.domain.sharing import AccessDecision, AccessLogEntry, decide_access
from smartzone.repositories.catalogue import CatalogueRepository
from smartzone.repositories.sharing import SharingRepository
from smartzone.settings import get_settings

from .context import caller_of
from .context import department_of as caller_department
from .errors import ForbiddenError, NotFoundError


@cache
def _catalogue(table: str) -> CatalogueRepository:
    return CatalogueRepository(table)


@cache
def _sharing(table: str) -> SharingRepository:
    return SharingRepository(table)


def catalogue_repo() -> CatalogueRepository:
    return _catalogue(get_settings().table_name)


def sharing_repo() -> SharingRepository:
    return _sharing(get_settings().table_name)


def current_time() -> datetime:
    """The sharing clock (grant expiry is judged against it); tests move it."""
    return datetime.now(tz=UTC)


def department_of(router: Router | APIGatewayRestResolver, caller: Caller) -> str | None:
    """The caller's department (:func:`context.department_of`), holding the request's API key to it."""
    department = caller_department(router, caller)
    check_api_key(router, department)
    return department


@cache
def _department_keys(raw: str) -> dict[str, str]:
    """API key id → department, from the ``DEPARTMENT_API_KEYS`` setting (department → key id)."""
    if not raw:
        return {}
    return {str(key_id): str(department) for department, key_id in json.loads(raw).items()}


def check_api_key(router: Router | APIGatewayRestResolver, department: str | None) -> None:
    """On the data routes API Gateway passes the usage-plan key it checked; it must be the calling
    department's own (a key only throttles: using another's would spend its quota). Requests
    without a key (other routes, the local gateway) are not affected."""
    identity = (router.current_event.raw_event.get("requestContext") or {}).get("identity") or {}
    key_id = identity.get("apiKeyId")
    owners = _department_keys(get_settings().department_api_keys)
    if key_id and owners and owners.get(str(key_id)) != department:
        raise ForbiddenError("this API key is not the calling department's", field="x-api-key")


def resource_or_404(code_text: str) -> Resource:
    code = code_from_path(code_text)
    resource = catalogue_repo().get(code) if code else None
    if resource is None:
        raise NotFoundError("no such resource", field="code")
    return resource


@dataclass(frozen=True)
class ReadAccess:
    resource: Resource
    decision: AccessDecision
    department_id: str
    username: str

    @property
    def unmasked_items(self) -> frozenset[str]:
        return self.decision.unmasked_items


def authorize_read(
    router: Router | APIGatewayRestResolver,
    code_text: str,
    *,
    action: str = "query",
    detail: str | None = None,
) -> ReadAccess:
    """May the caller read this resource's data now? Refusals are logged and raised (403)."""
    caller = caller_of(router)
    resource = resource_or_404(code_text)
    department = department_of(router, caller)
    now = current_time()
    grants = sharing_repo().grants_for(department, resource.code) if department else []
    decision = decide_access(department, resource, grants, now)
    if not decision.allowed:
        log_entry = AccessLogEntry(
            resource_code=resource.code,
            department_id=department,
            username=caller.username,
            at=now,
            action=action,
            allowed=False,
            reason=decision.reason.value,
            detail=detail[:500] if detail else None,
        )
        sharing_repo().append_access(log_entry)
        raise ForbiddenError(decision.message, field="code")
    return ReadAccess(resource, decision, department or "", caller.username)


def log_access(
    access: ReadAccess, *, action: str = "query", rows: int | None = None, detail: str | None = None
) -> None:
    """Append the access log entry of an allowed read (call once the data was served)."""
    sharing_repo().append_access(
        AccessLogEntry(
            resource_code=access.resource.code,
            department_id=access.department_id,
            username=access.username,
            at=current_time(),
            action=action,
            allowed=True,
            reason=access.decision.reason.value,
            unmasked_items=sorted(access.unmasked_items),
            rows=rows,
            detail=detail[:500] if detail else None,
        )
    )
