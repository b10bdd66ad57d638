"""Stage durations from an order's timeline, and log-spaced histograms of durations."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartzone.domain.alarms import AlarmType
from smartzone.domain.lifecycle import TransitionRequest, plan_transition
from smartzone.domain.stages import (
    LogHistogram,
    Stage,
    bucket_bounds,
    bucket_index,
    stage_durations,
)
from smartzone.domain.timeutil import from_iso, to_iso
from smartzone.domain.workorders import (
    Category,
    OrderStatus,
    Severity,
    TimelineEntry,
    WorkOrder,
    system_entry,
)

S = OrderStatus
MIN = 60_000
RAISED = from_iso("2026-11-29T14:05:00+08:00")


def at(hhmm: str) -> int:
    return from_iso(f"2026-11-29T{hhmm}:00+08:00")


def new_order(created_ms: int = RAISED) -> WorkOrder:
    return WorkOrder(
        order_id="WO-MH-0178",
        status=S.DISPATCHED,
        category=Category.MANHOLE_TILT,
        severity=Severity.HIGH,
        source="sensor",
        grid_id="G03",
        title="178号井倾斜告警",
        description="倾斜 25.3°",
        device_id="MH-0178",
        alarm_type=AlarmType.TILT,
        created_at=to_iso(created_ms),
        updated_at=to_iso(created_ms),
        timeline=[system_entry(created_ms, "raise", "告警触发", None, S.DISPATCHED)],
    )


def act(order: WorkOrder, action: str, when: int, role: str = "grid_worker", **kw: Any) -> WorkOrder:
    request = TransitionRequest(action=action, **kw)  # type: ignore[arg-type]
    plan = plan_transition(order, actor="gw-g03-01", roles=[role], request=request, now_ms=when)
    return plan.apply(order)


def sensor_clears(order: WorkOrder, when: int) -> WorkOrder:
    """What the telemetry pipeline writes when the sensor reports normal again."""
    entries = [system_entry(when, "alarm_cleared", "传感器恢复正常")]
    update: dict[str, Any] = {"sensor_normal": True, "version": order.version + 1}
    if order.status is S.RESOLVED:
        entries.append(system_entry(when, "close", "自动关闭", S.RESOLVED, S.CLOSED))
        update.update(status=S.CLOSED, closed_at=to_iso(when))
    return order.model_copy(update={**update, "timeline": [*order.timeline, *entries]})


def seed_story() -> WorkOrder:
    order = new_order()
    order = act(order, "acknowledge", at("14:07"))
    order = act(order, "comment", at("14:10"), note="已联系维修人员")
    order = act(order, "verify", at("14:20"))
    order = act(order, "handle", at("14:35"), role="technician")
    order = act(order, "resolve", at("15:00"), role="technician")
    return sensor_clears(order, at("15:09"))


# -- stage durations ---------------------------------------------------------------------------------
def test_given_the_seed_story_when_measured_then_each_stage_and_1h4min_to_clearance() -> None:
    """Given alarm 14:05 → acknowledged 14:07 → verifying 14:20 → handling 14:35 → resolved 15:00
    → sensor normal 15:09, then the stages and the 1 h 4 min total are reported."""
    result = stage_durations(seed_story())
    assert result.stages_ms == {
        Stage.DISPATCHED_TO_ACKNOWLEDGED: 2 * MIN,
        Stage.ACKNOWLEDGED_TO_VERIFYING: 13 * MIN,
        Stage.VERIFYING_TO_HANDLING: 15 * MIN,
        Stage.HANDLING_TO_RESOLVED: 25 * MIN,
        Stage.RESOLVED_TO_CLOSED: 9 * MIN,
    }
    assert result.alarm_to_clearance_ms == 64 * MIN
    assert sum(result.stages_ms.values()) == result.alarm_to_clearance_ms
    assert result.current_status is S.CLOSED and result.current_since == to_iso(at("15:09"))


def test_given_a_sensor_already_normal_when_resolved_then_resolved_to_closed_is_zero() -> None:
    order = act(
        act(act(new_order(), "acknowledge", at("14:06")), "verify", at("14:07")), "handle", at("14:08")
    )
    order = order.model_copy(update={"sensor_normal": True})
    order = act(order, "resolve", at("14:30"))
    result = stage_durations(order)
    assert result.stages_ms[Stage.RESOLVED_TO_CLOSED] == 0
    assert result.alarm_to_clearance_ms == 25 * MIN


def test_given_an_order_in_progress_then_only_completed_stages_and_no_total() -> None:
    order = act(act(new_order(), "acknowledge", at("14:09")), "verify", at("14:15"))
    result = stage_durations(order)
    assert result.stages_ms == {
        Stage.DISPATCHED_TO_ACKNOWLEDGED: 4 * MIN,
        Stage.ACKNOWLEDGED_TO_VERIFYING: 6 * MIN,
    }
    assert result.alarm_to_clearance_ms is None
    assert result.current_status is S.VERIFYING and result.current_since == to_iso(at("14:15"))


def test_given_a_reopened_order_when_closed_again_then_repeated_stages_are_summed() -> None:
    """Given the seed story closed at 15:09, reopened 16:00, resolved 16:40 with the sensor still
    normal, then handling counts 25 + 40 min, resolved 9 + 0 min, and the total runs to 16:40."""
    order = act(seed_story(), "reopen", at("16:00"), role="dispatcher", note="复查发现松动")
    mid = stage_durations(order)
    assert mid.alarm_to_clearance_ms is None and mid.current_status is S.HANDLING
    order = act(order, "resolve", at("16:40"), role="technician")
    result = stage_durations(order)
    assert result.stages_ms[Stage.HANDLING_TO_RESOLVED] == (25 + 40) * MIN
    assert result.stages_ms[Stage.RESOLVED_TO_CLOSED] == 9 * MIN
    assert result.alarm_to_clearance_ms == at("16:40") - RAISED
    assert Stage.DISPATCHED_TO_ACKNOWLEDGED in result.stages_ms


def test_given_an_order_reopened_from_resolved_then_time_resolved_counts_once_per_visit() -> None:
    order = act(
        act(act(act(new_order(), "acknowledge", at("14:06")), "verify", at("14:07")), "handle", at("14:08")),
        "resolve",
        at("14:10"),
    )
    order = act(order, "reopen", at("14:20"), role="dispatcher")
    order = act(order, "resolve", at("14:30"))
    result = stage_durations(sensor_clears(order, at("14:45")))
    assert result.stages_ms[Stage.RESOLVED_TO_CLOSED] == (10 + 15) * MIN
    assert result.stages_ms[Stage.HANDLING_TO_RESOLVED] == (2 + 10) * MIN


def test_given_a_cancelled_order_then_missing_stages_are_absent_and_no_total() -> None:
    order = act(new_order(), "cancel", at("14:25"), role="dispatcher", reason="false_positive")
    result = stage_durations(order)
    assert result.stages_ms == {Stage.DISPATCHED_TO_ACKNOWLEDGED: 20 * MIN}
    assert result.alarm_to_clearance_ms is None and result.current_status is S.CANCELLED


def test_given_skipped_statuses_in_imported_data_then_time_goes_to_the_status_actually_held() -> None:
    order = new_order().model_copy(
        update={
            "timeline": [
                *new_order().timeline,
                TimelineEntry(
                    at=to_iso(at("14:15")), actor="x", role="dispatcher", action="x", to_status=S.HANDLING
                ),
                TimelineEntry(
                    at=to_iso(at("14:45")), actor="x", role="dispatcher", action="x", to_status=S.CLOSED
                ),
            ]
        }
    )
    result = stage_durations(order)
    assert result.stages_ms == {
        Stage.DISPATCHED_TO_ACKNOWLEDGED: 10 * MIN,
        Stage.HANDLING_TO_RESOLVED: 30 * MIN,
    }
    assert result.alarm_to_clearance_ms == 40 * MIN


def test_given_entries_out_of_order_or_unreadable_then_they_are_sorted_or_skipped() -> None:
    base = seed_story()
    shuffled = list(reversed(base.timeline))
    bad = TimelineEntry(at="not a time", actor="x", role="x", action="x", to_status=S.DISPATCHED)
    result = stage_durations(base.model_copy(update={"timeline": [bad, *shuffled]}))
    assert result == stage_durations(base)


def test_given_an_empty_timeline_then_the_order_is_still_dispatched_since_creation() -> None:
    result = stage_durations(new_order().model_copy(update={"timeline": []}))
    assert result.stages_ms == {} and result.current_status is S.DISPATCHED
    assert result.current_since == to_iso(RAISED)


# -- histograms --------------------------------------------------------------------------------------
def exact_quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile: the ceil(q·n)-th smallest value (at least the first)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


durations = st.lists(
    st.one_of(st.just(0), st.integers(1, 10**9), st.floats(0.5, 1e9, allow_nan=False)),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(values=durations, q=st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]), st.floats(0, 1)))
def test_given_any_durations_when_estimating_a_quantile_then_within_one_bucket_of_exact(
    values: list[float], q: float
) -> None:
    hist = LogHistogram.of(values)
    exact = exact_quantile(values, q)
    estimate = hist.quantile(q)
    assert estimate is not None
    exact_bucket, est_bucket = bucket_index(exact), bucket_index(estimate)
    if exact_bucket is None:
        assert estimate == 0
        return
    assert est_bucket is not None and abs(est_bucket - exact_bucket) <= 1
    assert abs(estimate / exact - 1) < hist.ratio - 1


@settings(max_examples=100, deadline=None)
@given(a=durations, b=durations)
def test_given_two_histograms_when_merged_then_same_as_one_over_all_values(
    a: list[float], b: list[float]
) -> None:
    merged = LogHistogram.of(a).merge(LogHistogram.of(b))
    assert merged == LogHistogram.of(a + b)
    assert merged.total == len(a) + len(b)
    assert LogHistogram.from_item(merged.to_item()) == merged


def test_given_the_default_layout_then_buckets_grow_by_the_fourth_root_of_two() -> None:
    low, high = bucket_bounds(bucket_index(64 * MIN) or 0)
    assert low <= 64 * MIN < high
    assert high / low == pytest.approx(2 ** (1 / 4))
    assert LogHistogram().ratio == pytest.approx(2**0.25)


def test_given_stage_times_when_summarised_then_median_and_p90_are_close() -> None:
    minutes = [2, 3, 3, 4, 5, 5, 6, 8, 10, 45]
    hist = LogHistogram.of(m * MIN for m in minutes)
    assert hist.median() == pytest.approx(5 * MIN, rel=0.19)
    assert hist.p90() == pytest.approx(10 * MIN, rel=0.19)


def test_given_an_empty_histogram_then_no_quantile() -> None:
    assert LogHistogram().median() is None and LogHistogram().total == 0


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_given_a_value_that_is_no_duration_when_added_then_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        LogHistogram().add(bad)


def test_given_histograms_of_different_widths_when_merged_then_refused() -> None:
    with pytest.raises(ValueError):
        LogHistogram(buckets_per_doubling=4).merge(LogHistogram(buckets_per_doubling=8))


def test_given_a_stored_item_then_string_keys_are_read_back() -> None:
    item = {"k": 4, "counts": {"88": 3, "90": 1}, "zeros": 2}
    hist = LogHistogram.from_item(item)
    assert hist.counts == {88: 3, 90: 1} and hist.zeros == 2 and hist.to_item() == item
