"""Offline detection and incident grouping (pure logic, controllable clock)."""

from __future__ import annotations

from smartzone.domain.alarms import AlarmTrack, AlarmType, DeviceState, TransitionKind
from smartzone.domain.offline import (
    GridPlan,
    is_incident_id,
    make_incident_id,
    newly_offline,
    open_incident,
    plan_grid,
    query_cutoff_ms,
    raise_offline,
    threshold_ms,
)
from smartzone.domain.registry import AlarmProfile, Device, MaintenanceWindow
from smartzone.domain.timeutil import to_iso
from smartzone.domain.workorders import Category, OrderStatus

NOW = 1_795_960_000_000
MIN = 60_000
HB_S = 900


def device(n: int, grid: str = "G03", offline_after_s: int = 3600, maintenance=()) -> Device:  # type: ignore[no-untyped-def]
    return Device(
        device_id=f"MH-{n:04d}",
        name=f"高新大道{n}号井",
        road="高新大道",
        lon=118.35,
        lat=31.33,
        grid_id=grid,
        profile=AlarmProfile(offline_after_s=offline_after_s),
        maintenance=list(maintenance),
    )


def seen(minutes_ago: float | None, **tracks: AlarmTrack) -> DeviceState:
    at = None if minutes_ago is None else NOW - int(minutes_ago * MIN)
    return DeviceState(watermark=at, last_seen=at, heartbeat_at=at, alarms=dict(tracks))


def window(start_min: float, end_min: float) -> MaintenanceWindow:
    return MaintenanceWindow(
        window_id="w", start=to_iso(NOW + int(start_min * MIN)), end=to_iso(NOW + int(end_min * MIN))
    )


def ids(found) -> list[str]:  # type: ignore[no-untyped-def]
    return [o.device.device_id for o in found]


def test_given_devices_silent_longer_than_their_profile_then_newly_offline() -> None:
    found = newly_offline(
        [(device(1), seen(61)), (device(2), seen(59)), (device(3, offline_after_s=7200), seen(90))],
        NOW,
        HB_S,
    )
    assert ids(found) == ["MH-0001"]
    assert found[0].silent_s == 61 * 60 and found[0].last_seen == NOW - 61 * MIN


def test_given_a_short_profile_then_at_least_two_heartbeat_intervals_are_waited() -> None:
    assert threshold_ms(60, HB_S) == 2 * HB_S * 1000
    assert ids(newly_offline([(device(1, offline_after_s=60), seen(20))], NOW, HB_S)) == []
    assert ids(newly_offline([(device(1, offline_after_s=60), seen(31))], NOW, HB_S)) == ["MH-0001"]


def test_the_query_cutoff_never_misses_a_device_that_is_offline() -> None:
    cutoff = query_cutoff_ms(NOW, HB_S)
    for after in (60, 1800, 3600, 86_400):
        assert NOW - threshold_ms(after, HB_S) <= cutoff


def test_given_an_offline_track_already_active_then_not_raised_again() -> None:
    active = AlarmTrack(active=True, alarm_id="AL", order_id="WO", raised_at=NOW - MIN)
    assert newly_offline([(device(1), seen(300, offline=active))], NOW, HB_S) == []


def test_given_a_device_that_never_reported_then_not_offline() -> None:
    assert newly_offline([(device(1), seen(None))], NOW, HB_S) == []


def test_given_a_device_in_maintenance_now_then_not_raised() -> None:
    in_window = device(1, maintenance=[window(-120, 60)])
    assert newly_offline([(in_window, seen(300))], NOW, HB_S) == []


def test_given_maintenance_ended_recently_then_silence_counts_from_its_end() -> None:
    ended_10_min_ago = device(1, maintenance=[window(-300, -10)])
    ended_2_h_ago = device(2, maintenance=[window(-300, -120)])
    found = newly_offline([(ended_10_min_ago, seen(400)), (ended_2_h_ago, seen(400))], NOW, HB_S)
    assert ids(found) == ["MH-0002"]


def offline_devices(n: int, grid: str = "G03"):  # type: ignore[no-untyped-def]
    return newly_offline([(device(i, grid), seen(90 + i)) for i in range(1, n + 1)], NOW, HB_S)


def test_given_fewer_than_the_minimum_then_one_order_each() -> None:
    plan = plan_grid("G03", offline_devices(3), existing_incident=None, min_devices=5, now_ms=NOW)
    assert plan.new_incident is None and plan.incident_id is None and len(plan.devices) == 3


def test_given_many_devices_of_one_grid_then_one_incident_listing_them() -> None:
    found = offline_devices(8)
    plan = plan_grid("G03", found, existing_incident=None, min_devices=5, now_ms=NOW)

    incident = plan.new_incident
    assert incident is not None and plan.incident_id == incident.order_id
    assert incident.category is Category.DEVICE_OFFLINE and incident.status is OrderStatus.DISPATCHED
    assert incident.grid_id == "G03" and incident.device_id is None
    assert is_incident_id(incident.order_id) and not is_incident_id("WO-20261129T060500000-MH-0178-O")
    assert len(incident.alarm_ids) == 8
    assert all(d in incident.description for d in ids(found))
    assert "8 台" in incident.title


def test_given_exactly_the_minimum_then_an_incident() -> None:
    plan = plan_grid("G03", offline_devices(5), existing_incident=None, min_devices=5, now_ms=NOW)
    assert plan.new_incident is not None


def test_given_an_open_incident_in_the_grid_then_new_devices_join_it() -> None:
    plan = plan_grid("G03", offline_devices(2), existing_incident="WO-x-G03-INC", min_devices=5, now_ms=NOW)
    assert plan == GridPlan("G03", None, "WO-x-G03-INC", tuple(offline_devices(2)))


def test_given_no_newly_offline_devices_then_nothing_planned() -> None:
    plan = plan_grid("G03", [], existing_incident="WO-x-G03-INC", min_devices=5, now_ms=NOW)
    assert plan.devices == () and plan.new_incident is None


def test_open_incident_is_found_from_active_incident_tracks() -> None:
    incident = AlarmTrack(active=True, order_id="WO-b-G03-INC", incident=True)
    single = AlarmTrack(active=True, order_id="WO-a-MH-0001-O")
    cleared = AlarmTrack(active=False, order_id="WO-a-G03-INC", incident=True)
    assert open_incident([seen(90, offline=single), seen(90, offline=cleared)]) is None
    assert open_incident([seen(90, offline=incident), seen(90, offline=single)]) == "WO-b-G03-INC"


def test_the_incident_id_is_per_grid_and_sweep() -> None:
    assert make_incident_id("G03", NOW) != make_incident_id("G04", NOW)
    assert make_incident_id("G03", NOW).startswith("WO-") and make_incident_id("G03", NOW).endswith(
        "-G03-INC"
    )


def test_raise_offline_sets_an_active_track_and_a_raised_transition() -> None:
    found = offline_devices(1)[0]
    state, t = raise_offline(seen(91), found, NOW)

    track = state.track(AlarmType.OFFLINE)
    assert track.active and track.raised_at == NOW and track.order_id == t.order_id and not track.incident
    assert t.kind is TransitionKind.RAISED and t.alarm_type is AlarmType.OFFLINE and not t.attach
    assert t.value == 91 * 60 and t.at == NOW


def test_raise_offline_into_an_incident() -> None:
    found = offline_devices(1)[0]
    state, t = raise_offline(seen(91), found, NOW, "WO-x-G03-INC")
    assert t.incident and t.order_id == "WO-x-G03-INC" and state.track(AlarmType.OFFLINE).incident


def test_raise_offline_reuses_the_previous_single_order() -> None:
    found = offline_devices(1)[0]
    previous = seen(91, offline=AlarmTrack(active=False, order_id="WO-old-MH-0001-O"))
    _, t = raise_offline(previous, found, NOW)
    assert t.attach and t.order_id == "WO-old-MH-0001-O"
    old_incident = seen(91, offline=AlarmTrack(active=False, order_id="WO-old-G03-INC", incident=True))
    _, t2 = raise_offline(old_incident, found, NOW)
    assert not t2.attach and t2.order_id != "WO-old-G03-INC"
