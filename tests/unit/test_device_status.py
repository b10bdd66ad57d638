"""The live status of a device: alarm > offline > maintenance > normal, from hot state and time."""

from __future__ import annotations

import pytest

from smartzone.domain.alarms import AlarmTrack, DeviceState
from smartzone.domain.device_status import (
    LiveStatus,
    active_windows,
    count_by_status,
    is_expired,
    live_status,
)
from smartzone.domain.registry import AlarmProfile, Device, MaintenanceWindow
from smartzone.domain.timeutil import from_iso, to_iso

NOW = from_iso("2026-11-29T14:05:00+08:00")
MINUTE = 60_000


def device(*windows: MaintenanceWindow, offline_after_s: int = 3600) -> Device:
    return Device(
        device_id="MH-0178",
        name="高新大道178号井",
        road="高新大道",
        lon=118.35,
        lat=31.33,
        grid_id="G03",
        profile=AlarmProfile(offline_after_s=offline_after_s),
        maintenance=list(windows),
    )


def window(start_min: int, end_min: int, window_id: str = "MW-1") -> MaintenanceWindow:
    return MaintenanceWindow(
        window_id=window_id, start=to_iso(NOW + start_min * MINUTE), end=to_iso(NOW + end_min * MINUTE)
    )


def seen(minutes_ago: int, **alarms: AlarmTrack) -> DeviceState:
    at = NOW - minutes_ago * MINUTE
    return DeviceState(watermark=at, last_seen=at, last_tilt=2.0, alarms=dict(alarms))


def test_given_a_recent_reading_and_no_alarm_then_normal() -> None:
    assert live_status(device(), seen(5), NOW) is LiveStatus.NORMAL


@pytest.mark.parametrize("alarm_type", ["tilt", "battery_low"])
def test_given_an_active_tilt_or_battery_alarm_then_alarm(alarm_type: str) -> None:
    state = seen(5, **{alarm_type: AlarmTrack(active=True, alarm_id="AL-1", order_id="WO-1")})
    assert live_status(device(), state, NOW) is LiveStatus.ALARM


def test_given_a_cleared_alarm_whose_order_is_still_open_then_normal() -> None:
    state = seen(5, tilt=AlarmTrack(active=False, order_id="WO-1"))
    assert live_status(device(), state, NOW) is LiveStatus.NORMAL


def test_given_an_active_offline_track_then_offline_even_with_a_recent_reading() -> None:
    state = seen(1, offline=AlarmTrack(active=True, alarm_id="AL-O"))
    assert live_status(device(), state, NOW) is LiveStatus.OFFLINE


def test_given_silence_longer_than_the_profile_allows_then_offline() -> None:
    assert live_status(device(offline_after_s=600), seen(11), NOW) is LiveStatus.OFFLINE
    assert live_status(device(offline_after_s=600), seen(10), NOW) is LiveStatus.NORMAL


def test_given_a_device_that_never_reported_then_offline() -> None:
    assert live_status(device(), DeviceState(), NOW) is LiveStatus.OFFLINE


def test_given_now_inside_a_window_then_maintenance_and_outside_it_normal() -> None:
    assert live_status(device(window(-10, 50)), seen(5), NOW) is LiveStatus.MAINTENANCE
    assert live_status(device(window(10, 50)), seen(5), NOW) is LiveStatus.NORMAL
    assert live_status(device(window(-60, 0)), seen(5), NOW) is LiveStatus.NORMAL  # end is exclusive


def test_given_an_alarm_raised_before_maintenance_then_alarm_still_shows() -> None:
    state = seen(5, tilt=AlarmTrack(active=True, alarm_id="AL-1"))
    assert live_status(device(window(-10, 50)), state, NOW) is LiveStatus.ALARM


def test_given_an_offline_device_in_maintenance_then_offline_shows() -> None:
    assert live_status(device(window(-10, 50)), seen(120), NOW) is LiveStatus.OFFLINE


def test_given_unreadable_window_times_then_the_window_is_ignored() -> None:
    broken = MaintenanceWindow(window_id="MW-x", start="soon", end="later")
    assert active_windows([broken], NOW) == []
    assert not is_expired(broken, NOW)
    assert live_status(device(broken), seen(5), NOW) is LiveStatus.NORMAL


def test_given_windows_then_expiry_is_their_end() -> None:
    assert is_expired(window(-60, -1), NOW)
    assert not is_expired(window(-60, 1), NOW)


def test_counts_cover_every_status() -> None:
    counts = count_by_status([LiveStatus.ALARM, LiveStatus.NORMAL, LiveStatus.ALARM])
    assert counts == {"normal": 1, "alarm": 2, "offline": 0, "maintenance": 0}
