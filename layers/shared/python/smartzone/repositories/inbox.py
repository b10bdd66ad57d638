"""The in-app inbox (``INBOX#<username>`` / ``<event at>#<event_id>``): one item per person and event.

Writes are conditional puts on the item's key, so a redelivered event never makes a second entry
(and never marks a read entry unread again). Unread entries also carry sparse index keys on
``gsi1`` (``UNREAD#<username>`` / the entry's sort key), removed when the entry is read: the
unread listing is an index query that reads only unread entries, never a filtered read of the
whole inbox. Entries expire through the table's TTL (``expires_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.inbox import InboxEntry, event_at, inbox_sort_key, notification_id
from smartzone.domain.notifications import OutboundEvent
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

UNREAD_PREFIX = "UNREAD#"
MAX_PAGE = 100


def unread_index_keys(username: str, sort_key: str) -> dict[str, str]:
    """Sparse ``gsi1`` keys of an unread inbox entry (removed when it is read)."""
    return {"gsi1pk": f"{UNREAD_PREFIX}{username}", "gsi1sk": sort_key}


@dataclass(frozen=True)
class InboxPage:
    items: list[InboxEntry]
    last_key: dict[str, Any] | None
    """DynamoDB's ``LastEvaluatedKey`` as plain values (for the signed cursor), or None at the end."""


def inbox_pk(username: str) -> str:
    """The partition of one person's inbox (``INBOX#<username>``)."""
    return keys.inbox_key(username, "", "")["pk"]


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _entry(item: dict[str, Any]) -> InboxEntry:
    data = from_item(item)
    return InboxEntry.model_validate(data)


class InboxRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # -- the outbox's inbox sink -------------------------------------------------------------------
    def add(self, username: str, event: OutboundEvent, entry: InboxEntry, expires_at: int) -> bool:
        """File ``entry`` in ``username``'s inbox; False when it is already there (a redelivery)."""
        sort_key = inbox_sort_key(event)
        item = {
            **keys.inbox_key(username, event_at(event), event.event_id),
            **unread_index_keys(username, sort_key),
            "entity": "inbox",
            "username": username,
            **entry.model_dump(mode="json", exclude_none=True),
            "expires_at": expires_at,
        }
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    # -- the API -------------------------------------------------------------------------------
    def list(
        self,
        username: str,
        *,
        unread_only: bool = False,
        limit: int = 20,
        start_key: dict[str, Any] | None = None,
    ) -> InboxPage:
        """The person's entries, newest first (one Query on the table or the unread index)."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "ScanIndexForward": False,
            "Limit": max(1, min(limit, MAX_PAGE)),
        }
        if unread_only:
            params.update(
                IndexName=keys.GSI1,
                KeyConditionExpression="gsi1pk = :p",
                ExpressionAttributeValues=to_item({":p": f"{UNREAD_PREFIX}{username}"}),
            )
        else:
            params.update(
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues=to_item({":p": inbox_pk(username)}),
            )
        if start_key:
            params["ExclusiveStartKey"] = to_item(start_key)
        response = client("dynamodb").query(**params)
        last = response.get("LastEvaluatedKey")
        return InboxPage(
            items=[_entry(item) for item in response.get("Items", [])],
            last_key=from_item(last) if last else None,
        )

    def mark_read(self, username: str, sort_key: str, at_iso: str) -> InboxEntry | None:
        """Mark one of the person's entries read (idempotent: the first read time is kept);
        ``None`` when the person has no such entry."""
        pk = inbox_pk(username)
        try:
            response = client("dynamodb").update_item(
                TableName=self.table_name,
                Key=to_item({"pk": pk, "sk": sort_key}),
                UpdateExpression="SET #r = :t, read_at = if_not_exists(read_at, :at) REMOVE gsi1pk, gsi1sk",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#r": "read"},
                ExpressionAttributeValues=to_item({":t": True, ":at": at_iso}),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return None
            raise
        return _entry(response["Attributes"])


__all__ = ["InboxPage", "InboxRepository", "notification_id", "unread_index_keys"]
