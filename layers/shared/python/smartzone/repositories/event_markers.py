"""Per-sink markers of events already handled (``EVENT#<event_id>`` / ``<sink>``, TTL ``expires_at``).

The stream delivers a record at least once, and a record is retried whole when any of its sinks
fails; a sink that cannot deduplicate by itself (SNS: e-mail and webhooks would repeat) checks
and sets its marker around its work.
"""

from __future__ import annotations

from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import to_item


class EventMarkers:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def seen(self, event_id: str, sink: str) -> bool:
        item = client("dynamodb").get_item(
            TableName=self.table_name, Key=to_item(keys.event_marker_key(event_id, sink)), ConsistentRead=True
        )
        return "Item" in item

    def mark(self, event_id: str, sink: str, expires_at: int) -> None:
        client("dynamodb").put_item(
            TableName=self.table_name,
            Item=to_item({**keys.event_marker_key(event_id, sink), "expires_at": expires_at}),
        )
