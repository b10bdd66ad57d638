"""The sweeper's reads for offline detection: grids (gsi2 ``GRIDS``) and, per grid, the devices
whose last persisted heartbeat is older than a cutoff (gsi3 ``SEEN#<grid>``, ``gsi3sk < cutoff``).

Both are index Queries (never a Scan). Every state write of a device sets its last-seen entry
(:func:`smartzone.repositories.devices.seen_values`); a device that never had its state written
(registered, never reported) has none and is never found here. The index projects the whole item,
so each row is a full :class:`DeviceRecord` (state and version included); it is eventually
consistent, which the conditional writes make harmless (a stale row loses on the version).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import to_item
from smartzone.repositories.devices import DeviceRecord, device_from_item


class LastSeenIndex:
    def __init__(self, table_name: str, *, page_size: int = 500) -> None:
        self.table_name = table_name
        self.page_size = page_size

    def _query(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        params = {"TableName": self.table_name, "Limit": self.page_size, **params}
        while True:
            response = client("dynamodb").query(**params)
            yield from response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            params["ExclusiveStartKey"] = start

    def grid_ids(self) -> list[str]:
        """Every grid id, in order (gsi2 ``GRIDS``)."""
        items = self._query(
            {
                "IndexName": keys.GSI2,
                "KeyConditionExpression": "gsi2pk = :p",
                "ExpressionAttributeValues": to_item({":p": keys.grid_index_keys("-")["gsi2pk"]}),
                "ProjectionExpression": "gsi2sk",
            }
        )
        return [item["gsi2sk"]["S"] for item in items]

    def seen_before(self, grid_id: str, cutoff_iso: str) -> list[DeviceRecord]:
        """The grid's devices whose last heartbeat is before ``cutoff_iso`` (oldest first)."""
        seen = keys.seen_index_keys(grid_id, "", cutoff_iso)
        items = self._query(
            {
                "IndexName": keys.GSI3,
                "KeyConditionExpression": "gsi3pk = :p AND gsi3sk < :cut",
                "ExpressionAttributeValues": to_item({":p": seen["gsi3pk"], ":cut": cutoff_iso}),
            }
        )
        return [device_from_item(item) for item in items if item.get("entity", {}).get("S") == "device"]
