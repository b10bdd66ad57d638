"""Outbound events of the outbox dispatcher: what changed on a work order, and how to say it.

Pure logic. The outbox dispatcher reads the table's stream; for every change of an order item it
calls :func:`derive_event`, which yields at most ONE :class:`OutboundEvent` per order version:

| change (old → new image)                          | event type             |
|---------------------------------------------------|------------------------|
| INSERT                                            | ``order_created``      |
| MODIFY, status became ``closed``                  | ``order_closed``       |
| MODIFY, ``sensor_normal`` became true             | ``alarm_cleared``      |
| MODIFY, ``reraise_count`` grew                    | ``alarm_reraised``     |
| MODIFY, any other status change                   | ``order_status_changed``|
| MODIFY, ``escalation_level`` grew (with the       | ``order_escalated``    |
| ``escalate`` timeline entry of that write)        |                        |
| MODIFY without any of these (comment, reassign)   | none                   |
| REMOVE                                            | none                   |

The first matching row wins (a write that clears the alarm and closes the order is one
``order_closed`` event whose text says both). The event id ``<order_id>:v<version>`` is stable:
a redelivered stream record yields the same id, so consumers deduplicate on it.

Every event carries the SNS message attributes ``grid_id``, ``category``, ``severity``,
``event_type`` and ``event_id``; grid workers subscribe with ``{"grid_id": ["G03"]}``.
Escalations (``order_escalated``: the sweeper found the order overdue, or a dispatcher escalated
it) are meant for the command centre and also carry ``audience`` = ``dispatchers``; dispatchers
subscribe to the same topic with the filter policy (scope ``MessageAttributes``)::

    {"audience": ["dispatchers"]}            # or, equivalently today:
    {"event_type": ["order_escalated"]}

A grid worker's ``grid_id`` policy also matches the escalations of their grid's orders (they see
that their order is overdue); add ``"event_type": [{"anything-but": ["order_escalated"]}]`` to
their policy to keep them out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.alarms import AlarmType
from smartzone.domain.timeutil import from_iso, to_local_display
from smartzone.domain.workorders import (
    CATEGORY_LABEL_ZH,
    STATUS_LABEL_ZH,
    SYSTEM_ROLE,
    OrderStatus,
    SensorReading,
    TimelineEntry,
    WorkOrder,
)

ORDER_ENTITY = "order"
ORDER_SK = "ORDER"
"""An order item: ``entity`` ``order`` (or, without ``entity``, the sort key ``ORDER``)."""
SUBJECT_MAX_CHARS = 99
"""SNS subjects must be shorter than 100 characters."""
SCHEMA_VERSION = 1
CLEARED_ACTION = "alarm_cleared"
RERAISED_ACTION = "alarm_reraised"
"""Timeline actions of the telemetry pipeline's own entries (their notes carry the values)."""


class ChangeKind(StrEnum):
    """A stream record's ``eventName``."""

    INSERT = "INSERT"
    MODIFY = "MODIFY"
    REMOVE = "REMOVE"


class OutboundEventType(StrEnum):
    ORDER_CREATED = "order_created"
    ORDER_CLOSED = "order_closed"
    ALARM_CLEARED = "alarm_cleared"
    ALARM_RERAISED = "alarm_reraised"
    ORDER_STATUS_CHANGED = "order_status_changed"
    ORDER_ESCALATED = "order_escalated"


DISPATCHERS_AUDIENCE = "dispatchers"
AUDIENCE_OF_EVENT = {OutboundEventType.ORDER_ESCALATED: DISPATCHERS_AUDIENCE}
"""Events addressed to a group beyond the order's grid (message attribute ``audience``)."""
ESCALATE_ACTION = "escalate"


EVENT_LABEL_ZH = {
    OutboundEventType.ORDER_CREATED: "新工单",
    OutboundEventType.ORDER_CLOSED: "预警消除",
    OutboundEventType.ALARM_CLEARED: "告警解除",
    OutboundEventType.ALARM_RERAISED: "告警复发",
    OutboundEventType.ORDER_STATUS_CHANGED: "状态变更",
    OutboundEventType.ORDER_ESCALATED: "超时升级",
}
ALARM_LABEL_ZH = {
    AlarmType.TILT: "倾斜告警",
    AlarmType.BATTERY_LOW: "电量低告警",
    AlarmType.OFFLINE: "离线告警",
}
UNIT_ZH = {"deg": "°", "pct": "%"}


class OutboundEvent(BaseModel):
    """One notification-worthy change of one order version: published to SNS, parked in full in
    the retry queue when publishing fails, and (later) fanned out to the inbox and statistics."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION
    event_id: str
    """``<order_id>:v<version>``: the consumers' deduplication key."""
    event_type: OutboundEventType
    order_id: str
    version: int
    grid_id: str
    category: str
    severity: str
    status: str
    previous_status: str | None = None
    occurred_at: str
    """UTC ISO-8601 time of the change (the order's ``created_at`` or ``updated_at``)."""
    subject: str = Field(max_length=SUBJECT_MAX_CHARS)
    text: str
    """Chinese text a grid worker can act on (the e-mail body; times in Beijing time)."""
    order: dict[str, Any]
    """The work order as JSON (``WorkOrder.model_dump(mode="json", by_alias=True)``: no table keys)."""

    def message_attributes(self) -> dict[str, dict[str, str]]:
        """SNS message attributes: subscriptions filter on ``grid_id`` (and may on the others)."""
        values = {
            "grid_id": self.grid_id,
            "category": self.category,
            "severity": self.severity,
            "event_type": self.event_type.value,
            "event_id": self.event_id,
        }
        audience = AUDIENCE_OF_EVENT.get(self.event_type)
        if audience is not None:
            values["audience"] = audience
        return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}

    def to_json(self) -> str:
        """Compact JSON (UTF-8 text kept as is: Chinese is not escaped)."""
        return json.dumps(self.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class OrderChange:
    """One stream record of an order item, as plain orders (``None`` where the image is absent)."""

    kind: ChangeKind
    old: WorkOrder | None
    new: WorkOrder | None

    @classmethod
    def from_images(
        cls,
        kind: str | ChangeKind,
        old_image: Mapping[str, Any] | None,
        new_image: Mapping[str, Any] | None,
    ) -> OrderChange | None:
        """From a stream record's images (plain values, already deserialized). ``None`` when the
        record is not about an order item. Raises ``pydantic.ValidationError`` for a malformed one."""
        old = _order_of(old_image)
        new = _order_of(new_image)
        if old is None and new is None:
            return None
        return cls(ChangeKind(kind), old, new)


def _order_of(image: Mapping[str, Any] | None) -> WorkOrder | None:
    if not image:
        return None
    entity = image.get("entity")
    if entity != ORDER_ENTITY and not (entity is None and image.get("sk") == ORDER_SK):
        return None
    return WorkOrder.model_validate(dict(image))


def event_id_of(order: WorkOrder) -> str:
    return f"{order.order_id}:v{order.version}"


# ---------------------------------------------------------------------------------------- rules


def _became_closed(old: WorkOrder, new: WorkOrder) -> bool:
    return new.status is OrderStatus.CLOSED and old.status is not OrderStatus.CLOSED


def _sensor_cleared(old: WorkOrder, new: WorkOrder) -> bool:
    return new.sensor_normal and not old.sensor_normal


def _reraised(old: WorkOrder, new: WorkOrder) -> bool:
    return new.reraise_count > old.reraise_count


def _status_changed(old: WorkOrder, new: WorkOrder) -> bool:
    return new.status is not old.status


def _escalated(old: WorkOrder, new: WorkOrder) -> bool:
    """The level grew through an escalation (every escalation appends an ``escalate`` entry)."""
    return new.escalation_level > old.escalation_level and _escalate_entry(old, new) is not None


def _escalate_entry(old: WorkOrder | None, new: WorkOrder) -> TimelineEntry | None:
    appended = new.timeline[len(old.timeline) :] if old is not None else new.timeline
    return next((e for e in reversed(appended) if e.action == ESCALATE_ACTION), None)


MODIFY_RULES: tuple[tuple[OutboundEventType, Callable[[WorkOrder, WorkOrder], bool]], ...] = (
    (OutboundEventType.ORDER_CLOSED, _became_closed),
    (OutboundEventType.ALARM_CLEARED, _sensor_cleared),
    (OutboundEventType.ALARM_RERAISED, _reraised),
    (OutboundEventType.ORDER_STATUS_CHANGED, _status_changed),
    (OutboundEventType.ORDER_ESCALATED, _escalated),
)
"""Checked in order; the first that matches names the event of a modification."""


def classify(change: OrderChange) -> OutboundEventType | None:
    """The event type of a change, or ``None`` when it is not worth a notification."""
    if change.new is None or change.kind is ChangeKind.REMOVE:
        return None
    if change.kind is ChangeKind.INSERT or change.old is None:
        return OutboundEventType.ORDER_CREATED
    for event_type, matches in MODIFY_RULES:
        if matches(change.old, change.new):
            return event_type
    return None


def derive_event(change: OrderChange) -> OutboundEvent | None:
    """At most one outbound event for one order version (see the module's table)."""
    event_type = classify(change)
    if event_type is None or change.new is None:
        return None
    new, old = change.new, change.old
    text = TEXT_BUILDERS[event_type](old, new)
    return OutboundEvent(
        event_id=event_id_of(new),
        event_type=event_type,
        order_id=new.order_id,
        version=new.version,
        grid_id=new.grid_id,
        category=new.category.value,
        severity=new.severity.value,
        status=new.status.value,
        previous_status=old.status.value if old is not None else None,
        occurred_at=new.created_at if event_type is OutboundEventType.ORDER_CREATED else new.updated_at,
        subject=subject_of(event_type, new),
        text=text,
        order=new.model_dump(mode="json", by_alias=True),
    )


# ----------------------------------------------------------------------------------------- text


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _reading_text(reading: SensorReading) -> str:
    return f"{_fmt(reading.value)}{UNIT_ZH.get(reading.unit, reading.unit)}"


def _local_time(iso: str | None) -> str:
    """``2026-11-29 14:05(北京时间)``; empty when the time is missing or unreadable."""
    if not iso:
        return ""
    try:
        return f"{to_local_display(from_iso(iso))}(北京时间)"
    except ValueError:
        return ""


def device_label(order: WorkOrder) -> str | None:
    """How people name the order's device: ``178号窨井盖`` for cover ``MH-0178``."""
    if not order.device_id:
        return None
    prefix, _, number = order.device_id.partition("-")
    if prefix == "MH" and number:
        return f"{number.lstrip('0') or '0'}号窨井盖"
    return order.device_id


def alarm_name(order: WorkOrder) -> str:
    """``178号窨井盖倾斜告警``; the order's title when it was not raised by a sensor alarm."""
    label = device_label(order)
    if label and order.alarm_type is not None:
        return f"{label}{ALARM_LABEL_ZH.get(order.alarm_type, '告警')}"
    return order.title


def location_text(order: WorkOrder) -> str:
    """``位于高新大道(高新大道178号井,网格 G03)``; just the grid when the place is unknown."""
    loc = order.location
    if loc is None or not (loc.road or loc.name):
        return f"位于网格 {order.grid_id}"
    inner = ",".join(part for part in (loc.name, f"网格 {order.grid_id}") if part)
    return f"位于{loc.road or loc.name}({inner})"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in "。!?!?." else f"{text}。"


def _new_reading(old: WorkOrder | None, new: WorkOrder) -> SensorReading | None:
    """The reading this write recorded (the one that cleared or re-raised the alarm), if any."""
    if new.reading is None or (old is not None and old.reading == new.reading):
        return None
    return new.reading


def _appended_note(old: WorkOrder | None, new: WorkOrder, action: str) -> str | None:
    """The note of the platform's own timeline entry for ``action`` appended by this write."""
    appended = new.timeline[len(old.timeline) :] if old is not None else new.timeline
    for entry in reversed(appended):
        if entry.action == action and entry.role == SYSTEM_ROLE and entry.note:
            return entry.note.strip().rstrip("。")
    return None


def _footer(order: WorkOrder, at: str | None) -> str:
    when = _local_time(at)
    return f"工单 {order.order_id},时间 {when}" if when else f"工单 {order.order_id}"


def _status_label(status: OrderStatus) -> str:
    return STATUS_LABEL_ZH.get(status, status.value)


def _created_text(old: WorkOrder | None, new: WorkOrder) -> str:
    label = CATEGORY_LABEL_ZH.get(new.category, new.category.value)
    body = _sentence(new.description)
    if new.location is not None and new.location.road and new.location.road not in body:
        body = _sentence(f"{body}{location_text(new)}")
    at = new.reading.at if new.reading is not None else new.created_at
    return f"【{label}】{body}{_footer(new, at)}"


def _cleared_sentence(old: WorkOrder | None, new: WorkOrder) -> str:
    """``传感器恢复正常(当前 3.1°)。``: from the reading this write recorded, else the telemetry
    pipeline's own note of the clearance (which carries the value)."""
    reading = _new_reading(old, new)
    if reading is not None:
        return f"传感器恢复正常(当前 {_reading_text(reading)})。"
    note = _appended_note(old, new, CLEARED_ACTION)
    return f"{note}。" if note else "传感器已恢复正常。"


def _state_sentence(order: WorkOrder) -> str:
    return f"工单当前状态为「{_status_label(order.status)}」"


def _cleared_text(old: WorkOrder | None, new: WorkOrder) -> str:
    if new.status is OrderStatus.RESOLVED:
        todo = "工单已办结,待调度关闭。"
    elif new.status is OrderStatus.CLOSED:
        todo = "工单此前已关闭,无需处理。"
    elif new.status is OrderStatus.CANCELLED:
        todo = "工单已取消,无需处理。"
    else:
        todo = f"{_state_sentence(new)},现场处置完成后请办结工单。"
    return (
        f"【{EVENT_LABEL_ZH[OutboundEventType.ALARM_CLEARED]}】{alarm_name(new)}已解除,"
        f"{location_text(new)}。{_cleared_sentence(old, new)}{todo}"
        f"{_footer(new, new.sensor_normal_at or new.updated_at)}"
    )


def _closed_text(old: WorkOrder | None, new: WorkOrder) -> str:
    detail = ""
    if old is not None and _sensor_cleared(old, new):
        why = "已办结且传感器恢复正常"
        detail = _cleared_sentence(old, new)
    elif new.sensor_normal:
        why = "已办结,传感器已恢复正常"
    elif new.device_id:
        why = "已办结,由调度关闭;传感器尚未恢复正常,请留意"
    else:
        why = "已办结"
    return (
        f"【{EVENT_LABEL_ZH[OutboundEventType.ORDER_CLOSED]}】{alarm_name(new)}工单已关闭({why}),"
        f"{location_text(new)}。{detail}{_footer(new, new.closed_at or new.updated_at)}"
    )


def _reraised_text(old: WorkOrder | None, new: WorkOrder) -> str:
    reading = _new_reading(old, new)
    current = f",当前 {_reading_text(reading)}" if reading is not None else ""
    note = _appended_note(old, new, RERAISED_ACTION) if reading is None else None
    if old is not None and old.status is not new.status:
        state = f"工单已由「{_status_label(old.status)}」重新打开为「{_status_label(new.status)}」"
    else:
        state = _state_sentence(new)
    at = reading.at if reading is not None else new.updated_at
    return (
        f"【{EVENT_LABEL_ZH[OutboundEventType.ALARM_RERAISED]}】{alarm_name(new)}再次触发"
        f"(第 {new.reraise_count} 次复发{current}),{location_text(new)}。{f'{note}。' if note else ''}"
        f"{state},请尽快查看并处置。{_footer(new, at)}"
    )


def _status_text(old: WorkOrder | None, new: WorkOrder) -> str:
    before = _status_label(old.status) if old is not None else "—"
    return (
        f"【{EVENT_LABEL_ZH[OutboundEventType.ORDER_STATUS_CHANGED]}】{alarm_name(new)}工单"
        f"状态由「{before}」变为「{_status_label(new.status)}」,{location_text(new)}。"
        f"{_footer(new, new.updated_at)}"
    )


def _escalated_text(old: WorkOrder | None, new: WorkOrder) -> str:
    entry = _escalate_entry(old, new)
    by_sweeper = entry is not None and entry.role == SYSTEM_ROLE
    why = "已超时" if by_sweeper else "已由调度"
    note = entry.note.strip().rstrip("。") if entry is not None and entry.note else ""
    if note.startswith("升级至"):  # the lifecycle's own "升级至 N 级。<note>": the level is said already
        note = note.partition("。")[2].strip()
    return (
        f"【{EVENT_LABEL_ZH[OutboundEventType.ORDER_ESCALATED]}】工单 {new.order_id}({alarm_name(new)})"
        f"{why},升级至第{new.escalation_level}级,请调度处理。{location_text(new)},"
        f"{_state_sentence(new)}。{f'{note}。' if note else ''}{_footer(new, new.updated_at)}"
    )


TEXT_BUILDERS: dict[OutboundEventType, Callable[[WorkOrder | None, WorkOrder], str]] = {
    OutboundEventType.ORDER_CREATED: _created_text,
    OutboundEventType.ALARM_CLEARED: _cleared_text,
    OutboundEventType.ORDER_CLOSED: _closed_text,
    OutboundEventType.ALARM_RERAISED: _reraised_text,
    OutboundEventType.ORDER_STATUS_CHANGED: _status_text,
    OutboundEventType.ORDER_ESCALATED: _escalated_text,
}


def subject_of(event_type: OutboundEventType, order: WorkOrder) -> str:
    """``【新工单】178号窨井盖倾斜告警(网格 G03)``: one line, shorter than 100 characters."""
    subject = f"【{EVENT_LABEL_ZH[event_type]}】{alarm_name(order)}(网格 {order.grid_id})"
    subject = " ".join(subject.split())
    return subject if len(subject) <= SUBJECT_MAX_CHARS else subject[: SUBJECT_MAX_CHARS - 1] + "…"
