"""Detection merge state, daily detection counters and the one transaction per camera and type.

Items (see :mod:`smartzone.repositories.keys`):

- merge state ``DETECT#<camera_id>`` / ``STATE#<type>``: :class:`MergeState` plus ``version``; while
  a transient type's order is open it also carries gsi1 ``DETTRANSIENT`` / ``<due iso>#<camera>#<type>``
  so that the sweeper finds the orders due to close themselves with one Query (never a Scan);
- counters ``DETCOUNT#<day>`` / ``<camera_id>#<type>``: ``below_threshold`` and ``dispatched``
  (detections merged into orders), maintained with ``ADD``, and the camera's ``grid_id`` (so that
  ``GET /v1/stats`` shows a grid worker only their grids' cameras).

:meth:`DetectionStore.write` writes a :class:`MergePlan` as ONE ``TransactWriteItems``: the state
(condition: the version it was planned from), the join of the open order (condition: the order is
still being worked: dispatched … handling), each new order (condition: it does not exist) and the
day's counters. The outcome says which condition failed, so the pipeline re-plans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.detection_merge import MergePlan, MergeState
from smartzone.domain.timeutil import to_iso
from smartzone.domain.workorders import WORKING_STATUSES, WorkOrder
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, serialize, to_item
from smartzone.repositories.workorders import order_item

BATCH_GET_LIMIT = 100
TRANSACTION_LIMIT = 100
"""Items one ``TransactWriteItems`` may hold (DynamoDB's limit)."""
MAX_UNPROCESSED_ROUNDS = 5
STATE_FIELDS = frozenset(MergeState.model_fields)
TRANSIENT_PARTITION = "DETTRANSIENT"

Pair = tuple[str, str]
"""(camera_id, detection type)."""


class WriteOutcome(StrEnum):
    WRITTEN = "written"
    STATE_CONFLICT = "state_conflict"
    """Another writer changed the merge state since it was read: re-read and plan again."""
    ORDER_NOT_JOINABLE = "order_not_joinable"
    """The open order is no longer being worked (resolved, closed, cancelled, gone)."""
    ORDER_EXISTS = "order_exists"
    """A new order's id is taken (its detections were already written by an earlier incarnation)."""
    BUSY = "busy"
    """A transaction on the same items was in progress: retry."""


class StoreUnavailable(Exception):
    """DynamoDB left keys unprocessed after retries: the batch's messages are retried."""


@dataclass(frozen=True, slots=True)
class TransientDue:
    camera_id: str
    type: str
    state: MergeState


def transaction_size(plan: MergePlan) -> int:
    """Items :meth:`DetectionStore.write` puts in the plan's transaction: the state, the join, each
    new order and the counters."""
    return (
        1
        + (plan.join is not None)
        + len(plan.new_orders)
        + (1 if plan.below_threshold or plan.dispatched else 0)
    )


def state_of(item: dict[str, Any]) -> MergeState:
    data = from_item(item)
    seen = data.get("seen")
    if isinstance(seen, str):  # stored as one space-separated string (one attribute value, not a list)
        data["seen"] = seen.split()
    return MergeState.model_validate({k: v for k, v in data.items() if k in STATE_FIELDS})


class DetectionStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # -- reads ---------------------------------------------------------------------------------------
    def load_states(self, pairs: Iterable[Pair]) -> dict[Pair, MergeState]:
        """Merge states by (camera, type): one BatchGetItem per 100 (absent: a fresh state)."""
        wanted = sorted(set(pairs))
        found: dict[Pair, MergeState] = {pair: MergeState() for pair in wanted}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        to_item(keys.detection_state_key(*p)) for p in wanted[start : start + BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                }
            }
            for _ in range(MAX_UNPROCESSED_ROUNDS):
                response = client("dynamodb").batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    camera_id = item["pk"]["S"].removeprefix("DETECT#")
                    found[(camera_id, item["sk"]["S"].removeprefix("STATE#"))] = state_of(item)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise StoreUnavailable("merge state keys left unprocessed")
        return found

    def load_state(self, camera_id: str, detection_type: str) -> MergeState:
        item = (
            client("dynamodb")
            .get_item(
                TableName=self.table_name,
                Key=to_item(keys.detection_state_key(camera_id, detection_type)),
                ConsistentRead=True,
            )
            .get("Item")
        )
        return state_of(item) if item else MergeState()

    def counters(self, day: str) -> list[dict[str, Any]]:
        """The day's per-camera/type detection counters (one Query of the day's partition)."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"DETCOUNT#{day}"}},
        }
        rows: list[dict[str, Any]] = []
        while True:
            response = client("dynamodb").query(**params)
            rows.extend(from_item(item) for item in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return rows
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def counters_of(self, days: Iterable[str], pairs: Iterable[Pair]) -> list[dict[str, Any]]:
        """The counters of ``pairs`` on each of ``days`` (BatchGetItem, 100 keys a call; never a
        Query: ``GET /v1/stats`` reads only keys it can name)."""
        wanted = [
            to_item(keys.detection_counter_key(day, *pair)) for day in days for pair in sorted(set(pairs))
        ]
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self.table_name: {"Keys": wanted[start : start + BATCH_GET_LIMIT]}}
            for _ in range(MAX_UNPROCESSED_ROUNDS):
                response = client("dynamodb").batch_get_item(RequestItems=request)
                rows.extend(
                    from_item(item) for item in response.get("Responses", {}).get(self.table_name, [])
                )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise StoreUnavailable("detection counter keys left unprocessed")
        return rows

    def transient_due(self, now_ms: int, limit: int = 100) -> list[TransientDue]:
        """Merge states whose transient order is due to close (earliest first)."""
        response = client("dynamodb").query(
            TableName=self.table_name,
            IndexName=keys.GSI1,
            KeyConditionExpression="gsi1pk = :p AND gsi1sk <= :due",
            ExpressionAttributeValues={
                ":p": {"S": TRANSIENT_PARTITION},
                ":due": {"S": to_iso(now_ms) + "#\uffff"},
            },
            Limit=limit,
        )
        due: list[TransientDue] = []
        for item in response.get("Items", []):
            camera_id = item["pk"]["S"].removeprefix("DETECT#")
            detection_type = item["sk"]["S"].removeprefix("STATE#")
            # The index projects all attributes, but read the state strongly consistent anyway.
            due.append(TransientDue(camera_id, detection_type, self.load_state(camera_id, detection_type)))
        return due

    # -- writes --------------------------------------------------------------------------------------
    def _state_put(self, camera_id: str, detection_type: str, plan: MergePlan) -> dict[str, Any]:
        state = plan.state
        item: dict[str, Any] = {
            **keys.detection_state_key(camera_id, detection_type),
            "entity": "detection_state",
            "camera_id": camera_id,
            "type": detection_type,
            **state.model_dump(mode="json", exclude_none=True),
            "seen": " ".join(state.seen) or None,
        }
        if state.transient_due is not None:
            item.update(keys.transient_index_keys(to_iso(state.transient_due), camera_id, detection_type))
        put: dict[str, Any] = {"TableName": self.table_name, "Item": to_item(item)}
        if plan.expected_version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": serialize(plan.expected_version)}
        return {"Put": put}

    def _join_update(self, plan: MergePlan, now_iso: str) -> dict[str, Any]:
        assert plan.join is not None
        statuses = sorted(WORKING_STATUSES)
        names = {f":s{i}": serialize(s.value) for i, s in enumerate(statuses)}
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item(keys.order_key(plan.join.order_id)),
                "UpdateExpression": "SET detection = :det, updated_at = :now, #v = #v + :one",
                "ConditionExpression": f"attribute_exists(pk) AND #st IN ({', '.join(names)})",
                "ExpressionAttributeNames": {"#st": "status", "#v": "version"},
                "ExpressionAttributeValues": {
                    ":det": serialize(plan.join.summary.model_dump(mode="json", exclude_none=True)),
                    ":now": serialize(now_iso),
                    ":one": serialize(1),
                    **names,
                },
            }
        }

    def _order_put(self, order: WorkOrder) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(order_item(order)),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _counter_update(
        self, day: str, camera_id: str, detection_type: str, below: int, dispatched: int, grid_id: str
    ) -> dict[str, Any]:
        values = {":b": serialize(below), ":d": serialize(dispatched)}
        expression = "ADD below_threshold :b, dispatched :d"
        if grid_id:
            expression = f"SET grid_id = :g {expression}"
            values[":g"] = serialize(grid_id)
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item(keys.detection_counter_key(day, camera_id, detection_type)),
                "UpdateExpression": expression,
                "ExpressionAttributeValues": values,
            }
        }

    def write(
        self,
        camera_id: str,
        detection_type: str,
        plan: MergePlan,
        *,
        day: str,
        now_ms: int,
        grid_id: str = "",
        taken: set[str] | None = None,
    ) -> WriteOutcome:
        """The plan as one transaction (state, join, new orders, counters; at most
        :data:`TRANSACTION_LIMIT` items, see :func:`transaction_size`). On ``ORDER_EXISTS`` the ids of
        the new orders whose id was taken are added to ``taken``."""
        kinds: list[str] = ["state"]
        items: list[dict[str, Any]] = [self._state_put(camera_id, detection_type, plan)]
        if plan.join is not None:
            kinds.append("join")
            items.append(self._join_update(plan, to_iso(now_ms)))
        for order in plan.new_orders:
            kinds.append("order")
            items.append(self._order_put(order))
        if plan.below_threshold or plan.dispatched:
            kinds.append("counter")
            items.append(
                self._counter_update(
                    day, camera_id, detection_type, plan.below_threshold, plan.dispatched, grid_id
                )
            )
        assert len(items) == transaction_size(plan) <= TRANSACTION_LIMIT, len(items)
        try:
            client("dynamodb").transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            failed = {
                kinds[i] for i, code in enumerate(reasons[: len(kinds)]) if code == "ConditionalCheckFailed"
            }
            if "state" in failed:
                return WriteOutcome.STATE_CONFLICT
            if "join" in failed:
                return WriteOutcome.ORDER_NOT_JOINABLE
            if "order" in failed:
                if taken is not None:
                    orders = iter(plan.new_orders)
                    for kind, code in zip(kinds, reasons, strict=False):
                        order_id = next(orders).order_id if kind == "order" else None
                        if order_id is not None and code == "ConditionalCheckFailed":
                            taken.add(order_id)
                return WriteOutcome.ORDER_EXISTS
            return WriteOutcome.BUSY
        return WriteOutcome.WRITTEN

    def count_only(
        self, camera_id: str, detection_type: str, *, day: str, below: int, grid_id: str = ""
    ) -> None:
        """Below-threshold detections of a batch that writes nothing else: one ``ADD``."""
        update = self._counter_update(day, camera_id, detection_type, below, 0, grid_id)["Update"]
        client("dynamodb").update_item(**update)

    def release_transient(self, camera_id: str, detection_type: str, state: MergeState, now_ms: int) -> bool:
        """Take the state off the transient index (condition: unchanged version and due by ``now_ms``:
        a state whose order a detection joined meanwhile keeps its new due time). The open order stays
        the one to join: an acknowledged order keeps collecting detections; an expired one is not
        joinable, so the next detection opens a new order."""
        try:
            client("dynamodb").update_item(
                TableName=self.table_name,
                Key=to_item(keys.detection_state_key(camera_id, detection_type)),
                UpdateExpression="SET #v = :nv REMOVE #due, gsi1pk, gsi1sk",
                ConditionExpression="#v = :v AND (attribute_not_exists(#due) OR #due <= :now)",
                ExpressionAttributeNames={"#v": "version", "#due": "transient_due"},
                ExpressionAttributeValues={
                    ":v": serialize(state.version),
                    ":nv": serialize(state.version + 1),
                    ":now": serialize(now_ms),
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
