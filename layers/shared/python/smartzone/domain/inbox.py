"""The in-app inbox: who receives an outbound event, and what one inbox entry holds.

Pure logic. The outbox dispatcher's inbox sink writes one entry per recipient and event:

- recipients: the workers of the order's grid (their ``worker_id`` is their username) plus the
  order's assignee, if any; each person once;
- key ``INBOX#<username>`` / ``<event at>#<event_id>``, where "event at" is the order's
  ``updated_at`` of that version: the same on every redelivery, so a conditional put makes the
  write idempotent, and the sort key orders an inbox by time;
- the entry's public id (``notification_id``) is its sort key in URL-safe base64 (no padding), so
  it travels in a path (``POST /v1/notifications/{id}/read``) without escaping. It is looked up
  only in the caller's own inbox partition: someone else's id is simply not found.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from smartzone.domain.notifications import AUDIENCE_OF_EVENT, DISPATCHERS_AUDIENCE, OutboundEvent
from smartzone.domain.timeutil import TimestampError, from_iso

DEFAULT_INBOX_TTL_DAYS = 180
MAX_NOTIFICATION_ID_CHARS = 512


def event_at(event: OutboundEvent) -> str:
    """The time an inbox entry is filed under: the order version's ``updated_at`` (stable)."""
    updated = event.order.get("updated_at")
    return updated if isinstance(updated, str) and updated else event.occurred_at


def inbox_sort_key(event: OutboundEvent) -> str:
    return f"{event_at(event)}#{event.event_id}"


def recipients(
    event: OutboundEvent, grid_worker_ids: Iterable[str], dispatcher_ids: Iterable[str] = ()
) -> list[str]:
    """Usernames that get the event in their inbox: the grid's workers, then the assignee, and for
    events addressed to the command centre (``order_escalated``) the dispatchers."""
    people: dict[str, None] = {}
    for worker in [*grid_worker_ids, *(dispatcher_ids if addressed_to_dispatchers(event) else ())]:
        if worker:
            people.setdefault(worker, None)
    assignee = event.order.get("assignee")
    if isinstance(assignee, str) and assignee:
        people.setdefault(assignee, None)
    return list(people)


def addressed_to_dispatchers(event: OutboundEvent) -> bool:
    return AUDIENCE_OF_EVENT.get(event.event_type) == DISPATCHERS_AUDIENCE


def expires_at(event: OutboundEvent, ttl_days: int = DEFAULT_INBOX_TTL_DAYS) -> int:
    """The TTL (epoch seconds): ``ttl_days`` after the event, so a redelivery writes the same value."""
    try:
        at_ms = from_iso(event_at(event))
    except TimestampError:
        at_ms = from_iso(event.occurred_at)
    return at_ms // 1000 + ttl_days * 86_400


def notification_id(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).rstrip(b"=").decode("ascii")


def sort_key_of(notification_id_text: str) -> str | None:
    """The sort key an id stands for, or ``None`` when the id is not one of ours (answered 404)."""
    if not notification_id_text or len(notification_id_text) > MAX_NOTIFICATION_ID_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(notification_id_text + "=" * (-len(notification_id_text) % 4))
        text = raw.decode()
    except (binascii.Error, ValueError):
        return None
    if "#" not in text or notification_id(text) != notification_id_text:
        return None
    return text


class InboxEntry(BaseModel):
    """One notification in a person's inbox (as ``GET /v1/notifications`` returns it)."""

    model_config = ConfigDict(extra="ignore")

    notification_id: str
    event_id: str
    event_type: str
    order_id: str
    grid_id: str
    title: str
    """The one-line subject (``【新工单】178号窨井盖倾斜告警(网格 G03)``)."""
    text: str
    """Chinese text a grid worker can act on (times in Beijing time)."""
    created_at: str
    """The event's time (UTC ISO-8601): the order version's ``updated_at``."""
    read: bool = False
    read_at: str | None = None


def entry_of(event: OutboundEvent) -> InboxEntry:
    """The entry every recipient of ``event`` gets (unread)."""
    return InboxEntry(
        notification_id=notification_id(inbox_sort_key(event)),
        event_id=event.event_id,
        event_type=event.event_type.value,
        order_id=event.order_id,
        grid_id=event.grid_id,
        title=event.subject,
        text=event.text,
        created_at=event_at(event),
    )
