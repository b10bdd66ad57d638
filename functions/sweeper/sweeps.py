"""The sweeper's two sweeps, run one after the other by the scheduled handler.

**SLA**: open orders whose next deadline has passed (gsi4 ``DUE``, ``due < now``, earliest first,
at most ``sweep_limit`` per run) are escalated: level + 1 and a timeline entry
(:func:`smartzone.domain.lifecycle.sweeper_escalation`), written as one conditional write on the
order's version, which also moves the deadline one target interval on. An order is therefore
escalated again only when it is still overdue one interval later. A lost race (someone changed
the order meanwhile) is re-read and re-decided: if it is no longer overdue nothing happens, so two
overlapping runs never escalate one order twice for one deadline.

**Offline**: for each grid (gsi2 ``GRIDS``), the devices whose heartbeat is older than two
heartbeat intervals (gsi3 ``SEEN#<grid>``) are judged by :mod:`smartzone.domain.offline`; newly
offline devices get an ``offline`` alarm and an order, or, when many of one grid go offline
together, one shared incident order. Each device's raise is one transaction guarded by the
device's version (a device reporting meanwhile wins; it is re-read and re-judged), and a device
whose ``offline`` alarm is already active is skipped: running the sweeper twice raises nothing new.

No Scan anywhere. Failures of one order or device are logged and counted; the rest goes on, and
the next scheduled run picks up whatever is left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from smartzone.domain.lifecycle import StaleVersion, TransitionError, sweeper_escalation
from smartzone.domain.offline import (
    GridPlan,
    OfflineDevice,
    is_newly_offline,
    newly_offline,
    open_incident,
    plan_grid,
    query_cutoff_ms,
    raise_offline,
)
from smartzone.domain.sla import next_due_ms, target_for
from smartzone.domain.timeutil import now_ms, to_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder
from smartzone.observability import logger
from smartzone.repositories.alarm_store import AlarmStore, DeviceConflict
from smartzone.repositories.devices import DeviceRecord, DeviceRepository, TransientStoreError
from smartzone.repositories.last_seen import LastSeenIndex
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import Settings

from .transient import TransientSweep

MAX_ATTEMPTS = 3
_FAILURES = (ClientError, BotoCoreError, TransientStoreError)


@dataclass
class SweepOutcome:
    counts: Counter[str] = field(default_factory=Counter)
    escalated: list[str] = field(default_factory=list)
    """Order ids escalated by this run."""
    raised: list[str] = field(default_factory=list)
    """Device ids whose ``offline`` alarm this run raised."""
    incidents: list[str] = field(default_factory=list)
    """Incident order ids this run created."""
    expired: list[str] = field(default_factory=list)
    """Transient detection orders this run closed (``expire``, see :mod:`functions.sweeper.transient`)."""


def _minutes_zh(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    return f"{seconds // 60} 分钟"


def escalation_note(order: WorkOrder) -> str:
    """Why the sweeper escalates: ``超过 10 分钟未接单(SLA)`` / ``超过 2 小时未办结(SLA)``."""
    target = target_for(order.category)
    periods = order.escalation_level + 1
    if order.status is OrderStatus.DISPATCHED:
        return f"超过 {_minutes_zh(target.acknowledge_s * periods)}未接单(SLA 超时)"
    return f"超过 {_minutes_zh(target.resolve_s * periods)}未办结(SLA 超时)"


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        orders: WorkOrderRepository,
        devices: DeviceRepository,
        seen: LastSeenIndex,
        alarms: AlarmStore,
        clock: Callable[[], int] = now_ms,
        transient: TransientSweep | None = None,
    ) -> None:
        self.transient = transient
        self.settings = settings
        self.orders = orders
        self.devices = devices
        self.seen = seen
        self.alarms = alarms
        self.clock = clock

    def run(self) -> SweepOutcome:
        outcome = SweepOutcome()
        now = self.clock()
        self.sweep_sla(now, outcome)
        self.sweep_offline(now, outcome)
        if self.transient is not None:
            self.transient.run(now, outcome.counts, outcome.expired)
        return outcome

    # -- SLA ---------------------------------------------------------------------------------------
    def sweep_sla(self, now: int, outcome: SweepOutcome) -> None:
        overdue = self.orders.overdue(to_iso(now), self.settings.sweep_limit)
        outcome.counts["overdue"] += len(overdue)
        for order in overdue:
            try:
                if self._escalate(order, now):
                    outcome.escalated.append(order.order_id)
                    outcome.counts["escalated"] += 1
            except _FAILURES as exc:
                outcome.counts["errors"] += 1
                logger.warning("escalation failed", extra={"order_id": order.order_id, "error": str(exc)})

    def _escalate(self, order: WorkOrder | None, now: int) -> bool:
        for _ in range(MAX_ATTEMPTS):
            if order is None:
                return False
            due = next_due_ms(order)
            if due is None or due >= now:
                return False  # no longer overdue (someone acted, or another run escalated it)
            try:
                plan = sweeper_escalation(order, now, escalation_note(order))
            except TransitionError:
                return False  # final meanwhile
            try:
                written = self.orders.apply(plan, order)
            except StaleVersion:
                order = self.orders.get(order.order_id)
                continue
            logger.info(
                "order escalated",
                extra={
                    "order_id": order.order_id,
                    "escalation_level": written.escalation_level,
                    "due": to_iso(due),
                },
            )
            return True
        return False

    # -- offline -----------------------------------------------------------------------------------
    def sweep_offline(self, now: int, outcome: SweepOutcome) -> None:
        hb = self.settings.heartbeat_interval_s
        cutoff = to_iso(query_cutoff_ms(now, hb))
        for grid_id in self.seen.grid_ids():
            try:
                records = self.seen.seen_before(grid_id, cutoff)
            except _FAILURES as exc:
                outcome.counts["errors"] += 1
                logger.warning("last-seen query failed", extra={"grid_id": grid_id, "error": str(exc)})
                continue
            outcome.counts["silent_candidates"] += len(records)
            found = newly_offline(((r.device, r.state) for r in records), now, hb)
            if not found:
                continue
            plan = plan_grid(
                grid_id,
                found,
                existing_incident=open_incident(r.state for r in records),
                min_devices=self.settings.incident_min_devices,
                now_ms=now,
            )
            self._apply_plan(plan, {r.device.device_id: r for r in records}, now, outcome)

    def _apply_plan(
        self, plan: GridPlan, records: dict[str, DeviceRecord], now: int, outcome: SweepOutcome
    ) -> None:
        if plan.new_incident is not None:
            try:
                created = self.alarms.create_incident(
                    plan.new_incident, [o.device.device_id for o in plan.devices]
                )
            except _FAILURES as exc:
                outcome.counts["errors"] += 1
                logger.warning("incident not created", extra={"grid_id": plan.grid_id, "error": str(exc)})
                return
            if created:
                outcome.incidents.append(plan.new_incident.order_id)
                outcome.counts["incidents"] += 1
                logger.info(
                    "offline incident created",
                    extra={
                        "order_id": plan.new_incident.order_id,
                        "grid_id": plan.grid_id,
                        "devices": len(plan.devices),
                    },
                )
        for found in plan.devices:
            try:
                if self._raise(records[found.device.device_id], found, plan.incident_id, now):
                    outcome.raised.append(found.device.device_id)
                    outcome.counts["offline_raised"] += 1
            except _FAILURES as exc:
                outcome.counts["errors"] += 1
                logger.warning(
                    "offline alarm not raised", extra={"device_id": found.device.device_id, "error": str(exc)}
                )

    def _raise(
        self, record: DeviceRecord | None, found: OfflineDevice, incident_id: str | None, now: int
    ) -> bool:
        hb = self.settings.heartbeat_interval_s
        for attempt in range(MAX_ATTEMPTS):
            if record is None:
                return False
            if attempt and not is_newly_offline(record.device, record.state, now, hb):
                return False  # it reported (or another run raised it) meanwhile
            last_seen = record.state.last_seen or found.last_seen
            current = OfflineDevice(record.device, last_seen, (now - last_seen) / 1000)
            state, transition = raise_offline(record.state, current, now, incident_id)
            try:
                self.alarms.persist(record, state, (transition,), now)
            except DeviceConflict:
                record = self.devices.get(found.device.device_id, consistent=True)
                continue
            logger.info(
                "offline alarm raised",
                extra={
                    "device_id": found.device.device_id,
                    "order_id": transition.order_id,
                    "incident": transition.incident,
                    "last_seen": to_iso(current.last_seen),
                },
            )
            return True
        return False
