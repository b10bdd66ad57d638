"""Listing work orders: newest first, signed cursors, filters, bad input, and never a Scan."""

from __future__ import annotations

from typing import Any

import pytest

from smartzone.domain.workorders import OrderStatus
from tests.api.conftest import People
from tests.support.api import ApiClient
from tests.support.orders import RAISED_AT, cover, tilt_order
from tools.aws_calls import CallCounter

MIN = 60_000


@pytest.fixture
def many(store_order: Any) -> list[Any]:
    """23 orders: 15 in G03, 8 in G04, one a minute; every third G03 order acknowledged."""
    out = []
    for i in range(23):
        grid = "G03" if i % 3 else "G04"
        order = tilt_order(cover(f"MH-{i + 100:04d}", grid), raised_at=RAISED_AT + i * MIN)
        if grid == "G03" and i % 2:
            order = order.model_copy(update={"status": OrderStatus.ACKNOWLEDGED})
        out.append(store_order(order))
    return out


def walk(client: ApiClient, **query: str) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    for _ in range(50):
        params = dict(query, **({"cursor": cursor} if cursor else {}))
        response = client.get("/v1/workorders", **params)
        assert response.status == 200, response.body
        pages.append(response.body["items"])
        cursor = response.body["next_cursor"]
        if not cursor:
            return pages
    raise AssertionError("the cursor never ended")


def newest_first(orders: list[Any]) -> list[str]:
    return [o.order_id for o in sorted(orders, key=lambda o: (o.created_at, o.order_id), reverse=True)]


@pytest.mark.parametrize(
    ("who", "query", "select"),
    [
        ("dispatcher", {}, lambda o: True),
        ("dispatcher", {"grid_id": "G03"}, lambda o: o.grid_id == "G03"),
        ("dispatcher", {"status": "acknowledged"}, lambda o: o.status == "acknowledged"),
        (
            "dispatcher",
            {"grid_id": "G03", "status": "dispatched"},
            lambda o: o.grid_id == "G03" and o.status == "dispatched",
        ),
        ("gw_g03", {}, lambda o: o.grid_id == "G03"),
        ("gw_g04", {"category": "manhole_tilt"}, lambda o: o.grid_id == "G04"),
    ],
)
def test_given_many_orders_when_walking_the_cursor_then_all_newest_first_without_duplicates(
    people: People, many: list[Any], who: str, query: dict[str, str], select: Any
) -> None:
    pages = walk(ApiClient(getattr(people, who)), limit="4", **query)
    seen = [o["order_id"] for page in pages for o in page]
    assert seen == newest_first([o for o in many if select(o)])
    assert all(len(page) <= 4 for page in pages)


def test_given_a_time_range_when_listing_then_only_orders_created_inside_it(
    people: People, many: list[Any]
) -> None:
    since, until = many[5].created_at, many[12].created_at
    pages = walk(ApiClient(people.dispatcher), limit="3", since=since, until=until)
    seen = [o["order_id"] for page in pages for o in page]
    assert seen == newest_first(many[5:13])


def test_given_a_time_without_offset_when_listing_then_it_is_read_as_beijing_time(
    people: People, many: list[Any]
) -> None:
    # many[0] was created at 14:05:00.8 Beijing time, many[1] at 14:06:00.8.
    pages = walk(ApiClient(people.dispatcher), until="2026-11-29T14:05:30")
    assert [o["order_id"] for page in pages for o in page] == [many[0].order_id]


def test_given_a_tampered_cursor_when_listing_then_400_naming_the_cursor(
    people: People, many: list[Any]
) -> None:
    client = ApiClient(people.dispatcher)
    cursor = client.get("/v1/workorders", limit="2").body["next_cursor"]
    body, _signature = cursor.split(".")
    for bad in (
        cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB"),
        "x" + cursor,
        "garbage",
        body,
        "a.b.c",
    ):
        response = client.get("/v1/workorders", limit="2", cursor=bad)
        assert response.status == 400, bad
        assert response.body["field"] == "cursor"


def test_given_a_cursor_when_replayed_with_another_filter_or_by_another_caller_then_400(
    people: People, many: list[Any]
) -> None:
    worker = ApiClient(people.gw_g03)
    cursor = worker.get("/v1/workorders", limit="2").body["next_cursor"]
    assert cursor
    assert worker.get("/v1/workorders", limit="2", cursor=cursor, grid_id="G04").status == 400
    assert worker.get("/v1/workorders", limit="2", cursor=cursor, status="dispatched").status == 400
    assert ApiClient(people.gw_g04).get("/v1/workorders", limit="2", cursor=cursor).status == 400
    assert ApiClient(people.dispatcher).get("/v1/workorders", limit="2", cursor=cursor).status == 400
    assert worker.get("/v1/workorders", limit="2", cursor=cursor).status == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-45"}, "until"),
        ({"since": "2026-11-29T10:00:00+08:00", "until": "2026-11-28T10:00:00+08:00"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status"),
        ({"category": "ufo"}, "category"),
    ],
)
def test_given_bad_filters_when_listing_then_422_naming_the_field(
    people: People, api_env: Any, query: dict[str, str], field: str
) -> None:
    response = ApiClient(people.dispatcher).get("/v1/workorders", **query)
    assert response.status == 422
    named = response.body.get("field") or [d["loc"][-1] for d in response.body.get("detail", [])]
    assert field == named or field in named


@pytest.mark.parametrize(
    ("who", "query"),
    [
        ("dispatcher", {}),
        ("dispatcher", {"grid_id": "G03", "category": "manhole_tilt"}),
        ("dispatcher", {"status": "acknowledged"}),
        ("gw_g03", {"status": "dispatched"}),
        ("tech", {}),
    ],
)
def test_given_any_listing_when_served_then_no_scan_is_made(
    people: People, many: list[Any], who: str, query: dict[str, str]
) -> None:
    with CallCounter("dynamodb") as calls:
        walk(ApiClient(getattr(people, who)), limit="5", **query)
        ApiClient(getattr(people, who)).get(f"/v1/workorders/{many[1].order_id}")
    assert calls.counts["Scan"] == 0
    assert calls.counts["Query"] > 0
