"""Transient detection types: an unacknowledged order without recurrence closes itself.

Some events end on their own (loitering that stops, a fishing boat that leaves): when nobody has
acknowledged the order (it is still ``dispatched``) and the camera saw no recurrence for the
type's ``transient_close_after_s`` (:data:`~smartzone.domain.detections.DETECTION_POLICIES`), the
sweeper closes it with that reason.

This is the platform-only lifecycle action ``expire`` (dispatched → closed, actor
``system:sweeper``). It is deliberately NOT a row of :data:`smartzone.domain.lifecycle.ACTION_TABLE`
(DESIGN.md's table, which users' requests are checked against): no user can request it; only the
sweeper plans it, here, as one conditional write on the order's version like every transition.
Closures by ``expire`` are counted apart from handled closures in the statistics.
"""

from __future__ import annotations

from smartzone.domain.detections import DETECTION_POLICIES, DetectionType
from smartzone.domain.lifecycle import SWEEPER_ACTOR, SYSTEM, Action, TransitionPlan
from smartzone.domain.timeutil import from_iso, to_iso
from smartzone.domain.workorders import OrderStatus, TimelineEntry, WorkOrder

EXPIRE_ACTION = "expire"


def transient_window_s(order: WorkOrder) -> int | None:
    """The order's transient close window, or ``None`` when its type is not transient."""
    try:
        policy = DETECTION_POLICIES[DetectionType(order.category.value)]
    except ValueError:
        return None
    return policy.transient_close_after_s


def expiry_due_ms(order: WorkOrder) -> int | None:
    """When the order closes itself if nothing happens (``None``: never)."""
    window = transient_window_s(order)
    if window is None or order.detection is None or order.status is not OrderStatus.DISPATCHED:
        return None
    return from_iso(order.detection.last_seen) + window * 1000


def plan_expiry(order: WorkOrder, now_ms: int) -> TransitionPlan | None:
    """The ``expire`` transition when it is due now, else ``None``."""
    due = expiry_due_ms(order)
    window = transient_window_s(order)
    if due is None or window is None or due > now_ms:
        return None
    at = to_iso(now_ms)
    note = f"短时事件:{window // 60} 分钟内未再识别到且无人接单,工单自动关闭(expire)"
    entry = TimelineEntry(
        at=at,
        actor=SWEEPER_ACTOR,
        role=SYSTEM,
        action=EXPIRE_ACTION,
        from_status=OrderStatus.DISPATCHED,
        to_status=OrderStatus.CLOSED,
        note=note,
    )
    return TransitionPlan(
        order_id=order.order_id,
        action=Action.CLOSE,  # the table's nearest action; the timeline records ``expire``
        actor=SWEEPER_ACTOR,
        role=SYSTEM,
        from_status=OrderStatus.DISPATCHED,
        to_status=OrderStatus.CLOSED,
        expected_version=order.version,
        client_pinned=False,
        entries=(entry,),
        changes={
            "status": OrderStatus.CLOSED,
            "closed_at": at,
            "version": order.version + 1,
            "updated_at": at,
        },
    )


def was_expired(order: WorkOrder) -> bool:
    """Whether the order's latest closure was the platform's ``expire``."""
    closing = next((e for e in reversed(order.timeline) if e.to_status is OrderStatus.CLOSED), None)
    return closing is not None and closing.action == EXPIRE_ACTION
