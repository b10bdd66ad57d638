"""Statistics items (``STATS#<day>`` / ``COUNTS`` and ``HIST#<name>``; see
:mod:`smartzone.domain.statistics`) and the per-event markers that count each event once.

Recording an event is ONE ``TransactWriteItems``: a put of the marker ``EVENT#<event_id>`` /
``stats`` on condition that it does not exist, plus ``ADD`` updates of the day's counters and
histogram buckets. A redelivered event fails the marker's condition, the transaction is cancelled
as a whole, and nothing is counted twice. Markers expire (TTL ``expires_at``).

Reading a period is BatchGetItem of at most one item per day and part (``COUNTS`` and one per
histogram): no Scan, no Query over days.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.statistics import COUNTS_PART, DURATIONS, StatsUpdate, hist_part
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item

STATS_SINK = "stats"
BATCH_GET_LIMIT = 100


class StatsStoreError(Exception):
    """The statistics could not be written or read now (retry later)."""


@dataclass(frozen=True)
class PeriodItems:
    """The stored items of a period's days, as plain values (days without data are absent)."""

    counts: list[dict[str, Any]] = field(default_factory=list)
    histograms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Duration name → that histogram's day items."""


def _names_and_values(increments: dict[str, int]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``ADD #a0 :v0, #a1 :v1`` with its name and value maps (attribute names carry ``|``)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    clauses: list[str] = []
    for i, (attribute, amount) in enumerate(sorted(increments.items())):
        names[f"#a{i}"] = attribute
        values[f":v{i}"] = amount
        clauses.append(f"#a{i} :v{i}")
    return "ADD " + ", ".join(clauses), names, values


class StatsRepository:
    def __init__(self, table_name: str, *, max_unprocessed_retries: int = 5) -> None:
        self.table_name = table_name
        self.max_unprocessed_retries = max_unprocessed_retries

    # -- the outbox's statistics sink ---------------------------------------------------------
    def _add_op(self, day: str, part: str, increments: dict[str, int]) -> dict[str, Any]:
        expression, names, values = _names_and_values(increments)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item(keys.stats_key(day, part)),
                "UpdateExpression": f"{expression} SET #entity = :e",
                "ExpressionAttributeNames": {**names, "#entity": "entity"},
                "ExpressionAttributeValues": to_item({**values, ":e": "stats"}),
            }
        }

    def record(self, event_id: str, update: StatsUpdate, marker_expires_at: int) -> bool:
        """Apply one event's increments once; False when the event was already counted."""
        if update.empty:
            return True
        marker = {
            **keys.event_marker_key(event_id, STATS_SINK),
            "entity": "event_marker",
            "day": update.day,
            "expires_at": marker_expires_at,
        }
        ops: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": to_item(marker),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        if update.counters:
            ops.append(self._add_op(update.day, COUNTS_PART, dict(update.counters)))
        for part, buckets in sorted(update.histograms.items()):
            if buckets:
                ops.append(self._add_op(update.day, part, dict(buckets)))
        try:
            client("dynamodb").transact_write_items(TransactItems=ops)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            raise StatsStoreError(f"statistics transaction cancelled: {reasons}") from exc
        return True

    # -- the API -------------------------------------------------------------------------------
    def period(self, days: Sequence[str], durations: Iterable[str] = DURATIONS) -> PeriodItems:
        """The ``COUNTS`` and histogram items of ``days`` (BatchGetItem, 100 keys per call)."""
        names = list(durations)
        parts = [COUNTS_PART, *(hist_part(name) for name in names)]
        wanted = [keys.stats_key(day, part) for day in days for part in parts]
        result = PeriodItems(histograms={name: [] for name in names})
        by_part = {hist_part(name): name for name in names}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            for item in self._batch_get(wanted[start : start + BATCH_GET_LIMIT]):
                data = from_item(item)
                part = str(data.get("sk", ""))
                if part == COUNTS_PART:
                    result.counts.append(data)
                elif part in by_part:
                    result.histograms[by_part[part]].append(data)
        return result

    def _batch_get(self, key_list: list[dict[str, str]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {self.table_name: {"Keys": [to_item(k) for k in key_list]}}
        for attempt in range(self.max_unprocessed_retries + 1):
            response = client("dynamodb").batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self.table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise StatsStoreError(f"{len(request[self.table_name]['Keys'])} statistics keys left unprocessed")
