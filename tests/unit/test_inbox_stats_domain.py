"""Pure logic of the inbox and the statistics: recipients and ids, what an event counts, periods,
and a period's summary (no AWS)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartzone.domain.identity import Role
from smartzone.domain.inbox import (
    entry_of,
    expires_at,
    inbox_sort_key,
    notification_id,
    recipients,
    sort_key_of,
)
from smartzone.domain.lifecycle import TransitionRequest, plan_transition
from smartzone.domain.notifications import ChangeKind, OrderChange, OutboundEvent, derive_event
from smartzone.domain.stages import bucket_index
from smartzone.domain.statistics import (
    MAX_PERIOD_DAYS,
    PeriodError,
    cancel_reason,
    merge_histogram,
    parse_period,
    period_days,
    stats_day,
    stats_update,
    summarize,
    summarize_counts,
)
from smartzone.domain.timeutil import from_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder
from tests.support.orders import CLEARED_AT, RAISED_AT, cleared, cover, reraised, tilt_order, transitioned

MIN = 60_000
TODAY = date(2026, 11, 29)


def event_of(old: WorkOrder | None, new: WorkOrder) -> OutboundEvent:
    event = derive_event(OrderChange(ChangeKind.MODIFY if old else ChangeKind.INSERT, old, new))
    assert event is not None
    return event


def closed_story() -> list[WorkOrder]:
    versions = [tilt_order()]
    for to, at in (
        (OrderStatus.ACKNOWLEDGED, RAISED_AT + 5 * MIN),
        (OrderStatus.VERIFYING, RAISED_AT + 20 * MIN),
        (OrderStatus.HANDLING, RAISED_AT + 25 * MIN),
        (OrderStatus.RESOLVED, RAISED_AT + 55 * MIN),
    ):
        versions.append(transitioned(versions[-1], to, at_ms=at))
    versions.append(cleared(versions[-1], at_ms=CLEARED_AT))
    return versions


def cancelled(order: WorkOrder, reason: str, note: str | None = None) -> WorkOrder:
    plan = plan_transition(
        order,
        actor="disp-01",
        roles=[Role.DISPATCHER],
        request=TransitionRequest(action="cancel", reason=reason, note=note),
        now_ms=from_iso(order.updated_at) + MIN,
    )
    return plan.apply(order)


# -- inbox ------------------------------------------------------------------------------------------


def test_recipients_are_the_grids_workers_then_the_assignee_each_once() -> None:
    order = tilt_order().model_copy(update={"assignee": "gw-b"})
    event = event_of(None, order)

    assert recipients(event, ["gw-a", "gw-b", "gw-a", ""]) == ["gw-a", "gw-b"]
    assert recipients(event_of(None, tilt_order()), []) == []
    tech = event_of(None, tilt_order().model_copy(update={"assignee": "tech-07"}))
    assert recipients(tech, ["gw-a"]) == ["gw-a", "tech-07"]


def test_an_entry_is_keyed_by_the_versions_updated_at_and_event_id_and_expires_after_the_ttl() -> None:
    versions = closed_story()
    event = event_of(versions[-2], versions[-1])

    entry = entry_of(event)

    assert inbox_sort_key(event) == f"{versions[-1].updated_at}#{versions[-1].order_id}:v6"
    assert sort_key_of(entry.notification_id) == inbox_sort_key(event)
    assert entry.created_at == versions[-1].updated_at and entry.read is False
    assert entry.title.startswith("【预警消除】")
    assert expires_at(event, 180) == CLEARED_AT // 1000 + 180 * 86_400
    assert expires_at(event, 180) == expires_at(event_of(versions[-2], versions[-1]), 180)


@pytest.mark.parametrize("bad", ["", "nope", "@@@", "x" * 600, notification_id("no-hash-here"), "MjAyNg="])
def test_ids_that_are_not_ours_map_to_no_sort_key(bad: str) -> None:
    assert sort_key_of(bad) is None


@given(st.text(min_size=1, max_size=80).map(lambda s: f"{s}#x"))
def test_notification_ids_round_trip_and_are_url_safe(sort_key: str) -> None:
    nid = notification_id(sort_key)

    assert sort_key_of(nid) == sort_key
    assert all(c.isalnum() or c in "-_" for c in nid)


# -- what one event counts ---------------------------------------------------------------------


def test_the_day_is_the_beijing_day() -> None:
    assert stats_day("2026-11-29T15:59:59.999Z") == "2026-11-29"
    assert stats_day("2026-11-29T16:00:00.000Z") == "2026-11-30"


def test_a_new_order_counts_its_category_grid_and_first_status() -> None:
    update = stats_update(event_of(None, tilt_order(cover("MH-0412", "G05"))))

    assert update.day == "2026-11-29"
    assert update.counters == {"G05|created|manhole_tilt": 1, "G05|status|dispatched": 1}
    assert update.histograms == {}


def test_a_closure_counts_the_category_and_adds_every_stage_and_the_total_to_histograms() -> None:
    versions = closed_story()
    update = stats_update(event_of(versions[-2], versions[-1]))

    assert update.counters == {"G03|status|closed": 1, "G03|closed|manhole_tilt": 1}
    created = RAISED_AT + 800
    assert update.histograms == {
        "HIST#dispatched_to_acknowledged": {f"G03|{bucket_index(RAISED_AT + 5 * MIN - created)}": 1},
        "HIST#acknowledged_to_verifying": {f"G03|{bucket_index(15 * MIN)}": 1},
        "HIST#verifying_to_handling": {f"G03|{bucket_index(5 * MIN)}": 1},
        "HIST#handling_to_resolved": {f"G03|{bucket_index(30 * MIN)}": 1},
        "HIST#resolved_to_closed": {f"G03|{bucket_index(9 * MIN)}": 1},
        "HIST#alarm_to_clearance": {f"G03|{bucket_index(CLEARED_AT - created)}": 1},
    }


def test_events_without_a_status_change_count_nothing() -> None:
    order = tilt_order()
    clearing = cleared(order)  # the sensor is normal again while the order is still dispatched

    assert stats_update(event_of(order, clearing)).empty


def test_a_reraise_that_reopens_a_resolved_order_counts_the_handling_status_again() -> None:
    versions = closed_story()[:-1]  # resolved, sensor not yet normal
    reopened = reraised(versions[-1]).model_copy(update={"status": OrderStatus.HANDLING})

    update = stats_update(event_of(versions[-1], reopened))

    assert update.counters == {"G03|status|handling": 1}


@pytest.mark.parametrize(
    ("reason", "note", "counted"),
    [
        ("false_positive", None, "false_positive"),
        ("device_fault", "传感器进水", "device_fault"),
        ("other", "x", "other"),
    ],
)
def test_a_cancellation_counts_by_the_reason_its_entry_recorded(
    reason: str, note: str | None, counted: str
) -> None:
    order = tilt_order()
    gone = cancelled(order, reason, note)

    update = stats_update(event_of(order, gone))

    assert cancel_reason(gone) == counted
    assert update.counters == {"G03|status|cancelled": 1, f"G03|cancelled|{counted}": 1}


def test_a_cancellation_without_a_recorded_reason_counts_as_other() -> None:
    order = transitioned(tilt_order(), OrderStatus.CANCELLED)

    assert cancel_reason(order) == "other"


# -- periods ---------------------------------------------------------------------------------------


def test_the_default_period_is_the_last_30_days() -> None:
    assert parse_period(None, None, TODAY) == (date(2026, 10, 31), TODAY)
    assert parse_period(None, "2026-01-31", TODAY) == (date(2026, 1, 2), date(2026, 1, 31))


def test_a_period_of_366_days_is_allowed_and_lists_every_day() -> None:
    start, end = parse_period("2024-01-01", "2024-12-31", TODAY)  # a leap year: 366 days

    days = period_days(start, end)
    assert len(days) == MAX_PERIOD_DAYS and days[0] == "2024-01-01" and days[-1] == "2024-12-31"


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-1-01", "2026-01-02", "from"),
        ("2026-02-29", "2026-03-01", "from"),
        ("2026-01-01", "20260102", "to"),
        ("2026-01-02", "2026-01-01", "from"),
        ("2025-01-01", "2026-01-02", "to"),
        ("２０２６-01-01", "2026-01-02", "from"),
    ],
)
def test_bad_periods_name_the_field(start: str, end: str, field: str) -> None:
    with pytest.raises(PeriodError) as error:
        parse_period(start, end, TODAY)

    assert error.value.field == field


# -- summaries ---------------------------------------------------------------------------------------


def test_counts_add_up_days_and_keep_only_the_callers_grids() -> None:
    day1 = {
        "pk": "STATS#d1",
        "G03|created|manhole_tilt": 2,
        "G04|created|manhole_tilt": 1,
        "G03|status|dispatched": 2,
    }
    day2 = {"G03|created|illegal_fishing": 1, "G03|closed|illegal_fishing": 1, "G04|cancelled|duplicate": 1}

    everyone = summarize_counts([day1, day2], None)
    g03 = summarize_counts([day1, day2], {"G03"})

    assert everyone.created == 4
    assert everyone.by_category == {"illegal_fishing": 1, "manhole_tilt": 3}
    assert everyone.by_grid == {"G03": 3, "G04": 1}
    assert everyone.cancelled_by_reason == {"duplicate": 1}
    assert g03.by_grid == {"G03": 3} and g03.cancelled_by_reason == {}
    assert g03.by_status == {"dispatched": 2}


def test_histograms_merge_over_days_and_grids_in_scope_with_zeros() -> None:
    hour = bucket_index(60 * MIN)
    items = [
        {"sk": "HIST#x", "G03|z": 1, f"G03|{hour}": 2},
        {f"G03|{hour}": 1, f"G04|{hour}": 5, "junk": "x"},
    ]

    both = merge_histogram(items, None)
    g03 = merge_histogram(items, ["G03"])

    assert (both.zeros, both.counts) == (1, {hour: 8})
    assert (g03.zeros, g03.counts) == (1, {hour: 3})


def test_headlines_are_closures_of_their_categories_so_new_categories_need_no_code() -> None:
    day = {
        "G03|closed|manhole_tilt": 36,
        "G07|closed|illegal_fishing": 5,
        "G08|closed|straw_burning": 2,
        "G08|closed|illegal_dumping": 4,
    }

    stats = summarize(TODAY, TODAY, [day], {}, None)

    assert stats.headline == {"covers_repaired": 36, "illegal_fishing_stopped": 5, "straw_burning_handled": 2}
    assert stats.orders.closed_by_category["illegal_dumping"] == 4
    dumped = stats.model_dump(mode="json", by_alias=True)
    assert dumped["from"] == dumped["to"] == "2026-11-29"
    assert dumped["durations"]["alarm_to_clearance"]["count"] == 0


def test_medians_and_p90_lie_in_the_bucket_of_the_exact_value() -> None:
    values = [4, 10, 15, 30, 60, 64, 64, 70, 90, 240]  # minutes
    items = [{f"G03|{bucket_index(v * MIN)}": 1} for v in values]

    stats = summarize(TODAY, TODAY, [], {"alarm_to_clearance": items}, None)

    total = stats.durations["alarm_to_clearance"]
    assert total.count == 10
    assert bucket_index(total.median_ms) == bucket_index(60 * MIN)  # type: ignore[arg-type]
    assert bucket_index(total.p90_ms) == bucket_index(90 * MIN)  # type: ignore[arg-type]
