"""`GET /v1/notifications`, `POST /v1/notifications/{id}/read` and `GET /v1/stats`, fed by the
outbox dispatcher's inbox and statistics sinks, over in-process API Gateway events.

Uses the shared API fixtures (``api_env``: resources, cursor key, the user registry with
``gw-g03-01`` in G03 and ``gw-g04-01`` in G04).
"""

from __future__ import annotations

from typing import Any

import pytest

from functions.outbox.sinks import InboxSink, StatsSink
from infra.local.resources import LocalResources
from smartzone.domain.identity import Caller
from smartzone.domain.notifications import ChangeKind, OrderChange, derive_event
from smartzone.domain.registry import Grid, GridWorker
from smartzone.domain.stages import bucket_bounds, bucket_index
from smartzone.domain.timeutil import from_iso
from smartzone.domain.workorders import OrderStatus, WorkOrder
from smartzone.repositories.devices import DeviceRepository
from smartzone.settings import get_settings
from tests.support.api import ApiClient
from tests.support.orders import RAISED_AT, cleared, cover, tilt_order, transitioned
from tools.aws_calls import CallCounter

MIN = 60_000
GW_G03 = Caller.of("sub-gw-g03", "gw-g03-01", ["grid_worker"])
GW_G04 = Caller.of("sub-gw-g04", "gw-g04-01", ["grid_worker"])
TECH = Caller.of("sub-tech", "tech-07", ["technician"])
DISPATCHER = Caller.of("sub-disp", "disp-01", ["dispatcher"])
ADMIN = Caller.of("sub-admin", "admin-01", ["admin"])


@pytest.fixture
def feed(api_env: LocalResources) -> Any:
    """``feed(order version, …)``: what the outbox dispatcher does with each version's stream
    record, run through its inbox and statistics sinks twice (a redelivery must change nothing).
    Grids G03 and G04 have one worker each. (The stream → dispatcher path itself is covered by
    ``tests/integration/test_outbox_sinks.py``; feeding the sinks directly keeps moto fast.)"""
    devices = DeviceRepository(api_env.table_name)
    for grid_id, worker in (("G03", "gw-g03-01"), ("G04", "gw-g04-01")):
        devices.put_grid(
            Grid(
                grid_id=grid_id,
                name=f"网格 {grid_id}",
                community="高新社区",
                workers=[GridWorker(worker_id=worker, name="网格员", phone="13812345678")],
            )
        )
    settings = get_settings()
    sinks = (InboxSink.from_settings(settings), StatsSink.from_settings(settings))
    latest: dict[str, WorkOrder] = {}

    def run(*versions: WorkOrder, deliveries: int = 2) -> None:
        for version in versions:
            old = latest.get(version.order_id)
            change = OrderChange(ChangeKind.MODIFY if old else ChangeKind.INSERT, old, version)
            latest[version.order_id] = version
            event = derive_event(change)
            if event is None:
                continue
            for _ in range(deliveries):
                for sink in sinks:
                    sink.deliver(event)

    return run


def lifecycle(order: WorkOrder, stage_minutes: tuple[int, int, int, int, int]) -> list[WorkOrder]:
    """All versions of ``order`` from dispatched to closed, each stage lasting the given minutes."""
    versions = [order]
    at = from_iso(order.created_at)
    for to, minutes in zip(
        (OrderStatus.ACKNOWLEDGED, OrderStatus.VERIFYING, OrderStatus.HANDLING, OrderStatus.RESOLVED),
        stage_minutes[:4],
        strict=True,
    ):
        at += minutes * MIN
        versions.append(transitioned(versions[-1], to, at_ms=at))
    versions.append(cleared(versions[-1], at_ms=at + stage_minutes[4] * MIN))
    return versions


def in_bucket(value_ms: int, exact_ms: int) -> bool:
    low, high = bucket_bounds(bucket_index(exact_ms))  # type: ignore[arg-type]
    return low <= value_ms < high


# ------------------------------------------------------------------------------------ inbox


def test_given_events_of_my_grid_when_listing_then_i_see_them_newest_first_and_not_other_grids(
    feed: Any,
) -> None:
    g03 = tilt_order(cover("MH-0178", "G03"))
    g04 = tilt_order(cover("MH-0250", "G04"))
    feed(g03, g04)
    feed(transitioned(g03, OrderStatus.ACKNOWLEDGED))

    response = ApiClient(GW_G03).get("/v1/notifications")

    assert response.status == 200, response.body
    items = response.body["items"]
    assert [i["event_id"] for i in items] == [f"{g03.order_id}:v2", f"{g03.order_id}:v1"]
    assert items[1]["title"] == "【新工单】178号窨井盖倾斜告警(网格 G03)"
    assert "178号窨井盖" in items[1]["text"]
    assert all(i["read"] is False and i["grid_id"] == "G03" for i in items)
    assert response.body["next_cursor"] is None
    other = ApiClient(GW_G04).get("/v1/notifications").body["items"]
    assert [i["order_id"] for i in other] == [g04.order_id]


def test_given_a_notification_when_marked_read_then_the_unread_filter_leaves_it_out(feed: Any) -> None:
    order = tilt_order()
    feed(order)
    feed(transitioned(order, OrderStatus.ACKNOWLEDGED))
    me = ApiClient(GW_G03)
    newest, oldest = me.get("/v1/notifications").body["items"]

    marked = me.post(f"/v1/notifications/{oldest['notification_id']}/read")
    again = me.post(f"/v1/notifications/{oldest['notification_id']}/read")

    assert marked.status == 200 and marked.body["read"] is True and marked.body["read_at"]
    assert again.status == 200 and again.body["read_at"] == marked.body["read_at"]
    unread = me.get("/v1/notifications", unread_only="true").body["items"]
    assert [i["notification_id"] for i in unread] == [newest["notification_id"]]
    everything = me.get("/v1/notifications").body["items"]
    assert [i["read"] for i in everything] == [False, True]


def test_given_someone_elses_notification_when_i_mark_it_read_then_404_and_it_stays_unread(
    feed: Any,
) -> None:
    feed(tilt_order())
    (theirs,) = ApiClient(GW_G03).get("/v1/notifications").body["items"]

    response = ApiClient(GW_G04).post(f"/v1/notifications/{theirs['notification_id']}/read")
    as_dispatcher = ApiClient(DISPATCHER).post(f"/v1/notifications/{theirs['notification_id']}/read")

    assert response.status == 404 and as_dispatcher.status == 404
    assert ApiClient(GW_G03).get("/v1/notifications").body["items"][0]["read"] is False


@pytest.mark.parametrize("bad_id", ["nope", "%20", "x" * 600, "MjAyNg"])
def test_given_a_malformed_notification_id_then_404_never_500(feed: Any, bad_id: str) -> None:
    response = ApiClient(GW_G03).post(f"/v1/notifications/{bad_id}/read")

    assert response.status in (404, 422), response.body


def test_given_many_notifications_when_paging_then_the_cursor_walks_them_and_cannot_be_reused_elsewhere(
    feed: Any,
) -> None:
    orders = [tilt_order(cover(f"MH-01{n:02d}", "G03"), raised_at=RAISED_AT + n * MIN) for n in range(5)]
    feed(*orders)
    me = ApiClient(GW_G03)

    first = me.get("/v1/notifications", limit="2")
    second = me.get("/v1/notifications", limit="2", cursor=first.body["next_cursor"])
    third = me.get("/v1/notifications", limit="2", cursor=second.body["next_cursor"])

    seen = [i["order_id"] for page in (first, second, third) for i in page.body["items"]]
    assert seen == [o.order_id for o in reversed(orders)]
    assert third.body["next_cursor"] is None
    # another person's, or another filter's, use of the cursor is refused
    assert ApiClient(GW_G04).get("/v1/notifications", cursor=first.body["next_cursor"]).status == 400
    assert me.get("/v1/notifications", unread_only="true", cursor=first.body["next_cursor"]).status == 400
    assert me.get("/v1/notifications", cursor=first.body["next_cursor"] + "x").status == 400


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"unread_only": "maybe"}]
)
def test_given_bad_inbox_parameters_then_422(feed: Any, query: dict[str, str]) -> None:
    assert ApiClient(GW_G03).get("/v1/notifications", **query).status == 422


def test_given_no_token_then_the_inbox_is_401(api_env: LocalResources) -> None:
    assert ApiClient(None).get("/v1/notifications").status == 401


def test_given_an_inbox_listing_then_it_is_one_query_and_no_scan(feed: Any) -> None:
    feed(tilt_order())

    with CallCounter("dynamodb") as calls:
        ApiClient(GW_G03).get("/v1/notifications", unread_only="true")

    assert calls.counts["Scan"] == 0
    assert calls.counts["Query"] == 1


# ------------------------------------------------------------------------------------ stats


@pytest.fixture
def district(feed: Any) -> dict[str, Any]:
    """Three G03 covers worked to closure, one G04 cover open, one G04 order cancelled."""
    stage_sets = ((4, 15, 5, 30, 9), (8, 10, 5, 60, 2), (20, 30, 10, 90, 5))
    closed = []
    for n, minutes in enumerate(stage_sets):
        order = tilt_order(cover(f"MH-02{n:02d}", "G03"), raised_at=RAISED_AT + n * MIN)
        closed.append(lifecycle(order, minutes))
    for versions in closed:
        feed(*versions, deliveries=1)
    open_g04 = tilt_order(cover("MH-0300", "G04"))
    feed(open_g04, transitioned(open_g04, OrderStatus.ACKNOWLEDGED))
    return {"closed": closed, "stage_sets": stage_sets, "open": open_g04}


def test_given_a_period_then_the_dispatcher_sees_counts_by_category_status_grid_and_headlines(
    district: dict[str, Any],
) -> None:
    response = ApiClient(DISPATCHER).get("/v1/stats", **{"from": "2026-11-29", "to": "2026-11-29"})

    assert response.status == 200, response.body
    body = response.body
    assert (body["from"], body["to"], body["timezone"], body["grid_ids"]) == (
        "2026-11-29",
        "2026-11-29",
        "Asia/Shanghai",
        None,
    )
    orders = body["orders"]
    assert orders["created"] == 4
    assert orders["by_category"] == {"manhole_tilt": 4}
    assert orders["by_grid"] == {"G03": 3, "G04": 1}
    assert orders["by_status"] == {
        "acknowledged": 4,
        "closed": 3,
        "dispatched": 4,
        "handling": 3,
        "resolved": 3,
        "verifying": 3,
    }
    assert orders["closed_by_category"] == {"manhole_tilt": 3}
    assert body["headline"] == {
        "covers_repaired": 3,
        "illegal_fishing_stopped": 0,
        "straw_burning_handled": 0,
    }


def test_given_closed_orders_then_stats_give_median_and_p90_per_stage_within_one_bucket(
    district: dict[str, Any],
) -> None:
    durations = (
        ApiClient(ADMIN).get("/v1/stats", **{"from": "2026-11-29", "to": "2026-11-29"}).body["durations"]
    )

    # handling → resolved took 30, 60 and 90 minutes: median 60, p90 (3rd of 3) 90
    handling = durations["handling_to_resolved"]
    assert handling["count"] == 3 and handling["label_zh"] == "处置→办结"
    assert in_bucket(handling["median_ms"], 60 * MIN) and in_bucket(handling["p90_ms"], 90 * MIN)
    # alarm to clearance: creation (0.8 s after the reading) to closure
    totals = sorted(sum(m) * MIN - 800 for m in district["stage_sets"])
    clearance = durations["alarm_to_clearance"]
    assert clearance["count"] == 3
    assert in_bucket(clearance["median_ms"], totals[1]) and in_bucket(clearance["p90_ms"], totals[2])
    assert set(durations) == {
        "dispatched_to_acknowledged",
        "acknowledged_to_verifying",
        "verifying_to_handling",
        "handling_to_resolved",
        "resolved_to_closed",
        "alarm_to_clearance",
    }


def test_given_a_grid_worker_then_stats_count_only_their_grids(district: dict[str, Any]) -> None:
    g04 = ApiClient(GW_G04).get("/v1/stats", **{"from": "2026-11-29", "to": "2026-11-29"}).body

    assert g04["grid_ids"] == ["G04"]
    assert g04["orders"]["by_grid"] == {"G04": 1}
    assert g04["orders"]["by_status"] == {"acknowledged": 1, "dispatched": 1}
    assert g04["headline"]["covers_repaired"] == 0
    assert g04["durations"]["alarm_to_clearance"] == {
        "label_zh": "告警→预警消除",
        "count": 0,
        "median_ms": None,
        "p90_ms": None,
    }
    g03 = ApiClient(GW_G03).get("/v1/stats", **{"from": "2026-11-29", "to": "2026-11-29"}).body
    assert g03["orders"]["by_grid"] == {"G03": 3} and g03["durations"]["alarm_to_clearance"]["count"] == 3


def test_given_a_technician_then_stats_are_403(api_env: LocalResources) -> None:
    assert ApiClient(TECH).get("/v1/stats").status == 403


def test_given_a_period_without_data_then_zeros(feed: Any) -> None:
    feed(tilt_order())

    body = ApiClient(DISPATCHER).get("/v1/stats", **{"from": "2025-01-01", "to": "2025-01-31"}).body

    assert body["orders"]["created"] == 0 and body["orders"]["by_category"] == {}
    assert body["durations"]["handling_to_resolved"]["median_ms"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13-01", "to": "2026-12-31"}, "from"),
        ({"from": "2026-11-01", "to": "yesterday"}, "to"),
        ({"from": "2026/11/01", "to": "2026-11-30"}, "from"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2026-12-01", "to": "2026-11-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),
    ],
)
def test_given_bad_dates_then_422_naming_the_field(
    api_env: LocalResources, query: dict[str, str], field: str
) -> None:
    response = ApiClient(DISPATCHER).get("/v1/stats", **query)

    assert response.status == 422, response.body
    assert response.body["field"] == field


def test_given_a_full_year_then_stats_read_only_the_days_items_by_batch_get_and_never_scan(
    district: dict[str, Any],
) -> None:
    with CallCounter("dynamodb") as calls:
        response = ApiClient(DISPATCHER).get("/v1/stats", **{"from": "2026-01-01", "to": "2026-12-31"})

    assert response.status == 200
    assert response.body["orders"]["created"] == 4
    assert calls.counts["Scan"] == 0 and calls.counts["Query"] == 0
    # 365 days × (COUNTS + 6 histograms) keys, 100 per call; plus the forms' PREFILL items (issue 6)
    assert calls.counts["BatchGetItem"] == -(-365 * 7 // 100) + -(-365 // 100)


def test_given_no_dates_then_the_last_30_days_are_used(api_env: LocalResources) -> None:
    body = ApiClient(DISPATCHER).get("/v1/stats").body

    from datetime import date

    span = (date.fromisoformat(body["to"]) - date.fromisoformat(body["from"])).days + 1
    assert span == 30
