"""`/v1/audit`: the append-only audit log, one UTC day at a time (administrators only)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from smartzone.domain.audit import AuditEntry
from smartzone.domain.timeutil import now_ms, to_iso

from ..context import caller_of
from ..errors import ForbiddenError
from .residents import _cursor_key, _next, audit_log

router = Router()


class AuditEntryOut(AuditEntry):
    at_iso: str


class AuditPage(BaseModel):
    day: str
    items: list[AuditEntryOut]
    next_cursor: str | None = None


@router.get("/", summary="Audit entries of one UTC day, oldest first (admins)")
def list_audit(
    day: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day, default today")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> AuditPage:
    caller = caller_of(router)
    if not caller.is_admin:
        raise ForbiddenError("only administrators may read the audit log")
    day = day or to_iso(now_ms())[:10]
    scope = f"audit|{day}"
    entries, last = audit_log().day(day, limit=limit, start_key=_cursor_key(cursor, scope))
    return AuditPage(
        day=day,
        items=[AuditEntryOut(**e.model_dump(), at_iso=to_iso(e.at)) for e in entries],
        next_cursor=_next(last, scope),
    )
