"""The sweeper against emulated AWS with a controllable clock: SLA escalation, offline alarms,
incident grouping, clearance by telemetry, idempotence, maintenance, and no Scan."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from functions.sweeper import handler as sweeper_handler
from functions.sweeper.sweeps import Sweeper, SweepOutcome
from functions.telemetry.pipeline import Message, TelemetryPipeline
from infra.local.resources import LocalResources
from smartzone.domain.alarms import AlarmType
from smartzone.domain.identity import Role
from smartzone.domain.lifecycle import Action, TransitionRequest, plan_transition
from smartzone.domain.notifications import ChangeKind, OrderChange, OutboundEventType, derive_event
from smartzone.domain.registry import Device, Grid, MaintenanceWindow
from smartzone.domain.timeutil import from_iso, to_iso
from smartzone.domain.workorders import Category, OrderStatus, WorkOrder
from smartzone.repositories import keys
from smartzone.repositories.alarm_store import AlarmStore
from smartzone.repositories.clients import client
from smartzone.repositories.codec import from_item, to_item
from smartzone.repositories.devices import DeviceRepository
from smartzone.repositories.last_seen import LastSeenIndex
from smartzone.repositories.rejects import RejectSink
from smartzone.repositories.workorders import WorkOrderRepository
from smartzone.settings import get_settings
from tests.support.telemetry import FakeContext, rule_message
from tools.aws_calls import CallCounter

T0 = from_iso("2026-11-29T14:00:00+08:00")
MIN = 60_000
EVENTS = Path(__file__).resolve().parents[2] / "events"


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now

    def at(self, minutes: float) -> Clock:
        self.now = T0 + int(minutes * MIN)
        return self


def cover(n: int, grid: str, maintenance: list[MaintenanceWindow] | None = None) -> Device:
    return Device(
        device_id=f"MH-{n:04d}",
        name=f"高新大道{n}号井",
        road="高新大道",
        lon=118.35,
        lat=31.33,
        grid_id=grid,
        maintenance=maintenance or [],
    )


@dataclass
class Platform:
    resources: LocalResources
    clock: Clock
    devices: DeviceRepository
    orders: WorkOrderRepository
    sweeper: Sweeper
    pipeline: TelemetryPipeline
    registered: dict[str, Device] = field(default_factory=dict)

    def add(self, *devices: Device) -> None:
        for d in devices:
            self.devices.put_device(d)
            self.registered[d.device_id] = d

    def report(self, minutes: float, tilts: dict[str, float]) -> None:
        """Devices publish readings at ``minutes`` after T0 (the pipeline's clock too)."""
        self.clock.at(minutes)
        ts = self.clock.now
        messages = [
            Message(f"{device_id}-{ts}", rule_message(device_id, ts, tilt))
            for device_id, tilt in tilts.items()
        ]
        outcome = self.pipeline.process(messages)
        assert not outcome.failed and not outcome.rejected

    def sweep(self, minutes: float) -> SweepOutcome:
        self.clock.at(minutes)
        return self.sweeper.run()

    def grid_orders(self, grid_id: str) -> list[WorkOrder]:
        items = client("dynamodb").query(
            TableName=self.resources.table_name,
            IndexName=keys.GSI1,
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues=to_item({":p": f"GRIDORDERS#{grid_id}"}),
        )["Items"]
        return [WorkOrder.model_validate(from_item(i)) for i in items]

    def raw_order(self, order_id: str) -> dict[str, Any]:
        item = client("dynamodb").get_item(
            TableName=self.resources.table_name, Key=to_item(keys.order_key(order_id))
        )["Item"]
        return from_item(item)


@pytest.fixture
def platform(resources: LocalResources) -> Platform:
    settings = get_settings()
    clock = Clock()
    devices = DeviceRepository(settings.table_name)
    alarms = AlarmStore(settings.table_name)
    orders = WorkOrderRepository(settings.table_name)
    for grid_id in ("G03", "G04", "G05"):
        devices.put_grid(Grid(grid_id=grid_id, name=f"网格{grid_id}", community="高新社区"))
    return Platform(
        resources,
        clock,
        devices,
        orders,
        Sweeper(settings, orders, devices, LastSeenIndex(settings.table_name), alarms, clock),
        TelemetryPipeline(settings, devices, alarms, RejectSink(settings.rejects_queue_url), clock),
    )


# -- SLA ------------------------------------------------------------------------------------------
def test_given_an_unacknowledged_tilt_order_then_it_is_escalated_once_per_interval(
    platform: Platform,
) -> None:
    platform.add(cover(178, "G03"))
    platform.report(0, {"MH-0178": 25.3})
    [order] = platform.grid_orders("G03")
    assert order.category is Category.MANHOLE_TILT and order.escalation_level == 0

    assert platform.sweep(9).escalated == [], "acknowledge target is 10 minutes"

    outcome = platform.sweep(11)
    assert outcome.escalated == [order.order_id]
    escalated = platform.orders.get(order.order_id)
    assert escalated is not None and escalated.escalation_level == 1
    assert escalated.status is OrderStatus.DISPATCHED and escalated.version == order.version + 1
    entry = escalated.timeline[-1]
    assert entry.action == "escalate" and entry.actor == "system:sweeper" and entry.role == "system"
    assert "超过 10 分钟未接单" in (entry.note or "")

    assert platform.sweep(12).escalated == [], "the deadline moved one interval on"
    assert platform.sweep(19).escalated == []
    assert platform.sweep(21).escalated == [order.order_id]
    again = platform.orders.get(order.order_id)
    assert (
        again is not None and again.escalation_level == 2 and len(again.timeline) == len(order.timeline) + 2
    )

    event = derive_event(OrderChange(ChangeKind.MODIFY, order, escalated))
    assert event is not None and event.event_type is OutboundEventType.ORDER_ESCALATED
    assert "已超时,升级至第1级,请调度处理" in event.text and order.order_id in event.text
    attributes = event.message_attributes()
    assert attributes["audience"]["StringValue"] == "dispatchers"
    assert attributes["grid_id"]["StringValue"] == "G03"
    assert attributes["event_type"]["StringValue"] == "order_escalated"


def test_given_an_acknowledged_order_then_the_resolve_target_applies(platform: Platform) -> None:
    platform.add(cover(178, "G03"))
    platform.report(0, {"MH-0178": 25.3})
    [order] = platform.grid_orders("G03")
    plan = plan_transition(
        order,
        actor="gw-g03-01",
        roles=[Role.GRID_WORKER],
        request=TransitionRequest(action=Action.ACKNOWLEDGE),
        now_ms=T0 + 5 * MIN,
    )
    platform.orders.apply(plan, order)
    assert platform.sweep(30).escalated == []
    # keep the device alive so that the offline sweep stays out of this test
    platform.report(100, {"MH-0178": 25.0})
    assert platform.sweep(121).escalated == [order.order_id]
    after = platform.orders.get(order.order_id)
    assert after is not None and "超过 2 小时未办结" in (after.timeline[-1].note or "")


def test_given_a_closed_order_then_it_is_never_escalated(platform: Platform) -> None:
    platform.add(cover(178, "G03"))
    platform.report(0, {"MH-0178": 25.3})
    [order] = platform.grid_orders("G03")
    plan = plan_transition(
        order,
        actor="disp",
        roles=[Role.DISPATCHER],
        request=TransitionRequest(action=Action.CANCEL, reason="false_positive"),
        now_ms=T0 + MIN,
    )
    platform.orders.apply(plan, order)
    assert platform.sweep(30).escalated == []


# -- offline --------------------------------------------------------------------------------------
def test_given_three_silent_devices_then_three_offline_orders(platform: Platform) -> None:
    platform.add(*(cover(n, "G03") for n in (1, 2, 3, 4)))
    platform.report(0, {"MH-0001": 1, "MH-0002": 1, "MH-0003": 1, "MH-0004": 1})
    platform.report(50, {"MH-0004": 1})

    assert platform.sweep(59).raised == [], "one hour of silence is the default threshold"
    outcome = platform.sweep(61)

    assert sorted(outcome.raised) == ["MH-0001", "MH-0002", "MH-0003"] and outcome.incidents == []
    orders = platform.grid_orders("G03")
    assert len(orders) == 3
    assert {o.device_id for o in orders} == {"MH-0001", "MH-0002", "MH-0003"}
    for o in orders:
        assert o.category is Category.DEVICE_OFFLINE and o.status is OrderStatus.DISPATCHED
        assert o.alarm_type is AlarmType.OFFLINE and o.reading is None
        assert "离线" in o.title and "最后一次上报" in o.description
    record = platform.devices.get("MH-0001")
    assert record is not None and record.state.track(AlarmType.OFFLINE).active


def test_given_eight_silent_devices_of_one_grid_then_one_incident_lists_them(platform: Platform) -> None:
    g04 = [cover(n, "G04") for n in range(10, 18)]
    platform.add(*g04, cover(1, "G03"))
    platform.report(0, {d.device_id: 1 for d in g04} | {"MH-0001": 1})
    platform.report(50, {"MH-0001": 1})

    outcome = platform.sweep(65)

    assert len(outcome.raised) == 8 and len(outcome.incidents) == 1
    [incident] = platform.grid_orders("G04")
    assert incident.order_id == outcome.incidents[0]
    assert incident.category is Category.DEVICE_OFFLINE and incident.device_id is None
    assert incident.status is OrderStatus.DISPATCHED and incident.grid_id == "G04"
    assert "8 台" in incident.title
    assert all(d.device_id in incident.description for d in g04)
    raw = platform.raw_order(incident.order_id)
    assert raw["device_ids"] == [d.device_id for d in g04]
    assert len(incident.alarm_ids) == 8 and incident.version == 1, "devices attached by condition check"
    for d in g04:
        track = platform.devices.get(d.device_id).state.track(AlarmType.OFFLINE)  # type: ignore[union-attr]
        assert track.active and track.incident and track.order_id == incident.order_id
    assert platform.grid_orders("G03") == []


def test_given_an_open_incident_then_devices_going_offline_later_join_it(platform: Platform) -> None:
    g04 = [cover(n, "G04") for n in range(10, 17)]
    platform.add(*g04)
    platform.report(0, {d.device_id: 1 for d in g04[:6]})
    platform.report(30, {g04[6].device_id: 1})
    first = platform.sweep(65)
    assert len(first.incidents) == 1 and len(first.raised) == 6

    second = platform.sweep(95)

    assert second.raised == ["MH-0016"] and second.incidents == []
    [incident] = platform.grid_orders("G04")
    raw = platform.raw_order(incident.order_id)
    assert raw["device_ids"][-1] == "MH-0016" and len(incident.alarm_ids) == 7
    assert incident.timeline[-1].action == "incident_joined"


def test_given_an_offline_device_reporting_again_then_its_alarm_clears(platform: Platform) -> None:
    platform.add(cover(1, "G03"))
    platform.report(0, {"MH-0001": 1})
    platform.sweep(61)
    [order] = platform.grid_orders("G03")

    platform.report(75, {"MH-0001": 2})

    record = platform.devices.get("MH-0001")
    assert record is not None
    track = record.state.track(AlarmType.OFFLINE)
    assert not track.active and track.order_id == order.order_id
    after = platform.orders.get(order.order_id)
    assert after is not None and after.sensor_normal and after.status is OrderStatus.DISPATCHED
    assert after.timeline[-1].action == "alarm_cleared" and "恢复上报" in (after.timeline[-1].note or "")
    event = derive_event(OrderChange(ChangeKind.MODIFY, order, after))
    assert event is not None and event.event_type is OutboundEventType.ALARM_CLEARED
    alarms = client("dynamodb").query(
        TableName=platform.resources.table_name,
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues=to_item({":p": "DEVICE#MH-0001", ":s": "ALARM#offline#"}),
    )["Items"]
    assert [from_item(a)["status"] for a in alarms] == ["cleared"]

    # silent again while the order is still open: the new alarm attaches to the same order
    platform.sweep(75 + 61 + 1)
    [same] = platform.grid_orders("G03")
    assert same.order_id == order.order_id and same.reraise_count == 1 and not same.sensor_normal


def test_given_an_offline_device_back_tilted_then_offline_clears_and_tilt_raises_in_one_write(
    platform: Platform,
) -> None:
    platform.add(cover(1, "G03"))
    platform.report(0, {"MH-0001": 1})
    platform.sweep(61)
    [offline_order] = platform.grid_orders("G03")

    platform.report(70, {"MH-0001": 31})

    orders = {o.category: o for o in platform.grid_orders("G03")}
    assert orders[Category.DEVICE_OFFLINE].sensor_normal
    assert orders[Category.MANHOLE_TILT].status is OrderStatus.DISPATCHED
    state = platform.devices.get("MH-0001").state  # type: ignore[union-attr]
    assert not state.track(AlarmType.OFFLINE).active and state.track(AlarmType.TILT).active
    assert offline_order.order_id == orders[Category.DEVICE_OFFLINE].order_id


def test_given_an_incident_device_reporting_again_then_it_is_recorded_on_the_incident(
    platform: Platform,
) -> None:
    g04 = [cover(n, "G04") for n in range(10, 15)]
    platform.add(*g04)
    platform.report(0, {d.device_id: 1 for d in g04})
    [incident_id] = platform.sweep(61).incidents

    platform.report(70, {"MH-0012": 1})

    raw = platform.raw_order(incident_id)
    assert raw["devices_back"] == ["MH-0012"] and raw["status"] == "dispatched"
    assert raw["timeline"][-1]["action"] == "device_back"
    track = platform.devices.get("MH-0012").state.track(AlarmType.OFFLINE)  # type: ignore[union-attr]
    assert not track.active and track.order_id is None and not track.incident


def test_given_the_sweeper_runs_twice_then_nothing_new_is_raised(platform: Platform) -> None:
    platform.add(*(cover(n, "G03") for n in (1, 2, 3)), *(cover(n, "G04") for n in range(10, 16)))
    platform.report(0, {f"MH-{n:04d}": 1 for n in (1, 2, 3, *range(10, 16))})
    first = platform.sweep(61)
    assert len(first.raised) == 9
    before = platform.grid_orders("G03") + platform.grid_orders("G04")

    with CallCounter("dynamodb") as calls:
        second = platform.sweep(62)
        third = platform.sweep(90)

    assert second.raised == [] and third.raised == [] and second.incidents == []
    assert calls.writes == 0
    assert sorted(o.order_id for o in platform.grid_orders("G03") + platform.grid_orders("G04")) == sorted(
        o.order_id for o in before
    )


def test_given_devices_in_maintenance_then_they_are_not_raised(platform: Platform) -> None:
    window = MaintenanceWindow(
        window_id="mw-1", start=to_iso(T0 + 30 * MIN), end=to_iso(T0 + 180 * MIN), reason="管网改造"
    )
    platform.add(cover(1, "G03", [window]), cover(2, "G03"))
    platform.report(0, {"MH-0001": 1, "MH-0002": 1})

    assert platform.sweep(61).raised == ["MH-0002"]
    assert platform.sweep(200).raised == [], "silence counts from the end of the window"
    assert platform.sweep(241).raised == ["MH-0001"]


def test_given_a_tilt_inside_a_maintenance_window_then_no_order(platform: Platform) -> None:
    window = MaintenanceWindow(window_id="mw-1", start=to_iso(T0), end=to_iso(T0 + 60 * MIN))
    platform.add(cover(1, "G03", [window]))
    platform.report(1, {"MH-0001": 35})
    assert platform.grid_orders("G03") == []
    platform.report(61, {"MH-0001": 35})
    assert len(platform.grid_orders("G03")) == 1


def test_the_sweeper_never_scans(platform: Platform) -> None:
    platform.add(*(cover(n, "G03") for n in range(1, 7)), cover(178, "G05"))
    platform.report(0, {f"MH-{n:04d}": 1 for n in range(1, 7)} | {"MH-0178": 30})

    with CallCounter("dynamodb") as calls:
        platform.sweep(11)
        platform.sweep(65)

    assert calls.counts["Scan"] == 0
    assert calls.counts["Query"] > 0


# -- the Lambda handler ---------------------------------------------------------------------------
def test_given_the_sample_schedule_event_then_the_handler_sweeps(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.add(cover(1, "G03"))
    platform.report(0, {"MH-0001": 1})
    sweeper_handler.sweeper.cache_clear()
    monkeypatch.setattr(sweeper_handler, "clock", lambda: T0 + 61 * MIN)
    event = json.loads((EVENTS / "schedule_sweeper.json").read_text())
    try:
        result = sweeper_handler.handler(event, FakeContext())
    finally:
        sweeper_handler.sweeper.cache_clear()
    assert result["offline_raised"] == ["MH-0001"] and result["counts"]["offline_raised"] == 1
