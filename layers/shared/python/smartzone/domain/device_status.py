"""A device's live status, derived from its registry record and hot state at a given time.

Pure logic (no clock, no I/O): the API shows it on device lists and details, and counts it per grid.

| status        | when (first match wins)                                                         |
|---------------|----------------------------------------------------------------------------------|
| ``alarm``     | a tilt or battery alarm track is active                                          |
| ``offline``   | the ``offline`` track is active, or the device was last seen more than its      |
|               | profile's ``offline_after_s`` ago (or has never reported)                       |
| ``maintenance`` | ``now`` is inside one of the device's maintenance windows (its own or its grid's) |
| ``normal``    | otherwise                                                                        |

An alarm raised before a maintenance window started stays visible (a window silences *new*
alarms only); an offline device shows ``offline`` even during maintenance, so that the command
centre sees that it has stopped reporting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from smartzone.domain.alarms import AlarmType, DeviceState
from smartzone.domain.registry import Device, MaintenanceWindow
from smartzone.domain.timeutil import TimestampError, parse_ts_ms


class LiveStatus(StrEnum):
    NORMAL = "normal"
    ALARM = "alarm"
    OFFLINE = "offline"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class Interval:
    """A maintenance window as UTC epoch milliseconds, ``[start, end)``."""

    start: int
    end: int

    def contains(self, at_ms: int) -> bool:
        return self.start <= at_ms < self.end


def window_interval(window: MaintenanceWindow) -> Interval | None:
    """The window's interval, or ``None`` when its stored times cannot be read (ignored)."""
    try:
        return Interval(parse_ts_ms(window.start), parse_ts_ms(window.end))
    except TimestampError:
        return None


def active_windows(windows: Iterable[MaintenanceWindow], now_ms: int) -> list[MaintenanceWindow]:
    """The windows ``now_ms`` falls in."""
    active = []
    for window in windows:
        interval = window_interval(window)
        if interval is not None and interval.contains(now_ms):
            active.append(window)
    return active


def is_expired(window: MaintenanceWindow, now_ms: int) -> bool:
    """A window whose end has passed (pruned when windows are added)."""
    interval = window_interval(window)
    return interval is not None and interval.end <= now_ms


def in_maintenance(device: Device, now_ms: int) -> bool:
    return bool(active_windows(device.maintenance, now_ms))


def has_active_alarm(state: DeviceState) -> bool:
    """A tilt or battery alarm (any type but ``offline``) is active."""
    return any(track.active for key, track in state.alarms.items() if key != AlarmType.OFFLINE.value)


def is_offline(device: Device, state: DeviceState, now_ms: int) -> bool:
    """The ``offline`` track is active, or the device has been silent longer than its profile allows."""
    if state.track(AlarmType.OFFLINE).active:
        return True
    if state.last_seen is None:
        return True
    return now_ms - state.last_seen > device.profile.offline_after_s * 1000


def live_status(device: Device, state: DeviceState, now_ms: int) -> LiveStatus:
    """The device's status now (see the module's table)."""
    if has_active_alarm(state):
        return LiveStatus.ALARM
    if is_offline(device, state, now_ms):
        return LiveStatus.OFFLINE
    if in_maintenance(device, now_ms):
        return LiveStatus.MAINTENANCE
    return LiveStatus.NORMAL


def count_by_status(statuses: Iterable[LiveStatus]) -> dict[str, int]:
    """Counts for every status (zeros included), in the enum's order."""
    counts = {status.value: 0 for status in LiveStatus}
    for status in statuses:
        counts[status.value] += 1
    return counts
