"""Work orders in the table: read, create, transition (one conditional write each) and list by index.

Every write keeps the order's index keys right (see :mod:`smartzone.repositories.keys`):

| index | partition                 | sort                   | kept when                            |
|-------|---------------------------|------------------------|--------------------------------------|
| gsi1  | ``GRIDORDERS#<grid>``     | ``<created>#<id>``     | always (the grid never changes)      |
| gsi2  | ``ORDERSTATUS#<status>``  | ``<created>#<id>``     | the status changes                   |
| gsi3  | ``ASSIGNEE#<username>``   | ``<created>#<id>``     | the assignee changes (removed: none) |
| gsi4  | ``DUE``                   | ``<due iso>#<id>``     | the next SLA deadline changes        |

Lists never Scan: each is one or more Queries on these indexes, newest first, merged by the sort
key ``<created>#<id>`` that all three listing indexes share. A page's position is that sort key
(``{"before": "<created>#<id>"}``), so one position serves every partition of a merged listing.
"""

from __future__ import annotations

import builtins
import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.lifecycle import StaleVersion, TransitionPlan
from smartzone.domain.sla import next_due_ms
from smartzone.domain.timeutil import to_iso
from smartzone.domain.workorders import WorkOrder
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, serialize, to_item

MAX_PAGE = 100
MAX_QUERIES_PER_PARTITION = 8
"""A filtered listing reads at most this many index pages per partition per request; the page it
returns may then be short, with a cursor to go on from where the reading stopped."""
UNTIL_SUFFIX = "#\uffff"
"""Appended to an ``until`` time so that every ``<until>#<id>`` sort key falls inside the range."""

_INDEX_ATTRS = {
    keys.GSI1: ("gsi1pk", "gsi1sk"),
    keys.GSI2: ("gsi2pk", "gsi2sk"),
    keys.GSI3: ("gsi3pk", "gsi3sk"),
}


@dataclass(frozen=True)
class Partition:
    """One index partition a listing reads, with the filters the index cannot key on."""

    index: str
    value: str
    filters: Mapping[str, str] = field(default_factory=dict)
    """Attribute → required value (applied as a FilterExpression)."""

    @property
    def scope(self) -> str:
        parts = ",".join(f"{k}={v}" for k, v in sorted(self.filters.items()))
        return f"{self.index}:{self.value}[{parts}]"


def grid_partition(grid_id: str, *, status: str | None = None, category: str | None = None) -> Partition:
    return Partition(keys.GSI1, f"GRIDORDERS#{grid_id}", _filters(status=status, category=category))


def status_partition(status: str, *, category: str | None = None) -> Partition:
    return Partition(keys.GSI2, f"ORDERSTATUS#{status}", _filters(category=category))


def assignee_partition(
    username: str,
    *,
    status: str | None = None,
    category: str | None = None,
    grid_id: str | None = None,
) -> Partition:
    return Partition(
        keys.GSI3, f"ASSIGNEE#{username}", _filters(status=status, category=category, grid_id=grid_id)
    )


def _filters(**values: str | None) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def sort_key(order: WorkOrder) -> str:
    """The listing indexes' shared sort key: ``<created>#<id>``."""
    return f"{order.created_at}#{order.order_id}"


def order_item(order: WorkOrder) -> dict[str, Any]:
    """The order as the table holds it: keys, index keys and the order's JSON."""
    data = order.model_dump(mode="json", exclude_none=True, by_alias=True)
    item: dict[str, Any] = {
        **keys.order_key(order.order_id),
        **keys.order_index_keys(order.order_id, order.grid_id, order.status.value, order.created_at),
        "entity": "order",
        **data,
    }
    if order.assignee:
        item.update(keys.assignee_index_keys(order.assignee, order.order_id, order.created_at))
    due = next_due_ms(order)
    if due is not None:
        item.update(keys.due_index_keys(order.order_id, to_iso(due)))
    return item


def _order_of(item: Mapping[str, Any]) -> WorkOrder:
    data = from_item(dict(item))
    return WorkOrder.model_validate({k: v for k, v in data.items() if k in WorkOrder.model_fields})


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


TRANSACTION_CONFLICT_RETRIES = 3
"""Retries of a write that met a transaction in progress on the same order."""


class WorkOrderRepository:
    """The only code that reads and writes work-order items (besides the telemetry pipeline's
    alarm transactions in :mod:`smartzone.repositories.alarm_store`)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # -- reads ---------------------------------------------------------------------------------------
    def get(self, order_id: str) -> WorkOrder | None:
        """The order (strongly consistent read), or None."""
        item = (
            client("dynamodb")
            .get_item(TableName=self.table_name, Key=to_item(keys.order_key(order_id)), ConsistentRead=True)
            .get("Item")
        )
        if not item or item.get("entity", {}).get("S") != "order":
            return None
        return _order_of(item)

    # -- writes --------------------------------------------------------------------------------------
    def create(self, order: WorkOrder, *, idempotent: bool = True) -> tuple[WorkOrder, bool]:
        """Write a new order unless one with its id exists.

        Returns ``(order, True)`` when written; ``(existing, False)`` when an order with the same
        id already exists and ``idempotent`` (a retried request); otherwise raises
        :class:`StaleVersion` (the id is taken).
        """
        try:
            client("dynamodb").put_item(
                TableName=self.table_name,
                Item=to_item(order_item(order)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            existing = self.get(order.order_id)
            if existing is None or not idempotent:
                raise StaleVersion(f"work order {order.order_id} already exists") from exc
            return existing, False
        return order, True

    def apply(self, plan: TransitionPlan, order: WorkOrder) -> WorkOrder:
        """Write ``plan`` (computed from ``order``) as ONE conditional UpdateItem.

        The condition is ``version = plan.expected_version``: a transition planned on an older
        version never lands. Raises :class:`StaleVersion` when the condition fails (the order
        changed, or no longer exists). Returns the order as written.
        """
        after = plan.apply(order)  # also checks that the plan belongs to this order and version
        dumped = after.model_dump(mode="json", by_alias=True)
        names: dict[str, str] = {"#version": "version", "#timeline": "timeline"}
        values: dict[str, Any] = {
            ":expected": serialize(plan.expected_version),
            ":entries": serialize([entry.to_item() for entry in plan.entries]),
            ":empty": serialize([]),
        }
        sets = ["#timeline = list_append(if_not_exists(#timeline, :empty), :entries)"]
        removes: list[str] = []

        def assign(attribute: str, value: Any) -> None:
            name = f"#a{len(names)}"
            names[name] = attribute
            if value is None:
                removes.append(name)
            else:
                placeholder = f":v{len(values)}"
                values[placeholder] = serialize(value)
                sets.append(f"{name} = {placeholder}")

        for attribute in plan.changes:
            if attribute == "timeline":
                continue
            assign(attribute, dumped.get(attribute))
        if "version" not in plan.changes:
            assign("version", plan.new_version)
        if after.status is not order.status:
            assign(
                "gsi2pk",
                keys.order_index_keys(order.order_id, order.grid_id, after.status, order.created_at)[
                    "gsi2pk"
                ],
            )
        if after.assignee != order.assignee:
            if after.assignee:
                for attribute, value in keys.assignee_index_keys(
                    after.assignee, order.order_id, order.created_at
                ).items():
                    assign(attribute, value)
            else:
                assign("gsi3pk", None)
                assign("gsi3sk", None)
        due = next_due_ms(after)
        if due is None:
            assign("gsi4pk", None)
            assign("gsi4sk", None)
        else:
            for attribute, value in keys.due_index_keys(order.order_id, to_iso(due)).items():
                assign(attribute, value)

        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        for attempt in range(TRANSACTION_CONFLICT_RETRIES + 1):
            try:
                result = client("dynamodb").update_item(
                    TableName=self.table_name,
                    Key=to_item(keys.order_key(order.order_id)),
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(pk) AND #version = :expected",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
                return _order_of(result["Attributes"])
            except ClientError as exc:
                if _is_condition_failure(exc):
                    raise StaleVersion(
                        "work order changed since it was read; reload it", field="version"
                    ) from exc
                # A telemetry transaction is writing this order right now (botocore does not
                # retry this code): back off and write again; if it persists, a 409, never a 500.
                if exc.response.get("Error", {}).get("Code") != "TransactionConflictException":
                    raise
                if attempt == TRANSACTION_CONFLICT_RETRIES:
                    raise StaleVersion("work order is being updated; try again", field="version") from exc
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def transition(
        self,
        order_id: str,
        plan_for: Callable[[WorkOrder | None], TransitionPlan],
        *,
        attempts: int = 4,
    ) -> tuple[TransitionPlan, WorkOrder]:
        """Read the order, plan, write; on a lost race re-read and plan again (bounded).

        ``plan_for`` gets the freshly read order (None when it does not exist) and returns the plan
        or raises (visibility and the action table are checked on every attempt). A plan the
        client pinned to a version is never re-planned: its failed condition is a 409.
        This is how ``resolve`` racing the sensor's clearance ends ``closed`` either way: the
        second writer re-reads the first one's flag.
        """
        order = self.get(order_id)
        for attempt in range(attempts):
            plan = plan_for(order)
            if order is None:  # plan_for must raise for a missing order
                raise StaleVersion("work order not found", field="version")
            try:
                return plan, self.apply(plan, order)
            except StaleVersion:
                if plan.client_pinned or attempt + 1 >= attempts:
                    raise
            order = self.get(order_id)
        raise StaleVersion("work order keeps changing; try again", field="version")  # pragma: no cover

    # -- lists ---------------------------------------------------------------------------------------
    def list(
        self,
        partitions: Sequence[Partition],
        *,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
        exclusive_start_key: Mapping[str, str] | None = None,
    ) -> tuple[list[WorkOrder], dict[str, str] | None]:
        """Orders from ``partitions`` merged newest first (deduplicated), one page.

        ``since`` / ``until``: UTC ISO bounds on the creation time (inclusive), used as key
        conditions. ``exclusive_start_key``: the position returned by the previous page
        (``{"before": "<created>#<id>"}``). Returns the page and the next position (None at
        the end). Each partition is read by Query only.
        """
        limit = max(1, min(limit, MAX_PAGE))
        before = (exclusive_start_key or {}).get("before")
        low = since
        high = f"{until}{UNTIL_SUFFIX}" if until else None
        if before is not None and (high is None or before < high):
            high = before
        if low is not None and high is not None and low > high:
            return [], None

        reads = [self._read_partition(p, low, high, before, limit) for p in partitions]
        # Every partition is known down to its frontier (None: read to the end); matches at or
        # above the highest frontier are complete across all partitions.
        frontiers = [r.frontier for r in reads if r.frontier is not None]
        cut = max(frontiers) if frontiers else None
        seen: set[str] = set()
        merged: list[tuple[str, WorkOrder]] = []
        for sk, order in heapq.merge(*(r.matches for r in reads), key=lambda pair: pair[0], reverse=True):
            if order.order_id in seen or (cut is not None and sk < cut):
                continue
            seen.add(order.order_id)
            merged.append((sk, order))
        page = merged[:limit]
        if len(merged) > limit or (len(page) == limit and cut is not None):
            return [o for _, o in page], {"before": page[-1][0]}
        if cut is not None:
            return [o for _, o in page], {"before": cut}
        return [o for _, o in page], None

    def list_by_assignee(self, username: str, *, limit: int = MAX_PAGE) -> builtins.list[WorkOrder]:
        """Every order assigned to ``username`` (newest first), by gsi3 Queries (all pages)."""
        out: builtins.list[WorkOrder] = []
        position: dict[str, str] | None = None
        while True:
            page, position = self.list(
                [assignee_partition(username)], limit=limit, exclusive_start_key=position
            )
            out.extend(page)
            if position is None:
                return out

    def overdue(self, now_iso: str, limit: int = 100) -> builtins.list[WorkOrder]:
        """Open orders whose next SLA deadline is before ``now_iso``, earliest first (gsi4 Query)."""
        out: builtins.list[WorkOrder] = []
        start: dict[str, Any] | None = None
        while len(out) < limit:
            params: dict[str, Any] = {
                "TableName": self.table_name,
                "IndexName": keys.GSI4,
                "KeyConditionExpression": "gsi4pk = :p AND gsi4sk < :now",
                "ExpressionAttributeValues": {":p": serialize("DUE"), ":now": serialize(now_iso)},
                "Limit": min(limit - len(out), MAX_PAGE),
            }
            if start:
                params["ExclusiveStartKey"] = start
            result = client("dynamodb").query(**params)
            out.extend(_order_of(item) for item in result.get("Items", []))
            start = result.get("LastEvaluatedKey")
            if not start:
                break
        return out[:limit]

    def _read_partition(
        self, partition: Partition, low: str | None, high: str | None, before: str | None, limit: int
    ) -> _PartitionRead:
        pk_name, sk_name = _INDEX_ATTRS[partition.index]
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": serialize(partition.value)}
        condition = "#pk = :pk"
        if low is not None or high is not None:
            names["#sk"] = sk_name
        if low is not None and high is not None:
            condition += " AND #sk BETWEEN :lo AND :hi"
            values.update({":lo": serialize(low), ":hi": serialize(high)})
        elif low is not None:
            condition += " AND #sk >= :lo"
            values[":lo"] = serialize(low)
        elif high is not None:
            condition += " AND #sk <= :hi"
            values[":hi"] = serialize(high)
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": partition.index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
            "Limit": limit + (1 if before is not None else 0),
        }
        if partition.filters:
            clauses = []
            for i, (attribute, value) in enumerate(sorted(partition.filters.items())):
                names[f"#f{i}"] = attribute
                values[f":f{i}"] = serialize(value)
                clauses.append(f"#f{i} = :f{i}")
            params["FilterExpression"] = " AND ".join(clauses)
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = values

        matches: list[tuple[str, WorkOrder]] = []
        start: dict[str, Any] | None = None
        for _ in range(MAX_QUERIES_PER_PARTITION):
            if start:
                params["ExclusiveStartKey"] = start
            result = client("dynamodb").query(**params)
            for item in result.get("Items", []):
                sk = item[sk_name]["S"]
                if before is not None and sk >= before:
                    continue  # the previous page's last order (the bound is inclusive)
                matches.append((sk, _order_of(item)))
            start = result.get("LastEvaluatedKey")
            if not start or len(matches) >= limit:
                break
        frontier = start[sk_name]["S"] if start else None
        return _PartitionRead(matches, frontier)


@dataclass(frozen=True)
class _PartitionRead:
    matches: list[tuple[str, WorkOrder]]
    """Matching orders, newest first, with their sort keys."""
    frontier: str | None
    """The lowest sort key read (None: the partition was read to its end)."""


__all__ = [
    "MAX_PAGE",
    "Partition",
    "WorkOrderRepository",
    "assignee_partition",
    "grid_partition",
    "order_item",
    "sort_key",
    "status_partition",
]
