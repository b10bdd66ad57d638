"""Offline devices: which devices are newly silent, and how their alarms group into incidents.

Pure logic (no clock, no I/O). The sweeper reads, per grid, the devices whose persisted heartbeat is
older than :func:`query_cutoff_ms` (the last-seen index ``SEEN#<grid>``), then:

1. :func:`newly_offline` keeps those that are silent for longer than their threshold and not
   already offline:

   - threshold: the profile's ``offline_after_s``, but at least two heartbeat intervals (the
     persisted last-seen time lags the newest reading by up to one interval, DESIGN.md);
   - silence is measured from the later of the last reading and the end of the device's latest
     maintenance window that has ended (a device is expected to be quiet during maintenance and
     gets its full threshold afterwards); inside a window nothing is raised at all;
   - a device that never reported (no last-seen time) is not "offline": it was never online;
   - a device whose ``offline`` track is active is skipped, so a second sweep raises nothing.

2. :func:`plan_grid` groups them:

   - a grid with an open incident (some device's active ``offline`` track points to one):
     the new devices join that incident;
   - otherwise at least ``min_devices`` newly offline devices in one sweep make ONE incident
     order (category ``device_offline``, the devices listed) instead of one order each;
   - fewer make one order per device (through the usual alarm path: a device whose previous
     offline order is still open attaches to it).

Incident orders have no single sensor behind them, so ``resolve`` closes them at once
(:func:`smartzone.domain.lifecycle.pending_after_resolve`); devices coming back are recorded on
the incident (timeline entry), which the platform never closes by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from smartzone.domain.alarms import (
    AlarmTrack,
    AlarmTransition,
    AlarmType,
    DeviceState,
    TransitionKind,
    make_alarm_id,
    make_order_id,
)
from smartzone.domain.registry import Device, MaintenanceWindow
from smartzone.domain.timeutil import TimestampError, parse_ts_ms, to_iso, to_local_display
from smartzone.domain.workorders import (
    SYSTEM_ROLE,
    Category,
    OrderStatus,
    Severity,
    TimelineEntry,
    WorkOrder,
)

SWEEPER_ACTOR = "system:sweeper"
INCIDENT_SUFFIX = "-INC"


# -- maintenance windows ---------------------------------------------------------------------------
def window_bounds(windows: Iterable[MaintenanceWindow]) -> list[tuple[int, int]]:
    """The windows as ``[start, end)`` UTC ms; windows with unreadable times are ignored."""
    bounds = []
    for window in windows:
        try:
            start, end = parse_ts_ms(window.start), parse_ts_ms(window.end)
        except TimestampError:
            continue
        if end > start:
            bounds.append((start, end))
    return bounds


def maintenance_silencer(windows: Iterable[MaintenanceWindow]) -> Callable[[int], bool] | None:
    """``silenced_at(ms)`` for :func:`smartzone.domain.alarms.evaluate`, or ``None`` without windows."""
    bounds = window_bounds(windows)
    if not bounds:
        return None

    def silenced_at(at_ms: int) -> bool:
        return any(start <= at_ms < end for start, end in bounds)

    return silenced_at


# -- detection -------------------------------------------------------------------------------------
def threshold_ms(offline_after_s: int, heartbeat_interval_s: int) -> int:
    """Silence after which a device is offline: its profile's, but at least two heartbeats."""
    return max(offline_after_s, 2 * heartbeat_interval_s) * 1000


def query_cutoff_ms(now_ms: int, heartbeat_interval_s: int) -> int:
    """Heartbeats older than this may be offline (every threshold is at least two heartbeats, and
    the persisted heartbeat is never later than the persisted last-seen time)."""
    return now_ms - 2 * heartbeat_interval_s * 1000


@dataclass(frozen=True, slots=True)
class OfflineDevice:
    """A device found newly offline by a sweep."""

    device: Device
    last_seen: int
    silent_s: float
    """Seconds since the last reading (as persisted) at the sweep."""


def silent_since(device: Device, state: DeviceState, now_ms: int) -> int | None:
    """From when the device counts as silent, or ``None`` when it is in maintenance now or never
    reported."""
    if state.last_seen is None:
        return None
    since = state.last_seen
    for start, end in window_bounds(device.maintenance):
        if start <= now_ms < end:
            return None
        if end <= now_ms:
            since = max(since, end)
    return since


def is_newly_offline(device: Device, state: DeviceState, now_ms: int, heartbeat_interval_s: int) -> bool:
    if state.track(AlarmType.OFFLINE).active:
        return False
    since = silent_since(device, state, now_ms)
    if since is None:
        return False
    return now_ms - since > threshold_ms(device.profile.offline_after_s, heartbeat_interval_s)


def newly_offline(
    devices: Iterable[tuple[Device, DeviceState]], now_ms: int, heartbeat_interval_s: int
) -> list[OfflineDevice]:
    """The devices that went offline since the last sweep, by device id."""
    found = [
        OfflineDevice(device, state.last_seen or 0, (now_ms - (state.last_seen or 0)) / 1000)
        for device, state in devices
        if is_newly_offline(device, state, now_ms, heartbeat_interval_s)
    ]
    return sorted(found, key=lambda o: o.device.device_id)


# -- grouping --------------------------------------------------------------------------------------
def make_incident_id(grid_id: str, now_ms: int) -> str:
    """``WO-<sweep time>-<grid>-INC``: one incident per grid and sweep."""
    return make_order_id(grid_id, AlarmType.OFFLINE, now_ms).removesuffix("-O") + INCIDENT_SUFFIX


def is_incident_id(order_id: str | None) -> bool:
    return bool(order_id) and str(order_id).endswith(INCIDENT_SUFFIX)


def open_incident(states: Iterable[DeviceState]) -> str | None:
    """The incident order that devices of this grid are offline under, if any (the smallest id)."""
    ids = sorted(
        t.order_id
        for t in (s.track(AlarmType.OFFLINE) for s in states)
        if t.active and t.incident and t.order_id
    )
    return ids[0] if ids else None


@dataclass(frozen=True, slots=True)
class GridPlan:
    """What one sweep does about one grid's newly offline devices."""

    grid_id: str
    new_incident: WorkOrder | None = None
    """An incident order to create (conditional put) before the devices attach to it."""
    incident_id: str | None = None
    """The incident the devices attach to (new or already open), ``None``: one order each."""
    devices: tuple[OfflineDevice, ...] = field(default_factory=tuple)


def plan_grid(
    grid_id: str,
    offline: Sequence[OfflineDevice],
    *,
    existing_incident: str | None,
    min_devices: int,
    now_ms: int,
) -> GridPlan:
    if not offline:
        return GridPlan(grid_id)
    if existing_incident is not None:
        return GridPlan(grid_id, None, existing_incident, tuple(offline))
    if len(offline) >= min_devices:
        incident = new_incident_order(grid_id, offline, now_ms)
        return GridPlan(grid_id, incident, incident.order_id, tuple(offline))
    return GridPlan(grid_id, None, None, tuple(offline))


def _device_list(offline: Sequence[OfflineDevice], limit: int = 20) -> str:
    names = [f"{o.device.short_name}({o.device.device_id})" for o in offline[:limit]]
    more = f"等 {len(offline)} 台" if len(offline) > limit else f"共 {len(offline)} 台"
    return "、".join(names) + more


def new_incident_order(grid_id: str, offline: Sequence[OfflineDevice], now_ms: int) -> WorkOrder:
    """One ``device_offline`` order for many devices of one grid going silent together."""
    now = to_iso(now_ms)
    order_id = make_incident_id(grid_id, now_ms)
    earliest = min(o.last_seen for o in offline)
    roads = sorted({o.device.road for o in offline})
    text = (
        f"网格 {grid_id} 内 {len(offline)} 台设备同时离线(最早自 {to_local_display(earliest)} 起无数据,"
        f"涉及道路:{'、'.join(roads[:5])}),疑似区域停电或通信中断,请统一排查。"
        f"离线设备:{_device_list(offline)}。"
    )
    return WorkOrder(
        order_id=order_id,
        status=OrderStatus.DISPATCHED,
        category=Category.DEVICE_OFFLINE,
        severity=Severity.HIGH,
        source="sensor",
        grid_id=grid_id,
        title=f"网格 {grid_id} {len(offline)} 台设备集中离线",
        description=text,
        alarm_type=AlarmType.OFFLINE,
        alarm_ids=[make_alarm_id(o.device.device_id, AlarmType.OFFLINE, now_ms) for o in offline],
        created_at=now,
        updated_at=now,
        timeline=[
            TimelineEntry(
                at=now,
                actor=SWEEPER_ACTOR,
                role=SYSTEM_ROLE,
                action="raise",
                from_status=None,
                to_status=OrderStatus.DISPATCHED,
                note=f"集中离线事件:{text}",
            )
        ],
    )


# -- the raise itself ------------------------------------------------------------------------------
def raise_offline(
    state: DeviceState, found: OfflineDevice, now_ms: int, incident_id: str | None = None
) -> tuple[DeviceState, AlarmTransition]:
    """The device's state with an active ``offline`` track, and the RAISED transition to persist.

    Without an incident, a previous offline order still referenced by the track is reused (the
    alarm store attaches to it while it is open, else makes a fresh one), as for any alarm type.
    """
    device_id = found.device.device_id
    work = state.model_copy(deep=True)
    previous = state.track(AlarmType.OFFLINE)
    alarm_id = make_alarm_id(device_id, AlarmType.OFFLINE, now_ms)
    if incident_id is not None:
        order_id, attach = incident_id, False
    elif previous.order_id and not previous.incident:
        order_id, attach = previous.order_id, True
    else:
        order_id, attach = make_order_id(device_id, AlarmType.OFFLINE, now_ms), False
    work.alarms[AlarmType.OFFLINE.value] = AlarmTrack(
        active=True,
        alarm_id=alarm_id,
        raised_at=now_ms,
        order_id=order_id,
        worst=found.silent_s,
        incident=incident_id is not None,
    )
    transition = AlarmTransition(
        TransitionKind.RAISED,
        AlarmType.OFFLINE,
        device_id,
        alarm_id,
        order_id,
        attach,
        now_ms,
        found.silent_s,
        found.silent_s,
        now_ms,
        incident_id is not None,
    )
    return work, transition
