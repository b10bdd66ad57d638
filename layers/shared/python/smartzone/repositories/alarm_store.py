"""Persists alarm transitions: device state, alarm item and work order in one DynamoDB transaction.

Every transaction is guarded by the device's version (optimistic concurrency), so duplicated,
reordered or concurrent deliveries can never create a second open alarm or order: the loser sees
a :class:`DeviceConflict`, reloads the device and re-evaluates (its readings are then older than
the watermark and dropped). The order update has ordered alternatives chosen by condition, e.g. a
clearance flags a working order, closes a resolved one, or only records itself on a closed one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.alarms import AlarmTransition, DeviceState, TransitionKind, make_order_id
from smartzone.domain.registry import Device
from smartzone.domain.sla import next_due_ms, target_for
from smartzone.domain.timeutil import to_iso
from smartzone.domain.workorders import (
    CATEGORY_OF_ALARM,
    FINAL_STATUSES,
    WORKING_STATUSES,
    OrderStatus,
    SensorReading,
    new_sensor_order,
    system_entry,
    unit_of,
)
from smartzone.repositories import keys
from smartzone.repositories.clients import client
from smartzone.repositories.codec import serialize, to_item
from smartzone.repositories.devices import DeviceRecord, TransientStoreError, seen_values, state_json


class DeviceConflict(Exception):
    """The device item changed since it was read: reload it and evaluate again."""


@dataclass(frozen=True, slots=True)
class StepResult:
    state: DeviceState
    version: int


def _reading(t: AlarmTransition) -> dict[str, Any]:
    """The reading that caused the transition, as the order's ``reading`` field."""
    return SensorReading(value=t.value, unit=unit_of(t.alarm_type), at=to_iso(t.at)).model_dump(mode="json")


def _due_values(t: AlarmTransition, now_ms: int) -> dict[str, str]:
    """A reopened order is due to be resolved again within its category's target."""
    due = now_ms + target_for(CATEGORY_OF_ALARM[t.alarm_type]).resolve_s * 1000
    index = keys.due_index_keys(t.order_id, to_iso(due))
    return {":g4p": index["gsi4pk"], ":g4s": index["gsi4sk"]}


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


@dataclass(slots=True)
class _Op:
    """One TransactWriteItems entry, with what choosing it does to the device state."""

    item: dict[str, Any]
    kind: str  # "device" | "alarm" | "order"
    state_patch: Callable[[DeviceState], None] | None = None


def _release_order(alarm_type: str) -> Callable[[DeviceState], None]:
    def patch(state: DeviceState) -> None:
        track = state.alarms.get(alarm_type)
        if track is not None:
            track.order_id = None

    return patch


def _use_order(alarm_type: str, order_id: str) -> Callable[[DeviceState], None]:
    def patch(state: DeviceState) -> None:
        track = state.alarms.get(alarm_type)
        if track is not None:
            track.order_id = order_id

    return patch


class AlarmStore:
    def __init__(self, table_name: str, *, max_attempts: int = 5) -> None:
        self.table_name = table_name
        self.max_attempts = max_attempts

    # -- item builders -------------------------------------------------------------------------
    def _update(
        self,
        key: dict[str, str],
        expression: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str],
    ) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": to_item(key),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {k: serialize(v) for k, v in values.items()},
            }
        }

    def _put(self, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": to_item(data),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _new_order(
        self, device: Device, transition: AlarmTransition, order_id: str, now_ms: int
    ) -> dict[str, Any]:
        order = new_sensor_order(device, transition, now_ms)
        order = order.model_copy(update={"order_id": order_id})
        data = order.model_dump(mode="json", exclude_none=True, by_alias=True)
        due = next_due_ms(order)
        return self._put(
            {
                **keys.order_key(order_id),
                **keys.order_index_keys(order_id, order.grid_id, order.status, order.created_at),
                **(keys.due_index_keys(order_id, to_iso(due)) if due is not None else {}),
                "entity": "order",
                **data,
            }
        )

    def _alarm_put(self, device: Device, t: AlarmTransition, order_id: str) -> dict[str, Any]:
        raised = to_iso(t.raised_at)
        return self._put(
            {
                **keys.alarm_key(device.device_id, t.alarm_type.value, raised),
                "entity": "alarm",
                "alarm_id": t.alarm_id,
                "device_id": device.device_id,
                "grid_id": device.grid_id,
                "alarm_type": t.alarm_type.value,
                "order_id": order_id,
                "status": "active",
                "raised_at": raised,
                "raise_value": t.value,
            }
        )

    def _alarm_clear(self, device: Device, t: AlarmTransition) -> dict[str, Any]:
        return self._update(
            keys.alarm_key(device.device_id, t.alarm_type.value, to_iso(t.raised_at)),
            "SET #st = :cleared, cleared_at = :at, clear_value = :v, worst_value = :w",
            "attribute_exists(pk)",
            {":cleared": "cleared", ":at": to_iso(t.at), ":v": t.value, ":w": t.worst},
            {"#st": "status"},
        )

    def _order_update(
        self,
        order_id: str,
        sets: list[str],
        condition_statuses: frozenset[OrderStatus] | OrderStatus,
        values: dict[str, Any],
        entries: list[dict[str, Any]],
        removes: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        statuses = (
            [condition_statuses]
            if isinstance(condition_statuses, OrderStatus)
            else sorted(condition_statuses)
        )
        placeholders = [f":cs{i}" for i in range(len(statuses))]
        all_values = {
            **values,
            **{p: s.value for p, s in zip(placeholders, statuses, strict=True)},
            ":tl": entries,
            ":one": 1,
        }
        return self._update(
            keys.order_key(order_id),
            "SET "
            + ", ".join([*sets, "timeline = list_append(timeline, :tl)", "version = version + :one"])
            + (" REMOVE " + ", ".join(removes) if removes else ""),
            f"attribute_exists(pk) AND #st IN ({', '.join(placeholders)})",
            all_values,
            {"#st": "status"},
        )

    # -- alternatives per transition -------------------------------------------------------------
    def _raise_ops(self, device: Device, t: AlarmTransition, now_ms: int) -> list[list[_Op]]:
        key = t.alarm_type.value
        if not t.attach:
            return [
                [
                    _Op(self._alarm_put(device, t, t.order_id), "alarm"),
                    _Op(self._new_order(device, t, t.order_id, now_ms), "order"),
                ]
            ]
        now = to_iso(now_ms)
        unit = "°" if key == "tilt" else "%"
        note = f"告警再次触发:{_fmt(t.value)}{unit},并入本工单"
        reraise = system_entry(now_ms, "alarm_reraised", note).to_item()
        common_sets = [
            "reading = :rd",
            "sensor_normal = :f",
            "reraise_count = if_not_exists(reraise_count, :zero) + :one",
            "alarm_ids = list_append(alarm_ids, :aid)",
            "updated_at = :now",
        ]
        common_values = {":f": False, ":zero": 0, ":aid": [t.alarm_id], ":now": now, ":rd": _reading(t)}
        attach = self._order_update(t.order_id, common_sets, WORKING_STATUSES, common_values, [reraise])
        reopen_entry = system_entry(
            now_ms,
            "reopen",
            "告警再次触发,已办结工单自动重新打开",
            OrderStatus.RESOLVED,
            OrderStatus.HANDLING,
        ).to_item()
        reopen = self._order_update(
            t.order_id,
            [*common_sets, "#st = :handling", "gsi2pk = :g2", "gsi4pk = :g4p", "gsi4sk = :g4s"],
            OrderStatus.RESOLVED,
            {
                **common_values,
                ":handling": OrderStatus.HANDLING.value,
                ":g2": f"ORDERSTATUS#{OrderStatus.HANDLING.value}",
                **_due_values(t, now_ms),
            },
            [reraise, reopen_entry],
        )
        fresh_id = make_order_id(device.device_id, t.alarm_type, t.at)
        return [
            [_Op(self._alarm_put(device, t, t.order_id), "alarm"), _Op(attach, "order")],
            [_Op(self._alarm_put(device, t, t.order_id), "alarm"), _Op(reopen, "order")],
            [
                _Op(self._alarm_put(device, t, fresh_id), "alarm"),
                _Op(self._new_order(device, t, fresh_id, now_ms), "order", _use_order(key, fresh_id)),
            ],
        ]

    def _clear_ops(self, device: Device, t: AlarmTransition, now_ms: int) -> list[list[_Op]]:
        key = t.alarm_type.value
        clear_alarm = _Op(self._alarm_clear(device, t), "alarm")
        if not t.order_id:
            return [[clear_alarm]]
        now = to_iso(now_ms)
        unit = "°" if key == "tilt" else "%"
        cleared = system_entry(
            now_ms, "alarm_cleared", f"传感器恢复正常({_fmt(t.value)}{unit}),告警解除"
        ).to_item()
        sets = ["reading = :rd", "sensor_normal = :t", "sensor_normal_at = :now", "updated_at = :now"]
        values = {":t": True, ":now": now, ":rd": _reading(t)}
        flag = self._order_update(t.order_id, sets, WORKING_STATUSES, values, [cleared])
        closed_entry = system_entry(
            now_ms,
            "close",
            "已办结且传感器恢复正常,工单自动关闭(预警消除)",
            OrderStatus.RESOLVED,
            OrderStatus.CLOSED,
        ).to_item()
        close = self._order_update(
            t.order_id,
            [*sets, "#st = :closed", "closed_at = :now", "gsi2pk = :g2"],
            OrderStatus.RESOLVED,
            {**values, ":closed": OrderStatus.CLOSED.value, ":g2": f"ORDERSTATUS#{OrderStatus.CLOSED.value}"},
            [cleared, closed_entry],
            ("gsi4pk", "gsi4sk"),
        )
        record_only = self._order_update(t.order_id, sets, FINAL_STATUSES, values, [cleared])
        release = _release_order(key)
        return [
            [clear_alarm, _Op(flag, "order")],
            [clear_alarm, _Op(close, "order", release)],
            [clear_alarm, _Op(record_only, "order", release)],
            [_Op(clear_alarm.item, "alarm", release)],  # the order no longer exists
        ]

    # -- the transaction -------------------------------------------------------------------------
    def persist(
        self, record: DeviceRecord, state: DeviceState, transitions: tuple[AlarmTransition, ...], now_ms: int
    ) -> StepResult:
        """Write ``state`` and the transitions' alarm and order items atomically."""
        device = record.device
        alternatives = [
            self._raise_ops(device, t, now_ms)
            if t.kind is TransitionKind.RAISED
            else self._clear_ops(device, t, now_ms)
            for t in transitions
        ]
        choice = [0] * len(alternatives)
        for attempt in range(self.max_attempts):
            written = state.model_copy(deep=True)
            ops: list[_Op] = []
            owners: list[int] = []  # transition index of each op after the device op
            for index, options in enumerate(alternatives):
                for op in options[choice[index]]:
                    ops.append(op)
                    owners.append(index)
                    if op.state_patch:
                        op.state_patch(written)
            new_version = record.version + 1
            device_op = self._update(
                keys.device_key(device.device_id),
                "SET #s = :s, #v = :nv, gsi3pk = :g3p, gsi3sk = :g3s",
                "#v = :v",
                {
                    ":s": state_json(written),
                    ":v": record.version,
                    ":nv": new_version,
                    **seen_values(device, written),
                },
                {"#s": "state", "#v": "version"},
            )
            try:
                client("dynamodb").transact_write_items(TransactItems=[device_op, *[op.item for op in ops]])
                return StepResult(written, new_version)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            if not reasons or reasons[0] == "ConditionalCheckFailed":
                raise DeviceConflict(device.device_id)
            advanced = False
            for position, code in enumerate(reasons[1:]):
                if code != "ConditionalCheckFailed":
                    continue
                op, owner = ops[position], owners[position]
                if op.kind != "order" or choice[owner] + 1 >= len(alternatives[owner]):
                    raise DeviceConflict(device.device_id)
                choice[owner] += 1
                advanced = True
            if not advanced:  # TransactionConflict / throttling inside the transaction: back off
                time.sleep(min(0.05 * 2**attempt, 0.5))
        raise TransientStoreError(f"transaction for {device.device_id} did not settle")
