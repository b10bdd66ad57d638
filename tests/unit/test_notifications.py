"""Outbound events derived from order changes: one per order version, a stable id, Chinese text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from smartzone.domain.notifications import (
    SUBJECT_MAX_CHARS,
    ChangeKind,
    OrderChange,
    OutboundEvent,
    OutboundEventType,
    derive_event,
)
from smartzone.domain.timeutil import from_iso, to_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder
from tests.support.orders import (
    CLEARED_AT,
    cleared,
    commented,
    cover,
    order_image,
    reraised,
    tilt_order,
    transitioned,
    with_reading,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"


def change(old: WorkOrder | None, new: WorkOrder | None) -> OrderChange:
    kind = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
    built = OrderChange.from_images(
        kind, order_image(old) if old else None, order_image(new) if new else None
    )
    assert built is not None
    return built


def event_of(old: WorkOrder | None, new: WorkOrder | None) -> OutboundEvent:
    event = derive_event(change(old, new))
    assert event is not None
    return event


def resolved(order: WorkOrder) -> WorkOrder:
    for status in (
        OrderStatus.ACKNOWLEDGED,
        OrderStatus.VERIFYING,
        OrderStatus.HANDLING,
        OrderStatus.RESOLVED,
    ):
        order = transitioned(order, status)
    return order


# --------------------------------------------------------------------------- new orders


def test_given_a_new_tilt_order_when_inserted_then_one_order_created_event_with_version_1_id() -> None:
    order = tilt_order()

    event = event_of(None, order)

    assert event.event_type is OutboundEventType.ORDER_CREATED
    assert event.event_id == f"{order.order_id}:v1"
    assert (event.order_id, event.version, event.grid_id) == (order.order_id, 1, "G03")
    assert event.previous_status is None
    assert event.occurred_at == order.created_at


def test_given_a_new_tilt_order_then_the_text_names_cover_tilt_threshold_road_grid_and_beijing_time() -> None:
    event = event_of(None, tilt_order(tilt=25.3))

    assert event.text.startswith("【窨井盖倾斜】178号窨井盖(MH-0178)倾斜 25.3°")
    for part in ("超过 20° 阈值", "高新大道", "网格 G03", "请立即查看并处置", event.order_id):
        assert part in event.text
    # The reading was taken at 06:05 UTC: people read Beijing time.
    assert "2026-11-29 14:05(北京时间)" in event.text


def test_given_an_alarm_late_in_the_utc_day_then_the_text_shows_the_next_beijing_day() -> None:
    late = from_iso("2026-11-29T23:30:00Z")

    event = event_of(None, tilt_order(raised_at=late))

    assert "2026-11-30 07:30(北京时间)" in event.text


def test_given_a_new_order_then_subject_is_one_short_chinese_line() -> None:
    event = event_of(None, tilt_order())

    assert event.subject == "【新工单】178号窨井盖倾斜告警(网格 G03)"
    assert len(event.subject) <= SUBJECT_MAX_CHARS and "\n" not in event.subject


def test_given_an_order_with_a_very_long_title_then_the_subject_is_cut_below_100_characters() -> None:
    order = tilt_order().model_copy(
        update={"alarm_type": None, "device_id": None, "title": "巡查上报:" + "路面" * 80}
    )

    event = event_of(None, order)

    assert len(event.subject) <= SUBJECT_MAX_CHARS
    assert event.subject.endswith("…")


def test_given_an_event_then_message_attributes_are_strings_for_grid_category_severity_and_type() -> None:
    event = event_of(None, tilt_order(cover(grid_id="G05")))

    attributes = event.message_attributes()

    assert attributes["grid_id"] == {"DataType": "String", "StringValue": "G05"}
    assert attributes["category"] == {"DataType": "String", "StringValue": "manhole_tilt"}
    assert attributes["severity"] == {"DataType": "String", "StringValue": "high"}
    assert attributes["event_type"] == {"DataType": "String", "StringValue": "order_created"}
    assert attributes["event_id"]["StringValue"] == event.event_id
    assert all(value["DataType"] == "String" for value in attributes.values())


def test_given_an_order_item_then_the_structured_order_is_the_work_order_without_table_keys() -> None:
    order = tilt_order()

    event = event_of(None, order)

    assert not {"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "entity"} & set(event.order)
    assert WorkOrder.model_validate(event.order) == order
    assert event.order["timeline"][0]["to"] == "dispatched"


def test_given_an_event_then_its_json_round_trips_and_keeps_chinese_unescaped() -> None:
    event = event_of(None, tilt_order())

    text = event.to_json()

    assert "窨井盖" in text
    assert OutboundEvent.model_validate_json(text) == event


# --------------------------------------------------------------------------- modifications


def test_given_the_alarm_clears_on_a_working_order_then_alarm_cleared_with_the_current_value() -> None:
    order = tilt_order()

    event = event_of(order, cleared(order, value=3.1))

    assert event.event_type is OutboundEventType.ALARM_CLEARED
    assert event.event_id == f"{order.order_id}:v2"
    assert event.text.startswith("【告警解除】178号窨井盖倾斜告警已解除")
    assert "3.1°" in event.text and "高新大道" in event.text
    assert "2026-11-29 15:09(北京时间)" in event.text  # 1 h 4 min after the 14:05 alarm
    assert event.occurred_at == to_iso(CLEARED_AT)


def test_given_the_clearance_records_its_reading_then_the_text_says_the_current_value() -> None:
    order = tilt_order()
    cleared_with_reading = with_reading(cleared(order), 3.1, CLEARED_AT)

    event = event_of(order, cleared_with_reading)

    assert "传感器恢复正常(当前 3.1°)" in event.text


def test_given_a_resolved_order_when_the_alarm_clears_and_closes_it_then_one_order_closed_event() -> None:
    order = resolved(tilt_order())

    event = event_of(order, cleared(order))

    assert event.event_type is OutboundEventType.ORDER_CLOSED
    assert event.status == "closed" and event.previous_status == "resolved"
    assert "工单已关闭" in event.text and "传感器恢复正常" in event.text and "3.1°" in event.text


def test_given_a_dispatcher_closes_a_resolved_order_whose_sensor_is_not_normal_then_the_text_warns() -> None:
    order = resolved(tilt_order())

    event = event_of(order, transitioned(order, OrderStatus.CLOSED))

    assert event.event_type is OutboundEventType.ORDER_CLOSED
    assert "传感器尚未恢复正常" in event.text


def test_given_the_alarm_reraises_on_an_open_order_then_alarm_reraised_with_the_count() -> None:
    order = transitioned(tilt_order(), OrderStatus.ACKNOWLEDGED)

    event = event_of(order, reraised(order, value=27.0))

    assert event.event_type is OutboundEventType.ALARM_RERAISED
    assert "再次触发(第 1 次复发)" in event.text and "27.0°" in event.text
    assert "已接单" in event.text


def test_given_a_reraise_reopens_a_resolved_order_then_it_is_one_reraised_event_saying_so() -> None:
    order = resolved(tilt_order())
    reopened = reraised(order).model_copy(update={"status": OrderStatus.HANDLING})

    event = event_of(order, reopened)

    assert event.event_type is OutboundEventType.ALARM_RERAISED
    assert "重新打开" in event.text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (OrderStatus.DISPATCHED, OrderStatus.ACKNOWLEDGED),
        (OrderStatus.HANDLING, OrderStatus.RESOLVED),
        (OrderStatus.ACKNOWLEDGED, OrderStatus.CANCELLED),
    ],
)
def test_given_a_person_changes_the_status_then_order_status_changed_naming_both(
    before: OrderStatus, after: OrderStatus
) -> None:
    order = tilt_order().model_copy(update={"status": before})

    event = event_of(order, transitioned(order, after))

    assert event.event_type is OutboundEventType.ORDER_STATUS_CHANGED
    assert (event.previous_status, event.status) == (before.value, after.value)
    assert "状态由" in event.text


def test_given_a_comment_then_no_event() -> None:
    order = tilt_order()

    assert derive_event(change(order, commented(order))) is None


def test_given_a_reassignment_without_status_change_then_no_event() -> None:
    order = tilt_order()
    reassigned = order.model_copy(update={"version": 2, "assignee": "tech-7"})

    assert derive_event(change(order, reassigned)) is None


def test_given_a_level_change_without_an_escalate_entry_then_no_escalation_event() -> None:
    """Only a real escalation (level up and an ``escalate`` timeline entry) notifies dispatchers."""
    order = tilt_order()
    relabelled = order.model_copy(update={"version": 2, "escalation_level": 1})

    assert derive_event(change(order, relabelled)) is None


def test_given_an_order_removed_then_no_event() -> None:
    order = tilt_order()

    built = OrderChange.from_images("REMOVE", order_image(order), None)

    assert built is not None and derive_event(built) is None


def test_given_images_of_other_items_then_there_is_no_order_change() -> None:
    device_image: dict[str, Any] = {"pk": "DEVICE#MH-0178", "sk": "DEVICE", "entity": "device"}

    assert OrderChange.from_images("INSERT", None, device_image) is None
    assert OrderChange.from_images("MODIFY", None, None) is None


def test_given_an_order_image_without_entity_then_its_sort_key_identifies_it() -> None:
    image = {k: v for k, v in order_image(tilt_order()).items() if k != "entity"}

    built = OrderChange.from_images("INSERT", None, image)

    assert built is not None and built.new is not None
    assert built.new.order_id == tilt_order().order_id


def test_given_a_malformed_order_image_then_reading_it_fails_loudly() -> None:
    image = {**order_image(tilt_order()), "status": "teleported"}

    with pytest.raises(ValidationError):
        OrderChange.from_images("INSERT", None, image)


# --------------------------------------------------------------------------- stability


def test_given_the_same_record_delivered_twice_then_the_same_event_and_id() -> None:
    order = tilt_order()
    record = change(order, cleared(order))

    first, again = derive_event(record), derive_event(record)

    assert first is not None and again is not None
    assert first == again
    assert first.event_id == again.event_id == f"{order.order_id}:v2"


def test_given_the_sample_stream_events_then_they_derive_the_seed_story_events() -> None:
    for name, expected in (
        ("stream_order_insert.json", OutboundEventType.ORDER_CREATED),
        ("stream_order_cleared.json", OutboundEventType.ALARM_CLEARED),
    ):
        record = json.loads((EVENTS / name).read_text(encoding="utf-8"))["Records"][0]
        images = {key: _plain(record["dynamodb"].get(key)) for key in ("OldImage", "NewImage")}

        built = OrderChange.from_images(record["eventName"], images["OldImage"], images["NewImage"])
        event = derive_event(built) if built else None

        assert event is not None and event.event_type is expected
        assert event.grid_id == "G03" and "178号窨井盖" in event.text


def _plain(image: dict[str, Any] | None) -> dict[str, Any] | None:
    """DynamoDB JSON to plain values (just what order images use), without boto3."""
    if image is None:
        return None

    def value(v: dict[str, Any]) -> Any:
        ((tag, raw),) = v.items()
        if tag == "N":
            return float(raw) if "." in raw else int(raw)
        if tag == "M":
            return {k: value(x) for k, x in raw.items()}
        if tag == "L":
            return [value(x) for x in raw]
        if tag == "NULL":
            return None
        return raw

    return {k: value(v) for k, v in image.items()}


_statuses = st.sampled_from(list(OrderStatus))


@given(
    old_status=_statuses,
    new_status=_statuses,
    old_normal=st.booleans(),
    new_normal=st.booleans(),
    reraises=st.integers(min_value=0, max_value=3),
    more_reraises=st.integers(min_value=0, max_value=2),
    version=st.integers(min_value=1, max_value=500),
)
def test_given_any_modification_then_at_most_one_event_whose_id_names_the_new_version(
    old_status: OrderStatus,
    new_status: OrderStatus,
    old_normal: bool,
    new_normal: bool,
    reraises: int,
    more_reraises: int,
    version: int,
) -> None:
    base = tilt_order()
    old = base.model_copy(
        update={
            "status": old_status,
            "sensor_normal": old_normal,
            "reraise_count": reraises,
            "version": version,
        }
    )
    new = old.model_copy(
        update={
            "status": new_status,
            "sensor_normal": new_normal,
            "reraise_count": reraises + more_reraises,
            "version": version + 1,
        }
    )

    event = derive_event(OrderChange(ChangeKind.MODIFY, old, new))

    newsworthy = old_status is not new_status or (new_normal and not old_normal) or more_reraises > 0
    assert (event is not None) == newsworthy
    if event is not None:
        assert event.event_id == f"{base.order_id}:v{version + 1}"
        assert event == derive_event(OrderChange(ChangeKind.MODIFY, old, new))
        if new_status is OrderStatus.CLOSED and old_status is not OrderStatus.CLOSED:
            assert event.event_type is OutboundEventType.ORDER_CLOSED
        elif new_normal and not old_normal:
            assert event.event_type is OutboundEventType.ALARM_CLEARED
        assert len(event.subject) <= SUBJECT_MAX_CHARS
        assert event.text.startswith("【")
