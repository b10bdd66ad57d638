"""`/v1/notifications` routes: the caller's in-app inbox (fed by the outbox dispatcher).

Everyone with a role has an inbox: the events of their grid's orders (grid workers) and of the
orders assigned to them. Only one's own inbox is ever read: the partition is the caller's
username, so an id from someone else's inbox is simply not found (404).

- ``GET /v1/notifications``: newest first; ``unread_only`` reads a sparse index of unread entries
  (no filtered reads); ``limit``; ``cursor`` signed for this caller and filter.
- ``POST /v1/notifications/{notification_id}/read``: mark one entry read (idempotent).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel

from smartzone.domain.inbox import MAX_NOTIFICATION_ID_CHARS, InboxEntry, sort_key_of
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.repositories.cursor import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from smartzone.repositories.inbox import MAX_PAGE, InboxRepository
from smartzone.settings import get_settings

from ..context import caller_of, cursor_secret
from ..errors import NotFoundError

router = Router()

DEFAULT_PAGE = 20


@cache
def _repository(table_name: str) -> InboxRepository:
    return InboxRepository(table_name)


def inbox() -> InboxRepository:
    return _repository(get_settings().table_name)


class NotificationPage(BaseModel):
    items: list[InboxEntry]
    next_cursor: str | None = None


def _scope(username: str, unread_only: bool) -> str:
    return f"inbox|{username}|{'unread' if unread_only else 'all'}"


@router.get("/", summary="The caller's inbox, newest first", tags=["notifications"])
def list_notifications(
    unread_only: Annotated[bool, Query(description="only entries not yet read")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
) -> NotificationPage:
    caller = caller_of(router)
    scope = _scope(caller.username, unread_only)
    start = decode_cursor(cursor, scope, cursor_secret()) if cursor else None
    page = inbox().list(caller.username, unread_only=unread_only, limit=limit, start_key=start)
    return NotificationPage(
        items=page.items,
        next_cursor=encode_cursor(page.last_key, scope, cursor_secret()) if page.last_key else None,
    )


@router.post(
    "/<notification_id>/read",
    summary="Mark one of the caller's notifications read",
    tags=["notifications"],
)
def mark_notification_read(
    notification_id: Annotated[str, Path(max_length=MAX_NOTIFICATION_ID_CHARS)],
) -> InboxEntry:
    caller = caller_of(router)
    sort_key = sort_key_of(notification_id)
    entry = inbox().mark_read(caller.username, sort_key, to_iso(now_ms())) if sort_key else None
    if entry is None:
        raise NotFoundError("notification not found")
    return entry
