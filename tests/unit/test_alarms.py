"""Alarm evaluation: hysteresis, clear windows, re-raise, ordering and idempotence properties."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from smartzone.domain.alarms import (
    AlarmTransition,
    AlarmType,
    DeviceState,
    TransitionKind,
    dedupe_sorted,
    evaluate,
)
from smartzone.domain.readings import Reading
from smartzone.domain.registry import AlarmProfile

T0 = 1_795_960_000_000
MIN = 60_000
HB = 15 * MIN
PROFILE = AlarmProfile(tilt_clear_window_s=300)


def r(minute: float, tilt: float, battery: float = 90.0, seq: int = -1) -> Reading:
    return Reading(
        ts=T0 + int(minute * MIN), seq=seq, tilt_deg=tilt, battery_pct=battery, device_id="MH-0178"
    )


@dataclass
class Run:
    """Drives evaluate() the way the pipeline does, without storage: one batch at a time."""

    state: DeviceState = field(default_factory=DeviceState)
    transitions: list[AlarmTransition] = field(default_factory=list)
    writes: int = 0
    open_orders: set[str] = field(default_factory=set)

    def batch(self, readings: list[Reading], profile: AlarmProfile = PROFILE) -> Run:
        ordered = dedupe_sorted(readings)
        while True:
            ev = evaluate(self.state, profile, ordered, heartbeat_interval_ms=HB)
            assert ev.state.watermark is None or (self.state.watermark or 0) <= ev.state.watermark
            if ev.write_needed:
                self.writes += 1
                self.state = ev.state
            if not ev.transitions:
                self.state = ev.state
                return self
            for t in ev.transitions:
                self.transitions.append(t)
                if t.kind is TransitionKind.RAISED:
                    self.open_orders.add(t.order_id)

    def kinds(self) -> list[tuple[str, str]]:
        return [(t.kind.value, t.alarm_type.value) for t in self.transitions]


def test_given_tilt_above_20_when_evaluated_then_tilt_alarm_raised_with_an_order() -> None:
    run = Run().batch([r(0, 3), r(1, 25.3)])
    assert run.kinds() == [("raised", "tilt")]
    t = run.transitions[0]
    assert t.value == 25.3 and t.order_id.startswith("WO-") and not t.attach
    assert run.state.track(AlarmType.TILT).active


def test_given_exactly_20_degrees_when_evaluated_then_no_alarm() -> None:
    assert Run().batch([r(0, 20.0)]).transitions == []


def test_given_an_open_alarm_when_tilt_drops_below_10_for_the_window_then_cleared() -> None:
    run = Run().batch([r(0, 25)]).batch([r(1, 5), r(3, 4), r(5.9, 3)])
    assert run.kinds() == [("raised", "tilt")], "window not yet complete"
    run.batch([r(6, 2)])
    assert run.kinds() == [("raised", "tilt"), ("cleared", "tilt")]
    assert run.transitions[1].worst == 25 and run.transitions[1].order_id == run.transitions[0].order_id


def test_given_hysteresis_when_tilt_between_10_and_20_then_window_restarts() -> None:
    run = Run().batch([r(0, 25), r(1, 5), r(4, 15), r(5, 5), r(9, 5)])
    assert run.kinds() == [("raised", "tilt")], "15° interrupted the clear window"
    run.batch([r(10, 5)])
    assert run.kinds()[-1] == ("cleared", "tilt")


def test_given_the_clear_window_is_measured_on_device_time_when_readings_arrive_late_in_one_batch() -> None:
    run = Run().batch([r(6, 1), r(0, 25), r(1, 2)])  # arrival order is irrelevant
    assert run.kinds() == [("raised", "tilt"), ("cleared", "tilt")]


def test_given_a_cleared_alarm_with_its_order_still_open_when_tilt_rises_again_then_it_attaches() -> None:
    run = Run().batch([r(0, 25), r(1, 2), r(7, 2), r(8, 30)])
    raised, _, reraised = run.transitions
    assert reraised.kind is TransitionKind.RAISED and reraised.attach
    assert reraised.order_id == raised.order_id
    assert len(run.open_orders) == 1


def test_given_the_order_was_closed_when_tilt_rises_again_then_a_new_order() -> None:
    run = Run().batch([r(0, 25), r(1, 2), r(7, 2)])
    run.state.alarms["tilt"].order_id = None  # the order closed (the store releases it)
    run.batch([r(9, 30)])
    assert not run.transitions[-1].attach
    assert run.transitions[-1].order_id != run.transitions[0].order_id


def test_given_low_battery_when_evaluated_then_battery_alarm_with_its_own_hysteresis() -> None:
    run = Run().batch([r(0, 2, battery=15)])
    assert run.kinds() == [("raised", "battery_low")]
    run.batch([r(10, 2, battery=25), r(100, 2, battery=26)])
    assert run.kinds() == [("raised", "battery_low")], "25% is below the 30% clear threshold"
    run.batch([r(101, 2, battery=80), r(162, 2, battery=80)])
    assert run.kinds()[-1] == ("cleared", "battery_low")


def test_given_one_reading_raises_two_types_when_evaluated_then_both_in_one_step() -> None:
    ev = evaluate(DeviceState(), PROFILE, [r(0, 40, battery=5)], heartbeat_interval_ms=HB)
    assert {t.alarm_type for t in ev.transitions} == {AlarmType.TILT, AlarmType.BATTERY_LOW}


def test_given_normal_readings_when_evaluated_then_at_most_one_write_per_heartbeat_interval() -> None:
    run = Run()
    for minute in range(0, 60):  # one reading a minute for an hour, one per batch
        run.batch([r(minute, 2.0)])
    assert run.writes == 4  # minutes 0, 15, 30, 45


def test_given_readings_at_or_before_the_watermark_when_a_later_batch_arrives_then_dropped() -> None:
    run = Run().batch([r(0, 2), r(20, 2)])
    before = run.state.model_copy(deep=True)
    run.batch([r(5, 45), r(20, 45)])
    assert run.transitions == []
    assert run.state == before


# -- properties ----------------------------------------------------------------------------------

tilts = st.sampled_from([0.0, 2.0, 9.9, 10.0, 15.0, 20.0, 20.1, 25.0, 60.0])
batteries = st.sampled_from([5.0, 19.9, 20.0, 25.0, 30.0, 95.0])
readings_st = st.lists(
    st.builds(r, st.integers(0, 120).map(float), tilts, batteries),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(readings_st, st.randoms(use_true_random=False), st.integers(0, 3))
def test_property_any_duplication_or_permutation_within_a_batch_gives_identical_results(
    readings: list[Reading], rnd, copies: int
) -> None:
    shuffled = readings + [rnd.choice(readings) for _ in range(copies * len(readings) // 2)]
    rnd.shuffle(shuffled)
    a, b = Run().batch(readings), Run().batch(shuffled)
    assert a.transitions == b.transitions
    assert a.state == b.state


@settings(max_examples=300, deadline=None)
@given(readings_st, st.lists(st.integers(1, 40), min_size=1, max_size=6))
def test_property_batches_in_device_time_order_give_the_same_alarms_as_one_batch(
    readings: list[Reading], cuts: list[int]
) -> None:
    ordered = dedupe_sorted(readings)
    whole = Run().batch(ordered)
    split = Run()
    start = 0
    for cut in sorted(set(cuts)):
        split.batch(ordered[start:cut])
        start = cut
    split.batch(ordered[start:])
    assert split.transitions == whole.transitions
    assert split.state.material() == whole.state.material()


@settings(max_examples=300, deadline=None)
@given(readings_st, readings_st, st.randoms(use_true_random=False))
def test_property_late_readings_never_move_state_backwards_nor_open_a_second_alarm(
    first: list[Reading], later: list[Reading], rnd
) -> None:
    run = Run().batch(first)
    watermark = run.state.watermark
    late = [x for x in later if watermark is not None and x.ts <= watermark]
    rnd.shuffle(late)
    before = (run.state.model_copy(deep=True), len(run.transitions))
    run.batch(late)
    assert (run.state, len(run.transitions)) == before


@settings(max_examples=300, deadline=None)
@given(st.lists(readings_st, min_size=1, max_size=5))
def test_property_exactly_one_open_order_per_alarm_type_and_raises_alternate_with_clears(
    batches: list[list[Reading]],
) -> None:
    run = Run()
    for batch in batches:
        run.batch(batch)
    for alarm_type in AlarmType:
        sequence = [t for t in run.transitions if t.alarm_type is alarm_type]
        kinds = [t.kind for t in sequence]
        assert all(a != b for a, b in itertools.pairwise(kinds)), "raise/clear must alternate"
        new_orders = {t.order_id for t in sequence if t.kind is TransitionKind.RAISED and not t.attach}
        assert len(new_orders) <= 1, "re-raises attach while the order is open"
        assert all(t.order_id in new_orders for t in sequence)
