"""Persists alarm transitions: device state, alarm item and work order in one DynamoDB transaction.

Every transaction is guarded by the device's version (optimistic concurrency), so duplicated,
reordered or concurrent deliveries can never create a second open alarm or order: the loser sees
a :class:`DeviceConflict`, reloads the device and re-evaluates (its readings are then older than
the watermark and dropped). The order update has ordered alternatives chosen by condition, e.g. a
clearance flags a working order, closes a resolved one, or only records itself on a closed one.

``offline`` alarms (raised by the sweeper, cleared by telemetry) use the same transaction:

- a single device's offline order is an ordinary sensor order without a reading; its clearance
  (the device reports again) flags it ``sensor_normal`` like any other clearance, with a note
  saying how long the device was silent;
- many devices of one grid share one incident order: :meth:`AlarmStore.create_incident` puts it
  once (conditional put, a repeat is a no-op), then each device's transaction attaches to it
  (a condition check when the order already lists the device, else an update appending the
  device and its alarm; a fresh per-device order when the incident is no longer open). When such a
  device reports again, its clearance records the device on the incident (``devices_back`` and a
  timeline entry) and releases the device's reference to it. Nothing closes an incident
  automatically: it has no single sensor behind it, so ``resolve`` closes it directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from smartzone.domain.alarms import AlarmTransition, AlarmType, DeviceState, TransitionKind, make_order_id
from smartzone.domain.registry import Device
from smartzone.domain.sla import next_due_ms, target_for
from smartzone.domain.timeutil import to_iso, to_local_display
from smartzone.domain.workorders import (
    CATEGORY_OF_ALARM,
    FINAL_STATUSES,
    WORKING_STATUSES,
    OrderStatus,
    SensorReading,
    WorkOrder,
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


def _duration_zh(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, rest = divmod(minutes, 60)
    return f"{hours} 小时 {rest} 分钟" if rest else f"{hours} 小时"


def _is_offline(t: AlarmTransition) -> bool:
    return t.alarm_type is AlarmType.OFFLINE


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


def _own_order(alarm_type: str, order_id: str | None) -> Callable[[DeviceState], None]:
    """The track refers to ``order_id`` (``None``: to no order), not to an incident any more."""

    def patch(state: DeviceState) -> None:
        track = state.alarms.get(alarm_type)
        if track is not None:
            track.order_id = order_id
            track.incident = False

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
        if _is_offline(transition):
            last_seen = transition.at - int(transition.value * 1000)
            extra = f"最后一次上报:{to_local_display(last_seen)}(北京时间),已 {_duration_zh(transition.value)}无数据。"
            first = order.timeline[0].model_copy(update={"note": f"告警触发:{order.description}{extra}"})
            order = order.model_copy(
                update={"reading": None, "description": order.description + extra, "timeline": [first]}
            )
        return self._order_put(order)

    def _order_put(self, order: WorkOrder) -> dict[str, Any]:
        order_id = order.order_id
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
        if t.incident:
            return self._incident_raise_ops(device, t, now_ms)
        if not t.attach:
            return [
                [
                    _Op(self._alarm_put(device, t, t.order_id), "alarm"),
                    _Op(self._new_order(device, t, t.order_id, now_ms), "order"),
                ]
            ]
        now = to_iso(now_ms)
        unit = "°" if key == "tilt" else "%"
        if _is_offline(t):
            note = f"设备再次离线(已 {_duration_zh(t.value)}无数据),并入本工单"
        else:
            note = f"告警再次触发:{_fmt(t.value)}{unit},并入本工单"
        reraise = system_entry(now_ms, "alarm_reraised", note).to_item()
        common_sets = [
            "sensor_normal = :f",
            "reraise_count = if_not_exists(reraise_count, :zero) + :one",
            "alarm_ids = list_append(alarm_ids, :aid)",
            "updated_at = :now",
        ]
        common_values: dict[str, Any] = {":f": False, ":zero": 0, ":aid": [t.alarm_id], ":now": now}
        if not _is_offline(t):
            common_sets.insert(0, "reading = :rd")
            common_values[":rd"] = _reading(t)
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

    def _incident_raise_ops(self, device: Device, t: AlarmTransition, now_ms: int) -> list[list[_Op]]:
        """Attach to a shared incident order: listed already (created for this sweep) → a condition
        check; open but not listing the device (joining later) → append it; no longer open → the
        device gets its own order."""
        key = t.alarm_type.value
        open_statuses = sorted(WORKING_STATUSES)
        placeholders = [f":cs{i}" for i in range(len(open_statuses))]
        status_values = {p: st.value for p, st in zip(placeholders, open_statuses, strict=True)}
        is_open = f"attribute_exists(pk) AND #st IN ({', '.join(placeholders)})"
        check = {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": to_item(keys.order_key(t.order_id)),
                "ConditionExpression": f"{is_open} AND contains(alarm_ids, :aid)",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": {
                    k: serialize(v) for k, v in {**status_values, ":aid": t.alarm_id}.items()
                },
            }
        }
        joined = system_entry(
            now_ms,
            "incident_joined",
            f"{device.short_name}({device.device_id})离线(已 {_duration_zh(t.value)}无数据),并入本事件",
        ).to_item()
        join = self._order_update(
            t.order_id,
            [
                "alarm_ids = list_append(alarm_ids, :aid)",
                "device_ids = list_append(if_not_exists(device_ids, :empty), :dev)",
                "updated_at = :now",
            ],
            WORKING_STATUSES,
            {":aid": [t.alarm_id], ":dev": [device.device_id], ":empty": [], ":now": to_iso(now_ms)},
            [joined],
        )
        fresh_id = make_order_id(device.device_id, t.alarm_type, t.at)
        return [
            [_Op(self._alarm_put(device, t, t.order_id), "alarm"), _Op(check, "order")],
            [_Op(self._alarm_put(device, t, t.order_id), "alarm"), _Op(join, "order")],
            [
                _Op(self._alarm_put(device, t, fresh_id), "alarm"),
                _Op(self._new_order(device, t, fresh_id, now_ms), "order", _own_order(key, fresh_id)),
            ],
        ]

    def _incident_clear_ops(self, device: Device, t: AlarmTransition, now_ms: int) -> list[list[_Op]]:
        """A device of an incident is back: record it on the incident (any status) and release it."""
        release = _own_order(t.alarm_type.value, None)
        clear_alarm = self._alarm_clear(device, t)
        back = system_entry(
            now_ms,
            "device_back",
            f"{device.short_name}({device.device_id})恢复上报(离线 {_duration_zh(t.value)})",
        ).to_item()
        record = self._update(
            keys.order_key(t.order_id),
            "SET devices_back = list_append(if_not_exists(devices_back, :empty), :dev), "
            "timeline = list_append(timeline, :tl), updated_at = :now, version = version + :one",
            "attribute_exists(pk)",
            {":dev": [device.device_id], ":empty": [], ":tl": [back], ":now": to_iso(now_ms), ":one": 1},
            {},
        )
        del record["Update"]["ExpressionAttributeNames"]
        return [
            [_Op(clear_alarm, "alarm"), _Op(record, "order", release)],
            [_Op(clear_alarm, "alarm", release)],  # the order no longer exists
        ]

    def _clear_ops(self, device: Device, t: AlarmTransition, now_ms: int) -> list[list[_Op]]:
        key = t.alarm_type.value
        clear_alarm = _Op(self._alarm_clear(device, t), "alarm")
        if not t.order_id:
            return [[clear_alarm]]
        if t.incident:
            return self._incident_clear_ops(device, t, now_ms)
        now = to_iso(now_ms)
        unit = "°" if key == "tilt" else "%"
        sets = ["sensor_normal = :t", "sensor_normal_at = :now", "updated_at = :now"]
        values: dict[str, Any] = {":t": True, ":now": now}
        if _is_offline(t):
            note = f"设备恢复上报(离线 {_duration_zh(t.value)}),离线告警解除"
        else:
            note = f"传感器恢复正常({_fmt(t.value)}{unit}),告警解除"
            sets.insert(0, "reading = :rd")
            values[":rd"] = _reading(t)
        cleared = system_entry(now_ms, "alarm_cleared", note).to_item()
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

    # -- incidents -------------------------------------------------------------------------------
    def create_incident(self, order: WorkOrder, device_ids: list[str]) -> bool:
        """Put a shared incident order once (listing ``device_ids``); ``False`` when it already
        exists (a repeated sweep)."""
        put = self._order_put(order)["Put"]
        put["Item"]["device_ids"] = {"L": [{"S": d} for d in device_ids]}
        try:
            client("dynamodb").put_item(
                TableName=put["TableName"], Item=put["Item"], ConditionExpression=put["ConditionExpression"]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
