"""Service-level targets per order category, and each open order's next deadline.

An order is due to be acknowledged within ``acknowledge_s`` of its creation, and resolved within
``resolve_s``. Each escalation moves the deadline one more target interval on, so a still-overdue
order is escalated again one interval later (level 1, 2, …). Resolved and final orders have no
deadline (a resolved sensor order waits only for its sensor).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from smartzone.domain.detections import DETECTION_POLICIES
from smartzone.domain.timeutil import from_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder


class SlaTarget(BaseModel):
    acknowledge_s: int = Field(gt=0)
    resolve_s: int = Field(gt=0)


DEFAULT_TARGET = SlaTarget(acknowledge_s=30 * 60, resolve_s=24 * 3600)
SLA_TARGETS: dict[str, SlaTarget] = {
    "manhole_tilt": SlaTarget(acknowledge_s=10 * 60, resolve_s=2 * 3600),
    "device_battery_low": SlaTarget(acknowledge_s=4 * 3600, resolve_s=3 * 86400),
    "device_offline": SlaTarget(acknowledge_s=60 * 60, resolve_s=24 * 3600),
    "patrol_report": SlaTarget(acknowledge_s=30 * 60, resolve_s=24 * 3600),
    # Detections (issue 5): each type's own targets, from its policy.
    **{
        policy.type.value: SlaTarget(acknowledge_s=policy.acknowledge_s, resolve_s=policy.resolve_s)
        for policy in DETECTION_POLICIES.values()
    },
}


def target_for(category: str) -> SlaTarget:
    return SLA_TARGETS.get(category, DEFAULT_TARGET)


def _clock_start(order: WorkOrder) -> int:
    """When the SLA clock started: the order's creation, or its latest reopen (a reopened order
    gets a fresh resolve target instead of being overdue since the day it was created)."""
    reopens = [entry.at for entry in order.timeline if entry.action == "reopen"]
    return from_iso(max(reopens)) if reopens else from_iso(order.created_at)


def next_due_ms(order: WorkOrder) -> int | None:
    """The order's next deadline (UTC ms), or ``None`` when nothing is due.

    Each escalation moves it one target interval on. Escalations before a reopen do not count
    against the reopened order: it is due one interval after the reopen, then one more per level
    reached since (``escalations_since_reopen``).
    """
    target = target_for(order.category)
    if order.status is OrderStatus.DISPATCHED:
        interval = target.acknowledge_s * 1000
    elif order.status in (OrderStatus.ACKNOWLEDGED, OrderStatus.VERIFYING, OrderStatus.HANDLING):
        interval = target.resolve_s * 1000
    else:
        return None
    start = _clock_start(order)
    since = sum(1 for entry in order.timeline if entry.action == "escalate" and from_iso(entry.at) >= start)
    return start + interval * (1 + since)
