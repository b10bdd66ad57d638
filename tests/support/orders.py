"""Work orders for tests: the seed story's order (cover MH-0178 tilts 25.3° in grid G03), the
changes the platform makes to it, and writing them to the table as the telemetry pipeline does."""

from __future__ import annotations

from typing import Any

from smartzone.domain.alarms import AlarmTransition, AlarmType, TransitionKind, make_alarm_id, make_order_id
from smartzone.domain.registry import Device
from smartzone.domain.timeutil import from_iso, to_iso
from smartzone.domain.workorders import OrderStatus, SensorReading, WorkOrder, new_sensor_order, system_entry

RAISED_AT = from_iso("2026-11-29T14:05:00+08:00")
"""The seed story: the cover's sensor reports 25.3° at 14:05 Beijing time."""
CLEARED_AT = RAISED_AT + 64 * 60 * 1000
"""…and the alarm clears 1 h 4 min later (15:09 Beijing time)."""


def cover(device_id: str = "MH-0178", grid_id: str = "G03", road: str = "高新大道") -> Device:
    number = device_id.split("-", 1)[1].lstrip("0")
    return Device(
        device_id=device_id,
        name=f"{road}{number}号井",
        road=road,
        lon=118.3512,
        lat=31.3304,
        grid_id=grid_id,
    )


def tilt_order(
    device: Device | None = None,
    *,
    tilt: float = 25.3,
    raised_at: int = RAISED_AT,
    written_at: int | None = None,
) -> WorkOrder:
    """The order the telemetry pipeline creates when ``device`` tilts past its threshold."""
    device = device or cover()
    transition = AlarmTransition(
        kind=TransitionKind.RAISED,
        alarm_type=AlarmType.TILT,
        device_id=device.device_id,
        alarm_id=make_alarm_id(device.device_id, AlarmType.TILT, raised_at),
        order_id=make_order_id(device.device_id, AlarmType.TILT, raised_at),
        attach=False,
        at=raised_at,
        value=tilt,
        worst=tilt,
        raised_at=raised_at,
    )
    return new_sensor_order(device, transition, written_at if written_at is not None else raised_at + 800)


def _next(order: WorkOrder, at_ms: int, **changes: Any) -> WorkOrder:
    return order.model_copy(update={"version": order.version + 1, "updated_at": to_iso(at_ms), **changes})


def cleared(order: WorkOrder, *, value: float = 3.1, at_ms: int = CLEARED_AT) -> WorkOrder:
    """The alarm clears: ``sensor_normal`` set (the order closes when it was already resolved)."""
    entry = system_entry(at_ms, "alarm_cleared", f"传感器恢复正常({value}°),告警解除")
    changes: dict[str, Any] = {
        "sensor_normal": True,
        "sensor_normal_at": to_iso(at_ms),
        "timeline": [*order.timeline, entry],
    }
    if order.status is OrderStatus.RESOLVED:
        close = system_entry(
            at_ms,
            "close",
            "已办结且传感器恢复正常,工单自动关闭(预警消除)",
            OrderStatus.RESOLVED,
            OrderStatus.CLOSED,
        )
        changes.update(
            status=OrderStatus.CLOSED, closed_at=to_iso(at_ms), timeline=[*changes["timeline"], close]
        )
    return _next(order, at_ms, **changes)


def reraised(order: WorkOrder, *, value: float = 27.0, at_ms: int | None = None) -> WorkOrder:
    """The alarm raises again while the order is open: it attaches to the order."""
    at_ms = at_ms if at_ms is not None else from_iso(order.updated_at) + 10 * 60 * 1000
    entry = system_entry(at_ms, "alarm_reraised", f"告警再次触发:{value}°,并入本工单")
    return _next(
        order,
        at_ms,
        sensor_normal=False,
        reraise_count=order.reraise_count + 1,
        timeline=[*order.timeline, entry],
    )


def transitioned(order: WorkOrder, to: OrderStatus, *, at_ms: int | None = None, **changes: Any) -> WorkOrder:
    """A person moves the order to ``to`` (acknowledge, verify, handle, resolve, close, cancel)."""
    at_ms = at_ms if at_ms is not None else from_iso(order.updated_at) + 5 * 60 * 1000
    entry = system_entry(at_ms, "transition", "状态变更", order.status, to).model_copy(
        update={"actor": "gw-g03-01", "role": "grid_worker"}
    )
    return _next(order, at_ms, status=to, timeline=[*order.timeline, entry], **changes)


def commented(order: WorkOrder, note: str = "已联系维修人员", *, at_ms: int | None = None) -> WorkOrder:
    """A comment: a new version, but nothing a notification is due for."""
    at_ms = at_ms if at_ms is not None else from_iso(order.updated_at) + 60 * 1000
    entry = system_entry(at_ms, "comment", note).model_copy(
        update={"actor": "gw-g03-01", "role": "grid_worker"}
    )
    return _next(order, at_ms, timeline=[*order.timeline, entry])


def with_reading(order: WorkOrder, value: float, at_ms: int) -> WorkOrder:
    return order.model_copy(update={"reading": SensorReading(value=value, unit="deg", at=to_iso(at_ms))})


def order_image(order: WorkOrder) -> dict[str, Any]:
    """The order item as plain values (keys, ``entity`` and the order's JSON), as the table holds it."""
    from smartzone.repositories import keys

    data = order.model_dump(mode="json", exclude_none=True, by_alias=True)
    return {
        **keys.order_key(order.order_id),
        **keys.order_index_keys(order.order_id, order.grid_id, order.status.value, order.created_at),
        "entity": "order",
        **data,
    }


def put_order(table_name: str, order: WorkOrder) -> None:
    """Write the order item (INSERT or MODIFY on the stream, like the platform's own writes)."""
    from smartzone.repositories.clients import client
    from smartzone.repositories.codec import to_item

    client("dynamodb").put_item(TableName=table_name, Item=to_item(order_image(order)))
