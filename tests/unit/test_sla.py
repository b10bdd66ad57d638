"""SLA deadlines: per category, moved on by each escalation, restarted by a reopen."""

from __future__ import annotations

from smartzone.domain.sla import next_due_ms
from smartzone.domain.timeutil import from_iso, to_iso
from smartzone.domain.workorders import OrderStatus, system_entry
from tests.support.orders import tilt_order

MIN = 60_000
HOUR = 60 * MIN


def test_given_a_new_tilt_order_then_it_is_due_to_be_acknowledged_within_10_minutes() -> None:
    order = tilt_order()
    assert next_due_ms(order) == from_iso(order.created_at) + 10 * MIN


def test_given_a_working_order_escalated_once_then_due_one_more_resolve_interval_later() -> None:
    order = tilt_order()
    created = from_iso(order.created_at)
    escalated = order.model_copy(
        update={
            "status": OrderStatus.HANDLING,
            "escalation_level": 1,
            "timeline": [*order.timeline, system_entry(created + 3 * HOUR, "escalate", "超时")],
        }
    )
    assert next_due_ms(escalated) == created + 2 * 2 * HOUR


def test_given_a_day_old_order_reopened_when_planning_then_due_from_the_reopen_not_overdue() -> None:
    """A reopened order gets a fresh target; earlier escalations do not make it overdue at once."""
    order = tilt_order()
    created = from_iso(order.created_at)
    reopened_at = created + 24 * HOUR
    reopened = order.model_copy(
        update={
            "status": OrderStatus.HANDLING,
            "escalation_level": 3,
            "timeline": [
                *order.timeline,
                system_entry(created + 3 * HOUR, "escalate", "超时"),
                system_entry(reopened_at, "reopen", "重新打开", OrderStatus.CLOSED, OrderStatus.HANDLING),
            ],
        }
    )
    assert next_due_ms(reopened) == reopened_at + 2 * HOUR
    assert to_iso(next_due_ms(reopened) or 0) > to_iso(reopened_at)


def test_given_a_resolved_or_closed_order_then_nothing_is_due() -> None:
    order = tilt_order()
    assert next_due_ms(order.model_copy(update={"status": OrderStatus.RESOLVED})) is None
    assert next_due_ms(order.model_copy(update={"status": OrderStatus.CLOSED})) is None
