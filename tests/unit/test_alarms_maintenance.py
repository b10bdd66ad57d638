"""Maintenance windows silence new alarms (not clears); any reading clears an offline alarm."""

from __future__ import annotations

from smartzone.domain.alarms import (
    AlarmTrack,
    AlarmType,
    DeviceState,
    Evaluation,
    TransitionKind,
    dedupe_sorted,
    evaluate,
)
from smartzone.domain.offline import maintenance_silencer
from smartzone.domain.readings import Reading
from smartzone.domain.registry import AlarmProfile, MaintenanceWindow
from smartzone.domain.timeutil import to_iso

T0 = 1_795_960_000_000
MIN = 60_000
HB = 15 * MIN
PROFILE = AlarmProfile(tilt_clear_window_s=300)


def r(minute: float, tilt: float, battery: float = 90.0) -> Reading:
    return Reading(ts=T0 + int(minute * MIN), seq=-1, tilt_deg=tilt, battery_pct=battery, device_id="MH-0178")


def window(start_min: float, end_min: float) -> MaintenanceWindow:
    return MaintenanceWindow(
        window_id="w1",
        start=to_iso(T0 + int(start_min * MIN)),
        end=to_iso(T0 + int(end_min * MIN)),
        reason="井盖更换",
    )


def run(
    state: DeviceState, readings: list[Reading], windows: list[MaintenanceWindow]
) -> tuple[DeviceState, list]:
    """Evaluate like the pipeline: persist each transition, continue until the batch is done."""
    silenced = maintenance_silencer(windows)
    transitions = []
    ordered = dedupe_sorted(readings)
    while True:
        ev: Evaluation = evaluate(state, PROFILE, ordered, heartbeat_interval_ms=HB, silenced_at=silenced)
        state = ev.state
        transitions.extend(ev.transitions)
        if not ev.transitions:
            return state, transitions


def test_given_a_tilt_inside_a_window_then_no_alarm_but_state_advances() -> None:
    state, transitions = run(DeviceState(), [r(0, 3), r(5, 35, battery=5)], [window(0, 60)])

    assert transitions == []
    assert state.watermark == T0 + 5 * MIN and state.last_tilt == 35
    assert not state.track(AlarmType.TILT).active and not state.track(AlarmType.BATTERY_LOW).active


def test_given_the_window_ends_while_tilted_then_the_next_reading_raises() -> None:
    state, transitions = run(DeviceState(), [r(5, 35), r(59, 36)], [window(0, 60)])
    assert transitions == []

    state, transitions = run(state, [r(60, 36)], [window(0, 60)])

    assert [(t.kind, t.alarm_type) for t in transitions] == [(TransitionKind.RAISED, AlarmType.TILT)]
    assert transitions[0].at == T0 + 60 * MIN, "the window is [start, end): its end is outside"


def test_given_an_alarm_raised_before_the_window_then_it_still_clears_inside_it() -> None:
    state, raised = run(DeviceState(), [r(0, 30)], [])
    assert [t.kind for t in raised] == [TransitionKind.RAISED]

    state, transitions = run(state, [r(10, 2), r(16, 2)], [window(5, 120)])

    assert [(t.kind, t.alarm_type) for t in transitions] == [(TransitionKind.CLEARED, AlarmType.TILT)]
    assert not state.track(AlarmType.TILT).active


def test_given_a_window_on_another_time_then_alarms_raise_as_usual() -> None:
    _, transitions = run(DeviceState(), [r(0, 30)], [window(60, 120)])
    assert [t.kind for t in transitions] == [TransitionKind.RAISED]


def test_given_an_unreadable_window_then_it_silences_nothing() -> None:
    bad = MaintenanceWindow(window_id="w", start="not a time", end="never")
    assert maintenance_silencer([bad]) is None
    _, transitions = run(DeviceState(), [r(0, 30)], [bad])
    assert [t.kind for t in transitions] == [TransitionKind.RAISED]


def offline_state() -> DeviceState:
    return DeviceState(
        watermark=T0,
        last_seen=T0,
        heartbeat_at=T0,
        alarms={
            "offline": AlarmTrack(
                active=True, alarm_id="AL-x-O", raised_at=T0 + 70 * MIN, order_id="WO-x-O", worst=4200
            )
        },
    )


def test_given_an_offline_device_when_any_reading_arrives_then_the_offline_alarm_clears() -> None:
    state, transitions = run(offline_state(), [r(80, 2)], [])

    assert [(t.kind, t.alarm_type) for t in transitions] == [(TransitionKind.CLEARED, AlarmType.OFFLINE)]
    t = transitions[0]
    assert t.order_id == "WO-x-O" and t.alarm_id == "AL-x-O" and t.value == 80 * 60
    assert t.raised_at == T0 + 70 * MIN and not t.incident
    track = state.track(AlarmType.OFFLINE)
    assert not track.active and track.order_id == "WO-x-O"


def test_given_an_offline_device_back_tilted_then_the_clear_and_the_raise_are_one_step() -> None:
    _, transitions = run(offline_state(), [r(80, 30)], [])

    assert {(t.kind, t.alarm_type) for t in transitions} == {
        (TransitionKind.CLEARED, AlarmType.OFFLINE),
        (TransitionKind.RAISED, AlarmType.TILT),
    }


def test_given_an_offline_device_back_inside_a_window_then_the_offline_alarm_still_clears() -> None:
    _, transitions = run(offline_state(), [r(80, 30)], [window(60, 120)])

    assert [(t.kind, t.alarm_type) for t in transitions] == [(TransitionKind.CLEARED, AlarmType.OFFLINE)]


def test_given_an_incident_track_then_the_clear_says_so() -> None:
    state = offline_state()
    state.alarms["offline"].incident = True
    _, transitions = run(state, [r(80, 2)], [])
    assert transitions[0].incident


def test_given_a_stale_reading_then_the_offline_alarm_stays() -> None:
    state, transitions = run(offline_state(), [r(0, 2)], [])
    assert transitions == [] and state.track(AlarmType.OFFLINE).active
