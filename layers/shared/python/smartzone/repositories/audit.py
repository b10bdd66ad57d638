"""The append-only audit log (``AUDIT#<yyyy-mm-dd>`` items, one partition per UTC day).

Usage, from any function or tool::

    from smartzone.repositories.audit import AuditEntry, AuditLog

    AuditLog(table_name).append(
        AuditEntry(actor="admin-01", role="admin", action="unmasked_read",
                   subject_key="RESIDENT#<id_key>", purpose="核实身份", fields=("id_number",))
    )

- Append-only: every entry is written with a conditional put (``attribute_not_exists(pk)``), so
  an entry is never overwritten; no code path updates or deletes entries, and the API function's
  role has no ``DeleteItem`` and may not ``UpdateItem`` an ``AUDIT#`` key.
- Retention: each entry carries the table's TTL attribute ``expires_at`` =
  ``at`` + ``audit_retention_days`` (setting, default 1096 days: at least three years).
- Reading: :meth:`AuditLog.day` pages through one day's entries in time order (a key Query).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.audit import AuditAction, AuditEntry
from smartzone.domain.timeutil import to_iso
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item
from smartzone.settings import get_settings

AUDIT_PK_PREFIX = "AUDIT#"
MS_PER_DAY = 86_400_000

__all__ = ["AUDIT_PK_PREFIX", "AuditAction", "AuditEntry", "AuditLog", "DuplicateAuditEntry"]


class DuplicateAuditEntry(RuntimeError):
    """An entry with this day, time and id exists already (entries are never overwritten)."""


def audit_key(entry: AuditEntry) -> dict[str, str]:
    at = to_iso(entry.at)
    return {"pk": f"{AUDIT_PK_PREFIX}{at[:10]}", "sk": f"{at}#{entry.entry_id}"}


class AuditLog:
    def __init__(self, table_name: str, retention_days: int | None = None) -> None:
        self.table_name = table_name
        self.retention_days = retention_days or get_settings().audit_retention_days

    def append(self, entry: AuditEntry) -> AuditEntry:
        """Write one entry (never overwriting); returns it. Raises :class:`DuplicateAuditEntry`."""
        item = {
            **audit_key(entry),
            "entity": "audit",
            **entry.model_dump(mode="json"),
            "expires_at": (entry.at + self.retention_days * MS_PER_DAY) // 1000,
        }
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise DuplicateAuditEntry(entry.entry_id) from exc
            raise
        return entry

    def day(
        self, day: str, *, limit: int = 100, start_key: dict[str, Any] | None = None
    ) -> tuple[list[AuditEntry], dict[str, Any] | None]:
        """One page of the entries of UTC day ``YYYY-MM-DD`` in time order, and the key to continue."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": to_item({":p": f"{AUDIT_PK_PREFIX}{day}"}),
            "Limit": limit,
        }
        if start_key:
            request["ExclusiveStartKey"] = start_key
        page = client("dynamodb").query(**request)
        entries = [_entry_of(from_item(item)) for item in page.get("Items", [])]
        return entries, page.get("LastEvaluatedKey")


def _entry_of(data: dict[str, Any]) -> AuditEntry:
    values = {k: v for k, v in data.items() if k in AuditEntry.model_fields}
    values["fields"] = tuple(values.get("fields") or ())
    return AuditEntry.model_validate(values)
