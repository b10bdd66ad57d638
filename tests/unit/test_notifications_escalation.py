"""Escalations notify the command centre: ``order_escalated`` with ``audience=dispatchers``."""

from __future__ import annotations

from smartzone.domain.identity import Role
from smartzone.domain.lifecycle import Action, TransitionRequest, plan_transition, sweeper_escalation
from smartzone.domain.notifications import (
    SUBJECT_MAX_CHARS,
    ChangeKind,
    OrderChange,
    OutboundEventType,
    derive_event,
)
from smartzone.domain.timeutil import from_iso
from tests.support.orders import commented, tilt_order

NOW = from_iso("2026-11-29T14:20:00+08:00")


def test_given_a_sweeper_escalation_then_an_order_escalated_event_for_dispatchers() -> None:
    order = tilt_order()
    escalated = sweeper_escalation(order, NOW, "超过 10 分钟未接单").apply(order)

    event = derive_event(OrderChange(ChangeKind.MODIFY, order, escalated))

    assert event is not None and event.event_type is OutboundEventType.ORDER_ESCALATED
    assert event.event_id == f"{order.order_id}:v2" and event.status == "dispatched"
    assert f"工单 {order.order_id}" in event.text
    assert "已超时,升级至第1级,请调度处理" in event.text and "超过 10 分钟未接单" in event.text
    assert event.subject.startswith("【超时升级】") and len(event.subject) <= SUBJECT_MAX_CHARS
    attributes = event.message_attributes()
    assert attributes["audience"] == {"DataType": "String", "StringValue": "dispatchers"}
    assert attributes["event_type"]["StringValue"] == "order_escalated"
    assert attributes["grid_id"]["StringValue"] == order.grid_id


def test_given_a_second_escalation_then_the_level_is_in_the_text() -> None:
    order = tilt_order()
    once = sweeper_escalation(order, NOW, "超时").apply(order)
    twice = sweeper_escalation(once, NOW + 600_000, "超时").apply(once)

    event = derive_event(OrderChange(ChangeKind.MODIFY, once, twice))

    assert event is not None and "升级至第2级" in event.text


def test_given_a_dispatcher_escalation_then_the_event_says_who() -> None:
    order = tilt_order()
    plan = plan_transition(
        order,
        actor="disp-01",
        roles=[Role.DISPATCHER],
        request=TransitionRequest(action=Action.ESCALATE, note="现场需要市政支援"),
        now_ms=NOW,
    )
    event = derive_event(OrderChange(ChangeKind.MODIFY, order, plan.apply(order)))

    assert event is not None and event.event_type is OutboundEventType.ORDER_ESCALATED
    assert "已由调度,升级至第1级" in event.text and "现场需要市政支援" in event.text


def test_given_other_events_then_no_audience_attribute() -> None:
    order = tilt_order()
    created = derive_event(OrderChange(ChangeKind.INSERT, None, order))
    assert created is not None and "audience" not in created.message_attributes()
    assert derive_event(OrderChange(ChangeKind.MODIFY, order, commented(order))) is None
